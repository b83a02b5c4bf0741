//! Pull: resolve the reference to one image manifest, then fetch the
//! config and every missing layer, several at a time, each stored and
//! unpacked while it downloads. The image is recorded only when every
//! layer is verified; layers verified before a failure stay stored, so a
//! retry fetches only the rest.

use std::sync::Arc;

use bytes::Bytes;
use pier_image::manifest::{self, Descriptor, Manifest, Parsed};
use pier_image::reference::Reference;
use pier_image::{LayerTarget, Store};

use crate::auth::Credentials;
use crate::client::{Client, Registry};
use crate::error::{Error, Result};
use crate::fetch::{self, DownloadError};
use crate::media::{self, Platform};
use crate::progress::{short_id, Message};

/// Where progress lines go.
pub type Progress = Arc<dyn Fn(Message) + Send + Sync>;

/// A reference resolved to one image manifest (nothing stored yet).
pub struct Resolved {
    registry: Registry,
    pub reference: Reference,
    /// Digest the tag or digest points at (an index's, for multi-platform images).
    pub digest: String,
    index: Option<(String, Vec<u8>)>,
    manifest_digest: String,
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// "sha256:..." of the image config.
    pub id: String,
    pub digest: String,
    /// True when nothing had to be fetched and the tag already pointed here.
    pub up_to_date: bool,
}

/// Resolves `reference` (tag or digest) for `platform`: fetches the
/// manifest and, for an index, the platform's manifest. Errors here come
/// before any progress (dockerd answers them with an HTTP status).
pub async fn resolve(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
    creds: Credentials,
) -> Result<Resolved> {
    let registry = client.registry(reference.domain(), creds)?;
    let repo = reference.path().to_owned();
    let wanted = reference
        .digest()
        .or(reference.tag())
        .unwrap_or(pier_image::reference::DEFAULT_TAG)
        .to_owned();
    let what = format!("manifest for {}", reference.familiar());
    let top = fetch::manifest(&registry, &repo, &wanted, &what).await?;
    let (index, m) = match top.parsed {
        Parsed::Manifest(m) => (None, (top.digest.clone(), top.bytes, m)),
        Parsed::Index(idx) => {
            let pick = media::pick(&idx, platform).ok_or_else(|| {
                let have: Vec<String> = idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| match &p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    })
                    .collect();
                Error::NotFound(format!(
                    "no matching manifest for {platform} in the manifest list entries of {} \
                     (it has: {}); pick one with --platform",
                    reference.familiar(),
                    have.join(", ")
                ))
            })?;
            let inner = fetch::manifest(
                &registry,
                &repo,
                &pick.digest,
                &format!("manifest {} of {}", pick.digest, reference.familiar()),
            )
            .await?;
            let Parsed::Manifest(m) = inner.parsed else {
                return Err(Error::Invalid(format!(
                    "manifest {} of {} is an index inside an index, which pier does not follow",
                    pick.digest,
                    reference.familiar()
                )));
            };
            (
                Some((top.digest.clone(), top.bytes)),
                (inner.digest, inner.bytes, m),
            )
        }
    };
    for l in &m.2.layers {
        if !manifest::is_layer(&l.media_type) {
            return Err(Error::Invalid(format!(
                "layer {} of {} has media type {:?}, which pier cannot unpack",
                l.digest,
                reference.familiar(),
                l.media_type
            )));
        }
    }
    Ok(Resolved {
        registry,
        reference: reference.clone(),
        digest: top.digest,
        index,
        manifest_digest: m.0,
        manifest_bytes: m.1,
        manifest: m.2,
    })
}

/// The chunks a download sends, as they came off the connection; an
/// error is sticky.
struct DownloadChunks {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    failed: Option<String>,
}

impl pier_image::Chunks for DownloadChunks {
    fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        if let Some(e) = &self.failed {
            return Err(std::io::Error::other(e.clone()));
        }
        match self.rx.blocking_recv() {
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => {
                self.failed = Some(e.clone());
                Err(std::io::Error::other(e))
            }
            None => Ok(None),
        }
    }
}

enum Plan {
    Present,
    UnpackStored,
    Download { unpack: bool },
}

impl Resolved {
    /// The repository as pull messages show it ("library/busybox").
    fn repo(&self) -> &str {
        self.reference.path()
    }

    /// Fetches what the store lacks and records the image; ends with
    /// docker's "Status: ..." line.
    pub async fn fetch(self, store: Arc<Store>, progress: Progress) -> Result<Pulled> {
        self.fetch_with(store, progress, true).await
    }

    /// As [`fetch`](Self::fetch), with or without the final status line
    /// (an all-tags pull writes one for the repository at the end).
    pub async fn fetch_with(
        self,
        store: Arc<Store>,
        progress: Progress,
        status_line: bool,
    ) -> Result<Pulled> {
        let reg = &self.registry;
        let repo = self.repo().to_owned();
        let tag_ref = match self.reference.tag() {
            Some(_) if self.reference.digest().is_none() => Some(self.reference.clone()),
            _ => None,
        };
        progress(Message {
            status: Some(format!("Pulling from {repo}")),
            id: Some(
                self.reference
                    .tag()
                    .map(str::to_owned)
                    .or(self.reference.digest().map(str::to_owned))
                    .unwrap_or_default(),
            ),
            ..Default::default()
        });
        let config_desc = self.manifest.config.clone();
        // The config is stored (an fsync or three) while the layers
        // download; it is checked against its digest first.
        let mut config_stored = None;
        let config_bytes = if store.has_blob(&config_desc.digest) {
            store.read_blob(&config_desc.digest)?
        } else {
            let b = fetch::small_blob(reg, &repo, &config_desc).await?;
            let st = store.clone();
            let (bb, d) = (b.clone(), config_desc.digest.clone());
            config_stored = Some(tokio::task::spawn_blocking(move || {
                st.put_verified(&bb, &d)
            }));
            b
        };
        let config =
            manifest::parse_config(&config_bytes, &format!("config {}", config_desc.digest))
                .map_err(|e| Error::Invalid(e.to_string()))?;
        let layers: Vec<Descriptor> = self.manifest.layers.clone();
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(Error::Invalid(format!(
                "manifest {} lists {} layers but its config {} diff IDs",
                self.manifest_digest,
                layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let chains = pier_image::snapshots::chain_ids(&config.rootfs.diff_ids);
        let targets: Vec<LayerTarget> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerTarget {
                digest: l.digest.clone(),
                diff_id: config.rootfs.diff_ids[i].clone(),
                chain_id: chains[i].clone(),
            })
            .collect();
        let plans: Vec<Plan> = targets
            .iter()
            .map(
                |t| match (store.has_blob(&t.digest), store.has_snapshot(&t.chain_id)) {
                    (true, true) => Plan::Present,
                    (true, false) => Plan::UnpackStored,
                    (false, has_snap) => Plan::Download { unpack: !has_snap },
                },
            )
            .collect();
        let was_tagged_here = tag_ref
            .as_ref()
            .and_then(|t| store.tagged_manifest(t))
            .is_some_and(|m| {
                m == self.manifest_digest || Some(&m) == self.index.as_ref().map(|i| &i.0)
            });
        let nothing_to_fetch = plans.iter().all(|p| matches!(p, Plan::Present))
            && store.has_blob(&self.manifest_digest);

        let max = reg.options.max_concurrent_downloads.max(1);
        let mut queued = 0;
        for (t, p) in targets.iter().zip(&plans) {
            let id = short_id(&t.digest);
            match p {
                Plan::Present => progress(Message::layer(&id, "Already exists")),
                _ => {
                    progress(Message::layer(&id, "Pulling fs layer"));
                }
            }
        }
        for (t, p) in targets.iter().zip(&plans) {
            if let Plan::Download { .. } = p {
                queued += 1;
                if queued > max {
                    progress(Message::layer(&short_id(&t.digest), "Waiting"));
                }
            }
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(max));
        let jobs = targets.iter().zip(&plans).zip(&layers).map(|((t, p), d)| {
            let (store, progress, sem) = (store.clone(), progress.clone(), sem.clone());
            let repo = repo.clone();
            async move {
                let id = short_id(&t.digest);
                match p {
                    Plan::Present => Ok::<_, Error>(None),
                    Plan::UnpackStored => {
                        let t2 = t.clone();
                        progress(Message::bytes(&id, "Extracting", d.size, d.size));
                        let n = tokio::task::spawn_blocking(move || store.unpack_stored_layer(&t2))
                            .await
                            .map_err(|e| {
                                Error::Transport(format!("unpacking {}: {e}", t.digest))
                            })??;
                        progress(Message::layer(&id, "Pull complete"));
                        Ok(Some((t.digest.clone(), n)))
                    }
                    Plan::Download { unpack } => {
                        let _permit = sem
                            .acquire()
                            .await
                            .map_err(|e| Error::Transport(e.to_string()))?;
                        let n = download_layer(reg, &repo, d, t, *unpack, store, &progress).await?;
                        Ok(unpack.then(|| (t.digest.clone(), n)))
                    }
                }
            }
        });
        // Every job runs to its end (what verifies is kept), then the
        // first error, if any, is the pull's.
        let mut sizes = std::collections::HashMap::new();
        for r in futures_util::future::join_all(jobs).await {
            if let Some((d, n)) = r? {
                sizes.insert(d, n);
            }
        }
        if let Some(stored) = config_stored {
            stored
                .await
                .map_err(|e| Error::Transport(format!("storing the config: {e}")))??;
        }
        // Everything is verified: the manifests, then the image record.
        let st = store.clone();
        let (md, mb, index) = (
            self.manifest_digest.clone(),
            self.manifest_bytes.clone(),
            self.index.clone(),
        );
        let tag = tag_ref.clone();
        let host_repo = format!("{}/{}", self.reference.domain(), repo);
        let mut blobs: Vec<String> = targets.iter().map(|t| t.digest.clone()).collect();
        blobs.push(config_desc.digest.clone());
        let id = tokio::task::spawn_blocking(move || -> Result<String> {
            st.put_verified(&mb, &md)?;
            if let Some((d, b)) = &index {
                st.put_verified(b, d)?;
            }
            let id = st.register_pulled(
                &md,
                index.as_ref().map(|i| i.0.as_str()),
                tag.as_ref(),
                &sizes,
            )?;
            st.add_blob_sources(&blobs, &host_repo)?;
            Ok(id)
        })
        .await
        .map_err(|e| Error::Transport(format!("recording the image: {e}")))??;
        let up_to_date = nothing_to_fetch && (was_tagged_here || tag_ref.is_none());
        progress(Message::status(format!("Digest: {}", self.digest)));
        if status_line {
            let shown = self.reference.familiar();
            progress(Message::status(if up_to_date {
                format!("Status: Image is up to date for {shown}")
            } else {
                format!("Status: Downloaded newer image for {shown}")
            }));
        }
        Ok(Pulled {
            id,
            digest: self.digest.clone(),
            up_to_date,
        })
    }
}

/// Downloads one layer into the store, unpacking it on the way.
async fn download_layer(
    reg: &Registry,
    repo: &str,
    d: &Descriptor,
    t: &LayerTarget,
    unpack: bool,
    store: Arc<Store>,
    progress: &Progress,
) -> Result<u64> {
    let id = short_id(&t.digest);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(64);
    let target = t.clone();
    let writer = tokio::task::spawn_blocking(move || {
        store.store_layer(DownloadChunks { rx, failed: None }, &target, unpack)
    });
    let total = d.size;
    let pace = crate::progress::Throttle::default();
    let p = progress.clone();
    let idc = id.clone();
    let report = move |n: u64| {
        if pace.due(n == total) {
            p(Message::bytes(&idc, "Downloading", n, total));
        }
    };
    let dl = fetch::blob_stream(reg, repo, d, &tx, &report).await;
    if let Err(DownloadError::Failed(e)) = &dl {
        let _ = tx.send(Err(e.to_string())).await;
    }
    drop(tx);
    let stored = writer
        .await
        .map_err(|e| Error::Transport(format!("storing layer {}: {e}", t.digest)))?;
    match (dl, stored) {
        (Err(DownloadError::Failed(e)), _) => Err(e),
        (_, Err(e)) => Err(Error::Invalid(format!("layer {}: {e}", t.digest))),
        (Err(DownloadError::ConsumerGone), Ok(_)) => Err(Error::Invalid(format!(
            "layer {}: the store stopped reading before the end of the blob",
            t.digest
        ))),
        (Ok(()), Ok(n)) => {
            progress(Message::layer(&id, "Verifying Checksum"));
            progress(Message::layer(&id, "Download complete"));
            progress(Message::bytes(&id, "Extracting", total, total));
            progress(Message::layer(&id, "Pull complete"));
            Ok(n)
        }
    }
}
