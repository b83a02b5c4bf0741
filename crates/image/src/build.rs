//! What `pier build` needs from the store: an image's config as stored,
//! a step's upper directory as a layer, and an image made of layers the
//! builder stacked with a config it wrote.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::manifest::{self, Descriptor, Manifest};
use crate::reference::Reference;
use crate::{io_err, Error, ImageSummary, Result, Store};

impl Store {
    /// The config of image `name_or_id` as stored (docker's JSON with every
    /// field kept: Healthcheck, Shell, OnBuild, ...) and the image's id.
    pub fn image_config_json(&self, name_or_id: &str) -> Result<(String, serde_json::Value)> {
        let records = self.meta.records()?;
        let repos = self.meta.repositories()?;
        let hex = crate::store::find_id(name_or_id, &records, &repos)?;
        let m = self.manifest(&records[&hex].manifest)?;
        let bytes = self.content.read(&m.config.digest)?;
        manifest::parse_config(&bytes, &format!("config {}", m.config.digest))?;
        let v = serde_json::from_slice(&bytes).map_err(|e| {
            Error::InvalidImage(format!("config {} does not parse: {e}", m.config.digest))
        })?;
        Ok((format!("sha256:{hex}"), v))
    }

    /// A build step's overlay upper directory (overlayfs whiteouts and
    /// opaque directories) as one more layer on top of `parent_diff_ids`:
    /// the layer tar is stored as a blob and the snapshot made. When
    /// `upper` is on the store's filesystem it is moved into place as the
    /// snapshot (what the tar leaves out removed first), so `upper` is
    /// consumed; otherwise the tar is unpacked. Returns the layer's diff
    /// ID and the snapshot directory.
    pub fn add_layer(&self, parent_diff_ids: &[String], upper: &Path) -> Result<(String, PathBuf)> {
        let _gc = self.gc_guard();
        let mut ingest = self.content.ingest()?;
        crate::diff::write_tar(upper, &mut ingest, true)?;
        let (diff_id, _) = ingest.commit(None)?;
        let mut ids = parent_diff_ids.to_vec();
        ids.push(diff_id.clone());
        let chains = crate::snapshots::chain_ids(&ids);
        let chain = chains.last().expect("one layer at least");
        let path = self.snapshots.path(chain)?;
        if path.is_dir() {
            return Ok((diff_id, path));
        }
        let same_fs = std::fs::metadata(upper)
            .and_then(|u| std::fs::metadata(self.snapshots.dir()).map(|s| s.dev() == u.dev()))
            .unwrap_or(false);
        if same_fs {
            let tmp = self.snapshots.tmp()?;
            prepare_upper(upper).map_err(|e| {
                io_err(
                    format!("preparing {} as a layer snapshot", upper.display()),
                    e,
                )
            })?;
            // A directory renamed onto an empty one replaces it.
            match std::fs::rename(upper, tmp.path()) {
                Ok(()) => {
                    let path = tmp.commit(&self.snapshots, chain)?;
                    return Ok((diff_id, path));
                }
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
                Err(e) => {
                    return Err(io_err(
                        format!("moving {} to {}", upper.display(), tmp.path().display()),
                        e,
                    ))
                }
            }
        }
        let u = crate::archive::unpack_blob(self.content.path(&diff_id)?, self.snapshots.tmp()?)?;
        let path = u.tmp.commit(&self.snapshots, chain)?;
        Ok((diff_id, path))
    }

    /// The snapshot directory of the top layer of the stack `diff_ids`
    /// when it is unpacked and its blob stored (a build cache hit is only
    /// usable then); None otherwise.
    pub fn stacked_snapshot(&self, diff_ids: &[String]) -> Option<PathBuf> {
        let chains = crate::snapshots::chain_ids(diff_ids);
        let p = self.snapshots.path(chains.last()?).ok()?;
        (p.is_dir() && self.content.exists(diff_ids.last()?)).then_some(p)
    }

    /// The stored blob of the layer whose tar has digest `diff_id`, as a
    /// layer of a docker schema2 manifest: the tar itself (what builds,
    /// commits and imports store), else the blob a pulled image keeps
    /// for it (compressed, under its own digest), found through the
    /// stored images' manifests and configs.
    fn layer_blob(&self, diff_id: &str) -> Result<Option<Descriptor>> {
        if self.content.exists(diff_id) {
            let size = std::fs::metadata(self.content.path(diff_id)?)
                .map_err(|e| io_err(format!("layer {diff_id}"), e))?
                .len();
            return Ok(Some(Descriptor {
                media_type: manifest::DOCKER_LAYER.into(),
                digest: diff_id.to_string(),
                size,
                platform: None,
                annotations: None,
            }));
        }
        for rec in self.meta.records()?.values() {
            let Ok(m) = self.manifest(&rec.manifest) else {
                continue;
            };
            let Ok(config) = self.content.read(&m.config.digest) else {
                continue;
            };
            let Ok(head) = manifest::parse_config(&config, "an image config") else {
                continue;
            };
            let found = head.rootfs.diff_ids.iter().position(|d| d == diff_id);
            let Some(layer) = found.and_then(|i| m.layers.get(i)) else {
                continue;
            };
            if !self.content.exists(&layer.digest) {
                continue;
            }
            let media_type = match layer.media_type.as_str() {
                manifest::OCI_LAYER_GZIP => manifest::DOCKER_LAYER_GZIP,
                manifest::OCI_LAYER => manifest::DOCKER_LAYER,
                other => other,
            };
            return Ok(Some(Descriptor {
                media_type: media_type.into(),
                digest: layer.digest.clone(),
                size: layer.size,
                platform: None,
                annotations: None,
            }));
        }
        Ok(None)
    }

    /// Registers the image whose config is `config` (docker's image config
    /// JSON; its `rootfs.diff_ids` name layers stored by [`Store::add_layer`]
    /// or by imports and pulls) with a docker schema2 manifest, and points
    /// `tags` (REPO[:TAG]) at it.
    pub fn create_image(
        &self,
        config: &serde_json::Value,
        tags: &[String],
    ) -> Result<ImageSummary> {
        let mut refs = Vec::new();
        for t in tags {
            let r = Reference::parse(t)?;
            if r.digest().is_some() {
                return Err(Error::InvalidReference(format!(
                    "{r}: refusing to create a tag with a digest reference; give name[:tag]"
                )));
            }
            refs.push(r);
        }
        let _gc = self.gc_guard();
        let config_bytes = serde_json::to_vec(config).expect("JSON values serialise");
        let head = manifest::parse_config(&config_bytes, "the built image's config")?;
        let chains = crate::snapshots::chain_ids(&head.rootfs.diff_ids);
        let mut layers = Vec::new();
        let mut size = 0;
        for (diff_id, chain) in head.rootfs.diff_ids.iter().zip(&chains) {
            if !self.snapshots.path(chain)?.is_dir() {
                return Err(Error::InvalidImage(format!(
                    "layer {diff_id} of the built image is not unpacked; build again"
                )));
            }
            let layer = self.layer_blob(diff_id)?.ok_or_else(|| {
                io_err(
                    format!("layer {diff_id} of the built image"),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no stored blob holds it; pull or build its image again",
                    ),
                )
            })?;
            size += layer.size;
            layers.push(layer);
        }
        let (config_digest, config_size) = self.content.put(&config_bytes)?;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::DOCKER_MANIFEST.to_owned()),
            config: Descriptor {
                media_type: manifest::DOCKER_CONFIG.into(),
                digest: config_digest.clone(),
                size: config_size,
                platform: None,
                annotations: None,
            },
            layers,
        };
        let (manifest_digest, _) = self
            .content
            .put(&serde_json::to_vec(&m).expect("serialises"))?;
        let (secs, nanos) = head
            .created
            .as_deref()
            .and_then(pier_common::time::parse_rfc3339)
            .map(|s| (s, 0))
            .unwrap_or_else(pier_common::time::unix_now);
        self.register(&config_digest, &manifest_digest, secs, nanos, size, &refs)?;
        Ok(ImageSummary {
            id: config_digest,
            repo_tags: refs.iter().map(|t| t.familiar()).collect(),
            created: secs,
            size,
        })
    }
}

/// Makes an upper directory what unpacking its layer tar would give:
/// [`crate::diff::RUNTIME_PATHS`] and sockets removed, overlayfs' own
/// xattrs (origin, impure, ...) dropped except the opaque marker.
fn prepare_upper(upper: &Path) -> std::io::Result<()> {
    for p in crate::diff::RUNTIME_PATHS {
        let path = upper.join(p);
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        // The parent keeps the mtime the tar recorded.
        let parent = path.parent().unwrap_or(upper).to_path_buf();
        let mtime = std::fs::metadata(&parent).and_then(|m| m.modified()).ok();
        if md.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        if let Some(t) = mtime {
            std::fs::File::open(&parent)?.set_times(std::fs::FileTimes::new().set_modified(t))?;
        }
    }
    fn walk(dir: &Path) -> std::io::Result<()> {
        clean_xattrs(dir);
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let ft = e.file_type()?;
            let p = e.path();
            if ft.is_socket() {
                std::fs::remove_file(&p)?;
            } else if ft.is_dir() {
                walk(&p)?;
            } else {
                clean_xattrs(&p);
            }
        }
        Ok(())
    }
    walk(upper)
}

fn clean_xattrs(p: &Path) {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names) else {
        return;
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.")
            && name != crate::extract::OVERLAY_OPAQUE_XATTR.as_bytes()
        {
            let _ = rustix::fs::lremovexattr(p, std::ffi::OsStr::from_bytes(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_from_a_directory_becomes_an_image() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(&root.path().join("data")).unwrap();
        let upper = root.path().join("upper");
        std::fs::create_dir_all(upper.join("app")).unwrap();
        std::fs::write(upper.join("app/x"), b"hello").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), b"").unwrap();
        std::fs::create_dir_all(upper.join("dev/pts")).unwrap();
        let (diff_id, snap) = store.add_layer(&[], &upper).unwrap();
        assert_eq!(std::fs::read(snap.join("app/x")).unwrap(), b"hello");
        // What the tar leaves out is not in the snapshot either.
        assert!(!snap.join("etc/hosts").exists() && !snap.join("dev").exists());
        assert!(snap.join("etc").is_dir());
        assert_eq!(
            store.stacked_snapshot(std::slice::from_ref(&diff_id)),
            Some(snap)
        );
        assert_eq!(store.stacked_snapshot(&[]), None);
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "created": "2026-11-30T10:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "COPY x /app/x # buildkit"}],
        });
        let s = store.create_image(&config, &["built:1".into()]).unwrap();
        assert_eq!(s.repo_tags, vec!["built:1".to_string()]);
        let img = store.resolve("built:1").unwrap();
        assert_eq!(img.id, s.id);
        assert_eq!(img.layers.len(), 1);
        let (id, v) = store.image_config_json("built:1").unwrap();
        assert_eq!(id, s.id);
        assert_eq!(v["config"]["Cmd"][0], "sh");
        // A layer that is not stored is refused.
        let bad = serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "a".repeat(64))]},
        });
        assert!(store.create_image(&bad, &[]).is_err());
        assert!(store
            .create_image(&config, &["x@sha256:abc".into()])
            .is_err());
    }
}
