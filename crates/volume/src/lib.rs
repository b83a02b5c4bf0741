//! Volumes: directories whose life is independent of any container.
//!
//! Layout: `DATA_ROOT/volumes/NAME/volume.json` (the metadata, written
//! atomically) and `DATA_ROOT/volumes/NAME/_data` (what containers see,
//! mode 0755). A volume is built under `.creating-RANDOM` and renamed into
//! place, and removed by renaming it to `.removing-RANDOM` first, so a
//! crash never leaves a half volume in [`Store::list`]; directories without
//! `volume.json` are not volumes, malformed metadata is skipped with a
//! message. Names, driver and option checks and their messages are
//! docker's (`create NAME: ...`, `get NAME: no such volume`).
//!
//! A volume created with local driver options (`type`, `device`, `o`, as
//! docker's `local` driver: a tmpfs, a bind of a host directory, a device)
//! has that filesystem mounted on `_data` while containers use it
//! ([`Store::mount`], idempotent, serialised by a flock on the volume's
//! directory); `o` is split into mount flags (`ro`, `nosuid`, `bind`, ...)
//! and the filesystem's data string. Removal unmounts `_data` and never
//! descends into a mounted filesystem or follows a symlink.
//!
//! [`copy_up`] fills a new, empty volume with the image's content at the
//! mount point, resolving it inside the rootfs (openat2 RESOLVE_IN_ROOT,
//! or an fd walk) and copying through directory fds only.

mod copy;
mod fsutil;
mod options;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
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

/// Per-volume metadata file, beside `_data`.
const META: &str = "volume.json";
const DATA: &str = "_data";
/// Prefixes of the store's own work directories (never valid volume names).
const CREATING: &str = ".creating-";
const REMOVING: &str = ".removing-";

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

impl Store {
    /// Opens (creating it if needed) the store at `root` (DATA_ROOT/volumes).
    pub fn open(root: &Path) -> Result<Store> {
        if !root.is_dir() {
            std::fs::create_dir_all(root)
                .map_err(io_err(format!("creating volume store {}", root.display())))?;
            // As docker's volumes directory: others may only traverse.
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o701))
                .map_err(io_err(format!("chmod {}", root.display())))?;
        }
        let store = Store {
            root: root.to_path_buf(),
        };
        store.clean_leftovers();
        Ok(store)
    }

    /// Finishes removals and drops creations that a crash interrupted
    /// (a creation only once it is a minute old: another store on the
    /// same root may be creating right now).
    fn clean_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let stale = if name.starts_with(REMOVING) {
                true
            } else if name.starts_with(CREATING) {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 60)
            } else {
                false
            };
            if stale {
                if let Err(err) = fsutil::remove_tree(&e.path()) {
                    eprintln!("pier-volume: leftover {}: {err}", e.path().display());
                }
            }
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
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
        mut labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                fsutil::random_hex(32)
            }
        };
        match driver {
            None | Some("") | Some("local") => {}
            Some(d) => {
                return Err(Error::InvalidOptions(format!(
                    "create {name}: error looking up volume plugin {d}: plugin {d:?} not found \
                     (pier has only the \"local\" driver)"
                )))
            }
        }
        validate_name(&name)?;
        // As docker: an existing volume is returned as it is, whatever
        // options and labels this create asked for.
        match self.get(&name) {
            Ok(v) => return Ok((v, false)),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        options::validate(&name, &options)?;
        let (secs, _) = pier_common::time::unix_now();
        let v = Volume {
            name: name.clone(),
            driver: "local".to_string(),
            labels,
            options,
            created_at: pier_common::time::rfc3339(secs, 0),
            mountpoint: self.dir(&name).join(DATA),
        };
        let what = || format!("creating volume {name}");
        let json =
            serde_json::to_vec_pretty(&v).map_err(|e| io_err(what())(std::io::Error::other(e)))?;
        // Built under a temporary name, then renamed into place: a crash
        // leaves a `.creating-` directory, never a volume without metadata.
        let tmp = self
            .root
            .join(format!("{CREATING}{}", fsutil::random_hex(8)));
        let built = (|| -> std::io::Result<()> {
            fsutil::mkdir_mode(&tmp, 0o701)?;
            fsutil::mkdir_mode(&tmp.join(DATA), 0o755)?;
            fsutil::write_atomic(&tmp, META, &json, 0o600)
        })();
        if let Err(e) = built {
            let _ = fsutil::remove_tree(&tmp);
            return Err(io_err(what())(e));
        }
        let dst = self.dir(&name);
        let renamed = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &dst,
            rustix::fs::RenameFlags::NOREPLACE,
        );
        match renamed {
            Ok(()) => {
                fsutil::fsync_dir(&self.root).map_err(io_err(what()))?;
                Ok((v, true))
            }
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                let _ = fsutil::remove_tree(&tmp);
                match self.get(&name) {
                    // Created meanwhile by someone else.
                    Ok(existing) => Ok((existing, false)),
                    // A directory of that name without metadata (made by
                    // hand): adopt it, keeping what it holds.
                    Err(Error::NotFound(_)) => {
                        let data = dst.join(DATA);
                        if !data.is_dir() {
                            fsutil::mkdir_mode(&data, 0o755).map_err(io_err(what()))?;
                        }
                        fsutil::write_atomic(&dst, META, &json, 0o600).map_err(io_err(what()))?;
                        Ok((v, true))
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                let _ = fsutil::remove_tree(&tmp);
                Err(io_err(format!(
                    "{}: rename {} to {}",
                    what(),
                    tmp.display(),
                    dst.display()
                ))(e.into()))
            }
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        // Invalid names never reach the filesystem (no `..`, no `/`).
        if validate_name(name).is_err() {
            return Err(Error::NotFound(name.to_string()));
        }
        let dir = self.dir(name);
        let meta = dir.join(META);
        let bytes = match std::fs::read(&meta) {
            Ok(b) => b,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ENAMETOOLONG)) =>
            {
                return Err(Error::NotFound(name.to_string()))
            }
            Err(e) => return Err(io_err(format!("reading {}", meta.display()))(e)),
        };
        let bad = |msg: String| {
            io_err(format!("reading {}", meta.display()))(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                msg,
            ))
        };
        let mut v: Volume = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if v.name != name {
            return Err(bad(format!("it names volume {:?}", v.name)));
        }
        // Where the data is now, even if the data root moved.
        v.mountpoint = dir.join(DATA);
        Ok(v)
    }

    /// All volumes, sorted by name; unreadable entries are skipped with a
    /// message on stderr.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(io_err(format!("reading {}", self.root.display())))?;
        let mut out = Vec::new();
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    eprintln!("pier-volume: reading {}: {err}", self.root.display());
                    continue;
                }
            };
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // The store's own work directories and stray files.
            if validate_name(&name).is_err() {
                continue;
            }
            match self.get(&name) {
                Ok(v) => out.push(v),
                // No metadata: not a volume.
                Err(Error::NotFound(_)) => {}
                Err(err) => eprintln!("pier-volume: skipping volume {name}: {err}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes the volume and its data (unmounting its options' filesystem
    /// first). Whether containers use it is the engine's concern.
    pub fn remove(&self, name: &str) -> Result<()> {
        // A volume whose metadata no longer parses can still be removed.
        match self.get(name) {
            Ok(_) | Err(Error::Io { .. }) => {}
            Err(e) => return Err(e),
        }
        let _lock = self.lock(name)?;
        let what = || format!("removing volume {name}");
        let dir = self.dir(name);
        let data = dir.join(DATA);
        // Unmount whatever is on _data (stacked mounts included); never
        // recurse into a mounted filesystem (a bind of host data).
        for _ in 0..16 {
            if !fsutil::is_mount_point(&data).map_err(io_err(what()))? {
                break;
            }
            options::unmount(&data)?;
        }
        if fsutil::is_mount_point(&data).map_err(io_err(what()))? {
            return Err(io_err(what())(std::io::Error::other(format!(
                "{} is still a mount point; unmount it first",
                data.display()
            ))));
        }
        // Out of sight first, so a failed deletion leaves no broken volume;
        // `open` finishes the deletion of leftovers.
        let doomed = self
            .root
            .join(format!("{REMOVING}{}", fsutil::random_hex(8)));
        std::fs::rename(&dir, &doomed).map_err(io_err(format!(
            "{}: rename {} to {}",
            what(),
            dir.display(),
            doomed.display()
        )))?;
        // The data first: if it cannot go (a filesystem mounted below it),
        // the volume is put back in place, metadata intact.
        if let Err(e) = fsutil::remove_tree(&doomed.join(DATA)) {
            let _ = std::fs::rename(&doomed, &dir);
            return Err(io_err(what())(e));
        }
        fsutil::remove_tree(&doomed).map_err(io_err(what()))?;
        let _ = fsutil::fsync_dir(&self.root);
        Ok(())
    }

    /// Makes the volume's data ready for a container and returns the host
    /// path to bind-mount: for a volume with options, mounts them on
    /// `_data` unless already mounted; otherwise just `_data`.
    pub fn mount(&self, v: &Volume) -> Result<PathBuf> {
        // The stored volume is the authority on its options.
        let v = self.get(&v.name)?;
        let _lock = self.lock(&v.name)?;
        let data = self.dir(&v.name).join(DATA);
        if !data.is_dir() {
            // Deleted by hand: a plain volume gets an empty one again.
            fsutil::mkdir_mode(&data, 0o755)
                .map_err(io_err(format!("mounting volume {}", v.name)))?;
        }
        if options::needs_mount(&v.options) {
            options::mount(&v.options, &data)?;
        }
        Ok(data)
    }

    /// Unmounts a volume's options filesystem (no-op for plain volumes),
    /// when no running container uses it any more.
    pub fn unmount(&self, v: &Volume) -> Result<()> {
        let v = match self.get(&v.name) {
            Ok(v) => v,
            // Gone: nothing mounted for it any more.
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !options::needs_mount(&v.options) {
            return Ok(());
        }
        let _lock = self.lock(&v.name)?;
        options::unmount(&self.dir(&v.name).join(DATA))
    }

    /// An exclusive flock on the volume's directory, held until the fd
    /// drops: two containers starting at once must not stack two mounts
    /// on `_data` (each would see its own tmpfs).
    fn lock(&self, name: &str) -> Result<rustix::fd::OwnedFd> {
        let dir = self.dir(name);
        let fd = rustix::fs::open(
            &dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => Error::NotFound(name.to_string()),
            e => io_err(format!("opening {}", dir.display()))(e.into()),
        })?;
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(format!("locking {}", dir.display()))(e.into()))?;
        Ok(fd)
    }
}

/// Docker's local volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<()> {
    let first = |c: u8| c.is_ascii_alphanumeric();
    let rest = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    let b = name.as_bytes();
    // As docker: one byte is "too short"; anything else that does not
    // match "includes invalid characters".
    if b.len() == 1 {
        return Err(Error::InvalidName(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    if b.len() < 2 || !first(b[0]) || !b[1..].iter().all(|&c| rest(c)) {
        return Err(Error::InvalidName(format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, \
             only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        )));
    }
    Ok(())
}

/// Docker's copy-up: fills the empty directory `volume_data` with what the
/// image has at `destination` (an absolute path inside the container)
/// under `rootfs`. `destination` is resolved inside `rootfs` (symlinks
/// never lead out of it). Copies files, directories, symlinks, modes,
/// owners and times. Returns false, copying nothing, when `volume_data` is
/// not empty or the image has no directory there.
pub fn copy_up(rootfs: &Path, destination: &str, volume_data: &Path) -> std::io::Result<bool> {
    copy::copy_up(rootfs, destination, volume_data)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_copy;
#[cfg(test)]
mod tests_mount;
