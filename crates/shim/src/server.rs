//! The shim process: daemonize, create the container, then one poll loop
//! over the container's output pipes, a signalfd and the clients of
//! `shim.sock`, until the container's init has exited and its output is
//! drained.

use crate::jsonlog::JsonLog;
use crate::protocol::{
    frame_header, ExecExit, ExitInfo, Ready, Request, Response, ShimConfig, EXIT_STREAM, STDERR,
    STDOUT,
};
use crate::{CONFIG_FILE, EXIT_FILE, LOG_FILE, SOCKET_FILE};
use pier_runtime::{Container, CreateOptions, ExecOptions, Runtime, Status, Stdio};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long output may still arrive after init has exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A client that lets this much output pile up unread is dropped.
const MAX_CLIENT_BACKLOG: usize = 8 << 20;
const MAX_REQUEST: usize = 64 << 10;
/// Client input waiting for a process's stdin beyond this is not read.
const MAX_STDIN_BACKLOG: usize = 64 << 10;
/// One read from a pipe, pty or client (on the stack).
const READ_BUF: usize = 16 << 10;

pub fn run(dir: &Path) -> i32 {
    let cfg: ShimConfig = match std::fs::read(dir.join(CONFIG_FILE))
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(cfg) => cfg,
        Err(e) => {
            print_ready(&failed(
                format!("reading {}: {e}", dir.join(CONFIG_FILE).display()),
                None,
            ));
            return 1;
        }
    };
    let (ready_r, ready_w) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            print_ready(&failed(format!("pipe: {e}"), None));
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded here; the child only continues
    // with ordinary code of this same process image.
    match unsafe { libc::fork() } {
        -1 => {
            print_ready(&failed(
                format!("fork: {}", io::Error::last_os_error()),
                None,
            ));
            1
        }
        0 => {
            drop(ready_r);
            let code = background(dir, &cfg, ready_w);
            // SAFETY: leave without running the parent's atexit handlers twice.
            unsafe { libc::_exit(code) }
        }
        _ => {
            drop(ready_w);
            // One line, not EOF: the container's init holds a copy of the
            // write end until it execs.
            let mut line = String::new();
            let _ = io::BufReader::new(File::from(ready_r)).read_line(&mut line);
            let ready: Ready = serde_json::from_str(line.trim()).unwrap_or_else(|_| {
                failed("the shim died while creating the container".into(), None)
            });
            print_ready(&ready);
            i32::from(!ready.ok)
        }
    }
}

fn failed(error: String, exit_code: Option<i32>) -> Ready {
    Ready {
        ok: false,
        pid: 0,
        shim_pid: 0,
        error: Some(error),
        exit_code,
    }
}

fn print_ready(ready: &Ready) {
    let mut out = io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, ready);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn send_ready(fd: OwnedFd, ready: &Ready) {
    let mut f = File::from(fd);
    let _ = serde_json::to_writer(&mut f, ready);
    let _ = f.write_all(b"\n");
}

/// The long-lived half: its own session, a subreaper for the container.
fn background(dir: &Path, cfg: &ShimConfig, ready: OwnedFd) -> i32 {
    match setup(dir, cfg) {
        Ok(mut shim) => {
            send_ready(
                ready,
                &Ready {
                    ok: true,
                    pid: shim.pid,
                    shim_pid: std::process::id() as i32,
                    error: None,
                    exit_code: None,
                },
            );
            shim.serve()
        }
        Err(SetupError { message, exit_code }) => {
            eprintln!("pier-shim {}: {message}", cfg.id);
            let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
            send_ready(ready, &failed(message, exit_code));
            1
        }
    }
}

struct SetupError {
    message: String,
    exit_code: Option<i32>,
}

impl<S: std::fmt::Display, E: std::fmt::Display> From<(S, E)> for SetupError {
    fn from((what, e): (S, E)) -> Self {
        SetupError {
            message: format!("{what}: {e}"),
            exit_code: None,
        }
    }
}

fn setup(dir: &Path, cfg: &ShimConfig) -> Result<Shim, SetupError> {
    rustix::process::setsid().map_err(|e| ("setsid", e))?;
    redirect_stdio(&dir.join(LOG_FILE)).map_err(|e| ("redirecting the shim's stdio", e))?;
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| ("becoming a subreaper", e))?;
    let signals = block_signals().map_err(|e| ("signalfd", e))?;

    // Bound by a relative name from inside the state directory: a socket
    // path is limited to 108 bytes, the state directory's path is not.
    std::env::set_current_dir(dir).map_err(|e| (dir.display(), e))?;
    let sock = dir.join(SOCKET_FILE);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(SOCKET_FILE).map_err(|e| (sock.display(), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ("listener", e))?;

    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log_path)
        .map_err(|e| (cfg.log_path.display(), e))?;

    let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
    let mut pipes = [None, None];
    let mut stdin = None;
    let mut master = None;
    let console = if cfg.tty {
        Some(Console::bind().map_err(|e| ("binding the console socket", e))?)
    } else {
        None
    };
    let stdio = if cfg.tty {
        // The init's stdio becomes the pty slave.
        Stdio::default()
    } else {
        let (out_r, out_w) = rustix::pipe::pipe_with(cloexec).map_err(|e| ("pipe", e))?;
        let (err_r, err_w) = rustix::pipe::pipe_with(cloexec).map_err(|e| ("pipe", e))?;
        let stdin_theirs = if cfg.open_stdin {
            let (r, w) = rustix::pipe::pipe_with(cloexec).map_err(|e| ("pipe", e))?;
            stdin = Some(Sink::new(File::from(w)));
            r
        } else {
            OwnedFd::from(File::open("/dev/null").map_err(|e| ("/dev/null", e))?)
        };
        pipes = [Some(File::from(out_r)), Some(File::from(err_r))];
        Stdio {
            stdin: Some(stdin_theirs),
            stdout: Some(out_w),
            stderr: Some(err_w),
        }
    };
    let opts = CreateOptions {
        stdio,
        console_socket: console.as_ref().map(|_| CONSOLE_SOCKET.into()),
        ..Default::default()
    };
    let runtime = Runtime::new(&cfg.runtime_root);
    let pid = in_helper(|| runtime.create(&cfg.id, &cfg.bundle, opts).map(|c| c.pid()))?;
    if let Some(console) = console {
        let m = console
            .receive()
            .map_err(|e| ("receiving the container's pty master", e))?;
        let out = m.try_clone().map_err(|e| ("dup", e))?;
        if cfg.open_stdin {
            stdin = Some(Sink::new(File::from(
                m.try_clone().map_err(|e| ("dup", e))?,
            )));
        }
        pipes[0] = Some(File::from(out));
        master = Some(m);
    }
    for p in pipes.iter().flatten() {
        set_nonblocking(p.as_raw_fd());
    }
    if let Some(s) = &stdin {
        set_nonblocking(s.file.as_raw_fd());
    }
    Ok(Shim {
        cfg: cfg.clone(),
        dir: dir.to_path_buf(),
        pid,
        signals,
        listener: Some(listener),
        pipes,
        stdin,
        master,
        log: JsonLog::new(log_file),
        clients: Vec::new(),
        next_client: 0,
        execs: Vec::new(),
        exit: None,
        drain_deadline: None,
        trim_due: true,
    })
}

/// Runs `f` (the runtime's create or exec) in a short-lived child and
/// returns the pid it reports. Creating a process touches much code and
/// memory (config parsing, seccomp, cgroups); in a child, none of it stays
/// in the long-lived shim. What `f` starts is reparented to the shim, a
/// subreaper, when the helper exits; it cannot be reaped before the shim
/// knows its pid, since the shim reaps only in its poll loop.
fn in_helper(f: impl FnOnce() -> pier_runtime::Result<i32>) -> Result<i32, SetupError> {
    let (r, w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| ("pipe", e))?;
    // SAFETY: the shim is single-threaded; the child runs `f` and leaves
    // with _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(("fork", io::Error::last_os_error()).into());
    }
    if child == 0 {
        drop(r);
        // A panic must not unwind into the shim's own frames (and run their
        // destructors) in this copy of the process.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
                Err(pier_runtime::Error::Init(
                    "the shim's helper panicked".into(),
                ))
            });
        let ready = match result {
            Ok(pid) => Ready {
                ok: true,
                pid,
                shim_pid: 0,
                error: None,
                exit_code: None,
            },
            Err(e) => failed(e.to_string(), e.exit_code()),
        };
        send_ready(w, &ready);
        // SAFETY: leave without running destructors or atexit handlers of
        // the shim's state.
        unsafe { libc::_exit(0) }
    }
    drop(w);
    // One line, not EOF: a created init holds the write end until it execs.
    let mut line = String::new();
    let _ = io::BufReader::new(File::from(r)).read_line(&mut line);
    // SAFETY: reaping our own helper.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    let ready: Ready = serde_json::from_str(line.trim())
        .unwrap_or_else(|_| failed("the shim's helper died".into(), None));
    match ready {
        Ready { ok: true, pid, .. } => Ok(pid),
        Ready {
            error, exit_code, ..
        } => Err(SetupError {
            message: error.unwrap_or_default(),
            exit_code,
        }),
    }
}

/// Name of the console socket, bound inside the state directory while the
/// runtime creates a process with a terminal.
const CONSOLE_SOCKET: &str = "console.sock";

/// A console socket the runtime connects to; the process it creates sends
/// the pty master over that connection (SCM_RIGHTS) before it runs.
struct Console {
    listener: UnixListener,
}

impl Console {
    fn bind() -> io::Result<Console> {
        let _ = std::fs::remove_file(CONSOLE_SOCKET);
        let listener = UnixListener::bind(CONSOLE_SOCKET)?;
        listener.set_nonblocking(true)?;
        Ok(Console { listener })
    }

    /// The master, once the runtime has returned: the connection is queued
    /// and the descriptor already sent.
    fn receive(&self) -> io::Result<OwnedFd> {
        let (conn, _) = self.listener.accept()?;
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        recv_fd(conn.as_raw_fd())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(CONSOLE_SOCKET);
    }
}

/// Receives one descriptor sent with SCM_RIGHTS.
fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: recvmsg with buffers that outlive the call; the control
    // message is read only when the kernel filled it in.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("no descriptor received"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Sets a terminal's window size.
fn set_winsize(fd: RawFd, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives for the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn redirect_stdio(log: &Path) -> io::Result<()> {
    let null = File::open("/dev/null")?;
    let log = OpenOptions::new().create(true).append(true).open(log)?;
    for (src, target) in [
        (null.as_raw_fd(), 0),
        (null.as_raw_fd(), 1),
        (log.as_raw_fd(), 2),
    ] {
        // SAFETY: dup2 onto the standard descriptors of this process.
        if unsafe { libc::dup2(src, target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Blocks the signals the shim handles and returns a signalfd for them.
/// The runtime resets the mask in the container's init before it execs.
fn block_signals() -> io::Result<File> {
    // SAFETY: plain libc signal-set manipulation on local storage.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

enum Mode {
    /// Reading the request line.
    Request,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Carrying an exec's stream.
    Exec { stdin: bool },
    /// Waiting for the container's exit.
    Wait,
    /// Answered: close once the output buffer is flushed.
    Closing,
}

struct Client {
    id: u64,
    stream: UnixStream,
    mode: Mode,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    read_closed: bool,
    dead: bool,
}

impl Client {
    fn queue(&mut self, data: &[u8]) {
        self.outbuf.extend_from_slice(data);
        if self.outbuf.len() > MAX_CLIENT_BACKLOG {
            self.dead = true;
        }
    }

    fn respond(&mut self, resp: &Response) {
        if let Ok(mut line) = serde_json::to_vec(resp) {
            line.push(b'\n');
            self.queue(&line);
        }
    }

    fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            match self.stream.write(&self.outbuf) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.outbuf.capacity() > 64 << 10 {
            self.outbuf = Vec::new();
        }
        if matches!(self.mode, Mode::Closing) {
            self.dead = true;
        }
    }

    /// Whether the client's input is wanted now.
    fn wants_input(&self) -> bool {
        !self.read_closed
            && matches!(
                self.mode,
                Mode::Request | Mode::Attach { .. } | Mode::Exec { .. } | Mode::Wait
            )
    }
}

/// A process's stdin: a non-blocking descriptor and what waits to be
/// written to it.
struct Sink {
    file: File,
    buf: Vec<u8>,
    /// Close once `buf` is written (the client closed its side).
    closing: bool,
}

impl Sink {
    fn new(file: File) -> Sink {
        Sink {
            file,
            buf: Vec::new(),
            closing: false,
        }
    }

    fn full(&self) -> bool {
        self.buf.len() >= MAX_STDIN_BACKLOG
    }

    /// Writes what it can; false once the reader is gone.
    fn flush(&mut self) -> bool {
        while !self.buf.is_empty() {
            match self.file.write(&self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.buf.capacity() > 64 << 10 {
            self.buf = Vec::new();
        }
        true
    }

    fn push(&mut self, data: &[u8]) -> bool {
        self.buf.extend_from_slice(data);
        self.flush()
    }

    /// Whether it is done (closed and flushed).
    fn done(&self) -> bool {
        self.closing && self.buf.is_empty()
    }
}

/// A process started by `exec`.
struct Exec {
    id: String,
    pid: i32,
    /// The client that gets its output and exit; gone if it disconnected.
    client: u64,
    /// stdout and stderr read ends (with a terminal: the master, and None).
    out: [Option<File>; 2],
    stdin: Option<Sink>,
    master: Option<OwnedFd>,
    exit: Option<i32>,
    deadline: Option<Instant>,
}

impl Exec {
    fn finished(&self, now: Instant) -> bool {
        self.exit.is_some()
            && (self.out.iter().all(Option::is_none) || self.deadline.is_some_and(|d| now >= d))
    }
}

/// What one entry of the poll set stands for.
#[derive(Clone, Copy)]
enum Tok {
    Signals,
    Listener,
    Out(usize),
    Stdin,
    Client(usize),
    ExecOut(usize, usize),
    ExecIn(usize),
}

struct Shim {
    cfg: ShimConfig,
    dir: std::path::PathBuf,
    /// Host pid of the container's init. Every call into the runtime
    /// library (start, kill, exec, status, OOM kills) runs in a helper
    /// child ([`Shim::with_container`]), so that its code and allocations
    /// never become part of the long-lived shim's memory.
    pid: i32,
    signals: File,
    listener: Option<UnixListener>,
    /// Read ends of the container's stdout and stderr (with a terminal:
    /// the master, and None); None at EOF.
    pipes: [Option<File>; 2],
    stdin: Option<Sink>,
    /// The container's pty master, for resizing.
    master: Option<OwnedFd>,
    log: JsonLog,
    clients: Vec<Client>,
    next_client: u64,
    execs: Vec<Exec>,
    exit: Option<ExitInfo>,
    drain_deadline: Option<Instant>,
    /// Set after setup and after each request: the next idle moment drops
    /// the code pages those ran from this process's memory (trim.rs).
    trim_due: bool,
}

/// Reads what is there; None at EOF or error (a pty master reports EIO
/// once its slave is closed everywhere).
fn read_some(f: &mut File, buf: &mut [u8]) -> Option<usize> {
    match f.read(buf) {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Some(0),
        Err(_) => None,
    }
}

impl Shim {
    /// Runs `f` on the container in a helper child (see [`in_helper`]).
    fn with_container(
        &self,
        f: impl FnOnce(&Container) -> pier_runtime::Result<i32>,
    ) -> Result<i32, SetupError> {
        let (root, id) = (&self.cfg.runtime_root, &self.cfg.id);
        in_helper(|| f(&Runtime::new(root).load(id)?))
    }

    fn serve(&mut self) -> i32 {
        loop {
            if let Some(deadline) = self.drain_deadline {
                if self.pipes.iter().all(Option::is_none) || Instant::now() >= deadline {
                    return self.finish();
                }
            }
            if std::mem::take(&mut self.trim_due) {
                crate::trim::trim();
            }
            self.poll_once();
        }
    }

    fn poll_once(&mut self) {
        let mut fds = Vec::with_capacity(5 + self.clients.len());
        let mut toks = Vec::with_capacity(fds.capacity());
        let pollin = libc::POLLIN;
        let mut add = |fd: RawFd, ev: i16, t: Tok| {
            fds.push(pfd(fd, ev));
            toks.push(t);
        };
        add(self.signals.as_raw_fd(), pollin, Tok::Signals);
        if let Some(l) = &self.listener {
            add(l.as_raw_fd(), pollin, Tok::Listener);
        }
        for (i, p) in self.pipes.iter().enumerate() {
            if let Some(p) = p {
                add(p.as_raw_fd(), pollin, Tok::Out(i));
            }
        }
        if let Some(s) = self.stdin.as_ref().filter(|s| !s.buf.is_empty()) {
            add(s.file.as_raw_fd(), libc::POLLOUT, Tok::Stdin);
        }
        let stdin_full = self.stdin.as_ref().is_some_and(Sink::full);
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = 0;
            if c.wants_input() {
                let blocked = match c.mode {
                    Mode::Attach { stdin: true, .. } => stdin_full,
                    Mode::Exec { stdin: true } => self
                        .execs
                        .iter()
                        .any(|e| e.client == c.id && e.stdin.as_ref().is_some_and(Sink::full)),
                    _ => false,
                };
                if !blocked {
                    ev |= pollin;
                }
            }
            if !c.outbuf.is_empty() {
                ev |= libc::POLLOUT;
            }
            add(c.stream.as_raw_fd(), ev, Tok::Client(i));
        }
        let mut timeout_at = self.drain_deadline;
        for (i, e) in self.execs.iter().enumerate() {
            for (k, p) in e.out.iter().enumerate() {
                if let Some(p) = p {
                    add(p.as_raw_fd(), pollin, Tok::ExecOut(i, k));
                }
            }
            if let Some(s) = e.stdin.as_ref().filter(|s| !s.buf.is_empty()) {
                add(s.file.as_raw_fd(), libc::POLLOUT, Tok::ExecIn(i));
            }
            if let Some(d) = e.deadline {
                timeout_at = Some(timeout_at.map_or(d, |t| t.min(d)));
            }
        }
        let timeout = timeout_at.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(1000) as i32
                + 1
        });
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n > 0 {
            for (p, t) in fds.iter().zip(&toks) {
                if p.revents == 0 {
                    continue;
                }
                match *t {
                    Tok::Signals => self.handle_signals(),
                    Tok::Listener => self.accept(),
                    Tok::Out(i) => self.read_output(i),
                    Tok::Stdin => {
                        if !self.stdin.as_mut().is_some_and(Sink::flush) {
                            self.stdin = None;
                        }
                    }
                    Tok::Client(i) => {
                        if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                            self.read_client(i);
                        }
                        if p.revents & libc::POLLOUT != 0 {
                            self.clients[i].flush();
                        }
                    }
                    Tok::ExecOut(i, k) => self.read_exec_output(i, k),
                    Tok::ExecIn(i) => {
                        let e = &mut self.execs[i];
                        if !e.stdin.as_mut().is_some_and(Sink::flush) {
                            e.stdin = None;
                        }
                    }
                }
            }
        }
        if self.stdin.as_ref().is_some_and(Sink::done) {
            self.stdin = None;
        }
        self.finish_execs();
        self.clients.retain(|c| !c.dead);
    }

    fn handle_signals(&mut self) {
        let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>() * 8];
        while let Ok(n) = (&self.signals).read(&mut buf) {
            if n == 0 {
                break;
            }
            for chunk in buf[..n].chunks_exact(std::mem::size_of::<libc::signalfd_siginfo>()) {
                let signo = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as i32;
                if signo == libc::SIGTERM || signo == libc::SIGINT || signo == libc::SIGHUP {
                    let _ = self.with_container(|c| c.kill(libc::SIGTERM, false).map(|()| 0));
                }
            }
        }
        self.reap();
    }

    /// Reaps every exited child; records the init's and execs' status.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            let exit_code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            if pid == self.pid && self.exit.is_none() {
                self.exit = Some(ExitInfo {
                    exit_code,
                    // Counted until the container is deleted (in finish).
                    oom_killed: self
                        .with_container(|c| Ok(i32::from(c.oom_killed())))
                        .is_ok_and(|n| n > 0),
                    finished_at: pier_common::time::now_rfc3339(),
                });
                self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
            } else if let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid) {
                e.exit = Some(exit_code);
                e.deadline = Some(Instant::now() + DRAIN_TIMEOUT);
            }
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.next_client += 1;
                self.clients.push(Client {
                    id: self.next_client,
                    stream,
                    mode: Mode::Request,
                    inbuf: Vec::new(),
                    outbuf: Vec::new(),
                    read_closed: false,
                    dead: false,
                });
            }
        }
    }

    fn read_output(&mut self, idx: usize) {
        let mut buf = [0u8; READ_BUF];
        let Some(pipe) = &mut self.pipes[idx] else {
            return;
        };
        let n = match read_some(pipe, &mut buf) {
            Some(0) => return,
            Some(n) => n,
            None => {
                self.pipes[idx] = None;
                return;
            }
        };
        let stream = if idx == 0 { STDOUT } else { STDERR };
        let data = &buf[..n];
        if let Err(e) = self.log.write(stream, data) {
            eprintln!("pier-shim {}: writing the log: {e}", self.cfg.id);
        }
        let header = frame_header(stream, n);
        for c in &mut self.clients {
            if let Mode::Attach { stdout, stderr, .. } = c.mode {
                if (stream == STDOUT && stdout) || (stream == STDERR && stderr) {
                    if !self.cfg.tty {
                        c.queue(&header);
                    }
                    c.queue(data);
                    c.flush();
                }
            }
        }
    }

    fn read_exec_output(&mut self, i: usize, k: usize) {
        let mut buf = [0u8; READ_BUF];
        let e = &mut self.execs[i];
        let Some(pipe) = &mut e.out[k] else { return };
        let n = match read_some(pipe, &mut buf) {
            Some(0) => return,
            Some(n) => n,
            None => {
                e.out[k] = None;
                return;
            }
        };
        let stream = if k == 0 { STDOUT } else { STDERR };
        let id = e.client;
        if let Some(c) = self.clients.iter_mut().find(|c| c.id == id) {
            c.queue(&frame_header(stream, n));
            c.queue(&buf[..n]);
            c.flush();
        }
    }

    /// Ends the streams of execs that exited and whose output is drained.
    fn finish_execs(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.execs.len() {
            if self.execs[i].stdin.as_ref().is_some_and(Sink::done) {
                self.execs[i].stdin = None;
            }
            if !self.execs[i].finished(now) {
                i += 1;
                continue;
            }
            let e = self.execs.swap_remove(i);
            let exit = ExecExit {
                exit_code: e.exit.unwrap_or(255),
            };
            if let Some(c) = self.clients.iter_mut().find(|c| c.id == e.client) {
                end_exec_stream(c, &exit);
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; READ_BUF];
        let n = match self.clients[i].stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => {
                self.clients[i].dead = true;
                return;
            }
        };
        if n == 0 {
            let c = &mut self.clients[i];
            c.read_closed = true;
            match c.mode {
                Mode::Attach { stdin: true, .. } if self.cfg.stdin_once && !self.cfg.tty => {
                    if let Some(s) = &mut self.stdin {
                        s.closing = true;
                    }
                }
                Mode::Exec { stdin: true } => {
                    let id = c.id;
                    if let Some(s) = self
                        .execs
                        .iter_mut()
                        .find(|e| e.client == id)
                        .and_then(|e| e.stdin.as_mut())
                    {
                        s.closing = true;
                    }
                }
                Mode::Request | Mode::Wait => c.dead = true,
                _ => {}
            }
            return;
        }
        match self.clients[i].mode {
            Mode::Request => {
                let c = &mut self.clients[i];
                c.inbuf.extend_from_slice(&buf[..n]);
                if let Some(nl) = c.inbuf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
                    let rest = std::mem::take(&mut c.inbuf);
                    self.handle_request(i, &line);
                    if !rest.is_empty() {
                        self.forward_stdin(i, &rest);
                    }
                } else if c.inbuf.len() > MAX_REQUEST {
                    c.respond(&Response::error("request line too long"));
                    c.mode = Mode::Closing;
                }
            }
            Mode::Attach { .. } | Mode::Exec { .. } => self.forward_stdin(i, &buf[..n]),
            Mode::Wait | Mode::Closing => {}
        }
    }

    fn forward_stdin(&mut self, i: usize, data: &[u8]) {
        match self.clients[i].mode {
            Mode::Attach { stdin: true, .. } => {
                if let Some(stdin) = &mut self.stdin {
                    if !stdin.push(data) {
                        self.stdin = None;
                    }
                }
            }
            Mode::Exec { stdin: true } => {
                let id = self.clients[i].id;
                if let Some(e) = self.execs.iter_mut().find(|e| e.client == id) {
                    if let Some(s) = &mut e.stdin {
                        if !s.push(data) {
                            e.stdin = None;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_request(&mut self, i: usize, line: &[u8]) {
        self.trim_due = true;
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.clients[i];
                c.respond(&Response::error(format!("bad request: {e}")));
                c.mode = Mode::Closing;
                return;
            }
        };
        let (resp, mode) = match req {
            Request::Start => (
                result(self.with_container(|c| c.start().map(|()| 0))),
                Mode::Closing,
            ),
            Request::Kill { signal, all } => (
                result(self.with_container(|c| c.kill(signal, all).map(|()| 0))),
                Mode::Closing,
            ),
            Request::State => (self.state(), Mode::Closing),
            Request::Wait => match &self.exit {
                Some(_) => (self.state(), Mode::Closing),
                None => {
                    self.clients[i].mode = Mode::Wait;
                    return;
                }
            },
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => (
                Response::ok(),
                Mode::Attach {
                    stdin: stdin && self.stdin.is_some(),
                    stdout,
                    stderr,
                },
            ),
            Request::Resize {
                exec,
                height,
                width,
            } => (self.resize(exec.as_deref(), height, width), Mode::Closing),
            Request::Exec { id, process, stdin } => {
                let client = self.clients[i].id;
                match self.exec(client, id, process, stdin) {
                    Ok(pid) => (
                        Response {
                            ok: true,
                            pid,
                            ..Default::default()
                        },
                        Mode::Exec { stdin },
                    ),
                    Err(e) => (
                        Response {
                            exit_code: e.exit_code,
                            ..Response::error(e.message)
                        },
                        Mode::Closing,
                    ),
                }
            }
        };
        let c = &mut self.clients[i];
        c.respond(&resp);
        c.mode = mode;
        c.flush();
    }

    fn resize(&self, exec: Option<&str>, height: u16, width: u16) -> Response {
        let master = match exec {
            None => self.master.as_ref(),
            Some(id) => match self.execs.iter().find(|e| e.id == id) {
                Some(e) => e.master.as_ref(),
                None => return Response::error(format!("no such exec: {id}")),
            },
        };
        let Some(m) = master else {
            return Response::error("the process has no terminal");
        };
        match set_winsize(m.as_raw_fd(), height, width) {
            Ok(()) => Response::ok(),
            Err(e) => Response::error(format!("setting the window size: {e}")),
        }
    }

    /// Starts an exec'd process whose output goes to client `client`.
    fn exec(
        &mut self,
        client: u64,
        id: String,
        process: serde_json::Value,
        stdin: bool,
    ) -> Result<i32, SetupError> {
        if self.exit.is_some() {
            return Err(SetupError {
                message: format!("container {:?} is stopped, cannot exec in it", self.cfg.id),
                exit_code: None,
            });
        }
        let io_err = |what: &'static str| move |e: io::Error| SetupError::from((what, e));
        let tty = process.get("terminal").and_then(serde_json::Value::as_bool) == Some(true);
        let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
        let pipe = || {
            rustix::pipe::pipe_with(cloexec)
                .map_err(io::Error::from)
                .map_err(io_err("pipe"))
        };
        let mut out = [None, None];
        let mut sink = None;
        let mut opts = ExecOptions::default();
        let console = if tty {
            let c = Console::bind().map_err(io_err("binding the console socket"))?;
            opts.console_socket = Some(CONSOLE_SOCKET.into());
            Some(c)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            out = [Some(File::from(out_r)), Some(File::from(err_r))];
            opts.stdio.stdout = Some(out_w);
            opts.stdio.stderr = Some(err_w);
            if stdin {
                let (r, w) = pipe()?;
                sink = Some(Sink::new(File::from(w)));
                opts.stdio.stdin = Some(r);
            } else {
                let null = File::open("/dev/null").map_err(io_err("/dev/null"))?;
                opts.stdio.stdin = Some(OwnedFd::from(null));
            }
            None
        };
        let pid = self.with_container(move |container| {
            let process: oci_spec::runtime::Process = serde_json::from_value(process)
                .map_err(|e| pier_runtime::Error::InvalidConfig(format!("exec process: {e}")))?;
            container.exec(&process, opts)
        })?;
        let mut master = None;
        if let Some(console) = console {
            // The process runs: failing here only loses its terminal.
            match console.receive().and_then(|m| Ok((m.try_clone()?, m))) {
                Ok((read, m)) => {
                    if stdin {
                        if let Ok(w) = m.try_clone() {
                            sink = Some(Sink::new(File::from(w)));
                        }
                    }
                    out[0] = Some(File::from(read));
                    master = Some(m);
                }
                Err(e) => eprintln!(
                    "pier-shim {}: exec {id}: receiving the pty: {e}",
                    self.cfg.id
                ),
            }
        }
        for p in out.iter().flatten() {
            set_nonblocking(p.as_raw_fd());
        }
        if let Some(s) = &sink {
            set_nonblocking(s.file.as_raw_fd());
        }
        self.execs.push(Exec {
            id,
            pid,
            client,
            out,
            stdin: sink,
            master,
            exit: None,
            deadline: None,
        });
        Ok(pid)
    }

    fn state(&self) -> Response {
        let status = match &self.exit {
            Some(_) => "exited",
            None => match self.with_container(|c| Ok(status_code(c.status()))) {
                Ok(1) => "created",
                Ok(3) => "paused",
                _ => "running",
            },
        };
        Response {
            ok: true,
            pid: self.pid,
            status: Some(status.into()),
            exit: self.exit.clone(),
            ..Default::default()
        }
    }

    /// Deletes the runtime's container and unmounts what pierd asked for.
    fn release_container(&self) {
        if let Ok(c) = Runtime::new(&self.cfg.runtime_root).load(&self.cfg.id) {
            if let Err(e) = c.delete(true) {
                eprintln!("pier-shim {}: deleting the container: {e}", self.cfg.id);
            }
        }
        for path in &self.cfg.unmount {
            if let Err(e) = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
                if e != rustix::io::Errno::INVAL && e != rustix::io::Errno::NOENT {
                    eprintln!(
                        "pier-shim {}: unmounting {}: {e}",
                        self.cfg.id,
                        path.display()
                    );
                }
            }
        }
    }

    /// The container has exited and its output is drained: record the exit,
    /// release the container's resources, answer waiters and leave.
    fn finish(&mut self) -> i32 {
        if let Err(e) = self.log.flush() {
            eprintln!("pier-shim {}: writing the log: {e}", self.cfg.id);
        }
        let exit = self
            .exit
            .get_or_insert_with(|| ExitInfo {
                exit_code: 255,
                oom_killed: false,
                finished_at: pier_common::time::now_rfc3339(),
            })
            .clone();
        // The container's pid namespace is gone, and its execs with it.
        self.reap();
        // Release the container before anyone can learn of its exit (from a
        // wait answer or exit.json): pierd may then start it again at once,
        // mounting a new rootfs at the same path and creating a runtime
        // container of the same id, which a late delete or unmount from here
        // would take away.
        self.release_container();
        if let Err(e) = write_atomic(&self.dir.join(EXIT_FILE), &exit) {
            eprintln!("pier-shim {}: recording the exit status: {e}", self.cfg.id);
        }
        // From here on, clients that connect read exit.json instead.
        self.listener = None;
        let _ = std::fs::remove_file(self.dir.join(SOCKET_FILE));
        for e in std::mem::take(&mut self.execs) {
            let exit = ExecExit {
                // Killed with the container's init (SIGKILL) if not reaped.
                exit_code: e.exit.unwrap_or(128 + libc::SIGKILL),
            };
            if let Some(c) = self.clients.iter_mut().find(|c| c.id == e.client) {
                end_exec_stream(c, &exit);
            }
        }
        let state = self.state();
        for c in &mut self.clients {
            if matches!(c.mode, Mode::Wait) {
                c.respond(&state);
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = c.stream.write_all(&c.outbuf);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.clients.clear();
        0
    }
}

/// Queues an exec's exit frame; the connection closes once it is sent.
fn end_exec_stream(c: &mut Client, exit: &ExecExit) {
    if let Ok(body) = serde_json::to_vec(exit) {
        c.queue(&frame_header(EXIT_STREAM, body.len()));
        c.queue(&body);
    }
    c.mode = Mode::Closing;
    c.flush();
}

fn result(r: Result<i32, SetupError>) -> Response {
    match r {
        Ok(_) => Response::ok(),
        Err(e) => Response::error(e.message),
    }
}

/// A runtime status as a number a helper can report.
fn status_code(s: Status) -> i32 {
    match s {
        Status::Creating => 0,
        Status::Created => 1,
        Status::Running => 2,
        Status::Paused => 3,
        Status::Stopped => 4,
    }
}

fn pfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Writes JSON to `path` atomically: temp file, fsync, rename.
fn write_atomic<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    serde_json::to_writer(&mut f, value)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
