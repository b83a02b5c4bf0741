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
    match runtime.block_on(serve(config)) {
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
    let _lock = lock_exec_root(&config.exec_root)?;
    let socket = config.socket_path();
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let engine = Engine::open(config.clone()).await.map_err(|e| e.message)?;
    let listener = tokio::net::UnixListener::bind(&socket)
        .map_err(|e| format!("listening on {}: {e}", socket.display()))?;
    let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660));
    let pid_file = config.exec_root.join("pierd.pid");
    let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));

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
            let _ = std::fs::remove_file(&socket);
            let _ = std::fs::remove_file(&pid_file);
        }
    };
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        cleanup();
        std::process::exit(0);
    });
    axum::serve(listener, tower::make::Shared::new(service))
        .await
        .map_err(|e| format!("serving the API: {e}"))
}
