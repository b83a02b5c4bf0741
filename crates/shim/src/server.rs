//! The shim process: daemonize, create the container, then one poll loop
//! over the container's output pipes, a signalfd and the clients of
//! `shim.sock`, until the container's init has exited and its output is
//! drained.

use crate::jsonlog::JsonLog;
use crate::protocol::{
    frame_header, ExitInfo, Ready, Request, Response, ShimConfig, STDERR, STDOUT,
};
use crate::{CONFIG_FILE, EXIT_FILE, LOG_FILE, SOCKET_FILE};
use pier_runtime::{Container, CreateOptions, Runtime, Stdio};
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
                    pid: shim.container.pid(),
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
    let (out_r, out_w) = rustix::pipe::pipe_with(cloexec).map_err(|e| ("pipe", e))?;
    let (err_r, err_w) = rustix::pipe::pipe_with(cloexec).map_err(|e| ("pipe", e))?;
    let (stdin_ours, stdin_theirs) = if cfg.open_stdin {
        let (r, w) = rustix::pipe::pipe_with(cloexec).map_err(|e| ("pipe", e))?;
        (Some(File::from(w)), r)
    } else {
        let null = File::open("/dev/null").map_err(|e| ("/dev/null", e))?;
        (None, OwnedFd::from(null))
    };
    let opts = CreateOptions {
        stdio: Stdio {
            stdin: Some(stdin_theirs),
            stdout: Some(out_w),
            stderr: Some(err_w),
        },
        ..Default::default()
    };
    let container = Runtime::new(&cfg.runtime_root)
        .create(&cfg.id, &cfg.bundle, opts)
        .map_err(|e| SetupError {
            message: e.to_string(),
            exit_code: e.exit_code(),
        })?;
    for fd in [&out_r, &err_r] {
        set_nonblocking(fd.as_raw_fd());
    }
    Ok(Shim {
        cfg: cfg.clone(),
        dir: dir.to_path_buf(),
        container,
        signals,
        listener: Some(listener),
        pipes: [Some(File::from(out_r)), Some(File::from(err_r))],
        stdin: stdin_ours,
        log: JsonLog::new(log_file),
        clients: Vec::new(),
        exit: None,
        drain_deadline: None,
    })
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
    /// Waiting for the container's exit.
    Wait,
    /// Answered: close once the output buffer is flushed.
    Closing,
}

struct Client {
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
        if matches!(self.mode, Mode::Closing) {
            self.dead = true;
        }
    }
}

struct Shim {
    cfg: ShimConfig,
    dir: std::path::PathBuf,
    container: Container,
    signals: File,
    listener: Option<UnixListener>,
    /// Read ends of the container's stdout and stderr; None at EOF.
    pipes: [Option<File>; 2],
    stdin: Option<File>,
    log: JsonLog,
    clients: Vec<Client>,
    exit: Option<ExitInfo>,
    drain_deadline: Option<Instant>,
}

impl Shim {
    fn serve(&mut self) -> i32 {
        loop {
            if let Some(deadline) = self.drain_deadline {
                if self.pipes.iter().all(Option::is_none) || Instant::now() >= deadline {
                    return self.finish();
                }
            }
            self.poll_once();
        }
    }

    fn poll_once(&mut self) {
        let mut fds = Vec::with_capacity(4 + self.clients.len());
        let pollin = libc::POLLIN;
        fds.push(pfd(self.signals.as_raw_fd(), pollin));
        fds.push(pfd(
            self.listener.as_ref().map_or(-1, |l| l.as_raw_fd()),
            pollin,
        ));
        for p in &self.pipes {
            fds.push(pfd(p.as_ref().map_or(-1, |f| f.as_raw_fd()), pollin));
        }
        for c in &self.clients {
            let mut ev = 0;
            if !c.read_closed && matches!(c.mode, Mode::Request | Mode::Attach { .. } | Mode::Wait)
            {
                ev |= pollin;
            }
            if !c.outbuf.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(pfd(c.stream.as_raw_fd(), ev));
        }
        let timeout = self.drain_deadline.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(1000) as i32
                + 1
        });
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            return;
        }
        let ready = |i: usize| fds[i].revents != 0;
        if ready(0) {
            self.handle_signals();
        }
        if ready(1) {
            self.accept();
        }
        for (i, stream) in [(2, STDOUT), (3, STDERR)] {
            if ready(i) {
                self.read_output(stream);
            }
        }
        let n_clients = fds.len() - 4;
        for i in 0..n_clients.min(self.clients.len()) {
            let revents = fds[4 + i].revents;
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_client(i);
            }
            if revents & libc::POLLOUT != 0 {
                self.clients[i].flush();
            }
        }
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
                    let _ = self.container.kill(libc::SIGTERM, false);
                }
            }
        }
        self.reap();
    }

    /// Reaps every exited child; records the init's status.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if pid == self.container.pid() && self.exit.is_none() {
                let exit_code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                self.exit = Some(ExitInfo {
                    exit_code,
                    oom_killed: false,
                    finished_at: pier_common::time::now_rfc3339(),
                });
                self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
            }
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
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

    fn read_output(&mut self, stream: u8) {
        let idx = usize::from(stream == STDERR);
        let mut buf = [0u8; 32 << 10];
        let Some(pipe) = &mut self.pipes[idx] else {
            return;
        };
        let n = match pipe.read(&mut buf) {
            Ok(0) => {
                self.pipes[idx] = None;
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => {
                self.pipes[idx] = None;
                return;
            }
        };
        let data = &buf[..n];
        if let Err(e) = self.log.write(stream, data) {
            eprintln!("pier-shim {}: writing the log: {e}", self.cfg.id);
        }
        let header = frame_header(stream, n);
        for c in &mut self.clients {
            if let Mode::Attach { stdout, stderr, .. } = c.mode {
                if (stream == STDOUT && stdout) || (stream == STDERR && stderr) {
                    c.queue(&header);
                    c.queue(data);
                    c.flush();
                }
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 32 << 10];
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
                Mode::Attach { stdin: true, .. } if self.cfg.stdin_once => self.stdin = None,
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
            Mode::Attach { .. } => self.forward_stdin(i, &buf[..n]),
            Mode::Wait | Mode::Closing => {}
        }
    }

    fn forward_stdin(&mut self, i: usize, data: &[u8]) {
        if let Mode::Attach { stdin: true, .. } = self.clients[i].mode {
            if let Some(stdin) = &mut self.stdin {
                if stdin.write_all(data).is_err() {
                    self.stdin = None;
                }
            }
        }
    }

    fn handle_request(&mut self, i: usize, line: &[u8]) {
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
            Request::Start => (result(self.container.start()), Mode::Closing),
            Request::Kill { signal, all } => {
                (result(self.container.kill(signal, all)), Mode::Closing)
            }
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
        };
        let c = &mut self.clients[i];
        c.respond(&resp);
        c.mode = mode;
        c.flush();
    }

    fn state(&self) -> Response {
        let status = match (&self.exit, self.container.status()) {
            (Some(_), _) => "exited",
            (None, pier_runtime::Status::Created) => "created",
            (None, pier_runtime::Status::Paused) => "paused",
            (None, _) => "running",
        };
        Response {
            ok: true,
            error: None,
            pid: self.container.pid(),
            status: Some(status.into()),
            exit: self.exit.clone(),
        }
    }

    /// The container has exited and its output is drained: record the exit,
    /// answer waiters, release the container's resources and leave.
    fn finish(&mut self) -> i32 {
        if let Err(e) = self.log.flush() {
            eprintln!("pier-shim {}: writing the log: {e}", self.cfg.id);
        }
        let exit = self.exit.clone().unwrap_or(ExitInfo {
            exit_code: 255,
            oom_killed: false,
            finished_at: pier_common::time::now_rfc3339(),
        });
        if let Err(e) = write_atomic(&self.dir.join(EXIT_FILE), &exit) {
            eprintln!("pier-shim {}: recording the exit status: {e}", self.cfg.id);
        }
        // From here on, clients that connect read exit.json instead.
        self.listener = None;
        let _ = std::fs::remove_file(self.dir.join(SOCKET_FILE));
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
        0
    }
}

fn result(r: pier_runtime::Result<()>) -> Response {
    match r {
        Ok(()) => Response::ok(),
        Err(e) => Response::error(e.to_string()),
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
