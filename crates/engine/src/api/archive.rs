//! `docker cp`'s archive API: `GET /containers/{id}/archive?path=` (a tar
//! of the path), `HEAD` (its stat only) and `PUT ...?path=` (extract a tar
//! into a directory), on running and stopped containers alike. The path's
//! stat travels base64-encoded in `X-Docker-Container-Path-Stat`.

use super::images::ChannelWriter;
use super::{Query, State};
use crate::container::archive::{self, CpError, ExtractOptions, PathStat};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::io::Read;
use std::os::fd::AsFd;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn query_path(q: &Query) -> Result<String> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| Error::bad_request("path cannot be empty: give the path in the container"))
}

fn cp_error(e: CpError, path: &str, container: &str) -> Error {
    match e {
        CpError::NotFound => Error::not_found(format!(
            "Could not find the file {path} in container {container}"
        )),
        // Docker's words exactly; its clients match on them.
        CpError::NotDirectory => Error::bad_request("extraction point is not a directory"),
        CpError::Invalid(m) => Error::bad_request(m),
        CpError::Io(m) => Error::internal(format!("{path} in container {container}: {m}")),
    }
}

/// For a running container, its /etc files mounted from the container's
/// directory (docker shows them as the container sees them).
fn overrides_for(
    engine: &crate::Engine,
    h: &crate::engine::Handle,
) -> impl Fn(std::os::fd::BorrowedFd<'_>) -> archive::Overrides + Send + 'static {
    let files: Vec<(&'static str, std::path::PathBuf)> = if h.record().state.running() {
        let dir = engine.config.containers_dir().join(&h.id);
        ["hostname", "hosts", "resolv.conf"]
            .into_iter()
            .zip(["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"])
            .map(|(src, dst)| (dst, dir.join(src)))
            .collect()
    } else {
        Vec::new()
    };
    move |root| archive::Overrides::new(root, &files)
}

fn stat_response(st: &PathStat, body: Body) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "application/x-tar")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&st.header_value()) {
        resp.headers_mut().insert(STAT_HEADER, v);
    }
    resp
}

/// `HEAD /containers/{id}/archive?path=`.
pub async fn head(engine: State, Path(id): Path<String>, q: Query) -> Result<Response> {
    let path = query_path(&q)?;
    let h = engine.find(&id)?;
    let ov = overrides_for(&engine, &h);
    let p = path.clone();
    let st = engine
        .with_rootfs(h, false, move |root| {
            let root = archive::open_root(root)?;
            let item = archive::resolve(root.as_fd(), &p)?;
            archive::stat_with(root.as_fd(), &item, &ov(root.as_fd()))
        })
        .await?
        .map_err(|e| cp_error(e, &path, &id))?;
    Ok(stat_response(&st, Body::empty()))
}

/// `GET /containers/{id}/archive?path=`: the stat comes first (errors are
/// answered before any body), then the tar streams.
pub async fn get(engine: State, Path(id): Path<String>, q: Query) -> Result<Response> {
    let path = query_path(&q)?;
    let h = engine.find(&id)?;
    let ov = overrides_for(&engine, &h);
    let (stat_tx, stat_rx) = tokio::sync::oneshot::channel::<Result<PathStat>>();
    // Shared with the task: if the filesystem cannot be opened (mount
    // failure) the closure never runs and the task sends that error.
    let stat_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(stat_tx)));
    let task_tx = stat_tx.clone();
    let send = move |tx: &std::sync::Mutex<Option<_>>, r: Result<PathStat>| {
        let tx: Option<tokio::sync::oneshot::Sender<Result<PathStat>>> =
            tx.lock().ok().and_then(|mut t| t.take());
        tx.is_some_and(|tx| tx.send(r).is_ok())
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let p = path.clone();
    let (path2, id2) = (path.clone(), id.clone());
    let engine2 = engine.0.clone();
    tokio::spawn(async move {
        let res = engine2
            .with_rootfs(h, false, move |root| {
                let prepared = archive::open_root(root).and_then(|root| {
                    let item = archive::resolve(root.as_fd(), &p)?;
                    let ov = ov(root.as_fd());
                    let st = archive::stat_with(root.as_fd(), &item, &ov)?;
                    Ok((root, item, st, ov))
                });
                let (_root, item, st, ov) = match prepared {
                    Ok(x) => x,
                    Err(e) => {
                        send(&stat_tx, Err(cp_error(e, &path2, &id2)));
                        return;
                    }
                };
                if !send(&stat_tx, Ok(st)) {
                    return;
                }
                let mut w = ChannelWriter::new(tx);
                let written = archive::write_tar_with(&item, &ov, &mut w)
                    .and_then(|()| std::io::Write::flush(&mut w));
                if let Err(e) = written {
                    w.fail(format!("archiving {p}: {e}"));
                }
            })
            .await;
        if let Err(e) = res {
            send(&task_tx, Err(e));
        }
    });
    let st = stat_rx.await.map_err(|_| {
        Error::internal(format!(
            "archiving {path} of container {id}: the task ended"
        ))
    })??;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(stat_response(&st, Body::from_stream(stream)))
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`:
/// extracts the tar body into the directory `path`.
pub async fn put(engine: State, Path(id): Path<String>, q: Query, body: Body) -> Result<Response> {
    let (reader, feeder) = BodyReader::feed(body);
    let res = put_body(&engine, &id, &q, reader).await;
    feeder.abort();
    res.map(|()| axum::http::StatusCode::OK.into_response())
}

/// Reads the rest of the upload before an error is answered, so that the
/// client, still sending, gets the answer rather than a broken connection.
async fn drained(mut reader: BodyReader, e: Error) -> Error {
    let _ =
        tokio::task::spawn_blocking(move || std::io::copy(&mut reader, &mut std::io::sink())).await;
    e
}

async fn put_body(engine: &State, id: &str, q: &Query, reader: BodyReader) -> Result<()> {
    let checked = query_path(q).and_then(|path| {
        let h = engine.find(id)?;
        if h.record().host_config.readonly_rootfs == Some(true) {
            // dockerd answers 500 here (the API spec says 403).
            return Err(Error::internal("container rootfs is marked read-only"));
        }
        // As dockerd: a copy into a read-only bind or volume is refused
        // (the view mounts them read-only too, should a symlink lead there).
        let target = crate::container::mounts::clean(&path);
        let under = |d: &str| target == d || target.starts_with(&format!("{d}/"));
        if h.record()
            .mounts
            .iter()
            .any(|m| !m.rw && under(&m.destination))
        {
            return Err(Error::internal("mounted volume is marked read-only"));
        }
        Ok((path, h))
    });
    let (path, h) = match checked {
        Ok(x) => x,
        Err(e) => return Err(drained(reader, e).await),
    };
    let rec = h.record();
    let no_overwrite = super::flag(q, "noOverwriteDirNonDir");
    let copy_uid_gid = super::flag(q, "copyUIDGID");
    let user = rec.config.user.clone().unwrap_or_default();
    let p = path.clone();
    let res = engine
        .with_rootfs(h, true, move |root| {
            let mut reader = reader;
            let r = (|| {
                let root = archive::open_root(root)?;
                let chown = if copy_uid_gid && !user.is_empty() {
                    let read = |f: &str| archive::read_small(root.as_fd(), f).unwrap_or_default();
                    let u = crate::container::user::resolve(
                        &user,
                        &read("/etc/passwd"),
                        &read("/etc/group"),
                    )
                    .map_err(CpError::Invalid)?;
                    Some((u.uid, u.gid))
                } else {
                    None
                };
                let opts = ExtractOptions {
                    no_overwrite_dir_non_dir: no_overwrite,
                    chown,
                };
                archive::extract(root.as_fd(), &p, &mut reader, &opts)
            })();
            if r.is_err() {
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            }
            r
        })
        .await;
    res?.map_err(|e| cp_error(e, &path, id))
}

/// A blocking reader of a request body, for a blocking thread.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<std::result::Result<Bytes, String>>,
    current: Bytes,
}

impl BodyReader {
    fn feed(body: Body) -> (BodyReader, tokio::task::JoinHandle<()>) {
        use futures_util::StreamExt;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut stream = body.into_data_stream();
        let feeder = tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| e.to_string());
                let stop = chunk.is_err();
                if tx.send(chunk).await.is_err() || stop {
                    break;
                }
            }
        });
        (
            BodyReader {
                rx,
                current: Bytes::new(),
            },
            feeder,
        )
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("reading the request: {e}")))
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
