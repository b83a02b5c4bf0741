//! Image records, deletion with Docker's rules, and garbage collection.
//!
//! Image records are the roots: every blob (manifest, config, layers) and
//! every snapshot (by chain ID) that some record reaches is kept, the rest
//! is removed by [`Store::gc`]. Containers pin their image: the engine never
//! deletes the record of an image a container uses (`rmi -f` only untags
//! it), so what a container runs on always stays reachable.
//!
//! Crash consistency: blobs and snapshots are written before the record
//! that refers to them, and a record is removed before what it reached, so
//! after a crash the store holds at worst unreferenced blobs and snapshots
//! (removed by the next gc) and half-written ingest files and temporary
//! snapshots (removed when the store is opened).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::manifest::{self, Parsed};
use crate::meta::ImageRecord;
use crate::reference::Reference;
use crate::snapshots::chain_ids;
use crate::{io_err, Error, Result, Store};

/// What garbage collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcStats {
    pub blobs: u64,
    pub snapshots: u64,
    /// Bytes freed (blob sizes plus the disk use of the snapshots).
    pub bytes: u64,
}

/// One line of `docker rmi`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Untagged(String),
    Deleted(String),
}

/// Disk use of a tree in bytes (allocated blocks; hard links counted once).
pub fn du(path: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(md) = fs::symlink_metadata(p) else {
            return 0;
        };
        let mut total = 0;
        if md.nlink() <= 1 || md.is_dir() || seen.insert((md.dev(), md.ino())) {
            total += md.blocks() * 512;
        }
        if md.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    total += walk(&e.path(), seen);
                }
            }
        }
        total
    }
    walk(path, &mut HashSet::new())
}

impl Store {
    pub(crate) fn gc_guard(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gc_lock.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn clean_leftovers(&self) -> Result<()> {
        let ingest = self.content.ingest_dir();
        for e in fs::read_dir(ingest)
            .map_err(|e| io_err(format!("listing {}", ingest.display()), e))?
            .flatten()
        {
            let _ = fs::remove_file(e.path());
        }
        let snaps = self.snapshots.dir();
        for e in fs::read_dir(snaps)
            .map_err(|e| io_err(format!("listing {}", snaps.display()), e))?
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    /// Writes an image record (unless one exists) and points `tags` at it.
    pub(crate) fn register(
        &self,
        id: &str,
        manifest_digest: &str,
        created: i64,
        created_nanos: u32,
        size: u64,
        tags: &[Reference],
    ) -> Result<()> {
        let hex = crate::content::hex_of(id)?.to_owned();
        let records = self.meta.records()?;
        let manifest = match records.get(&hex) {
            Some(r) if self.content.exists(&r.manifest) => r.manifest.clone(),
            _ => {
                self.meta.put_record(
                    &hex,
                    &ImageRecord {
                        manifest: manifest_digest.to_owned(),
                        created,
                        created_nanos,
                        size,
                        index: None,
                    },
                )?;
                manifest_digest.to_owned()
            }
        };
        if !tags.is_empty() {
            let lock = self.meta.lock()?;
            let mut repos = self.meta.repositories()?;
            for t in tags {
                repos.insert(t.to_string(), manifest.clone());
            }
            self.meta.save_repositories(&repos, &lock)?;
        }
        Ok(())
    }

    /// Remembers the index image `id` was loaded through.
    pub(crate) fn set_index(&self, id: &str, index: &str) -> Result<()> {
        let hex = crate::content::hex_of(id)?;
        if let Some(mut rec) = self.meta.records()?.remove(hex) {
            if rec.index.as_deref() != Some(index) {
                rec.index = Some(index.to_owned());
                self.meta.put_record(hex, &rec)?;
            }
        }
        Ok(())
    }

    /// The blobs an index reaches (itself, its manifests, their configs
    /// and layers), and whether all of them are stored.
    fn index_blobs(&self, index: &str) -> (Vec<String>, bool) {
        let mut out = vec![index.to_owned()];
        let Ok(bytes) = self.content.read(index) else {
            return (out, false);
        };
        let Ok(Parsed::Index(idx)) = manifest::parse(&bytes, "index") else {
            return (out, false);
        };
        let mut complete = true;
        for d in &idx.manifests {
            out.push(d.digest.clone());
            match self
                .content
                .read(&d.digest)
                .ok()
                .and_then(|b| manifest::parse(&b, "manifest").ok())
            {
                Some(Parsed::Manifest(m)) => {
                    out.push(m.config.digest.clone());
                    out.extend(m.layers.iter().map(|l| l.digest.clone()));
                }
                _ => complete = false,
            }
        }
        let complete = complete && out.iter().all(|d| self.content.exists(d));
        (out, complete)
    }

    /// For `save`: the kept index of image `id` when every blob it reaches
    /// is stored: (digest, media type, blobs).
    pub(crate) fn complete_index(&self, id: &str) -> Result<Option<(String, String, Vec<String>)>> {
        let hex = crate::content::hex_of(id)?;
        let Some(index) = self.meta.records()?.remove(hex).and_then(|r| r.index) else {
            return Ok(None);
        };
        let (blobs, complete) = self.index_blobs(&index);
        if !complete {
            return Ok(None);
        }
        let media = match manifest::parse(&self.content.read(&index)?, "index")? {
            Parsed::Index(i) => i
                .media_type
                .unwrap_or_else(|| manifest::OCI_INDEX.to_owned()),
            Parsed::Manifest(_) => return Ok(None),
        };
        Ok(Some((index, media, blobs)))
    }

    /// Blobs and chain IDs one record reaches.
    fn reach(&self, rec: &ImageRecord, blobs: &mut HashSet<String>, snaps: &mut HashSet<String>) {
        if let Some(index) = &rec.index {
            blobs.extend(self.index_blobs(index).0);
        }
        blobs.insert(rec.manifest.clone());
        let Ok(bytes) = self.content.read(&rec.manifest) else {
            return;
        };
        let Ok(Parsed::Manifest(m)) = manifest::parse(&bytes, "manifest") else {
            return;
        };
        blobs.insert(m.config.digest.clone());
        for l in &m.layers {
            blobs.insert(l.digest.clone());
        }
        if let Ok(cb) = self.content.read(&m.config.digest) {
            if let Ok(c) = manifest::parse_config(&cb, "config") {
                for id in chain_ids(&c.rootfs.diff_ids) {
                    if let Ok(h) = crate::content::hex_of(&id) {
                        snaps.insert(h.to_owned());
                    }
                }
            }
        }
    }

    /// Removes every blob and snapshot no image record reaches.
    pub fn gc(&self) -> Result<GcStats> {
        let _excl = self.gc_lock.write().unwrap_or_else(|e| e.into_inner());
        let mut blobs = HashSet::new();
        let mut snaps = HashSet::new();
        for rec in self.meta.records()?.values() {
            self.reach(rec, &mut blobs, &mut snaps);
        }
        let mut stats = GcStats::default();
        let dir = self.content.blobs_dir();
        for e in fs::read_dir(dir)
            .map_err(|e| io_err(format!("listing {}", dir.display()), e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if blobs.contains(&format!("sha256:{name}")) {
                continue;
            }
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(e.path()) {
                Ok(()) => {
                    stats.blobs += 1;
                    stats.bytes += len;
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_err(format!("removing {}", e.path().display()), err)),
            }
        }
        let dir = self.snapshots.dir();
        for e in fs::read_dir(dir)
            .map_err(|e| io_err(format!("listing {}", dir.display()), e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if snaps.contains(&name) || !crate::reference::is_full_hex_id(&name) {
                continue;
            }
            // Rename first so a crash never leaves a half-removed snapshot
            // under its chain ID.
            let doomed = dir.join(format!("tmp-gc-{name}"));
            fs::rename(e.path(), &doomed)
                .map_err(|err| io_err(format!("removing {}", e.path().display()), err))?;
            let size = du(&doomed);
            fs::remove_dir_all(&doomed)
                .map_err(|err| io_err(format!("removing {}", doomed.display()), err))?;
            stats.snapshots += 1;
            stats.bytes += size;
        }
        crate::meta::sync_dir(self.content.blobs_dir())?;
        crate::meta::sync_dir(dir)?;
        Ok(stats)
    }

    /// `docker rmi NAME`, with Docker's rules. `user(id)` tells whether a
    /// container uses image `id`: Some((container id, running)).
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        user: &dyn Fn(&str) -> Option<(String, bool)>,
    ) -> Result<Vec<Deleted>> {
        let records = self.meta.records()?;
        let lock = self.meta.lock()?;
        let mut repos = self.meta.repositories()?;
        let hex = crate::store::find_id(name, &records, &repos)?;
        let id = format!("sha256:{hex}");
        let short = &hex[..12];
        let manifest = records[&hex].manifest.clone();
        let tags: Vec<String> = repos
            .iter()
            .filter(|(_, m)| **m == manifest)
            .map(|(k, _)| k.clone())
            .collect();
        let by_ref = Reference::parse(name)
            .ok()
            .filter(|r| r.digest().is_none() && tags.contains(&r.to_string()));
        let used = user(&id);
        let mut out = Vec::new();
        let short_c = |c: &str| c.chars().take(12).collect::<String>();
        if let Some(r) = by_ref {
            if tags.len() == 1 && !force {
                if let Some((c, _)) = &used {
                    return Err(Error::Conflict(format!(
                        "unable to remove repository reference \"{name}\" (must force) - \
                         container {} is using its referenced image {short}",
                        short_c(c)
                    )));
                }
            }
            repos.remove(&r.to_string());
            self.meta.save_repositories(&repos, &lock)?;
            out.push(Deleted::Untagged(r.familiar()));
            if tags.len() > 1 || used.is_some() {
                return Ok(out);
            }
        } else {
            if let Some((c, running)) = &used {
                if *running {
                    return Err(Error::Conflict(format!(
                        "unable to delete {short} (cannot be forced) - image is being used by \
                         running container {}",
                        short_c(c)
                    )));
                }
                if !force {
                    return Err(Error::Conflict(format!(
                        "unable to delete {short} (must be forced) - image is being used by \
                         stopped container {}",
                        short_c(c)
                    )));
                }
            }
            let distinct: HashSet<String> = tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok().map(|r| r.repository()))
                .collect();
            if distinct.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "unable to delete {short} (must be forced) - image is referenced in \
                     multiple repositories"
                )));
            }
            for t in &tags {
                repos.remove(t);
                if let Ok(r) = Reference::parse(t) {
                    out.push(Deleted::Untagged(r.familiar()));
                }
            }
            if !tags.is_empty() {
                self.meta.save_repositories(&repos, &lock)?;
            }
            if used.is_some() {
                return Ok(out);
            }
        }
        self.meta.remove_record(&hex)?;
        drop(lock);
        out.push(Deleted::Deleted(id));
        self.gc()?;
        Ok(out)
    }

    /// Deletes images no container uses: dangling (untagged) ones, or all
    /// with `all`; `keep(id)` spares an image (filters). Then collects
    /// garbage. Returns the deletions and the bytes freed.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&str) -> bool,
        keep: &dyn Fn(&crate::ImageSummary) -> bool,
    ) -> Result<(Vec<Deleted>, u64)> {
        let mut out = Vec::new();
        {
            let lock = self.meta.lock()?;
            let mut repos = self.meta.repositories()?;
            let records = self.meta.records()?;
            let mut victims = Vec::new();
            for img in self.list()? {
                if in_use(&img.id) || (!all && !img.repo_tags.is_empty()) || keep(&img) {
                    continue;
                }
                let hex = crate::content::hex_of(&img.id)?.to_owned();
                if let Some(rec) = records.get(&hex) {
                    let gone: Vec<String> = repos
                        .iter()
                        .filter(|(_, m)| **m == rec.manifest)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for t in gone {
                        repos.remove(&t);
                        if let Ok(r) = Reference::parse(&t) {
                            out.push(Deleted::Untagged(r.familiar()));
                        }
                    }
                }
                victims.push((hex, img.id));
            }
            // Tags go first: a crash in between leaves records, not
            // tags that point nowhere.
            self.meta.save_repositories(&repos, &lock)?;
            for (hex, id) in victims {
                self.meta.remove_record(&hex)?;
                out.push(Deleted::Deleted(id));
            }
        }
        let stats = self.gc()?;
        Ok((out, stats.bytes))
    }
}

/// Everything `docker image inspect` and `docker history` show.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    /// "sha256:<config hex>".
    pub id: String,
    pub repo_tags: Vec<String>,
    /// "repo@sha256:<manifest>" for each tagged repository.
    pub repo_digests: Vec<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// The config blob as stored.
    pub config: serde_json::Value,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    /// Snapshot directories, lowest first.
    pub layers: Vec<std::path::PathBuf>,
}

impl Store {
    pub fn inspect(&self, name_or_id: &str) -> Result<ImageDetails> {
        let img = self.resolve(name_or_id)?;
        let records = self.meta.records()?;
        let hex = crate::content::hex_of(&img.id)?;
        let rec = records
            .get(hex)
            .ok_or_else(|| Error::ImageNotFound(name_or_id.to_owned()))?;
        let m = self.manifest(&rec.manifest)?;
        let config: serde_json::Value =
            serde_json::from_slice(&self.content.read(&m.config.digest)?).map_err(|e| {
                Error::InvalidImage(format!("config {} does not parse: {e}", m.config.digest))
            })?;
        let mut repo_digests: Vec<String> = img
            .repo_tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .map(|r| format!("{}@{}", r.familiar_name(), rec.manifest))
            .collect();
        repo_digests.dedup();
        Ok(ImageDetails {
            id: img.id,
            repo_tags: img.repo_tags,
            repo_digests,
            manifest_digest: rec.manifest.clone(),
            manifest_media_type: m.media_type().to_owned(),
            config,
            created: rec.created,
            size: rec.size,
            layers: img.layers,
        })
    }

    /// Disk use of the store: (blob bytes, snapshot bytes).
    pub fn disk_usage(&self) -> (u64, u64) {
        (du(self.content.blobs_dir()), du(self.snapshots.dir()))
    }
}
