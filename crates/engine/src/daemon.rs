//! pierd's process: one instance per exec root (a lock file), the API
//! socket, and signal handling. Containers are not stopped when pierd
//! stops: their shims keep them running until pierd comes back.

use crate::api;
use crate::{Config, Engine};
use axum::response::IntoResponse;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tower::ServiceExt;

pub fn main() -> i32 {
    use clap::CommandFactory;
    let matches = Config::command().get_matches();
    let config = match crate::daemon_file::config_from_matches(
        &matches,
        std::path::Path::new(crate::daemon_file::DEFAULT_PATH),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pierd: {e}");
            return 1;
        }
    };
    // Before any thread exists: the LISTEN_* variables are removed from
    // the environment, which is only sound while pierd is single-threaded.
    let activated = match take_activation_listener() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pierd: {e}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pierd: starting the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve_on(config, activated)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pierd: {e}");
            1
        }
    }
}

/// Takes the exec root's lock so that one pierd serves one exec root.
fn lock_exec_root(exec_root: &Path) -> Result<File, String> {
    std::fs::create_dir_all(exec_root)
        .map_err(|e| format!("creating exec root {}: {e}", exec_root.display()))?;
    let path = exec_root.join("pierd.lock");
    let file = File::create(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        let pid = std::fs::read_to_string(exec_root.join("pierd.pid")).unwrap_or_default();
        format!(
            "another pierd (pid {}) is already serving {}; stop it first or use another --exec-root",
            pid.trim(),
            exec_root.display()
        )
    })?;
    Ok(file)
}

pub async fn serve(config: Config) -> Result<(), String> {
    serve_on(config, None).await
}

/// Serves the API on `activated` (the listener systemd passed) or on a
/// socket of its own at the configured path.
pub async fn serve_on(
    config: Config,
    activated: Option<std::os::unix::net::UnixListener>,
) -> Result<(), String> {
    let _lock = lock_exec_root(&config.exec_root)?;
    let socket = config.socket_path();
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    // Under systemd's pierd.socket the listener is already bound (fd 3):
    // its socket file belongs to systemd, which keeps it across restarts.
    let owns_socket = activated.is_none();
    if owns_socket {
        let _ = std::fs::remove_file(&socket);
    }
    // The handlers are in place before anyone can see pierd answer: a
    // SIGTERM right after the first reply must still stop it cleanly (a
    // spawned task registers them only when it first runs).
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        let handler = |kind| signal(kind).map_err(|e| format!("handling signals: {e}"));
        (
            handler(SignalKind::terminate())?,
            handler(SignalKind::interrupt())?,
        )
    };
    let engine = Engine::open(config.clone()).await.map_err(|e| e.message)?;
    let listener = match activated {
        Some(l) => tokio::net::UnixListener::from_std(l)
            .map_err(|e| format!("socket activation: serving fd 3: {e}"))?,
        None => {
            let l = tokio::net::UnixListener::bind(&socket)
                .map_err(|e| format!("listening on {}: {e}", socket.display()))?;
            let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660));
            l
        }
    };
    let pid_file = config.exec_root.join("pierd.pid");
    let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));

    let networks = engine.networks.clone();
    let router = api::router(engine);
    let service = tower::service_fn(move |req: axum::extract::Request| {
        let router = router.clone();
        async move {
            match api::strip_version(req) {
                Ok(req) => router.oneshot(req).await,
                Err(e) => Ok(e.into_response()),
            }
        }
    });
    let cleanup = {
        let (socket, pid_file) = (socket.clone(), pid_file.clone());
        move || {
            if owns_socket {
                let _ = std::fs::remove_file(&socket);
            }
            let _ = std::fs::remove_file(&pid_file);
        }
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        // Veths of exited containers still being deleted.
        let _ =
            tokio::task::spawn_blocking(move || networks.settle(std::time::Duration::from_secs(5)))
                .await;
        cleanup();
        std::process::exit(0);
    });
    axum::serve(listener, tower::make::Shared::new(service))
        .await
        .map_err(|e| format!("serving the API: {e}"))
}

/// The first descriptor systemd passes to an activated service.
const SD_LISTEN_FDS_START: i32 = 3;

/// How many descriptors systemd's socket activation passed to this
/// process, from `LISTEN_PID` and `LISTEN_FDS` (sd_listen_fds(3)): none
/// when `LISTEN_PID` is unset or names another process (the variables
/// were inherited, not meant for us).
pub fn activation_fd_count(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    own_pid: u32,
) -> Result<usize, String> {
    let Some(pid) = listen_pid else {
        return Ok(0);
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| format!("socket activation: LISTEN_PID={pid:?} is not a process id"))?;
    if pid != own_pid {
        return Ok(0);
    }
    let fds = listen_fds.ok_or("socket activation: LISTEN_PID is set but LISTEN_FDS is not")?;
    let n: usize = fds.trim().parse().map_err(|_| {
        format!("socket activation: LISTEN_FDS={fds:?} is not a number of descriptors")
    })?;
    if n > 1 {
        return Err(format!(
            "socket activation: pierd serves one socket, but {n} were passed \
             (LISTEN_FDS={n}); give pierd.socket one ListenStream"
        ));
    }
    Ok(n)
}

/// Takes fd 3 as the API listener when systemd passed one, after checking
/// that it is a listening unix stream socket. The variables are removed so
/// that shims and other children do not see them.
fn take_activation_listener() -> Result<Option<std::os::unix::net::UnixListener>, String> {
    use std::os::fd::{BorrowedFd, FromRawFd};
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let n = activation_fd_count(pid.as_deref(), fds.as_deref(), std::process::id())?;
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    if n == 0 {
        return Ok(None);
    }
    // SAFETY: systemd passed fd 3 to this process (LISTEN_PID matched); it
    // stays open for the process's life, as the listener takes it over.
    let fd = unsafe { BorrowedFd::borrow_raw(SD_LISTEN_FDS_START) };
    let not_ours = |what: &str| {
        format!(
            "socket activation: fd 3 is {what}; pierd.socket must have one ListenStream=/path/to/pier.sock"
        )
    };
    match rustix::net::sockopt::socket_domain(fd) {
        Ok(rustix::net::AddressFamily::UNIX) => {}
        Ok(_) => return Err(not_ours("not a unix socket")),
        Err(e) => return Err(not_ours(&format!("not a socket ({e})"))),
    }
    if rustix::net::sockopt::socket_type(fd).ok() != Some(rustix::net::SocketType::STREAM) {
        return Err(not_ours("not a stream socket"));
    }
    if !rustix::net::sockopt::socket_acceptconn(fd).unwrap_or(false) {
        return Err(not_ours("not listening"));
    }
    // Not inherited by shims or containers.
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| format!("socket activation: marking fd 3 close-on-exec: {e}"))?;
    // SAFETY: fd 3 is a listening unix stream socket (checked above) that
    // nothing else in pierd owns; the listener becomes its only owner.
    let std_listener =
        unsafe { std::os::unix::net::UnixListener::from_raw_fd(SD_LISTEN_FDS_START) };
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket activation: fd 3 non-blocking: {e}"))?;
    Ok(Some(std_listener))
}

#[cfg(test)]
mod tests {
    use super::activation_fd_count;

    #[test]
    fn listen_fds_for_this_process_are_counted() {
        assert_eq!(activation_fd_count(Some("42"), Some("1"), 42), Ok(1));
        assert_eq!(activation_fd_count(Some(" 42\n"), Some("1"), 42), Ok(1));
        assert_eq!(activation_fd_count(Some("42"), Some("0"), 42), Ok(0));
    }

    #[test]
    fn listen_fds_meant_for_another_process_or_absent_are_ignored() {
        assert_eq!(activation_fd_count(None, None, 42), Ok(0));
        assert_eq!(activation_fd_count(None, Some("1"), 42), Ok(0));
        assert_eq!(activation_fd_count(Some("41"), Some("1"), 42), Ok(0));
    }

    #[test]
    fn malformed_listen_variables_are_errors_that_name_them() {
        let e = activation_fd_count(Some("abc"), Some("1"), 42).unwrap_err();
        assert!(e.contains("LISTEN_PID=\"abc\""), "{e}");
        let e = activation_fd_count(Some("42"), None, 42).unwrap_err();
        assert!(e.contains("LISTEN_FDS is not"), "{e}");
        let e = activation_fd_count(Some("42"), Some("x"), 42).unwrap_err();
        assert!(e.contains("LISTEN_FDS=\"x\""), "{e}");
        let e = activation_fd_count(Some("42"), Some("2"), 42).unwrap_err();
        assert!(e.contains("one socket"), "{e}");
    }
}
