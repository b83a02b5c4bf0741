//! A container's root filesystem for the archive API (`docker cp`): the
//! mounted rootfs of a running container, else a temporary overlay of its
//! image layers and its writable layer; either way seen through a view
//! with the container's binds and volumes mounted (cp_view.rs).

use super::cp_view::ViewMount;
use super::{Engine, Handle};
use crate::container::mounts::Kind;
use crate::container::ContainerRecord;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Engine {
    /// Runs `f` in a blocking thread with the path of the container's root
    /// filesystem. A stopped container's layers are mounted for the call
    /// (read-only unless `write`) under its operation lock, so it cannot
    /// start meanwhile, and unmounted after.
    pub async fn with_rootfs<T: Send + 'static>(
        self: &Arc<Self>,
        h: Arc<Handle>,
        write: bool,
        f: impl FnOnce(&Path) -> T + Send + 'static,
    ) -> Result<T> {
        let dir = self.container_dir(&h.id);
        let mounts = self.view_mounts(&h.record())?;
        // As docker's, the view makes the mount points a container that
        // never ran lacks (in its writable layer, as its first start would).
        let write = write || !mounts.is_empty();
        let viewed = move |root: &Path, dir: &Path| -> Result<T> {
            let name = dir.join(format!("cp-view-{:016x}", rand::random::<u64>()));
            let view = super::cp_view::make(root, name, &mounts, true).map_err(|e| {
                Error::internal(format!(
                    "mounting the container's volumes for the copy: {e}"
                ))
            })?;
            Ok(f(view.path()))
        };
        if h.record().state.running() {
            let rootfs = dir.join("rootfs");
            return tokio::task::spawn_blocking(move || viewed(&rootfs, &dir)).await?;
        }
        let _op = h.op.lock().await;
        if h.removed() {
            return Err(Error::no_such_container(&h.id));
        }
        let rec = h.record();
        if rec.state.running() {
            // Started while we waited for the lock.
            drop(_op);
            let rootfs = dir.join("rootfs");
            return tokio::task::spawn_blocking(move || viewed(&rootfs, &dir)).await?;
        }
        let store = self.images.clone();
        let image_id = rec.image_id.clone();
        let mut layers: Vec<PathBuf> =
            tokio::task::spawn_blocking(move || store.resolve(&image_id))
                .await??
                .layers;
        tokio::task::spawn_blocking(move || {
            let target = dir.join(format!("cp-{:016x}", rand::random::<u64>()));
            std::fs::create_dir(&target)
                .map_err(|e| Error::internal(format!("creating {}: {e}", target.display())))?;
            let mounted = if write {
                pier_image::mount::mount_overlay(
                    &layers,
                    &dir.join("upper"),
                    &dir.join("work"),
                    &target,
                )
            } else {
                layers.push(dir.join("upper"));
                pier_image::mount::mount_overlay(&layers, Path::new(""), Path::new(""), &target)
            };
            if let Err(e) = mounted {
                let _ = std::fs::remove_dir(&target);
                return Err(Error::internal(format!(
                    "mounting the filesystem of container {}: {e}",
                    rec.name
                )));
            }
            let out = viewed(&target, &dir);
            let _ = pier_image::mount::unmount(&target);
            let _ = std::fs::remove_dir(&target);
            out
        })
        .await?
    }

    /// The container's binds and volumes as the view mounts them.
    fn view_mounts(&self, rec: &ContainerRecord) -> Result<Vec<ViewMount>> {
        let mut out = Vec::new();
        for m in &rec.mounts {
            let source = match m.kind {
                Kind::Bind => PathBuf::from(&m.source),
                Kind::Volume => {
                    let v = self.volumes.get(&m.source)?;
                    self.volumes.mount(&v)?
                }
                Kind::Tmpfs => continue,
            };
            if !source.exists() {
                continue;
            }
            out.push(ViewMount {
                source,
                destination: m.destination.clone(),
                rw: m.rw,
            });
        }
        Ok(out)
    }
}
