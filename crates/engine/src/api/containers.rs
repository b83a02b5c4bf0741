//! Container endpoints: create, attach (lifecycle endpoints are in
//! lifecycle.rs).

use super::{flag, Query, State};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bollard_stubs::models::ContainerCreateBody;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

/// A mount type the API types do not know would fail the whole body's
/// decoding; dockerd names it instead.
fn check_mount_types(body: &[u8]) -> Result<()> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    const KNOWN: &[&str] = &["bind", "volume", "tmpfs", "npipe", "cluster", "image"];
    let mounts = v["HostConfig"]["Mounts"].as_array().into_iter().flatten();
    for typ in mounts.filter_map(|m| m["Type"].as_str()) {
        if !KNOWN.contains(&typ) {
            return Err(Error::bad_request(format!(
                "invalid mount config for type \"{typ}\": mount type unknown"
            )));
        }
    }
    Ok(())
}

pub async fn create(engine: State, q: Query, body: Bytes) -> Result<Response> {
    check_mount_types(&body)?;
    let body: ContainerCreateBody = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request(format!("invalid container config in request body: {e}"))
    })?;
    let name = q.get("name").filter(|n| !n.is_empty()).map(String::as_str);
    let warnings = crate::container::validate::warnings(&body);
    let id = engine.create(name, body).await?;
    let resp = serde_json::json!({ "Id": id, "Warnings": warnings });
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

/// `POST /containers/{id}/attach`: upgrades the connection (`Upgrade: tcp`)
/// and carries Docker's multiplexed stream: output out, stdin in.
pub async fn attach(
    engine: State,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> Result<Response> {
    let h = engine.find(&id)?;
    if !req.headers().contains_key(header::UPGRADE) {
        return Err(Error::bad_request(
            "attach needs a connection upgrade: send `Connection: Upgrade` and `Upgrade: tcp`",
        ));
    }
    if !flag(&q, "stream") {
        return Err(Error::not_implemented(
            "attach without stream=1 (logs only) is not supported yet",
        ));
    }
    let attach = engine
        .attach(
            &h,
            flag(&q, "stdin"),
            flag(&q, "stdout"),
            flag(&q, "stderr"),
        )
        .await?;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut client = TokioIo::new(upgraded);
        let Some(shim) = attach.stream().await else {
            let _ = client.shutdown().await;
            return;
        };
        pipe(client, shim).await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(
            header::CONTENT_TYPE,
            "application/vnd.docker.multiplexed-stream",
        )
        .body(Body::empty())
        .unwrap_or_default())
}

/// Copies shim output to the client until the container's output ends,
/// and client input to the shim meanwhile.
async fn pipe<C, S>(client: C, shim: S)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut shim_r, mut shim_w) = tokio::io::split(shim);
    let input = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_r, &mut shim_w).await;
        let _ = shim_w.shutdown().await;
    });
    let _ = tokio::io::copy(&mut shim_r, &mut client_w).await;
    let _ = client_w.shutdown().await;
    input.abort();
}
