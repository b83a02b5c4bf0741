//! The build cache: `<cache_dir>/keys/<key>.json` records what a step
//! made (its layer's diff ID, or none for config steps and empty layers)
//! and when, written atomically so it survives pierd restarts and
//! crashes. The layers themselves live in the image store; a record
//! whose snapshot is gone is a miss.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub diff_id: Option<String>,
    pub created: String,
}

pub struct Cache {
    keys: PathBuf,
    tmp: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache, Error> {
        let keys = dir.join("keys");
        let tmp = dir.join("tmp");
        for d in [&keys, &tmp] {
            fs::create_dir_all(d).map_err(|e| Error::Io {
                what: format!("creating the build cache directory {}", d.display()),
                source: e,
            })?;
        }
        clean_leftovers(&tmp);
        Ok(Cache { keys, tmp })
    }

    /// Where steps make their scratch directories.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn get(&self, key: &str) -> Option<Record> {
        let b = fs::read(self.keys.join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&b).ok()
    }

    pub fn put(&self, key: &str, diff_id: Option<&str>, created: &str) -> Result<(), Error> {
        let rec = Record {
            diff_id: diff_id.map(str::to_owned),
            created: created.to_owned(),
        };
        let path = self.keys.join(format!("{key}.json"));
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmp = self
            .keys
            .join(format!(".{key}.{}-{seq}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(&rec).expect("a record serialises"))?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::Io {
                what: format!("writing the build cache record {}", path.display()),
                source: e,
            }
        })
    }
}

/// Removes step directories a build of a process that is gone (a pierd
/// that crashed or was killed mid-build) left behind, unmounting what is
/// still mounted under them first. Directories are named `<pid>-...`.
fn clean_leftovers(tmp: &Path) {
    let Ok(rd) = fs::read_dir(tmp) else {
        return;
    };
    let me = std::process::id();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = e.path();
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(unescape))
            .filter(|m| Path::new(m).starts_with(&dir))
            .collect();
        // Deepest first.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        let mut ok = true;
        for m in &mounts {
            ok &= pier_image::mount::unmount(Path::new(m)).is_ok();
        }
        if ok {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_a_dead_process_are_removed_and_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join("tmp");
        // pid 0 is never a process's; our own pid is alive.
        let dead = tmp.join("0-1-123");
        let live = tmp.join(format!("{}-1-123", std::process::id()));
        for p in [&dead, &live] {
            fs::create_dir_all(p.join("upper/x")).unwrap();
        }
        let mounted = tmp.join("0-2-123");
        fs::create_dir_all(mounted.join("m")).unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("keep"), "k").unwrap();
        pier_image::mount::mount_overlay(
            std::slice::from_ref(&src),
            Path::new(""),
            Path::new(""),
            &mounted.join("m"),
        )
        .unwrap();
        Cache::open(d.path()).unwrap();
        assert!(!dead.exists() && !mounted.exists());
        assert!(live.exists());
        assert_eq!(fs::read_to_string(src.join("keep")).unwrap(), "k");
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
