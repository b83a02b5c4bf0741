//! Volumes in the engine: the mounts a container asks for made real at
//! create (named volumes created on first use, anonymous ones made), the
//! volume endpoints (create, list, inspect, remove, prune) with docker's
//! in-use rules, and the clean-up when containers go (`rm -v`, `--rm`).

use super::{lock, Engine};
use crate::container::mounts::{self, Kind, MountPoint};
use crate::container::ContainerRecord;
use crate::error::{Error, Result};
use bollard_stubs::models::{ContainerConfig, HostConfig};
use pier_volume::Volume;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

impl From<pier_volume::Error> for Error {
    fn from(e: pier_volume::Error) -> Error {
        match e {
            pier_volume::Error::NotFound(_) => Error::not_found(e.to_string()),
            pier_volume::Error::InvalidName(_) | pier_volume::Error::InvalidOptions(_) => {
                Error::bad_request(e.to_string())
            }
            pier_volume::Error::Io { .. } => Error::internal(e.to_string()),
        }
    }
}

/// A volume as the API shows it (`volume inspect`, `GET /volumes`).
pub fn volume_json(v: &Volume) -> Value {
    let map = |m: &BTreeMap<String, String>| match m.is_empty() {
        // as docker: null rather than {} when there are none.
        true => Value::Null,
        false => json!(m),
    };
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": map(&v.labels),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": map(&v.options),
        "Scope": "local",
    })
}

/// Docker's `filters` for volumes, already decoded: key -> values.
pub type Filters = HashMap<String, Vec<String>>;

fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
        None => labels.contains_key(want),
    }
}

impl Engine {
    /// The mount points a new container asks for, checked as dockerd
    /// checks them; volumes are not created yet.
    pub(super) fn requested_mounts(
        &self,
        config: &ContainerConfig,
        hc: &HostConfig,
    ) -> Result<Vec<MountPoint>> {
        let mut own: Vec<MountPoint> = Vec::new();
        for b in hc.binds.iter().flatten() {
            own.push(mounts::parse_bind(b).map_err(Error::bad_request)?);
        }
        for m in hc.mounts.iter().flatten() {
            own.push(mounts::from_mount(m).map_err(Error::bad_request)?);
        }
        let mut tmpfs: Vec<(&String, &String)> = hc.tmpfs.iter().flatten().collect();
        tmpfs.sort();
        for (dst, opts) in tmpfs {
            own.push(mounts::from_tmpfs(dst, opts).map_err(Error::bad_request)?);
        }
        mounts::check_duplicates(&own).map_err(Error::bad_request)?;
        // --volumes-from: the other container's binds and volumes, unless
        // this one mounts something of its own there.
        let mut all = Vec::new();
        for from in hc.volumes_from.iter().flatten() {
            let (name, mode) = match from.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                Some((_, m)) => return Err(Error::bad_request(format!("invalid mode: {m}"))),
                None => (from.as_str(), None),
            };
            let other = self.find(name)?.record();
            for m in other.mounts.iter().filter(|m| m.kind != Kind::Tmpfs) {
                let taken = |d: &str| {
                    own.iter()
                        .chain(&all)
                        .any(|o: &MountPoint| o.destination == d)
                };
                if taken(&m.destination) {
                    continue;
                }
                let mut m = m.clone();
                if let Some(mode) = mode {
                    m.rw = mode == "rw";
                }
                all.push(m);
            }
        }
        all.extend(own);
        // VOLUME entries (the image's, merged into the config at create,
        // and `-v /dst` from the docker CLI): anonymous volumes where
        // nothing else is mounted.
        let mut wanted: Vec<&String> = config.volumes.iter().flatten().collect();
        wanted.sort();
        for dst in wanted {
            let m = MountPoint::anonymous(dst).map_err(Error::bad_request)?;
            if !all.iter().any(|o| o.destination == m.destination) {
                all.push(m);
            }
        }
        Ok(all)
    }

    /// Creates the volumes `mounts` name (named ones on first use) and
    /// makes anonymous ones, filling in their names. Returns the names of
    /// the volumes created now, to undo on a later failure.
    pub(super) async fn make_volumes(&self, mounts: &mut [MountPoint]) -> Result<Vec<String>> {
        let mut created = Vec::new();
        for m in mounts.iter_mut().filter(|m| m.kind == Kind::Volume) {
            let store = self.volumes.clone();
            let name = (!m.source.is_empty()).then(|| m.source.clone());
            let (opts, labels) = (m.volume_options.clone(), m.volume_labels.clone());
            let made = tokio::task::spawn_blocking(move || {
                store.create(name.as_deref(), None, opts, labels)
            })
            .await?;
            let (v, new) = match made {
                Ok(v) => v,
                Err(e) => {
                    self.drop_volumes(&created).await;
                    return Err(e.into());
                }
            };
            if new {
                self.emit_volume(&v, "create", &[]);
                created.push(v.name.clone());
            }
            m.source = v.name;
        }
        Ok(created)
    }

    /// Removes volumes this pierd just created for a container that
    /// failed to be created.
    pub(super) async fn drop_volumes(&self, names: &[String]) {
        for name in names {
            let store = self.volumes.clone();
            let n = name.clone();
            if let Ok(Ok(())) = tokio::task::spawn_blocking(move || store.remove(&n)).await {
                self.emit(
                    "volume",
                    "destroy",
                    name,
                    HashMap::from([("driver".into(), "local".into())]),
                );
            }
        }
    }

    fn emit_volume(&self, v: &Volume, action: &str, extra: &[(&str, String)]) {
        let mut attrs = HashMap::from([("driver".to_string(), v.driver.clone())]);
        for (k, val) in extra {
            attrs.insert(k.to_string(), val.clone());
        }
        self.emit("volume", action, &v.name, attrs);
    }

    /// Docker's `volume mount` events, one per volume a starting
    /// container mounts.
    pub(super) fn emit_volume_mounts(&self, rec: &ContainerRecord) {
        for m in rec.mounts.iter().filter(|m| m.kind == Kind::Volume) {
            let attrs = HashMap::from([
                ("container".to_string(), rec.id.clone()),
                ("destination".to_string(), m.destination.clone()),
                ("driver".to_string(), "local".to_string()),
                ("propagation".to_string(), m.propagation.clone()),
                ("read/write".to_string(), m.rw.to_string()),
            ]);
            self.emit("volume", "mount", &m.source, attrs);
        }
    }

    /// Docker's `volume unmount` events when a container stops, one per
    /// volume it had mounted.
    pub(super) fn emit_volume_unmounts(&self, rec: &ContainerRecord) {
        for m in rec.mounts.iter().filter(|m| m.kind == Kind::Volume) {
            let attrs = HashMap::from([
                ("container".to_string(), rec.id.clone()),
                ("driver".to_string(), "local".to_string()),
            ]);
            self.emit("volume", "unmount", &m.source, attrs);
        }
    }

    /// Ids of the containers (in any state) whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.containers)
            .values()
            .filter(|h| !h.removed())
            .filter(|h| {
                lock(&h.record)
                    .mounts
                    .iter()
                    .any(|m| m.kind == Kind::Volume && m.source == name)
            })
            .map(|h| h.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Whether a running container other than `except` uses volume `name`.
    fn volume_running_elsewhere(&self, name: &str, except: &str) -> bool {
        lock(&self.containers).values().any(|h| {
            let rec = lock(&h.record);
            h.id != except
                && rec.state.running()
                && rec
                    .mounts
                    .iter()
                    .any(|m| m.kind == Kind::Volume && m.source == name)
        })
    }

    /// After a container exits: volumes with their own filesystem (local
    /// driver options) are unmounted once no running container uses them.
    pub(super) async fn release_volumes(&self, rec: &ContainerRecord) {
        for m in rec.mounts.iter().filter(|m| m.kind == Kind::Volume) {
            if self.volume_running_elsewhere(&m.source, &rec.id) {
                continue;
            }
            let store = self.volumes.clone();
            let name = m.source.clone();
            let done = tokio::task::spawn_blocking(move || {
                let v = store.get(&name)?;
                if v.options.is_empty() {
                    return Ok(None);
                }
                store.unmount(&v).map(|_| Some(v))
            })
            .await;
            // (its `unmount` event went out with the exit: record_exit)
            match done {
                Ok(Ok(_)) | Ok(Err(pier_volume::Error::NotFound(_))) => {}
                Ok(Err(e)) => eprintln!("pierd: releasing volume {}: {e}", m.source),
                Err(e) => eprintln!("pierd: releasing volume {}: {e}", m.source),
            }
        }
    }

    /// `rm -v` and `--rm`: removes the container's anonymous volumes that
    /// no other container uses; named volumes are never removed.
    pub async fn remove_anonymous_volumes(&self, rec: &ContainerRecord) {
        for m in rec.mounts.iter().filter(|m| m.kind == Kind::Volume) {
            if !self.volume_users(&m.source).is_empty() {
                continue;
            }
            let _guard = self.volume_lock.lock().await;
            let store = self.volumes.clone();
            let name = m.source.clone();
            let removed = tokio::task::spawn_blocking(move || {
                let v = store.get(&name)?;
                if !v.anonymous() {
                    return Ok(None);
                }
                store.remove(&name).map(|_| Some(v))
            })
            .await;
            match removed {
                Ok(Ok(Some(v))) => self.emit_volume(&v, "destroy", &[]),
                Ok(Ok(None)) | Ok(Err(pier_volume::Error::NotFound(_))) => {}
                Ok(Err(e)) => eprintln!("pierd: removing volume {}: {e}", m.source),
                Err(e) => eprintln!("pierd: removing volume {}: {e}", m.source),
            }
        }
    }

    /// `POST /volumes/create`.
    pub async fn volume_create(
        &self,
        name: Option<String>,
        driver: Option<String>,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let store = self.volumes.clone();
        let name = name.filter(|n| !n.is_empty());
        let (v, new) = tokio::task::spawn_blocking(move || {
            store.create(name.as_deref(), driver.as_deref(), options, labels)
        })
        .await??;
        if new {
            self.emit_volume(&v, "create", &[]);
        }
        Ok(v)
    }

    pub async fn volume_get(&self, name: &str) -> Result<Volume> {
        let store = self.volumes.clone();
        let name = name.to_string();
        Ok(tokio::task::spawn_blocking(move || store.get(&name)).await??)
    }

    /// `GET /volumes`: filters dangling, driver, label, label!, name.
    pub async fn volume_list(&self, filters: &Filters) -> Result<Vec<Volume>> {
        for key in filters.keys() {
            if !["dangling", "driver", "label", "label!", "name"].contains(&key.as_str()) {
                return Err(Error::bad_request(format!("invalid filter '{key}'")));
            }
        }
        let dangling = match filters.get("dangling").and_then(|v| v.first()) {
            None => None,
            Some(v) => match v.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                other => {
                    return Err(Error::bad_request(format!(
                        "invalid filter 'dangling={other}'"
                    )))
                }
            },
        };
        let store = self.volumes.clone();
        let all = tokio::task::spawn_blocking(move || store.list()).await??;
        Ok(all
            .into_iter()
            .filter(|v| dangling.is_none_or(|d| d == self.volume_users(&v.name).is_empty()))
            .filter(|v| {
                filters
                    .get("driver")
                    .is_none_or(|ds| ds.contains(&v.driver))
            })
            .filter(|v| {
                filters
                    .get("name")
                    .is_none_or(|ns| ns.iter().any(|n| v.name.contains(n.as_str())))
            })
            .filter(|v| {
                filters
                    .get("label")
                    .is_none_or(|ls| ls.iter().all(|l| label_matches(&v.labels, l)))
            })
            .filter(|v| {
                filters
                    .get("label!")
                    .is_none_or(|ls| !ls.iter().any(|l| label_matches(&v.labels, l)))
            })
            .collect())
    }

    /// `DELETE /volumes/{name}`: refused while any container uses it (as
    /// docker, even with force); force ignores a missing volume.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _guard = self.volume_lock.lock().await;
        let v = match self.volume_get(name).await {
            Ok(v) => v,
            Err(e) if force && e.status == axum::http::StatusCode::NOT_FOUND => return Ok(()),
            Err(e) => return Err(e),
        };
        let users = self.volume_users(&v.name);
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "remove {}: volume is in use - [{}]",
                v.name,
                users.join(", ")
            )));
        }
        let store = self.volumes.clone();
        let n = v.name.clone();
        tokio::task::spawn_blocking(move || store.remove(&n)).await??;
        self.emit_volume(&v, "destroy", &[]);
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or all unused ones
    /// with `all=true` (docker 23+; older API clients get all, as dockerd
    /// gives them). Returns the names removed and the bytes reclaimed.
    pub async fn volume_prune(
        &self,
        filters: &Filters,
        all_by_default: bool,
    ) -> Result<(Vec<String>, u64)> {
        let mut filters = filters.clone();
        let all = match filters
            .remove("all")
            .as_deref()
            .and_then(|v| v.first().cloned())
        {
            None => all_by_default,
            Some(v) => matches!(v.as_str(), "true" | "1"),
        };
        for key in filters.keys() {
            if !["label", "label!"].contains(&key.as_str()) {
                return Err(Error::bad_request(format!("invalid filter '{key}'")));
            }
        }
        let candidates = self.volume_list(&filters).await?;
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for v in candidates {
            if !all && !v.anonymous() {
                continue;
            }
            let _guard = self.volume_lock.lock().await;
            if !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let store = self.volumes.clone();
            let vol = v.clone();
            let done = tokio::task::spawn_blocking(move || {
                let size = crate::container::size::size_rw(&vol.mountpoint);
                store.remove(&vol.name).map(|_| size)
            })
            .await?;
            match done {
                Ok(size) => {
                    reclaimed += size;
                    self.emit_volume(&v, "destroy", &[]);
                    removed.push(v.name);
                }
                Err(e) => eprintln!("pierd: pruning volume {}: {e}", v.name),
            }
        }
        Ok((removed, reclaimed))
    }

    /// The container's mounts as `inspect` shows them (docker's MountPoint).
    pub fn mounts_json(&self, rec: &ContainerRecord) -> Value {
        let list: Vec<Value> = rec
            .mounts
            .iter()
            .filter(|m| !m.unlisted)
            .map(|m| match m.kind {
                Kind::Volume => json!({
                    "Type": "volume",
                    "Name": m.source,
                    "Source": self.volumes.get(&m.source).map(|v| v.mountpoint).unwrap_or_default(),
                    "Destination": m.destination,
                    "Driver": "local",
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                }),
                kind => json!({
                    "Type": kind.as_str(),
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                }),
            })
            .collect();
        Value::Array(list)
    }
}

/// Docker's copy at create: each new empty volume (one without its own
/// filesystem: those are filled at start) gets what the image has at its
/// destination; a volume over a file of the image is refused, as dockerd
/// refuses it. The image is mounted read-only at `tmp` for the time of it.
pub fn copy_up_at_create(
    store: &pier_volume::Store,
    layers: &[std::path::PathBuf],
    tmp: &std::path::Path,
    mounts: &[MountPoint],
) -> Result<()> {
    let wanted: Vec<&MountPoint> = mounts
        .iter()
        .filter(|m| m.kind == Kind::Volume && !m.nocopy)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(tmp)
        .map_err(crate::error::io(format!("creating {}", tmp.display())))?;
    let mounted = pier_image::mount::mount_overlay(
        layers,
        std::path::Path::new(""),
        std::path::Path::new(""),
        tmp,
    );
    let result = mounted
        .map_err(crate::error::io("mounting the image to copy its content into volumes"))
        .and_then(|()| {
            let root = rustix::fs::open(
                tmp,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::internal(format!("opening the image's root: {e}")))?;
            for m in &wanted {
                // Resolved as the runtime will: inside the root.
                let found = rustix::fs::openat2(
                    &root,
                    m.destination.as_str(),
                    rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                    rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
                );
                if let Ok(fd) = found {
                    let is_dir = rustix::fs::fstat(&fd)
                        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
                    if !is_dir {
                        return Err(Error::bad_request(format!(
                            "invalid mount config: source {} is not directory: the image has a file there; mount the volume on a directory",
                            m.destination
                        )));
                    }
                }
                let v = store.get(&m.source)?;
                if !v.options.is_empty() {
                    continue;
                }
                pier_volume::copy_up(tmp, &m.destination, &v.mountpoint).map_err(
                    crate::error::io(format!(
                        "copying the image's {} into volume {}",
                        m.destination, v.name
                    )),
                )?;
            }
            Ok(())
        });
    let _ = pier_image::mount::unmount(tmp);
    let _ = std::fs::remove_dir(tmp);
    result
}

/// The user's mounts as OCI spec entries for one start, parents before
/// children: binds (a `-v` bind's missing host directory created, as
/// docker), volumes (mounted if they have their own filesystem, filled with
/// the image's content at first use unless nocopy; a `volume-subpath`
/// staged under `staging`, see [`stage_subpath`]), tmpfs. Returns the
/// entries and the staged mounts to release when the container exits.
/// Runs blocking.
pub fn oci_mounts(
    store: &pier_volume::Store,
    mounts: &[MountPoint],
    rootfs: &std::path::Path,
    copy_up: bool,
    staging: &std::path::Path,
) -> Result<(Vec<Value>, Vec<std::path::PathBuf>)> {
    let mut staged = Vec::new();
    let mut sorted: Vec<&MountPoint> = mounts.iter().collect();
    sorted.sort_by_key(|m| mounts::depth(&m.destination));
    let mut out = Vec::new();
    for m in sorted {
        let ro = if m.rw { "rw" } else { "ro" };
        let propagation = if m.propagation.is_empty() {
            "rprivate"
        } else {
            m.propagation.as_str()
        };
        let bind = if m.non_recursive { "bind" } else { "rbind" };
        match m.kind {
            Kind::Bind => {
                let src = std::path::Path::new(&m.source);
                if !src.exists() {
                    if !m.create_source {
                        return Err(Error::bad_request(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    std::fs::create_dir_all(src).map_err(crate::error::io(format!(
                        "creating the bind source {}",
                        m.source
                    )))?;
                }
                out.push(json!({"destination": m.destination, "type": "bind",
                                "source": m.source, "options": [bind, ro, propagation]}));
            }
            Kind::Volume => {
                let v = store.get(&m.source)?;
                let mut path = store.mount(&v)?;
                if !m.subpath.is_empty() {
                    let at = staging.join(staged.len().to_string());
                    stage_subpath(&path, &m.subpath, &at).map_err(|e| {
                        Error::bad_request(format!(
                            "invalid mount config for type \"volume\": subpath {:?} of volume {}: {e}",
                            m.subpath, v.name
                        ))
                    })?;
                    staged.push(at.clone());
                    path = at;
                } else if copy_up && !m.nocopy {
                    pier_volume::copy_up(rootfs, &m.destination, &path).map_err(
                        crate::error::io(format!(
                            "copying the image's {} into volume {}",
                            m.destination, v.name
                        )),
                    )?;
                }
                out.push(json!({"destination": m.destination, "type": "bind",
                                "source": path, "options": ["rbind", ro, propagation]}));
            }
            Kind::Tmpfs => {
                out.push(json!({"destination": m.destination, "type": "tmpfs",
                                "source": "tmpfs", "options": mounts::tmpfs_options(m)}));
            }
        }
    }
    Ok((out, staged))
}

/// Mounts the directory `subpath` of the volume at `data` on `at`, for the
/// runtime to bind from there: resolved beneath the volume by descriptor
/// (`openat2(RESOLVE_BENEATH)`: no `..` or symlink leads out of it), then
/// attached by descriptor, so a swap inside the volume cannot redirect it.
fn stage_subpath(
    data: &std::path::Path,
    subpath: &str,
    at: &std::path::Path,
) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    let root = rustix::fs::open(
        data,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir = rustix::fs::openat2(
        &root,
        subpath,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::XDEV => std::io::Error::other("it leads out of the volume"),
        rustix::io::Errno::NOENT => std::io::Error::other("no such directory in the volume"),
        e => e.into(),
    })?;
    let tree = rustix::mount::open_tree(
        &dir,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    std::fs::create_dir_all(at)?;
    rustix::mount::move_mount(
        &tree,
        "",
        rustix::fs::CWD,
        at,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}
