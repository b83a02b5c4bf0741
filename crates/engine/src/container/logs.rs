//! Reading a container's json-file log (`ID-json.log`, one
//! `{"log","stream","time"}` object per line, written by its shim) for
//! `GET /containers/{id}/logs`: parsing, `tail`, `since`/`until`, and the
//! frames docker sends (multiplexed for containers without a tty, raw with
//! one).

use std::io::{Read, Seek, SeekFrom};

/// A point in time: unix seconds and nanoseconds.
pub type Time = (i64, u32);

/// One log message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1 stdout, 2 stderr (docker's stream numbers).
    pub stream: u8,
    pub time: Time,
    pub log: Vec<u8>,
}

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// Messages at or after this time (docker: none before `since`).
    pub since: Option<Time>,
    /// Messages at or before this time.
    pub until: Option<Time>,
    /// Only the last N messages of the log; None for all.
    pub tail: Option<usize>,
    /// Raw output (tty container), else docker's 8-byte frame headers.
    pub raw: bool,
}

impl Options {
    /// Whether `e` passes the stream and `since` filters.
    pub fn wants(&self, e: &Entry) -> bool {
        let stream_ok = match e.stream {
            2 => self.stderr,
            _ => self.stdout,
        };
        stream_ok && self.since.is_none_or(|s| e.time >= s)
    }

    /// Whether `e` is past `until` (the stream ends there).
    pub fn past_until(&self, e: &Entry) -> bool {
        self.until.is_some_and(|u| e.time > u)
    }

    /// `e` as sent to the client.
    pub fn encode(&self, e: &Entry, out: &mut Vec<u8>) {
        let mut payload = Vec::with_capacity(e.log.len() + 32);
        if self.timestamps {
            payload.extend_from_slice(fixed_nanos(e.time).as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(&e.log);
        if !self.raw {
            out.push(e.stream);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(&payload);
    }
}

/// Docker's `RFC3339NanoFixed`: always nine digits of fraction.
pub fn fixed_nanos((secs, nanos): Time) -> String {
    let s = pier_common::time::rfc3339(secs, 0);
    format!("{}.{nanos:09}Z", s.trim_end_matches('Z'))
}

/// `2026-11-30T10:00:00.123Z` (fraction optional) to seconds and nanos.
pub fn parse_time(s: &str) -> Option<Time> {
    let secs = pier_common::time::parse_rfc3339(s)?;
    let nanos = match s.get(19..)?.strip_prefix('.') {
        Some(frac) => {
            let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            format!("{digits:0<9}").parse().ok()?
        }
        None => 0,
    };
    Some((secs, nanos))
}

/// Docker's API timestamps: `SECONDS[.FRACTION]`; 0 or empty means none.
pub fn parse_api_time(v: &str) -> Result<Option<Time>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s
        .parse()
        .map_err(|_| format!("invalid timestamp {v:?}: give unix seconds[.nanoseconds]"))?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else if frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
        format!("{frac:0<9}").parse().unwrap_or(0)
    } else {
        return Err(format!(
            "invalid timestamp {v:?}: give unix seconds[.nanoseconds]"
        ));
    };
    Ok((secs != 0 || nanos != 0).then_some((secs, nanos)))
}

/// One line of the log file; None for a line that is not a log entry.
pub fn parse_line(line: &[u8]) -> Option<Entry> {
    #[derive(serde::Deserialize)]
    struct Raw {
        log: String,
        #[serde(default)]
        stream: String,
        #[serde(default)]
        time: String,
    }
    let raw: Raw = serde_json::from_slice(line).ok()?;
    Some(Entry {
        stream: if raw.stream == "stderr" { 2 } else { 1 },
        time: parse_time(&raw.time).unwrap_or((0, 0)),
        log: raw.log.into_bytes(),
    })
}

/// Reads a log file from an offset on: complete lines become entries, a
/// trailing partial line (the shim still writing it) is left for later.
pub struct Reader {
    file: std::fs::File,
    pending: Vec<u8>,
    /// The last read filled its chunk: more may be there at once.
    more: bool,
}

/// How much of the file one [`Reader::read_new`] takes in.
const CHUNK: u64 = 1024 * 1024;

impl Reader {
    pub fn open(path: &std::path::Path) -> std::io::Result<Reader> {
        Ok(Reader {
            file: std::fs::File::open(path)?,
            pending: Vec::new(),
            more: false,
        })
    }

    /// Positions the reader at the start of the last `n` lines.
    pub fn seek_tail(&mut self, n: usize) -> std::io::Result<()> {
        self.pending.clear();
        let len = self.file.seek(SeekFrom::End(0))?;
        if n == 0 {
            return Ok(());
        }
        let mut pos = len;
        let mut newlines = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while pos > 0 {
            let step = (buf.len() as u64).min(pos);
            pos -= step;
            self.file.seek(SeekFrom::Start(pos))?;
            let chunk = &mut buf[..step as usize];
            self.file.read_exact(chunk)?;
            for i in (0..chunk.len()).rev() {
                // The newline ending the last line does not start a line.
                if chunk[i] != b'\n' || pos + i as u64 == len - 1 {
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    self.file.seek(SeekFrom::Start(pos + i as u64 + 1))?;
                    return Ok(());
                }
            }
        }
        self.file.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    /// Whether the last [`read_new`](Self::read_new) stopped at its chunk
    /// size rather than at the end of the file.
    pub fn more(&self) -> bool {
        self.more
    }

    /// The entries written since the last call (at most a chunk's worth).
    pub fn read_new(&mut self) -> std::io::Result<Vec<Entry>> {
        let mut data = Vec::new();
        (&mut self.file).take(CHUNK).read_to_end(&mut data)?;
        self.more = data.len() as u64 == CHUNK;
        if data.is_empty() {
            return Ok(Vec::new());
        }
        self.pending.extend_from_slice(&data);
        let Some(last_nl) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(last_nl + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        Ok(complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(parse_line)
            .collect())
    }
}

/// Wakes a follower when the log file changes (inotify), or after a
/// timeout, so it can also notice the container stopping.
pub struct Changes {
    fd: Option<rustix::fd::OwnedFd>,
}

impl Changes {
    /// Watches `path`; without inotify, [`wait`](Self::wait) just sleeps.
    pub fn watch(path: &std::path::Path) -> Changes {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .ok()
            .filter(|fd| {
                inotify::add_watch(
                    fd,
                    path,
                    inotify::WatchFlags::MODIFY | inotify::WatchFlags::CLOSE_WRITE,
                )
                .is_ok()
            });
        Changes { fd }
    }

    /// Returns once the file changed or `timeout` passed.
    pub fn wait(&self, timeout: std::time::Duration) {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let Some(fd) = &self.fd else {
            std::thread::sleep(timeout);
            return;
        };
        let ts = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        if poll(&mut fds, Some(&ts)).is_err() {
            std::thread::sleep(timeout);
            return;
        }
        // Drain the events; what changed is read from the file itself.
        let mut buf = [0u8; 4096];
        while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(stream: &str, log: &str, time: &str) -> String {
        serde_json::json!({"log": log, "stream": stream, "time": time}).to_string() + "\n"
    }

    #[test]
    fn times_parse_and_print_as_docker() {
        let t = parse_time("2026-11-30T10:00:00.12Z").unwrap();
        assert_eq!(t.1, 120_000_000);
        assert_eq!(fixed_nanos(t), "2026-11-30T10:00:00.120000000Z");
        assert_eq!(parse_time("2026-11-30T10:00:00Z").unwrap().1, 0);
        assert_eq!(
            parse_api_time("1700000000.5").unwrap(),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_api_time("0").unwrap(), None);
        assert!(parse_api_time("10m").is_err());
    }

    #[test]
    fn frames_carry_stream_and_length() {
        let e = Entry {
            stream: 2,
            time: (0, 0),
            log: b"hi\n".to_vec(),
        };
        let mut out = Vec::new();
        Options::default().encode(&e, &mut out);
        assert_eq!(out, [2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
        let mut out = Vec::new();
        let o = Options {
            raw: true,
            timestamps: true,
            ..Default::default()
        };
        o.encode(&e, &mut out);
        assert_eq!(out, b"1970-01-01T00:00:00.000000000Z hi\n");
    }

    #[test]
    fn tail_and_partial_lines() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut f = tmp.reopen().unwrap();
        for i in 0..5 {
            f.write_all(line("stdout", &format!("{i}\n"), "2026-11-30T10:00:00Z").as_bytes())
                .unwrap();
        }
        let logs = |r: &mut Reader| -> Vec<String> {
            r.read_new()
                .unwrap()
                .into_iter()
                .map(|e| String::from_utf8(e.log).unwrap())
                .collect()
        };
        let mut r = Reader::open(tmp.path()).unwrap();
        r.seek_tail(2).unwrap();
        assert_eq!(logs(&mut r), ["3\n", "4\n"]);
        let mut r = Reader::open(tmp.path()).unwrap();
        r.seek_tail(0).unwrap();
        assert!(logs(&mut r).is_empty());
        let mut r = Reader::open(tmp.path()).unwrap();
        r.seek_tail(10).unwrap();
        assert_eq!(logs(&mut r).len(), 5);
        // A line being written shows once complete.
        let full = line("stderr", "late\n", "2026-11-30T10:00:01Z");
        let (a, b) = full.split_at(10);
        f.write_all(a.as_bytes()).unwrap();
        assert!(logs(&mut r).is_empty());
        f.write_all(b.as_bytes()).unwrap();
        assert_eq!(logs(&mut r), ["late\n"]);
    }

    #[test]
    fn a_log_bigger_than_a_chunk_reads_whole_in_steps() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut f = tmp.reopen().unwrap();
        let one = line("stdout", &"x".repeat(999), "2026-11-30T10:00:00Z");
        let n = (2 * CHUNK as usize) / one.len() + 3;
        for _ in 0..n {
            f.write_all(one.as_bytes()).unwrap();
        }
        let mut r = Reader::open(tmp.path()).unwrap();
        let mut got = r.read_new().unwrap().len();
        let mut reads = 1;
        while r.more() {
            got += r.read_new().unwrap().len();
            reads += 1;
        }
        assert_eq!(got, n);
        assert!(reads >= 3, "{reads}");
    }

    #[test]
    fn changes_wake_on_writes() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let changes = Changes::watch(tmp.path());
        assert!(changes.fd.is_some(), "no inotify watch");
        let mut f = tmp.reopen().unwrap();
        f.write_all(b"x").unwrap();
        // Returns on the write (the long timeout is only a hang guard).
        changes.wait(std::time::Duration::from_secs(600));
    }
}
