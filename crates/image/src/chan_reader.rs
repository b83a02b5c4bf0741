//! A blocking reader over the chunks another thread sends: how a loader or
//! a download feeds a layer to the thread that unpacks it.

use std::io::{self, Read};
use std::sync::mpsc::Receiver;

pub(crate) struct ChanReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChanReader {
    pub(crate) fn new(rx: Receiver<Vec<u8>>) -> Self {
        ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChanReader {
    /// End of stream when the sender is gone.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_chunk_in_order_then_ends() {
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(b"hel".to_vec()).unwrap();
        tx.send(Vec::new()).unwrap();
        tx.send(b"lo".to_vec()).unwrap();
        drop(tx);
        let mut out = String::new();
        ChanReader::new(rx).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
    }
}
