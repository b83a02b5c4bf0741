//! `linux.resources` for the v1 hierarchies where the container's cgroup
//! is not at its common path (see `hierarchy`): libcgroups' v1 manager
//! takes one path for every controller, and always writes the devices
//! controller too, so these few controllers are written here. Only
//! hierarchies made of these controllers (and named ones) are placed
//! apart; see [`nestable`].

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::hierarchy::Hierarchy;
use super::split::KNOWN;
use crate::{Error, Result};

/// The controllers written here.
pub const CONTROLLERS: &[&str] = &["memory", "pids", "cpuacct"];

/// Whether the container's cgroup may sit at its own path in `h`: the
/// unified hierarchy, named ones (`name=systemd`) and those whose
/// controllers are all in [`CONTROLLERS`].
pub fn nestable(h: &Hierarchy) -> bool {
    h.is_unified()
        || h.options
            .iter()
            .filter(|o| KNOWN.contains(&o.as_str()))
            .all(|c| CONTROLLERS.contains(&c.as_str()))
}

fn write(dir: &Path, file: &str, value: impl ToString) -> Result<()> {
    let value = value.to_string();
    let path = dir.join(file);
    fs::write(&path, &value)
        .map_err(|e| Error::Cgroup(format!("writing {value} to {}: {e}", path.display())))
}

/// The resources of `h`'s controllers, into the container's `dir` there.
pub fn apply(h: &Hierarchy, dir: &Path, res: &LinuxResources) -> Result<()> {
    if h.has("memory") {
        if let Some(m) = res.memory() {
            memory(dir, m)?;
        }
    }
    if h.has("pids") {
        if let Some(p) = res.pids() {
            let limit = p.limit();
            if limit > 0 {
                write(dir, "pids.max", limit)?;
            } else {
                write(dir, "pids.max", "max")?;
            }
        }
    }
    Ok(())
}

/// The memory controller's files. The memory+swap limit may never be
/// below the memory limit, so of the two the one that grows is written
/// first.
fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let (limit, swap) = (m.limit(), m.swap());
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            let current: i64 = fs::read_to_string(dir.join("memory.limit_in_bytes"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(i64::MAX);
            if swap == -1 || current < swap {
                write(dir, "memory.memsw.limit_in_bytes", swap)?;
                write(dir, "memory.limit_in_bytes", limit)?;
            } else {
                write(dir, "memory.limit_in_bytes", limit)?;
                write(dir, "memory.memsw.limit_in_bytes", swap)?;
            }
        }
        (Some(limit), None) => write(dir, "memory.limit_in_bytes", limit)?,
        (None, Some(swap)) => write(dir, "memory.memsw.limit_in_bytes", swap)?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", r)?;
    }
    if let Some(k) = m.kernel() {
        write(dir, "memory.kmem.limit_in_bytes", k)?;
    }
    if let Some(k) = m.kernel_tcp() {
        write(dir, "memory.kmem.tcp.limit_in_bytes", k)?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidConfig(format!(
                "linux.resources.memory.swappiness {s} is above 100"
            )));
        }
        write(dir, "memory.swappiness", s)?;
    }
    if let Some(d) = m.disable_oom_killer() {
        write(dir, "memory.oom_control", u8::from(d))?;
    }
    if let Some(h) = m.use_hierarchy() {
        write(dir, "memory.use_hierarchy", u8::from(h))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn h(opts: &[&str]) -> Hierarchy {
        Hierarchy {
            options: opts.iter().map(|s| (*s).to_owned()).collect(),
            mount: PathBuf::from("/x"),
        }
    }

    #[test]
    fn which_hierarchies_may_be_apart() {
        assert!(nestable(&h(&["rw", "memory"])));
        assert!(nestable(&h(&["rw", "xattr", "name=systemd"])));
        assert!(nestable(&h(&[])));
        assert!(nestable(&h(&["rw", "pids"])));
        assert!(!nestable(&h(&["rw", "cpu", "cpuacct"])));
        assert!(!nestable(&h(&["rw", "devices"])));
    }

    #[test]
    fn memory_files_in_order() {
        let t = tempfile::tempdir().unwrap();
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1000, "swap": 2000, "reservation": 500,
                           "swappiness": 10, "disableOOMKiller": true},
                "pids": {"limit": 0}}"#,
        )
        .unwrap();
        apply(&h(&["memory", "pids"]), t.path(), &res).unwrap();
        let read = |f: &str| fs::read_to_string(t.path().join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), "1000");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "2000");
        assert_eq!(read("memory.soft_limit_in_bytes"), "500");
        assert_eq!(read("memory.swappiness"), "10");
        assert_eq!(read("memory.oom_control"), "1");
        assert_eq!(read("pids.max"), "max");
        // A hierarchy without memory gets none of it.
        let other = tempfile::tempdir().unwrap();
        apply(&h(&["name=systemd"]), other.path(), &res).unwrap();
        assert_eq!(fs::read_dir(other.path()).unwrap().count(), 0);
        // Bad values and unwritable files are reported with the file.
        let bad: LinuxResources =
            serde_json::from_str(r#"{"memory": {"swappiness": 101}}"#).unwrap();
        assert!(apply(&h(&["memory"]), t.path(), &bad).is_err());
        let missing = t.path().join("no-such-dir");
        let err = apply(&h(&["memory"]), &missing, &res).unwrap_err();
        assert!(err.to_string().contains("memory."), "{err}");
    }
}
