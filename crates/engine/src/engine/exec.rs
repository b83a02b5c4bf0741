//! `exec`: extra processes in a running container, started by its shim.
//! Exec instances live in pierd's memory only (docker loses them on a
//! restart too).

use super::{lock, Engine, Handle};
use crate::container::user;
use crate::error::{Error, Result};
use crate::shim::{self, ShimStream};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// The body of `POST /containers/{id}/exec` (docker's ExecConfig).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: Option<String>,
    pub tty: bool,
    pub console_size: Option<Vec<u16>>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

/// One exec instance.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    /// `start` was called (an exec runs once).
    pub started: bool,
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i32>,
}

/// The exec instances of every container.
#[derive(Default)]
pub struct Execs(Mutex<HashMap<String, ExecRecord>>);

/// Why an exec did not start: docker's message and exit code (126/127).
pub struct ExecFailure {
    pub message: String,
    pub exit_code: i32,
}

impl Engine {
    fn running_for_exec(&self, h: &Handle) -> Result<()> {
        let rec = h.record();
        if !rec.state.running() || rec.state.restarting {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if rec.state.paused {
            return Err(Error::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        Ok(())
    }

    /// `POST /containers/{id}/exec`: records an exec instance.
    pub fn exec_create(&self, h: &Handle, config: ExecConfig) -> Result<String> {
        self.running_for_exec(h)?;
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::bad_request("No exec command specified"));
        }
        let id = crate::container::names::new_id();
        self.emit_exec(
            &h.id,
            "exec_create",
            &id,
            config.cmd.as_deref().unwrap_or_default(),
            &[],
        );
        lock(&self.execs.0).insert(
            id.clone(),
            ExecRecord {
                id: id.clone(),
                container_id: h.id.clone(),
                config,
                started: false,
                running: false,
                pid: 0,
                exit_code: None,
            },
        );
        Ok(id)
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecRecord> {
        lock(&self.execs.0)
            .get(id)
            .cloned()
            .ok_or_else(|| no_such_exec(id))
    }

    /// The execs of container `container_id` that have not ended (made or
    /// running), as docker's inspect lists them in `ExecIDs`.
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.execs.0)
            .values()
            .filter(|e| e.container_id == container_id && e.exit_code.is_none())
            .map(|e| e.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// First half of `POST /exec/{id}/start`: checks and marks the
    /// instance as started.
    pub fn exec_begin(&self, id: &str) -> Result<ExecRecord> {
        let rec = self.exec_inspect(id)?;
        let h = self.find(&rec.container_id)?;
        self.running_for_exec(&h)?;
        let mut execs = lock(&self.execs.0);
        let e = execs.get_mut(id).ok_or_else(|| no_such_exec(id))?;
        if e.running {
            return Err(Error::conflict(format!(
                "Error: Exec command {id} is already running"
            )));
        }
        if e.started {
            return Err(Error::conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        e.started = true;
        e.running = true;
        Ok(e.clone())
    }

    /// Second half of `start`: the shim starts the process. Returns its
    /// stream (multiplexed frames, then the exit frame).
    pub async fn exec_run(&self, rec: &ExecRecord) -> std::result::Result<ShimStream, ExecFailure> {
        let result = self.exec_spawn(rec).await;
        let mut execs = lock(&self.execs.0);
        let e = execs.get_mut(&rec.id);
        match result {
            Ok((pid, stream)) => {
                if let Some(e) = e {
                    e.pid = pid;
                }
                self.emit_exec(
                    &rec.container_id,
                    "exec_start",
                    &rec.id,
                    rec.config.cmd.as_deref().unwrap_or_default(),
                    &[],
                );
                Ok(stream)
            }
            Err(f) => {
                if let Some(e) = e {
                    e.running = false;
                    e.exit_code = Some(f.exit_code);
                }
                Err(f)
            }
        }
    }

    async fn exec_spawn(
        &self,
        rec: &ExecRecord,
    ) -> std::result::Result<(i32, ShimStream), ExecFailure> {
        let fail = |message: String| ExecFailure {
            message,
            exit_code: 126,
        };
        let process = self.exec_process(rec).map_err(|e| fail(e.message))?;
        let exec_dir = self.config.container_exec_dir(&rec.container_id);
        let stdin = rec.config.attach_stdin;
        match shim::exec(&exec_dir, &rec.id, process, stdin).await {
            Ok(Ok((pid, stream))) => {
                if let Some([h, w]) = rec.config.console_size.as_deref() {
                    if *h > 0 && *w > 0 {
                        let _ = shim::resize(&exec_dir, Some(&rec.id), *h, *w).await;
                    }
                }
                Ok((pid, stream))
            }
            Ok(Err(resp)) => Err(ExecFailure {
                message: format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
                    resp.error.unwrap_or_default()
                ),
                // As docker (20.10): 126 for any exec that did not start,
                // a missing binary included.
                exit_code: 126,
            }),
            Err(e) => Err(fail(format!(
                "container {} is not running: {e}",
                rec.container_id
            ))),
        }
    }

    /// The container's process, changed as the exec asks: args, env
    /// (added to the container's), user, working directory, terminal.
    fn exec_process(&self, rec: &ExecRecord) -> Result<oci_spec::runtime::Process> {
        let dir = self.container_dir(&rec.container_id);
        let spec = oci_spec::runtime::Spec::load(dir.join("config.json"))
            .map_err(|e| Error::internal(format!("reading the container's config: {e}")))?;
        let mut p = spec.process().clone().unwrap_or_default();
        let cfg = &rec.config;
        p.set_args(cfg.cmd.clone());
        let mut env = p.env().clone().unwrap_or_default();
        let mut extra = cfg.env.clone().unwrap_or_default();
        if cfg.tty && !extra.iter().chain(&env).any(|e| e.starts_with("TERM=")) {
            extra.push("TERM=xterm".into());
        }
        for e in extra {
            let key = e.split('=').next().unwrap_or("").to_owned();
            env.retain(|old| old.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        p.set_env(Some(env));
        p.set_terminal(Some(cfg.tty));
        if cfg.privileged {
            // As docker's `exec --privileged`: every capability, in the
            // sets the container's spec fills.
            let all =
                crate::container::security::capabilities(&bollard_stubs::models::HostConfig {
                    privileged: Some(true),
                    ..Default::default()
                });
            let caps = serde_json::from_value(
                serde_json::json!({"bounding": all, "effective": all, "permitted": all}),
            )
            .map_err(|e| Error::internal(format!("the capabilities of a privileged exec: {e}")))?;
            p.set_capabilities(Some(caps));
        }
        if let Some(wd) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
            p.set_cwd(wd.into());
        }
        if let Some(u) = cfg.user.as_deref().filter(|u| !u.is_empty()) {
            let rootfs = dir.join("rootfs");
            let read = |f: &str| std::fs::read_to_string(rootfs.join(f)).unwrap_or_default();
            let resolved = user::resolve(u, &read("etc/passwd"), &read("etc/group"))
                .map_err(|e| Error::internal(format!("unable to find user {u}: {e}")))?;
            let mut pu = p.user().clone();
            pu.set_uid(resolved.uid);
            pu.set_gid(resolved.gid);
            pu.set_additional_gids(Some(resolved.additional_gids));
            p.set_user(pu);
        }
        Ok(p)
    }

    /// Records an exec's exit code.
    pub fn exec_exited(&self, id: &str, exit_code: i32) {
        let container = lock(&self.execs.0).get_mut(id).map(|e| {
            e.running = false;
            e.exit_code = Some(exit_code);
            e.container_id.clone()
        });
        if let Some(container) = container {
            self.emit_exec(
                &container,
                "exec_die",
                id,
                &[],
                &[("exitCode", exit_code.to_string())],
            );
        }
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let rec = self.exec_inspect(id)?;
        if !rec.running {
            return Err(Error::conflict(format!("Exec {id} is not running")));
        }
        shim::resize(
            &self.config.container_exec_dir(&rec.container_id),
            Some(id),
            height,
            width,
        )
        .await
        .map_err(|e| Error::internal(format!("resizing exec {id}: {e}")))
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, h: &Handle, height: u16, width: u16) -> Result<()> {
        let rec = h.record();
        if !rec.state.running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        shim::resize(
            &self.config.container_exec_dir(&rec.id),
            None,
            height,
            width,
        )
        .await
        .map_err(|e| Error::internal(format!("resizing the tty of {}: {e}", rec.name)))
    }
}

fn no_such_exec(id: &str) -> Error {
    Error::not_found(format!("No such exec instance: {id}"))
}
