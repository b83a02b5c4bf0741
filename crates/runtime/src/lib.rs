//! pier's OCI runtime: turns an OCI bundle (config.json + rootfs) into a
//! running container. The container-creation path is single-threaded and must
//! only be called from a single-threaded process (the shim or pier-runtime).
//!
//! API CONTRACT (used by pier-shim; keep these signatures).
//!
//! Layout: `create.rs` is the parent side of `create` (clone3, handshake,
//! state), `config.rs` turns config.json into an `InitPlan`, `init.rs` is the
//! child side, `rootfs.rs`/`mounts.rs`/`mount_into.rs`/`cgroup_mounts.rs`
//! the filesystem (`mountinfo.rs` reads mount tables), `process.rs` the
//! process attributes, `state.rs` the state dir, `cli.rs` the runc-style CLI.
//!
//! More modules: `handshake.rs` (the parent's side of the init's messages:
//! seccomp notify fd, hooks, id maps), `sync.rs` (fd passing), `seccomp.rs`
//! (libseccomp -> BPF in the parent, seccomp(2) in the child),
//! `seccomp_profile.rs` (docker profiles -> OCI), `terminal.rs` (pty and
//! console socket), `exec.rs`, `hooks.rs`, `time.rs` (time namespaces),
//! `features.rs` (`features`, `spec`). `cgroups.rs` (libcgroups: paths,
//! placing the init, resources, freezer, pids, stats, OOM kills) and
//! `cgroup_cli.rs` (`ps`, `events`, runc-shaped stats JSON).
//!
//! Not handled yet: AppArmor and SELinux labels (refused with a clear
//! error).

mod cgroup_cli;
mod cgroup_mounts;
pub mod cgroups;
pub mod cli;
mod config;
mod create;
pub mod exec;
mod features;
mod handshake;
mod hooks;
mod init;
mod init_msg;
mod mount_into;
pub mod mountinfo;
mod mounts;
mod process;
mod rootfs;
mod seccomp;
mod seccomp_cache;
mod seccomp_enosys;
pub mod seccomp_profile;
mod state;
mod sync;
mod sys;
mod terminal;
mod time;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use exec::ExecOptions;
pub use features::default_spec;
/// Capability names in kernel numbering order.
pub use process::CAPS as CAPABILITIES;
use state::StateFile;

/// Errors of the runtime. `exit_code()` maps exec failures to docker's codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("invalid container configuration: {0}")]
    InvalidConfig(String),
    /// The process's executable was not found in the container (docker: 127).
    #[error("exec: {0:?}: executable file not found in $PATH")]
    ExecNotFound(String),
    /// The process's executable cannot be executed (docker: 126).
    #[error("exec: {path:?}: permission denied")]
    ExecPermission { path: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container init failed: {0}")]
    Init(String),
    #[error("cgroups: {0}")]
    Cgroup(String),
    #[error("container {id:?} is {status}, {what}")]
    BadState {
        id: String,
        status: String,
        what: String,
    },
}

impl Error {
    /// 127 for a missing executable, 126 for one that cannot be run, else None.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Error::ExecNotFound(_) => Some(127),
            Error::ExecPermission { .. } => Some(126),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The container's stdio: each Some fd becomes the process's 0/1/2; None
/// means the caller's own fd is inherited.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

#[derive(Debug, Default)]
pub struct CreateOptions {
    pub stdio: Stdio,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
}

/// OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

/// A state directory (runc's --root) holding one subdirectory per container.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Creates the container: its init process is a child of the caller,
    /// fully set up and blocked until `start`. Errors (including a missing
    /// executable) are reported here, before anything runs.
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        create::create(self, id, bundle, opts)
    }
    pub fn load(&self, id: &str) -> Result<Container> {
        state::validate_id(id).map_err(|_| Error::NotFound(id.to_owned()))?;
        let dir = self.root.join(id);
        match state::load(&dir) {
            Ok(state) => Ok(Container { dir, state }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(id.to_owned()))
            }
            Err(e) => Err(Error::Io {
                context: format!("reading the state of {id}"),
                source: e,
            }),
        }
    }
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", self.root.display()))(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Half-created or foreign directories are skipped.
            if let Ok(c) = self.load(name) {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }
}

#[derive(Debug)]
pub struct Container {
    dir: PathBuf,
    state: StateFile,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.state.id
    }
    /// Host pid of the container's init process.
    pub fn pid(&self) -> i32 {
        self.state.pid
    }
    /// The bundle directory the container was created from.
    pub fn bundle(&self) -> &Path {
        &self.state.bundle
    }
    /// The container's state directory.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }
    pub fn status(&self) -> Status {
        match state::proc_stat(self.state.pid) {
            Ok((s, start)) if s != 'Z' && s != 'X' && start == self.state.start_time => {
                if self.dir.join(state::EXEC_FIFO).exists() {
                    Status::Created
                } else if self.state.cgroup.as_ref().is_some_and(cgroups::is_frozen) {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }
    /// The OCI state JSON (as `runc state` prints it).
    pub fn state(&self) -> oci_spec::runtime::State {
        use oci_spec::runtime::ContainerState as S;
        let status = self.status();
        let mut st = oci_spec::runtime::State::default();
        st.set_version(OCI_VERSION.to_owned());
        st.set_id(self.state.id.clone());
        st.set_status(match status {
            Status::Creating => S::Creating,
            Status::Created => S::Created,
            // oci-spec has no "paused"; pausing is not implemented yet.
            Status::Running | Status::Paused => S::Running,
            Status::Stopped => S::Stopped,
        });
        st.set_pid(Some(if status == Status::Stopped {
            0
        } else {
            self.state.pid
        }));
        st.set_bundle(self.state.bundle.clone());
        if !self.state.annotations.is_empty() {
            st.set_annotations(Some(self.state.annotations.clone()));
        }
        st
    }
    /// The state as runc prints it: like `state()`, with status "paused"
    /// (which oci-spec's enum lacks) for a frozen container.
    pub fn state_json(&self) -> serde_json::Value {
        let paused = self.status() == Status::Paused;
        let mut v = serde_json::to_value(self.state()).unwrap_or_default();
        if paused {
            v["status"] = "paused".into();
        }
        v
    }
    fn bad_state(&self, status: Status, what: &str) -> Error {
        Error::BadState {
            id: self.state.id.clone(),
            status: status.to_string(),
            what: what.to_owned(),
        }
    }
    /// Lets the init process exec the user's program.
    pub fn start(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Created {
            return Err(self.bad_state(status, "cannot start it"));
        }
        create::release_fifo(self)?;
        hooks::poststart(self);
        Ok(())
    }
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.bad_state(status, "cannot signal it"));
        }
        if all {
            if let Some(cg) = self.cgroup()? {
                return kill_cgroup(&cg, signal);
            }
            for pid in create::pids_in_pid_ns(self.state.pid)? {
                // Processes may exit while we walk: ignore ESRCH.
                // SAFETY: kill(2) with integer arguments.
                unsafe { libc::kill(pid, signal) };
            }
            return Ok(());
        }
        // SAFETY: kill(2) with integer arguments.
        if unsafe { libc::kill(self.state.pid, signal) } != 0 {
            return Err(Error::io(format!("signalling pid {}", self.state.pid))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    /// Removes the state; with `force` kills a live container first. A
    /// created (never started) container is killed without `force`, as runc
    /// does.
    pub fn delete(self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait()?,
            _ if force => self.kill_and_wait()?,
            _ => return Err(self.bad_state(status, "cannot delete it without force")),
        }
        if let Some(cg) = &self.state.cgroup {
            // Kills whatever outlived the init (no pid namespace, or
            // processes that escaped it) and removes the directories.
            cgroups::remove(cg)?;
        }
        if self.state.host_mounts {
            mountinfo::unmount_container_mounts(&self.state.rootfs);
        }
        hooks::poststop(&self);
        fs::remove_dir_all(&self.dir).map_err(Error::io(format!("removing {}", self.dir.display())))
    }
    /// The container's cgroup, if it has one.
    fn cgroup(&self) -> Result<Option<cgroups::Cgroup>> {
        self.state
            .cgroup
            .as_ref()
            .map(cgroups::Cgroup::open)
            .transpose()
    }
    /// The container's cgroup as recorded (path inside the hierarchy, v1
    /// or v2).
    pub fn cgroup_state(&self) -> Option<&cgroups::CgroupState> {
        self.state.cgroup.as_ref()
    }
    /// Freezes every process of a running container (`pause`).
    pub fn pause(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Running {
            return Err(self.bad_state(status, "cannot pause it"));
        }
        self.need_cgroup("pause")?.freeze()
    }
    /// Thaws a paused container (`resume`).
    pub fn resume(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Paused {
            return Err(self.bad_state(status, "cannot resume it"));
        }
        self.need_cgroup("resume")?.thaw()
    }
    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match self.cgroup()? {
            Some(cg) => cg.pids(),
            None if self.status() == Status::Stopped => Ok(Vec::new()),
            None => create::pids_in_pid_ns(self.state.pid),
        }
    }
    /// Resource usage of the container's cgroup.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        self.need_cgroup("stats")?.stats()
    }
    /// How many processes of this container the kernel's OOM killer has
    /// killed (memory.oom_control / memory.events `oom_kill`). Valid until
    /// `delete`, so a shim can ask after the init exited.
    pub fn oom_kills(&self) -> u64 {
        self.state.cgroup.as_ref().map_or(0, cgroups::oom_kills)
    }
    /// Whether the OOM killer killed any process of the container.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > 0
    }
    fn need_cgroup(&self, what: &str) -> Result<cgroups::Cgroup> {
        self.cgroup()?.ok_or_else(|| {
            Error::Cgroup(format!(
                "container {} has no cgroup: cannot {what}",
                self.state.id
            ))
        })
    }
    fn kill_and_wait(&self) -> Result<()> {
        // Killing the init of a pid namespace kills everything in it.
        // SAFETY: kill(2) with integer arguments.
        unsafe { libc::kill(self.state.pid, libc::SIGKILL) };
        if let Some(st) = &self.state.cgroup {
            // A frozen process only dies once thawed.
            if cgroups::is_frozen(st) {
                cgroups::Cgroup::open(st)?.thaw()?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.status() != Status::Stopped {
            if Instant::now() > deadline {
                return Err(Error::Init(format!(
                    "container {} did not die after SIGKILL",
                    self.state.id
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

/// `kill --all` through the cgroup: freeze so nothing forks while we walk,
/// signal every process, thaw (a frozen process only handles its signal
/// once thawed).
fn kill_cgroup(cg: &cgroups::Cgroup, signal: i32) -> Result<()> {
    let was_frozen = cg.is_frozen();
    let froze = !was_frozen && cg.freeze().is_ok();
    let pids = cg.pids();
    if let Ok(pids) = &pids {
        for pid in pids {
            // Processes may exit while we walk: ignore ESRCH.
            // SAFETY: kill(2) with integer arguments.
            unsafe { libc::kill(*pid, signal) };
        }
    }
    if froze || (was_frozen && signal == libc::SIGKILL) {
        cg.thaw()?;
    }
    pids.map(drop)
}

/// The OCI runtime spec version pier-runtime reports.
pub const OCI_VERSION: &str = "1.2.0";

impl Container {
    /// Starts another process in the container (runc's `exec`): it joins
    /// the container's namespaces and cgroup and gets the container's
    /// seccomp filter. Returns its host pid; it is a child of the caller,
    /// which must be single-threaded.
    pub fn exec(&self, process: &oci_spec::runtime::Process, opts: ExecOptions) -> Result<i32> {
        exec::exec(self, process, opts)
    }
}
