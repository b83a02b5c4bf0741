//! Docker's json-file log format: one JSON object per line of output,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`. A line longer
//! than [`MAX_LINE`] is split, as Docker does.

use std::fs::File;
use std::io::{self, Write};

pub const MAX_LINE: usize = 16 * 1024;

pub struct JsonLog {
    file: File,
    /// Partial last line per stream (index 0 stdout, 1 stderr).
    pending: [Vec<u8>; 2],
}

impl JsonLog {
    pub fn new(file: File) -> Self {
        JsonLog {
            file,
            pending: [Vec::new(), Vec::new()],
        }
    }

    /// Appends output of `stream` (1 stdout, 2 stderr); complete lines are
    /// written at once, a trailing partial line waits for its newline.
    pub fn write(&mut self, stream: u8, mut data: &[u8]) -> io::Result<()> {
        let idx = usize::from(stream == crate::protocol::STDERR);
        let mut out = Vec::new();
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.pending[idx]);
            line.extend_from_slice(&data[..=nl]);
            encode(&mut out, stream, &line);
            data = &data[nl + 1..];
        }
        self.pending[idx].extend_from_slice(data);
        while self.pending[idx].len() >= MAX_LINE {
            let rest = self.pending[idx].split_off(MAX_LINE);
            let chunk = std::mem::replace(&mut self.pending[idx], rest);
            encode(&mut out, stream, &chunk);
        }
        self.file.write_all(&out)
    }

    /// Writes out partial lines (at exit).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        for (idx, stream) in [(0, crate::protocol::STDOUT), (1, crate::protocol::STDERR)] {
            let line = std::mem::take(&mut self.pending[idx]);
            if !line.is_empty() {
                encode(&mut out, stream, &line);
            }
        }
        self.file.write_all(&out)?;
        self.file.flush()
    }
}

fn encode(out: &mut Vec<u8>, stream: u8, line: &[u8]) {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        log: &'a str,
        stream: &'a str,
        time: String,
    }
    let text = String::from_utf8_lossy(line);
    let entry = Entry {
        log: &text,
        stream: if stream == crate::protocol::STDERR {
            "stderr"
        } else {
            "stdout"
        },
        time: pier_common::time::now_rfc3339(),
    };
    // Serializing a struct of strings cannot fail.
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}

/// One parsed log line.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(f: &mut File) -> Vec<LogEntry> {
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_partials() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut log = JsonLog::new(tmp.reopen().unwrap());
        log.write(1, b"hello\nwor").unwrap();
        log.write(2, b"oops\n").unwrap();
        log.write(1, b"ld\ntail").unwrap();
        log.flush().unwrap();
        let got = entries(&mut tmp.reopen().unwrap());
        let lines: Vec<(&str, &str)> = got
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                ("stdout", "hello\n"),
                ("stderr", "oops\n"),
                ("stdout", "world\n"),
                ("stdout", "tail")
            ]
        );
        assert!(got[0].time.ends_with('Z'));
    }

    #[test]
    fn long_lines_are_split() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut log = JsonLog::new(tmp.reopen().unwrap());
        log.write(1, &vec![b'x'; MAX_LINE + 10]).unwrap();
        log.flush().unwrap();
        let got = entries(&mut tmp.reopen().unwrap());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].log.len(), MAX_LINE);
        assert_eq!(got[1].log.len(), 10);
    }
}
