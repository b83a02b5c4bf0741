//! Parent side of `create`: state dir, exec fifo, clone3 of the init,
//! the ready/error handshake and state.json; plus the fifo release of
//! `start` and the pid-namespace walk of `kill --all`.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::Spec;

use crate::cgroups::{self, Cgroup};
use crate::init::{self, InitPlan};
use crate::state::{self, StateFile, EXEC_FIFO};
use crate::{config, Container, CreateOptions, Error, Result, Runtime, Status};

pub fn create(rt: &Runtime, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
    state::validate_id(id)?;
    let bundle = bundle
        .canonicalize()
        .map_err(Error::io(format!("bundle {}", bundle.display())))?;
    let spec = config::load_spec(&bundle.join("config.json"))?;

    fs::create_dir_all(rt.root())
        .map_err(Error::io(format!("creating {}", rt.root().display())))?;
    let _ = fs::set_permissions(rt.root(), fs::Permissions::from_mode(0o711));
    let dir = rt.root().join(id);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(id.to_owned()))
        }
        Err(e) => return Err(Error::io(format!("creating {}", dir.display()))(e)),
    }
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o711));
    match create_in(id, &bundle, &spec, &dir, opts) {
        Ok(c) => Ok(c),
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig("state path contains NUL".into()))?;
    // SAFETY: mkfifo with a valid C string.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o622) } != 0 {
        return Err(Error::io("creating exec.fifo")(io::Error::last_os_error()));
    }
    // The umask may have narrowed the mode; the container user must be able
    // to open it for writing.
    fs::set_permissions(path, fs::Permissions::from_mode(0o622))
        .map_err(Error::io("chmod exec.fifo"))
}

fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills two descriptors we then own.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret != 0 {
        return Err(Error::io("socketpair")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptors from socketpair.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Duplicates `fd` to a number >= `min` (close-on-exec), so it cannot
/// collide with descriptors the container must keep (3..3+preserve_fds).
fn dup_above(fd: OwnedFd, min: RawFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(Error::io("dup")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn waitpid(pid: i32) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Some(status);
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

fn describe_wait(status: Option<i32>) -> String {
    match status {
        Some(s) if libc::WIFEXITED(s) => format!("exit status {}", libc::WEXITSTATUS(s)),
        Some(s) if libc::WIFSIGNALED(s) => format!("killed by signal {}", libc::WTERMSIG(s)),
        _ => "unknown status".into(),
    }
}

/// clone3 the init (in a joined pid namespace if asked) and run
/// `init::child_main` in the child.
fn spawn(
    plan: &InitPlan,
    child_sock: RawFd,
    flags: u64,
    join_pid: Option<&OwnedFd>,
) -> Result<i32> {
    // Born non-dumpable (CVE-2019-5736: its /proc/PID/exe is the runtime
    // binary until it execs), except with a new user namespace: the init
    // then writes /proc/self files as the namespace's root during setup
    // and turns non-dumpable itself afterwards.
    // SAFETY: the caller is single-threaded (documented contract).
    unsafe {
        clone_child(flags, join_pid, !plan.userns, || {
            init::child_main(plan, child_sock)
        })
    }
}

/// clone3(`flags`) a child that runs `child` (which ends in execve or
/// _exit), born in the pid namespace `pid_ns` when given and non-dumpable
/// when asked (a child that shows up in a container's pid namespace still
/// running the runtime binary must keep its /proc/PID/exe closed to the
/// container: CVE-2019-5736). This process's own pid namespace for
/// children and dumpable flag are restored whatever happens.
///
/// # Safety
/// The calling process must be single-threaded.
pub(crate) unsafe fn clone_child(
    flags: u64,
    pid_ns: Option<&OwnedFd>,
    non_dumpable: bool,
    child: impl FnOnce(),
) -> Result<i32> {
    let was_dumpable = crate::sys::dumpable();
    if non_dumpable {
        crate::sys::set_dumpable(false).map_err(Error::io("prctl(PR_SET_DUMPABLE)"))?;
    }
    let res = clone_in_pid_ns(flags, pid_ns, child);
    if was_dumpable && non_dumpable {
        let _ = crate::sys::set_dumpable(true);
    }
    res
}

unsafe fn clone_in_pid_ns(
    flags: u64,
    pid_ns: Option<&OwnedFd>,
    child: impl FnOnce(),
) -> Result<i32> {
    let restore = match pid_ns {
        Some(target) => {
            let restore = File::open("/proc/self/ns/pid_for_children")
                .map_err(Error::io("opening /proc/self/ns/pid_for_children"))?;
            // SAFETY: setns on a namespace descriptor.
            if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
                return Err(Error::io("joining the pid namespace")(
                    io::Error::last_os_error(),
                ));
            }
            Some(restore)
        }
        None => None,
    };
    // SAFETY: single-threaded per the contract; the child never returns.
    let res = unsafe { crate::sys::clone3(flags) };
    if let Ok(0) = res {
        child();
        // `child` ends in execve or _exit; never come back to the caller's
        // code in the child.
        unsafe { libc::_exit(127) };
    }
    if let Some(restore) = restore {
        // SAFETY: setns back to our own pid namespace for children.
        unsafe { libc::setns(restore.as_raw_fd(), libc::CLONE_NEWPID) };
    }
    res.map_err(Error::io("clone3"))
}

fn create_in(
    id: &str,
    bundle: &Path,
    spec: &Spec,
    dir: &Path,
    opts: CreateOptions,
) -> Result<Container> {
    let fifo = dir.join(EXEC_FIFO);
    mkfifo(&fifo)?;
    let config::Prepared {
        mut plan,
        ns,
        rootfs,
    } = config::prepare(spec, bundle, &fifo, dir.parent())?;
    let raw = |f: &Option<OwnedFd>| f.as_ref().map(|f| f.as_raw_fd());
    plan.stdio = [
        raw(&opts.stdio.stdin),
        raw(&opts.stdio.stdout),
        raw(&opts.stdio.stderr),
    ];
    plan.preserve_fds = opts.preserve_fds;
    plan.no_pivot = opts.no_pivot;

    let min_fd = 3 + opts.preserve_fds as RawFd;
    let (parent_sock, child_sock) = socketpair()?;
    let child_sock = dup_above(child_sock, min_fd)?;
    // process.terminal: the init sends the pty master over it (terminal.rs).
    let console = crate::terminal::for_create(spec, opts.console_socket.as_deref())?
        .map(|fd| dup_above(fd, min_fd))
        .transpose()?;
    plan.console_sock = console.as_ref().map(|f| f.as_raw_fd());

    // The cgroup: created before the init runs anything of the user's.
    let (cg_state, resources) = cgroups::plan(spec, id)?;
    let cg_guard = CgroupGuard(Some(cg_state.clone()));
    let new_cgroup_ns = ns.clone_flags & libc::CLONE_NEWCGROUP as u64 != 0;
    plan.mounts =
        cgroups::expand_mounts(std::mem::take(&mut plan.mounts), &cg_state, new_cgroup_ns)?;
    // A new cgroup namespace is rooted at the cgroup the child is born in:
    // so we enter the container's cgroup ourselves for the clone and go
    // back afterwards. Otherwise the child is moved in after the clone,
    // while it sets up its mounts (on another CPU), long before it can
    // exec: the cgroup work (slow migrations on v1) overlaps its setup;
    // `place` writes the limits before the move where that matters. (With
    // a new cgroup namespace they are written after the clone, or a pids
    // limit of 1 would refuse it; terminal.rs retries its pty open for
    // that case.)
    let (early, back) = if new_cgroup_ns {
        let cg = Cgroup::open(&cg_state)?;
        let back = cgroups::own_cgroups();
        cg.add(std::process::id() as i32)?;
        (Some(cg), Some(back))
    } else {
        (None, None)
    };
    let spawned = spawn(
        &plan,
        child_sock.as_raw_fd(),
        ns.clone_flags,
        ns.join_pid.as_ref(),
    );
    let returned = back.as_ref().map_or(Ok(()), |b| cgroups::return_to(b));
    let pid = spawned?;
    if let Err(e) = returned {
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        waitpid(pid);
        return Err(e);
    }
    if early.is_none() {
        cgroups::place_early(&cg_state, pid);
    }
    let placed = match early {
        Some(cg) => cg.apply(&resources),
        None => Cgroup::open(&cg_state).and_then(|cg| cg.place(pid, &resources)),
    };
    if let Err(e) = placed {
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        waitpid(pid);
        return Err(e);
    }
    drop(child_sock);
    drop(console);
    drop(ns);
    drop(opts.stdio);

    let host_mounts = !plan.mount_ns;
    let fail = |e: Error| -> Error {
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        waitpid(pid);
        if host_mounts {
            crate::mountinfo::unmount_container_mounts(&rootfs);
        }
        e
    };
    // The init's messages until it is ready (seccomp fd, hooks: handshake.rs).
    let ctx = crate::handshake::ParentCtx::new(id, bundle, spec, &plan);
    match crate::handshake::wait_ready(&parent_sock, pid, &ctx) {
        Ok(crate::handshake::Outcome::Ready) => {}
        Ok(crate::handshake::Outcome::Eof) => {
            let status = waitpid(pid);
            if host_mounts {
                crate::mountinfo::unmount_container_mounts(&rootfs);
            }
            return Err(Error::Init(format!(
                "init exited during setup without reporting ({})",
                describe_wait(status)
            )));
        }
        Err(e) => return Err(fail(e)),
    }

    let (_, start_time) = state::proc_stat(pid)
        .map_err(|e| fail(Error::io(format!("reading /proc/{pid}/stat"))(e)))?;
    let st = StateFile {
        id: id.to_owned(),
        pid,
        start_time,
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: Some(cg_state),
        host_mounts: !plan.mount_ns,
    };
    state::save(dir, &st).map_err(|e| fail(Error::io("writing state.json")(e)))?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid).map_err(fail)?;
    }
    cg_guard.disarm();
    Ok(Container {
        dir: dir.to_path_buf(),
        state: st,
    })
}

fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::env::current_dir().map_err(Error::io("cwd"))?,
    };
    let name = p
        .file_name()
        .ok_or_else(|| Error::InvalidConfig(format!("bad pid file {}", p.display())))?
        .to_string_lossy()
        .into_owned();
    state::write_atomic(&parent, &name, pid.to_string().as_bytes())
        .map_err(Error::io(format!("writing pid file {}", p.display())))
}

/// `start`: open the fifo for reading, which unblocks init's open; read
/// its byte, then remove the fifo (the container is now "running").
pub fn release_fifo(c: &Container) -> Result<()> {
    let path = c.dir.join(EXEC_FIFO);
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig("state path contains NUL".into()))?;
    // SAFETY: open with a valid C string; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::io("opening exec.fifo")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r > 0 {
            let mut b = [0u8; crate::sync::FIFO_MESSAGE_MAX];
            // SAFETY: read into a buffer of its own length.
            let n = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
            if n > 0 {
                match crate::sync::parse_fifo_message(&b[..n as usize]) {
                    Ok(()) => break,
                    Err(msg) => {
                        // The init exits right after its message: report
                        // the container stopped, not still created.
                        for _ in 0..2000 {
                            if c.status() == Status::Stopped {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        return Err(Error::Init(msg));
                    }
                }
            }
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                continue;
            }
            return Err(Error::Init("init closed exec.fifo without a byte".into()));
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("poll exec.fifo")(io::Error::last_os_error()));
        }
        if c.status() == Status::Stopped {
            return Err(Error::Init(format!(
                "container {} exited before start",
                c.id()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::remove_file(&path).map_err(Error::io("removing exec.fifo"))
}

/// Every process whose pid namespace is that of `init`.
pub fn pids_in_pid_ns(init: i32) -> Result<Vec<i32>> {
    let ns = fs::metadata(format!("/proc/{init}/ns/pid"))
        .map_err(Error::io(format!("reading the pid namespace of {init}")))?;
    let mut out = vec![init];
    for e in fs::read_dir("/proc")
        .map_err(Error::io("reading /proc"))?
        .flatten()
    {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == init {
            continue;
        }
        if let Ok(m) = fs::metadata(format!("/proc/{pid}/ns/pid")) {
            if m.ino() == ns.ino() && m.dev() == ns.dev() {
                out.push(pid);
            }
        }
    }
    Ok(out)
}

/// Removes the cgroup of a failed create.
struct CgroupGuard(Option<cgroups::CgroupState>);

impl CgroupGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(st) = self.0.take() {
            let _ = cgroups::remove(&st);
        }
    }
}
