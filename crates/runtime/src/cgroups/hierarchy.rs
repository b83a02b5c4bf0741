//! The cgroup hierarchies of v1 and hybrid hosts, and where a container's
//! cgroup is in each of them.
//!
//! As runc 1.1 does on such hosts, a container joins every hierarchy: each
//! v1 controller, named ones like `name=systemd`, and on hybrid hosts the
//! (controller-less) cgroup2 at /sys/fs/cgroup/unified. A relative
//! cgroupsPath (or none: the container id) is resolved under the
//! runtime's own cgroup *in each hierarchy*, so the container lands under
//! a caller whose memory cgroup is nested (`/process_api/<x>/<path>`)
//! while its other cgroups are at `/<path>`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::split::KNOWN;
use super::{CgroupState, Mode, ROOT};
use crate::{Error, Result};

/// One hierarchy of a v1 or hybrid host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The mount's super options: its controllers (`cpu`, `cpuacct`,
    /// `name=systemd`) among others like `rw`; empty for cgroup2.
    pub options: Vec<String>,
    pub mount: PathBuf,
}

impl Hierarchy {
    pub fn is_unified(&self) -> bool {
        self.options.is_empty()
    }

    /// Whether `controller` ("memory", "name=systemd") is mounted here.
    pub fn has(&self, controller: &str) -> bool {
        self.options.iter().any(|o| o == controller)
    }

    /// Whether no controller here enforces anything (the unified one of
    /// a hybrid host, `name=systemd`): joining it is bookkeeping, done as
    /// runc does, but skipped where it is read-only (a container's view
    /// of the host's cgroups), not worth failing a container for.
    pub fn is_bookkeeping(&self) -> bool {
        self.is_unified() || !self.options.iter().any(|o| KNOWN.contains(&o.as_str()))
    }
}

/// Whether we may create cgroups under `dir` (not a read-only mount).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Whether processes are moved in `h` (see [`Hierarchy::is_bookkeeping`]).
pub fn joined(h: &Hierarchy) -> bool {
    !h.is_bookkeeping() || writable(&h.mount)
}

/// [`dirs`] without the bookkeeping hierarchies we cannot write to.
fn to_join(st: &CgroupState) -> Vec<(Option<&'static Hierarchy>, PathBuf)> {
    let mut v = dirs(st);
    v.retain(|(h, _)| h.is_none_or(joined));
    v
}

/// The cgroup hierarchies in a mountinfo text: every `cgroup` mount, then
/// a `cgroup2` mount at `<root>/unified` (the hybrid layout) if any.
pub fn parse_mountinfo(info: &str, root: &Path) -> Vec<Hierarchy> {
    let mut v1 = Vec::new();
    let mut unified = None;
    for e in crate::mountinfo::parse(info) {
        let mount = PathBuf::from(e.mount_point);
        match e.fstype.as_str() {
            "cgroup" => v1.push(Hierarchy {
                options: e.super_options.split(',').map(str::to_owned).collect(),
                mount,
            }),
            "cgroup2" if mount == root.join("unified") => {
                unified = Some(Hierarchy {
                    options: Vec::new(),
                    mount,
                })
            }
            _ => {}
        }
    }
    v1.extend(unified);
    v1
}

/// This host's hierarchies (read once per process).
pub fn host() -> &'static [Hierarchy] {
    static H: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    H.get_or_init(|| {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        parse_mountinfo(&info, Path::new(ROOT))
    })
}

/// The line of /proc/self/cgroup (controllers, path) that describes `h`.
pub fn own_path<'a>(own: &'a [(String, PathBuf)], h: &Hierarchy) -> Option<&'a Path> {
    own.iter()
        .find(|(ctrls, _)| {
            if h.is_unified() {
                ctrls.is_empty()
            } else {
                !ctrls.is_empty() && ctrls.split(',').all(|c| h.has(c))
            }
        })
        .map(|(_, p)| p.as_path())
}

/// Where a relative `rel` lands in each hierarchy, given as (mount
/// point, the runtime's own cgroup there, whether the container's cgroup
/// may be elsewhere than in the others): the path shared by the
/// hierarchies that must share one (libcgroups' manager writes them
/// through one path; the most common of their paths, the first on a tie),
/// and the other hierarchies whose path differs from it.
pub fn spread(
    rel: &Path,
    own: &[(PathBuf, PathBuf, bool)],
) -> (PathBuf, BTreeMap<PathBuf, PathBuf>) {
    let per: Vec<(&PathBuf, PathBuf, bool)> = own
        .iter()
        .map(|(mount, own, apart)| (mount, Path::new("/").join(own).join(rel), *apart))
        .collect();
    let sharing = per.iter().any(|(_, _, apart)| !apart);
    let mut counts: Vec<(&PathBuf, usize)> = Vec::new();
    for (_, p, apart) in &per {
        if sharing && *apart {
            continue;
        }
        match counts.iter_mut().find(|(q, _)| *q == p) {
            Some((_, n)) => *n += 1,
            None => counts.push((p, 1)),
        }
    }
    let mut common = Path::new("/").join(rel);
    let mut best = 0;
    for (p, n) in counts {
        if n > best {
            best = n;
            common = p.clone();
        }
    }
    let nested = per
        .into_iter()
        .filter(|(_, p, apart)| *apart && *p != common)
        .map(|(m, p, _)| (m.clone(), p))
        .collect();
    (common, nested)
}

/// Every hierarchy of `st` with the container's directory in it (v2: the
/// one unified directory), the pids hierarchy first (see `place_early`).
pub fn dirs(st: &CgroupState) -> Vec<(Option<&'static Hierarchy>, PathBuf)> {
    let strip = |p: &Path| p.strip_prefix("/").unwrap_or(p).to_path_buf();
    if st.mode == Mode::V2 {
        return vec![(None, Path::new(ROOT).join(strip(&st.path)))];
    }
    let mut out: Vec<_> = host()
        .iter()
        .map(|h| {
            let path = st.nested.get(&h.mount).unwrap_or(&st.path);
            (Some(h), h.mount.join(strip(path)))
        })
        .collect();
    out.sort_by_key(|(h, _)| !h.is_some_and(|h| h.has("pids")));
    out
}

/// The container's directory for `controller` ("memory"; v2: ignored).
pub fn dir(st: &CgroupState, controller: &str) -> Option<PathBuf> {
    dirs(st)
        .into_iter()
        .find(|(h, _)| h.is_none_or(|h| h.has(controller)))
        .map(|(_, d)| d)
}

/// Creates the container's directory in every hierarchy. A new cpuset
/// cgroup gets its parent's cpus and mems, or no task could join it.
pub fn create_all(st: &CgroupState) -> Result<()> {
    for (h, dir) in to_join(st) {
        let cpuset = h.is_some_and(|h| h.has("cpuset"));
        let mount = h.map_or(Path::new(ROOT), |h| h.mount.as_path());
        create(mount, &dir, cpuset)?;
    }
    Ok(())
}

/// Creates the container's cgroup in every v1 (and hybrid unified)
/// hierarchy and moves `pid` into it.
pub fn join(st: &CgroupState, pid: i32) -> Result<()> {
    create_all(st)?;
    for (_, dir) in to_join(st) {
        fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(Error::io(format!(
            "moving process {pid} into cgroup {}",
            dir.display()
        )))?;
    }
    Ok(())
}

/// mkdir of `dir` and its missing parents below `mount`.
fn create(mount: &Path, dir: &Path, cpuset: bool) -> Result<()> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        match fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::Cgroup(format!(
                    "creating cgroup directory {}: {e}",
                    cur.display()
                )))
            }
        }
        if cpuset {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                inherit(&parent, &cur, file)?;
            }
        }
    }
    Ok(())
}

/// Copies `file` from `parent` into `child` when the child's is empty.
fn inherit(parent: &Path, child: &Path, file: &str) -> Result<()> {
    let read = |d: &Path| {
        fs::read_to_string(d.join(file))
            .map(|s| s.trim().to_owned())
            .map_err(Error::io(format!("reading {}/{file}", d.display())))
    };
    if !read(child)?.is_empty() {
        return Ok(());
    }
    let value = read(parent)?;
    fs::write(child.join(file), &value).map_err(Error::io(format!(
        "writing {value:?} to {}/{file}",
        child.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
40 24 0:40 / /tmp/other rw - cgroup2 none rw
";

    #[test]
    fn mountinfo_gives_v1_hierarchies_then_the_hybrid_unified_one() {
        let h = parse_mountinfo(HYBRID, Path::new("/sys/fs/cgroup"));
        let mounts: Vec<_> = h.iter().map(|h| h.mount.to_str().unwrap()).collect();
        assert_eq!(
            mounts,
            [
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/unified"
            ]
        );
        assert!(h[0].has("name=systemd") && h[1].has("cpuacct") && h[3].is_unified());
        let bookkeeping: Vec<bool> = h.iter().map(Hierarchy::is_bookkeeping).collect();
        assert_eq!(bookkeeping, [true, false, false, true]);
        // A legacy host: no cgroup2 under the root, no unified hierarchy.
        let legacy = parse_mountinfo(HYBRID, Path::new("/elsewhere"));
        assert!(legacy.iter().all(|h| !h.is_unified()));
        assert!(parse_mountinfo("garbage\n\n - x", Path::new("/")).is_empty());
    }

    #[test]
    fn own_cgroup_lines_match_their_hierarchy() {
        let h = parse_mountinfo(HYBRID, Path::new("/sys/fs/cgroup"));
        let own: Vec<(String, PathBuf)> = [
            ("name=systemd", "/user.slice"),
            ("cpu,cpuacct", "/"),
            ("memory", "/process_api/abc"),
            ("", "/"),
        ]
        .iter()
        .map(|(c, p)| (c.to_string(), PathBuf::from(p)))
        .collect();
        let found: Vec<_> = h
            .iter()
            .map(|h| own_path(&own, h).unwrap().to_str().unwrap())
            .collect();
        assert_eq!(found, ["/user.slice", "/", "/process_api/abc", "/"]);
        assert_eq!(own_path(&own[1..2], &h[2]), None);
    }

    #[test]
    fn relative_paths_spread_under_each_own_cgroup() {
        let own = |v: &[(&str, &str, bool)]| -> Vec<(PathBuf, PathBuf, bool)> {
            v.iter()
                .map(|(m, p, apart)| (PathBuf::from(m), PathBuf::from(p), *apart))
                .collect()
        };
        // This project's machines: only memory is nested.
        let (common, nested) = spread(
            Path::new("x/c1"),
            &own(&[
                ("/cg/pids", "/", true),
                ("/cg/memory", "/api/1", true),
                ("/cg/cpu", "/", false),
            ]),
        );
        assert_eq!(common, Path::new("/x/c1"));
        assert_eq!(
            nested,
            BTreeMap::from([(PathBuf::from("/cg/memory"), PathBuf::from("/api/1/x/c1"))])
        );
        // The same own cgroup everywhere: one path, nothing nested.
        let (common, nested) = spread(
            Path::new("c"),
            &own(&[("/cg/pids", "/svc", true), ("/cg/memory", "/svc", true)]),
        );
        assert_eq!(common, Path::new("/svc/c"));
        assert!(nested.is_empty());
        // The hierarchies that must share a path choose it, however many
        // others agree on another; one that cannot be apart follows it.
        let (common, nested) = spread(
            Path::new("c"),
            &own(&[
                ("/cg/memory", "/s", true),
                ("/cg/pids", "/s", true),
                ("/cg/systemd", "/s", true),
                ("/cg/cpu", "/", false),
                ("/cg/devices", "/", false),
                ("/cg/blkio", "/s", false),
            ]),
        );
        assert_eq!(common, Path::new("/c"));
        assert_eq!(nested.len(), 3);
        assert_eq!(nested[Path::new("/cg/systemd")], Path::new("/s/c"));
        assert!(!nested.contains_key(Path::new("/cg/blkio")));
        // No hierarchies known: relative to the root.
        assert_eq!(spread(Path::new("c"), &[]).0, Path::new("/c"));
    }

    #[test]
    fn v2_has_one_directory() {
        let st = CgroupState {
            path: PathBuf::from("/a/b"),
            mode: Mode::V2,
            nested: BTreeMap::new(),
        };
        assert_eq!(dirs(&st), vec![(None, PathBuf::from("/sys/fs/cgroup/a/b"))]);
        assert_eq!(dir(&st, "memory").unwrap(), Path::new("/sys/fs/cgroup/a/b"));
    }

    #[test]
    fn cpuset_directories_inherit_cpus_and_mems() {
        let t = tempfile::tempdir().unwrap();
        let mount = t.path();
        fs::write(mount.join("cpuset.cpus"), "0-1\n").unwrap();
        fs::write(mount.join("cpuset.mems"), "0\n").unwrap();
        // A real cpuset directory comes with empty files; fake them by
        // pre-creating the first level.
        fs::create_dir(mount.join("a")).unwrap();
        fs::write(mount.join("a/cpuset.cpus"), "").unwrap();
        fs::write(mount.join("a/cpuset.mems"), "").unwrap();
        create(mount, &mount.join("a"), true).unwrap();
        assert_eq!(
            fs::read_to_string(mount.join("a/cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(
            fs::read_to_string(mount.join("a/cpuset.mems")).unwrap(),
            "0"
        );
        // Without the files (not a cpuset hierarchy) it says what failed.
        let err = create(mount, &mount.join("a/b"), true).unwrap_err();
        assert!(err.to_string().contains("cpuset.cpus"), "{err}");
        create(mount, &mount.join("c/d"), false).unwrap();
        assert!(mount.join("c/d").is_dir());
    }

    proptest::proptest! {
        /// Any mountinfo text parses without panicking, into mounts whose
        /// paths come from the text.
        #[test]
        fn any_mountinfo_parses(text in "([0-9a-z/ ,=-]{0,40}( - )?[a-z0-9 ,=/]{0,30}\n){0,6}") {
            for h in parse_mountinfo(&text, Path::new("/sys/fs/cgroup")) {
                proptest::prop_assert!(text.contains(h.mount.to_str().unwrap_or("")));
            }
        }
    }
}
