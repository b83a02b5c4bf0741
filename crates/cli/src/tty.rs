//! The terminal side of `run -t`, `exec -t` and `attach`: raw mode while a
//! container's terminal is attached, its window size following ours
//! (SIGWINCH), stdin copied to the stream, the output raw (with a
//! terminal) or split from Docker's multiplexed stream.

use crate::client::Client;
use hyper::Method;
use std::io::{IsTerminal, Read};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Our terminal in raw mode until dropped.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; None when stdin is no terminal.
    pub fn enable() -> Option<RawMode> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: tcgetattr/tcsetattr on fd 0 with termios values we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            // Keep output processing: our stdout shares the terminal.
            raw.c_oflag = saved.c_oflag;
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes read in `enable`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// Our terminal's size (rows, columns), from stdout or stdin.
pub fn size() -> Option<(u16, u16)> {
    for fd in [1, 0] {
        // SAFETY: TIOCGWINSZ fills in a winsize we own.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
                return Some((ws.ws_row, ws.ws_col));
            }
        }
    }
    None
}

/// Sets the remote terminal's size to ours now and on every SIGWINCH;
/// never returns (run it next to the stream). `path` is
/// `/containers/ID/resize` or `/exec/ID/resize`.
async fn follow_size(client: &Client, path: &str) {
    let resize = |h: u16, w: u16| {
        let p = format!("{path}?h={h}&w={w}");
        async move { client.call(Method::POST, &p).await.is_ok() }
    };
    if let Some((h, w)) = size() {
        // The process may not be registered yet right after start.
        for _ in 0..10 {
            if resize(h, w).await {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    if let Ok(mut winch) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    {
        while winch.recv().await.is_some() {
            if let Some((h, w)) = size() {
                resize(h, w).await;
            }
        }
    }
    std::future::pending::<()>().await
}

/// Docker's default detach keys: ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// `--detach-keys` as docker reads it: keys separated by commas, each a
/// single character or `ctrl-X` (X a letter, `@`, `[`, `\`, `]`, `^` or
/// `_`); empty means the default.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let bad = || format!("Invalid detach keys ({s}) provided");
    s.split(',')
        .map(|k| {
            let k = k.trim();
            match k.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => Ok(c - b'a' + 1),
                        b'@' => Ok(0),
                        b'[' | b'\\' | b']' | b'^' | b'_' => Ok(c - b'[' + 27),
                        _ => Err(bad()),
                    }
                }
                None if k.len() == 1 => Ok(k.as_bytes()[0]),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Where a stream of keys stands against the detach keys.
#[derive(Debug, Default)]
struct DetachMatch {
    matched: usize,
}

impl DetachMatch {
    /// Whether `b` completes `keys`.
    fn feed(&mut self, keys: &[u8], b: u8) -> bool {
        if keys.is_empty() {
            return false;
        }
        if b == keys[self.matched] {
            self.matched += 1;
        } else {
            self.matched = usize::from(b == keys[0]);
        }
        if self.matched == keys.len() {
            self.matched = 0;
            return true;
        }
        false
    }
}

/// Reads our stdin on a thread of its own (a read from a terminal never
/// ends by itself, and must not hold up the exit), stopping at the
/// `detach` keys when given.
fn stdin_reader(detach: Option<Vec<u8>>) -> tokio::sync::mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 << 10];
        let mut state = DetachMatch::default();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(Some(Vec::new()));
                    return;
                }
                Ok(n) => {
                    let data = &buf[..n];
                    if let Some(keys) = &detach {
                        if data.iter().any(|&b| state.feed(keys, b)) {
                            // Detach: None.
                            let _ = tx.blocking_send(None);
                            return;
                        }
                    }
                    if tx.blocking_send(Some(data.to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The remote side closed the output.
    Closed,
    /// The user typed the detach keys.
    Detached,
}

/// Carries one attach or exec stream: our stdin to it (when `stdin`), its
/// output to our stdout/stderr (raw when `tty`, else demultiplexed),
/// raw mode and window size when `tty` (`resize_path`).
pub async fn pump<S>(
    client: &Client,
    stream: S,
    stdin: bool,
    tty: bool,
    resize_path: Option<String>,
    detach_keys: &[u8],
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let raw = if tty && stdin {
        RawMode::enable()
    } else {
        None
    };
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let input = stdin.then(|| {
        let mut rx = stdin_reader(raw.is_some().then(|| detach_keys.to_vec()));
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Some(d) if d.is_empty() => break,
                    Some(d) => {
                        if wr.write_all(&d).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        let _ = detach_tx.send(());
                        return;
                    }
                }
            }
            let _ = wr.shutdown().await;
        })
    });
    let output = async {
        if tty {
            let mut out = tokio::io::stdout();
            let mut buf = vec![0u8; 32 << 10];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 || out.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                let _ = out.flush().await;
            }
        } else {
            demux(&mut rd).await;
        }
    };
    let resize = async {
        match (&resize_path, tty) {
            (Some(p), true) => follow_size(client, p).await,
            _ => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        _ = output => Ended::Closed,
        _ = resize => Ended::Closed,
        Ok(()) = &mut detach_rx => Ended::Detached,
    };
    if let Some(input) = input {
        input.abort();
    }
    drop(raw);
    ended
}

/// Splits Docker's multiplexed stream onto our stdout and stderr.
pub async fn demux<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 << 10];
    loop {
        if rd.read_exact(&mut header).await.is_err() {
            break;
        }
        let mut len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while len > 0 {
            let n = len.min(buf.len());
            if rd.read_exact(&mut buf[..n]).await.is_err() {
                return;
            }
            let _ = match header[0] {
                2 => err.write_all(&buf[..n]).await,
                _ => out.write_all(&buf[..n]).await,
            };
            len -= n;
        }
        let _ = out.flush().await;
        let _ = err.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_dockers() {
        assert_eq!(parse_detach_keys("").unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            [0, 27, 31]
        );
        for bad in ["ctrl-", "ctrl-1", "ab", "ctrl-a,,x", "alt-a"] {
            assert_eq!(
                parse_detach_keys(bad).unwrap_err(),
                format!("Invalid detach keys ({bad}) provided")
            );
        }
    }

    #[test]
    fn detach_keys_match_across_reads_and_restart_on_a_wrong_key() {
        let keys = [0x10, 0x11];
        let mut m = DetachMatch::default();
        // ctrl-p, then something else: no detach; ctrl-p ctrl-p ctrl-q: detach.
        assert!(![0x10, b'a', 0x11].iter().any(|&b| m.feed(&keys, b)));
        assert!(!m.feed(&keys, 0x10));
        assert!(!m.feed(&keys, 0x10));
        assert!(m.feed(&keys, 0x11));
        // Three keys, split over two reads.
        let keys = [1, b'x', b'y'];
        let mut m = DetachMatch::default();
        assert!(![1u8, b'x'].iter().any(|&b| m.feed(&keys, b)));
        assert!(m.feed(&keys, b'y'));
    }
}
