//! Volumes: directories whose life is independent of any container.
//!
//! Layout: `DATA_ROOT/volumes/NAME/volume.json` (the metadata, written
//! atomically) and `DATA_ROOT/volumes/NAME/_data` (what containers see).
//! A volume created with local driver options (`type`, `device`, `o`, as
//! docker's `local` driver: a tmpfs, a bind of a host directory, a device)
//! has that filesystem mounted on `_data` while containers use it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Label docker puts on anonymous volumes (`-v /dst`, image VOLUME).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Message as docker's, e.g. `create a/b: "a/b" includes invalid
    /// characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]"
    /// are allowed. If you intended to pass a host directory, use absolute path`.
    #[error("{0}")]
    InvalidName(String),
    /// `get NAME: no such volume`
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// Unknown driver, bad or missing `type/device/o` options.
    #[error("{0}")]
    InvalidOptions(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// One volume as `volume inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    pub name: String,
    /// Always "local".
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// The local driver's options (`type`, `device`, `o`), as given.
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// `DATA_ROOT/volumes/NAME/_data`.
    pub mountpoint: PathBuf,
}

impl Volume {
    /// Created for `-v /dst` or an image's VOLUME (has [`ANONYMOUS_LABEL`]).
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// The volumes under one data root.
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating it if needed) the store at `root` (DATA_ROOT/volumes).
    pub fn open(root: &Path) -> Result<Store> {
        let _ = root;
        todo!("helper: pier-volume")
    }

    /// Creates a volume, or returns the existing one of that name (as
    /// docker: creating an existing volume is not an error). `name` None:
    /// an anonymous volume with a random 64-hex name and [`ANONYMOUS_LABEL`].
    /// Returns the volume and whether it was created now.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        let _ = (name, driver, options, labels, &self.root);
        todo!("helper: pier-volume")
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        let _ = name;
        todo!("helper: pier-volume")
    }

    /// All volumes, sorted by name; unreadable entries are skipped with a
    /// message on stderr.
    pub fn list(&self) -> Result<Vec<Volume>> {
        todo!("helper: pier-volume")
    }

    /// Deletes the volume and its data (unmounting its options' filesystem
    /// first). Whether containers use it is the engine's concern.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _ = name;
        todo!("helper: pier-volume")
    }

    /// Makes the volume's data ready for a container and returns the host
    /// path to bind-mount: for a volume with options, mounts them on
    /// `_data` unless already mounted; otherwise just `_data`.
    pub fn mount(&self, v: &Volume) -> Result<PathBuf> {
        let _ = v;
        todo!("helper: pier-volume")
    }

    /// Unmounts a volume's options filesystem (no-op for plain volumes),
    /// when no running container uses it any more.
    pub fn unmount(&self, v: &Volume) -> Result<()> {
        let _ = v;
        todo!("helper: pier-volume")
    }
}

/// Docker's local volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<()> {
    let _ = name;
    todo!("helper: pier-volume")
}

/// Docker's copy-up: fills the empty directory `volume_data` with what the
/// image has at `destination` (an absolute path inside the container)
/// under `rootfs`. `destination` is resolved inside `rootfs` (symlinks
/// never lead out of it). Copies files, directories, symlinks, modes,
/// owners and times. Returns false, copying nothing, when `volume_data` is
/// not empty or the image has no directory there.
pub fn copy_up(rootfs: &Path, destination: &str, volume_data: &Path) -> std::io::Result<bool> {
    let _ = (rootfs, destination, volume_data);
    todo!("helper: pier-volume")
}
