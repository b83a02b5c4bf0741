//! Thin wrappers over the raw syscalls the runtime needs that neither rustix
//! nor libc wrap conveniently (clone3, openat2, close_range, pivot_root).
//! Every wrapper returns `io::Result` and never allocates.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `struct clone_args` of clone3(2) (the 88-byte version 2 layout).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3 without a stack: fork semantics with namespace flags. Returns 0 in
/// the child and the child's pid in the parent.
///
/// # Safety
/// The caller must be single-threaded; the child may only do what is safe
/// after fork in a single-threaded process and must end with exec or _exit.
pub unsafe fn clone3(flags: u64) -> io::Result<libc::pid_t> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    let ret = libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    );
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as libc::pid_t)
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2).
pub fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: flags as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: valid pointers for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel returned a new descriptor we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let err = io::Error::last_os_error();
        // openat2 returns EAGAIN when a concurrent rename raced a
        // RESOLVE_IN_ROOT walk; retrying is the documented answer.
        if err.raw_os_error() != Some(libc::EAGAIN) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// Marks every descriptor >= `first` close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process is dumpable (PR_GET_DUMPABLE).
pub fn dumpable() -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}

/// Sets PR_SET_DUMPABLE. A non-dumpable process's /proc/PID entries
/// (exe, fd, mem, ...) are closed to other processes without
/// CAP_SYS_PTRACE, which keeps a container from reaching the runtime
/// binary through /proc/PID/exe (CVE-2019-5736); children inherit it and
/// execve of the user's program resets it.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
    cvt(ret).map(drop)
}

/// Whether the working directory is reachable from the process root: the
/// getcwd syscall reports "(unreachable)..." or ENOENT for a directory
/// outside it (a cwd reached through a leaked descriptor, CVE-2024-21626).
/// Other errors (a seccomp filter denying getcwd) do not count against it.
pub fn cwd_inside_root() -> bool {
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the syscall writes at most buf.len() bytes into buf.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT);
    }
    n > 0 && buf[0] == b'/'
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Converts a libc-style return value into `io::Result`.
pub fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// mount(2) with optional arguments.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is a valid C string or null.
    cvt(unsafe { libc::mount(p(source), target.as_ptr(), p(fstype), flags, p(data).cast()) })
        .map(drop)
}

const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// open_tree(OPEN_TREE_CLONE): a detached copy of the mount at `path`
/// (relative to `dir`; the empty path: `dir` itself), with its submounts
/// when `recursive`, held by the returned descriptor.
pub fn clone_tree(dir: RawFd, path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as u32;
    }
    // SAFETY: valid descriptor and C string; integer flags.
    fd_result(unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags) })
}

/// mount_setattr(2) on the mount `fd` refers to (not its submounts): sets
/// `set`, clears `clear`.
pub fn set_mount_attrs(fd: RawFd, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid descriptor, empty C string and attribute struct.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// move_mount(2) of the detached mount `from` onto the file or directory
/// `to` refers to: no path is looked up, so nothing can be swapped in.
pub fn move_mount_onto(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: valid descriptors and empty C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;

fn fd_result(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// fsopen(2): a filesystem context of type `fstype`.
pub fn fs_open(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid C string; integer flags.
    fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

/// fsconfig(2): `key=value`, or the flag `key` when `value` is None.
pub fn fs_config(fs: RawFd, key: &CStr, value: Option<&CStr>) -> io::Result<()> {
    let (cmd, value) = match value {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: valid descriptor and C strings (or null).
    let ret = unsafe { libc::syscall(libc::SYS_fsconfig, fs, cmd, key.as_ptr(), value, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsconfig(FSCONFIG_CMD_CREATE): makes the superblock.
pub fn fs_create(fs: RawFd) -> io::Result<()> {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: valid descriptor; null key and value.
    let ret = unsafe { libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsmount(2): a detached mount of the created superblock with the
/// MOUNT_ATTR_* `attrs`.
pub fn fs_mount(fs: RawFd, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: valid descriptor; integer flags.
    fd_result(unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs) })
}

/// Formats `/proc/self/fd/N` into a stack buffer (no allocation).
pub struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    pub fn new(fd: RawFd) -> Self {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd as u32;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let d = &digits[i..];
        buf[prefix.len()..prefix.len() + d.len()].copy_from_slice(d);
        FdPath { buf }
    }

    pub fn as_cstr(&self) -> &CStr {
        // The buffer is zero-filled past the digits, so a NUL is present.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"/proc/self/fd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_path_formats() {
        assert_eq!(FdPath::new(0).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(FdPath::new(1234).as_cstr(), c"/proc/self/fd/1234");
    }
}
