//! Content digests of context files, remembered by what the kernel says
//! about the file: (device, inode, size, mtime, ctime), all to the
//! nanosecond. A context read in place (`BuildOptions::context_in_place`)
//! is hashed through it, so a build where nothing changed reads no file
//! content. The digests only save the work of hashing: step keys are
//! still made of the contents, never of times.
//!
//! Any write to a file, a rename over it, a `chmod`/`chown` or a `touch`
//! changes its ctime (which no one can set back), so a stale entry is
//! never matched, with one exception that is guarded against: a file
//! written twice within one tick of the kernel's clock keeps the same
//! times. An entry is therefore remembered only when the file's ctime is
//! older than [`RACY_SECS`] before it was hashed (git's "racily clean"
//! rule); a file changed just before the build is hashed again next time.
//!
//! The cache is one file (`<cache_dir>/hashcache`), loaded once per
//! process and written atomically (a new file renamed over the old) after
//! a build that hashed something; it ends with a SHA-256 of its content,
//! and one that does not check out is ignored (every file hashed again).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// How long (seconds) a file must have been left alone before its digest
/// is remembered: more than a tick of any filesystem's timestamps.
pub const RACY_SECS: i64 = 3;
/// At most this many entries are kept; past it the cache starts again.
const MAX_ENTRIES: usize = 500_000;
const MAGIC: &[u8; 8] = b"PIERHC1\n";
const RECORD: usize = 8 * 7 + 32;

/// What identifies a file's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileKey {
    pub fn of(md: &fs::Metadata) -> FileKey {
        FileKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }

    fn to_bytes(self, out: &mut Vec<u8>) {
        for v in [
            self.dev,
            self.ino,
            self.size,
            self.mtime.0 as u64,
            self.mtime.1 as u64,
            self.ctime.0 as u64,
            self.ctime.1 as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn from_bytes(b: &[u8]) -> FileKey {
        let v = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        FileKey {
            dev: v(0),
            ino: v(1),
            size: v(2),
            mtime: (v(3) as i64, v(4) as i64),
            ctime: (v(5) as i64, v(6) as i64),
        }
    }
}

/// The SHA-256 of a regular file's content, read through one descriptor
/// (the last component is never followed), with the file's key before and
/// after the reading; a file that changed meanwhile is read again, and an
/// error after a few tries.
pub fn hash_file(path: &Path) -> io::Result<(FileKey, [u8; 32])> {
    for _ in 0..3 {
        let mut f = fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let before = FileKey::of(&f.metadata()?);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let after = FileKey::of(&f.metadata()?);
        if before == after {
            return Ok((after, h.finalize().into()));
        }
    }
    Err(io::Error::other(format!(
        "{} keeps changing while the build reads it: build again once it is written",
        path.display()
    )))
}

/// The digests of one cache file.
pub struct HashCache {
    path: PathBuf,
    map: Mutex<HashMap<FileKey, [u8; 32]>>,
    dirty: Mutex<bool>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HashCache {
    /// The cache kept in `path`, loaded the first time this process asks
    /// for it; later calls share it.
    pub fn open(path: &Path) -> Arc<HashCache> {
        static OPEN: Mutex<Vec<Arc<HashCache>>> = Mutex::new(Vec::new());
        let mut open = lock(&OPEN);
        if let Some(c) = open.iter().find(|c| c.path == path) {
            return c.clone();
        }
        let c = Arc::new(HashCache {
            path: path.to_path_buf(),
            map: Mutex::new(load(path).unwrap_or_default()),
            dirty: Mutex::new(false),
        });
        open.push(c.clone());
        c
    }

    /// The digest of the regular file at `path` whose metadata (lstat)
    /// is `md`: from the cache when `md` matches an entry, else read and
    /// remembered (unless the file changed too recently to be sure).
    /// Also returns the key the digest belongs to.
    pub fn digest(&self, path: &Path, md: &fs::Metadata) -> io::Result<(FileKey, [u8; 32])> {
        let key = FileKey::of(md);
        if let Some(d) = lock(&self.map).get(&key) {
            return Ok((key, *d));
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (key, d) = hash_file(path)?;
        if key.ctime.0 < started - RACY_SECS && key.mtime.0 < started - RACY_SECS {
            let mut map = lock(&self.map);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, d);
            *lock(&self.dirty) = true;
        }
        Ok((key, d))
    }

    /// How many digests it holds.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the cache if something was added since it was last written.
    pub fn save(&self) -> io::Result<()> {
        let mut dirty = lock(&self.dirty);
        if !*dirty {
            return Ok(());
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        {
            let map = lock(&self.map);
            out.reserve(map.len() * RECORD + 32);
            for (k, d) in map.iter() {
                k.to_bytes(&mut out);
                out.extend_from_slice(d);
            }
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self
            .path
            .with_file_name(format!(".{name}.{}-{seq}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&out)?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io::Error::new(
                e.kind(),
                format!(
                    "writing the build's hash cache {}: {e}",
                    self.path.display()
                ),
            )
        })?;
        *dirty = false;
        Ok(())
    }
}

/// The entries of a cache file; None when it is missing or does not check
/// out (then every file is hashed again).
fn load(path: &Path) -> Option<HashMap<FileKey, [u8; 32]>> {
    let b = fs::read(path).ok()?;
    if b.len() < MAGIC.len() + 32 || &b[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (body, sum) = b.split_at(b.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let records = &body[MAGIC.len()..];
    if records.len() % RECORD != 0 {
        return None;
    }
    Some(
        records
            .chunks_exact(RECORD)
            .map(|r| {
                let d: [u8; 32] = r[56..].try_into().expect("32 bytes");
                (FileKey::from_bytes(&r[..56]), d)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set_mtime(p: &Path, secs: u64) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(t))
            .unwrap();
    }

    /// Makes `p`'s ctime old enough to be remembered: not settable, so the
    /// test waits it out.
    fn wait_out_racy() {
        std::thread::sleep(std::time::Duration::from_secs(RACY_SECS as u64 + 1));
    }

    #[test]
    fn digests_are_remembered_across_loads_and_changes_are_seen() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        fs::write(&f, "aaaa").unwrap();
        set_mtime(&f, 1_000_000);
        wait_out_racy();
        let path = d.path().join("cache/hashcache");
        let c = HashCache::open(&path);
        let md = fs::symlink_metadata(&f).unwrap();
        let (_, da) = c.digest(&f, &md).unwrap();
        assert_eq!(da, <[u8; 32]>::from(Sha256::digest(b"aaaa")));
        assert_eq!(c.len(), 1);
        c.save().unwrap();
        // As after a restart: the file is read back, entries and all.
        let again = load(&path).unwrap();
        assert_eq!(again.get(&FileKey::of(&md)), Some(&da));

        // Same size, same mtime, new content: the ctime differs.
        fs::write(&f, "bbbb").unwrap();
        set_mtime(&f, 1_000_000);
        let md2 = fs::symlink_metadata(&f).unwrap();
        assert_eq!((md2.size(), md2.mtime()), (md.size(), md.mtime()));
        let (_, db) = c.digest(&f, &md2).unwrap();
        assert_eq!(db, <[u8; 32]>::from(Sha256::digest(b"bbbb")));
        // Changed just now: not remembered (it could change again within
        // the same clock tick).
        assert_eq!(c.len(), 1);

        // A mode change is a new ctime too (the step key has the mode
        // itself).
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let md3 = fs::symlink_metadata(&f).unwrap();
        assert_ne!(FileKey::of(&md3), FileKey::of(&md2));

        // A damaged file is not used.
        let mut b = fs::read(&path).unwrap();
        let last = b.len() - 40;
        b[last] ^= 1;
        fs::write(&path, &b).unwrap();
        assert!(load(&path).is_none());
    }

    #[test]
    fn symlinks_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("l")).unwrap();
        assert!(hash_file(&d.path().join("l")).is_err());
    }
}
