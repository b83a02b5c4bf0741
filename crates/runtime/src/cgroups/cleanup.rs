//! Removing a container's cgroup: what is left in it is killed, then
//! every directory (each hierarchy's, nested and unified ones included)
//! removed, children first.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{hierarchy, is_frozen, Cgroup, CgroupState};
use crate::{Error, Result};

/// Every directory of the cgroup that exists (one per v1 hierarchy, or the
/// v2 one).
fn existing_dirs(st: &CgroupState) -> Vec<PathBuf> {
    (hierarchy::dirs(st).into_iter())
        .map(|(_, d)| d)
        .filter(|d| d.is_dir())
        .collect()
}

/// Kills what is left in the cgroup and removes its directories (done
/// here rather than by libcgroups' manager, whose construction parses
/// /proc a dozen times: this is on the hot path of every `delete`).
pub fn remove(st: &CgroupState) -> Result<()> {
    let dirs = existing_dirs(st);
    if dirs.is_empty() {
        return Ok(());
    }
    // A frozen process only dies once thawed.
    if is_frozen(st) {
        if let Ok(cg) = Cgroup::open(st) {
            let _ = cg.thaw();
        }
    }
    let mut killed = false;
    for d in &dirs {
        let mut pids = Vec::new();
        collect_pids(d, &mut pids)?;
        for pid in pids {
            killed = true;
            // SAFETY: kill(2) with integer arguments.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let mut delay = Duration::from_millis(u64::from(killed));
    for attempt in 0.. {
        let mut left = None;
        for d in &dirs {
            if let Err(e) = rmdir_tree(d) {
                left = Some((d, e));
            }
        }
        match left {
            None => return Ok(()),
            Some((d, e)) if attempt >= 12 => {
                return Err(Error::io(format!("removing cgroup {}", d.display()))(e))
            }
            Some(_) => {
                std::thread::sleep(delay);
                delay = (delay * 2).max(Duration::from_millis(1));
            }
        }
    }
    Ok(())
}

/// rmdir of a cgroup directory and the child cgroups in it (cgroupfs
/// directories hold only control files, which rmdir ignores).
fn rmdir_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path())?;
            }
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(super) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("reading {}/cgroup.procs", dir.display()))(e)),
    };
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}
