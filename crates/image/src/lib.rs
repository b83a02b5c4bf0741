//! pier's image store. API CONTRACT (used by pier-engine; keep these signatures).
//!
//! Layout under the data root (see README.md):
//! ```text
//! content/blobs/sha256/<hex>     blobs by digest (layers as uncompressed tar,
//!                                OCI configs and manifests), verified first
//! content/ingest/<random>        blobs being written
//! snapshots/<chain-id hex>/      each layer unpacked once, overlayfs-ready
//! snapshots/tmp-<random>/        layers being unpacked
//! images/repositories.json       reference -> manifest digest
//! images/by-id/<config hex>.json one record per image (manifest, created, size)
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

pub mod extract; // unpack_layer(reader, dir): safe extraction, whiteouts converted to overlayfs form
pub mod mount; // mount_overlay(lowers, upper, work, target), unmount(target)
pub mod reference; // Reference::parse("busybox") -> docker.io/library/busybox:latest, familiar() -> "busybox:latest"

mod archive;
mod build; // Store::{image_config_json, add_layer, stacked_snapshot, create_image} for pier build
mod chan_reader;
mod content;
mod diff;
mod distribution;
mod gc;
pub mod manifest;
mod meta;
pub mod snapshots;
mod store;

pub use archive::LoadedImage;
pub use chan_reader::Chunks;
pub use diff::{changes, write_tar, Change, ChangeKind, CommitOptions};
pub use distribution::{LayerTarget, PushableImage};
pub use gc::du;
pub use gc::{Deleted, GcStats, ImageDetails};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    #[error("invalid layer: {0}")]
    InvalidLayer(String),
    /// A short ID that matches several images (docker: 400 Bad Request).
    #[error("multiple images found with provided prefix: {0}; give more characters of the ID")]
    AmbiguousId(String),
    /// An archive, manifest or config that cannot be used (400).
    #[error("{0}")]
    InvalidImage(String),
    /// The operation conflicts with the image's use (docker: 409 Conflict).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(context: String, source: std::io::Error) -> Error {
    Error::Io { context, source }
}

/// What `docker import` takes besides the tarball.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// Target reference, e.g. "busybox" or "localhost:5000/x:v1"; None = untagged.
    pub reference: Option<String>,
    /// Commit message stored in history.
    pub message: Option<String>,
}

/// One image, as `docker images` lists it.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// "sha256:<config digest>".
    pub id: String,
    /// Familiar names: "busybox:latest".
    pub repo_tags: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Sum of the uncompressed layer sizes, bytes.
    pub size: u64,
}

/// A resolved image: its config and where its layers are unpacked.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub config: oci_spec::image::ImageConfiguration,
    /// Snapshot directories, lowest layer first.
    pub layers: Vec<PathBuf>,
}

pub struct Store {
    root: PathBuf,
    content: content::Content,
    snapshots: snapshots::Snapshots,
    meta: meta::Meta,
    /// Writers (import, load, commit) hold it shared; garbage collection
    /// holds it exclusively, so it never sees a blob before its image record.
    gc_lock: std::sync::RwLock<()>,
}

impl Store {
    /// Opens (creating if needed) the store under the data root.
    /// What a crash left half-written (`content/ingest/*`,
    /// `snapshots/tmp-*`) is removed: only one process (pierd) opens a store.
    pub fn open(data_root: &Path) -> Result<Store> {
        let store = Store {
            root: data_root.to_path_buf(),
            content: content::Content::open(data_root)?,
            snapshots: snapshots::Snapshots::open(data_root)?,
            meta: meta::Meta::open(data_root)?,
            gc_lock: std::sync::RwLock::new(()),
        };
        store.clean_leftovers()?;
        Ok(store)
    }
    /// The data root this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `docker import`: one-layer image from a rootfs tar (plain, gzip or zstd).
    pub fn import(&self, tar: impl Read, opts: &ImportOptions) -> Result<ImageSummary> {
        self.import_impl(tar, opts)
    }
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        self.list_impl()
    }
    /// By name[:tag], full id "sha256:...", or a unique id prefix (docker's rules).
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        self.resolve_impl(name_or_id)
    }
}
