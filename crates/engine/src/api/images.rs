//! Image endpoints: list, import (`POST /images/create?fromSrc=-`), inspect.

use super::{Query, State};
use crate::error::{Error, Result};
use axum::body::Body;
use axum::Json;
use bollard_stubs::models::ImageSummary;
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::Read;

pub async fn list(engine: State) -> Result<Json<Vec<ImageSummary>>> {
    let store = engine.images.clone();
    let images = tokio::task::spawn_blocking(move || store.list()).await??;
    Ok(Json(
        images
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                parent_id: String::new(),
                repo_tags: i.repo_tags,
                repo_digests: Vec::new(),
                created: i.created,
                size: i.size as i64,
                shared_size: -1,
                labels: Default::default(),
                containers: -1,
                manifests: None,
                descriptor: None,
            })
            .collect(),
    ))
}

/// `POST /images/create`: with `fromSrc=-` imports the request body as a
/// rootfs tarball (`docker import`); pulling arrives with the registry client.
pub async fn create(engine: State, q: Query, body: Body) -> Result<Json<serde_json::Value>> {
    if q.get("fromSrc").map(String::as_str) != Some("-") {
        let image = q.get("fromImage").cloned().unwrap_or_default();
        return Err(Error::not_implemented(format!(
            "pull access for {image} is not available: pier cannot pull from registries yet; \
             import a root filesystem with `pier image import ROOTFS.tar NAME` instead"
        )));
    }
    let reference = match (
        q.get("repo").filter(|r| !r.is_empty()),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
        (Some(repo), None) => Some(repo.clone()),
        _ => None,
    };
    let opts = pier_image::ImportOptions {
        reference,
        message: q.get("message").cloned().filter(|m| !m.is_empty()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(16);
    let mut stream = body.into_data_stream();
    let feeder = tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let msg = chunk.map_err(|e| format!("reading the request body: {e}"));
            let failed = msg.is_err();
            if tx.send(msg).await.is_err() || failed {
                break;
            }
        }
    });
    let store = engine.images.clone();
    let summary = tokio::task::spawn_blocking(move || {
        store.import(
            BodyReader {
                rx,
                current: Bytes::new(),
            },
            &opts,
        )
    })
    .await??;
    feeder.abort();
    Ok(Json(serde_json::json!({ "status": summary.id })))
}

/// Blocking `Read` over the chunks of a request body.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// `GET /images/{name}/json`; names may contain slashes.
pub async fn get_by_path(
    engine: State,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(Error::not_found(format!("page not found: /images/{rest}")));
    };
    let store = engine.images.clone();
    let name = name.to_string();
    let image = tokio::task::spawn_blocking(move || store.resolve(&name)).await??;
    let cfg = &image.config;
    Ok(Json(serde_json::json!({
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": [],
        "Created": cfg.created(),
        "Architecture": cfg.architecture().to_string(),
        "Os": cfg.os().to_string(),
        "Config": cfg.config(),
        "RootFS": {"Type": "layers", "Layers": cfg.rootfs().diff_ids()},
        "History": cfg.history(),
    })))
}
