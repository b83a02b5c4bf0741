//! Exec endpoints (`/containers/{id}/exec`, `/exec/{id}/...`) and the
//! container's terminal size (`/containers/{id}/resize`).

use super::{Query, State};
use crate::engine::{Engine, ExecConfig, ExecRecord};
use crate::error::{Error, Result};
use crate::shim::ShimStream;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyper_util::rt::TokioIo;
use pier_shim::protocol::{ExecExit, EXIT_STREAM, STDERR, STDOUT};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `POST /containers/{id}/exec`.
pub async fn create(engine: State, Path(id): Path<String>, body: Bytes) -> Result<Response> {
    let h = engine.find(&id)?;
    let cfg: ExecConfig = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request(format!("invalid exec config in request body: {e}")))?;
    let exec_id = engine.exec_create(&h, cfg)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "Id": exec_id })),
    )
        .into_response())
}

/// `GET /exec/{id}/json`.
pub async fn inspect(engine: State, Path(id): Path<String>) -> Result<Json<serde_json::Value>> {
    let e = engine.exec_inspect(&id)?;
    let cmd = e.config.cmd.clone().unwrap_or_default();
    Ok(Json(serde_json::json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.config.tty,
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.get(1..).unwrap_or_default(),
            "privileged": e.config.privileged,
            "user": e.config.user.clone().unwrap_or_default(),
        },
        "OpenStdin": e.config.attach_stdin,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdout": e.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys.clone().unwrap_or_default(),
        "Pid": e.pid,
    })))
}

fn size(q: &std::collections::HashMap<String, String>) -> Result<(u16, u16)> {
    let get = |k: &str| -> Result<u16> {
        let v = q.get(k).map(String::as_str).unwrap_or("");
        v.parse().map_err(|_| {
            Error::bad_request(format!(
                "invalid value for {k:?}: {v:?}: expected a number of lines or columns"
            ))
        })
    };
    Ok((get("h")?, get("w")?))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn resize(engine: State, Path(id): Path<String>, q: Query) -> Result<StatusCode> {
    let (h, w) = size(&q)?;
    engine.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn container_resize(
    engine: State,
    Path(id): Path<String>,
    q: Query,
) -> Result<StatusCode> {
    let c = engine.find(&id)?;
    let (h, w) = size(&q)?;
    engine.resize(&c, h, w).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartConfig {
    detach: bool,
    #[allow(dead_code)]
    tty: bool,
    console_size: Option<Vec<u16>>,
}

/// `POST /exec/{id}/start`: detached, starts the process and answers; else
/// upgrades the connection (`Upgrade: tcp`) and carries the process's
/// stdio (multiplexed, or raw with a terminal) until it exits.
pub async fn start(engine: State, Path(id): Path<String>, mut req: Request) -> Result<Response> {
    let upgrade = req
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 64 << 10)
        .await
        .map_err(|e| Error::bad_request(format!("reading the request body: {e}")))?;
    let start: StartConfig = if body.iter().all(u8::is_ascii_whitespace) {
        StartConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::bad_request(format!("invalid exec start config: {e}")))?
    };
    // Checked before the upgrade, so that errors are plain responses.
    engine.exec_inspect(&id)?;
    if start.detach {
        let mut rec = engine.exec_begin(&id)?;
        if start.console_size.is_some() {
            rec.config.console_size = start.console_size;
        }
        let stream = engine
            .exec_run(&rec)
            .await
            .map_err(|f| Error::new(StatusCode::INTERNAL_SERVER_ERROR, f.message))?;
        let engine = engine.0.clone();
        tokio::spawn(async move {
            relay(stream, None::<tokio::io::DuplexStream>, &rec, &engine).await;
        });
        return Ok(([(header::CONTENT_TYPE, "application/json")], Body::empty()).into_response());
    }
    let Some(upgrade) = upgrade else {
        return Err(Error::bad_request(
            "exec start needs a connection upgrade: send `Connection: Upgrade` and `Upgrade: tcp`, or Detach",
        ));
    };
    let mut rec = engine.exec_begin(&id)?;
    if start.console_size.is_some() {
        rec.config.console_size = start.console_size;
    }
    let engine: Arc<Engine> = engine.0.clone();
    let tty = rec.config.tty;
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            engine.exec_exited(&rec.id, 126);
            return;
        };
        let mut client = TokioIo::new(upgraded);
        match engine.exec_run(&rec).await {
            Ok(stream) => {
                relay(stream, Some(client), &rec, &engine).await;
            }
            Err(f) => {
                // As docker: the error is written to the stream.
                let msg = format!("{}\r\n", f.message);
                if !tty {
                    let _ = client
                        .write_all(&pier_shim::protocol::frame_header(STDOUT, msg.len()))
                        .await;
                }
                let _ = client.write_all(msg.as_bytes()).await;
                let _ = client.shutdown().await;
            }
        }
    });
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::empty())
        .unwrap_or_default())
}

/// Copies the shim's exec stream to the client (raw with a terminal) and
/// the client's input to the shim, until the exit frame; then records the
/// exit code, before the client sees its stream end (it asks for the code
/// at once).
async fn relay<C>(shim: ShimStream, client: Option<C>, rec: &ExecRecord, engine: &Engine)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut shim_r, mut shim_w) = tokio::io::split(shim);
    let (mut client_w, input) = match client {
        Some(c) => {
            let (mut client_r, client_w) = tokio::io::split(c);
            let input = rec.config.attach_stdin.then(|| {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_r, &mut shim_w).await;
                    let _ = shim_w.shutdown().await;
                })
            });
            (Some(client_w), input)
        }
        None => (None, None),
    };
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 << 10];
    let mut code = 255;
    loop {
        if shim_r.read_exact(&mut header).await.is_err() {
            break;
        }
        let mut len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if header[0] == EXIT_STREAM {
            let mut body = vec![0u8; len.min(4096)];
            if shim_r.read_exact(&mut body).await.is_ok() {
                if let Ok(e) = serde_json::from_slice::<ExecExit>(&body) {
                    code = e.exit_code;
                }
            }
            break;
        }
        let wanted = match header[0] {
            STDERR => rec.config.attach_stderr,
            _ => rec.config.attach_stdout,
        };
        if wanted && !rec.config.tty {
            if let Some(w) = &mut client_w {
                if w.write_all(&header).await.is_err() {
                    client_w = None;
                }
            }
        }
        while len > 0 {
            let n = len.min(buf.len());
            if shim_r.read_exact(&mut buf[..n]).await.is_err() {
                len = usize::MAX;
                break;
            }
            if wanted {
                if let Some(w) = &mut client_w {
                    if w.write_all(&buf[..n]).await.is_err() {
                        client_w = None;
                    }
                }
            }
            len -= n;
        }
        if len == usize::MAX {
            break;
        }
    }
    engine.exec_exited(&rec.id, code);
    if let Some(w) = &mut client_w {
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    }
    if let Some(i) = input {
        i.abort();
    }
}
