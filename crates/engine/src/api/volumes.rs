//! Volume endpoints: `GET /volumes`, `POST /volumes/create`,
//! `GET|DELETE /volumes/{name}`, `POST /volumes/prune`.

use super::images::parse_filters;
use super::{flag, ApiVersion, Query, State};
use crate::engine::{volume_json, VolumeFilters};
use crate::error::{Error, Result};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bollard_stubs::models::VolumeCreateRequest;
use serde_json::{json, Value};

fn filters(q: &super::Query) -> Result<VolumeFilters> {
    let mut out = VolumeFilters::new();
    for (k, v) in parse_filters(q)? {
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

pub async fn list(engine: State, q: Query) -> Result<Json<Value>> {
    let vols = engine.volume_list(&filters(&q)?).await?;
    let list: Vec<Value> = vols.iter().map(volume_json).collect();
    Ok(Json(json!({ "Volumes": list, "Warnings": null })))
}

pub async fn create(engine: State, body: Bytes) -> Result<Response> {
    let req: VolumeCreateRequest = if body.is_empty() {
        VolumeCreateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Error::bad_request(format!("invalid volume config in request body: {e}"))
        })?
    };
    let v = engine
        .volume_create(
            req.name,
            req.driver,
            req.driver_opts.unwrap_or_default().into_iter().collect(),
            req.labels.unwrap_or_default().into_iter().collect(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(volume_json(&v))).into_response())
}

pub async fn inspect(engine: State, Path(name): Path<String>) -> Result<Json<Value>> {
    Ok(Json(volume_json(&engine.volume_get(&name).await?)))
}

pub async fn remove(engine: State, Path(name): Path<String>, q: Query) -> Result<StatusCode> {
    engine.volume_remove(&name, flag(&q, "force")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// As dockerd: clients older than API 1.42 prune every unused volume,
/// newer ones only anonymous volumes unless `all=true`.
pub async fn prune(
    engine: State,
    Extension(version): Extension<ApiVersion>,
    q: Query,
) -> Result<Json<Value>> {
    let (deleted, reclaimed) = engine
        .volume_prune(&filters(&q)?, version.before("1.42"))
        .await?;
    Ok(Json(
        json!({ "VolumesDeleted": deleted, "SpaceReclaimed": reclaimed }),
    ))
}
