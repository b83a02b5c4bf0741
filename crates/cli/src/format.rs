//! Docker's ways of printing things: tables, sizes, ages, short ids.

use pier_common::time::human_duration;
use std::io::Write;

/// Writes rows as a tab-aligned table with Docker's settings (Go's
/// tabwriter, minimum cell width 10 including padding 3), without trailing
/// spaces on the last column.
pub fn table(rows: &[Vec<String>]) -> String {
    // This tabwriter adds the padding after the minimum width, Go's counts
    // it in: 7 + 3 here is Go's 10.
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
    for row in rows {
        let _ = writeln!(tw, "{}", row.join("\t"));
    }
    let out = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim_end().to_string() + "\n")
        .collect()
}

/// Sizes as Docker prints them: decimal units, 3 significant digits
/// ("4.26MB", "812kB", "0B").
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes.max(0) as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.3}");
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{:.*}", digits, s.parse::<f64>().unwrap_or(v));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// "5 minutes ago" for a unix time.
pub fn ago(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format!("{} ago", human_duration(now - unix))
}

/// The 12-digit short form of an id ("sha256:" dropped).
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(812_300), "812kB");
        assert_eq!(human_size(12_340_000), "12.3MB");
        assert_eq!(human_size(2_000_000), "2MB");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&[
            vec!["REPOSITORY".into(), "TAG".into()],
            vec!["busybox".into(), "latest".into()],
        ]);
        assert_eq!(t, "REPOSITORY   TAG\nbusybox      latest\n");
        // Narrow columns are 10 wide, as Docker prints them.
        let t = table(&[
            vec!["ID".into(), "NAME".into()],
            vec!["a".into(), "b".into()],
        ]);
        assert_eq!(t, "ID        NAME\na         b\n");
    }

    #[test]
    fn ids_and_durations() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
