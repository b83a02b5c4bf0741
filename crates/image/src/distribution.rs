//! What the registry client needs from the store: layers stored and
//! unpacked while they stream in, verified blobs, pulled images recorded,
//! images read back for a push, and where blobs came from (for
//! cross-repository mounts).
//!
//! A pulled layer is kept as the registry serves it (compressed), so its
//! digest is the one in the manifest and a push can send it back unchanged.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};

use crate::archive::{unpack_blob, Hashing};
use crate::chan_reader::{ChanReader, Chunks};
use crate::content::Ingest;
use crate::manifest::{self, Descriptor, Parsed};
use crate::reference::Reference;
use crate::{extract, io_err, Error, Result, Store};

/// Up to this many files and directories, an unpacked layer is made
/// durable by an fsync of each; above, by one syncfs.
const FSYNC_AT_MOST: usize = 64;

/// A layer as a pull stores it.
#[derive(Debug, Clone)]
pub struct LayerTarget {
    /// Digest of the blob as the registry serves it (from the manifest).
    pub digest: String,
    /// sha256 of the uncompressed tar (from the config).
    pub diff_id: String,
    /// Chain ID of the layer in its image.
    pub chain_id: String,
}

/// An image read back for a push.
#[derive(Debug, Clone)]
pub struct PushableImage {
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Store {
    /// True when the snapshot of `chain_id` is unpacked.
    pub fn has_snapshot(&self, chain_id: &str) -> bool {
        self.snapshots.path(chain_id).is_ok_and(|p| p.is_dir())
    }

    /// Stores a layer blob read from `reader` and, with `unpack`, unpacks
    /// it into its snapshot in the same pass. Nothing becomes visible until
    /// the blob matches `t.digest` (then it is kept, even if the unpacked
    /// tar turns out not to match `t.diff_id`) and the tar matches
    /// `t.diff_id` (then the snapshot is committed). Returns the
    /// uncompressed size (0 without `unpack`).
    pub fn store_layer(
        &self,
        mut chunks: impl Chunks,
        t: &LayerTarget,
        unpack: bool,
    ) -> Result<u64> {
        use sha2::Digest as _;
        let _gc = self.gc_guard();
        crate::content::hex_of(&t.digest)?;
        let mut ingest = self.content.ingest()?;
        if !unpack {
            while let Some(chunk) = chunks
                .next_chunk()
                .map_err(|e| io_err(format!("reading layer {}", t.digest), e))?
            {
                ingest
                    .write_all(&chunk)
                    .map_err(|e| io_err(format!("storing layer {}", t.digest), e))?;
            }
            ingest.commit(Some(&t.digest))?;
            return Ok(0);
        }
        let tmp = self.snapshots.tmp()?;
        // Two threads: this one decompresses, hashes the tar and unpacks
        // it; a helper stores and hashes the blob as it arrives and feeds
        // this one the same buffers. Hashing twice is most of the CPU a
        // pull takes.
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(64);
        let (unpacked, stored) = std::thread::scope(|sc| {
            let writer = sc.spawn(move || -> io::Result<Ingest> {
                let mut feed = Some(tx);
                while let Some(chunk) = chunks.next_chunk()? {
                    ingest.write_all(&chunk)?;
                    // An unpacker that gave up stops listening; the blob is
                    // still read to its end so its digest can be checked.
                    if feed.as_ref().is_some_and(|f| f.send(chunk).is_err()) {
                        feed = None;
                    }
                }
                ingest.start_tail_writeback();
                Ok(ingest)
            });
            let unpacked = (|| -> Result<(String, u64)> {
                let (_, plain) = extract::decompress_buffered(ChanReader::new(rx))
                    .map_err(|e| Error::InvalidLayer(format!("reading layer {}: {e}", t.digest)))?;
                let mut h = Hashing {
                    inner: plain,
                    hasher: Some(sha2::Sha256::new()),
                    n: 0,
                };
                extract::unpack_tar(&mut h, tmp.path())?;
                let hash = h
                    .hasher
                    .map(|x| hex::encode(x.finalize()))
                    .unwrap_or_default();
                Ok((format!("sha256:{hash}"), h.n))
            })();
            let stored = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the layer writer thread panicked")));
            (unpacked, stored)
        });
        // A reading error first (the download failed); then a digest
        // mismatch, which explains a broken tar better than the tar error.
        let ingest = stored.map_err(|e| io_err(format!("reading layer {}", t.digest), e))?;
        let (diff_id, size) = match unpacked {
            Err(e) => {
                ingest.commit(Some(&t.digest))?;
                return Err(e);
            }
            Ok(u) => u,
        };
        // A layer of few files: an fsync each (and of the blob), which
        // waits for this layer's data only. Else one syncfs makes the blob
        // and the layer durable, and waits for whatever else the
        // filesystem holds dirty (another daemon's writes too).
        if crate::snapshots::sync_tree(tmp.path(), FSYNC_AT_MOST)? {
            ingest.commit(Some(&t.digest))?;
        } else {
            let blob = ingest.finish(Some(&t.digest))?;
            crate::snapshots::sync_fs(tmp.path())?;
            blob.place()?;
            crate::meta::sync_dir(self.content.blobs_dir())?;
        }
        if diff_id != t.diff_id {
            return Err(Error::InvalidImage(format!(
                "layer {} unpacks to {diff_id} but the image config says diff ID {}; \
                 the image in the registry is inconsistent",
                t.digest, t.diff_id
            )));
        }
        tmp.commit_synced(&self.snapshots, &t.chain_id)?;
        Ok(size)
    }

    /// Unpacks a stored layer blob into its missing snapshot (a pull that
    /// stopped after the blob was verified). Returns the uncompressed size.
    pub fn unpack_stored_layer(&self, t: &LayerTarget) -> Result<u64> {
        let _gc = self.gc_guard();
        let u = unpack_blob(self.content.path(&t.digest)?, self.snapshots.tmp()?)?;
        if u.diff_id != t.diff_id {
            return Err(Error::InvalidImage(format!(
                "layer {} unpacks to {} but the image config says diff ID {}",
                t.digest, u.diff_id, t.diff_id
            )));
        }
        u.tmp.commit(&self.snapshots, &t.chain_id)?;
        Ok(u.size)
    }

    /// Uncompressed size of a stored layer whose snapshot exists.
    pub fn stored_layer_size(&self, digest: &str, diff_id: &str) -> Result<u64> {
        self.layer_size(digest, diff_id)
    }

    /// Stores `bytes` (a manifest, index or config) if they have digest
    /// `expected`; nothing is stored otherwise.
    pub fn put_verified(&self, bytes: &[u8], expected: &str) -> Result<()> {
        let _gc = self.gc_guard();
        let mut w = self.content.ingest()?;
        w.write_all(bytes)
            .map_err(|e| io_err("writing a blob".into(), e))?;
        w.commit(Some(expected)).map(|_| ())
    }

    /// The bytes of a stored blob.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        self.content.read(digest)
    }

    /// Records a pulled image whose blobs and snapshots are all stored, and
    /// points `tag` (if any) at it. `index` is the index or manifest list
    /// the manifest was picked from.
    /// `sizes` holds the uncompressed sizes the pull knows (by layer digest);
    /// the others are counted from the stored blobs.
    pub fn register_pulled(
        &self,
        manifest_digest: &str,
        index: Option<&str>,
        tag: Option<&Reference>,
        sizes: &std::collections::HashMap<String, u64>,
    ) -> Result<String> {
        let _gc = self.gc_guard();
        let m = self.manifest(manifest_digest)?;
        let config_bytes = self.content.read(&m.config.digest)?;
        let config = manifest::parse_config(&config_bytes, &format!("config {}", m.config.digest))?;
        let layers: Vec<&Descriptor> = m
            .layers
            .iter()
            .filter(|l| l.media_type.is_empty() || manifest::is_layer(&l.media_type))
            .collect();
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(Error::InvalidImage(format!(
                "manifest {manifest_digest} lists {} layers but its config {} diff IDs",
                layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let chains = crate::snapshots::chain_ids(&config.rootfs.diff_ids);
        let mut size = 0;
        for (i, l) in layers.iter().enumerate() {
            if !self.has_snapshot(&chains[i]) {
                return Err(Error::InvalidImage(format!(
                    "layer {} of manifest {manifest_digest} is not unpacked",
                    l.digest
                )));
            }
            size += match sizes.get(&l.digest) {
                Some(n) => *n,
                None => self.layer_size(&l.digest, &config.rootfs.diff_ids[i])?,
            };
        }
        let (created, nanos) = crate::archive::created_of(&config);
        let tags: Vec<Reference> = tag.into_iter().cloned().collect();
        self.register(
            &m.config.digest,
            manifest_digest,
            created,
            nanos,
            size,
            &tags,
        )?;
        if let Some(idx) = index {
            self.set_index(&m.config.digest, idx)?;
        }
        Ok(m.config.digest.clone())
    }

    /// The manifest digest `reference` points at, if it is tagged here.
    pub fn tagged_manifest(&self, reference: &Reference) -> Option<String> {
        self.meta
            .repositories()
            .ok()?
            .get(&reference.to_string())
            .cloned()
    }

    /// The tags of `repository` ("host/repo") stored here, sorted.
    pub fn repository_tags(&self, repository: &Reference) -> Result<Vec<String>> {
        let want = repository.repository();
        let mut tags: Vec<String> = self
            .meta
            .repositories()?
            .keys()
            .filter_map(|k| Reference::parse(k).ok())
            .filter(|r| r.repository() == want && r.digest().is_none())
            .filter_map(|r| r.tag().map(str::to_owned))
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// An image's manifest and blobs, for a push.
    pub fn pushable(&self, name: &str) -> Result<PushableImage> {
        let records = self.meta.records()?;
        let repos = self.meta.repositories()?;
        let hex = crate::store::find_id(name, &records, &repos)?;
        let digest = records[&hex].manifest.clone();
        let bytes = self.content.read(&digest)?;
        let Parsed::Manifest(m) = manifest::parse(&bytes, &format!("manifest {digest}"))? else {
            return Err(Error::InvalidImage(format!(
                "image {name}: manifest {digest} is an index"
            )));
        };
        for d in m.layers.iter().chain(std::iter::once(&m.config)) {
            if !self.content.exists(&d.digest) {
                return Err(Error::InvalidImage(format!(
                    "image {name}: blob {} is not stored here (the image was made from \
                     layers this store no longer has); pull or build it again",
                    d.digest
                )));
            }
        }
        Ok(PushableImage {
            manifest_digest: digest,
            media_type: m.media_type().to_owned(),
            manifest_bytes: bytes,
            config: m.config,
            layers: m.layers,
        })
    }

    /// Opens a stored blob for reading (a push streams it).
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.content.path(digest)?;
        File::open(&p).map_err(|e| io_err(format!("opening blob {}", p.display()), e))
    }

    /// Repositories ("host/repo") blob `digest` is known to be in.
    pub fn blob_sources(&self, digest: &str) -> Vec<String> {
        self.read_sources().remove(digest).unwrap_or_default()
    }

    /// Remembers that the blobs `digests` are in repository `repo` ("host/repo").
    pub fn add_blob_sources(&self, digests: &[String], repo: &str) -> Result<()> {
        let lock = self.meta.lock()?;
        let mut all = self.read_sources();
        for d in digests {
            let v = all.entry(d.clone()).or_default();
            if !v.iter().any(|r| r == repo) {
                v.push(repo.to_owned());
                if v.len() > 8 {
                    v.remove(0);
                }
            }
        }
        let bytes = serde_json::to_vec(&all)
            .map_err(|e| io_err("recording blob sources".into(), io::Error::other(e)))?;
        let written = crate::meta::atomic_write(&self.sources_path(), &bytes);
        drop(lock);
        written
    }

    fn sources_path(&self) -> std::path::PathBuf {
        self.root.join("images/blob-sources.json")
    }

    fn read_sources(&self) -> BTreeMap<String, Vec<String>> {
        std::fs::read(self.sources_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}
