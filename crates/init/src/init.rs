//! pier-init, the program: what `--init` runs as the container's pid 1, in
//! front of the container's command (`/dev/init -- CMD ARGS...`).
//!
//! It blocks the signals it can, starts the command as its child with the
//! signal mask and dispositions restored, then loops on `sigwaitinfo`:
//! SIGCHLD reaps every exited process (orphans re-parented to pid 1
//! included), any other signal is forwarded to the child. When the child
//! exits, so does the init, with the child's exit code (128 + the signal
//! number if a signal killed it, as a shell reports it).
//!
//! The build script compiles this file alone with rustc, linked statically
//! (the container's image may have no C library), so it uses std and its
//! own declarations of the few libc functions it needs (glibc, Linux
//! signal numbers of x86_64, aarch64 and riscv64).

use std::ffi::{c_char, c_int, c_long, c_void, CString, OsString};
use std::os::unix::ffi::OsStrExt;

/// glibc's sigset_t: 1024 bits.
#[repr(C)]
pub struct SigSet([u64; 16]);

/// siginfo_t: 128 bytes.
#[repr(C, align(8))]
pub struct SigInfo([u8; 128]);

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigdelset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn fork() -> c_int;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getpid() -> c_int;
    fn prctl(option: c_int, arg2: c_long, arg3: c_long, arg4: c_long, arg5: c_long) -> c_int;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn _exit(code: c_int) -> !;
    fn __errno_location() -> *mut c_int;
}

const SIG_SETMASK: c_int = 2;
const SIG_IGN: usize = 1;
const WNOHANG: c_int = 1;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const ENOENT: c_int = 2;

const SIGILL: c_int = 4;
const SIGTRAP: c_int = 5;
const SIGABRT: c_int = 6;
const SIGBUS: c_int = 7;
const SIGFPE: c_int = 8;
const SIGKILL: c_int = 9;
const SIGSEGV: c_int = 11;
const SIGCHLD: c_int = 17;
const SIGSTOP: c_int = 19;
const SIGTSTP: c_int = 20;
const SIGTTIN: c_int = 21;
const SIGTTOU: c_int = 22;
const SIGSYS: c_int = 31;

/// Synchronous faults: never blocked (blocking them is undefined), never
/// forwarded.
const FAULTS: &[c_int] = &[SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS];

/// Signals that are not forwarded to the child.
const NOT_FORWARDED: &[c_int] = &[SIGCHLD, SIGKILL, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU];

/// The command line after pier-init's own options: `--`, and `-s`
/// (accepted as tini takes it; pier-init is a subreaper anyway when it is
/// not pid 1).
pub fn parse_args(args: &[OsString]) -> Option<&[OsString]> {
    let mut i = 0;
    while i < args.len() {
        match args[i].as_bytes() {
            b"--" => return Some(&args[i + 1..]).filter(|a| !a.is_empty()),
            b"-s" => i += 1,
            _ => return Some(&args[i..]),
        }
    }
    None
}

/// The shell-style exit code for a wait status.
pub fn exit_code(status: c_int) -> c_int {
    let sig = status & 0x7f;
    if sig == 0 {
        (status >> 8) & 0xff
    } else if sig != 0x7f {
        128 + sig
    } else {
        255
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("pier-init: {msg}");
    // SAFETY: ends the process.
    unsafe { _exit(1) }
}

#[allow(dead_code)]
fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(cmd) = parse_args(&args) else {
        fail("usage: pier-init [--] COMMAND [ARG...]");
    };
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|_| fail("an argument contains a NUL byte"));
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let name = cmd[0].to_string_lossy().into_owned();
    // The child's failure message, made before fork: the child only makes
    // async-signal-safe calls.
    let enoent = format!("pier-init: exec {name} failed: No such file or directory\n");
    let other = format!("pier-init: exec {name} failed: cannot run it\n");

    // SAFETY: libc calls on initialized local data.
    unsafe {
        if getpid() != 1 {
            prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let mut set = SigSet([0; 16]);
        let mut old = SigSet([0; 16]);
        sigfillset(&mut set);
        for s in FAULTS.iter().chain(&[SIGTTIN, SIGTTOU]) {
            sigdelset(&mut set, *s);
        }
        sigprocmask(SIG_SETMASK, &set, &mut old);
        // Background reads and writes on a terminal must not stop pid 1.
        let ttin = signal(SIGTTIN, SIG_IGN);
        let ttou = signal(SIGTTOU, SIG_IGN);

        let child = fork();
        if child < 0 {
            fail(&format!(
                "starting {name}: {}",
                std::io::Error::last_os_error()
            ));
        }
        if child == 0 {
            signal(SIGTTIN, ttin);
            signal(SIGTTOU, ttou);
            sigprocmask(SIG_SETMASK, &old, std::ptr::null_mut());
            execvp(ptrs[0], ptrs.as_ptr());
            let (msg, code) = if *__errno_location() == ENOENT {
                (&enoent, 127)
            } else {
                (&other, 126)
            };
            write(2, msg.as_ptr().cast(), msg.len());
            _exit(code);
        }

        loop {
            let mut info = SigInfo([0; 128]);
            let sig = sigwaitinfo(&set, &mut info);
            if sig < 0 {
                continue; // EINTR
            }
            if sig != SIGCHLD {
                if !NOT_FORWARDED.contains(&sig) {
                    kill(child, sig);
                }
                continue;
            }
            loop {
                let mut status = 0;
                let pid = waitpid(-1, &mut status, WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    _exit(exit_code(status));
                }
            }
        }
    }
}
