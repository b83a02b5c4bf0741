//! RFC 3339 timestamps (UTC, nanoseconds) as Docker writes them, without a
//! date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-30T10:00:00.123456789Z` for `t`.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, secs) = civil(d.as_secs() as i64);
    format!("{date}T{secs}.{:09}Z", d.subsec_nanos())
}

/// `2026-11-30T10:00:00Z` for unix seconds.
pub fn rfc3339_secs(unix: i64) -> String {
    let (date, secs) = civil(unix);
    format!("{date}T{secs}Z")
}

pub fn now_nano() -> String {
    rfc3339_nano(SystemTime::now())
}

fn civil(unix: i64) -> (String, String) {
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Parses the `YYYY-MM-DDTHH:MM:SS[.frac]Z` form back to unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_796_036_645, 7);
        assert_eq!(rfc3339_nano(t), "2026-11-30T11:04:05.000000007Z");
    }

    #[test]
    fn parse_inverts_format() {
        for secs in [0i64, 86_399, 951_782_400, 1_796_036_645, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339_secs(secs)), Some(secs), "{secs}");
        }
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
