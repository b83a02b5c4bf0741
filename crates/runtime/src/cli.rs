//! runc-style command line: create, start, state, kill, delete, run, list.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{CreateOptions, Error, Result, Runtime};

#[derive(Parser, Debug)]
#[command(
    name = "pier-runtime",
    version,
    about = "pier's OCI runtime (runc-compatible)"
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/pier-runtime")]
    root: PathBuf,
    /// Write errors to this file as well as stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Accepted for compatibility: cgroups are managed through cgroupfs;
    /// a systemd `slice:prefix:name` cgroupsPath maps to its scope's path.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for compatibility (session keyrings are not created).
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it and exit with its status.
    Run {
        #[arg(long, short = 'd')]
        detach: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (`ps` table, or `-f json`: the pids).
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print a container's events (stats every --interval, OOM kills).
    Events {
        /// Print one stats object and exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats (runc syntax: 5s, 500ms, 1m).
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Run a new process inside a container.
    Exec(crate::exec::ExecArgs),
    /// Print the features this runtime supports (JSON).
    Features,
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// List containers.
    List {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
}

impl Cmd {
    fn name(&self) -> &'static str {
        match self {
            Cmd::Create(_) => "create",
            Cmd::Start { .. } => "start",
            Cmd::State { .. } => "state",
            Cmd::Kill { .. } => "kill",
            Cmd::Delete { .. } => "delete",
            Cmd::Run { .. } => "run",
            Cmd::List { .. } => "list",
            Cmd::Exec(_) => "exec",
            Cmd::Features => "features",
            Cmd::Spec { .. } => "spec",
            Cmd::Pause { .. } => "pause",
            Cmd::Resume { .. } => "resume",
            Cmd::Ps { .. } => "ps",
            Cmd::Events { .. } => "events",
        }
    }
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses a signal as runc does: a number, or a name with or without the
/// SIG prefix in any case, including RTMIN+n / RTMAX-n.
pub fn parse_signal(s: &str) -> Option<i32> {
    let max = libc::SIGRTMAX();
    let min = libc::SIGRTMIN();
    if let Ok(n) = s.parse::<i32>() {
        return (1..=max).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, n)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Some(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        let n = base + sign * off;
        (min..=max).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(min, rest.strip_prefix('+').unwrap_or(rest), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(r) => rt(max, r, -1),
            None if rest.is_empty() => Some(max),
            None => None,
        };
    }
    None
}

fn log_error(cli: &Cli, cmd: &str, err: &str) {
    eprintln!("{cmd}: {err}");
    let Some(path) = &cli.log else { return };
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let time = crate::state::now_rfc3339();
    let line = if cli.log_format == "json" {
        serde_json::json!({"level": "error", "msg": format!("{cmd}: {err}"), "time": time})
            .to_string()
    } else {
        format!("time=\"{time}\" level=error msg=\"{cmd}: {err}\"")
    };
    let _ = writeln!(f, "{line}");
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let rt = Runtime::new(&cli.root);
    let name = cli.cmd.name();
    match dispatch(&rt, &cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            log_error(&cli, name, &e.to_string());
            1
        }
    }
}

fn create_opts(a: &CreateArgs) -> CreateOptions {
    let _ = a.no_new_keyring;
    CreateOptions {
        stdio: Default::default(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
    }
}

fn dispatch(rt: &Runtime, cmd: &Cmd) -> Result<i32> {
    match cmd {
        Cmd::Create(a) => {
            rt.create(&a.id, &a.bundle, create_opts(a))?;
            Ok(0)
        }
        Cmd::Start { id } => rt.load(id)?.start().map(|_| 0),
        Cmd::State { id } => {
            let st = rt.load(id)?.state_json();
            let s = serde_json::to_string_pretty(&st)
                .map_err(|e| Error::Init(format!("serializing state: {e}")))?;
            println!("{s}");
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => {
            let sig = match signal {
                None => libc::SIGTERM,
                Some(s) => parse_signal(s)
                    .ok_or_else(|| Error::InvalidConfig(format!("unknown signal {s:?}")))?,
            };
            rt.load(id)?.kill(sig, *all).map(|_| 0)
        }
        Cmd::Delete { force, id } => match rt.load(id) {
            Ok(c) => c.delete(*force).map(|_| 0),
            // runc: deleting a missing container with --force succeeds.
            Err(Error::NotFound(_)) if *force => Ok(0),
            Err(e) => Err(e),
        },
        Cmd::Run { detach, create } => run(rt, create, *detach),
        Cmd::List { format, quiet } => list(rt, format, *quiet),
        Cmd::Exec(a) => crate::exec::cli(rt, a),
        Cmd::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::features::features()).unwrap_or_default()
            );
            Ok(0)
        }
        Cmd::Spec { bundle, rootless } => crate::features::write_spec(bundle, *rootless).map(|_| 0),
        Cmd::Pause { id } => rt.load(id)?.pause().map(|_| 0),
        Cmd::Resume { id } => rt.load(id)?.resume().map(|_| 0),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => crate::cgroup_cli::ps(&rt.load(id)?, format, ps_args),
        Cmd::Events {
            stats,
            interval,
            id,
        } => crate::cgroup_cli::events(&rt.load(id)?, *stats, interval),
    }
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let containers = rt.list()?;
    if quiet {
        for c in &containers {
            println!("{}", c.id());
        }
        return Ok(0);
    }
    if format == "json" {
        let states: Vec<_> = containers.iter().map(|c| c.state_json()).collect();
        println!(
            "{}",
            serde_json::to_string(&states).unwrap_or_else(|_| "[]".into())
        );
        return Ok(0);
    }
    println!("{:<20} {:<8} {:<10} BUNDLE", "ID", "PID", "STATUS");
    for c in &containers {
        let st = c.status();
        let pid = if st == crate::Status::Stopped {
            0
        } else {
            c.pid()
        };
        println!(
            "{:<20} {:<8} {:<10} {}",
            c.id(),
            pid,
            st,
            c.bundle().display()
        );
    }
    Ok(0)
}

/// Signals `run` forwards to the container's init.
const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn run(rt: &Runtime, a: &CreateArgs, detach: bool) -> Result<i32> {
    if detach {
        let c = rt.create(&a.id, &a.bundle, create_opts(a))?;
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(e);
        }
        return Ok(0);
    }
    // Block SIGCHLD (and the forwarded signals) before the init exists, so
    // a fast-exiting init cannot be missed; we are the subreaper of
    // anything it leaves behind.
    // SAFETY: sigset manipulation and prctl/sigprocmask with valid pointers.
    let set = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        for s in FORWARDED {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    // process.terminal without --console-socket: relay the pty ourselves
    // (terminal.rs), as runc does.
    let (c, relay) = match rt.create(&a.id, &a.bundle, create_opts(a)) {
        Err(e) if crate::terminal::is_no_console(&e) => {
            let relay = crate::terminal::Relay::new()?;
            let mut opts = create_opts(a);
            opts.console_socket = Some(relay.socket());
            (rt.create(&a.id, &a.bundle, opts)?, Some(relay))
        }
        other => (other?, None),
    };
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(e);
    }
    let pid = c.pid();
    if let Some(relay) = relay {
        let code = relay.run(pid, &set)?;
        reap(pid);
        c.delete(true)?;
        return Ok(code);
    }
    let status = loop {
        // SAFETY: waiting for a signal in the blocked set.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: forwarding a signal to the init.
            unsafe { libc::kill(pid, sig) };
            continue;
        }
        if let Some(st) = reap(pid) {
            break st;
        }
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    };
    c.delete(true)?;
    Ok(code)
}

/// Reaps every exited child; returns the init's wait status if it was one.
fn reap(init: i32) -> Option<i32> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return found;
        }
        if r == init {
            found = Some(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("sigusr1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("hup"), Some(libc::SIGHUP));
        assert_eq!(parse_signal("RTMIN"), Some(libc::SIGRTMIN()));
        assert_eq!(parse_signal("RTMIN+2"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(parse_signal("SIGRTMAX-1"), Some(libc::SIGRTMAX() - 1));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("99"), None);
        assert_eq!(parse_signal("BOGUS"), None);
        assert_eq!(parse_signal(""), None);
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "pier-runtime",
            "--root",
            "/tmp/r",
            "--log",
            "/tmp/l",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "-b",
            "/b",
            "--pid-file",
            "/p",
            "--preserve-fds",
            "2",
            "--no-pivot",
            "c1",
        ])
        .unwrap();
        assert_eq!(cli.root, Path::new("/tmp/r"));
        match cli.cmd {
            Cmd::Create(a) => {
                assert_eq!(a.bundle, Path::new("/b"));
                assert_eq!(a.preserve_fds, 2);
                assert!(a.no_pivot);
                assert_eq!(a.id, "c1");
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["pier-runtime", "kill", "--all", "c1", "KILL"]).unwrap();
        assert!(
            matches!(cli.cmd, Cmd::Kill { all: true, ref signal, .. } if signal.as_deref() == Some("KILL"))
        );
        assert!(Cli::try_parse_from(["pier-runtime", "start"]).is_err());
    }
}
