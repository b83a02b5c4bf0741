//! Reading manifests and blobs from a registry, verified.

use bytes::Bytes;
use futures_util::StreamExt;
use pier_image::manifest::{Descriptor, Parsed, MAX_JSON};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use crate::client::Registry;
use crate::error::{from_status, Error, Result};
use crate::media::{parse_manifest, MANIFEST_ACCEPT};

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A manifest (or index) as the registry sent it, digest checked.
pub struct FetchedManifest {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub parsed: Parsed,
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(resp: reqwest::Response, limit: u64, what: &str) -> Result<Vec<u8>> {
    if let Some(n) = resp.content_length() {
        if n > limit {
            return Err(Error::Invalid(format!(
                "{what} is {n} bytes, more than the {limit}-byte limit for manifests and configs"
            )));
        }
    }
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        let c = c.map_err(|e| Error::Transport(format!("reading {what}: {e}")))?;
        if out.len() as u64 + c.len() as u64 > limit {
            return Err(Error::Invalid(format!(
                "{what} is more than the {limit}-byte limit for manifests and configs"
            )));
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// GET /v2/REPO/manifests/REF. `reference` is a tag or a digest; a digest
/// is checked against the bytes, and so is the registry's
/// `Docker-Content-Digest` header.
pub async fn manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    what: &str,
) -> Result<FetchedManifest> {
    let scopes = [crate::auth::repository_scope(repo, "pull")];
    let url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
    let resp = reg
        .send(&format!("fetching {what}"), &scopes, true, |c| {
            c.get(&url).header(ACCEPT, MANIFEST_ACCEPT)
        })
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(from_status(status.as_u16(), &body, what));
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_limited(resp, MAX_JSON, what).await?;
    let digest = sha256_digest(&bytes);
    if reference.starts_with("sha256:") && reference != digest {
        return Err(Error::Invalid(format!(
            "{what}: manifest digest mismatch: asked for {reference}, the registry sent content \
             with digest {digest}; the registry or something between is corrupting data"
        )));
    }
    if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:")) {
        if h != digest {
            return Err(Error::Invalid(format!(
                "{what}: manifest digest mismatch: the registry says {h} but the content it \
                 sent has digest {digest}"
            )));
        }
    }
    let parsed = parse_manifest(&bytes, &content_type, what)?;
    Ok(FetchedManifest {
        digest,
        bytes,
        parsed,
    })
}

/// The tags of `repo` (GET /v2/REPO/tags/list, following `Link` pages).
pub async fn tags(reg: &Registry, repo: &str) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct TagList {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let scopes = [crate::auth::repository_scope(repo, "pull")];
    let what = format!("tags of {}/{repo}", reg.host());
    let mut url = reg.url(&format!("/v2/{repo}/tags/list"));
    let mut out = Vec::new();
    for _ in 0..100 {
        let u = url.clone();
        let resp = reg
            .send(&format!("listing {what}"), &scopes, true, |c| c.get(&u))
            .await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(from_status(status, &body, &what));
        }
        let next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(u, _)| reg.location(u));
        let body = read_limited(resp, MAX_JSON, &what).await?;
        let list: TagList = serde_json::from_slice(&body).map_err(|e| {
            Error::Invalid(format!("{what}: the registry sent an invalid list: {e}"))
        })?;
        out.extend(list.tags.unwrap_or_default());
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    Ok(out)
}

/// A small blob (an image config), verified against its descriptor.
pub async fn small_blob(reg: &Registry, repo: &str, d: &Descriptor) -> Result<Vec<u8>> {
    let what = format!("config {}", d.digest);
    if d.size > MAX_JSON {
        return Err(Error::Invalid(format!(
            "{what} is {} bytes, more than the {MAX_JSON}-byte limit",
            d.size
        )));
    }
    let scopes = [crate::auth::repository_scope(repo, "pull")];
    let url = reg.url(&format!("/v2/{repo}/blobs/{}", d.digest));
    let resp = reg
        .send(&format!("fetching {what}"), &scopes, true, |c| c.get(&url))
        .await?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        return Err(from_status(status, &body, &what));
    }
    let bytes = read_limited(resp, MAX_JSON, &what).await?;
    let got = sha256_digest(&bytes);
    if got != d.digest {
        return Err(Error::Invalid(format!(
            "{what}: digest mismatch: the registry sent content with digest {got}"
        )));
    }
    Ok(bytes)
}

/// Bytes one attempt must bring for its failure not to count.
const RESUME_CREDIT: u64 = 8 << 20;

/// Why a blob download stopped.
pub enum DownloadError {
    /// The consumer of the bytes stopped (it has its own error).
    ConsumerGone,
    Failed(Error),
}

/// Streams blob `d` into `tx`, resuming with `Range` after connection
/// errors, timeouts and short reads, retrying with backoff. `progress`
/// gets the byte count so far.
pub async fn blob_stream(
    reg: &Registry,
    repo: &str,
    d: &Descriptor,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, String>>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), DownloadError> {
    let what = format!("layer {}", d.digest);
    let scopes = [crate::auth::repository_scope(repo, "pull")];
    let url = reg.url(&format!("/v2/{repo}/blobs/{}", d.digest));
    let mut offset: u64 = 0;
    let mut failures: u32 = 0;
    loop {
        let resp = reg
            .send(&format!("fetching {what}"), &scopes, true, |c| {
                let r = c.get(&url);
                if offset > 0 {
                    r.header(RANGE, format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await
            .map_err(DownloadError::Failed)?;
        let status = resp.status();
        // Bytes of the answer to drop: all of them up to `offset` when the
        // registry ignored the Range and sent the whole blob again.
        let mut skip = match status {
            StatusCode::PARTIAL_CONTENT => 0,
            StatusCode::OK => offset,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(DownloadError::Failed(Error::Invalid(format!(
                    "{what}: the registry has only {offset} of the {} bytes the manifest                      gives (truncated blob); the image in the registry is damaged, push it again",
                    d.size
                ))))
            }
            s => {
                let body = resp.bytes().await.unwrap_or_default();
                return Err(DownloadError::Failed(from_status(s.as_u16(), &body, &what)));
            }
        };
        if let Some(n) = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if n.saturating_sub(skip) + offset > d.size {
                return Err(DownloadError::Failed(Error::Invalid(format!(
                    "{what}: the registry sends {n} bytes from offset {offset}, more than the \
                     {} bytes the manifest gives",
                    d.size
                ))));
            }
        }
        let mut s = resp.bytes_stream();
        let mut broke: Option<String> = None;
        let started_at = offset;
        while let Some(c) = s.next().await {
            let mut c = match c {
                Ok(c) => c,
                Err(e) => {
                    broke = Some(if e.is_timeout() {
                        "the registry stopped sending (timeout)".to_owned()
                    } else {
                        let mut m = e.to_string();
                        let mut src = std::error::Error::source(&e);
                        while let Some(x) = src {
                            m.push_str(": ");
                            m.push_str(&x.to_string());
                            src = x.source();
                        }
                        m
                    });
                    break;
                }
            };
            if skip > 0 {
                let k = skip.min(c.len() as u64) as usize;
                let _ = c.split_to(k);
                skip -= k as u64;
                if c.is_empty() {
                    continue;
                }
            }
            if offset + c.len() as u64 > d.size {
                return Err(DownloadError::Failed(Error::Invalid(format!(
                    "{what}: the registry sent more than the {} bytes the manifest gives",
                    d.size
                ))));
            }
            offset += c.len() as u64;
            if tx.send(Ok(c)).await.is_err() {
                return Err(DownloadError::ConsumerGone);
            }
            progress(offset);
        }
        // An attempt that moved the download on a good deal is not held
        // against the retries; one that sends a trickle and stops is.
        if offset - started_at >= RESUME_CREDIT {
            failures = 0;
        }
        if broke.is_none() && offset == d.size {
            return Ok(());
        }
        let why = broke.unwrap_or_else(|| {
            format!(
                "the registry ended the blob after {offset} of {} bytes (truncated)",
                d.size
            )
        });
        failures += 1;
        if failures > reg.options.retries {
            return Err(DownloadError::Failed(Error::Transport(format!(
                "{what}: {why}; gave up after {} attempts (the {offset} bytes received are \
                 discarded, the layers that completed are kept for the next pull)",
                failures
            ))));
        }
        reg.backoff(failures - 1).await;
    }
}
