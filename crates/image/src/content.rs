//! Content-addressed blobs: `content/blobs/sha256/<hex>`.
//!
//! A blob is written to `content/ingest/<random>` while it is hashed, synced,
//! checked against the digest it should have, and only then renamed into
//! place, so a blob under `blobs/` is always complete and verified. Two
//! writers of the same blob race harmlessly: rename is atomic and both carry
//! the same bytes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{io_err, Error, Result};

pub(crate) struct Content {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl Content {
    pub(crate) fn open(root: &Path) -> Result<Content> {
        let blobs = root.join("content/blobs/sha256");
        let ingest = root.join("content/ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(|e| io_err(format!("creating {}", d.display()), e))?;
        }
        Ok(Content { blobs, ingest })
    }

    pub(crate) fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    pub(crate) fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// Where the blob `sha256:<hex>` lives (whether or not it exists).
    pub(crate) fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs.join(hex_of(digest)?))
    }

    pub(crate) fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.path(digest)?;
        fs::read(&p).map_err(|e| io_err(format!("reading blob {digest} ({})", p.display()), e))
    }

    pub(crate) fn exists(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Starts writing a blob of unknown digest.
    pub(crate) fn ingest(&self) -> Result<Ingest> {
        let path = self.ingest.join(format!("{:016x}", rand::random::<u64>()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(format!("creating ingest file {}", path.display()), e))?;
        Ok(Ingest {
            file,
            hasher: Sha256::new(),
            size: 0,
            path,
            blobs: self.blobs.clone(),
            done: false,
        })
    }

    /// Stores `bytes`, returning (digest, size).
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<(String, u64)> {
        let mut w = self.ingest()?;
        w.write_all(bytes)
            .map_err(|e| io_err(format!("writing {}", w.path.display()), e))?;
        w.commit(None)
    }
}

/// "sha256:<64 hex>" -> "<64 hex>", refusing anything else (the hex becomes
/// a file name).
pub(crate) fn hex_of(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(h) if crate::reference::is_full_hex_id(h) => Ok(h),
        _ => Err(Error::InvalidLayer(format!(
            "{digest:?} is not a sha256 digest (sha256:<64 lower-case hex>)"
        ))),
    }
}

/// Asks the kernel to start writing a file range back (without waiting):
/// spreads the I/O of a large write over the time it takes, instead of
/// leaving it all to the final fsync/syncfs.
pub(crate) fn start_writeback(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range on an open fd; only a hint, errors ignored.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            offset as i64,
            len as i64,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

/// A blob being written is handed to writeback in steps of this many bytes.
const INGEST_WRITEBACK_STEP: u64 = 8 << 20;

/// A blob being written: hashes what passes through, removes itself unless
/// committed.
pub(crate) struct Ingest {
    file: File,
    hasher: Sha256,
    size: u64,
    path: PathBuf,
    blobs: PathBuf,
    done: bool,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        let before = self.size;
        self.size += n as u64;
        // Start writing back every step, so the final sync has little left.
        const STEP: u64 = INGEST_WRITEBACK_STEP;
        if before / STEP != self.size / STEP {
            start_writeback(&self.file, (self.size / STEP - 1) * STEP, STEP);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Ingest {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Starts writing back what `write` has not handed to writeback yet
    /// (the last partial step): for a writer that is done while others
    /// still work, so the sync that commits the blob has less to wait for.
    pub(crate) fn start_tail_writeback(&self) {
        let start = self.size / INGEST_WRITEBACK_STEP * INGEST_WRITEBACK_STEP;
        start_writeback(&self.file, start, 0);
    }

    /// Syncs, verifies against `expected` when given, and moves the blob into
    /// place. Returns (digest, size).
    pub(crate) fn commit(mut self, expected: Option<&str>) -> Result<(String, u64)> {
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if let Some(want) = expected {
            if want != digest {
                return Err(Error::InvalidLayer(format!(
                    "content digest mismatch: expected {want}, got {digest} \
                     ({} bytes); the data was corrupted in transit, try again",
                    self.size
                )));
            }
        }
        self.file
            .sync_all()
            .map_err(|e| io_err(format!("syncing {}", self.path.display()), e))?;
        let dest = self.blobs.join(hex_of(&digest)?);
        fs::rename(&self.path, &dest).map_err(|e| {
            io_err(
                format!("moving {} to {}", self.path.display(), dest.display()),
                e,
            )
        })?;
        self.done = true;
        crate::meta::sync_dir(&self.blobs)?;
        Ok((digest, self.size))
    }
}

impl Ingest {
    /// Verifies like `commit` but neither syncs nor moves the blob: for a
    /// batch of blobs made durable by one `syncfs` before they are placed.
    pub(crate) fn finish(mut self, expected: Option<&str>) -> Result<Pending> {
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if let Some(want) = expected {
            if want != digest {
                return Err(Error::InvalidLayer(format!(
                    "content digest mismatch: expected {want}, got {digest} \
                     ({} bytes); the data was corrupted in transit, try again",
                    self.size
                )));
            }
        }
        hex_of(&digest)?;
        self.done = true;
        Ok(Pending {
            path: std::mem::take(&mut self.path),
            blobs: self.blobs.clone(),
            digest,
            placed: false,
        })
    }
}

/// A verified blob still in `ingest/`, not yet synced; removed on drop
/// unless placed.
pub(crate) struct Pending {
    path: PathBuf,
    blobs: PathBuf,
    pub digest: String,
    placed: bool,
}

impl Pending {
    /// Moves the blob into place. Callers have synced the filesystem since
    /// it was written (and sync the blobs directory afterwards).
    pub(crate) fn place(mut self) -> Result<()> {
        let dest = self.blobs.join(hex_of(&self.digest)?);
        fs::rename(&self.path, &dest).map_err(|e| {
            io_err(
                format!("moving {} to {}", self.path.display(), dest.display()),
                e,
            )
        })?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}
