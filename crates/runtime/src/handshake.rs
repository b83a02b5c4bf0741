//! The parent's side of the init handshake: reads the init's messages on
//! the socketpair until it reports ready (or an error), serving what it asks
//! for on the way (the seccomp notify fd goes to the agent).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use oci_spec::runtime::{ContainerState, Hook, Spec, State};

use crate::init::{InitError, InitPlan, Kind};
use crate::{Error, Result};

/// What the parent needs to know while the init sets itself up.
#[derive(Debug)]
pub struct ParentCtx {
    pub id: String,
    pub bundle: PathBuf,
    pub annotations: HashMap<String, String>,
    /// Seccomp agent socket and metadata (SCMP_ACT_NOTIFY).
    pub listener: Option<(PathBuf, String)>,
    /// uid_map and gid_map contents for a new user namespace.
    pub id_maps: Option<(String, String)>,
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
}

impl ParentCtx {
    pub fn new(id: &str, bundle: &std::path::Path, spec: &Spec, plan: &InitPlan) -> Self {
        // poststart/poststop hooks are kept in the state dir (beside
        // exec.fifo), so start and delete need not parse config.json.
        let fifo = std::path::Path::new(std::ffi::OsStr::from_bytes(plan.fifo.to_bytes()));
        if let Some(dir) = fifo.parent() {
            crate::hooks::save_late(dir, spec.hooks().as_ref());
        }
        ParentCtx {
            id: id.to_owned(),
            bundle: bundle.to_path_buf(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            listener: plan.seccomp.as_ref().and_then(|s| s.listener.clone()),
            id_maps: plan.userns.then(|| id_maps(spec)),
            prestart: crate::hooks::stage(spec.hooks().as_ref(), |h| h.prestart()),
            create_runtime: crate::hooks::stage(spec.hooks().as_ref(), |h| h.create_runtime()),
        }
    }

    /// The OCI state of the container being created.
    pub fn state(&self, pid: i32, status: ContainerState) -> State {
        let mut st = State::default();
        st.set_version(crate::OCI_VERSION.to_owned());
        st.set_id(self.id.clone());
        st.set_status(status);
        st.set_pid(Some(pid));
        st.set_bundle(self.bundle.clone());
        if !self.annotations.is_empty() {
            st.set_annotations(Some(self.annotations.clone()));
        }
        st
    }
}

/// The uid_map and gid_map of a spec's linux.uidMappings/gidMappings.
fn id_maps(spec: &Spec) -> (String, String) {
    let linux = spec.linux().as_ref();
    let fmt = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
        m.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    (
        fmt(linux.and_then(|l| l.uid_mappings().as_ref())),
        fmt(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

/// How the init's setup ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    /// The init closed the socket without a word (it died).
    Eof,
}

/// Serves the init until it is ready. An `Err` means the container must be
/// killed.
pub fn wait_ready(sock: &OwnedFd, pid: i32, ctx: &ParentCtx) -> Result<Outcome> {
    if let Some((uid_map, gid_map)) = &ctx.id_maps {
        for (file, data) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, data).map_err(Error::io(format!("writing {path}")))?;
        }
        resume(sock)?;
    }
    let mut buf = [0u8; 8192];
    loop {
        let (n, fds) = crate::sync::recv_fds(sock.as_raw_fd(), &mut buf)
            .map_err(Error::io("reading from init"))?;
        if n == 0 {
            return Ok(Outcome::Eof);
        }
        let msg = &buf[..n];
        if msg[0] == Kind::SeccompFd as u8 {
            let fd = fds
                .first()
                .ok_or_else(|| Error::Init("init sent no seccomp fd".into()))?;
            let (path, meta) = ctx
                .listener
                .as_ref()
                .ok_or_else(|| Error::Init("unexpected seccomp fd".into()))?;
            crate::seccomp::send_to_listener(
                path,
                meta,
                pid,
                &ctx.state(pid, ContainerState::Creating),
                fd,
            )?;
            continue;
        }
        if msg[0] == Kind::Hooks as u8 {
            let state = ctx.state(pid, ContainerState::Creating);
            let json = serde_json::to_vec(&state)
                .map_err(|e| Error::Init(format!("serializing the state: {e}")))?;
            crate::hooks::run("prestart", &ctx.prestart, &json)?;
            crate::hooks::run("createRuntime", &ctx.create_runtime, &json)?;
            crate::sync::send_fds(sock.as_raw_fd(), &json, &[])
                .map_err(Error::io("answering the init's hooks"))?;
            continue;
        }
        return match InitError::decode(msg) {
            Ok(None) => Ok(Outcome::Ready),
            Ok(Some(e)) => Err(e.into_error()),
            Err(m) => Err(Error::Init(m)),
        };
    }
}

/// Sends one byte telling the child to go on.
pub fn resume(sock: &OwnedFd) -> Result<()> {
    crate::sync::send_fds(sock.as_raw_fd(), &[0], &[]).map_err(Error::io("resuming init"))
}
