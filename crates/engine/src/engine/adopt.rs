//! pierd starting again: re-adopts the containers whose shims outlived it,
//! collects the exits of those that ended meanwhile, and cleans what a crash
//! in the middle of create or start left behind.

use super::lifecycle::monitor;
use super::{restart, Engine, Handle, RECORD_FILE};
use crate::container::ContainerRecord;
use crate::shim;
use pier_shim::{ExitInfo, Request};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Whether process `pid` exists and has not exited (a zombie has).
fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    pid > 0 && !matches!(state, Some('Z' | 'X') | None)
}

/// Whether `pid` is a live (not zombie) pier-shim.
fn shim_alive(pid: i32) -> bool {
    running(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("pier-shim"))
}

/// The exit of a running container, as its shim reports it: answered by
/// the shim when the container exits, read from its exit file when the shim
/// already finished, or, when the shim died without recording one, the
/// container is cleaned up and reported killed.
pub(super) async fn monitor_exit(engine: &Engine, h: &Handle) -> ExitInfo {
    let exec_dir = engine.config.container_exec_dir(&h.id);
    loop {
        if let Ok((resp, _)) = shim::call(&exec_dir, &Request::Wait).await {
            if let Some(exit) = resp.exit {
                return exit;
            }
        }
        if let Some(exit) = pier_shim::read_exit(&exec_dir) {
            return exit;
        }
        // A live shim that did not answer (it may be busy or restarting its
        // listener): ask again rather than kill a healthy container.
        if !shim_alive(h.record().state.shim_pid) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    match pier_shim::read_exit(&exec_dir) {
        Some(exit) => exit,
        None => engine.exit_of_dead_shim(&h.id).await,
    }
}

/// A container directory (named by a container id) that create left
/// without its record.
fn half_made(dir: &Path) -> bool {
    let id_like = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()));
    id_like && !dir.join(RECORD_FILE).exists()
}

impl Engine {
    pub(super) async fn load_containers(self: &Arc<Self>) {
        let Ok(entries) = std::fs::read_dir(self.config.containers_dir()) else {
            return;
        };
        let mut loaded: Vec<Arc<Handle>> = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            if half_made(&dir) {
                eprintln!(
                    "pierd: removing {}: a container whose create did not finish",
                    dir.display()
                );
                let id = entry.file_name().to_string_lossy().into_owned();
                self.release_runtime(&id).await;
                if let Some(m) = super::lifecycle::mounts_under(&dir).first() {
                    eprintln!(
                        "pierd: leaving {}: {} is still mounted",
                        dir.display(),
                        m.display()
                    );
                } else if let Err(e) = std::fs::remove_dir_all(&dir) {
                    eprintln!("pierd: removing {}: {e}", dir.display());
                }
                continue;
            }
            let rec: ContainerRecord = match std::fs::read(dir.join(RECORD_FILE))
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
            {
                Some(r) => r,
                None => {
                    eprintln!(
                        "pierd: ignoring {}: its container record is unreadable",
                        dir.display()
                    );
                    continue;
                }
            };
            let h = Handle::new(rec);
            super::lock(&self.containers).insert(h.id.clone(), h.clone());
            loaded.push(h);
        }
        self.remove_orphans().await;
        for h in loaded {
            let rec = h.record();
            if rec.state.running() {
                if rec.state.shim_pid > 0 && !shim_alive(rec.state.shim_pid) {
                    // Ended while we were down: its exit is recorded before
                    // pierd answers anything, so nobody sees it running.
                    let exit = match pier_shim::read_exit(&self.config.container_exec_dir(&h.id)) {
                        Some(exit) => {
                            // The shim may have died before releasing it all.
                            self.release_runtime(&h.id).await;
                            exit
                        }
                        None => self.exit_of_dead_shim(&h.id).await,
                    };
                    self.release_network(&h).await;
                    self.record_exit(&h, exit);
                    let engine = self.clone();
                    tokio::spawn(async move { engine.after_exit(&h).await });
                } else if !running(rec.state.pid) {
                    // Its init ended while we were down and the shim is
                    // finishing (releasing the container, then answering):
                    // as above, its exit is recorded before pierd answers
                    // anything (a bounded wait; the monitor takes over if
                    // the shim is slower than that).
                    let ended =
                        tokio::time::timeout(Duration::from_secs(10), monitor_exit(self, &h)).await;
                    match ended {
                        Ok(exit) => {
                            self.release_network(&h).await;
                            self.record_exit(&h, exit);
                            let engine = self.clone();
                            tokio::spawn(async move { engine.after_exit(&h).await });
                        }
                        Err(_) => {
                            tokio::spawn(monitor(self.clone(), h));
                        }
                    }
                } else {
                    // The shim outlived us: the monitor re-adopts it.
                    tokio::spawn(monitor(self.clone(), h));
                }
                continue;
            }
            // Not running: nothing of it may still hold resources (a pierd
            // killed in the middle of start leaves a mounted rootfs, a shim
            // or runtime state).
            self.release_runtime(&rec.id).await;
            // As dockerd's restore: no new restart counted.
            if rec.state.restarting || restart::restarts_at_daemon_start(&rec) {
                self.schedule_restart(&h, Duration::ZERO);
            }
        }
    }

    /// Runtime state and exec dirs of containers pierd has no record of.
    async fn remove_orphans(&self) {
        let known: HashSet<String> = super::lock(&self.containers).keys().cloned().collect();
        let mut orphans = HashSet::new();
        for dir in [
            self.config.runtime_root(),
            self.config.exec_root.join("containers"),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&id) {
                    orphans.insert(id);
                }
            }
        }
        for id in orphans {
            eprintln!("pierd: removing what is left of unknown container {id}");
            self.release_runtime(&id).await;
        }
    }
}
