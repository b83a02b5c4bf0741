//! `pier logs`: a container's output, stdout to stdout and stderr to
//! stderr, from docker's multiplexed stream (raw for a tty container).

use crate::client::{empty, encode, Client};
use crate::error::CliError;
use http_body_util::BodyExt;
use hyper::Method;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

pub async fn logs(client: &Client, args: LogsArgs) -> Result<i32, CliError> {
    let exit1 = super::image_ops::exit1;
    let now = pier_common::time::unix_now();
    let mut path = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        encode(&args.container),
        u8::from(args.follow),
        u8::from(args.timestamps),
        encode(&args.tail)
    );
    if args.details {
        path.push_str("&details=1");
    }
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            let t = timestamp(v, now).map_err(|e| {
                exit1(CliError::engine(format!(
                    "invalid value for \"{key}\": {e}"
                )))
            })?;
            path.push_str(&format!("&{key}={}", encode(&t)));
        }
    }
    let resp = client
        .send(Method::GET, &path, empty())
        .await
        .map_err(exit1)?;
    let raw = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("raw-stream"));
    let mut body = resp.into_body();
    let mut demux = Demux::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            exit1(CliError::engine(format!(
                "reading the logs of {}: {e}",
                args.container
            )))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if raw {
            write_out(1, &data);
        } else {
            demux.feed(&data, &mut |stream, payload| write_out(stream, payload));
        }
    }
    Ok(0)
}

/// Writes to stdout (1) or stderr (2) at once, so `-f` shows output as it
/// comes; a closed pipe is not an error worth a message.
fn write_out(stream: u8, data: &[u8]) {
    if stream == 2 {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(data);
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(data);
        let _ = o.flush();
    }
}

/// Splits docker's multiplexed stream (8-byte headers: stream, 0, 0, 0,
/// big-endian length) into payloads, across reads.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.buf.len() - pos >= 8 {
            let h = &self.buf[pos..pos + 8];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - pos - 8 < len {
                break;
            }
            let stream = h[0];
            out(stream, &self.buf[pos + 8..pos + 8 + len]);
            pos += 8 + len;
        }
        self.buf.drain(..pos);
    }
}

/// Docker's `--since`/`--until` values as the API takes them
/// (`SECONDS[.NANOS]`): Go durations before `now` ("10m"), RFC 3339 times
/// (date only, without seconds, without zone: UTC), unix timestamps.
pub fn timestamp(value: &str, now: (i64, u32)) -> Result<String, String> {
    if value != "0" {
        if let Some(d) = pier_common::duration::parse_go_duration(value) {
            let t = i128::from(now.0) * 1_000_000_000 + i128::from(now.1) - d;
            return Ok(t.div_euclid(1_000_000_000).to_string());
        }
    }
    if let Some((secs, nanos)) = parse_datetime(value) {
        return Ok(format!("{secs}.{nanos:09}"));
    }
    if value.contains('-') {
        return Err(format!("cannot parse {value:?} as an RFC 3339 time"));
    }
    let (s, frac) = value.split_once('.').unwrap_or((value, ""));
    if s.parse::<i64>().is_ok() && frac.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(value.to_string());
    }
    Err(format!(
        "failed to parse value as time or duration: {value:?}"
    ))
}

/// `2006-01-02`, `2006-01-02T15`, `2006-01-02T15:04`,
/// `2006-01-02T15:04:05[.frac]`, each with an optional `Z` or `±hh:mm`.
fn parse_datetime(v: &str) -> Option<(i64, u32)> {
    let b = v.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (date, rest) = v.split_at(10);
    let (body, offset) = split_zone(rest)?;
    let mut hh = 0;
    let mut mm = 0;
    let mut ss = "00".to_string();
    if let Some(t) = body.strip_prefix('T') {
        let mut parts = t.split(':');
        hh = parts.next()?.parse::<i64>().ok()?;
        if let Some(m) = parts.next() {
            mm = m.parse::<i64>().ok()?;
        }
        if let Some(s) = parts.next() {
            ss = s.to_string();
        }
        if parts.next().is_some() {
            return None;
        }
    } else if !body.is_empty() {
        return None;
    }
    let (whole, frac) = ss.split_once('.').unwrap_or((&ss, ""));
    let whole: i64 = whole.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    if hh > 23 || mm > 59 || whole > 60 {
        return None;
    }
    let base = pier_common::time::parse_rfc3339(&format!("{date}T00:00:00Z"))?;
    Some((base + hh * 3600 + mm * 60 + whole - offset, nanos))
}

/// Splits a trailing zone off: ("T15:04:05", offset seconds east of UTC);
/// without a zone, docker's CLI takes the local zone's offset now.
fn split_zone(rest: &str) -> Option<(&str, i64)> {
    if let Some(r) = rest.strip_suffix(['Z', 'z']) {
        return Some((r, 0));
    }
    if rest.len() >= 6 {
        let (r, z) = rest.split_at(rest.len() - 6);
        let zb = z.as_bytes();
        if (zb[0] == b'+' || zb[0] == b'-') && zb[3] == b':' {
            let h: i64 = z[1..3].parse().ok()?;
            let m: i64 = z[4..6].parse().ok()?;
            let off = h * 3600 + m * 60;
            return Some((r, if zb[0] == b'-' { -off } else { off }));
        }
    }
    Some((rest, local_offset()))
}

/// The local time zone's offset from UTC now, in seconds.
fn local_offset() -> i64 {
    let now = pier_common::time::unix_now().0 as libc::time_t;
    // SAFETY: localtime_r writes only into the zeroed tm we pass.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_docker_cli_sends_them() {
        let now = (1_000_000, 0);
        assert_eq!(timestamp("10m", now).unwrap(), "999400");
        assert_eq!(timestamp("1700000000", now).unwrap(), "1700000000");
        assert_eq!(timestamp("1700000000.5", now).unwrap(), "1700000000.5");
        assert_eq!(
            timestamp("2023-11-14T22:13:20Z", now).unwrap(),
            "1700000000.000000000"
        );
        assert_eq!(
            timestamp("2023-11-14T23:13:20.25+01:00", now).unwrap(),
            "1700000000.250000000"
        );
        assert_eq!(
            timestamp("2023-11-14Z", now).unwrap(),
            "1699920000.000000000"
        );
        assert_eq!(
            timestamp("2023-11-14T22:13Z", now).unwrap(),
            "1699999980.000000000"
        );
        assert_eq!(
            timestamp("2023-11-14", now).unwrap(),
            format!("{}.000000000", 1_699_920_000 - local_offset())
        );
        assert!(timestamp("bogus", now).is_err());
        // Without a zone: local time, as docker's CLI.
        let local = timestamp("2023-11-14T22:13:20", now).unwrap();
        let secs: i64 = local.split('.').next().unwrap().parse().unwrap();
        assert_eq!(secs, 1_700_000_000 - local_offset());
        assert!(timestamp("2023-13-99Tx", now).is_err());
    }

    #[test]
    fn demux_splits_frames_across_reads() {
        let mut d = Demux::default();
        let mut got = Vec::new();
        let data = [
            1u8, 0, 0, 0, 0, 0, 0, 2, b'h', b'i', 2, 0, 0, 0, 0, 0, 0, 1, b'!',
        ];
        d.feed(&data[..5], &mut |s, p| got.push((s, p.to_vec())));
        assert!(got.is_empty());
        d.feed(&data[5..], &mut |s, p| got.push((s, p.to_vec())));
        assert_eq!(got, [(1, b"hi".to_vec()), (2, b"!".to_vec())]);
    }
}
