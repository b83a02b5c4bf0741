//! The registry's files under its root directory:
//!
//! ```text
//! blobs/sha256/AB/ABCDEF...          blob bytes (layers, configs, manifests), shared by all repos
//! repos/NAME/_blobs/HEX              empty: NAME may serve blob HEX
//! repos/NAME/_manifests/HEX          NAME has manifest HEX; the file holds its media type
//! repos/NAME/_tags/TAG               "sha256:HEX" of the tagged manifest
//! repos/NAME/_referrers/SUBJ/HEX     empty: manifest HEX in NAME has subject SUBJ
//! uploads/ID                         bytes of an upload in progress
//! tmp/                               files being written, renamed into place when complete
//! ```
//!
//! NAME is a validated repository name (`names::valid_name`), so its
//! components never start with `_` or a dot and never collide with the
//! `_` directories. A blob becomes visible only by an atomic rename of a
//! complete, verified, fsynced file; a link only after its blob exists.

use crate::names::Digest;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(p: &Path) -> io::Result<bool> {
    not_found_is_none(fs::remove_file(p)).map(|r| r.is_some())
}

/// Names of the entries of `dir` (none if it does not exist), sorted.
fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let Some(rd) = not_found_is_none(fs::read_dir(dir))? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        if let Ok(n) = e.file_name().into_string() {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

fn with_context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl Storage {
    /// Opens (creating) a registry root.
    pub fn open(root: &Path) -> io::Result<Storage> {
        for d in ["blobs/sha256", "repos", "uploads", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| with_context(e, "creating", &p))?;
        }
        Ok(Storage {
            root: root.to_path_buf(),
        })
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repos").join(name)
    }

    /// A fresh path in tmp/ for a file that will be renamed into place.
    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    /// Size of a stored blob, if present.
    pub fn blob_size(&self, d: &Digest) -> io::Result<Option<u64>> {
        Ok(not_found_is_none(fs::metadata(self.blob_path(d)))?.map(|m| m.len()))
    }

    /// Moves a complete, verified and fsynced file at `from` into the blob
    /// store as `d`. An existing blob of the same digest has the same
    /// bytes, so replacing it is harmless and makes concurrent uploads of
    /// one blob safe.
    pub fn commit_blob(&self, from: &Path, d: &Digest) -> io::Result<()> {
        let dest = self.blob_path(d);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| with_context(e, "creating", parent))?;
        }
        fs::rename(from, &dest).map_err(|e| with_context(e, "moving the upload to", &dest))?;
        if let Some(parent) = dest.parent() {
            File::open(parent).and_then(|f| f.sync_all())?;
        }
        Ok(())
    }

    /// Stores small bytes (a manifest) as a blob and returns its digest.
    pub fn put_blob_bytes(&self, data: &[u8]) -> io::Result<Digest> {
        let d = Digest::of(data);
        if self.blob_size(&d)? == Some(data.len() as u64) {
            return Ok(d);
        }
        let tmp = self.tmp_path();
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            self.commit_blob(&tmp, &d)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|_| d)
    }

    pub fn read_blob(&self, d: &Digest) -> io::Result<Option<Vec<u8>>> {
        not_found_is_none(fs::read(self.blob_path(d)))
    }

    /// Writes `contents` to `path` atomically (tmp file, fsync, rename).
    fn write_atomic(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| with_context(e, "creating", parent))?;
        }
        let tmp = self.tmp_path();
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(contents)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| with_context(e, "writing", path))
    }

    /// True if the repository has any blob, manifest or tag.
    pub fn repo_exists(&self, name: &str) -> bool {
        let dir = self.repo_dir(name);
        ["_blobs", "_manifests", "_tags"]
            .iter()
            .any(|d| dir.join(d).is_dir())
    }

    /// True if `name` links blob `d` and the blob is stored.
    pub fn repo_has_blob(&self, name: &str, d: &Digest) -> io::Result<Option<u64>> {
        let link = self.repo_dir(name).join("_blobs").join(d.hex());
        if !link.exists() {
            return Ok(None);
        }
        self.blob_size(d)
    }

    pub fn link_blob(&self, name: &str, d: &Digest) -> io::Result<()> {
        let dir = self.repo_dir(name).join("_blobs");
        fs::create_dir_all(&dir).map_err(|e| with_context(e, "creating", &dir))?;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(d.hex()))
            .map(|_| ())
    }

    pub fn unlink_blob(&self, name: &str, d: &Digest) -> io::Result<bool> {
        remove_if_exists(&self.repo_dir(name).join("_blobs").join(d.hex()))
    }

    /// The media type of manifest `d` in `name`, if the repository has it
    /// and its bytes are stored.
    pub fn manifest_media_type(&self, name: &str, d: &Digest) -> io::Result<Option<String>> {
        let link = self.repo_dir(name).join("_manifests").join(d.hex());
        let Some(mt) = not_found_is_none(fs::read_to_string(&link))? else {
            return Ok(None);
        };
        if self.blob_size(d)?.is_none() {
            return Ok(None);
        }
        Ok(Some(mt))
    }

    pub fn link_manifest(&self, name: &str, d: &Digest, media_type: &str) -> io::Result<()> {
        let link = self.repo_dir(name).join("_manifests").join(d.hex());
        self.write_atomic(&link, media_type.as_bytes())
    }

    pub fn unlink_manifest(&self, name: &str, d: &Digest) -> io::Result<bool> {
        remove_if_exists(&self.repo_dir(name).join("_manifests").join(d.hex()))
    }

    /// Digests of every manifest linked in `name`.
    pub fn manifests(&self, name: &str) -> io::Result<Vec<Digest>> {
        Ok(list_dir(&self.repo_dir(name).join("_manifests"))?
            .iter()
            .filter_map(|h| Digest::parse(&format!("sha256:{h}")))
            .collect())
    }

    /// Digests of every blob linked in `name`.
    pub fn blob_links(&self, name: &str) -> io::Result<Vec<Digest>> {
        Ok(list_dir(&self.repo_dir(name).join("_blobs"))?
            .iter()
            .filter_map(|h| Digest::parse(&format!("sha256:{h}")))
            .collect())
    }

    pub fn set_tag(&self, name: &str, tag: &str, d: &Digest) -> io::Result<()> {
        let path = self.repo_dir(name).join("_tags").join(tag);
        self.write_atomic(&path, d.to_string().as_bytes())
    }

    pub fn resolve_tag(&self, name: &str, tag: &str) -> io::Result<Option<Digest>> {
        let path = self.repo_dir(name).join("_tags").join(tag);
        Ok(not_found_is_none(fs::read_to_string(&path))?.and_then(|s| Digest::parse(s.trim())))
    }

    pub fn remove_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        remove_if_exists(&self.repo_dir(name).join("_tags").join(tag))
    }

    /// Tags of `name`, in byte order (Go's sort.Strings).
    pub fn tags(&self, name: &str) -> io::Result<Vec<String>> {
        list_dir(&self.repo_dir(name).join("_tags"))
    }

    /// Removes every tag of `name` that points at `d`.
    pub fn remove_tags_of(&self, name: &str, d: &Digest) -> io::Result<()> {
        for t in self.tags(name)? {
            if self.resolve_tag(name, &t)?.as_ref() == Some(d) {
                self.remove_tag(name, &t)?;
            }
        }
        Ok(())
    }

    pub fn add_referrer(&self, name: &str, subject: &Digest, d: &Digest) -> io::Result<()> {
        let dir = self.repo_dir(name).join("_referrers").join(subject.hex());
        fs::create_dir_all(&dir).map_err(|e| with_context(e, "creating", &dir))?;
        File::create(dir.join(d.hex())).map(|_| ())
    }

    pub fn remove_referrer(&self, name: &str, subject: &Digest, d: &Digest) -> io::Result<()> {
        let dir = self.repo_dir(name).join("_referrers").join(subject.hex());
        remove_if_exists(&dir.join(d.hex()))?;
        let _ = fs::remove_dir(&dir);
        Ok(())
    }

    pub fn referrers(&self, name: &str, subject: &Digest) -> io::Result<Vec<Digest>> {
        let dir = self.repo_dir(name).join("_referrers").join(subject.hex());
        Ok(list_dir(&dir)?
            .iter()
            .filter_map(|h| Digest::parse(&format!("sha256:{h}")))
            .collect())
    }

    /// Every repository name, sorted.
    pub fn catalog(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk_repos(&self.root.join("repos"), String::new(), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn walk_repos(&self, dir: &Path, prefix: String, out: &mut Vec<String>) -> io::Result<()> {
        let mut is_repo = false;
        for n in list_dir(dir)? {
            if n.starts_with('_') {
                is_repo |= n == "_manifests" || n == "_tags" || n == "_blobs";
                continue;
            }
            let p = dir.join(&n);
            if p.is_dir() {
                let name = if prefix.is_empty() {
                    n
                } else {
                    format!("{prefix}/{n}")
                };
                self.walk_repos(&p, name, out)?;
            }
        }
        if is_repo && !prefix.is_empty() {
            out.push(prefix);
        }
        Ok(())
    }

    /// Every stored blob digest (for gc).
    pub fn all_blobs(&self) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        let base = self.root.join("blobs/sha256");
        for fan in list_dir(&base)? {
            for h in list_dir(&base.join(&fan))? {
                if let Some(d) = Digest::parse(&format!("sha256:{h}")) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    pub fn remove_blob(&self, d: &Digest) -> io::Result<bool> {
        remove_if_exists(&self.blob_path(d))
    }
}
