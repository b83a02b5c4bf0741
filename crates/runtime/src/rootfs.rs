//! Child side of the root filesystem: resolving paths inside the rootfs
//! (for the spec's mounts in `mount_into.rs`), /dev, pivot_root, masked and
//! read-only paths. Every destination is resolved with
//! openat2(RESOLVE_IN_ROOT), so a symlink in the image can never send a
//! mount outside the rootfs.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::init::{InitError, InitResult};
use crate::sys::{self, FdPath};

pub(crate) fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Opens `path` (absolute or relative, interpreted inside `root`) as O_PATH.
pub fn open_in_root(root: RawFd, path: &str) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let c = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::openat2(
        root,
        &c,
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    )
}

fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<String> {
    let mut buf = [0u8; 4096];
    // SAFETY: buffer and C string valid for the call.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

/// Resolves `path` inside `root`, creating missing components (directories,
/// and the last one as an empty file when `leaf_file`). Dangling symlinks
/// are followed inside the root, as if the root were `/`.
pub fn mkdir_all_in_root(root: RawFd, path: &str, leaf_file: bool) -> io::Result<OwnedFd> {
    let mut path = path.to_owned();
    'restart: for _ in 0..64 {
        match open_in_root(root, &path) {
            Ok(fd) => return Ok(fd),
            Err(e) if errno(&e) == libc::ENOENT => {}
            Err(e) => return Err(e),
        }
        let comps = components(&path);
        for i in 0..comps.len() {
            let prefix = comps[..=i].join("/");
            match open_in_root(root, &prefix) {
                Ok(_) => continue,
                Err(e) if errno(&e) == libc::ENOENT => {}
                Err(e) => return Err(e),
            }
            let parent = open_in_root(root, &comps[..i].join("/"))?;
            let name =
                CString::new(comps[i]).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            match readlinkat(parent.as_raw_fd(), &name) {
                Ok(target) => {
                    // A dangling symlink: continue from its target, which
                    // RESOLVE_IN_ROOT will interpret inside the root.
                    let rest = comps[i + 1..].join("/");
                    let base = if target.starts_with('/') {
                        target
                    } else {
                        format!("{}/{}", comps[..i].join("/"), target)
                    };
                    path = if rest.is_empty() {
                        base
                    } else {
                        format!("{base}/{rest}")
                    };
                    continue 'restart;
                }
                Err(e) if errno(&e) == libc::EINVAL || errno(&e) == libc::ENOENT => {}
                Err(e) => return Err(e),
            }
            let last = i + 1 == comps.len();
            // SAFETY: valid descriptors and C strings.
            let ret = unsafe {
                if last && leaf_file {
                    let fd = libc::openat(
                        parent.as_raw_fd(),
                        name.as_ptr(),
                        libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_WRONLY
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    fd
                } else {
                    libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755)
                }
            };
            if ret < 0 {
                let e = io::Error::last_os_error();
                if errno(&e) != libc::EEXIST {
                    return Err(e);
                }
            }
        }
        return open_in_root(root, &path);
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

pub(crate) fn mount_err(what: &str, dest: &str) -> impl FnOnce(io::Error) -> InitError {
    let context = format!("{what} {dest}");
    move |e| InitError::io(&context, e)
}

/// A device node to create under the rootfs.
#[derive(Debug)]
pub struct DevicePlan {
    pub path: String,
    pub kind: libc::mode_t,
    pub major: u32,
    pub minor: u32,
    pub mode: libc::mode_t,
    pub uid: u32,
    pub gid: u32,
}

pub fn default_devices() -> Vec<DevicePlan> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| DevicePlan {
        path: p.to_owned(),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Creates a device node; if mknod is not permitted, bind-mounts the host's
/// node of the same path instead.
pub fn create_device(root: RawFd, d: &DevicePlan) -> InitResult<()> {
    let (dir, name) = match d.path.rsplit_once('/') {
        Some((dir, name)) if !name.is_empty() => (dir, name),
        _ => return Err(InitError::config(&format!("bad device path {:?}", d.path))),
    };
    let dirfd = mkdir_all_in_root(root, dir, false).map_err(mount_err("creating", dir))?;
    let cname = CString::new(name).map_err(|_| InitError::config("device name contains NUL"))?;
    // SAFETY: valid descriptors and C strings.
    unsafe {
        libc::unlinkat(dirfd.as_raw_fd(), cname.as_ptr(), 0);
        let dev = libc::makedev(d.major, d.minor);
        if libc::mknodat(dirfd.as_raw_fd(), cname.as_ptr(), d.kind | d.mode, dev) == 0 {
            // fchmodat: the process umask must not narrow a device's mode.
            libc::fchmodat(dirfd.as_raw_fd(), cname.as_ptr(), d.mode, 0);
            if libc::fchownat(
                dirfd.as_raw_fd(),
                cname.as_ptr(),
                d.uid,
                d.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            ) != 0
            {
                return Err(InitError::io(
                    &format!("chown {}", d.path),
                    io::Error::last_os_error(),
                ));
            }
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if errno(&e) != libc::EPERM {
            return Err(InitError::io(&format!("mknod {}", d.path), e));
        }
    }
    let target = mkdir_all_in_root(root, &d.path, true).map_err(mount_err("creating", &d.path))?;
    let host =
        CString::new(d.path.as_str()).map_err(|_| InitError::config("device path contains NUL"))?;
    sys::mount(
        Some(&host),
        FdPath::new(target.as_raw_fd()).as_cstr(),
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(mount_err("bind mounting device", &d.path))
}

/// The standard /dev symlinks.
pub fn dev_symlinks(root: RawFd) -> InitResult<()> {
    let dev = open_in_root(root, "/dev").map_err(mount_err("opening", "/dev"))?;
    let links: [(&CStr, &CStr); 5] = [
        (c"/proc/self/fd", c"fd"),
        (c"/proc/self/fd/0", c"stdin"),
        (c"/proc/self/fd/1", c"stdout"),
        (c"/proc/self/fd/2", c"stderr"),
        (c"pts/ptmx", c"ptmx"),
    ];
    for (target, name) in links {
        // SAFETY: valid descriptor and C strings.
        if unsafe { libc::symlinkat(target.as_ptr(), dev.as_raw_fd(), name.as_ptr()) } != 0 {
            let e = io::Error::last_os_error();
            if errno(&e) != libc::EEXIST {
                return Err(InitError::io(
                    &format!("symlink /dev/{}", name.to_string_lossy()),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// Makes the mount that holds `rootfs` (the parent-to-be of its bind
/// mount) private when it is shared, as pivot_root requires. Only ever
/// called inside the container's mount namespace.
pub fn make_parent_mount_private(rootfs: &CStr) -> InitResult<()> {
    let path = rootfs.to_string_lossy();
    let entries =
        crate::mountinfo::read_own().map_err(|e| InitError::io("reading mountinfo", e))?;
    let Some(parent) = crate::mountinfo::holding(&entries, &path) else {
        return Ok(());
    };
    if !parent.shared {
        return Ok(());
    }
    let mp = CString::new(parent.mount_point.as_str())
        .map_err(|_| InitError::config("a mount point contains a NUL byte"))?;
    sys::mount(None, &mp, None, libc::MS_PRIVATE, None).map_err(mount_err(
        "making private the parent mount of the rootfs,",
        &parent.mount_point,
    ))
}

/// Makes `rootfs` the root: pivot_root(".", ".") and a lazy unmount of the
/// old root, or with `no_pivot` a move mount plus chroot. Without a mount
/// namespace of its own, only a chroot (moving or pivoting would change
/// the caller's root).
pub fn enter_root(root: RawFd, rootfs: &CStr, no_pivot: bool, mount_ns: bool) -> InitResult<()> {
    // SAFETY: fchdir/chdir/chroot/umount2 on valid arguments.
    unsafe {
        if libc::fchdir(root) != 0 {
            return Err(InitError::io(
                "chdir to the rootfs",
                io::Error::last_os_error(),
            ));
        }
        if !mount_ns {
            if libc::chroot(c".".as_ptr()) != 0 {
                return Err(InitError::io("chroot", io::Error::last_os_error()));
            }
        } else if no_pivot {
            sys::mount(Some(rootfs), c"/", None, libc::MS_MOVE, None)
                .map_err(|e| InitError::io("moving the rootfs onto /", e))?;
            if libc::chroot(c".".as_ptr()) != 0 {
                return Err(InitError::io("chroot", io::Error::last_os_error()));
            }
        } else {
            let old_root = sys::openat2(
                libc::AT_FDCWD,
                c"/",
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                0,
            )
            .map_err(|e| InitError::io("opening the old root", e))?;
            sys::pivot_root(c".", c".").map_err(|e| InitError::io("pivot_root", e))?;
            // Into the old root (stacked on the new one), so that what
            // follows reaches it alone: the new root's mounts keep the
            // propagation their options gave them.
            if libc::fchdir(old_root.as_raw_fd()) != 0 {
                return Err(InitError::io(
                    "chdir to the old root",
                    io::Error::last_os_error(),
                ));
            }
            drop(old_root);
            // Keep the unmount of the old root from propagating anywhere.
            sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
                .map_err(|e| InitError::io("making the old root rslave", e))?;
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(InitError::io(
                    "unmounting the old root",
                    io::Error::last_os_error(),
                ));
            }
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(InitError::io("chdir /", io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Mount flags a remount must keep (they are locked in user namespaces and
/// would otherwise be cleared).
fn current_flags(path: &CStr) -> libc::c_ulong {
    // SAFETY: statvfs into a zeroed struct.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return 0;
        }
        let mut flags = 0;
        for (st_flag, ms) in [
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if st.f_flag & st_flag != 0 {
                flags |= ms;
            }
        }
        flags
    }
}

fn exists(path: &CStr) -> bool {
    // SAFETY: lstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::lstat(path.as_ptr(), &mut st) == 0
    }
}

fn is_dir(path: &CStr) -> bool {
    // SAFETY: stat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::stat(path.as_ptr(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// Makes `path` (already inside the new root) read-only: a recursive bind
/// of it onto itself, read-only. The path is looked up once: the clone and
/// the move use that descriptor. Without the new mount API, mount(2) by
/// path as runc does.
pub fn readonly_path(path: &CStr) -> InitResult<()> {
    let p = path.to_string_lossy();
    let target = match sys::openat2(libc::AT_FDCWD, path, libc::O_PATH | libc::O_CLOEXEC, 0, 0) {
        Ok(fd) => fd,
        Err(e) if errno(&e) == libc::ENOENT => return Ok(()),
        Err(e) => return Err(mount_err("opening readonly path", &p)(e)),
    };
    let t = target.as_raw_fd();
    let done = sys::clone_tree(t, c"", true).and_then(|tree| {
        sys::set_mount_attrs(tree.as_raw_fd(), sys::MOUNT_ATTR_RDONLY, 0)?;
        sys::move_mount_onto(tree.as_raw_fd(), t)
    });
    match done {
        Err(e) if errno(&e) == libc::ENOSYS => readonly_path_by_path(path),
        r => r.map_err(mount_err("making readonly path", &p)),
    }
}

fn readonly_path_by_path(path: &CStr) -> InitResult<()> {
    let p = path.to_string_lossy();
    sys::mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(mount_err("bind mounting readonly path", &p))?;
    let flags = current_flags(path);
    sys::mount(
        None,
        path,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | flags,
        None,
    )
    .map_err(mount_err("remounting readonly path", &p))
}

/// Hides `path`: /dev/null over files, an empty read-only tmpfs over dirs.
pub fn mask_path(path: &CStr) -> InitResult<()> {
    if !exists(path) {
        return Ok(());
    }
    let p = path.to_string_lossy();
    if is_dir(path) {
        sys::mount(Some(c"tmpfs"), path, Some(c"tmpfs"), libc::MS_RDONLY, None)
    } else {
        sys::mount(Some(c"/dev/null"), path, None, libc::MS_BIND, None)
    }
    .map_err(mount_err("masking", &p))
}

/// Makes the (bind-mounted) root read-only.
pub fn readonly_root() -> InitResult<()> {
    let flags = current_flags(c"/");
    sys::mount(
        None,
        c"/",
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags,
        None,
    )
    .map_err(|e| InitError::io("remounting the root read-only", e))
}
