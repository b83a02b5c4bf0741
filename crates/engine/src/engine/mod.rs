//! The engine: pierd's state (images, containers) and the container
//! lifecycle behind the API handlers.

use crate::container::spec;
use crate::container::{names, record::State, user, ContainerRecord, Status};
use crate::error::{io as io_err, Error, Result};
use crate::fsutil::write_json_atomic;
use crate::shim::{self, ShimStream};
use crate::Config;
use bollard_stubs::models::{ContainerConfig, ContainerCreateBody};
use pier_shim::{Request, ShimConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

mod adopt;
mod cp_view;
mod exec;
mod rootfs;

pub use exec::{ExecConfig, ExecFailure, ExecRecord};
mod events;
mod lifecycle;
mod networking;
mod observe;
mod restart;
mod volumes;

pub use events::{Actor, Event, Events};
pub use lifecycle::parse_signal;
pub use volumes::{volume_json, Filters as VolumeFilters};

const RECORD_FILE: &str = "container.json";

pub struct Engine {
    pub config: Config,
    pub images: Arc<pier_image::Store>,
    /// Registry traffic (pull, push, login).
    pub registry: pier_registry_client::Client,
    containers: Mutex<HashMap<String, Arc<Handle>>>,
    execs: exec::Execs,
    events: events::Events,
    /// Volumes under DATA_ROOT/volumes.
    pub volumes: Arc<pier_volume::Store>,
    /// Held while volumes are made for a container or removed, so a
    /// volume is never removed under a container being created.
    volume_lock: tokio::sync::Mutex<()>,
    /// Bridge networks and containers' network namespaces.
    pub networks: Arc<crate::network::Networks>,
}

/// An attach request waiting for the container to start.
struct PendingAttach {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tx: oneshot::Sender<ShimStream>,
}

/// One container: its record, and what waits on it.
pub struct Handle {
    pub id: String,
    record: Mutex<ContainerRecord>,
    changed: watch::Sender<u64>,
    removed: AtomicBool,
    pending_attach: Mutex<Vec<PendingAttach>>,
    /// Serializes start, remove and attach registration.
    op: tokio::sync::Mutex<()>,
    backoff: Mutex<restart::Backoff>,
}

impl Handle {
    fn new(record: ContainerRecord) -> Arc<Self> {
        Arc::new(Handle {
            id: record.id.clone(),
            record: Mutex::new(record),
            changed: watch::channel(0).0,
            removed: AtomicBool::new(false),
            pending_attach: Mutex::new(Vec::new()),
            op: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(restart::Backoff::default()),
        })
    }

    pub fn record(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }

    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    fn notify(&self) {
        self.changed.send_modify(|g| *g += 1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An attach stream, now or once the container starts.
pub enum Attach {
    Ready(ShimStream),
    AtStart(oneshot::Receiver<ShimStream>),
}

impl Attach {
    /// The stream; None if the container was removed before it started.
    pub async fn stream(self) -> Option<ShimStream> {
        match self {
            Attach::Ready(s) => Some(s),
            Attach::AtStart(rx) => rx.await.ok(),
        }
    }
}

/// What `wait` waits for (docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl Engine {
    /// Opens the stores under the configured roots and re-adopts the
    /// containers a previous pierd left.
    pub async fn open(config: Config) -> Result<Arc<Engine>> {
        for dir in [
            config.containers_dir(),
            config.exec_root.join("containers"),
            config.runtime_root(),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        let data_root = config.data_root.clone();
        let images =
            tokio::task::spawn_blocking(move || pier_image::Store::open(&data_root)).await??;
        let registry = pier_registry_client::Client::new(config.registry_options());
        let volumes_dir = config.data_root.join("volumes");
        let volumes =
            tokio::task::spawn_blocking(move || pier_volume::Store::open(&volumes_dir)).await??;
        let net_config = config.net_config();
        let networks =
            tokio::task::spawn_blocking(move || crate::network::Networks::open(net_config))
                .await??;
        let engine = Arc::new(Engine {
            config,
            images: Arc::new(images),
            registry,
            containers: Mutex::new(HashMap::new()),
            execs: Default::default(),
            events: events::Events::default(),
            volumes: Arc::new(volumes),
            volume_lock: Default::default(),
            networks: Arc::new(networks),
        });
        engine.load_containers().await;
        engine.restore_networks().await;
        let config = engine.config.clone();
        tokio::task::spawn_blocking(move || crate::build::clean_stale(&config)).await?;
        Ok(engine)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.config.containers_dir().join(id)
    }

    fn save(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.container_dir(&rec.id).join(RECORD_FILE);
        write_json_atomic(&path, rec).map_err(io_err(format!("saving {}", path.display())))
    }

    /// Changes a container's record, persists it and wakes its waiters.
    /// The record stays locked while it is written, so that two updates
    /// land on disk in the order they were made.
    fn update(&self, h: &Handle, f: impl FnOnce(&mut ContainerRecord)) -> Result<ContainerRecord> {
        let (rec, saved) = {
            let mut rec = lock(&h.record);
            f(&mut rec);
            let saved = self.save(&rec);
            (rec.clone(), saved)
        };
        h.notify();
        saved.map(|_| rec)
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn find(&self, name_or_id: &str) -> Result<Arc<Handle>> {
        let map = lock(&self.containers);
        if let Some(h) = map.get(name_or_id) {
            return Ok(h.clone());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(h) = map.values().find(|h| lock(&h.record).name == name) {
            return Ok(h.clone());
        }
        let mut matches = map
            .values()
            .filter(|h| !name_or_id.is_empty() && h.id.starts_with(name_or_id));
        match (matches.next(), matches.next()) {
            (Some(h), None) => Ok(h.clone()),
            (Some(_), Some(_)) => Err(Error::bad_request(format!(
                "multiple containers found with provided prefix: {name_or_id}"
            ))),
            _ => Err(Error::no_such_container(name_or_id)),
        }
    }

    pub fn list(&self) -> Vec<ContainerRecord> {
        let mut all: Vec<ContainerRecord> = lock(&self.containers)
            .values()
            .map(|h| h.record())
            .collect();
        all.sort_by(|a, b| b.created.cmp(&a.created));
        all
    }

    /// `POST /containers/create`: records the container and makes its
    /// writable layer; nothing runs yet.
    pub async fn create(&self, name: Option<&str>, body: ContainerCreateBody) -> Result<String> {
        let mut body = body;
        crate::container::validate::create_body(&mut body).map_err(Error::bad_request)?;
        let image_name = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                Error::bad_request("no image specified: give an image to create the container from")
            })?;
        let store = self.images.clone();
        let lookup = image_name.clone();
        let image = match tokio::task::spawn_blocking(move || store.resolve(&lookup)).await? {
            Err(pier_image::Error::ImageNotFound(_)) => {
                return Err(Error::from(pier_image::Error::ImageNotFound(
                    missing_image_name(&image_name),
                )))
            }
            other => other?,
        };
        let config = merge_image_config(&body, image.config.config().as_ref());
        let (path, args) = command(&config)?;
        if let Some(wd) = config.working_dir.as_deref() {
            if !wd.is_empty() && !wd.starts_with('/') {
                return Err(Error::bad_request(format!(
                    "the working directory '{wd}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        let mut host_config = body.host_config.clone().unwrap_or_default();
        let mut config = config;
        let networks = self.resolve_networks(&body, &mut host_config, &mut config)?;
        let mut mounts = self.requested_mounts(&config, &host_config)?;
        let id = names::new_id();
        let name = {
            let map = lock(&self.containers);
            let taken = |n: &str| {
                map.values()
                    .find(|h| lock(&h.record).name == n)
                    .map(|h| h.id.clone())
            };
            match name {
                Some(n) => {
                    let n = names::validate(n).map_err(Error::bad_request)?.to_string();
                    if let Some(other) = taken(&n) {
                        return Err(Error::conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". \
                             You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n
                }
                None => names::generate(|n| taken(n).is_some()),
            }
        };
        let _volumes = self.volume_lock.lock().await;
        let new_volumes = self.make_volumes(&mut mounts).await?;
        let copied = {
            let (store, layers, ms) = (self.volumes.clone(), image.layers.clone(), mounts.clone());
            let tmp = self.config.containers_dir().join(format!(".copy-up-{id}"));
            tokio::task::spawn_blocking(move || {
                volumes::copy_up_at_create(&store, &layers, &tmp, &ms)
            })
            .await?
        };
        if let Err(e) = copied {
            self.drop_volumes(&new_volumes).await;
            return Err(e);
        }
        let rec = ContainerRecord {
            id: id.clone(),
            name,
            created: pier_common::time::now_rfc3339(),
            image: image_name,
            image_id: image.id.clone(),
            path,
            args,
            config,
            host_config,
            state: State::default(),
            mounts,
            networks,
            net: None,
        };
        let dir = self.container_dir(&id);
        let made = ["upper", "work", "rootfs"]
            .iter()
            .try_for_each(|sub| std::fs::create_dir_all(dir.join(sub)))
            .map_err(io_err(format!("creating {}", dir.display())))
            .and_then(|()| self.save(&rec));
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            self.drop_volumes(&new_volumes).await;
            return Err(e);
        }
        self.emit_container(&rec, "create", &[]);
        lock(&self.containers).insert(id.clone(), Handle::new(rec));
        Ok(id)
    }

    /// `POST /containers/{id}/start`: mounts the rootfs, starts the shim
    /// (which creates the container), connects waiting attach clients, then
    /// lets the container run.
    pub async fn start(self: &Arc<Self>, h: &Arc<Handle>) -> Result<()> {
        let _op = h.op.lock().await;
        if h.removed() {
            return Err(Error::no_such_container(&h.id));
        }
        let rec = h.record();
        if rec.state.running() {
            return Err(Error::new(
                axum::http::StatusCode::NOT_MODIFIED,
                "container already started",
            ));
        }
        let result = self.start_locked(h, &rec).await;
        if let Err(e) = &result {
            let msg = e.message.clone();
            let _ = self.update(h, |r| {
                r.state.error = msg;
                r.state.restarting = false;
            });
            if rec.auto_remove() {
                drop(_op);
                let _ = self.remove(h, true).await;
            }
        }
        result
    }

    async fn start_locked(self: &Arc<Self>, h: &Arc<Handle>, rec: &ContainerRecord) -> Result<()> {
        let store = self.images.clone();
        let image_id = rec.image_id.clone();
        let image = tokio::task::spawn_blocking(move || store.resolve(&image_id)).await??;
        let dir = self.container_dir(&rec.id);
        let rootfs = dir.join("rootfs");
        // The network first: the /etc files name its addresses.
        // (Saved with the running state; a pierd that dies before that
        // removes the namespace as a stray when it starts again.)
        let net_files = match self.network_up(rec).await? {
            Some((state, files)) => {
                lock(&h.record).net = Some(state);
                Some(files)
            }
            None => None,
        };
        let rec = &h.record();
        let result = self
            .start_prepared(h, rec, &dir, &rootfs, image, net_files)
            .await;
        if result.is_err() {
            self.network_down(h).await;
        }
        result
    }

    async fn start_prepared(
        self: &Arc<Self>,
        h: &Arc<Handle>,
        rec: &ContainerRecord,
        dir: &Path,
        rootfs: &Path,
        image: pier_image::Image,
        net_files: Option<spec::NetFiles>,
    ) -> Result<()> {
        let (dir, rootfs) = (dir.to_path_buf(), rootfs.to_path_buf());
        let prepared = {
            let (dir, rootfs, rec) = (dir.clone(), rootfs.clone(), rec.clone());
            let volumes = self.volumes.clone();
            tokio::task::spawn_blocking(move || {
                prepare_bundle(
                    &dir,
                    &rootfs,
                    &rec,
                    &image.layers,
                    &volumes,
                    net_files.as_ref(),
                )
            })
            .await?
        };
        let staged = match prepared {
            Ok(staged) => staged,
            Err(e) => {
                let _ = pier_image::mount::unmount(&rootfs);
                lifecycle::unmount_under(&dir.join("subpaths"));
                return Err(e);
            }
        };
        let exec_dir = self.config.container_exec_dir(&rec.id);
        let _ = std::fs::remove_dir_all(&exec_dir);
        std::fs::create_dir_all(&exec_dir)
            .map_err(io_err(format!("creating {}", exec_dir.display())))?;
        let shim_cfg = ShimConfig {
            id: rec.id.clone(),
            bundle: dir.clone(),
            runtime_root: self.config.runtime_root(),
            log_path: dir.join(format!("{}-json.log", rec.id)),
            // The shim releases them when the container exits.
            unmount: std::iter::once(rootfs.clone()).chain(staged).collect(),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            tty: rec.config.tty.unwrap_or(false),
        };
        write_json_atomic(&exec_dir.join(pier_shim::CONFIG_FILE), &shim_cfg)
            .map_err(io_err("writing the shim's config"))?;
        let ready = shim::spawn(&self.config.shim_binary(), &exec_dir)
            .await
            .map_err(|e| Error::internal(format!("starting the shim: {e}")));
        let ready = match ready {
            Ok(r) if r.ok => r,
            other => {
                let _ = pier_image::mount::unmount(&rootfs);
                let _ = std::fs::remove_dir_all(&exec_dir);
                return Err(match other {
                    Ok(r) => {
                        let msg = format!(
                            "failed to create container {}: {}",
                            rec.name,
                            r.error.unwrap_or_default()
                        );
                        match r.exit_code {
                            Some(_) => Error::bad_request(msg),
                            None => Error::internal(msg),
                        }
                    }
                    Err(e) => e,
                });
            }
        };
        let pending = std::mem::take(&mut *lock(&h.pending_attach));
        for p in pending {
            match shim::attach(&exec_dir, p.stdin, p.stdout, p.stderr).await {
                Ok(stream) => {
                    let _ = p.tx.send(stream);
                }
                Err(e) => eprintln!("pierd: attaching to {}: {e}", rec.id),
            }
        }
        if let Err(e) = shim::request(&exec_dir, &Request::Start).await {
            let _ = shim::request(
                &exec_dir,
                &Request::Kill {
                    signal: libc::SIGKILL,
                    all: true,
                },
            )
            .await;
            return Err(Error::internal(format!(
                "starting container {}: {e}",
                rec.name
            )));
        }
        self.update(h, |r| {
            r.state.status = Status::Running;
            r.state.pid = ready.pid;
            r.state.shim_pid = ready.shim_pid;
            r.state.started_at = pier_common::time::now_rfc3339();
            r.state.error.clear();
            r.state.restarting = false;
            r.state.paused = false;
            // As docker's SetRunning: the last exit is forgotten.
            r.state.exit_code = 0;
            r.state.oom_killed = false;
        })?;
        let rec = h.record();
        self.emit_volume_mounts(&rec);
        self.emit_container(&rec, "start", &[]);
        tokio::spawn(lifecycle::monitor(self.clone(), h.clone()));
        Ok(())
    }

    /// `POST /containers/{id}/wait`: the exit code once `condition` holds.
    pub async fn wait(&self, h: &Handle, condition: WaitCondition) -> i64 {
        let mut rx = h.changed.subscribe();
        let exits_before = h.record().state.exits;
        loop {
            let rec = h.record();
            let done = match condition {
                WaitCondition::NotRunning => !rec.state.running(),
                WaitCondition::NextExit => rec.state.exits > exits_before,
                WaitCondition::Removed => h.removed(),
            };
            if done || rx.changed().await.is_err() {
                return i64::from(rec.state.exit_code);
            }
        }
    }

    /// Opens an attach stream to the container. For a container that has
    /// not started yet, registers the attach so that `start` connects it
    /// before the program runs, and no output is missed.
    pub async fn attach(
        &self,
        h: &Handle,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attach> {
        let _op = h.op.lock().await;
        let rec = h.record();
        let attach = match rec.state.status {
            Status::Running => shim::attach(
                &self.config.container_exec_dir(&rec.id),
                stdin,
                stdout,
                stderr,
            )
            .await
            .map(Attach::Ready)
            .map_err(|e| Error::internal(format!("attaching to {}: {e}", rec.name))),
            Status::Created => {
                let (tx, rx) = oneshot::channel();
                lock(&h.pending_attach).push(PendingAttach {
                    stdin,
                    stdout,
                    stderr,
                    tx,
                });
                Ok(Attach::AtStart(rx))
            }
            // As dockerd: an attach to a stopped container waits for its
            // next start (`start -a`); the CLI's `attach` refuses first.
            _ => {
                let (tx, rx) = oneshot::channel();
                lock(&h.pending_attach).push(PendingAttach {
                    stdin,
                    stdout,
                    stderr,
                    tx,
                });
                Ok(Attach::AtStart(rx))
            }
        };
        if attach.is_ok() {
            self.emit_container(&rec, "attach", &[]);
        }
        attach
    }
}

/// A missing image as dockerd names it: a reference with its tag
/// (`busybox` -> `busybox:latest`), anything else as given.
fn missing_image_name(name: &str) -> String {
    match pier_image::reference::Reference::parse(name) {
        Ok(r) if !pier_image::reference::is_full_hex_id(name) && !name.starts_with("sha256:") => {
            r.familiar()
        }
        _ => name.to_string(),
    }
}

/// The container's config: the create request, completed from the image
/// as Docker does (env merged, command, entrypoint, workdir, user).
fn merge_image_config(
    body: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> ContainerConfig {
    let body_json = serde_json::to_value(body).unwrap_or_default();
    let mut cfg: ContainerConfig = serde_json::from_value(body_json).unwrap_or_default();
    let Some(image) = image else { return cfg };
    let mut env: Vec<String> = image.env().clone().unwrap_or_default();
    for kv in cfg.env.iter().flatten() {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    cfg.env = Some(env);
    if cfg.entrypoint.is_none() {
        cfg.entrypoint = image.entrypoint().clone();
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            cfg.cmd = image.cmd().clone();
        }
    }
    if cfg.working_dir.as_deref().unwrap_or("").is_empty() {
        cfg.working_dir = image.working_dir().clone();
    }
    if cfg.user.as_deref().unwrap_or("").is_empty() {
        cfg.user = image.user().clone();
    }
    // As docker, the image's EXPOSEd ports join the container's own (`-P`
    // publishes them all).
    if let Some(image_ports) = image.exposed_ports() {
        let ports = cfg.exposed_ports.get_or_insert_with(Vec::new);
        for p in image_ports {
            if !ports.contains(p) {
                ports.push(p.clone());
            }
        }
    }
    // The image's VOLUMEs join the container's own (docker shows both in
    // Config.Volumes); each becomes an anonymous volume at create.
    if let Some(image_volumes) = image.volumes() {
        let vols = cfg.volumes.get_or_insert_with(Vec::new);
        for v in image_volumes {
            if !vols.contains(v) {
                vols.push(v.clone());
            }
        }
    }
    cfg
}

/// Path and arguments: entrypoint followed by cmd.
fn command(cfg: &ContainerConfig) -> Result<(String, Vec<String>)> {
    let mut argv: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
    argv.extend(cfg.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(Error::bad_request(
            "no command specified: the image has no CMD or ENTRYPOINT; give a command after the image name",
        ));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// Mounts the rootfs and writes the files of the OCI bundle.
fn prepare_bundle(
    dir: &Path,
    rootfs: &Path,
    rec: &ContainerRecord,
    layers: &[PathBuf],
    volumes: &pier_volume::Store,
    net: Option<&spec::NetFiles>,
) -> Result<Vec<PathBuf>> {
    let _ = pier_image::mount::unmount(rootfs);
    let staging = dir.join("subpaths");
    lifecycle::unmount_under(&staging);
    pier_image::mount::mount_overlay(layers, &dir.join("upper"), &dir.join("work"), rootfs)
        .map_err(io_err(format!(
            "mounting the root filesystem of {}",
            rec.name
        )))?;
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
    let user = user::resolve(
        rec.config.user.as_deref().unwrap_or(""),
        &read("etc/passwd"),
        &read("etc/group"),
    )
    .map_err(Error::bad_request)?;
    let etc =
        spec::etc_files(dir, rec, net).map_err(io_err("writing the container's /etc files"))?;
    // As docker's create, a new empty volume gets the image's content at
    // the container's first start.
    let first_start = rec.state.started_at.is_empty();
    let (mounts, staged) =
        volumes::oci_mounts(volumes, &rec.mounts, rootfs, first_start, &staging)?;
    let spec = spec::build(rec, rootfs, &user, &etc, mounts);
    write_json_atomic(&dir.join("config.json"), &spec).map_err(io_err("writing the OCI spec"))?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_images_are_named_as_dockerd_names_them() {
        assert_eq!(missing_image_name("f-nosuch"), "f-nosuch:latest");
        assert_eq!(missing_image_name("docker.io/library/a:1"), "a:1");
        assert_eq!(missing_image_name("sha256:abc"), "sha256:abc");
    }

    #[test]
    fn image_config_fills_in_what_the_request_leaves_out() {
        let image: oci_spec::image::Config = serde_json::from_value(serde_json::json!({
            "Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "WorkingDir": "/srv", "User": "www"
        }))
        .unwrap();
        let body = ContainerCreateBody {
            env: Some(vec!["A=user".into()]),
            ..Default::default()
        };
        let cfg = merge_image_config(&body, Some(&image));
        assert_eq!(cfg.env.clone().unwrap(), ["PATH=/bin", "A=user"]);
        assert_eq!(cfg.cmd.clone().unwrap(), ["sh"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
        assert_eq!(cfg.user.as_deref(), Some("www"));
        assert_eq!(command(&cfg).unwrap(), ("sh".to_string(), vec![]));

        let body = ContainerCreateBody {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            ..Default::default()
        };
        let cfg = merge_image_config(&body, Some(&image));
        assert_eq!(
            command(&cfg).unwrap(),
            ("echo".to_string(), vec!["hi".to_string()])
        );
        assert!(command(&ContainerConfig::default()).is_err());
    }
}
