//! cgroups through libcgroups: where a container's cgroup lives, placing the
//! init in it, `linux.resources`, the freezer (pause/resume), pids (ps,
//! kill --all), stats (events) and OOM kills.
//!
//! Hosts: on cgroup v1 and hybrid hosts (v1 controllers, maybe an empty
//! cgroup2 at /sys/fs/cgroup/unified) the container joins every hierarchy,
//! the unified one included, as runc 1.1 does (`hierarchy`), and
//! libcgroups' v1 manager writes the resources; on pure v2 hosts its v2
//! manager does everything. The state records the path *inside* the
//! hierarchy ("/a/b"), plus, on v1, the hierarchies where it differs (a
//! relative path under a caller whose memory, pids or cpuacct cgroup is
//! elsewhere): those few controllers are written (`v1_write`) and read
//! (`v1_stats`) here. Where a path comes from: `paths`; removal:
//! `cleanup`.
//!
//! Devices: on v1 the devices controller's allow/deny lists; on pure v2
//! an eBPF program (BPF_CGROUP_DEVICE) attached to the container's cgroup
//! by libcgroups' `cgroupsv2_devices` feature when `linux.resources` is
//! applied, or by `v2_devices` where libcgroups cannot raise
//! RLIMIT_MEMLOCK. Both start from "deny all", then the spec's rules, then
//! the default devices every container gets (as runc appends them).
//! Hybrid hosts use the v1 controller only, as runc does.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libcgroups::common::{
    self as lc, AnyCgroupManager, CgroupManager, CgroupSetup, ControllerOpt, FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod cleanup;
mod hierarchy;
mod paths;
mod split;
mod v1_stats;
mod v1_write;
mod v2_devices;

use cleanup::collect_pids;
pub use cleanup::remove;
pub use hierarchy::dir;
pub use paths::resolve;
pub use v1_stats::read_stats as read_v1_stats;

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// v1 controllers (legacy or hybrid host).
    V1,
    /// Pure cgroup v2 (unified).
    V2,
}

/// Default cgroup root.
pub const ROOT: &str = "/sys/fs/cgroup";

/// The host's cgroup layout (detected once per process).
pub fn host_mode() -> Result<Mode> {
    static MODE: OnceLock<std::result::Result<Mode, String>> = OnceLock::new();
    MODE.get_or_init(|| match lc::get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => Ok(Mode::V2),
        Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid) => Ok(Mode::V1),
        Err(e) => Err(format!("detecting the cgroup layout: {e}")),
    })
    .clone()
    .map_err(Error::Cgroup)
}

/// What state.json records of a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    /// Path inside the hierarchy, absolute ("/pier/abc").
    pub path: PathBuf,
    pub mode: Mode,
    /// v1: hierarchies (by mount point) where the container's path is not
    /// `path` ("/sys/fs/cgroup/memory" -> "/process_api/x/abc").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nested: BTreeMap<PathBuf, PathBuf>,
}

/// Mount point of a v1 controller ("/sys/fs/cgroup/memory"), from
/// /proc/self/mountinfo (parsed once per process).
pub fn v1_mount(controller: &str) -> Option<PathBuf> {
    hierarchy::host()
        .iter()
        .find(|h| h.has(controller))
        .map(|h| h.mount.clone())
}

/// The v1 hierarchies with only their controller names (`cpu`,
/// `name=systemd`: super options like `rw` or `xattr` dropped), as
/// [`crate::cgroup_mounts::expand_cgroup`] wants them.
pub fn v1_hierarchies() -> &'static [(Vec<String>, PathBuf)] {
    static H: OnceLock<Vec<(Vec<String>, PathBuf)>> = OnceLock::new();
    H.get_or_init(|| {
        let known = fs::read_to_string("/proc/cgroups").unwrap_or_default();
        let known: Vec<&str> = known
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        hierarchy::host()
            .iter()
            .filter(|h| !h.is_unified())
            .map(|h| {
                let ctrls = h
                    .options
                    .iter()
                    .filter(|o| o.starts_with("name=") || known.contains(&o.as_str()))
                    .cloned()
                    .collect();
                (ctrls, h.mount.clone())
            })
            .collect()
    })
}

/// Expands the spec's `type: cgroup` mounts for the container's cgroup,
/// creating its directories first when they are to be bind mounted (the
/// init is moved into them concurrently with its mounts).
pub fn expand_mounts(
    plans: Vec<crate::mounts::MountPlan>,
    st: &CgroupState,
    cgroupns: bool,
) -> Result<Vec<crate::mounts::MountPlan>> {
    use crate::cgroup_mounts::{expand_cgroup, CgroupHost};
    use crate::mounts::MountKind;
    if !plans.iter().any(|p| p.kind == MountKind::Cgroup) {
        return Ok(plans);
    }
    let root = Path::new(ROOT);
    let host = match st.mode {
        Mode::V1 => CgroupHost::V1 {
            hierarchies: v1_hierarchies(),
        },
        Mode::V2 => CgroupHost::V2 { root },
    };
    if !cgroupns {
        hierarchy::create_all(st)?;
    }
    let mut out = Vec::with_capacity(plans.len());
    for p in plans {
        if p.kind != MountKind::Cgroup {
            out.push(p);
        } else if st.mode == Mode::V1 && !st.nested.is_empty() {
            // One hierarchy at a time, each with its own path; the tmpfs
            // that holds them (the first plan of each) only once.
            for (i, h) in v1_hierarchies().iter().enumerate() {
                let path = st.nested.get(&h.1).unwrap_or(&st.path);
                let one = CgroupHost::V1 {
                    hierarchies: std::slice::from_ref(h),
                };
                let plans = expand_cgroup(&p, &one, path, cgroupns)?;
                out.extend(plans.into_iter().skip(usize::from(i > 0)));
            }
        } else {
            out.extend(expand_cgroup(&p, &host, &st.path, cgroupns)?);
        }
    }
    Ok(out)
}

/// A container's cgroup.
pub struct Cgroup {
    st: CgroupState,
    /// The manager of `st.path` (every v1 controller not in `st.nested`,
    /// whose few controllers `v1_write` handles), built on first use:
    /// libcgroups' v1 manager parses /proc for each controller (~2 ms),
    /// and joining the cgroup, all `exec` needs, does without it.
    manager: OnceLock<AnyCgroupManager>,
    v2_root: PathBuf,
    /// v2: the cgroup's directory.
    v2_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cgroup").field("state", &self.st).finish()
    }
}

fn cg_err(what: &str) -> impl FnOnce(lc::AnyManagerError) -> Error + '_ {
    move |e| Error::Cgroup(format!("{what}: {e}"))
}

/// libcgroups' apply of `resources` through `manager`.
fn apply_with(
    manager: &AnyCgroupManager,
    resources: &LinuxResources,
) -> std::result::Result<(), lc::AnyManagerError> {
    let opt = ControllerOpt {
        resources,
        disable_oom_killer: resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false),
        oom_score_adj: None,
        freezer_state: None,
    };
    manager.apply(&opt)
}

impl Cgroup {
    /// Opens (without creating) the cgroup described by `st`.
    pub fn open(st: &CgroupState) -> Result<Cgroup> {
        Cgroup::open_in(Path::new(ROOT), st)
    }

    /// As [`Cgroup::open`], with the v2 hierarchy mounted at `v2_root`
    /// instead of /sys/fs/cgroup (the v2 code path on a cgroup2 mounted
    /// elsewhere, as the empty one of a hybrid host; v1 ignores it).
    pub fn open_in(v2_root: &Path, st: &CgroupState) -> Result<Cgroup> {
        let v2_dir = (st.mode == Mode::V2)
            .then(|| v2_root.join(st.path.strip_prefix("/").unwrap_or(&st.path)));
        Ok(Cgroup {
            st: st.clone(),
            manager: OnceLock::new(),
            v2_root: v2_root.to_path_buf(),
            v2_dir,
        })
    }

    /// libcgroups' manager for `st.path`.
    fn manager(&self) -> Result<&AnyCgroupManager> {
        if let Some(m) = self.manager.get() {
            return Ok(m);
        }
        let path = &self.st.path;
        let err =
            |e: &dyn std::fmt::Display| Error::Cgroup(format!("cgroup {}: {e}", path.display()));
        let m = match self.st.mode {
            Mode::V1 => libcgroups::v1::manager::Manager::new(path)
                .map_err(|e| err(&e))?
                .any(),
            Mode::V2 => libcgroups::v2::manager::Manager::new(self.v2_root.clone(), path.clone())
                .map_err(|e| err(&e))?
                .any(),
        };
        Ok(self.manager.get_or_init(|| m))
    }

    pub fn state(&self) -> &CgroupState {
        &self.st
    }

    /// Creates the cgroup (if needed) and moves `pid` into it.
    pub fn add(&self, pid: i32) -> Result<()> {
        match self.st.mode {
            Mode::V1 => hierarchy::join(&self.st, pid),
            Mode::V2 => self
                .manager()?
                .add_task(Pid::from_raw(pid))
                .map_err(cg_err("adding the init to its cgroup")),
        }
    }

    /// Writes `resources` and moves `pid` in. On v1 the limits go first:
    /// writing the device rules there denies every device before allowing
    /// the spec's again, which would fail an open by `pid` (the init's of
    /// /dev/ptmx, say) that landed in between. On v2 the device program
    /// is swapped at once, and the cgroup is made by the move.
    pub fn place(&self, pid: i32, resources: &LinuxResources) -> Result<()> {
        match self.st.mode {
            Mode::V1 => {
                hierarchy::create_all(&self.st)?;
                self.apply(resources)?;
                self.add(pid)
            }
            Mode::V2 => {
                self.add(pid)?;
                self.apply(resources)
            }
        }
    }

    /// Writes `linux.resources`.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if !self.st.nested.is_empty() {
            let apart: Vec<(&hierarchy::Hierarchy, &PathBuf)> = (hierarchy::host().iter())
                .filter_map(|h| Some((h, self.st.nested.get(&h.mount)?)))
                .collect();
            let moved: Vec<String> = (apart.iter())
                .flat_map(|(h, _)| h.options.iter())
                .filter(|o| split::KNOWN.contains(&o.as_str()))
                .cloned()
                .collect();
            apply_with(self.manager()?, &split::without(resources, &moved))
                .map_err(cg_err("applying linux.resources"))?;
            for (h, path) in apart {
                let dir = h.mount.join(path.strip_prefix("/").unwrap_or(path));
                v1_write::apply(h, &dir, resources)?;
            }
            return Ok(());
        }
        match apply_with(self.manager()?, resources) {
            Err(e) if v2_devices::is_memlock_error(&e) => {
                // Everything but the devices and the unified keys is
                // written; those two are done here (see v2_devices).
                let Some(dir) = self.v2_dir.as_deref() else {
                    return Err(cg_err("applying linux.resources")(e));
                };
                let rules = resources.devices().as_deref().unwrap_or_default();
                v2_devices::attach(dir, rules)?;
                match resources.unified() {
                    Some(unified) => v2_devices::write_unified(dir, unified),
                    None => Ok(()),
                }
            }
            other => other.map_err(cg_err("applying linux.resources")),
        }
    }

    pub fn freeze(&self) -> Result<()> {
        self.manager()?
            .freeze(FreezerState::Frozen)
            .map_err(cg_err("freezing the cgroup"))
    }

    pub fn thaw(&self) -> Result<()> {
        self.manager()?
            .freeze(FreezerState::Thawed)
            .map_err(cg_err("thawing the cgroup"))
    }

    /// Every process in the cgroup (and its children).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let procs = dir(&self.st, "pids")
            .or_else(|| dir(&self.st, "devices"))
            .or_else(|| dir(&self.st, "memory"));
        let Some(dir) = procs else {
            return Err(Error::Cgroup("no cgroup hierarchy to list pids".into()));
        };
        let mut out = Vec::new();
        collect_pids(&dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        if !self.st.nested.is_empty() {
            // libcgroups reads every controller under one path.
            return Ok(v1_stats::read_stats(&self.st));
        }
        self.manager()?
            .stats()
            .map_err(cg_err("reading cgroup stats"))
    }

    /// Whether the freezer says frozen.
    pub fn is_frozen(&self) -> bool {
        is_frozen(&self.st)
    }

    /// How many processes the kernel's OOM killer killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        oom_kills(&self.st)
    }
}

/// On v1, moves `pid` into the container's pids cgroup at once: the first
/// cgroup migration waits for an RCU grace period (the threadgroup rwsem's
/// write side, ~8 ms here), so starting it before libcgroups' manager
/// parses /proc (~2 ms) shortens `create`. Errors are left to the full
/// placement that follows. v2 needs its controllers enabled on the way
/// down first: nothing done early there.
pub fn place_early(st: &CgroupState, pid: i32) {
    if st.mode != Mode::V1 {
        return;
    }
    if let Some(d) = dir(st, "pids") {
        if fs::create_dir_all(&d).is_ok() {
            let _ = fs::write(d.join("cgroup.procs"), pid.to_string());
        }
    }
}

/// Whether the cgroup's freezer reports it frozen (cheap: one file read).
pub fn is_frozen(st: &CgroupState) -> bool {
    match st.mode {
        Mode::V1 => dir(st, "freezer")
            .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
            .is_some_and(|s| s.trim() == "FROZEN"),
        Mode::V2 => dir(st, "")
            .and_then(|d| fs::read_to_string(d.join("cgroup.freeze")).ok())
            .is_some_and(|s| s.trim() == "1"),
    }
}

/// The `oom_kill` counter of memory.oom_control (v1) or memory.events (v2).
pub fn oom_kills(st: &CgroupState) -> u64 {
    let file = match st.mode {
        Mode::V1 => dir(st, "memory").map(|d| d.join("memory.oom_control")),
        Mode::V2 => dir(st, "").map(|d| d.join("memory.events")),
    };
    file.and_then(|f| fs::read_to_string(f).ok())
        .map(|s| parse_flat_keyed(&s, "oom_kill"))
        .unwrap_or(0)
}

/// The value of `key` in a "key value" per line file.
pub fn parse_flat_keyed(s: &str, key: &str) -> u64 {
    s.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

/// What `create` does with the spec's cgroup settings: the resolved state,
/// and the resources to write.
pub fn plan(spec: &Spec, id: &str) -> Result<(CgroupState, LinuxResources)> {
    let mode = host_mode()?;
    let linux = spec.linux().as_ref();
    let spec_path = linux.and_then(|l| l.cgroups_path().as_deref());
    let (path, nested) = match mode {
        Mode::V2 => (resolve(spec_path, id, mode)?, BTreeMap::new()),
        Mode::V1 => {
            let own = own_cgroups();
            let own: Vec<(PathBuf, PathBuf, bool)> = (hierarchy::host().iter())
                .filter_map(|h| {
                    let path = hierarchy::own_path(&own, h)?.to_path_buf();
                    Some((h.mount.clone(), path, v1_write::nestable(h)))
                })
                .collect();
            paths::resolve_v1(spec_path, id, &own)?
        }
    };
    let resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    Ok((CgroupState { path, mode, nested }, resources))
}

/// The runtime's own cgroups: (controllers, path) per line of
/// /proc/self/cgroup.
pub fn own_cgroups() -> Vec<(String, PathBuf)> {
    let s = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?.to_owned();
            Some((ctrls, PathBuf::from(it.next()?)))
        })
        .collect()
}

/// Moves the calling process back into the cgroups `own_cgroups` listed.
pub fn return_to(cgroups: &[(String, PathBuf)]) -> Result<()> {
    let pid = std::process::id().to_string();
    let v2 = host_mode()? == Mode::V2;
    for (ctrls, path) in cgroups {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let dir = if v2 {
            Path::new(ROOT).join(rel)
        } else {
            // The hierarchy of this line, if `join` moved us out of it.
            let line = [(ctrls.clone(), path.clone())];
            let found = (hierarchy::host().iter())
                .find(|h| hierarchy::own_path(&line, h).is_some() && hierarchy::joined(h));
            match found {
                Some(h) => h.mount.join(rel),
                None => continue,
            }
        };
        fs::write(dir.join("cgroup.procs"), &pid)
            .map_err(Error::io(format!("returning to cgroup {}", dir.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_flat_keyed(oom_control, "oom_kill"), 3);
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_flat_keyed(events, "oom_kill"), 1);
        assert_eq!(parse_flat_keyed(events, "oom"), 2);
        assert_eq!(parse_flat_keyed(events, "missing"), 0);
    }

    #[test]
    fn v2_files_live_in_one_directory() {
        let st = CgroupState {
            path: PathBuf::from("/a/b"),
            mode: Mode::V2,
            nested: BTreeMap::new(),
        };
        assert_eq!(dir(&st, "memory").unwrap(), Path::new("/sys/fs/cgroup/a/b"));
        assert_eq!(dir(&st, "").unwrap(), Path::new("/sys/fs/cgroup/a/b"));
        // No such cgroup: not frozen, no OOM kills, nothing to remove.
        let missing = CgroupState {
            path: PathBuf::from("/pier-no-such-cgroup/x"),
            mode: Mode::V2,
            nested: BTreeMap::new(),
        };
        assert!(!is_frozen(&missing));
        assert_eq!(oom_kills(&missing), 0);
        remove(&missing).unwrap();
    }

    #[test]
    fn state_round_trips() {
        let mut st = CgroupState {
            path: PathBuf::from("/x"),
            mode: Mode::V1,
            nested: BTreeMap::new(),
        };
        let s = serde_json::to_string(&st).unwrap();
        assert_eq!(s, r#"{"path":"/x","mode":"v1"}"#);
        assert_eq!(serde_json::from_str::<CgroupState>(&s).unwrap(), st);
        st.nested
            .insert("/sys/fs/cgroup/memory".into(), "/api/x".into());
        let s = serde_json::to_string(&st).unwrap();
        assert_eq!(
            s,
            r#"{"path":"/x","mode":"v1","nested":{"/sys/fs/cgroup/memory":"/api/x"}}"#
        );
        assert_eq!(serde_json::from_str::<CgroupState>(&s).unwrap(), st);
    }
}
