//! Child side of the spec's mounts: each destination is resolved inside the
//! rootfs (openat2 RESOLVE_IN_ROOT), then everything that follows works on
//! descriptors. A bind is a detached clone of its source that gets its
//! flags before it moves onto the destination; a filesystem whose options
//! change its propagation is made detached too (fsopen, fsmount), so no
//! step looks a path up again where a swapped symlink could redirect it.
//! Kernels without the new mount API fall back to mount(2).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::init::{InitError, InitResult};
use crate::mounts::{MountKind, MountPlan};
use crate::rootfs::{errno, mkdir_all_in_root, mount_err, open_in_root};
use crate::sys::{self, FdPath};

/// Performs one planned mount inside the rootfs.
pub fn do_mount(root: RawFd, m: &MountPlan) -> InitResult<()> {
    match m.kind {
        MountKind::Symlink => return symlink_in_root(root, m),
        MountKind::Cgroup => {
            return Err(InitError::config(&format!(
                "cgroup mount on {} was not expanded",
                m.dest
            )))
        }
        _ => {}
    }
    let leaf_file = matches!(m.kind, MountKind::Bind { dir: false });
    let target = mkdir_all_in_root(root, &m.dest, leaf_file)
        .map_err(mount_err("creating mount point", &m.dest))?;
    // The mount whose propagation the options change, held by descriptor
    // (else, on old kernels, the mount point looked up again).
    let mut mounted: Option<OwnedFd> = None;
    match m.kind {
        MountKind::Bind { .. } => {
            mounted = bind_onto(root, m, &target)?;
        }
        MountKind::Fs => {
            mounted = new_fs_onto(m, &target)?;
        }
        MountKind::Symlink | MountKind::Cgroup => {}
    }
    if !m.opts.propagation.is_empty() {
        let again = match mounted {
            Some(fd) => fd,
            None => open_in_root(root, &m.dest).map_err(mount_err("reopening", &m.dest))?,
        };
        let p = FdPath::new(again.as_raw_fd());
        for prop in &m.opts.propagation {
            sys::mount(None, p.as_cstr(), None, *prop, None)
                .map_err(mount_err("setting propagation of", &m.dest))?;
        }
    }
    Ok(())
}

/// Bind-mounts `m.source` onto `target` without looking its path up again:
/// a detached clone of the source gets the per-mount flags, then moves onto
/// the descriptor (a symlink swapped in meanwhile changes nothing). Returns
/// the attached mount. Kernels without the new mount API (before 5.12)
/// fall back to mount(2) and a remount by path, still resolved in the root.
fn bind_onto(root: RawFd, m: &MountPlan, target: &OwnedFd) -> InitResult<Option<OwnedFd>> {
    let flags = m.opts.flags;
    let source = m
        .source
        .as_deref()
        .ok_or_else(|| InitError::config(&format!("bind mount on {} has no source", m.dest)))?;
    let (set, clear) = crate::mounts::bind_attributes(flags);
    let extra = flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT) != 0;
    match sys::clone_tree(libc::AT_FDCWD, source, flags & libc::MS_REC != 0) {
        Ok(tree) => {
            if extra {
                match sys::set_mount_attrs(tree.as_raw_fd(), set, clear) {
                    Err(e) if errno(&e) == libc::ENOSYS => return bind_by_path(root, m, target),
                    r => r.map_err(mount_err("setting the flags of the bind mount on", &m.dest))?,
                }
            }
            sys::move_mount_onto(tree.as_raw_fd(), target.as_raw_fd())
                .map_err(mount_err("bind mounting onto", &m.dest))?;
            Ok(Some(tree))
        }
        Err(e) if errno(&e) == libc::ENOSYS => bind_by_path(root, m, target),
        Err(e) => Err(mount_err("cloning the bind mount source for", &m.dest)(e)),
    }
}

fn bind_by_path(root: RawFd, m: &MountPlan, target: &OwnedFd) -> InitResult<Option<OwnedFd>> {
    let flags = m.opts.flags;
    let tpath = FdPath::new(target.as_raw_fd());
    sys::mount(
        m.source.as_deref(),
        tpath.as_cstr(),
        None,
        libc::MS_BIND | (flags & libc::MS_REC),
        None,
    )
    .map_err(mount_err("bind mounting onto", &m.dest))?;
    // Per-mount flags of a bind mount only apply on a remount.
    let extra = flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if extra != 0 {
        let again = open_in_root(root, &m.dest).map_err(mount_err("reopening", &m.dest))?;
        let p = FdPath::new(again.as_raw_fd());
        sys::mount(
            None,
            p.as_cstr(),
            None,
            libc::MS_REMOUNT | libc::MS_BIND | extra,
            None,
        )
        .map_err(mount_err("remounting", &m.dest))?;
    }
    Ok(None)
}

/// Creates the symlink `m.dest` (inside the rootfs) pointing to `m.source`.
fn symlink_in_root(root: RawFd, m: &MountPlan) -> InitResult<()> {
    let (dir, name) = match m.dest.rsplit_once('/') {
        Some((dir, name)) if !name.is_empty() => (dir, name),
        _ => return Err(InitError::config(&format!("bad symlink path {:?}", m.dest))),
    };
    let target = m
        .source
        .as_deref()
        .ok_or_else(|| InitError::config("symlink without a target"))?;
    let dirfd = mkdir_all_in_root(root, dir, false).map_err(mount_err("creating", dir))?;
    let cname = CString::new(name).map_err(|_| InitError::config("symlink name contains NUL"))?;
    // SAFETY: valid descriptor and C strings.
    if unsafe { libc::symlinkat(target.as_ptr(), dirfd.as_raw_fd(), cname.as_ptr()) } != 0 {
        let e = io::Error::last_os_error();
        if errno(&e) != libc::EEXIST {
            return Err(InitError::io(&format!("symlink {}", m.dest), e));
        }
    }
    Ok(())
}

/// The new filesystem of `m`, made detached with fsopen/fsconfig/fsmount:
/// its options one by one (`key=value` or a flag), superblock flags as
/// flags, per-mount flags as mount attributes.
fn new_fs_detached(m: &MountPlan) -> io::Result<OwnedFd> {
    let einval = || io::Error::from_raw_os_error(libc::EINVAL);
    let fstype = m.fstype.as_deref().ok_or_else(einval)?;
    let fs = sys::fs_open(fstype)?;
    if let Some(source) = m.source.as_deref() {
        sys::fs_config(fs.as_raw_fd(), c"source", Some(source))?;
    }
    for opt in m.opts.data.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(CString::new(v).map_err(|_| einval())?)),
            None => (opt, None),
        };
        let key = CString::new(key).map_err(|_| einval())?;
        sys::fs_config(fs.as_raw_fd(), &key, value.as_deref())?;
    }
    for (flag, key) in SUPERBLOCK_FLAGS {
        if m.opts.flags & flag != 0 {
            sys::fs_config(fs.as_raw_fd(), key, None)?;
        }
    }
    sys::fs_create(fs.as_raw_fd())?;
    let (attrs, _) = crate::mounts::bind_attributes(m.opts.flags);
    sys::fs_mount(fs.as_raw_fd(), attrs)
}

/// mount(2) flags that belong to the superblock, as fsconfig flag keys.
const SUPERBLOCK_FLAGS: [(libc::c_ulong, &CStr); 4] = [
    (libc::MS_RDONLY, c"ro"),
    (libc::MS_SYNCHRONOUS, c"sync"),
    (libc::MS_DIRSYNC, c"dirsync"),
    (libc::MS_MANDLOCK, c"mand"),
];

/// Mounts the new filesystem of `m` onto `target`. With propagation to
/// set it is made detached and returned, so that the propagation reaches
/// it by descriptor; else (or without the new mount API) mount(2) onto the
/// descriptor's /proc/self/fd path.
fn new_fs_onto(m: &MountPlan, target: &OwnedFd) -> InitResult<Option<OwnedFd>> {
    if !m.opts.propagation.is_empty() {
        match new_fs_detached(m) {
            Ok(fs) => {
                sys::move_mount_onto(fs.as_raw_fd(), target.as_raw_fd())
                    .map_err(mount_err("mounting onto", &m.dest))?;
                return Ok(Some(fs));
            }
            Err(e) if errno(&e) == libc::ENOSYS => {}
            Err(e) => return Err(mount_err("making the filesystem for", &m.dest)(e)),
        }
    }
    let tpath = FdPath::new(target.as_raw_fd());
    sys::mount(
        m.source.as_deref(),
        tpath.as_cstr(),
        m.fstype.as_deref(),
        m.opts.flags,
        m.data.as_deref(),
    )
    .map_err(mount_err("mounting", &m.dest))?;
    Ok(None)
}
