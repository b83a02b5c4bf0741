//! `process.terminal`: the parent connects to the `--console-socket`; the
//! init (or an exec'd process) opens a pty in the container's devpts, makes
//! the slave its controlling terminal and stdio, bind-mounts it on
//! /dev/console, and sends the master over the socket (SCM_RIGHTS), as runc
//! does.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::init::{InitError, InitResult};
use crate::{Error, Result};

/// Connects to the console socket (parent side). The descriptor is
/// close-on-exec.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path).map_err(Error::io(format!(
        "connecting to the console socket {}",
        path.display()
    )))?;
    Ok(OwnedFd::from(s))
}

fn last(context: &str) -> InitError {
    InitError::io(context, io::Error::last_os_error())
}

/// Child side: pty in the current /dev, slave as controlling terminal and
/// stdio, master sent over `sock`. With `console` the slave is also
/// bind-mounted on /dev/console (the init does; exec does not).
pub fn setup(sock: RawFd, console: bool) -> InitResult<()> {
    // SAFETY: plain syscalls on descriptors we own, with valid pointers.
    unsafe {
        // With a new cgroup namespace the parent writes the container's
        // device cgroup while the init sets up (create.rs); on cgroup v1
        // that write denies every device before it allows the spec's ones
        // again, so an open in that moment fails with EPERM: try again for
        // a while (200 x 1 ms). Without one, the rules are in place first.
        let mut master = -1;
        for _ in 0..200 {
            master = libc::open(
                c"/dev/ptmx".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if master >= 0 || *libc::__errno_location() != libc::EPERM {
                break;
            }
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        if master < 0 {
            return Err(last("opening /dev/ptmx"));
        }
        let master = OwnedFd::from_raw_fd(master);
        let unlock: libc::c_int = 0;
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(last("unlocking the pty"));
        }
        let mut n: libc::c_uint = 0;
        if libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) != 0 {
            return Err(last("getting the pty number"));
        }
        let path = std::ffi::CString::new(format!("/dev/pts/{n}"))
            .map_err(|_| InitError::config("pty path"))?;
        let slave = libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(last("opening the pty slave"));
        }
        let slave = OwnedFd::from_raw_fd(slave);
        if console {
            mount_console(&path)?;
        }
        crate::sync::send_fds(sock, b"/dev/ptmx", &[master.as_raw_fd()])
            .map_err(|e| InitError::io("sending the pty master to the console socket", e))?;
        drop(master);
        if libc::setsid() < 0 {
            return Err(last("setsid"));
        }
        if libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) != 0 {
            return Err(last("setting the controlling terminal"));
        }
        for fd in 0..3 {
            if libc::dup3(slave.as_raw_fd(), fd, 0) < 0 {
                return Err(last("dup of the pty slave"));
            }
        }
    }
    Ok(())
}

/// Bind-mounts the pty slave on /dev/console, creating the target.
fn mount_console(slave: &std::ffi::CStr) -> InitResult<()> {
    // A regular file as the mount point; never open an existing node (it
    // could be a real console device).
    // SAFETY: mknod with a valid C string.
    if unsafe { libc::mknod(c"/dev/console".as_ptr(), libc::S_IFREG | 0o600, 0) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            // A read-only /dev without a console: nothing to mount on.
            return Ok(());
        }
    }
    crate::sys::mount(Some(slave), c"/dev/console", None, libc::MS_BIND, None)
        .map_err(|e| InitError::io("bind mounting the pty on /dev/console", e))
}

const NO_CONSOLE: &str = "process.terminal needs --console-socket";

/// True for the error `create` gives for a terminal without a console
/// socket (the foreground `run` then relays the pty itself).
pub fn is_no_console(e: &Error) -> bool {
    matches!(e, Error::InvalidConfig(m) if m == NO_CONSOLE)
}

/// The console socket for `create`: connected when process.terminal is
/// set (which then requires `--console-socket`), else None.
pub fn for_create(
    spec: &oci_spec::runtime::Spec,
    socket: Option<&Path>,
) -> Result<Option<OwnedFd>> {
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    match (terminal, socket) {
        (false, _) => Ok(None),
        (true, Some(path)) => connect(path).map(Some),
        (true, None) => Err(Error::InvalidConfig(NO_CONSOLE.into())),
    }
}

/// A console socket of our own, for `run`/`exec` with a terminal but no
/// `--console-socket`: the master comes back to us and we copy between it
/// and our stdio (as runc does).
pub struct Relay {
    dir: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl Relay {
    pub fn new() -> Result<Relay> {
        let dir = std::env::temp_dir().join(format!("pier-runtime-tty-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let listener = std::os::unix::net::UnixListener::bind(dir.join("console.sock"))
            .map_err(Error::io("binding a console socket"))?;
        Ok(Relay { dir, listener })
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("console.sock")
    }

    /// Receives the master (the child sent it during its setup), then
    /// copies stdin to it and it to stdout until `pid` exits; returns the
    /// exit code. Signals in `set` (blocked by the caller) are forwarded,
    /// SIGWINCH as a resize.
    pub fn run(self, pid: i32, set: &libc::sigset_t) -> Result<i32> {
        let (conn, _) = self
            .listener
            .accept()
            .map_err(Error::io("accepting the console"))?;
        let mut buf = [0u8; 64];
        let (_, fds) = crate::sync::recv_fds(conn.as_raw_fd(), &mut buf)
            .map_err(Error::io("receiving the pty master"))?;
        let master = fds
            .into_iter()
            .next()
            .ok_or_else(|| Error::Init("no pty master received".into()))?;
        Ok(pump(master.as_raw_fd(), pid, set))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a local struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: write from a valid buffer.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

fn pump(master: RawFd, pid: i32, set: &libc::sigset_t) -> i32 {
    // SAFETY: signalfd, termios and poll calls on descriptors we hold, with
    // local buffers; the saved termios is restored before returning.
    unsafe {
        let sfd = libc::signalfd(-1, set, libc::SFD_CLOEXEC);
        let tty_in = libc::isatty(0) == 1;
        let mut saved: libc::termios = std::mem::zeroed();
        if tty_in && libc::tcgetattr(0, &mut saved) == 0 {
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            copy_winsize(0, master);
        }
        let mut stdin_open = true;
        let mut master_open = true;
        let mut code = None;
        let mut buf = [0u8; 8192];
        while code.is_none() || master_open {
            let mut fds = [
                libc::pollfd {
                    fd: master,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if stdin_open { 0 } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if !master_open {
                fds[0].fd = -1;
            }
            // Once the process is gone, drain what is left and stop.
            let timeout = if code.is_some() { 100 } else { -1 };
            let r = libc::poll(fds.as_mut_ptr(), 3, timeout);
            if r == 0 {
                break;
            }
            if r < 0 {
                continue;
            }
            if fds[0].revents != 0 {
                let n = libc::read(master, buf.as_mut_ptr().cast(), buf.len());
                if n > 0 {
                    write_all(1, &buf[..n as usize]);
                } else {
                    master_open = false;
                }
            }
            if fds[2].revents != 0 {
                let n = libc::read(0, buf.as_mut_ptr().cast(), buf.len());
                if n > 0 {
                    write_all(master, &buf[..n as usize]);
                } else {
                    stdin_open = false;
                }
            }
            if fds[1].revents != 0 {
                let mut info: libc::signalfd_siginfo = std::mem::zeroed();
                let n = libc::read(
                    sfd,
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                );
                if n <= 0 {
                    continue;
                }
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    copy_winsize(0, master);
                } else if sig != libc::SIGCHLD {
                    libc::kill(pid, sig);
                }
                let mut status = 0;
                if code.is_none() && libc::waitpid(pid, &mut status, libc::WNOHANG) == pid {
                    code = Some(if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        1
                    });
                }
            }
        }
        if tty_in {
            libc::tcsetattr(0, libc::TCSANOW, &saved);
        }
        if sfd >= 0 {
            libc::close(sfd);
        }
        if code.is_none() {
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            code = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        code.unwrap_or(1)
    }
}
