//! A blocking reader over the chunks another thread sends: how a loader or
//! a download feeds a layer to the thread that unpacks it. The chunks are
//! `Bytes`, handed over without a copy, and read in place ([`BufRead`]).

use bytes::Bytes;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::Receiver;

/// A layer's bytes in the chunks they arrive in: a download hands its
/// receive buffers over as they are, without copying them.
pub trait Chunks: Send {
    /// The next chunk; `None` at the end.
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>>;
}

pub(crate) struct ChanReader {
    rx: Receiver<Bytes>,
    cur: Bytes,
}

impl ChanReader {
    pub(crate) fn new(rx: Receiver<Bytes>) -> Self {
        ChanReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl BufRead for ChanReader {
    /// End of stream when the sender is gone.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(c) => self.cur = c,
                Err(_) => break,
            }
        }
        Ok(&self.cur)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.cur.split_to(n.min(self.cur.len()));
    }
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = buf.len().min(have.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_chunk_in_order_then_ends() {
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(Bytes::from_static(b"hel")).unwrap();
        tx.send(Bytes::new()).unwrap();
        tx.send(Bytes::from_static(b"lo")).unwrap();
        drop(tx);
        let mut out = String::new();
        ChanReader::new(rx).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
    }

    #[test]
    fn buffered_reads_see_the_chunks_in_place() {
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(Bytes::from_static(b"ab\ncd")).unwrap();
        tx.send(Bytes::from_static(b"e\n")).unwrap();
        drop(tx);
        let lines: Vec<String> = ChanReader::new(rx).lines().map(|l| l.unwrap()).collect();
        assert_eq!(lines, ["ab", "cde"]);
    }
}
