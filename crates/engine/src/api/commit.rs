//! Container filesystem endpoints: `GET /containers/{id}/changes`
//! (`docker diff`), `GET /containers/{id}/export`, `POST /commit`, and
//! `GET /system/df`.

use super::images::{stream_body, ChannelWriter};
use super::{Query, State};
use crate::error::{Error, Result};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `GET /containers/{id}/changes`: `[{"Path": "/etc", "Kind": 0}, ...]`.
pub async fn changes(engine: State, Path(id): Path<String>) -> Result<Json<serde_json::Value>> {
    let rec = engine.find(&id)?.record();
    let upper = engine.config.containers_dir().join(&rec.id).join("upper");
    let store = engine.images.clone();
    let list = tokio::task::spawn_blocking(move || {
        let layers = store.resolve(&rec.image_id)?.layers;
        pier_image::changes(&upper, &layers)
    })
    .await??;
    Ok(Json(
        list.into_iter()
            .map(|c| serde_json::json!({"Path": c.path, "Kind": c.kind.code()}))
            .collect(),
    ))
}

/// `GET /containers/{id}/export`: the container's merged filesystem as a
/// tar, from a read-only overlay of its layers and its upper directory.
pub async fn export(engine: State, Path(id): Path<String>) -> Result<Response> {
    let rec = engine.find(&id)?.record();
    let dir = engine.config.containers_dir().join(&rec.id);
    let store = engine.images.clone();
    let image_id = rec.image_id.clone();
    let mut layers = tokio::task::spawn_blocking(move || store.resolve(&image_id))
        .await??
        .layers;
    layers.push(dir.join("upper"));
    Ok(stream_body(
        "application/x-tar",
        move |w: &mut ChannelWriter| {
            let target = dir.join(format!("export-{:016x}", rand::random::<u64>()));
            std::fs::create_dir(&target)
                .map_err(|e| format!("creating {}: {e}", target.display()))?;
            let res = pier_image::mount::mount_overlay(
                &layers,
                std::path::Path::new(""),
                std::path::Path::new(""),
                &target,
            )
            .map_err(|e| format!("mounting the container's filesystem: {e}"))
            .and_then(|()| {
                let r = pier_image::write_tar(&target, w, false).map_err(|e| e.to_string());
                let _ = pier_image::mount::unmount(&target);
                r
            });
            let _ = std::fs::remove_dir(&target);
            res
        },
    ))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=`; the body may
/// carry a container config whose set fields replace the container's.
pub async fn commit(
    engine: State,
    q: Query,
    uri: axum::http::Uri,
    body: Bytes,
) -> Result<Response> {
    let name = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::bad_request("no container given: commit needs container=ID"))?;
    let rec = engine.find(name)?.record();
    let mut config = serde_json::to_value(&rec.config)
        .map_err(|e| Error::internal(format!("serialising the container config: {e}")))?;
    if !body.is_empty() {
        let over: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::bad_request(format!("invalid config in request body: {e}")))?;
        for (k, v) in over.as_object().into_iter().flatten() {
            if !v.is_null() {
                config[k] = v.clone();
            }
        }
    }
    // `--change`: one `changes` value per instruction.
    let changes = super::images::query_all(uri.query().unwrap_or(""), "changes");
    crate::container::changes::apply(&mut config, &changes).map_err(Error::bad_request)?;
    if let Some(o) = config.as_object_mut() {
        o.retain(|_, v| !v.is_null());
        o.insert("Image".into(), rec.image_id.clone().into());
    }
    let reference = match (
        q.get("repo").filter(|r| !r.is_empty()),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.clone()),
        (None, Some(_)) => return Err(Error::bad_request("a tag needs a repository")),
        _ => None,
    };
    let opts = pier_image::CommitOptions {
        reference,
        comment: q.get("comment").cloned(),
        author: q.get("author").cloned(),
        config: Some(config),
        created_by: Some(rec.command_line()),
    };
    let upper = engine.config.containers_dir().join(&rec.id).join("upper");
    let store = engine.images.clone();
    let img =
        tokio::task::spawn_blocking(move || store.commit(&rec.image_id, &upper, &opts)).await??;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "Id": img.id })),
    )
        .into_response())
}

/// `GET /system/df`: images, containers (writable layers), volumes (none
/// yet) and build cache (none yet), as Docker reports them.
pub async fn system_df(engine: State) -> Result<Json<serde_json::Value>> {
    let e = engine.0.clone();
    let v = tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
        let containers = e.list();
        let images = e.images.list()?;
        let mut layers_size: u64 = 0;
        let mut seen = std::collections::HashSet::new();
        let mut imgs = Vec::new();
        for i in &images {
            let d = e.images.inspect(&i.id)?;
            let mut unique = 0u64;
            for l in &d.layers {
                let size = pier_image::du(l);
                if seen.insert(l.clone()) {
                    layers_size += size;
                }
                let shared = images.iter().filter(|o| o.id != i.id).any(|o| {
                    e.images
                        .resolve(&o.id)
                        .map(|r| r.layers.contains(l))
                        .unwrap_or(false)
                });
                if !shared {
                    unique += size;
                }
            }
            let n = containers.iter().filter(|c| c.image_id == i.id).count();
            imgs.push(serde_json::json!({
                "Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": d.repo_digests,
                "Created": i.created, "Size": i.size, "SharedSize": i.size.saturating_sub(unique),
                "VirtualSize": i.size, "Labels": d.config["config"]["Labels"], "Containers": n,
            }));
        }
        let ctrs: Vec<serde_json::Value> = containers
            .iter()
            .map(|c| {
                let rw = pier_image::du(&e.config.containers_dir().join(&c.id).join("upper"));
                serde_json::json!({
                    "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image,
                    "ImageID": c.image_id, "Command": c.command_line(), "SizeRw": rw,
                    "SizeRootFs": rw, "State": c.state.status.as_str(),
                    "Status": c.state.status.as_str(),
                })
            })
            .collect();
        // Volumes with docker's UsageData: size and how many containers use them.
        let vols: Vec<serde_json::Value> = e
            .volumes
            .list()?
            .iter()
            .map(|v| {
                let mut j = crate::engine::volume_json(v);
                j["UsageData"] = serde_json::json!({
                    "Size": crate::container::size::size_rw(&v.mountpoint),
                    "RefCount": e.volume_users(&v.name).len(),
                });
                j
            })
            .collect();
        Ok(serde_json::json!({
            "LayersSize": layers_size, "Images": imgs, "Containers": ctrs,
            "Volumes": vols, "BuildCache": [],
        }))
    })
    .await??;
    Ok(Json(v))
}
