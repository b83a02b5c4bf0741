//! Unpacked layers: `snapshots/<chain-id hex>/`, one per distinct layer
//! stack position, shared by every image that uses it.
//!
//! Chain IDs as the OCI image spec defines them:
//! `chainid(L0) = diffid(L0)`, `chainid(Ln) = sha256(chainid(Ln-1) + " " + diffid(Ln))`.
//! A layer is unpacked into `snapshots/tmp-<random>/`, the filesystem is
//! synced, and the directory is renamed to its chain ID, so a half-unpacked
//! snapshot is never visible. When the chain ID is already there (another
//! import or pull won the race), the new copy is dropped and the existing
//! one reused.

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::content::hex_of;
use crate::{io_err, Result};

/// Chain IDs of a stack of diff IDs, lowest first.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let mut h = Sha256::new();
                h.update(parent.as_bytes());
                h.update(b" ");
                h.update(d.as_bytes());
                format!("sha256:{}", hex::encode(h.finalize()))
            }
        };
        out.push(id);
    }
    out
}

pub(crate) struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    pub(crate) fn open(root: &Path) -> Result<Snapshots> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
        Ok(Snapshots { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.dir.join(hex_of(chain_id)?))
    }

    /// A fresh directory to unpack into; removed on drop unless committed.
    pub(crate) fn tmp(&self) -> Result<TmpSnapshot> {
        let path = self.dir.join(format!("tmp-{:016x}", rand::random::<u64>()));
        fs::create_dir(&path).map_err(|e| io_err(format!("creating {}", path.display()), e))?;
        Ok(TmpSnapshot { path, done: false })
    }
}

pub(crate) struct TmpSnapshot {
    path: PathBuf,
    done: bool,
}

impl TmpSnapshot {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the unpacked layer the snapshot of `chain_id`; returns its path.
    pub(crate) fn commit(self, snaps: &Snapshots, chain_id: &str) -> Result<PathBuf> {
        self.commit_inner(snaps, chain_id, true)
    }

    /// As `commit`, for a caller that synced the filesystem after the
    /// layer was unpacked.
    pub(crate) fn commit_synced(self, snaps: &Snapshots, chain_id: &str) -> Result<PathBuf> {
        self.commit_inner(snaps, chain_id, false)
    }

    fn commit_inner(mut self, snaps: &Snapshots, chain_id: &str, sync: bool) -> Result<PathBuf> {
        let dest = snaps.path(chain_id)?;
        if dest.is_dir() {
            return Ok(dest); // already unpacked: ours is dropped
        }
        // One syncfs instead of an fsync per file: the content must be on
        // disk before the rename makes it visible.
        if sync {
            sync_fs(&self.path)?;
        }
        match fs::rename(&self.path, &dest) {
            Ok(()) => {
                self.done = true;
                crate::meta::sync_dir(&snaps.dir)?;
            }
            // Lost a race with another writer of the same layer.
            Err(e) if dest.is_dir() && is_exists(&e) => {}
            Err(e) => {
                return Err(io_err(
                    format!("moving {} to {}", self.path.display(), dest.display()),
                    e,
                ))
            }
        }
        Ok(dest)
    }
}

/// syncfs(2) of the filesystem holding `path`.
pub(crate) fn sync_fs(path: &Path) -> Result<()> {
    let f = fs::File::open(path).map_err(|e| io_err(format!("opening {}", path.display()), e))?;
    rustix::fs::syncfs(&f).map_err(|e| io_err(format!("syncing {}", path.display()), e.into()))
}

/// fsync(2) of every regular file and directory under `dir` (and of
/// `dir`), when there are at most `at_most` of them; false, having synced
/// nothing, when there are more (the caller then syncs the filesystem).
/// Symlinks and other entries are made durable by their directory's fsync.
pub(crate) fn sync_tree(dir: &Path, at_most: usize) -> Result<bool> {
    let mut todo = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(d) = todo.pop() {
        let entries =
            fs::read_dir(&d).map_err(|e| io_err(format!("reading {}", d.display()), e))?;
        found.push(d);
        for e in entries {
            let e = e.map_err(|e| io_err(format!("reading {}", dir.display()), e))?;
            let kind = e
                .file_type()
                .map_err(|err| io_err(format!("reading {}", e.path().display()), err))?;
            if kind.is_dir() {
                todo.push(e.path());
            } else if kind.is_file() {
                found.push(e.path());
            }
            if found.len() + todo.len() > at_most {
                return Ok(false);
            }
        }
    }
    for p in found {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| io_err(format!("opening {}", p.display()), e))?;
        f.sync_all()
            .map_err(|e| io_err(format!("syncing {}", p.display()), e))?;
    }
    Ok(true)
}

fn is_exists(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY))
}

impl Drop for TmpSnapshot {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_tree_syncs_a_small_tree_and_declines_a_large_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), "x").unwrap();
        fs::write(root.join("g"), "y").unwrap();
        std::os::unix::fs::symlink("g", root.join("link")).unwrap();
        // root, a, a/b, a/b/f, g: five to sync (the symlink is not).
        assert!(sync_tree(root, 5).unwrap());
        assert!(!sync_tree(root, 4).unwrap());
        assert!(sync_tree(&root.join("missing"), 5).is_err());
    }

    #[test]
    fn chain_ids_follow_the_oci_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        let want = hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()));
        assert_eq!(ids[1], format!("sha256:{want}"));
        assert!(chain_ids(&[]).is_empty());
    }
}
