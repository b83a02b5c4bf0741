//! Where a container's cgroup is inside the hierarchy, from
//! `linux.cgroupsPath`: an absolute path is used as is; a relative one
//! (no path: the container id) goes, as runc does, under the parent of
//! the runtime's own cgroup on v2 and under the runtime's own cgroup of
//! each hierarchy on v1. A systemd-style `slice:prefix:name` is mapped to
//! the directory systemd would use (`/system.slice/prefix-name.scope`),
//! so `--systemd-cgroup` works as cgroupfs where no systemd runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::Mode;
use crate::{Error, Result};

/// Maps a systemd `slice:prefix:name` to the cgroupfs directory systemd
/// would create for it.
fn systemd_to_fs(s: &str) -> Option<PathBuf> {
    let mut parts = s.split(':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() {
        return None;
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let stem = slice.strip_suffix(".slice")?;
    // "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice.
    let mut path = PathBuf::from("/");
    if stem != "-" {
        let mut acc = String::new();
        for comp in stem.split('-') {
            if comp.is_empty() {
                return None;
            }
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(comp);
            path.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") || name.ends_with(".scope") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push(unit);
    Some(path)
}

/// The runtime's own v2 cgroup (the `0::` line of /proc/self/cgroup).
fn own_v2_cgroup() -> PathBuf {
    let s = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Rejects `..` and other components that could leave the hierarchy.
fn check_components(p: &Path) -> Result<()> {
    use std::path::Component;
    if p.components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err(Error::InvalidConfig(format!(
            "cgroupsPath {} must not contain '.' or '..'",
            p.display()
        )));
    }
    Ok(())
}

/// Checks a resolved path: inside the hierarchy, not its root.
fn checked(p: PathBuf) -> Result<PathBuf> {
    check_components(&p)?;
    if p == Path::new("/") {
        return Err(Error::InvalidConfig(
            "cgroupsPath must not be the root cgroup".into(),
        ));
    }
    Ok(p)
}

/// `linux.cgroupsPath` before placement: an absolute path (a systemd
/// `slice:prefix:name` is one), or a relative one (no path: the id).
fn requested(spec_path: Option<&Path>, id: &str) -> (PathBuf, bool) {
    match spec_path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if p.is_absolute() => (p.to_path_buf(), true),
        Some(p) => match systemd_to_fs(&p.to_string_lossy()) {
            Some(abs) => (abs, true),
            None => (p.to_path_buf(), false),
        },
        None => (PathBuf::from(id), false),
    }
}

/// The absolute in-hierarchy path of a container's cgroup on v2 (`mode`
/// V2), or on v1 when every hierarchy shares it (relative paths under the
/// root; [`resolve_v1`] places them under the runtime's own cgroups).
pub fn resolve(spec_path: Option<&Path>, id: &str, mode: Mode) -> Result<PathBuf> {
    let (p, absolute) = requested(spec_path, id);
    if absolute {
        return checked(p);
    }
    check_components(&p)?;
    checked(match mode {
        Mode::V1 => Path::new("/").join(p),
        Mode::V2 => {
            // As runc: the parent of our own cgroup (ours has processes in
            // it, so it cannot get controllers for children).
            let own = own_v2_cgroup();
            own.parent().unwrap_or(Path::new("/")).join(p)
        }
    })
}

/// v1 and hybrid hosts: the container's path shared by most hierarchies
/// and the hierarchies (by mount point) where it differs. A relative path
/// goes under the runtime's own cgroup in each hierarchy, as runc 1.1
/// does; `own` lists (mount point, own cgroup, whether it may be apart)
/// per hierarchy (see [`super::hierarchy::spread`]).
pub fn resolve_v1(
    spec_path: Option<&Path>,
    id: &str,
    own: &[(PathBuf, PathBuf, bool)],
) -> Result<(PathBuf, BTreeMap<PathBuf, PathBuf>)> {
    let (p, absolute) = requested(spec_path, id);
    if absolute {
        return Ok((checked(p)?, BTreeMap::new()));
    }
    check_components(&p)?;
    let (common, nested) = super::hierarchy::spread(&p, own);
    for q in nested.values() {
        checked(q.clone())?;
    }
    Ok((checked(common)?, nested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_kept() {
        for mode in [Mode::V1, Mode::V2] {
            assert_eq!(
                resolve(Some(Path::new("/a/b")), "id", mode).unwrap(),
                Path::new("/a/b")
            );
        }
    }

    #[test]
    fn default_and_relative_paths() {
        // v1: relative to each hierarchy's root.
        assert_eq!(resolve(None, "c1", Mode::V1).unwrap(), Path::new("/c1"));
        assert_eq!(
            resolve(Some(Path::new("")), "c1", Mode::V1).unwrap(),
            Path::new("/c1")
        );
        assert_eq!(
            resolve(Some(Path::new("x/y")), "c1", Mode::V1).unwrap(),
            Path::new("/x/y")
        );
        // v2: under the parent of our own cgroup, as runc.
        let own = own_v2_cgroup();
        let parent = own.parent().unwrap_or(Path::new("/")).to_path_buf();
        assert_eq!(resolve(None, "c1", Mode::V2).unwrap(), parent.join("c1"));
        assert_eq!(
            resolve(Some(Path::new("x/y")), "c1", Mode::V2).unwrap(),
            parent.join("x/y")
        );
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in ["/a/../b", "../x", "/"] {
            assert!(
                resolve(Some(Path::new(bad)), "id", Mode::V1).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn systemd_paths_map_to_their_scope() {
        let p = |s: &str| resolve(Some(Path::new(s)), "id", Mode::V2).unwrap();
        assert_eq!(
            p("system.slice:docker:abc"),
            Path::new("/system.slice/docker-abc.scope")
        );
        assert_eq!(
            p(":cri-containerd:abc"),
            Path::new("/system.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            p("kubepods-besteffort-pod1.slice:cri:abc"),
            Path::new(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-abc.scope"
            )
        );
        assert_eq!(p("-.slice:p:n"), Path::new("/p-n.scope"));
        assert_eq!(systemd_to_fs("a:b"), None);
        assert_eq!(systemd_to_fs("noslice:b:c"), None);
    }

    #[test]
    fn v1_relative_paths_follow_each_own_cgroup() {
        let own = vec![
            (PathBuf::from("/cg/pids"), PathBuf::from("/"), true),
            (PathBuf::from("/cg/memory"), PathBuf::from("/api/7"), true),
            (PathBuf::from("/cg/cpu"), PathBuf::from("/"), false),
        ];
        let (p, nested) = resolve_v1(Some(Path::new("a/b")), "id", &own).unwrap();
        assert_eq!(p, Path::new("/a/b"));
        assert_eq!(nested[Path::new("/cg/memory")], Path::new("/api/7/a/b"));
        assert_eq!(nested.len(), 1);
        let (p, nested) = resolve_v1(None, "c1", &own).unwrap();
        assert_eq!(p, Path::new("/c1"));
        assert_eq!(nested[Path::new("/cg/memory")], Path::new("/api/7/c1"));
        // Absolute and systemd paths are the same everywhere.
        for (spec, want) in [
            ("/x/y", "/x/y"),
            ("system.slice:p:n", "/system.slice/p-n.scope"),
        ] {
            let (p, nested) = resolve_v1(Some(Path::new(spec)), "id", &own).unwrap();
            assert_eq!(p, Path::new(want));
            assert!(nested.is_empty());
        }
        assert!(resolve_v1(Some(Path::new("a/../..")), "id", &own).is_err());
    }

    proptest::proptest! {
        /// Whatever a config.json says, the cgroup is a plain absolute
        /// path below the root of every hierarchy, or a clear error.
        #[test]
        fn any_cgroups_path_stays_inside(spec in "[a-z/.:-]{0,24}", own in "(/[a-z.]{1,4}){0,3}") {
            use std::path::Component;
            let hierarchies = vec![
                (PathBuf::from("/cg/pids"), PathBuf::from("/"), false),
                (PathBuf::from("/cg/memory"), PathBuf::from(if own.is_empty() { "/" } else { &own }), true),
            ];
            let inside = |p: &Path| {
                p.is_absolute()
                    && p != Path::new("/")
                    && p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            };
            if let Ok((p, nested)) = resolve_v1(Some(Path::new(&spec)), "id", &hierarchies) {
                proptest::prop_assert!(inside(&p), "{spec:?} gave {p:?}");
                for q in nested.values() {
                    proptest::prop_assert!(inside(q), "{spec:?} gave {q:?}");
                }
            }
            for mode in [Mode::V1, Mode::V2] {
                if let Ok(p) = resolve(Some(Path::new(&spec)), "id", mode) {
                    proptest::prop_assert!(inside(&p), "{spec:?} gave {p:?}");
                }
            }
        }
    }
}
