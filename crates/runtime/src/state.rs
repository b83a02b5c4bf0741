//! The on-disk state of a container (`<root>/<id>/state.json`), container
//! id validation, process start times and RFC 3339 timestamps.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateFile {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the container was created; a
    /// different value later means the pid was reused.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup (None: not managed, e.g. an old state file).
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::CgroupState>,
    /// No mount namespace: the rootfs mounts live in the caller's
    /// namespace and `delete` unmounts them.
    #[serde(default)]
    pub host_mounts: bool,
}

/// Container ids: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let mut chars = id.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if !ok || id.len() > 1024 {
        return Err(Error::InvalidConfig(format!("invalid container id {id:?}")));
    }
    Ok(())
}

/// Process state letter and start time parsed from /proc/<pid>/stat.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // comm may contain spaces and parentheses: split at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state come fields 4..; starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

pub fn proc_stat(pid: i32) -> io::Result<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&s).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc stat"))
}

/// Writes `data` to `dir/name` atomically: temp file, rename. Readers see
/// the old or the new file, never a partial one. No fsync: runtime state
/// describes live processes, which a crash ends anyway (it belongs on a
/// tmpfs like /run), and two fsyncs cost more than the rest of `create`
/// on a disk-backed root.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
    }
    fs::rename(&tmp, dir.join(name))
}

pub fn load(dir: &Path) -> io::Result<StateFile> {
    let data = fs::read(dir.join(STATE_FILE))?;
    serde_json::from_slice(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn save(dir: &Path, s: &StateFile) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(s).map_err(io::Error::other)?;
    write_atomic(dir, STATE_FILE, &data)
}

pub use pier_common::time::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3", "0", "A.b"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", "-a", ".a", "_a", "a/b", "a b", "..", "a\0", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn stat_parsing() {
        let s = "1234 (my (odd) comm) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(s), Some(('S', 987654)));
        assert_eq!(parse_stat("1 (x) Z"), None);
        let (_, me) = proc_stat(std::process::id() as i32).unwrap();
        assert!(me > 0);
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "f", b"one").unwrap();
        write_atomic(d.path(), "f", b"two").unwrap();
        assert_eq!(fs::read(d.path().join("f")).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
