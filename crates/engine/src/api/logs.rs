//! `GET /containers/{id}/logs`: the container's json-file log, filtered by
//! stream, `since`, `until` and `tail`, in docker's multiplexed framing (raw
//! for a tty container); with `follow`, new output as it comes until the
//! container stops.

use super::{flag, Query, State};
use crate::container::logs::{parse_api_time, Changes, Options, Reader};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How often a follower checks whether the container still runs (new
/// output wakes it at once).
const FOLLOW_POLL: Duration = Duration::from_millis(100);

pub async fn logs(engine: State, Path(id): Path<String>, q: Query) -> Result<Response> {
    let h = engine.find(&id)?;
    let rec = h.record();
    let stdout = flag(&q, "stdout");
    let stderr = flag(&q, "stderr");
    if !stdout && !stderr {
        return Err(Error::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    // As dockerd: a tail that is no count (or negative) means all.
    let tail = q
        .get("tail")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(|n| usize::try_from(n).ok());
    let time = |key: &str| {
        parse_api_time(q.get(key).map_or("", |v| v.as_str()))
            .map_err(|e| Error::bad_request(format!("invalid {key}: {e}")))
    };
    let opts = Options {
        stdout,
        stderr,
        timestamps: flag(&q, "timestamps"),
        since: time("since")?,
        until: time("until")?,
        tail,
        raw: rec.config.tty.unwrap_or(false),
    };
    let follow = flag(&q, "follow") && rec.state.running();
    let path = engine.log_path(&rec.id);
    let content_type = if opts.raw {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    // File reads block; one thread per reader keeps them off the runtime.
    std::thread::Builder::new()
        .name("pierd-logs".into())
        .spawn(move || {
            let stopped = || {
                let r = h.record();
                h.removed() || !r.state.running()
            };
            let mut reader = None;
            let mut changes = None;
            loop {
                // Read the state first: what was logged before a stop is
                // then all in the file when we read it.
                let done = !follow || stopped();
                if reader.is_none() {
                    match Reader::open(&path) {
                        Ok(mut r) => {
                            if let Some(n) = opts.tail {
                                if let Err(e) = r.seek_tail(n) {
                                    let _ = tx.blocking_send(Err(e));
                                    return;
                                }
                            }
                            reader = Some(r);
                            if follow {
                                changes = Some(Changes::watch(&path));
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
                if let Some(r) = reader.as_mut() {
                    let entries = match r.read_new() {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    };
                    let mut out = Vec::new();
                    for e in &entries {
                        if opts.past_until(e) {
                            if !out.is_empty() {
                                let _ = tx.blocking_send(Ok(Bytes::from(out)));
                            }
                            return;
                        }
                        if opts.wants(e) {
                            opts.encode(e, &mut out);
                        }
                        if out.len() >= 64 * 1024 {
                            let chunk = std::mem::take(&mut out);
                            if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                                return;
                            }
                        }
                    }
                    if !out.is_empty() && tx.blocking_send(Ok(Bytes::from(out))).is_err() {
                        return;
                    }
                }
                if tx.is_closed() {
                    return;
                }
                if reader.as_ref().is_some_and(Reader::more) {
                    continue;
                }
                if done {
                    return;
                }
                match &changes {
                    Some(c) => c.wait(FOLLOW_POLL),
                    None => std::thread::sleep(FOLLOW_POLL),
                }
            }
        })
        .map_err(|e| Error::internal(format!("starting a log reader: {e}")))?;
    let body = Body::from_stream(tokio_stream(rx));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The receiving end of a channel as a stream.
fn tokio_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
