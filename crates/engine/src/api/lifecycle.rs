//! Lifecycle endpoints: start, stop, restart, kill, pause, unpause, rename,
//! wait, remove.

use super::{flag, Query, State};
use crate::engine::{parse_signal, WaitCondition};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `signal` of the query, by name or number.
fn signal(q: &Query) -> Result<Option<i32>> {
    match q.get("signal").filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s)
            .map(Some)
            .ok_or_else(|| Error::bad_request(format!("Invalid signal: {s}"))),
        None => Ok(None),
    }
}

/// `t` (seconds before SIGKILL; -1 for ever).
fn timeout(q: &Query) -> Result<Option<i64>> {
    match q.get("t").filter(|s| !s.is_empty()) {
        Some(t) => t.parse().map(Some).map_err(|_| {
            Error::bad_request(format!(
                "invalid value for t: {t}: give the seconds to wait before killing the container"
            ))
        }),
        None => Ok(None),
    }
}

/// Not Modified is an answer, not an error.
fn no_content(r: Result<()>) -> Result<StatusCode> {
    match r {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) if e.status == StatusCode::NOT_MODIFIED => Ok(StatusCode::NOT_MODIFIED),
        Err(e) => Err(e),
    }
}

pub async fn start(engine: State, Path(id): Path<String>) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    no_content(engine.start_by_user(&h).await)
}

pub async fn stop(engine: State, Path(id): Path<String>, q: Query) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    let (t, sig) = (timeout(&q)?, signal(&q)?);
    no_content(engine.stop(&h, t, sig).await)
}

pub async fn restart(engine: State, Path(id): Path<String>, q: Query) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    let (t, sig) = (timeout(&q)?, signal(&q)?);
    engine.restart(&h, t, sig).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Errors name the container as dockerd's do: `Cannot kill container: NAME: ...`.
pub async fn kill(engine: State, Path(id): Path<String>, q: Query) -> Result<StatusCode> {
    let sig = signal(&q)?.unwrap_or(libc::SIGKILL);
    let killed = match engine.find(&id) {
        Ok(h) => engine.kill(&h, sig).await,
        Err(e) => Err(e),
    };
    killed.map_err(|e| {
        Error::new(
            e.status,
            format!("Cannot kill container: {id}: {}", e.message),
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(engine: State, Path(id): Path<String>) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    engine.pause(&h).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(engine: State, Path(id): Path<String>) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    engine.unpause(&h).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename(engine: State, Path(id): Path<String>, q: Query) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    engine.rename(&h, q.get("name").map_or("", String::as_str))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `force` kills a running container first; `v` (anonymous volumes) is
/// accepted: there are no volumes to remove yet.
pub async fn remove(engine: State, Path(id): Path<String>, q: Query) -> Result<StatusCode> {
    let h = engine.find(&id)?;
    engine
        .remove_with(&h, flag(&q, "force"), flag(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers headers at once and the body when the condition holds, so a
/// client may wait first and start the container afterwards.
pub async fn wait(engine: State, Path(id): Path<String>, q: Query) -> Result<Response> {
    let h = engine.find(&id)?;
    let condition = match q.get("condition").map(String::as_str).unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(Error::bad_request(format!("invalid condition: {other:?}"))),
    };
    let body = futures_util::stream::once(async move {
        let code = engine.wait(&h, condition).await;
        let line = serde_json::json!({ "StatusCode": code, "Error": null }).to_string() + "\n";
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
