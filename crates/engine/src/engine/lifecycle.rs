//! A container's life after create: kill, stop, restart, pause, unpause,
//! rename, remove, and what pierd does when its shim reports an exit (or
//! dies without one).

use super::adopt::monitor_exit;
use super::{lock, Engine, Handle};
use crate::container::{names, ContainerRecord, Status};
use crate::error::{io as io_err, Error, Result};
use crate::shim;
use axum::http::StatusCode;
use pier_shim::{ExitInfo, Request};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a container may take to die after SIGKILL before pierd gives up
/// waiting (it is then stuck in the kernel, e.g. on a dead NFS mount).
const KILL_GRACE: Duration = Duration::from_secs(30);

/// Docker's default stop timeout.
const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// A signal by name (`KILL`, `SIGKILL`, `SIGRTMIN+3`) or number.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = match rest.strip_prefix('+') {
            Some(n) => n.parse().ok()?,
            None if rest.is_empty() => 0,
            None => return None,
        };
        let n = libc::SIGRTMIN() + off;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return None,
    })
}

fn not_running(id: &str) -> Error {
    Error::conflict(format!("Container {id} is not running"))
}

/// The container's own stop signal (`StopSignal`), if it has a valid one.
fn stop_signal(rec: &ContainerRecord) -> Option<i32> {
    rec.config
        .stop_signal
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(parse_signal)
}

impl Engine {
    /// Waits until the container is no longer running; false on timeout.
    async fn wait_stopped(&self, h: &Handle, limit: Option<Duration>) -> bool {
        let mut rx = h.changed.subscribe();
        let stopped = async {
            while h.record().state.running() && !h.removed() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        match limit {
            Some(d) => tokio::time::timeout(d, stopped).await.is_ok(),
            None => {
                stopped.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/kill`: sends `signal` to the container's
    /// init. As docker, the stop signal (or any signal when the container
    /// has none configured) and SIGKILL count as the user stopping it: its
    /// restart policy will not bring it back, and a paused container is
    /// resumed so that the signal is delivered.
    pub async fn kill(&self, h: &Handle, signal: i32) -> Result<()> {
        let rec = h.record();
        let stopping = signal == libc::SIGKILL || stop_signal(&rec).is_none_or(|s| s == signal);
        if rec.state.restarting {
            if stopping {
                self.cancel_restart(h, true);
            }
            return Ok(());
        }
        if !rec.state.running() {
            return Err(not_running(&rec.id));
        }
        if stopping {
            self.update(h, |r| r.state.stopped_by_user = true)?;
        }
        shim::request(
            &self.config.container_exec_dir(&rec.id),
            &Request::Kill { signal, all: false },
        )
        .await
        .map_err(|e| Error::internal(format!("killing container {}: {e}", rec.name)))?;
        if stopping && rec.state.paused {
            if let Err(e) = self.set_paused(h, false).await {
                eprintln!("pierd: resuming {} so that it gets the signal: {e}", rec.id);
            }
        }
        self.emit_container(&rec, "kill", &[("signal", signal.to_string())]);
        Ok(())
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after
    /// the timeout (`t`, else the container's StopTimeout, else 10s; -1
    /// waits for ever). Not Modified when the container is not running.
    pub async fn stop(&self, h: &Arc<Handle>, t: Option<i64>, signal: Option<i32>) -> Result<()> {
        let rec = h.record();
        if rec.state.restarting {
            self.cancel_restart(h, true);
            self.emit_container(&rec, "stop", &[]);
            return Ok(());
        }
        if !rec.state.running() {
            return Err(Error::new(
                StatusCode::NOT_MODIFIED,
                format!("container {} is already stopped", rec.name),
            ));
        }
        self.update(h, |r| r.state.stopped_by_user = true)?;
        let signal = signal
            .or_else(|| stop_signal(&rec))
            .unwrap_or(libc::SIGTERM);
        let t = t
            .or(rec.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        let limit = (t >= 0).then(|| Duration::from_secs(t as u64));
        // A container that exits in between makes the signal fail: it is
        // stopped all the same.
        let signalled = match self.kill(h, signal).await {
            Ok(()) => true,
            Err(e) => {
                if h.record().state.running() {
                    eprintln!("pierd: stopping {}: {}", rec.id, e.message);
                }
                false
            }
        };
        // Without a signal sent, give it docker's 2s before SIGKILL.
        let limit = if signalled {
            limit
        } else {
            Some(Duration::from_secs(2))
        };
        if !self.wait_stopped(h, limit).await {
            let _ = self.kill(h, libc::SIGKILL).await;
            if !self.wait_stopped(h, Some(KILL_GRACE)).await {
                return Err(Error::internal(format!(
                    "container {} did not exit within {}s of SIGKILL; its processes may be stuck in the kernel",
                    rec.name,
                    KILL_GRACE.as_secs()
                )));
            }
        }
        self.emit_container(&rec, "stop", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`: stop (if running), then start.
    pub async fn restart(
        self: &Arc<Self>,
        h: &Arc<Handle>,
        t: Option<i64>,
        signal: Option<i32>,
    ) -> Result<()> {
        match self.stop(h, t, signal).await {
            Ok(()) => {}
            Err(e) if e.status == StatusCode::NOT_MODIFIED => {}
            Err(e) => return Err(e),
        }
        self.start_by_user(h).await?;
        let rec = h.record();
        self.emit_container(&rec, "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/start` from a user (not the restart policy):
    /// forgets an earlier stop and the restart count, then starts.
    pub async fn start_by_user(self: &Arc<Self>, h: &Arc<Handle>) -> Result<()> {
        let rec = h.record();
        if rec.state.paused && rec.state.running() {
            return Err(Error::conflict(
                "cannot start a paused container, try unpause instead",
            ));
        }
        if rec.state.running() {
            return Err(Error::new(
                StatusCode::NOT_MODIFIED,
                "container already started",
            ));
        }
        if rec.state.restarting {
            self.cancel_restart(h, false);
        }
        if !h.removed() {
            self.update(h, |r| {
                r.state.stopped_by_user = false;
                r.state.restart_count = 0;
            })?;
        }
        self.reset_backoff(h);
        self.start(h).await
    }

    /// `POST /containers/{id}/pause` and `unpause`: freezes or thaws the
    /// container's cgroup.
    pub async fn pause(&self, h: &Handle) -> Result<()> {
        let _op = h.op.lock().await;
        let rec = h.record();
        if rec.state.restarting {
            return Err(Error::conflict(format!(
                "Container {} is restarting, wait until the container is running",
                rec.id
            )));
        }
        if !rec.state.running() {
            return Err(not_running(&rec.id));
        }
        if rec.state.paused {
            return Err(Error::conflict(format!(
                "Container {} is already paused",
                rec.id
            )));
        }
        self.set_paused(h, true).await?;
        self.emit_container(&rec, "pause", &[]);
        Ok(())
    }

    pub async fn unpause(&self, h: &Handle) -> Result<()> {
        let _op = h.op.lock().await;
        let rec = h.record();
        if !rec.state.running() || !rec.state.paused {
            return Err(Error::conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.set_paused(h, false).await?;
        self.emit_container(&rec, "unpause", &[]);
        Ok(())
    }

    async fn set_paused(&self, h: &Handle, paused: bool) -> Result<()> {
        let runtime = pier_runtime::Runtime::new(self.config.runtime_root());
        let id = h.id.clone();
        tokio::task::spawn_blocking(move || {
            let c = runtime.load(&id)?;
            if paused {
                c.pause()
            } else {
                c.resume()
            }
        })
        .await?
        .map_err(|e| {
            let what = if paused { "pause" } else { "unpause" };
            Error::internal(format!("cannot {what} container {}: {e}", h.id))
        })?;
        self.update(h, |r| r.state.paused = paused)?;
        Ok(())
    }

    /// `POST /containers/{id}/rename?name=NEW`.
    pub fn rename(&self, h: &Handle, new_name: &str) -> Result<()> {
        let old = h.record().name;
        let new = new_name.strip_prefix('/').unwrap_or(new_name);
        if new.is_empty() || old.is_empty() {
            return Err(Error::bad_request("Neither old nor new names may be empty"));
        }
        let new = names::validate(new)
            .map_err(|e| {
                Error::bad_request(format!(
                    "Error when allocating new name: {}",
                    e.replace(&format!("({new})"), &format!("(/{new})"))
                ))
            })?
            .to_string();
        if new == old {
            return Err(Error::bad_request(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            // Checked and changed under the table's lock, as create names
            // containers, so that two renames cannot take the same name.
            let map = lock(&self.containers);
            if let Some(other) = map
                .values()
                .find(|o| o.id != h.id && lock(&o.record).name == new)
            {
                return Err(Error::conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use by container \"{}\". \
                     You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
            lock(&h.record).name = new.clone();
        }
        let rec = self.update(h, |_| {})?;
        self.emit_container(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `DELETE /containers/{id}`: refuses a running, paused or restarting
    /// container unless `force`, which kills it first.
    pub async fn remove(&self, h: &Arc<Handle>, force: bool) -> Result<()> {
        self.remove_with(h, force, false).await
    }

    /// Removes the container, and with `volumes` (`rm -v`; always for a
    /// `--rm` container, as docker) its anonymous volumes no other
    /// container uses.
    pub async fn remove_with(&self, h: &Arc<Handle>, force: bool, volumes: bool) -> Result<()> {
        let _op = h.op.lock().await;
        if h.removed() {
            return Ok(());
        }
        let rec = h.record();
        if rec.state.running() || rec.state.restarting {
            if !force {
                // As dockerd 28.
                let state = rec.state.status_str();
                let what = if state == "paused" {
                    "Unpause and then stop"
                } else {
                    "Stop"
                };
                return Err(Error::conflict(format!(
                    "You cannot remove a {state} container {}. {what} the container before attempting removal or force remove",
                    rec.id
                )));
            }
            if rec.state.restarting {
                self.cancel_restart(h, true);
            } else {
                let _ = self.kill(h, libc::SIGKILL).await;
                if !self.wait_stopped(h, Some(KILL_GRACE)).await {
                    return Err(Error::internal(format!(
                        "could not kill container {}: it did not exit within {}s",
                        rec.name,
                        KILL_GRACE.as_secs()
                    )));
                }
            }
        }
        self.release_runtime(&rec.id).await;
        self.network_down(h).await;
        let dir = self.container_dir(&rec.id);
        tokio::task::spawn_blocking(move || {
            if let Some(m) = mounts_under(&dir).first() {
                return Err(Error::internal(format!(
                    "cannot remove {}: {} is still mounted; unmount it and remove the container again",
                    dir.display(),
                    m.display()
                )));
            }
            std::fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))
        })
        .await??;
        lock(&self.containers).remove(&rec.id);
        lock(&h.pending_attach).clear();
        h.removed.store(true, Ordering::SeqCst);
        h.notify();
        self.emit_container(&h.record(), "destroy", &[]);
        if volumes || rec.auto_remove() {
            self.remove_anonymous_volumes(&rec).await;
        }
        Ok(())
    }

    /// Makes sure nothing of a container that no longer runs is left: its
    /// runtime state and cgroup (killing what is still in it), its rootfs
    /// and any other mount under its directory (a `cp` cut short), its
    /// exec dir. The shim does this when the container exits;
    /// this covers a shim that died, or a pierd that died mid-start.
    pub(super) async fn release_runtime(&self, id: &str) {
        let runtime = pier_runtime::Runtime::new(self.config.runtime_root());
        let container_dir = self.container_dir(id);
        let exec_dir = self.config.container_exec_dir(id);
        let id = id.to_string();
        let _ = tokio::task::spawn_blocking(move || {
            match runtime.load(&id) {
                Ok(c) => {
                    if let Err(e) = c.delete(true) {
                        eprintln!("pierd: deleting the runtime state of {id}: {e}");
                    }
                }
                Err(pier_runtime::Error::NotFound(_)) => {}
                Err(e) => eprintln!("pierd: loading the runtime state of {id}: {e}"),
            }
            unmount_under(&container_dir);
            let _ = std::fs::remove_dir_all(&exec_dir);
        })
        .await;
    }

    /// Records an exit reported by the shim (or found in its exit file).
    pub(super) fn record_exit(&self, h: &Handle, exit: ExitInfo) {
        // Before waiters hear of the exit, so that the events come in order.
        self.emit_volume_unmounts(&h.record());
        let rec = self.update(h, |r| {
            r.state.pid = 0;
            r.state.shim_pid = 0;
            r.state.exits += 1;
            r.state.paused = false;
            r.state.status = Status::Exited;
            r.state.exit_code = exit.exit_code;
            r.state.oom_killed = exit.oom_killed;
            r.state.finished_at = exit.finished_at.clone();
            if !h.removed() && super::restart::restarts_after_exit(r) {
                r.state.restarting = true;
                r.state.restart_count += 1;
            }
        });
        let rec = rec.unwrap_or_else(|_| h.record());
        if rec.state.oom_killed {
            self.emit_container(&rec, "oom", &[]);
        }
        self.emit_container(&rec, "die", &[("exitCode", exit.exit_code.to_string())]);
    }

    /// The exit of a container whose shim is gone without recording one
    /// (killed, or crashed). As docker does when containerd's shim dies, the
    /// container is killed, its resources released, and it is reported as
    /// exited with 137 (128 + SIGKILL).
    pub(super) async fn exit_of_dead_shim(&self, id: &str) -> ExitInfo {
        eprintln!("pierd: the shim of container {id} died without recording an exit; killing what is left of the container");
        self.release_runtime(id).await;
        ExitInfo {
            exit_code: 128 + libc::SIGKILL,
            oom_killed: false,
            finished_at: pier_common::time::now_rfc3339(),
        }
    }
}

/// Mount points at or under `dir`, deepest first, from mountinfo.
pub(super) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let root = dir.to_string_lossy().into_owned();
    let mut points: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| *p == root || p.starts_with(&format!("{root}/")))
        .map(PathBuf::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    points
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or under `dir`, so that removing it cannot
/// reach into a mounted filesystem.
pub(super) fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let points = mounts_under(dir);
        if points.is_empty() {
            return;
        }
        for p in points {
            if let Err(e) = pier_image::mount::unmount(&p) {
                eprintln!("pierd: {e}");
            }
        }
    }
}

/// Watches a running container through its shim, records its exit, then
/// applies its restart policy or auto-remove.
pub(super) async fn monitor(engine: Arc<Engine>, h: Arc<Handle>) {
    let exit = monitor_exit(&engine, &h).await;
    // Down before the exit is told, so the next start finds its address
    // and host ports free.
    engine.release_network(&h).await;
    engine.record_exit(&h, exit);
    engine.after_exit(&h).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/a\\134"), "/a\\");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("10"), Some(10));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }
}
