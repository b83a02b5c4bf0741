//! Restart policies (`HostConfig.RestartPolicy`) with docker's back-off:
//! 100ms before the first restart, doubling up to a minute, back to 100ms
//! once the container has run for 10s.

use super::{lock, Engine, Handle};
use crate::container::ContainerRecord;
use bollard_stubs::models::RestartPolicyNameEnum as Policy;
use std::sync::Arc;
use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the back-off.
const RESET_AFTER: i64 = 10;

/// A container's back-off; `generation` changes whenever a pending restart
/// is cancelled, so that its timer does nothing when it fires.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    delay: Duration,
    generation: u64,
}

fn policy(rec: &ContainerRecord) -> (Policy, u32) {
    match &rec.host_config.restart_policy {
        Some(p) => (
            p.name.unwrap_or(Policy::NO),
            p.maximum_retry_count.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
        ),
        None => (Policy::NO, 0),
    }
}

/// Whether the policy restarts a container that just exited (docker's
/// restartmanager: a user's stop cancels every policy).
pub(super) fn restarts_after_exit(rec: &ContainerRecord) -> bool {
    if rec.state.stopped_by_user {
        return false;
    }
    match policy(rec) {
        (Policy::ALWAYS | Policy::UNLESS_STOPPED, _) => true,
        (Policy::ON_FAILURE, max) => {
            rec.state.exit_code != 0 && (max == 0 || rec.state.restart_count < max)
        }
        _ => false,
    }
}

/// Whether pierd, starting, brings back a container that is not running:
/// `always` even after a user's stop, `unless-stopped` unless the user
/// stopped it, `on-failure` after a failure within its retries; only
/// containers that were started once.
pub(super) fn restarts_at_daemon_start(rec: &ContainerRecord) -> bool {
    if rec.state.started_at.is_empty() || rec.state.running() {
        return false;
    }
    match policy(rec) {
        (Policy::ALWAYS, _) => true,
        (Policy::UNLESS_STOPPED, _) => !rec.state.stopped_by_user,
        (Policy::ON_FAILURE, max) => {
            !rec.state.stopped_by_user
                && rec.state.exit_code != 0
                && (max == 0 || rec.state.restart_count < max)
        }
        _ => false,
    }
}

impl Engine {
    /// After an exit has been recorded: the restart policy, else auto-remove.
    pub(super) async fn after_exit(self: &Arc<Self>, h: &Arc<Handle>) {
        if h.removed() {
            return;
        }
        let rec = h.record();
        self.release_volumes(&rec).await;
        // record_exit decided, in the same update as the exit, so that no
        // waiter sees the container stopped for good in between.
        if rec.state.restarting {
            let ran = pier_common::time::parse_rfc3339(&rec.state.finished_at)
                .zip(pier_common::time::parse_rfc3339(&rec.state.started_at))
                .map_or(0, |(f, s)| f - s);
            let delay = {
                let mut b = lock(&h.backoff);
                b.delay = if ran >= RESET_AFTER || b.delay.is_zero() {
                    FIRST_DELAY
                } else {
                    (b.delay * 2).min(MAX_DELAY)
                };
                b.delay
            };
            self.schedule_restart(h, delay);
        } else if rec.auto_remove() {
            if let Err(e) = self.remove(h, true).await {
                eprintln!("pierd: removing container {}: {e}", h.id);
            }
        }
    }

    /// Marks the container restarting (if it is not yet) and starts it
    /// again after `delay`, unless the restart is cancelled meanwhile.
    pub(super) fn schedule_restart(self: &Arc<Self>, h: &Arc<Handle>, delay: Duration) {
        let generation = lock(&h.backoff).generation;
        if !h.record().state.restarting {
            if let Err(e) = self.update(h, |r| r.state.restarting = true) {
                eprintln!("pierd: recording the restart of {}: {e}", h.id);
            }
        }
        let engine = self.clone();
        let h = h.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if lock(&h.backoff).generation != generation
                || h.removed()
                || !h.record().state.restarting
            {
                return;
            }
            if let Err(e) = engine.start(&h).await {
                eprintln!("pierd: restarting container {}: {e}", h.id);
                let _ = engine.update(&h, |r| r.state.restarting = false);
            }
        });
    }

    /// Cancels a pending restart; `by_user` (stop, kill, forced remove) also
    /// keeps the policy from restarting it later.
    pub(super) fn cancel_restart(&self, h: &Handle, by_user: bool) {
        lock(&h.backoff).generation += 1;
        let _ = self.update(h, |r| {
            r.state.restarting = false;
            if by_user {
                r.state.stopped_by_user = true;
            }
        });
    }

    /// A user's start begins a new back-off.
    pub(super) fn reset_backoff(&self, h: &Handle) {
        let mut b = lock(&h.backoff);
        b.generation += 1;
        b.delay = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{HostConfig, RestartPolicy};

    fn rec(name: Policy, max: i64, exit_code: i32) -> ContainerRecord {
        let mut r: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "0".repeat(64), "name": "c", "created": "", "image": "i", "image_id": "",
            "path": "sh", "args": [], "config": {}, "host_config": {},
            "state": {"status": "exited", "started_at": "2026-01-01T00:00:00Z"}
        }))
        .unwrap();
        r.host_config = HostConfig {
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: Some(max),
            }),
            ..Default::default()
        };
        r.state.exit_code = exit_code;
        r
    }

    #[test]
    fn on_failure_counts_its_retries() {
        let mut r = rec(Policy::ON_FAILURE, 2, 1);
        assert!(restarts_after_exit(&r));
        r.state.restart_count = 2;
        assert!(!restarts_after_exit(&r));
        assert!(!restarts_after_exit(&rec(Policy::ON_FAILURE, 2, 0)));
        assert!(restarts_after_exit(&rec(Policy::ON_FAILURE, 0, 3)));
    }

    #[test]
    fn a_user_stop_cancels_every_policy_until_daemon_start() {
        let mut always = rec(Policy::ALWAYS, 0, 0);
        let mut unless = rec(Policy::UNLESS_STOPPED, 0, 0);
        assert!(restarts_after_exit(&always) && restarts_after_exit(&unless));
        always.state.stopped_by_user = true;
        unless.state.stopped_by_user = true;
        assert!(!restarts_after_exit(&always) && !restarts_after_exit(&unless));
        assert!(restarts_at_daemon_start(&always));
        assert!(!restarts_at_daemon_start(&unless));
        assert!(!restarts_at_daemon_start(&rec(Policy::NO, 0, 1)));
    }
}
