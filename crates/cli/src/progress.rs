//! Docker's streamed JSON progress (`/images/create`, `/images/{name}/push`,
//! `/images/load`, builds): a parser that turns arbitrarily chunked bytes
//! into messages, and a renderer that prints them as the docker CLI does.
//!
//! On a terminal every layer id gets a line of its own that is rewritten in
//! place (cursor up, erase line, cursor down) with a bar and byte counts;
//! elsewhere only status changes are printed, one line each, and the byte
//! counts of "Downloading"/"Pushing" are left out.

use crate::error::CliError;
use http_body_util::BodyExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

/// One message of the stream (the fields docker's CLI looks at).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct JsonMessage {
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "progressDetail")]
    pub progress: Option<Progress>,
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    /// Older daemons' plain error string (sent alongside `errorDetail`).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub current: i64,
    #[serde(default)]
    pub total: i64,
    /// Unix time the operation started, for the time-left estimate.
    #[serde(default)]
    pub start: i64,
    #[serde(default)]
    pub hidecounts: bool,
    /// Empty means bytes.
    #[serde(default)]
    pub units: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

impl JsonMessage {
    /// The error this message reports, if it is one.
    pub fn error_message(&self) -> Option<String> {
        match (&self.error_detail, &self.error) {
            (Some(d), _) if !d.message.is_empty() => Some(d.message.clone()),
            (Some(_), Some(e)) | (None, Some(e)) => Some(e.clone()),
            (Some(_), None) => Some("the daemon reported an error without a message".into()),
            (None, None) => None,
        }
    }
}

/// The largest message kept while waiting for its end.
const MAX_MESSAGE: usize = 16 << 20;

/// Splits a byte stream into JSON messages, whatever the chunking: values
/// may be split anywhere, several may come in one chunk, separated by any
/// whitespace (docker sends "\r\n").
#[derive(Debug, Default)]
pub struct MessageParser {
    pending: Vec<u8>,
}

impl MessageParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk and returns the messages it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<JsonMessage>, String> {
        if self.pending.len() + chunk.len() > MAX_MESSAGE {
            return Err(format!(
                "the daemon sent a progress message over {} MiB: {}",
                MAX_MESSAGE >> 20,
                preview(&self.pending)
            ));
        }
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut stream =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<JsonMessage>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(m)) => {
                    consumed = stream.byte_offset();
                    out.push(m);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    return Err(format!(
                        "the daemon sent a malformed progress message ({e}): {}",
                        preview(&self.pending[consumed..])
                    ))
                }
                None => {
                    consumed = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..consumed);
        Ok(out)
    }

    /// Call at the end of the stream: an incomplete message is an error.
    pub fn finish(&self) -> Result<(), String> {
        if self.pending.iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            Err(format!(
                "the daemon's progress stream ended in the middle of a message: {}",
                preview(&self.pending)
            ))
        }
    }
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Prints messages as docker's CLI does; see the module documentation.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    width: u16,
    /// Line of each layer id shown since the last line without an id.
    lines: HashMap<String, usize>,
    now: fn() -> i64,
    /// `aux` payloads (push digests, build ids), which are not printed.
    pub aux: Vec<serde_json::Value>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl<W: Write> Renderer<W> {
    /// `tty`: whether `out` is a terminal `width` columns wide.
    pub fn new(out: W, tty: bool, width: u16) -> Self {
        Renderer {
            out,
            tty,
            width: if width == 0 { 200 } else { width },
            lines: HashMap::new(),
            now: unix_now,
            aux: Vec::new(),
        }
    }

    #[cfg(test)]
    fn with_clock(mut self, now: fn() -> i64) -> Self {
        self.now = now;
        self
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Prints one message; an error message becomes `Err(its text)`.
    pub fn show(&mut self, m: &JsonMessage) -> Result<(), String> {
        if let Some(aux) = &m.aux {
            self.aux.push(aux.clone());
            return Ok(());
        }
        let mut below = 0;
        if !m.id.is_empty() && m.progress.is_some() {
            let count = self.lines.len();
            let line = *self.lines.entry(m.id.clone()).or_insert(count);
            if line == count && self.tty {
                let _ = self.out.write_all(b"\n");
            }
            below = self.lines.len() - line;
            if self.tty && below > 0 {
                let _ = write!(self.out, "\x1b[{below}A");
            }
        } else {
            // Anything else starts a new block: the lines above are done.
            self.lines.clear();
        }
        let shown = self.display(m);
        if !m.id.is_empty() && self.tty && below > 0 {
            let _ = write!(self.out, "\x1b[{below}B");
        }
        let _ = self.out.flush();
        shown
    }

    fn display(&mut self, m: &JsonMessage) -> Result<(), String> {
        if let Some(e) = m.error_message() {
            return Err(e);
        }
        let mut endl = "";
        if self.tty && m.stream.is_empty() && m.progress.is_some() {
            let _ = self.out.write_all(b"\x1b[2K\r");
            endl = "\r";
        } else if m
            .progress
            .as_ref()
            .is_some_and(|p| p.current > 0 || p.total > 0)
        {
            // Byte counts only make sense where they can be redrawn.
            return Ok(());
        }
        if !m.id.is_empty() {
            let _ = write!(self.out, "{}: ", m.id);
        }
        // As in docker, a closed stdout does not stop the operation.
        let _ = match &m.progress {
            Some(p) if self.tty => {
                let bar = render_progress(p, self.width, (self.now)());
                write!(self.out, "{} {bar}{endl}", m.status)
            }
            _ if !m.stream.is_empty() => write!(self.out, "{}{endl}", m.stream),
            _ => writeln!(self.out, "{}{endl}", m.status),
        };
        Ok(())
    }
}

/// A progress value as docker shows it on a terminal:
/// `[=====>     ]  12.3MB/45.6MB 3s` (the bar only when wider than 110
/// columns, the time left only when wider than 50).
pub fn render_progress(p: &Progress, width: u16, now: i64) -> String {
    if p.current <= 0 && p.total <= 0 {
        return String::new();
    }
    if p.total <= 0 {
        return if p.units.is_empty() {
            format!("{:>8}", human_size(p.current))
        } else {
            format!("{} {}", p.current, p.units)
        };
    }
    let percentage = (((p.current as f64 / p.total as f64) * 100.0) as i64 / 2).min(50);
    let mut bar = String::new();
    if width > 110 {
        let filled = percentage.max(0) as usize;
        bar = format!("[{}>{}] ", "=".repeat(filled), " ".repeat(50 - filled));
    }
    let numbers = if p.hidecounts {
        String::new()
    } else if p.units.is_empty() {
        if p.current > p.total {
            format!("{:>8}", human_size(p.current))
        } else {
            format!("{:>8}/{}", human_size(p.current), human_size(p.total))
        }
    } else if p.current > p.total {
        format!("{} {}", p.current, p.units)
    } else {
        format!("{}/{} {}", p.current, p.total, p.units)
    };
    let mut left = String::new();
    if width > 50 && p.current > 0 && p.start > 0 && percentage < 50 {
        let elapsed = (now - p.start).max(0) as f64;
        let secs = elapsed / p.current as f64 * (p.total - p.current) as f64;
        left = format!(" {}", go_duration(secs.round() as u64));
    }
    bar + &numbers + &left
}

/// Whole seconds as Go prints a rounded `time.Duration`: "0s", "45s",
/// "1m30s", "2h0m5s".
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Sizes with 4 significant digits and decimal units, as the progress
/// display prints them ("33.28kB", "3MB", "1.064MB").
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", four_significant(v), UNITS[i])
}

/// `v` (0 <= v < 1000, or larger in the last unit) with at most four
/// significant digits and no trailing zeros, like Go's `%.4g`.
fn four_significant(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // The exponent after rounding to four digits decides the decimals.
    let sci = format!("{v:.3e}");
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if !(-4..4).contains(&exp) {
        return sci;
    }
    let decimals = (3 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Where progress goes: stdout, as a terminal or not, or nowhere (`-q`).
pub struct Output {
    pub tty: bool,
    pub width: u16,
    pub quiet: bool,
}

impl Output {
    /// stdout as it is; `quiet` discards everything.
    pub fn stdout(quiet: bool) -> Self {
        let stdout = std::io::stdout();
        let tty = stdout.is_terminal();
        let width = if tty {
            rustix::termios::tcgetwinsize(&stdout).map_or(0, |w| w.ws_col)
        } else {
            0
        };
        Output { tty, width, quiet }
    }
}

/// Reads a daemon's streamed progress answer to the end and prints it; an
/// error in the stream becomes an error with docker's exit code 1. Returns
/// the `aux` payloads.
pub async fn display_response(
    resp: hyper::Response<hyper::body::Incoming>,
    output: &Output,
) -> Result<Vec<serde_json::Value>, CliError> {
    let fail = |message: String| CliError {
        message,
        code: 1,
        status: None,
    };
    let sink: Box<dyn Write> = if output.quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    let mut renderer = Renderer::new(sink, output.tty && !output.quiet, output.width);
    let mut parser = MessageParser::new();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| fail(format!("reading the daemon's progress stream: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for m in parser.push(&data).map_err(fail)? {
            renderer.show(&m).map_err(fail)?;
        }
    }
    parser.finish().map_err(fail)?;
    Ok(renderer.aux)
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
