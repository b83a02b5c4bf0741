//! The child side of `create`: everything the init process does between
//! clone3 and execve. It works from an [`InitPlan`] prepared by the parent,
//! never panics, and reports the first error to the parent as a small
//! message over a CLOEXEC SOCK_SEQPACKET socket.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub use crate::init_msg::{InitError, InitResult, Kind};
use crate::mounts::MountPlan;
use crate::process::{self, CapSets, LookupError};
use crate::rootfs::{self, DevicePlan};
use crate::sys;

/// Everything the init needs, computed by the parent before clone3.
#[derive(Debug)]
pub struct InitPlan {
    pub stdio: [Option<RawFd>; 3],
    /// Connected console socket: the init allocates a pty (process.terminal).
    pub console_sock: Option<RawFd>,
    /// A new user namespace: wait for the parent to write the id maps,
    /// then become root in it.
    pub userns: bool,
    /// A new time namespace with these /proc/self/timens_offsets contents.
    pub time_offsets: Option<Vec<u8>>,
    pub preserve_fds: u32,
    /// Namespaces to join with setns (fd opened by the parent, CLONE_NEW*).
    pub join_ns: Vec<(RawFd, libc::c_int)>,
    /// Propagation of / in the new mount namespace before the rootfs is
    /// bound (see config.rs).
    pub root_propagation: libc::c_ulong,
    /// linux.rootfsPropagation, applied again to the new root mount alone
    /// (not recursively).
    pub final_propagation: Option<libc::c_ulong>,
    /// False: no mount namespace; mount in the caller's and chroot.
    pub mount_ns: bool,
    pub rootfs: CString,
    pub mounts: Vec<MountPlan>,
    pub devices: Vec<DevicePlan>,
    pub dev_symlinks: bool,
    pub no_pivot: bool,
    pub fifo: CString,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub sysctl: Vec<(CString, Vec<u8>)>,
    pub readonly_paths: Vec<CString>,
    pub masked_paths: Vec<CString>,
    pub readonly_root: bool,
    pub rlimits: Vec<(libc::c_int, u64, u64, CString)>,
    pub oom_score_adj: Option<i32>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub umask: u32,
    pub caps: Option<CapSets>,
    pub last_cap: u32,
    pub no_new_privileges: bool,
    /// Compiled seccomp filter, installed last (before Ready when
    /// noNewPrivileges is set, else while still privileged).
    pub seccomp: Option<crate::seccomp::SeccompPlan>,
    /// Ask the parent to run prestart/createRuntime hooks (and get the
    /// state JSON) after the mounts, before pivot_root.
    pub hooks_sync: bool,
    pub create_container_hooks: Vec<oci_spec::runtime::Hook>,
    pub start_container_hooks: Vec<oci_spec::runtime::Hook>,
    pub cwd: String,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub path_env: String,
}

/// The program a container process execs: its path, looked up on the
/// container's PATH inside the new root, and NUL-terminated argv and envp
/// pointing into the caller's strings.
pub(crate) struct Program {
    pub exe: CString,
    pub argv: Vec<*const libc::c_char>,
    pub envp: Vec<*const libc::c_char>,
}

/// Resolves `args[0]`: a missing program is `ExecNotFound` (docker's 127),
/// one that cannot be run `ExecPermission` (126), reported before anything
/// of the user's runs.
pub(crate) fn resolve_program(
    args: &[CString],
    env: &[CString],
    path_env: &str,
) -> InitResult<Program> {
    let name = args
        .first()
        .ok_or_else(|| InitError::config("process.args is empty"))?
        .to_string_lossy();
    let kind = match process::lookup_path(&name, path_env, process::probe_fs) {
        Ok(p) => {
            let exe =
                CString::new(p).map_err(|_| InitError::config("executable path contains NUL"))?;
            let pointers = |v: &[CString]| {
                let mut p: Vec<*const libc::c_char> = v.iter().map(|a| a.as_ptr()).collect();
                p.push(std::ptr::null());
                p
            };
            return Ok(Program {
                exe,
                argv: pointers(args),
                envp: pointers(env),
            });
        }
        Err(LookupError::NotFound) => Kind::ExecNotFound,
        Err(LookupError::Permission) => Kind::ExecPermission,
    };
    Err(InitError {
        kind,
        errno: 0,
        msg: name.into_owned(),
    })
}

fn send(sock: RawFd, msg: &[u8]) {
    // SAFETY: sending from a valid buffer; errors are ignored (the parent
    // sees EOF and reports that init died).
    unsafe {
        libc::send(sock, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL);
    }
}

/// Entry point of the child. Never returns.
pub fn child_main(plan: &InitPlan, sock: RawFd) -> ! {
    let err = match setup(plan, sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let mut buf = Vec::with_capacity(256);
    err.encode(&mut buf);
    send(sock, &buf);
    // SAFETY: terminating the child without running Rust/atexit handlers.
    unsafe { libc::_exit(1) }
}

fn io_err(context: &str) -> impl FnOnce(io::Error) -> InitError + '_ {
    move |e| InitError::io(context, e)
}

fn last_err(context: &str) -> InitError {
    InitError::io(context, io::Error::last_os_error())
}

pub(crate) fn reset_signals() {
    // SAFETY: restoring default dispositions and an empty mask; the caller
    // may have blocked SIGCHLD (run) and Rust ignores SIGPIPE by default.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

pub(crate) fn setup_stdio(stdio: &[Option<RawFd>; 3], preserve_fds: u32) -> InitResult<()> {
    for (target, fd) in stdio.iter().enumerate() {
        let Some(fd) = *fd else { continue };
        let target = target as RawFd;
        // SAFETY: dup2/fcntl on descriptors we hold.
        unsafe {
            if fd == target {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, target) < 0 {
                return Err(last_err("dup2 of stdio"));
            }
        }
    }
    sys::cloexec_from(3).map_err(io_err("close_range"))?;
    for fd in 3..3 + preserve_fds as RawFd {
        // SAFETY: clearing FD_CLOEXEC on a preserved descriptor.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

fn write_file(path: &std::ffi::CStr, data: &[u8], context: &str) -> InitResult<()> {
    // SAFETY: open/write/close on a valid path and buffer.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(last_err(context));
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = io::Error::last_os_error();
        libc::close(fd);
        if n < 0 {
            return Err(InitError::io(context, e));
        }
    }
    Ok(())
}

fn setup(plan: &InitPlan, sock: RawFd) -> InitResult<std::convert::Infallible> {
    reset_signals();
    setup_stdio(&plan.stdio, plan.preserve_fds)?;
    // SAFETY: umask never fails. Files and devices made during setup get
    // exactly the modes asked; the process umask is set before exec.
    unsafe { libc::umask(0) };

    if plan.userns {
        // The parent writes uid_map/gid_map, then sends one byte.
        let mut b = [0u8; 1];
        // SAFETY: read into a one-byte buffer.
        if unsafe { libc::read(sock, b.as_mut_ptr().cast(), 1) } != 1 {
            return Err(last_err("waiting for the user namespace mappings"));
        }
        // SAFETY: plain credential syscalls.
        unsafe {
            if libc::syscall(libc::SYS_setresgid, 0, 0, 0) < 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) < 0
            {
                return Err(last_err(
                    "becoming root in the user namespace (is 0 mapped?)",
                ));
            }
        }
    }

    if let Some(offsets) = &plan.time_offsets {
        crate::time::unshare(offsets)?;
    }

    // Join existing namespaces (a user namespace first, mount last).
    let mut joins: Vec<&(RawFd, libc::c_int)> = plan.join_ns.iter().collect();
    joins.sort_by_key(|(_, t)| (*t != libc::CLONE_NEWUSER, *t == libc::CLONE_NEWNS));
    for (fd, nstype) in joins {
        // SAFETY: setns on a namespace descriptor the parent opened.
        if unsafe { libc::setns(*fd, *nstype) } != 0 {
            return Err(last_err("joining a namespace"));
        }
    }

    // Root filesystem. Without a mount namespace of its own the container
    // must not change the propagation of the caller's mounts.
    if plan.mount_ns {
        sys::mount(None, c"/", None, plan.root_propagation, None)
            .map_err(io_err("setting the propagation of /"))?;
        // pivot_root refuses a new root whose parent mount is shared; a
        // recursive private or slave propagation (the default) left none.
        let p = plan.root_propagation;
        let none_shared = p & libc::MS_REC != 0 && p & (libc::MS_PRIVATE | libc::MS_SLAVE) != 0;
        if !none_shared {
            rootfs::make_parent_mount_private(&plan.rootfs)?;
        }
    }
    sys::mount(
        Some(&plan.rootfs),
        &plan.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(io_err("bind mounting the rootfs onto itself"))?;
    let root: OwnedFd = sys::openat2(
        libc::AT_FDCWD,
        &plan.rootfs,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        0,
    )
    .map_err(io_err("opening the rootfs"))?;
    let rootfd = root.as_raw_fd();
    for m in &plan.mounts {
        crate::mount_into::do_mount(rootfd, m)?;
    }
    for d in &plan.devices {
        rootfs::create_device(rootfd, d)?;
    }
    if plan.dev_symlinks {
        rootfs::dev_symlinks(rootfd)?;
    }
    // The working directory is created as runc does, before the root may
    // become read-only.
    rootfs::mkdir_all_in_root(rootfd, &plan.cwd, false).map_err(io_err("creating the cwd"))?;

    // Hooks: the parent runs prestart and createRuntime now (our
    // namespaces exist, pivot_root has not happened) and answers with the
    // state; createContainer hooks run here, in the container's namespaces.
    let mut state_json = Vec::new();
    if plan.hooks_sync {
        send(sock, &[Kind::Hooks as u8, 0, 0, 0, 0]);
        let mut buf = vec![0u8; 1 << 16];
        let (n, _) = crate::sync::recv_fds(sock, &mut buf).map_err(io_err("waiting for hooks"))?;
        if n == 0 {
            return Err(InitError::config("the parent went away during hooks"));
        }
        state_json.extend_from_slice(&buf[..n]);
        crate::hooks::run("createContainer", &plan.create_container_hooks, &state_json)
            .map_err(hook_err)?;
    }

    // The exec fifo lives in the state dir on the host: hold it as O_PATH
    // now, reopen it for writing through /proc/self/fd after pivot_root.
    let fifo = sys::openat2(
        libc::AT_FDCWD,
        &plan.fifo,
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        0,
    )
    .map_err(io_err("opening exec.fifo"))?;

    rootfs::enter_root(rootfd, &plan.rootfs, plan.no_pivot, plan.mount_ns)?;
    drop(root);
    if let (Some(flags), true) = (plan.final_propagation, plan.mount_ns) {
        sys::mount(None, c"/", None, flags, None)
            .map_err(io_err("setting the propagation of the new root"))?;
    }
    if let Some(console) = plan.console_sock {
        crate::terminal::setup(console, true)?;
        // SAFETY: the socket is not needed any more.
        unsafe { libc::close(console) };
    }

    // SAFETY: plain syscalls with valid C strings.
    unsafe {
        if let Some(h) = &plan.hostname {
            if libc::sethostname(h.as_ptr(), h.as_bytes().len()) != 0 {
                return Err(last_err("sethostname"));
            }
        }
        if let Some(d) = &plan.domainname {
            if libc::setdomainname(d.as_ptr(), d.as_bytes().len()) != 0 {
                return Err(last_err("setdomainname"));
            }
        }
    }
    for (path, value) in &plan.sysctl {
        write_file(
            path,
            value,
            &format!("writing sysctl {}", path.to_string_lossy()),
        )?;
    }
    for p in &plan.readonly_paths {
        rootfs::readonly_path(p)?;
    }
    for p in &plan.masked_paths {
        rootfs::mask_path(p)?;
    }
    if plan.readonly_root {
        rootfs::readonly_root()?;
    }

    // The process.
    for (res, soft, hard, name) in &plan.rlimits {
        process::set_rlimit(*res, *soft, *hard, name)?;
    }
    if let Some(adj) = plan.oom_score_adj {
        let s = adj.to_string();
        write_file(
            c"/proc/self/oom_score_adj",
            s.as_bytes(),
            "writing oom_score_adj",
        )?;
    }
    // From here on nothing writes to /proc/self files (owned by the host's
    // root once non-dumpable, out of reach in a user namespace): close
    // /proc/PID/exe and friends to the container (CVE-2019-5736) until
    // execve of the user's program resets it. Without a user namespace the
    // init was born non-dumpable already.
    sys::set_dumpable(false).map_err(io_err("prctl(PR_SET_DUMPABLE)"))?;
    if !plan.no_new_privileges {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load
        // it while the process still has it (as runc does).
        load_seccomp(plan, sock)?;
    }
    if let Some(c) = &plan.caps {
        process::drop_bounding(c.bounding, plan.last_cap)?;
    }
    process::switch_user(plan.uid, plan.gid, &plan.groups)?;
    if let Some(c) = &plan.caps {
        process::apply_caps(c)?;
    }
    let cwd = CString::new(plan.cwd.as_str()).map_err(|_| InitError::config("cwd contains NUL"))?;
    // SAFETY: chdir with a valid C string.
    if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
        return Err(last_err("chdir to the process cwd"));
    }
    if !sys::cwd_inside_root() {
        return Err(InitError::config(
            "process.cwd is outside the container's root",
        ));
    }
    if plan.no_new_privileges {
        process::no_new_privs()?;
    }
    // SAFETY: umask never fails.
    unsafe { libc::umask(plan.umask) };

    // Resolve the program now so a missing one fails `create`.
    let Program { exe, argv, envp } = resolve_program(&plan.args, &plan.env, &plan.path_env)?;

    if plan.no_new_privileges {
        // As close to execve as possible: only the fifo open/write and
        // execve itself run under the filter.
        load_seccomp(plan, sock)?;
    }

    send(sock, &[Kind::Ready as u8, 0, 0, 0, 0]);

    // Block until `start` opens the fifo for reading.
    let fifo_path = sys::FdPath::new(fifo.as_raw_fd());
    // SAFETY: open/write/close and execve with valid, NUL-terminated arrays.
    unsafe {
        let w = libc::open(
            fifo_path.as_cstr().as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if w < 0 {
            return Err(last_err("opening exec.fifo for writing"));
        }
        // startContainer hooks: `start` has been called (it opened the
        // fifo) and waits for our byte, so poststart comes after them. A
        // failure goes to `start` through the fifo instead of the byte.
        if !plan.start_container_hooks.is_empty() {
            if let Err(e) =
                crate::hooks::run("startContainer", &plan.start_container_hooks, &state_json)
            {
                let msg = crate::sync::fifo_error_message(&e.to_string());
                libc::write(w, msg.as_ptr().cast(), msg.len());
                libc::_exit(1);
            }
        }
        libc::write(w, crate::sync::FIFO_GO.as_ptr().cast(), 1);
        libc::close(w);
        drop(fifo);
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        // exec failed after create succeeded: nobody is listening on the
        // socket any more, so say it on stderr and exit like a shell would.
        let e = io::Error::last_os_error();
        let code = if e.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        };
        let msg = format!("pier-runtime: exec {}: {e}\n", exe.to_string_lossy());
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(code);
    }
}

fn hook_err(e: crate::Error) -> InitError {
    InitError {
        kind: Kind::Init,
        errno: 0,
        msg: e.to_string(),
    }
}

/// Installs the seccomp filter, sending a notify fd to the parent.
fn load_seccomp(plan: &InitPlan, sock: RawFd) -> InitResult<()> {
    let Some(sc) = &plan.seccomp else {
        return Ok(());
    };
    let listener = crate::seccomp::load(sc).map_err(io_err("loading the seccomp filter"))?;
    if let Some(fd) = listener {
        crate::sync::send_fds(
            sock,
            &[Kind::SeccompFd as u8, 0, 0, 0, 0],
            &[fd.as_raw_fd()],
        )
        .map_err(io_err("sending the seccomp notify fd"))?;
    }
    Ok(())
}
