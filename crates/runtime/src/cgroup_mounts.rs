//! The spec's `type: cgroup` mounts, expanded as runc makes them once the
//! container's cgroup is known (pure logic; the child only performs them).

use std::path::Path;

use libc::c_ulong;

use crate::mounts::{cstring, MountKind, MountOptions, MountPlan};
use crate::Result;

/// Where the host's cgroups are, for [`expand_cgroup`].
#[derive(Debug, Clone)]
pub enum CgroupHost<'a> {
    /// Pure v2: the unified hierarchy's mount point.
    V2 { root: &'a Path },
    /// v1 / hybrid: each v1 hierarchy as (its controllers, e.g. `cpu`,
    /// `cpuacct` or `name=systemd`; its mount point).
    V1 {
        hierarchies: &'a [(Vec<String>, std::path::PathBuf)],
    },
}

fn plain(
    kind: MountKind,
    source: &str,
    dest: String,
    fstype: Option<&str>,
    flags: c_ulong,
    data: &str,
) -> Result<MountPlan> {
    Ok(MountPlan {
        kind,
        source: Some(cstring(source, "mount source")?),
        dest,
        fstype: fstype.map(|t| cstring(t, "mount type")).transpose()?,
        opts: MountOptions {
            flags,
            propagation: Vec::new(),
            data: data.to_owned(),
        },
        data: if data.is_empty() {
            None
        } else {
            Some(cstring(data, "mount options")?)
        },
    })
}

/// Expands a `type: cgroup` mount the way runc does, for a container whose
/// cgroup is `cg_path` (absolute, inside the hierarchy).
///
/// v2: with a cgroup namespace a cgroup2 mount (rooted at the container's
/// cgroup by the namespace), else a bind mount of the container's cgroup
/// directory. v1: a tmpfs (mode 755, the spec's flags but never read-only,
/// as runc 1.1), then per hierarchy a directory named like the host's mount
/// point holding a bind of the container's directory in that hierarchy (a
/// `cgroup` mount with the hierarchy's options under a cgroup namespace),
/// plus symlinks for co-mounted controllers. Every sub-mount gets the
/// spec's flags (a bind is remounted for them by `do_mount`).
pub fn expand_cgroup(
    m: &MountPlan,
    host: &CgroupHost<'_>,
    cg_path: &Path,
    cgroupns: bool,
) -> Result<Vec<MountPlan>> {
    use std::os::unix::ffi::OsStrExt;
    let rel = cg_path.strip_prefix("/").unwrap_or(cg_path);
    let flags = m.opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    let dest = m.dest.trim_end_matches('/');
    let path_str = |p: &Path| String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned();
    let mut out = Vec::new();
    match host {
        CgroupHost::V2 { root } => {
            if cgroupns {
                out.push(plain(
                    MountKind::Fs,
                    "cgroup",
                    m.dest.clone(),
                    Some("cgroup2"),
                    flags,
                    &m.opts.data,
                )?);
            } else {
                out.push(plain(
                    MountKind::Bind { dir: true },
                    &path_str(&root.join(rel)),
                    m.dest.clone(),
                    None,
                    flags | libc::MS_BIND,
                    "",
                )?);
            }
        }
        CgroupHost::V1 { hierarchies } => {
            let tmpfs_data = if m.opts.data.is_empty() {
                "mode=755".to_owned()
            } else {
                format!("mode=755,{}", m.opts.data)
            };
            out.push(plain(
                MountKind::Fs,
                "tmpfs",
                m.dest.clone(),
                Some("tmpfs"),
                flags & !libc::MS_RDONLY,
                &tmpfs_data,
            )?);
            for (ctrls, mp) in hierarchies.iter() {
                let Some(name) = mp.file_name() else {
                    continue;
                };
                let name = name.to_string_lossy().into_owned();
                let sub = format!("{dest}/{name}");
                if cgroupns {
                    out.push(plain(
                        MountKind::Fs,
                        "cgroup",
                        sub,
                        Some("cgroup"),
                        flags,
                        &ctrls.join(","),
                    )?);
                } else {
                    out.push(plain(
                        MountKind::Bind { dir: true },
                        &path_str(&mp.join(rel)),
                        sub,
                        None,
                        flags | libc::MS_BIND,
                        "",
                    )?);
                }
                for c in ctrls {
                    let c = c.strip_prefix("name=").unwrap_or(c);
                    if c != name && !c.is_empty() && !c.contains('/') {
                        out.push(plain(
                            MountKind::Symlink,
                            &name,
                            format!("{dest}/{c}"),
                            None,
                            0,
                            "",
                        )?);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::plan_mount;
    use std::ffi::CString;

    fn cgroup_mount() -> MountPlan {
        let m: oci_spec::runtime::Mount = serde_json::from_str(
            r#"{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup",
                "options":["nosuid","noexec","nodev","relatime","ro"]}"#,
        )
        .unwrap();
        let p = plan_mount(&m, Path::new("/")).unwrap();
        assert_eq!(p.kind, MountKind::Cgroup);
        p
    }

    const SPEC_FLAGS: c_ulong =
        libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV | libc::MS_RELATIME | libc::MS_RDONLY;

    fn summary(v: &[MountPlan]) -> Vec<(MountKind, String, String, String, c_ulong, String)> {
        let s = |c: &Option<CString>| {
            c.as_ref()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        v.iter()
            .map(|p| {
                (
                    p.kind,
                    s(&p.source),
                    p.dest.clone(),
                    s(&p.fstype),
                    p.opts.flags,
                    s(&p.data),
                )
            })
            .collect()
    }

    #[test]
    fn cgroup_v2_with_namespace_mounts_cgroup2() {
        let root = Path::new("/sys/fs/cgroup");
        let v = expand_cgroup(
            &cgroup_mount(),
            &CgroupHost::V2 { root },
            Path::new("/a/b"),
            true,
        )
        .unwrap();
        assert_eq!(
            summary(&v),
            vec![(
                MountKind::Fs,
                "cgroup".into(),
                "/sys/fs/cgroup".into(),
                "cgroup2".into(),
                SPEC_FLAGS,
                String::new()
            )]
        );
    }

    #[test]
    fn cgroup_v2_without_namespace_binds_the_container_cgroup() {
        let root = Path::new("/sys/fs/cgroup");
        let v = expand_cgroup(
            &cgroup_mount(),
            &CgroupHost::V2 { root },
            Path::new("/a/b"),
            false,
        )
        .unwrap();
        assert_eq!(
            summary(&v),
            vec![(
                MountKind::Bind { dir: true },
                "/sys/fs/cgroup/a/b".into(),
                "/sys/fs/cgroup".into(),
                String::new(),
                SPEC_FLAGS | libc::MS_BIND,
                String::new()
            )]
        );
    }

    fn hierarchies() -> Vec<(Vec<String>, std::path::PathBuf)> {
        vec![
            (
                vec!["cpu".into(), "cpuacct".into()],
                "/sys/fs/cgroup/cpu,cpuacct".into(),
            ),
            (vec!["memory".into()], "/sys/fs/cgroup/memory".into()),
            (vec!["name=systemd".into()], "/sys/fs/cgroup/systemd".into()),
        ]
    }

    #[test]
    fn cgroup_v1_tmpfs_binds_and_symlinks() {
        let h = hierarchies();
        let v = expand_cgroup(
            &cgroup_mount(),
            &CgroupHost::V1 { hierarchies: &h },
            Path::new("/c1"),
            false,
        )
        .unwrap();
        let bind = MountKind::Bind { dir: true };
        let f = SPEC_FLAGS | libc::MS_BIND;
        let e = String::new;
        assert_eq!(
            summary(&v),
            vec![
                (
                    MountKind::Fs,
                    "tmpfs".into(),
                    "/sys/fs/cgroup".into(),
                    "tmpfs".into(),
                    SPEC_FLAGS & !libc::MS_RDONLY,
                    "mode=755".into()
                ),
                (
                    bind,
                    "/sys/fs/cgroup/cpu,cpuacct/c1".into(),
                    "/sys/fs/cgroup/cpu,cpuacct".into(),
                    e(),
                    f,
                    e()
                ),
                (
                    MountKind::Symlink,
                    "cpu,cpuacct".into(),
                    "/sys/fs/cgroup/cpu".into(),
                    e(),
                    0,
                    e()
                ),
                (
                    MountKind::Symlink,
                    "cpu,cpuacct".into(),
                    "/sys/fs/cgroup/cpuacct".into(),
                    e(),
                    0,
                    e()
                ),
                (
                    bind,
                    "/sys/fs/cgroup/memory/c1".into(),
                    "/sys/fs/cgroup/memory".into(),
                    e(),
                    f,
                    e()
                ),
                (
                    bind,
                    "/sys/fs/cgroup/systemd/c1".into(),
                    "/sys/fs/cgroup/systemd".into(),
                    e(),
                    f,
                    e()
                ),
            ]
        );
    }

    #[test]
    fn cgroup_v1_with_namespace_mounts_each_hierarchy() {
        let h = hierarchies();
        let v = expand_cgroup(
            &cgroup_mount(),
            &CgroupHost::V1 { hierarchies: &h },
            Path::new("/c1"),
            true,
        )
        .unwrap();
        let mounts: Vec<_> = summary(&v)
            .into_iter()
            .filter(|m| m.3 == "cgroup")
            .map(|m| (m.2, m.4, m.5))
            .collect();
        assert_eq!(
            mounts,
            vec![
                (
                    "/sys/fs/cgroup/cpu,cpuacct".to_string(),
                    SPEC_FLAGS,
                    "cpu,cpuacct".to_string()
                ),
                ("/sys/fs/cgroup/memory".into(), SPEC_FLAGS, "memory".into()),
                (
                    "/sys/fs/cgroup/systemd".into(),
                    SPEC_FLAGS,
                    "name=systemd".into()
                ),
            ]
        );
    }
}
