//! The record pierd keeps of each container, persisted as
//! `DATA_ROOT/containers/ID/container.json`.

use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// A container's state; the default is a container just created.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    /// How many times the container has exited (for `wait next-exit`).
    #[serde(default)]
    pub exits: u64,
    /// Frozen by `pause` (status stays Running, as docker's State.Running).
    #[serde(default)]
    pub paused: bool,
    /// Exited and waiting for its restart policy's next attempt (status
    /// is Exited meanwhile; docker shows "restarting").
    #[serde(default)]
    pub restarting: bool,
    /// Restarts made by the restart policy since the last `start`.
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped by the user (`stop`, `kill`, a forced remove): the restart
    /// policy leaves it alone until the next `start`, and `unless-stopped`
    /// does not bring it back when pierd starts.
    #[serde(default)]
    pub stopped_by_user: bool,
}

impl State {
    /// The container has a live shim (it may be paused).
    pub fn running(&self) -> bool {
        self.status == Status::Running
    }

    /// Docker's State.Status: created, running, paused, restarting,
    /// exited, dead.
    pub fn status_str(&self) -> &'static str {
        if self.restarting {
            "restarting"
        } else if self.paused && self.running() {
            "paused"
        } else {
            self.status.as_str()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without docker's leading slash.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// "sha256:..." of the image config.
    pub image_id: String,
    /// Entrypoint + command, resolved at create.
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    /// Binds, volumes and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mounts: Vec<super::mounts::MountPoint>,
    /// The networks it joins at start (user-defined ones, and `bridge`),
    /// by network id, with what was asked for each (aliases, address).
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, crate::network::EndpointConfig>,
    /// Its network namespace, addresses and published ports while it runs.
    #[serde(default)]
    pub net: Option<crate::network::NetState>,
}

impl ContainerRecord {
    pub fn auto_remove(&self) -> bool {
        self.host_config.auto_remove.unwrap_or(false)
    }

    /// The container's hostname: the one asked for, else the short id.
    pub fn hostname(&self) -> String {
        match self.config.hostname.as_deref() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => self.id[..12].to_string(),
        }
    }

    /// The command line as `docker ps` shows it.
    pub fn command_line(&self) -> String {
        std::iter::once(self.path.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
