//! `exec`: a new process in a live container. The parent opens the
//! container's namespaces (/proc/PID/ns/*) and root, compiles the
//! container's seccomp filter, and clone3s a child inside the container's
//! pid namespace; the parent puts it in the container's cgroup and lets it
//! go; the child joins the other namespaces (user first, mount last),
//! enters the container's root, applies the process (rlimits, user, caps,
//! cwd, no_new_privs, seccomp, terminal) and execs. Errors come back over a
//! close-on-exec socketpair: EOF means the program is running.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use oci_spec::runtime::{ContainerState, Process};

use crate::init::{resolve_program, InitError, InitResult, Kind, Program};
use crate::mounts::cstring;
use crate::process::{self, CapSets};
use crate::seccomp::SeccompPlan;
use crate::{Container, Error, Result, Status, Stdio};

/// Options of [`Container::exec`].
#[derive(Debug, Default)]
pub struct ExecOptions {
    pub stdio: Stdio,
    /// Required when `process.terminal` is set: the pty master is sent
    /// there.
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Namespace files in the order they are joined: user first (it grants
/// the rights for the others), mount last (it changes the root).
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

struct ExecPlan {
    stdio: [Option<RawFd>; 3],
    preserve_fds: u32,
    console_sock: Option<RawFd>,
    join: Vec<(RawFd, libc::c_int)>,
    root: RawFd,
    rlimits: Vec<(libc::c_int, u64, u64, CString)>,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    umask: Option<u32>,
    caps: Option<CapSets>,
    last_cap: u32,
    no_new_privileges: bool,
    seccomp: Option<SeccompPlan>,
    cwd: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    path_env: String,
}

fn same_ns(pid: i32, name: &str) -> bool {
    match (
        std::fs::metadata(format!("/proc/{pid}/ns/{name}")),
        std::fs::metadata(format!("/proc/self/ns/{name}")),
    ) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        // A namespace type this kernel lacks: nothing to join.
        _ => true,
    }
}

fn open_ns(pid: i32, name: &str) -> Result<OwnedFd> {
    File::open(format!("/proc/{pid}/ns/{name}"))
        .map(OwnedFd::from)
        .map_err(Error::io(format!("opening /proc/{pid}/ns/{name}")))
}

/// Starts `process` in the container; returns its host pid. Must be called
/// from a single-threaded process.
pub fn exec(c: &Container, process: &Process, opts: ExecOptions) -> Result<i32> {
    let status = c.status();
    if status != Status::Running && status != Status::Created {
        return Err(c.bad_state(status, "cannot exec in it"));
    }
    let spec = crate::config::load_spec(&c.bundle().join("config.json"))?;
    let pid = c.pid();
    let inv = |m: &str| Error::InvalidConfig(m.to_owned());

    let (args, env, cwd) = crate::config::command(process)?;
    let rlimits = crate::config::rlimits(process)?;
    let user = process.user();
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| crate::seccomp::compile_cached(s, c.state_dir().parent()))
        .transpose()?;

    // Descriptors the child needs, kept open (and above the preserved
    // range) until it has exec'd.
    let min_fd = 3 + opts.preserve_fds as RawFd;
    let above = |fd: OwnedFd| crate::sync::dup_above(fd, min_fd);
    let mut ns_fds = Vec::new();
    for (name, flag) in NAMESPACES {
        if !same_ns(pid, name) {
            ns_fds.push((above(open_ns(pid, name)?)?, *flag));
        }
    }
    let pid_ns = if same_ns(pid, "pid") {
        None
    } else {
        Some(open_ns(pid, "pid")?)
    };
    let root = above(OwnedFd::from(
        File::open(format!("/proc/{pid}/root"))
            .map_err(Error::io(format!("opening /proc/{pid}/root")))?,
    ))?;
    let terminal = process.terminal() == Some(true);
    let console = match (terminal, &opts.console_socket) {
        (false, _) => None,
        (true, Some(p)) => Some(above(crate::terminal::connect(p)?)?),
        (true, None) => {
            return Err(inv(
                "process.terminal needs --console-socket (pier-runtime does not relay ttys)",
            ))
        }
    };

    let raw = |f: &Option<OwnedFd>| f.as_ref().map(|f| f.as_raw_fd());
    let plan = ExecPlan {
        stdio: [
            raw(&opts.stdio.stdin),
            raw(&opts.stdio.stdout),
            raw(&opts.stdio.stderr),
        ],
        preserve_fds: opts.preserve_fds,
        console_sock: console.as_ref().map(|f| f.as_raw_fd()),
        join: ns_fds.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect(),
        root: root.as_raw_fd(),
        rlimits,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        caps: process
            .capabilities()
            .as_ref()
            .map(process::cap_sets_from_spec)
            .transpose()?,
        last_cap: process::last_cap(),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp,
        cwd: cstring(cwd.as_str(), "cwd")?,
        path_env: process::path_from_env(&env).to_owned(),
        args: args
            .iter()
            .map(|a| cstring(a.as_str(), "process.args"))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|a| cstring(a.as_str(), "process.env"))
            .collect::<Result<_>>()?,
    };

    let (parent_sock, child_sock) = crate::sync::socketpair()?;
    let child_sock = above(child_sock)?;
    let child = spawn(&plan, child_sock.as_raw_fd(), pid_ns.as_ref())?;
    drop(child_sock);
    drop(console);
    drop(opts.stdio);
    let fail = |e: Error| -> Error {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        e
    };
    if let Some(cg) = c.cgroup().map_err(fail)? {
        cg.add(child).map_err(fail)?;
    }
    crate::handshake::resume(&parent_sock).map_err(fail)?;

    let mut buf = [0u8; 4096];
    loop {
        let (n, fds) = crate::sync::recv_fds(parent_sock.as_raw_fd(), &mut buf)
            .map_err(|e| fail(Error::io("reading from the exec child")(e)))?;
        if n == 0 {
            break;
        }
        if buf[0] == Kind::SeccompFd as u8 {
            let listener = plan.seccomp.as_ref().and_then(|s| s.listener.as_ref());
            if let (Some(fd), Some((path, meta))) = (fds.first(), listener) {
                let mut st = c.state();
                st.set_status(ContainerState::Running);
                crate::seccomp::send_to_listener(path, meta, child, &st, fd).map_err(fail)?;
            }
            continue;
        }
        return Err(fail(match InitError::decode(&buf[..n]) {
            Ok(Some(e)) => e.into_error(),
            Ok(None) => Error::Init("unexpected ready message from exec".into()),
            Err(m) => Error::Init(m),
        }));
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, child)?;
    }
    Ok(child)
}

fn spawn(plan: &ExecPlan, sock: RawFd, pid_ns: Option<&OwnedFd>) -> Result<i32> {
    // SAFETY: the caller is single-threaded (documented contract).
    unsafe { crate::create::clone_child(0, pid_ns, true, || child_main(plan, sock)) }
}

fn child_main(plan: &ExecPlan, sock: RawFd) -> ! {
    let err = match setup(plan, sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let mut buf = Vec::with_capacity(256);
    err.encode(&mut buf);
    let _ = crate::sync::send_fds(sock, &buf, &[]);
    // SAFETY: terminating the child without running Rust/atexit handlers.
    unsafe { libc::_exit(1) }
}

fn last(context: &str) -> InitError {
    InitError::io(context, io::Error::last_os_error())
}

fn setup(plan: &ExecPlan, sock: RawFd) -> InitResult<std::convert::Infallible> {
    crate::init::reset_signals();
    crate::init::setup_stdio(&plan.stdio, plan.preserve_fds)?;
    // Wait until the parent has put us in the container's cgroup.
    let mut b = [0u8; 1];
    // SAFETY: read into a one-byte buffer.
    if unsafe { libc::read(sock, b.as_mut_ptr().cast(), 1) } != 1 {
        return Err(last("waiting for the parent"));
    }
    for (fd, nstype) in &plan.join {
        // SAFETY: setns on a namespace descriptor the parent opened.
        if unsafe { libc::setns(*fd, *nstype) } != 0 {
            return Err(last("joining a namespace of the container"));
        }
    }
    // SAFETY: fchdir/chroot/chdir with valid arguments.
    unsafe {
        if libc::fchdir(plan.root) != 0 || libc::chroot(c".".as_ptr()) != 0 {
            return Err(last("entering the container's root"));
        }
        libc::chdir(c"/".as_ptr());
    }
    if let Some(console) = plan.console_sock {
        crate::terminal::setup(console, false)?;
    }
    for (res, soft, hard, name) in &plan.rlimits {
        process::set_rlimit(*res, *soft, *hard, name)?;
    }
    if !plan.no_new_privileges {
        load_seccomp(plan, sock)?;
    }
    if let Some(c) = &plan.caps {
        process::drop_bounding(c.bounding, plan.last_cap)?;
    }
    process::switch_user(plan.uid, plan.gid, &plan.groups)?;
    if let Some(c) = &plan.caps {
        process::apply_caps(c)?;
    }
    // SAFETY: chdir with a valid C string.
    if unsafe { libc::chdir(plan.cwd.as_ptr()) } != 0 {
        return Err(last("chdir to the process cwd"));
    }
    if !crate::sys::cwd_inside_root() {
        return Err(InitError::config(
            "process.cwd is outside the container's root",
        ));
    }
    if plan.no_new_privileges {
        process::no_new_privs()?;
    }
    if let Some(m) = plan.umask {
        // SAFETY: umask never fails.
        unsafe { libc::umask(m) };
    }
    let Program { exe, argv, envp } = resolve_program(&plan.args, &plan.env, &plan.path_env)?;
    if plan.no_new_privileges {
        load_seccomp(plan, sock)?;
    }
    // SAFETY: execve with valid, NUL-terminated arrays.
    unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = io::Error::last_os_error();
    Err(if e.raw_os_error() == Some(libc::ENOENT) {
        InitError {
            kind: Kind::ExecNotFound,
            errno: 0,
            msg: exe.to_string_lossy().into_owned(),
        }
    } else {
        InitError::io(&format!("exec {}", exe.to_string_lossy()), e)
    })
}

fn load_seccomp(plan: &ExecPlan, sock: RawFd) -> InitResult<()> {
    let Some(sc) = &plan.seccomp else {
        return Ok(());
    };
    let listener =
        crate::seccomp::load(sc).map_err(|e| InitError::io("loading the seccomp filter", e))?;
    if let Some(fd) = listener {
        crate::sync::send_fds(
            sock,
            &[Kind::SeccompFd as u8, 0, 0, 0, 0],
            &[fd.as_raw_fd()],
        )
        .map_err(|e| InitError::io("sending the seccomp notify fd", e))?;
    }
    Ok(())
}

/// Waits for `pid` (a child of ours) while forwarding `set`'s signals other
/// than SIGCHLD to it; returns a shell-style exit code. `set` must be
/// blocked already.
pub fn wait_forwarding(pid: i32, set: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: waiting for a signal in the blocked set.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(set, &mut info)
        };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: forwarding a signal.
            unsafe { libc::kill(pid, sig) };
            continue;
        }
        let mut status = 0;
        // SAFETY: non-blocking wait for our child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                1
            };
        }
    }
}

fn write_pid_file(p: &std::path::Path, pid: i32) -> Result<()> {
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::env::current_dir().map_err(Error::io("cwd"))?,
    };
    let name = p
        .file_name()
        .ok_or_else(|| Error::InvalidConfig(format!("bad pid file {}", p.display())))?
        .to_string_lossy()
        .into_owned();
    crate::state::write_atomic(&parent, &name, pid.to_string().as_bytes())
        .map_err(Error::io(format!("writing pid file {}", p.display())))
}

/// `pier-runtime exec` (runc's flags).
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// A JSON file with the process (OCI `process` object) to run.
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (needs --console-socket).
    #[arg(long, short = 't')]
    tty: bool,
    /// Do not wait for the process.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Extra environment variables (KEY=VALUE).
    #[arg(long, short = 'e')]
    env: Vec<String>,
    #[arg(long)]
    cwd: Option<String>,
    /// UID[:GID]
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long = "additional-gids", short = 'g')]
    additional_gids: Vec<u32>,
    /// Capabilities to add to the process.
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for compatibility (no SELinux here).
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Accepted for compatibility (no AppArmor here).
    #[arg(long)]
    apparmor: Option<String>,
    /// Accepted for compatibility.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl ExecArgs {
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn capability(name: &str) -> Result<oci_spec::runtime::Capability> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| Error::InvalidConfig(format!("unknown capability {name:?}")))
}

/// The process `exec` runs: --process, or the container's process with
/// the command line's changes (as runc builds it).
fn build_process(c: &Container, a: &ExecArgs) -> Result<Process> {
    if let Some(path) = &a.process {
        let data = std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))?;
        return serde_json::from_slice(&data)
            .map_err(|e| Error::InvalidConfig(format!("{}: {e}", path.display())));
    }
    if a.args.is_empty() {
        return Err(Error::InvalidConfig("exec: no command given".into()));
    }
    let spec = crate::config::load_spec(&c.bundle().join("config.json"))?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        p.set_env(Some(env));
    }
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let num = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                Error::InvalidConfig(format!("--user {u:?}: numeric uid[:gid] expected"))
            })
        };
        user.set_uid(num(uid)?);
        if let Some(g) = gid {
            user.set_gid(num(g)?);
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let add = |set: &Option<oci_spec::runtime::Capabilities>,
                   cap: oci_spec::runtime::Capability| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        for name in &a.cap {
            let cap = capability(name)?;
            caps.set_bounding(add(caps.bounding(), cap));
            caps.set_effective(add(caps.effective(), cap));
            caps.set_permitted(add(caps.permitted(), cap));
            // Ambient needs inheritable: only when the spec has some.
            if caps.inheritable().as_ref().is_some_and(|s| !s.is_empty()) {
                caps.set_ambient(add(caps.ambient(), cap));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// Runs the `exec` command; returns the exit code.
pub fn cli(rt: &crate::Runtime, a: &ExecArgs) -> Result<i32> {
    let _ = (&a.process_label, &a.apparmor, a.ignore_paused);
    let c = rt.load(&a.id)?;
    let process = build_process(&c, a)?;
    // A terminal without a console socket: relay it ourselves (foreground).
    let relay = if process.terminal() == Some(true) && a.console_socket.is_none() && !a.detach {
        Some(crate::terminal::Relay::new()?)
    } else {
        None
    };
    let opts = ExecOptions {
        stdio: Stdio::default(),
        console_socket: relay
            .as_ref()
            .map(|r| r.socket())
            .or_else(|| a.console_socket.clone()),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    };
    if a.detach {
        c.exec(&process, opts)?;
        return Ok(0);
    }
    // Block SIGCHLD and the forwarded signals before the child exists.
    // SAFETY: sigset manipulation and sigprocmask with valid pointers.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGCHLD,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let pid = c.exec(&process, opts)?;
    match relay {
        Some(r) => r.run(pid, &set),
        None => Ok(wait_forwarding(pid, &set)),
    }
}
