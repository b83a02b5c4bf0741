//! Progress messages in the shape of Docker's JSON message stream (one
//! JSON object per line), so Docker API clients show them as they show
//! dockerd's.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub message: String,
}

/// Paces a transfer's progress lines as docker's progress reader does:
/// the first, then at most one per [`Throttle::EVERY`], and the last. A
/// line per chunk (hundreds per pull) costs the daemon and the client's
/// terminal more than it tells.
#[derive(Debug)]
pub struct Throttle {
    started: std::time::Instant,
    /// Milliseconds after `started` of the last line; `u64::MAX`: none yet.
    last_ms: std::sync::atomic::AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            started: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }
}

impl Throttle {
    pub const EVERY: std::time::Duration = std::time::Duration::from_millis(100);

    /// Whether a line is due now; `done`: the transfer's last one.
    pub fn due(&self, done: bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_ms.load(Relaxed);
        let due =
            done || last == u64::MAX || now.saturating_sub(last) >= Self::EVERY.as_millis() as u64;
        if due {
            self.last_ms.store(now, Relaxed);
        }
        due
    }
}

/// One line of the stream.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Message {
    /// `{"status": ...}`.
    pub fn status(s: impl Into<String>) -> Message {
        Message {
            status: Some(s.into()),
            ..Default::default()
        }
    }

    /// `{"status": ..., "id": ...}`, a per-layer line.
    pub fn layer(id: &str, s: impl Into<String>) -> Message {
        Message {
            status: Some(s.into()),
            id: Some(id.to_owned()),
            progress_detail: Some(ProgressDetail::default()),
            ..Default::default()
        }
    }

    /// A per-layer line with a byte count and bar.
    pub fn bytes(id: &str, s: &str, current: u64, total: u64) -> Message {
        Message {
            status: Some(s.to_owned()),
            id: Some(id.to_owned()),
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total: Some(total),
            }),
            progress: Some(bar(current, total)),
            ..Default::default()
        }
    }

    /// The error line that ends a failed stream.
    pub fn error(msg: impl Into<String>) -> Message {
        let m = msg.into();
        Message {
            error_detail: Some(ErrorDetail { message: m.clone() }),
            error: Some(m),
            ..Default::default()
        }
    }

    /// The JSON line (with its newline).
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        v.push(b'\n');
        v
    }
}

/// The short layer ID docker shows: 12 hex digits of the digest.
pub fn short_id(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// A size as docker prints it: four significant digits, decimal units.
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let s = if u == 0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", units[u])
}

/// Docker's progress bar: `[=====>     ]  1.2MB/3.4MB` (50 columns and
/// the head, which stays at 100%).
pub fn bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let filled = (current.min(total) * WIDTH / total) as usize;
    format!(
        "[{}>{}] {:>8}/{}",
        "=".repeat(filled),
        " ".repeat(WIDTH as usize - filled),
        human_size(current),
        human_size(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_look_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_578_634), "2.579MB");
        assert_eq!(human_size(819_200), "819.2kB");
        assert_eq!(human_size(36_450), "36.45kB");
        assert_eq!(human_size(10_000_000), "10MB");
        let b = bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("]      50B/100B"), "{b}");
        assert_eq!(
            bar(139, 139),
            "[==================================================>]     139B/139B"
        );
        assert_eq!(
            bar(32_768, 2_578_634),
            "[>                                                  ]  32.77kB/2.579MB"
        );
        assert_eq!(
            short_id(&format!("sha256:{}", "ab".repeat(32))),
            "abababababab"
        );
    }

    #[test]
    fn messages_serialize_like_dockerd() {
        assert_eq!(
            String::from_utf8(Message::status("Digest: x").to_line()).unwrap(),
            "{\"status\":\"Digest: x\"}\n"
        );
        let l = String::from_utf8(Message::layer("abc", "Pull complete").to_line()).unwrap();
        assert_eq!(
            l,
            "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"abc\"}\n"
        );
        let e = String::from_utf8(Message::error("boom").to_line()).unwrap();
        assert_eq!(
            e,
            "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\n"
        );
        let d = String::from_utf8(Message::bytes("abc", "Downloading", 1, 2).to_line()).unwrap();
        assert!(
            d.contains("\"progressDetail\":{\"current\":1,\"total\":2}"),
            "{d}"
        );
    }

    #[test]
    fn throttle_lets_the_first_the_last_and_one_per_period_through() {
        let t = Throttle::default();
        assert!(t.due(false), "the first line");
        assert!(!t.due(false), "a second line at once");
        assert!(t.due(true), "the last line");
        assert!(!t.due(false));
        std::thread::sleep(Throttle::EVERY);
        assert!(t.due(false), "a line after a period");
        assert!(!t.due(false));
    }
}
