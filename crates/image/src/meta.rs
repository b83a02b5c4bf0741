//! Image metadata: `images/repositories.json` (reference -> manifest digest)
//! and one record per image, `images/by-id/<config hex>.json`. Every file is
//! replaced atomically (temp file, fsync, rename, fsync of the directory);
//! read-modify-write of repositories.json happens under `images/lock` (flock).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{io_err, Result};

/// What `list()` needs without opening blobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    /// "sha256:<hex>" of the manifest blob.
    pub manifest: String,
    /// Unix seconds.
    pub created: i64,
    /// Sub-second part of the creation time (orders images made in one second).
    #[serde(default)]
    pub created_nanos: u32,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
    /// The index or manifest list the image was loaded through, kept with
    /// the blobs it reaches so `save` writes it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

/// Full reference ("docker.io/library/busybox:latest") -> manifest digest.
pub(crate) type Repositories = BTreeMap<String, String>;

pub(crate) struct Meta {
    dir: PathBuf,
    by_id: PathBuf,
}

pub(crate) struct Lock(#[allow(dead_code)] File);

impl Meta {
    pub(crate) fn open(root: &Path) -> Result<Meta> {
        let dir = root.join("images");
        let by_id = dir.join("by-id");
        fs::create_dir_all(&by_id)
            .map_err(|e| io_err(format!("creating {}", by_id.display()), e))?;
        Ok(Meta { dir, by_id })
    }

    /// Exclusive lock over metadata updates (released on drop).
    pub(crate) fn lock(&self) -> Result<Lock> {
        let p = self.dir.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| io_err(format!("opening {}", p.display()), e))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(format!("locking {}", p.display()), e.into()))?;
        Ok(Lock(f))
    }

    fn repositories_path(&self) -> PathBuf {
        self.dir.join("repositories.json")
    }

    pub(crate) fn repositories(&self) -> Result<Repositories> {
        let p = self.repositories_path();
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                io_err(
                    format!(
                        "parsing {} (restore it from a backup or delete it to drop all tags)",
                        p.display()
                    ),
                    io::Error::new(io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Repositories::new()),
            Err(e) => Err(io_err(format!("reading {}", p.display()), e)),
        }
    }

    /// Callers hold `lock()`.
    pub(crate) fn save_repositories(&self, repos: &Repositories, _lock: &Lock) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(repos).expect("a string map serialises");
        atomic_write(&self.repositories_path(), &bytes)
    }

    pub(crate) fn put_record(&self, id_hex: &str, rec: &ImageRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec).expect("record serialises");
        atomic_write(&self.by_id.join(format!("{id_hex}.json")), &bytes)
    }

    /// All image records by id hex.
    pub(crate) fn records(&self) -> Result<BTreeMap<String, ImageRecord>> {
        let mut out = BTreeMap::new();
        let rd = fs::read_dir(&self.by_id)
            .map_err(|e| io_err(format!("listing {}", self.by_id.display()), e))?;
        for ent in rd {
            let ent = ent.map_err(|e| io_err(format!("listing {}", self.by_id.display()), e))?;
            let name = ent.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue; // temp files
            };
            if !crate::reference::is_full_hex_id(hex) {
                continue;
            }
            let p = ent.path();
            let b = match fs::read(&p) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => return Err(io_err(format!("reading {}", p.display()), e)),
            };
            let rec: ImageRecord = serde_json::from_slice(&b).map_err(|e| {
                io_err(
                    format!("parsing image record {}", p.display()),
                    io::Error::new(io::ErrorKind::InvalidData, e),
                )
            })?;
            out.insert(hex.to_owned(), rec);
        }
        Ok(out)
    }

    pub(crate) fn remove_record(&self, id_hex: &str) -> Result<()> {
        let p = self.by_id.join(format!("{id_hex}.json"));
        match fs::remove_file(&p) {
            Ok(()) => sync_dir(&self.by_id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("removing {}", p.display()), e)),
        }
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old or new file.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("metadata files live in a directory");
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        rand::random::<u64>()
    ));
    let write = || -> io::Result<()> {
        let mut f = File::options().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(format!("writing {}", path.display()), e));
    }
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(format!("syncing directory {}", dir.display()), e))
}
