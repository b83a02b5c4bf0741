//! The builder's RUN steps in containers: an overlay of the step's layers
//! with its upper dir, an OCI bundle with docker's default security and the
//! host's network (as `docker build`'s RUN), run by the `pier-runtime`
//! binary. pierd is multi-threaded and must not fork itself (see
//! CRATES.md), so the runtime runs as its own process.

use crate::container::record::State;
use crate::container::{spec, user, ContainerRecord};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs RUN steps as containers of pier's runtime.
pub struct RuntimeWorker {
    /// The `pier-runtime` binary.
    pub runtime: PathBuf,
    /// Its `--root` (the engine's runtime root).
    pub runtime_root: PathBuf,
    /// Where bundles are made: one directory per step, removed after.
    pub bundles: PathBuf,
    /// Whether the client went away: a running step is then killed, as
    /// docker cancels a build whose client is gone.
    pub gone: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    /// RUN's network: the host's (docker build's default), or none
    /// (`--network none`).
    pub no_network: bool,
    /// How FROM images the store lacks are pulled; none: they are not.
    pub puller: Option<super::pull::Puller>,
}

impl RuntimeWorker {
    pub fn new(config: &crate::Config) -> Self {
        RuntimeWorker {
            runtime: config.runtime_binary(),
            runtime_root: config.runtime_root(),
            bundles: config.exec_root.join("builds"),
            gone: None,
            no_network: false,
            puller: None,
        }
    }

    /// Removes what a pierd that died in the middle of a step left behind:
    /// mounted rootfs and bundle directories (runtime state of unknown ids
    /// is removed by the engine's orphan sweep).
    pub fn clean_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.bundles) else {
            return;
        };
        for e in entries.flatten() {
            let dir = e.path();
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.runtime_cmd().args(["delete", "--force", &id]).output();
            let _ = pier_image::mount::unmount(&dir.join("rootfs"));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    fn runtime_cmd(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.runtime_root);
        c.stdin(Stdio::null());
        c
    }
}

/// Undoes a step's setup whatever happened: runtime state, the rootfs
/// mount, the bundle directory.
struct Cleanup<'a> {
    worker: &'a RuntimeWorker,
    id: String,
    dir: PathBuf,
    mounted: bool,
    ran: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.ran {
            let _ = self
                .worker
                .runtime_cmd()
                .args(["delete", "--force", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.mounted {
            let _ = pier_image::mount::unmount(&self.dir.join("rootfs"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl pier_builder::Worker for RuntimeWorker {
    fn pull(&self, name: &str, output: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        match &self.puller {
            Some(pull) => pull(name, output),
            None => Err(format!(
                "image {name} is not in pier's image store: pull it first (pier pull {name})"
            )),
        }
    }

    fn run(
        &self,
        req: &pier_builder::RunRequest,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32, String> {
        if req.args.is_empty() {
            return Err("RUN has no command to run".into());
        }
        let id = crate::container::names::new_id();
        let dir = self.bundles.join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating the step's bundle {}: {e}", dir.display()))?;
        let mut cleanup = Cleanup {
            worker: self,
            id: id.clone(),
            dir: dir.clone(),
            mounted: false,
            ran: false,
        };
        let rootfs = dir.join("rootfs");
        std::fs::create_dir(&rootfs).map_err(|e| format!("creating {}: {e}", rootfs.display()))?;
        let mut lowers = req.layers.to_vec();
        if lowers.is_empty() {
            // FROM scratch: overlayfs wants a lower layer.
            let empty = dir.join("empty");
            std::fs::create_dir(&empty)
                .map_err(|e| format!("creating {}: {e}", empty.display()))?;
            lowers.push(empty);
        }
        pier_image::mount::mount_overlay(&lowers, req.upper, req.work, &rootfs)
            .map_err(|e| format!("mounting the step's root filesystem: {e}"))?;
        cleanup.mounted = true;

        let root = rustix::fs::open(
            &rootfs,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("opening {}: {e}", rootfs.display()))?;
        let read = |p: &str| read_in_root(&root, p).unwrap_or_default();
        let user = user::resolve(&req.user, &read("etc/passwd"), &read("etc/group"))?;
        let cwd = if req.cwd.is_empty() { "/" } else { &req.cwd };
        if !cwd.starts_with('/') {
            return Err(format!(
                "the working directory '{cwd}' is invalid, it needs to be an absolute path"
            ));
        }
        mkdir_in_root(&root, cwd)
            .map_err(|e| format!("creating the working directory {cwd}: {e}"))?;
        drop(root);

        let rec = record(&id, req, cwd, self.no_network);
        let etc = spec::etc_files(&dir, &rec, None)
            .map_err(|e| format!("writing the step's /etc files: {e}"))?;
        let mut config = spec::build(&rec, &rootfs, &user, &etc, Vec::new());
        config["linux"]["cgroupsPath"] = format!("/pier-build/{id}").into();
        if let Some(a) = config
            .get_mut("annotations")
            .and_then(|a| a.as_object_mut())
        {
            a.clear();
        }
        crate::fsutil::write_json_atomic(&dir.join("config.json"), &config)
            .map_err(|e| format!("writing the step's OCI spec: {e}"))?;

        let log = dir.join("runtime.log");
        cleanup.ran = true;
        // One pipe for stdout and stderr keeps their order, as docker's
        // build output.
        let (mut pipe, w) =
            std::io::pipe().map_err(|e| format!("making the step's output pipe: {e}"))?;
        let w2 = w
            .try_clone()
            .map_err(|e| format!("making the step's output pipe: {e}"))?;
        let mut cmd = self.runtime_cmd();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(&dir)
            .arg(&id)
            .stdout(w)
            .stderr(w2);
        let spawned = cmd.spawn();
        // The parent's write ends must go, or the pipe never ends.
        drop(cmd);
        let mut child = spawned.map_err(|e| format!("starting {}: {e}", self.runtime.display()))?;
        // Kills the step if the client goes away meanwhile.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let watcher = self.gone.as_ref().map(|gone| {
            let mut kill = self.runtime_cmd();
            kill.args(["kill", "--all", &id, "KILL"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            (gone, kill)
        });
        std::thread::scope(|scope| {
            if let Some((gone, mut kill)) = watcher {
                scope.spawn(move || loop {
                    match stopped.recv_timeout(std::time::Duration::from_millis(200)) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) if gone() => {
                            let _ = kill.status();
                            return;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                });
            }
            read_all(&mut pipe, output);
            drop(stop);
        });
        let status = child
            .wait()
            .map_err(|e| format!("waiting for {}: {e}", self.runtime.display()))?;
        let errors = runtime_errors(&log);
        if !errors.is_empty() {
            return Err(errors);
        }
        if status.code().is_some() {
            // `run` deleted the container itself after it exited.
            cleanup.ran = false;
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Passes everything from `pipe` to `output` until its end.
fn read_all(pipe: &mut impl Read, output: &mut dyn FnMut(&[u8])) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => output(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The container record the spec is made from: the step's process, the
/// host's network, no terminal.
fn record(
    id: &str,
    req: &pier_builder::RunRequest,
    cwd: &str,
    no_network: bool,
) -> ContainerRecord {
    ContainerRecord {
        id: id.to_string(),
        name: format!("build-{}", &id[..12]),
        created: String::new(),
        image: String::new(),
        image_id: String::new(),
        path: req.args[0].clone(),
        args: req.args[1..].to_vec(),
        config: bollard_stubs::models::ContainerConfig {
            env: Some(req.env.clone()),
            working_dir: Some(cwd.to_string()),
            tty: Some(false),
            ..Default::default()
        },
        host_config: bollard_stubs::models::HostConfig {
            network_mode: Some(if no_network { "none" } else { "host" }.into()),
            ..Default::default()
        },
        state: State::default(),
        mounts: Vec::new(),
        networks: Default::default(),
        net: None,
    }
}

/// The messages the runtime logged (it failed to create or run the
/// container), joined; empty when it logged none.
fn runtime_errors(log: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["msg"].as_str().map(|m| {
                let m = m.strip_prefix("run: ").unwrap_or(m);
                format!("OCI runtime create failed: {m}")
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    rustix::fs::openat2(
        root,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Reads a file of the container's filesystem, resolving symlinks inside
/// it (an image's /etc/passwd may be a link; it must not reach the host's).
fn read_in_root(root: &OwnedFd, path: &str) -> Option<String> {
    let fd = open_in_root(root, path, OFlags::RDONLY).ok()?;
    let mut f = std::fs::File::from(fd);
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut s = String::new();
    f.by_ref().take(16 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Makes directory `path` (absolute) and its missing parents inside the
/// container's filesystem (mode 0755, as runc makes a missing cwd).
fn mkdir_in_root(root: &OwnedFd, path: &str) -> Result<(), String> {
    let mut so_far = String::from(".");
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let parent = open_in_root(root, &so_far, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| format!("{so_far}: {e}"))?;
        so_far.push('/');
        so_far.push_str(c);
        if c == ".." {
            continue;
        }
        match rustix::fs::mkdirat(parent.as_fd(), c, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(format!("{}: {e}", &so_far[1..])),
        }
    }
    open_in_root(root, &so_far, OFlags::RDONLY | OFlags::DIRECTORY)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", so_far.trim_start_matches('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(dir: &Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn files_are_read_and_dirs_made_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("r");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("passwd"), "host").unwrap();
        std::fs::write(r.join("etc/group"), "g").unwrap();
        std::os::unix::fs::symlink(outside.join("passwd"), r.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/../../outside", r.join("up")).unwrap();
        let fd = root(&r);
        assert_eq!(read_in_root(&fd, "etc/group").as_deref(), Some("g"));
        assert_eq!(read_in_root(&fd, "etc/passwd"), None, "a link to the host");
        mkdir_in_root(&fd, "/a/b/../c").unwrap();
        assert!(r.join("a/b").is_dir() && r.join("a/c").is_dir());
        let _ = mkdir_in_root(&fd, "/up/made");
        assert!(!outside.join("made").exists(), "made outside the root");
        mkdir_in_root(&fd, "/").unwrap();
    }

    #[test]
    fn the_record_asks_for_the_hosts_network_and_the_steps_process() {
        let layers = [];
        let req = pier_builder::RunRequest {
            layers: &layers,
            upper: Path::new("/u"),
            work: Path::new("/w"),
            args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["A=1".into()],
            cwd: "/src".into(),
            user: String::new(),
        };
        let id = "ab".repeat(32);
        let rec = record(&id, &req, "/src", false);
        let user = user::User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
        };
        let v = spec::build(&rec, Path::new("/r"), &user, &[], Vec::new());
        let s: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/sh", "-c", "echo hi"]);
        assert_eq!(p.cwd().to_str(), Some("/src"));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(v["hostname"], "abababababab");
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"), "host network");
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let none = spec::build(
            &record(&id, &req, "/", true),
            Path::new("/r"),
            &user,
            &[],
            vec![],
        );
        let ns = none["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "network"), "--network none");
    }
}
