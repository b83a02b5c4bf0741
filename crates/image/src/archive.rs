//! `save` and `load`: image archives.
//!
//! `save` writes Docker's current archive format (Docker 25+), which is at
//! the same time an OCI image layout: `blobs/sha256/<hex>` (layers, configs,
//! manifests), `index.json`, `oci-layout`, plus Docker's `manifest.json` and
//! `repositories`. Older Docker releases read it through `manifest.json`,
//! skopeo through `index.json` (untar it and use `oci:DIR`). It is streamed
//! blob by blob, never held in memory.
//!
//! `load` reads all of these: Docker archives old (`<id>/layer.tar`,
//! symlinked duplicates) and new, and tars of OCI layouts (skopeo `oci:`).
//! The tar is read once, in order; every file is stored as a blob while it
//! is hashed, and each blob that looks like a layer is unpacked into its own
//! temporary snapshot by a worker thread at once, several layers at a time,
//! while the stream goes on. Once the stream's index/manifest files are read,
//! the layers are checked against the configs' diff IDs, the snapshots are
//! committed by chain ID, and the images are recorded and tagged last.
//! Paths that `manifest.json` or `index.json` name are looked up among the
//! archive's own entries only; nothing is ever written by archive path.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::chan_reader::ChanReader;
use crate::content::hex_of;
use crate::manifest::{self, Descriptor, Manifest, Parsed};
use crate::reference::Reference;
use crate::snapshots::{chain_ids, TmpSnapshot};
use crate::{extract, io_err, Error, Result, Store};

/// One image a load made or updated.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// "sha256:<config hex>".
    pub id: String,
    /// Familiar names it was tagged with.
    pub tags: Vec<String>,
}

/// Docker's `manifest.json` entry.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// A layer unpacked into a temporary snapshot.
pub(crate) struct Unpacked {
    pub tmp: TmpSnapshot,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Uncompressed size.
    pub size: u64,
}

/// Counts (and, with a hasher, hashes) what is read through it.
pub(crate) struct Hashing<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Option<Sha256>,
    pub(crate) n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.n += n as u64;
        Ok(n)
    }
}

/// Unpacks a layer blob (plain, gzip or zstd) into `tmp`, computing its diff ID.
pub(crate) fn unpack_blob(path: PathBuf, tmp: TmpSnapshot) -> Result<Unpacked> {
    let f = File::open(&path).map_err(|e| io_err(format!("opening {}", path.display()), e))?;
    unpack_reader(io::BufReader::with_capacity(256 << 10, f), tmp, true)
}

/// Unpacks a layer stream into `tmp`. The diff ID is computed for
/// compressed streams, and for plain ones only with `hash_plain` (else it
/// is left empty: the caller knows it, the stream's own digest).
fn unpack_reader(r: impl Read, tmp: TmpSnapshot, hash_plain: bool) -> Result<Unpacked> {
    let (c, plain) =
        extract::decompress(r).map_err(|e| Error::InvalidLayer(format!("reading a layer: {e}")))?;
    let hash = hash_plain || c != extract::Compression::None;
    let mut h = Hashing {
        inner: plain,
        hasher: hash.then(Sha256::new),
        n: 0,
    };
    extract::unpack_tar(&mut h, tmp.path())?;
    Ok(Unpacked {
        tmp,
        diff_id: h
            .hasher
            .map(|x| format!("sha256:{}", hex::encode(x.finalize())))
            .unwrap_or_default(),
        size: h.n,
    })
}

/// Archive paths: "./a//b/../c" -> "a/c"; None when it climbs out.
fn norm(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// Does this look like the start of a layer (tar, gzip or zstd)?
fn looks_like_layer(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

const SMALL_FILES: [&str; 4] = ["manifest.json", "repositories", "index.json", "oci-layout"];

/// Unpack workers, at most `limit` at a time, keyed by the digest of the
/// blob they unpack (known once its stream has been read).
struct Workers {
    limit: usize,
    running: Vec<(String, JoinHandle<Result<Unpacked>>)>,
    done: HashMap<String, Result<Unpacked>>,
}

impl Workers {
    /// Waits for the oldest worker when `limit` run already.
    fn make_room(&mut self) {
        if self.running.len() >= self.limit {
            let (d, h) = self.running.remove(0);
            self.finished(d, h);
        }
    }
    fn finished(&mut self, digest: String, h: JoinHandle<Result<Unpacked>>) {
        let mut r = join(h);
        if let Ok(u) = &mut r {
            if u.diff_id.is_empty() {
                u.diff_id = digest.clone(); // plain tar: its digest is its diff ID
            }
        }
        self.done.entry(digest).or_insert(r);
    }
    fn finish(&mut self) {
        for (d, h) in std::mem::take(&mut self.running) {
            self.finished(d, h);
        }
    }
}

fn join(h: JoinHandle<Result<Unpacked>>) -> Result<Unpacked> {
    h.join()
        .unwrap_or_else(|_| Err(Error::InvalidLayer("a layer unpack worker panicked".into())))
}

/// An image found in the archive, before it is committed.
struct Found {
    manifest_digest: Option<String>,
    /// The index or manifest list the manifest was picked from.
    index: Option<String>,
    manifest: Manifest,
    config_bytes: Vec<u8>,
    tags: Vec<Reference>,
}

impl Store {
    /// `docker load`: reads a Docker archive or an OCI layout tar from
    /// `reader` (the tar itself may be gzip or zstd compressed).
    pub fn load(&self, reader: impl Read) -> Result<Vec<LoadedImage>> {
        let _gc = self.gc_guard();
        let (_, plain) = extract::decompress(reader)
            .map_err(|e| Error::InvalidImage(format!("reading the archive: {e}")))?;
        let bad_tar = |e: io::Error| {
            Error::InvalidImage(format!(
                "reading the archive: {e} (is it a tar made by `docker save` or an OCI layout?)"
            ))
        };
        // Archive path -> blob digest; path -> small file content; symlinks.
        let mut files: HashMap<String, String> = HashMap::new();
        let mut small: HashMap<String, Vec<u8>> = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut workers = Workers {
            limit: cores.max(2),
            running: Vec::new(),
            done: HashMap::new(),
        };
        let mut pending = Vec::new();
        let mut archive = tar::Archive::new(plain);
        for entry in archive.entries().map_err(bad_tar)? {
            let mut entry = entry.map_err(bad_tar)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = norm(&raw) else {
                return Err(Error::InvalidImage(format!(
                    "archive entry {raw:?} points outside the archive"
                )));
            };
            match entry.header().entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        match path.rfind('/') {
                            Some(i) => format!("{}/{target}", &path[..i]),
                            None => target.clone(),
                        }
                    } else {
                        target.clone()
                    };
                    if target.starts_with('/') {
                        return Err(Error::InvalidImage(format!(
                            "archive entry {raw:?} links to {target:?}, outside the archive"
                        )));
                    }
                    let Some(t) = norm(&base) else {
                        return Err(Error::InvalidImage(format!(
                            "archive entry {raw:?} links to {target:?}, outside the archive"
                        )));
                    };
                    links.push((path, t));
                    continue;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                _ => continue,
            }
            if SMALL_FILES.contains(&path.as_str()) {
                if entry.size() > manifest::MAX_JSON {
                    return Err(Error::InvalidImage(format!(
                        "{path} in the archive is {} bytes, more than the {}-byte limit",
                        entry.size(),
                        manifest::MAX_JSON
                    )));
                }
                let mut b = Vec::new();
                entry.read_to_end(&mut b).map_err(bad_tar)?;
                small.insert(path, b);
                continue;
            }
            // A blob: store it (verified against its name under blobs/).
            let expected = path
                .strip_prefix("blobs/sha256/")
                .map(|h| format!("sha256:{h}"));
            if let Some(d) = &expected {
                hex_of(d)?;
            }
            let mut ingest = self.content.ingest()?;
            let mut head = vec![0u8; 512];
            let mut n = 0;
            while n < head.len() {
                let k = entry.read(&mut head[n..]).map_err(bad_tar)?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            head.truncate(n);
            ingest
                .write_all(&head)
                .map_err(|e| io_err("writing a blob".into(), e))?;
            // A layer is unpacked by a worker fed while the blob is written,
            // unless its snapshot is known to exist (a base layer we have).
            let known = match &expected {
                Some(d) => self.snapshots.path(d)?.is_dir(),
                None => false,
            };
            let mut feed = None;
            if looks_like_layer(&head) && !known {
                workers.make_room();
                let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(32);
                let tmp = self.snapshots.tmp()?;
                let _ = tx.send(bytes::Bytes::from(head.clone()));
                let reader = ChanReader::new(rx);
                feed = Some((
                    Some(tx),
                    std::thread::spawn(move || unpack_reader(reader, tmp, false)),
                ));
            }
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let k = entry.read(&mut buf).map_err(bad_tar)?;
                if k == 0 {
                    break;
                }
                ingest
                    .write_all(&buf[..k])
                    .map_err(|e| io_err("writing a blob".into(), e))?;
                if let Some((tx @ Some(_), _)) = &mut feed {
                    // A worker that gave up (not a layer after all) stops listening.
                    if tx
                        .as_ref()
                        .is_some_and(|t| t.send(bytes::Bytes::copy_from_slice(&buf[..k])).is_err())
                    {
                        *tx = None;
                    }
                }
            }
            let feed = feed.map(|(tx, h)| {
                drop(tx); // end of the worker's stream
                h
            });
            let blob = ingest.finish(expected.as_deref()).map_err(|e| match e {
                Error::InvalidLayer(m) => Error::InvalidImage(format!("{path}: {m}")),
                e => e,
            })?;
            let digest = blob.digest.clone();
            pending.push(blob);
            if let Some(h) = feed {
                workers.running.push((digest.clone(), h));
            }
            files.insert(path, digest);
        }
        workers.finish();
        // One syncfs makes every blob and unpacked layer durable; then the
        // blobs are moved into place.
        crate::snapshots::sync_fs(self.content.ingest_dir())?;
        for blob in pending {
            blob.place()?;
        }
        crate::meta::sync_dir(self.content.blobs_dir())?;
        for (from, to) in links {
            if let Some(d) = files.get(&to).cloned() {
                files.insert(from, d);
            }
        }

        let found = if let Some(idx) = small.get("index.json") {
            self.found_in_layout(idx, &files, small.get("manifest.json"))?
        } else if let Some(m) = small.get("manifest.json") {
            self.found_in_docker_archive(m, &files)?
        } else {
            return Err(Error::InvalidImage(
                "the archive has neither manifest.json nor index.json: \
                 give a tar made by `docker save`, `pier save` or an OCI layout"
                    .into(),
            ));
        };
        let mut unpacked = workers.done;
        let mut out = Vec::new();
        for f in found {
            out.push(self.commit_found(f, &mut unpacked)?);
        }

        Ok(out)
    }

    fn found_in_docker_archive(
        &self,
        manifest_json: &[u8],
        files: &HashMap<String, String>,
    ) -> Result<Vec<Found>> {
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(manifest_json)
            .map_err(|e| Error::InvalidImage(format!("manifest.json is not valid: {e}")))?;
        let lookup = |p: &str| -> Result<String> {
            norm(p).and_then(|n| files.get(&n).cloned()).ok_or_else(|| {
                Error::InvalidImage(format!(
                    "manifest.json refers to {p:?}, which is not in the archive"
                ))
            })
        };
        let mut out = Vec::new();
        for e in entries {
            let config_digest = lookup(&e.config)?;
            let config_bytes = self.content.read(&config_digest)?;
            manifest::parse_config(&config_bytes, &format!("config {}", e.config))?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let d = lookup(l)?;
                let size = std::fs::metadata(self.content.path(&d)?)
                    .map(|m| m.len())
                    .unwrap_or(0);
                let media = match self.blob_compression(&d)? {
                    extract::Compression::Gzip => manifest::DOCKER_LAYER_GZIP,
                    extract::Compression::Zstd => manifest::OCI_LAYER_ZSTD,
                    extract::Compression::None => manifest::DOCKER_LAYER,
                };
                layers.push(Descriptor {
                    media_type: media.into(),
                    digest: d,
                    size,
                    platform: None,
                    annotations: None,
                });
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(manifest::DOCKER_MANIFEST.into()),
                config: Descriptor {
                    media_type: manifest::DOCKER_CONFIG.into(),
                    digest: config_digest,
                    size: config_bytes.len() as u64,
                    platform: None,
                    annotations: None,
                },
                layers,
            };
            let mut tags = Vec::new();
            for t in e.repo_tags.unwrap_or_default() {
                tags.push(Reference::parse(&t)?);
            }
            out.push(Found {
                manifest_digest: None,
                index: None,
                manifest,
                config_bytes,
                tags,
            });
        }
        Ok(out)
    }

    fn found_in_layout(
        &self,
        index_json: &[u8],
        files: &HashMap<String, String>,
        manifest_json: Option<&Vec<u8>>,
    ) -> Result<Vec<Found>> {
        let Parsed::Index(idx) = manifest::parse(index_json, "index.json")? else {
            return Err(Error::InvalidImage(
                "index.json is not an image index".into(),
            ));
        };
        // Docker's manifest.json, when present, carries the tags.
        let mut docker_tags: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(m) = manifest_json {
            let entries: Vec<ArchiveEntry> = serde_json::from_slice(m)
                .map_err(|e| Error::InvalidImage(format!("manifest.json is not valid: {e}")))?;
            for e in entries {
                if let Some(d) = norm(&e.config).and_then(|n| files.get(&n)) {
                    docker_tags
                        .entry(d.clone())
                        .or_default()
                        .extend(e.repo_tags.unwrap_or_default());
                }
            }
        }
        let in_archive = |d: &str| -> Result<Vec<u8>> {
            let h = hex_of(d)?;
            if !files.contains_key(&format!("blobs/sha256/{h}")) && !self.content.exists(d) {
                return Err(Error::InvalidImage(format!(
                    "index.json refers to {d}, which is not in the archive"
                )));
            }
            self.content.read(d)
        };
        let mut out = Vec::new();
        for desc in &idx.manifests {
            let mut names: Vec<String> = Vec::new();
            if let Some(a) = &desc.annotations {
                if let Some(n) = a.get("io.containerd.image.name") {
                    names.push(n.clone());
                } else if let Some(n) = a.get("org.opencontainers.image.ref.name") {
                    // A bare tag ("latest", as skopeo writes) names no repository.
                    if n.contains('/') || n.contains(':') {
                        names.push(n.clone());
                    }
                }
            }
            let mut digest = desc.digest.clone();
            let mut bytes = in_archive(&digest)?;
            let mut parsed = manifest::parse(&bytes, &format!("manifest {digest}"))?;
            // An index or manifest list: take the host's platform (and
            // remember the outermost index, so `save` can write it back).
            let top_index = matches!(parsed, Parsed::Index(_)).then(|| digest.clone());
            let mut depth = 0;
            while let Parsed::Index(inner) = &parsed {
                depth += 1;
                let pick = manifest::pick_platform(inner)
                    .filter(|_| depth < 4)
                    .ok_or_else(|| {
                        Error::InvalidImage(format!(
                            "index {digest} has no manifest for linux/{}",
                            crate::store::go_arch()
                        ))
                    })?;
                digest = pick.digest.clone();
                bytes = in_archive(&digest)?;
                parsed = manifest::parse(&bytes, &format!("manifest {digest}"))?;
            }
            let Parsed::Manifest(m) = parsed else {
                unreachable!()
            };
            let config_bytes = in_archive(&m.config.digest)?;
            manifest::parse_config(&config_bytes, &format!("config {}", m.config.digest))?;
            for l in &m.layers {
                in_archive(&l.digest)?;
            }
            names.extend(
                docker_tags
                    .get(&m.config.digest)
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut tags = Vec::new();
            for n in names {
                let r = Reference::parse(&n)?;
                if !tags.contains(&r) {
                    tags.push(r);
                }
            }
            out.push(Found {
                manifest_digest: Some(digest),
                index: top_index,
                manifest: m,
                config_bytes,
                tags,
            });
        }
        Ok(out)
    }

    fn blob_compression(&self, digest: &str) -> Result<extract::Compression> {
        let p = self.content.path(digest)?;
        let f = File::open(&p).map_err(|e| io_err(format!("opening {}", p.display()), e))?;
        extract::decompress(f)
            .map(|(c, _)| c)
            .map_err(|e| io_err(format!("reading {}", p.display()), e))
    }

    /// Checks a found image's layers, commits their snapshots, stores the
    /// manifest, writes the record and the tags.
    fn commit_found(
        &self,
        f: Found,
        unpacked: &mut HashMap<String, Result<Unpacked>>,
    ) -> Result<LoadedImage> {
        let config = manifest::parse_config(&f.config_bytes, "the image config")?;
        let diff_ids = &config.rootfs.diff_ids;
        let layers: Vec<&Descriptor> = f
            .manifest
            .layers
            .iter()
            .filter(|l| l.media_type.is_empty() || manifest::is_layer(&l.media_type))
            .collect();
        if layers.len() != diff_ids.len() {
            return Err(Error::InvalidImage(format!(
                "the manifest lists {} layers but the config {} diff IDs",
                layers.len(),
                diff_ids.len()
            )));
        }
        let chains = chain_ids(diff_ids);
        let mut size = 0u64;
        for (i, l) in layers.iter().enumerate() {
            let snap = self.snapshots.path(&chains[i])?;
            // Layers the workers unpacked were synced with the blobs.
            let (u, synced) = match unpacked.remove(&l.digest) {
                Some(r) => (Some(r?), true),
                None if snap.is_dir() => (None, true),
                None => (
                    Some(unpack_blob(
                        self.content.path(&l.digest)?,
                        self.snapshots.tmp()?,
                    )?),
                    false,
                ),
            };
            let layer_size = match u {
                Some(u) => {
                    if u.diff_id != diff_ids[i] {
                        return Err(Error::InvalidImage(format!(
                            "layer {} unpacks to {} but the config says diff ID {}",
                            l.digest, u.diff_id, diff_ids[i]
                        )));
                    }
                    if synced {
                        u.tmp.commit_synced(&self.snapshots, &chains[i])?;
                    } else {
                        u.tmp.commit(&self.snapshots, &chains[i])?;
                    }
                    u.size
                }
                None => self.layer_size(&l.digest, &diff_ids[i])?,
            };
            size += layer_size;
        }
        let manifest_digest = match f.manifest_digest {
            Some(d) => d,
            None => {
                let b = serde_json::to_vec(&f.manifest).expect("manifest serialises");
                self.content.put(&b)?.0
            }
        };
        let (created, created_nanos) = created_of(&config);
        let id = f.manifest.config.digest.clone();
        self.register(&id, &manifest_digest, created, created_nanos, size, &f.tags)?;
        if let Some(index) = &f.index {
            self.set_index(&id, index)?;
        }
        Ok(LoadedImage {
            id,
            tags: f.tags.iter().map(|t| t.familiar()).collect(),
        })
    }

    /// Uncompressed size of a layer blob whose snapshot exists: the blob's
    /// own size when it is the uncompressed tar, else counted by reading it.
    pub(crate) fn layer_size(&self, digest: &str, diff_id: &str) -> Result<u64> {
        let p = self.content.path(digest)?;
        if digest == diff_id {
            return std::fs::metadata(&p)
                .map(|m| m.len())
                .map_err(|e| io_err(format!("reading {}", p.display()), e));
        }
        let f = File::open(&p).map_err(|e| io_err(format!("opening {}", p.display()), e))?;
        let (_, mut r) =
            extract::decompress(f).map_err(|e| io_err(format!("reading {}", p.display()), e))?;
        io::copy(&mut r, &mut io::sink()).map_err(|e| io_err(format!("reading {}", p.display()), e))
    }

    /// `docker save`: writes the images `names` (names or IDs) as one
    /// archive to `w`, streaming the blobs.
    pub fn save(&self, names: &[String], w: impl Write) -> Result<()> {
        let _gc = self.gc_guard();
        let records = self.meta.records()?;
        let repos = self.meta.repositories()?;
        // manifest digest -> tags to write; in the order asked.
        let mut picked: Vec<(String, String, Vec<Reference>)> = Vec::new(); // (id hex, manifest, tags)
        for name in names {
            let hex = crate::store::find_id(name, &records, &repos)?;
            let tag = match Reference::parse(name) {
                Ok(r) if r.digest().is_none() && repos.contains_key(&r.to_string()) => Some(r),
                _ => None,
            };
            match picked.iter_mut().find(|(h, _, _)| *h == hex) {
                Some((_, _, tags)) => tags.extend(tag),
                None => picked.push((
                    hex.clone(),
                    records[&hex].manifest.clone(),
                    tag.into_iter().collect(),
                )),
            }
        }
        let mut tar = tar::Builder::new(w);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut written: std::collections::HashSet<String> = Default::default();
        let mut index = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let add_dir = |tar: &mut tar::Builder<_>, name: &str| -> Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, name, io::empty())
                .map_err(|e| io_err("writing the archive".into(), e))
        };
        add_dir(&mut tar, "blobs")?;
        add_dir(&mut tar, "blobs/sha256")?;
        for (hex, manifest_digest, tags) in &picked {
            let mbytes = self.content.read(manifest_digest)?;
            let Parsed::Manifest(m) = manifest::parse(&mbytes, "stored manifest")? else {
                return Err(Error::InvalidImage(format!(
                    "image sha256:{hex}: stored manifest is an index"
                )));
            };
            let mut blobs: Vec<String> = m.layers.iter().map(|l| l.digest.clone()).collect();
            blobs.push(m.config.digest.clone());
            blobs.push(manifest_digest.clone());
            // A kept index goes along when every blob it reaches is here.
            let hexid = format!("sha256:{hex}");
            let kept_index = self.complete_index(&hexid)?;
            if let Some((_, _, extra)) = &kept_index {
                blobs.extend(extra.iter().cloned());
            }
            for d in &blobs {
                if !written.insert(d.to_owned()) {
                    continue;
                }
                let p = self.content.path(d)?;
                let f = File::open(&p)
                    .map_err(|e| io_err(format!("opening blob {}", p.display()), e))?;
                let len = f
                    .metadata()
                    .map_err(|e| io_err(format!("reading {}", p.display()), e))?
                    .len();
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(len);
                h.set_mode(0o644);
                h.set_mtime(0);
                tar.append_data(&mut h, format!("blobs/sha256/{}", hex_of(d)?), f)
                    .map_err(|e| io_err("writing the archive".into(), e))?;
            }
            let repo_tags: Vec<String> = tags.iter().map(|t| t.familiar()).collect();
            let kept = kept_index.map(|(d, media, _)| {
                let len = self
                    .content
                    .path(&d)
                    .ok()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len());
                (d, media, len)
            });
            let mut one = |ann: Option<&Reference>| {
                let mut a = BTreeMap::new();
                if let Some(t) = ann {
                    a.insert("io.containerd.image.name".to_owned(), t.to_string());
                    if let Some(tag) = t.tag() {
                        a.insert(
                            "org.opencontainers.image.ref.name".to_owned(),
                            tag.to_owned(),
                        );
                    }
                }
                let (media_type, digest, size) = match &kept {
                    Some((d, media, len)) => (media.clone(), d.clone(), *len),
                    None => (
                        m.media_type().to_owned(),
                        manifest_digest.clone(),
                        mbytes.len() as u64,
                    ),
                };
                index.push(Descriptor {
                    media_type,
                    digest,
                    size,
                    platform: None,
                    annotations: (!a.is_empty()).then_some(a),
                });
            };
            if tags.is_empty() {
                one(None);
            }
            for t in tags {
                one(Some(t));
                let (repo, tag) = split_familiar(&t.familiar());
                repositories
                    .entry(repo)
                    .or_default()
                    .insert(tag, hex.clone());
            }
            docker_manifest.push(ArchiveEntry {
                config: format!("blobs/sha256/{}", hex_of(&m.config.digest)?),
                repo_tags: Some(repo_tags),
                layers: m
                    .layers
                    .iter()
                    .map(|l| Ok(format!("blobs/sha256/{}", hex_of(&l.digest)?)))
                    .collect::<Result<_>>()?,
            });
        }
        let small = |tar: &mut tar::Builder<_>, name: &str, bytes: Vec<u8>| -> Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            tar.append_data(&mut h, name, &bytes[..])
                .map_err(|e| io_err("writing the archive".into(), e))
        };
        let index = manifest::Index {
            schema_version: 2,
            media_type: Some(manifest::OCI_INDEX.into()),
            manifests: index,
        };
        small(
            &mut tar,
            "index.json",
            serde_json::to_vec(&index).expect("serialises"),
        )?;
        small(
            &mut tar,
            "manifest.json",
            serde_json::to_vec(&docker_manifest).expect("serialises"),
        )?;
        small(
            &mut tar,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )?;
        if !repositories.is_empty() {
            small(
                &mut tar,
                "repositories",
                serde_json::to_vec(&repositories).expect("serialises"),
            )?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| io_err("writing the archive".into(), e))
    }
}

fn split_familiar(s: &str) -> (String, String) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (s[..slash + i].to_owned(), s[slash + i + 1..].to_owned()),
        None => (s.to_owned(), "latest".to_owned()),
    }
}

/// The config's creation time as (unix seconds, nanos); now when absent.
pub(crate) fn created_of(c: &manifest::ConfigHead) -> (i64, u32) {
    if let Some(secs) = c
        .created
        .as_deref()
        .and_then(pier_common::time::parse_rfc3339)
    {
        let nanos = c
            .created
            .as_deref()
            .and_then(|s| s.split_once('.'))
            .map(|(_, f)| {
                let digits: String = f
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .take(9)
                    .collect();
                format!("{digits:0<9}").parse::<u32>().unwrap_or(0)
            })
            .unwrap_or(0);
        return (secs, nanos);
    }
    pier_common::time::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(norm("./a//b/../c").as_deref(), Some("a/c"));
        assert_eq!(norm("../etc/passwd"), None);
        assert_eq!(norm("a/../../x"), None);
        assert_eq!(norm("/blobs/sha256/x").as_deref(), Some("blobs/sha256/x"));
    }
}
