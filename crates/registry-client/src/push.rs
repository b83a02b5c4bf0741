//! Push: send the blobs the registry lacks (HEAD first; a cross-repository
//! mount when the blob is known to be in another repository of the same
//! registry; monolithic upload for small blobs, chunked for big ones),
//! then the manifest under the tag.

use std::sync::Arc;

use bytes::Bytes;
use pier_image::manifest::Descriptor;
use pier_image::reference::Reference;
use pier_image::Store;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use tokio::io::AsyncReadExt;

use crate::auth::{repository_scope, Credentials};
use crate::client::{urlencode, Client, Registry};
use crate::error::{from_status, Error, Result};
use crate::progress::{short_id, Message};
use crate::pull::Progress;

/// What a push sent.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
    pub size: u64,
}

/// An image ready to push (found locally; nothing sent yet).
pub struct Prepared {
    /// Whether `send` starts with "The push refers to repository".
    announce: bool,
    registry: Registry,
    target: Reference,
    tag: String,
    image: pier_image::PushableImage,
}

/// Finds the local image `name` (with `tag` replacing its tag when given).
/// Errors here come before any progress.
pub async fn prepare(
    client: &Client,
    store: Arc<Store>,
    name: &str,
    tag: Option<&str>,
    creds: Credentials,
) -> Result<Prepared> {
    let mut target = Reference::parse(name)?;
    let tag = match tag.filter(|t| !t.is_empty()) {
        Some(t) => t.to_owned(),
        None => target
            .tag()
            .unwrap_or(pier_image::reference::DEFAULT_TAG)
            .to_owned(),
    };
    target = Reference::parse(&format!("{}:{tag}", target.repository()))?;
    let local = target.to_string();
    let st = store.clone();
    let found = tokio::task::spawn_blocking(move || st.pushable(&local))
        .await
        .map_err(|e| Error::Transport(format!("reading the image: {e}")))?;
    let image = match found {
        Ok(image) => image,
        Err(pier_image::Error::ImageNotFound(_)) => {
            // As dockerd: a repository with other tags names the missing
            // tag; an unknown repository gets the generic message.
            let repo = target.clone();
            let others = tokio::task::spawn_blocking(move || store.repository_tags(&repo))
                .await
                .map_err(|e| Error::Transport(format!("listing tags: {e}")))??;
            return Err(Error::NotFound(if others.is_empty() {
                format!(
                    "An image does not exist locally with the tag: {}",
                    target_name(name)
                )
            } else {
                format!("tag does not exist: {}", target.familiar())
            }));
        }
        Err(e) => return Err(Error::Store(e)),
    };
    let registry = client.registry(target.domain(), creds)?;
    Ok(Prepared {
        announce: true,
        registry,
        target,
        tag,
        image,
    })
}

/// Every local tag of repository `name` (docker's `push --all-tags`).
pub async fn prepare_all(
    client: &Client,
    store: Arc<Store>,
    name: &str,
    creds: Credentials,
) -> Result<Vec<Prepared>> {
    let repo = Reference::parse(name)?;
    let st = store.clone();
    let r2 = repo.clone();
    let tags = tokio::task::spawn_blocking(move || st.repository_tags(&r2))
        .await
        .map_err(|e| Error::Transport(format!("listing tags: {e}")))??;
    if tags.is_empty() {
        return Err(Error::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            repo.familiar_name()
        )));
    }
    let mut out = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let mut p = prepare(client, store.clone(), name, Some(t), creds.clone()).await?;
        p.announce = i == 0;
        out.push(p);
    }
    Ok(out)
}

fn target_name(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| name.to_owned())
}

impl Prepared {
    pub async fn send(self, store: Arc<Store>, progress: Progress) -> Result<Pushed> {
        let reg = &self.registry;
        let repo = self.target.path().to_owned();
        let host_repo = format!("{}/{}", self.target.domain(), repo);
        if self.announce {
            progress(Message::status(format!(
                "The push refers to repository [{host_repo}]"
            )));
        }
        // docker lists layers top first.
        let layers: Vec<Descriptor> = self.image.layers.iter().rev().cloned().collect();
        for l in &layers {
            progress(Message::layer(&short_id(&l.digest), "Preparing"));
        }
        let max = reg.options.max_concurrent_uploads.max(1);
        for l in layers.iter().skip(max) {
            progress(Message::layer(&short_id(&l.digest), "Waiting"));
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(max));
        let jobs = layers.iter().map(|l| {
            let (store, progress, sem, repo) =
                (store.clone(), progress.clone(), sem.clone(), repo.clone());
            async move {
                let _p = sem
                    .acquire()
                    .await
                    .map_err(|e| Error::Transport(e.to_string()))?;
                let id = short_id(&l.digest);
                let done = push_blob(reg, &repo, l, store, Some((&id, &progress))).await?;
                progress(Message::layer(&id, done));
                Ok::<(), Error>(())
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            return Err(e);
        }
        push_blob(reg, &repo, &self.image.config, store.clone(), None).await?;

        let url = reg.url(&format!("/v2/{repo}/manifests/{}", self.tag));
        let scopes = [repository_scope(&repo, "pull,push")];
        let body = Bytes::from(self.image.manifest_bytes.clone());
        let media = self.image.media_type.clone();
        let resp = reg
            .send(
                &format!("pushing the manifest of {}", self.target.familiar()),
                &scopes,
                true,
                |c| {
                    c.put(&url)
                        .header(CONTENT_TYPE, media.as_str())
                        .body(body.clone())
                },
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let b = resp.bytes().await.unwrap_or_default();
            return Err(from_status(
                status,
                &b,
                &format!("pushing manifest {}", self.target.familiar()),
            ));
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != self.image.manifest_digest {
                return Err(Error::Invalid(format!(
                    "the registry stored the manifest under digest {d}, not {}",
                    self.image.manifest_digest
                )));
            }
        }
        let mut blobs: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(self.image.config.digest.clone());
        let hr = host_repo.clone();
        tokio::task::spawn_blocking(move || store.add_blob_sources(&blobs, &hr))
            .await
            .map_err(|e| Error::Transport(format!("recording blob sources: {e}")))??;
        let size = self.image.manifest_bytes.len() as u64;
        let digest = self.image.manifest_digest.clone();
        progress(Message::status(format!(
            "{}: digest: {digest} size: {size}",
            self.tag
        )));
        progress(Message {
            progress_detail: Some(Default::default()),
            aux: Some(serde_json::json!({"Tag": self.tag, "Digest": digest, "Size": size})),
            ..Default::default()
        });
        Ok(Pushed {
            tag: self.tag,
            digest,
            size,
        })
    }
}

/// Sends one blob unless the registry has it; returns the layer's final status.
async fn push_blob(
    reg: &Registry,
    repo: &str,
    d: &Descriptor,
    store: Arc<Store>,
    progress: Option<(&str, &Progress)>,
) -> Result<String> {
    let what = format!("blob {}", d.digest);
    let scopes = vec![repository_scope(repo, "pull,push")];
    let head_url = reg.url(&format!("/v2/{repo}/blobs/{}", d.digest));
    let head = reg
        .send(&format!("checking {what}"), &scopes, true, |c| {
            c.head(&head_url)
        })
        .await?;
    if head.status().is_success() {
        return Ok("Layer already exists".into());
    }
    if head.status() != StatusCode::NOT_FOUND {
        return Err(from_status(
            head.status().as_u16(),
            b"",
            &format!("checking {what}"),
        ));
    }
    // A cross-repository mount from a repository of the same registry.
    let host = reg.host().to_owned();
    let sources: Vec<String> = store
        .blob_sources(&d.digest)
        .into_iter()
        .filter_map(|s| s.strip_prefix(&format!("{host}/")).map(str::to_owned))
        .filter(|s| s != repo)
        .collect();
    let mut location: Option<String> = None;
    for from in sources.iter().take(3) {
        let mscopes = vec![
            repository_scope(repo, "pull,push"),
            repository_scope(from, "pull"),
        ];
        let url = reg.url(&format!(
            "/v2/{repo}/blobs/uploads/?mount={}&from={}",
            urlencode(&d.digest),
            urlencode(from)
        ));
        let r = reg
            .send(
                &format!("mounting {what} from {from}"),
                &mscopes,
                false,
                |c| c.post(&url).header(CONTENT_LENGTH, "0"),
            )
            .await?;
        match r.status() {
            StatusCode::CREATED => return Ok(format!("Mounted from {from}")),
            StatusCode::ACCEPTED => {
                location = r
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                break;
            }
            _ => {}
        }
    }
    let start = match location {
        Some(l) => l,
        None => {
            let url = reg.url(&format!("/v2/{repo}/blobs/uploads/"));
            let r = reg
                .send(
                    &format!("starting the upload of {what}"),
                    &scopes,
                    true,
                    |c| c.post(&url).header(CONTENT_LENGTH, "0"),
                )
                .await?;
            let r = expect_status(
                r,
                StatusCode::ACCEPTED,
                &format!("starting the upload of {what}"),
            )
            .await?;
            r.headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::Invalid(format!("the registry gave no upload location for {what}"))
                })?
        }
    };
    let mut location = reg.location(&start);
    let path = store.blob_path(&d.digest)?;
    let pace = crate::progress::Throttle::default();
    let report = |n: u64| {
        if let Some((id, p)) = progress {
            if pace.due(n == d.size) {
                p(Message::bytes(id, "Pushing", n, d.size));
            }
        }
    };
    let with_digest = |loc: &str| {
        let sep = if loc.contains('?') { '&' } else { '?' };
        format!("{loc}{sep}digest={}", urlencode(&d.digest))
    };
    if d.size <= reg.options.chunk_threshold {
        // Monolithic: one PUT with the whole blob.
        let url = with_digest(&location);
        let r = reg
            .send(&format!("uploading {what}"), &scopes, true, |c| {
                c.put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, d.size)
                    .body(file_body(
                        path.clone(),
                        0,
                        d.size,
                        progress.map(|(id, p)| (id.to_owned(), p.clone(), d.size)),
                    ))
            })
            .await?;
        expect_status(r, StatusCode::CREATED, &format!("uploading {what}")).await?;
    } else {
        // Chunked: PATCH each chunk, then PUT to close the upload.
        let mut off = 0;
        while off < d.size {
            let len = reg.options.chunk_size.min(d.size - off);
            let url = location.clone();
            let r = reg
                .send(&format!("uploading {what}"), &scopes, false, |c| {
                    c.patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, len)
                        .header(CONTENT_RANGE, format!("{off}-{}", off + len - 1))
                        .body(file_body(path.clone(), off, len, None))
                })
                .await?;
            let r = expect_status(
                r,
                StatusCode::ACCEPTED,
                &format!("uploading a chunk of {what}"),
            )
            .await?;
            if let Some(l) = r.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                location = reg.location(l);
            }
            off += len;
            report(off);
        }
        let url = with_digest(&location);
        let r = reg
            .send(
                &format!("finishing the upload of {what}"),
                &scopes,
                false,
                |c| c.put(&url).header(CONTENT_LENGTH, "0"),
            )
            .await?;
        expect_status(
            r,
            StatusCode::CREATED,
            &format!("finishing the upload of {what}"),
        )
        .await?;
    }
    Ok("Pushed".into())
}

/// A request body streaming `len` bytes of `path` from `offset`,
/// reporting progress as it goes.
fn file_body(
    path: std::path::PathBuf,
    offset: u64,
    len: u64,
    progress: Option<(String, Progress, u64)>,
) -> reqwest::Body {
    let state = (None::<tokio::fs::File>, 0u64);
    let pace = std::sync::Arc::new(crate::progress::Throttle::default());
    let s = futures_util::stream::unfold(state, move |(file, sent)| {
        let path = path.clone();
        let progress = progress.clone();
        let pace = pace.clone();
        async move {
            if sent >= len {
                return None;
            }
            let mut f = match file {
                Some(f) => f,
                None => {
                    let open = async {
                        let mut f = tokio::fs::File::open(&path).await?;
                        use tokio::io::AsyncSeekExt;
                        f.seek(std::io::SeekFrom::Start(offset)).await?;
                        Ok::<_, std::io::Error>(f)
                    };
                    match open.await {
                        Ok(f) => f,
                        Err(e) => return Some((Err(e), (None, len))),
                    }
                }
            };
            let want = (len - sent).min(1 << 20) as usize;
            let mut buf = vec![0u8; want];
            match f.read_exact(&mut buf).await {
                Ok(_) => {
                    let sent = sent + want as u64;
                    if let Some((id, p, total)) = &progress {
                        if pace.due(offset + sent == *total) {
                            p(Message::bytes(id, "Pushing", offset + sent, *total));
                        }
                    }
                    Some((Ok(Bytes::from(buf)), (Some(f), sent)))
                }
                Err(e) => Some((Err(e), (None, len))),
            }
        }
    });
    reqwest::Body::wrap_stream(s)
}

/// `r` when it has the status `want`, else the registry's error for `what`.
async fn expect_status(
    r: reqwest::Response,
    want: StatusCode,
    what: &str,
) -> Result<reqwest::Response> {
    if r.status() == want {
        return Ok(r);
    }
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap_or_default();
    Err(from_status(status, &body, what))
}
