//! Parsing of OCI mount entries into what mount(2) needs. Pure logic: the
//! child side (mount_into.rs) only executes the resulting [`MountPlan`]s;
//! `type: cgroup` entries are expanded by cgroup_mounts.rs.

use std::ffi::CString;
use std::path::Path;

use libc::c_ulong;

use crate::{Error, Result};

/// Parsed `options` of one mount.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount(2) call itself.
    pub flags: c_ulong,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<c_ulong>,
    /// Filesystem-specific data (unknown options, comma-joined).
    pub data: String,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
}

/// Options that set (true) or clear (false) a flag.
const FLAG_OPTIONS: &[(&str, bool, c_ulong)] = &[
    ("ro", true, libc::MS_RDONLY),
    ("rw", false, libc::MS_RDONLY),
    ("nosuid", true, libc::MS_NOSUID),
    ("suid", false, libc::MS_NOSUID),
    ("nodev", true, libc::MS_NODEV),
    ("dev", false, libc::MS_NODEV),
    ("noexec", true, libc::MS_NOEXEC),
    ("exec", false, libc::MS_NOEXEC),
    ("sync", true, libc::MS_SYNCHRONOUS),
    ("async", false, libc::MS_SYNCHRONOUS),
    ("dirsync", true, libc::MS_DIRSYNC),
    ("remount", true, libc::MS_REMOUNT),
    ("mand", true, libc::MS_MANDLOCK),
    ("nomand", false, libc::MS_MANDLOCK),
    ("noatime", true, libc::MS_NOATIME),
    ("atime", false, libc::MS_NOATIME),
    ("nodiratime", true, libc::MS_NODIRATIME),
    ("diratime", false, libc::MS_NODIRATIME),
    ("relatime", true, libc::MS_RELATIME),
    ("norelatime", false, libc::MS_RELATIME),
    ("strictatime", true, libc::MS_STRICTATIME),
    ("nostrictatime", false, libc::MS_STRICTATIME),
    ("bind", true, libc::MS_BIND),
    ("rbind", true, libc::MS_BIND | libc::MS_REC),
];

const PROPAGATION_OPTIONS: &[(&str, c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

/// Returns the propagation flags for a propagation option name.
pub fn propagation_flag(name: &str) -> Option<c_ulong> {
    PROPAGATION_OPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Parses mount options the way runc does: known flags become mount flags,
/// propagation options are applied afterwards, the rest is fs data.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        if let Some((_, set, flag)) = FLAG_OPTIONS.iter().find(|(n, _, _)| *n == opt) {
            if *set {
                out.flags |= flag;
            } else {
                out.flags &= !flag;
            }
        } else if let Some(p) = propagation_flag(opt) {
            out.propagation.push(p);
        } else if opt.is_empty() {
            continue;
        } else {
            data.push(opt);
        }
    }
    out.data = data.join(",");
    out
}

/// The mount_setattr(2) attributes (set, clear) that give a bind mount the
/// per-mount flags in `flags`, as a `MS_REMOUNT | MS_BIND` with them would:
/// the listed ones set, every other per-mount flag cleared, relatime unless
/// another atime mode is asked.
pub fn bind_attributes(flags: c_ulong) -> (u64, u64) {
    use crate::sys::*;
    let mut set = 0;
    for (ms, attr) in [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags & ms != 0 {
            set |= attr;
        }
    }
    if flags & libc::MS_STRICTATIME != 0 {
        set |= MOUNT_ATTR_STRICTATIME;
    } else if flags & libc::MS_NOATIME != 0 {
        set |= MOUNT_ATTR_NOATIME;
    }
    let clear = MOUNT_ATTR_RDONLY
        | MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | MOUNT_ATTR_NOEXEC
        | MOUNT_ATTR_NODIRATIME
        | MOUNT_ATTR_ATIME;
    (set, clear)
}

/// What kind of mount an entry is, decided in the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path; `dir` tells whether the source is a
    /// directory (else the destination is created as an empty file).
    Bind { dir: bool },
    /// A new filesystem instance (proc, sysfs, tmpfs, devpts, mqueue, ...).
    Fs,
    /// `type: cgroup` (or `cgroup2`): replaced by [`expand_cgroup`] in the
    /// parent once the container's cgroup is known.
    Cgroup,
    /// A symlink at `dest` pointing to `source` (cgroup v1 co-mounted
    /// controllers: `cpu -> cpu,cpuacct`).
    Symlink,
}

/// One mount, ready for the child.
#[derive(Debug)]
pub struct MountPlan {
    pub kind: MountKind,
    pub source: Option<CString>,
    /// Absolute destination inside the container (resolved in the rootfs).
    pub dest: String,
    pub fstype: Option<CString>,
    pub opts: MountOptions,
    pub data: Option<CString>,
}

pub fn cstring(s: impl Into<Vec<u8>>, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidConfig(format!("{what} contains a NUL byte")))
}

/// Builds the plan for one OCI mount. Relative bind sources are relative to
/// the bundle directory.
pub fn plan_mount(m: &oci_spec::runtime::Mount, bundle: &Path) -> Result<MountPlan> {
    use std::os::unix::ffi::OsStrExt;
    let dest = m.destination().to_string_lossy().into_owned();
    if !dest.starts_with('/') {
        return Err(Error::InvalidConfig(format!(
            "mount destination {dest:?} is not absolute"
        )));
    }
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let kind = if opts.is_bind() || typ == "bind" {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig(format!("bind mount on {dest:?} has no source")))?;
        let src = bundle.join(src);
        let meta = std::fs::metadata(&src).map_err(|e| Error::Io {
            context: format!("bind mount source {}", src.display()),
            source: e,
        })?;
        let mut opts = opts;
        opts.flags |= libc::MS_BIND;
        return Ok(MountPlan {
            kind: MountKind::Bind { dir: meta.is_dir() },
            source: Some(cstring(src.as_os_str().as_bytes(), "mount source")?),
            dest,
            fstype: None,
            opts,
            data: None,
        });
    } else if typ == "cgroup" || typ == "cgroup2" {
        MountKind::Cgroup
    } else if typ.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "mount on {dest:?} has no type"
        )));
    } else {
        MountKind::Fs
    };
    let source = m
        .source()
        .as_ref()
        .map(|s| cstring(s.as_os_str().as_bytes(), "mount source"))
        .transpose()?
        .or_else(|| cstring(typ, "mount type").ok());
    let data = if opts.data.is_empty() {
        None
    } else {
        Some(cstring(opts.data.as_str(), "mount options")?)
    };
    Ok(MountPlan {
        kind,
        source,
        dest,
        fstype: Some(cstring(typ, "mount type")?),
        opts,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_and_data_are_split() {
        let o = parse_options(&s(&["nosuid", "strictatime", "mode=755", "size=65536k"]));
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(o.propagation.is_empty());
    }

    #[test]
    fn later_options_override_earlier() {
        let o = parse_options(&s(&["ro", "rw", "nodev", "dev", "noexec"]));
        assert_eq!(o.flags, libc::MS_NOEXEC);
    }

    #[test]
    fn rbind_and_propagation() {
        let o = parse_options(&s(&["rbind", "ro", "rslave", "private"]));
        assert!(o.is_bind() && o.flags & libc::MS_REC != 0);
        assert_eq!(o.flags & libc::MS_RDONLY, libc::MS_RDONLY);
        assert_eq!(
            o.propagation,
            vec![libc::MS_SLAVE | libc::MS_REC, libc::MS_PRIVATE]
        );
        assert_eq!(o.data, "");
    }

    #[test]
    fn plan_rejects_relative_destination() {
        let m: oci_spec::runtime::Mount =
            serde_json::from_str(r#"{"destination":"proc","type":"proc","source":"proc"}"#)
                .unwrap();
        assert!(matches!(
            plan_mount(&m, Path::new("/")),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn plan_bind_resolves_source_against_bundle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let m: oci_spec::runtime::Mount =
            serde_json::from_str(r#"{"destination":"/f","source":"file","options":["bind","ro"]}"#)
                .unwrap();
        let p = plan_mount(&m, dir.path()).unwrap();
        assert_eq!(p.kind, MountKind::Bind { dir: false });
        assert_eq!(
            p.source.unwrap().to_str().unwrap(),
            dir.path().join("file").to_str().unwrap()
        );
    }

    #[test]
    fn bind_attributes_set_the_asked_flags_and_clear_the_rest() {
        use crate::sys::*;
        let all = MOUNT_ATTR_RDONLY
            | MOUNT_ATTR_NOSUID
            | MOUNT_ATTR_NODEV
            | MOUNT_ATTR_NOEXEC
            | MOUNT_ATTR_NODIRATIME
            | MOUNT_ATTR_ATIME;
        let o = parse_options(&s(&["rbind", "ro", "nosuid", "noatime"]));
        assert_eq!(
            bind_attributes(o.flags),
            (
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME,
                all
            )
        );
        let o = parse_options(&s(&["bind", "nodev", "noexec", "strictatime", "noatime"]));
        assert_eq!(
            bind_attributes(o.flags),
            (
                MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_STRICTATIME,
                all
            )
        );
        // relatime is the atime mode 0; sync is no per-mount flag.
        let o = parse_options(&s(&["bind", "relatime", "sync", "nodiratime"]));
        assert_eq!(bind_attributes(o.flags), (MOUNT_ATTR_NODIRATIME, all));
    }
}
