//! Image endpoints: list, import (`POST /images/create?fromSrc=-`),
//! inspect, history, tag, delete, prune, save (`/images/get`,
//! `/images/{name}/get`), load.

use super::{Query, State};
use crate::error::{Error, Result};
use axum::body::Body;
use axum::Json;
use bollard_stubs::models::ImageSummary;
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::Read;

/// `GET /images/json?all=&digests=&filters=`: filters `reference=`,
/// `dangling=`, `before=`, `since=`, `label=`, as Docker.
pub async fn list(engine: State, q: Query) -> Result<Json<Vec<ImageSummary>>> {
    let filters = parse_filters(&q)?;
    let store = engine.images.clone();
    let images = tokio::task::spawn_blocking(move || -> Result<Vec<ImageSummary>> {
        let all = store.list()?;
        let created_of = |name: &str| -> Result<(i64, String)> {
            let img = store.resolve(name)?;
            let c = all
                .iter()
                .find(|i| i.id == img.id)
                .map(|i| i.created)
                .unwrap_or(0);
            Ok((c, img.id))
        };
        let mut refs = Vec::new();
        let mut dangling = None;
        let mut before = None;
        let mut since = None;
        let mut labels = Vec::new();
        for (k, v) in &filters {
            match k.as_str() {
                "reference" => refs.push(v.clone()),
                "dangling" => dangling = Some(matches!(v.as_str(), "true" | "1")),
                "before" => before = Some(created_of(v)?),
                "since" => since = Some(created_of(v)?),
                "label" => labels.push(v.clone()),
                other => return Err(Error::bad_request(format!("invalid filter '{other}'"))),
            }
        }
        let mut out = Vec::new();
        for i in all.iter() {
            if dangling.is_some_and(|d| d != i.repo_tags.is_empty()) {
                continue;
            }
            if before
                .as_ref()
                .is_some_and(|(c, id)| i.created > *c || i.id == *id)
            {
                continue;
            }
            if since
                .as_ref()
                .is_some_and(|(c, id)| i.created < *c || i.id == *id)
            {
                continue;
            }
            let tags: Vec<String> = if refs.is_empty() {
                i.repo_tags.clone()
            } else {
                i.repo_tags
                    .iter()
                    .filter(|t| refs.iter().any(|r| reference_matches(r, t)))
                    .cloned()
                    .collect()
            };
            if !refs.is_empty() && tags.is_empty() {
                continue;
            }
            let d = store.inspect(&i.id)?;
            if !labels.iter().all(|l| has_label(&d.config, l)) {
                continue;
            }
            let labels: std::collections::HashMap<String, String> =
                serde_json::from_value(d.config["config"]["Labels"].clone()).unwrap_or_default();
            out.push(ImageSummary {
                id: i.id.clone(),
                parent_id: String::new(),
                repo_tags: tags,
                repo_digests: d.repo_digests,
                created: i.created,
                size: i.size as i64,
                shared_size: -1,
                labels,
                containers: -1,
                manifests: None,
                descriptor: None,
            });
        }
        Ok(out)
    })
    .await??;
    Ok(Json(images))
}

/// Docker's `reference=` filter: a glob (`*`, `?`) over the familiar name,
/// matched against `repo:tag` and, when the pattern has no tag, `repo`.
pub fn reference_matches(pattern: &str, repo_tag: &str) -> bool {
    let repo = match repo_tag.rfind(':') {
        Some(i) if !repo_tag[i..].contains('/') => &repo_tag[..i],
        _ => repo_tag,
    };
    glob(pattern.as_bytes(), repo_tag.as_bytes()) || glob(pattern.as_bytes(), repo.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// `POST /images/create`: with `fromSrc=-` imports the request body as a
/// rootfs tarball (`docker import`); with `fromImage` pulls from a registry.
pub async fn create(
    engine: State,
    q: Query,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    if q.get("fromSrc").map(String::as_str) != Some("-") {
        if q.get("fromImage").is_some_and(|i| !i.is_empty()) {
            return super::distribution::pull(engine.0.clone(), &q, &headers).await;
        }
        return Err(Error::bad_request(
            "give fromImage (pull from a registry) or fromSrc=- (import the request body)",
        ));
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
    let (reader, feeder) = BodyReader::feed(body);
    let store = engine.images.clone();
    let summary = tokio::task::spawn_blocking(move || store.import(reader, &opts)).await??;
    feeder.abort();
    Ok(Json(serde_json::json!({ "status": summary.id })).into_response())
}

/// Blocking `Read` over the chunks of a request body.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl BodyReader {
    /// A blocking reader of `body` for a store thread, and the task that
    /// feeds it (abort it once the reader is done).
    fn feed(body: Body) -> (BodyReader, tokio::task::JoinHandle<()>) {
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
        let reader = BodyReader {
            rx,
            current: Bytes::new(),
        };
        (reader, feeder)
    }
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

/// `GET /images/{name}/json`, `/images/{name}/history`, `/images/{name}/get`;
/// names may contain slashes.
pub async fn get_by_path(
    engine: State,
    q: Query,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    if let Some(name) = rest.strip_suffix("/json") {
        return Ok(Json(inspect_json(&engine, name).await?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return Ok(Json(history_json(&engine, name).await?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save_response(&engine, vec![name.to_string()]).await;
    }
    let _ = q;
    Err(Error::not_found(format!("page not found: /images/{rest}")))
}

/// Docker's `image inspect` object.
pub async fn inspect_json(engine: &crate::Engine, name: &str) -> Result<serde_json::Value> {
    let store = engine.images.clone();
    let name = name.to_string();
    let d = tokio::task::spawn_blocking(move || store.inspect(&name)).await??;
    let c = &d.config;
    let layers = c["rootfs"]["diff_ids"].clone();
    Ok(serde_json::json!({
        "Id": d.id,
        "RepoTags": d.repo_tags,
        "RepoDigests": d.repo_digests,
        "Parent": "",
        "Comment": c["history"].as_array().and_then(|h| h.last()).and_then(|h| h.get("comment")).cloned().unwrap_or_else(|| "".into()),
        "Created": c.get("created").cloned().unwrap_or_else(|| "".into()),
        "DockerVersion": c.get("docker_version").cloned().unwrap_or_else(|| "".into()),
        "Author": c.get("author").cloned().unwrap_or_else(|| "".into()),
        "Config": c.get("config").cloned().unwrap_or(serde_json::Value::Null),
        "Architecture": c.get("architecture").cloned().unwrap_or_else(|| "".into()),
        "Variant": c.get("variant").cloned(),
        "Os": c.get("os").cloned().unwrap_or_else(|| "".into()),
        "Size": d.size,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": d.layers.iter().rev().skip(1).map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                "UpperDir": d.layers.last().map(|p| p.display().to_string()).unwrap_or_default(),
            }
        },
        "RootFS": {"Type": "layers", "Layers": layers},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": {"mediaType": d.manifest_media_type, "digest": d.manifest_digest},
    }))
}

/// Docker's `history` rows, newest first: one per history entry; the
/// entries that made a layer carry its size and (the newest) the image ID.
pub async fn history_json(engine: &crate::Engine, name: &str) -> Result<serde_json::Value> {
    let store = engine.images.clone();
    let name = name.to_string();
    let (d, sizes) = tokio::task::spawn_blocking(move || {
        let d = store.inspect(&name)?;
        let sizes: Vec<u64> = d.layers.iter().map(|p| pier_image::du(p)).collect();
        Ok::<_, pier_image::Error>((d, sizes))
    })
    .await??;
    let hist = d.config["history"].as_array().cloned().unwrap_or_default();
    let mut layer = 0;
    let mut rows = Vec::new();
    for h in &hist {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty {
            0
        } else {
            let s = sizes.get(layer).copied().unwrap_or(0);
            layer += 1;
            s
        };
        let created = h["created"]
            .as_str()
            .and_then(pier_common::time::parse_rfc3339)
            .unwrap_or(0);
        rows.push(serde_json::json!({
            "Id": "<missing>",
            "Created": created,
            "CreatedBy": h["created_by"].as_str().unwrap_or(""),
            "Tags": null,
            "Size": size,
            "Comment": h["comment"].as_str().unwrap_or(""),
        }));
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first["Id"] = d.id.clone().into();
        first["Tags"] = serde_json::json!(d.repo_tags);
    }
    Ok(serde_json::Value::Array(rows))
}

/// A blocking `Write` that sends what it gets as response body chunks.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
    /// Ends the body with an error (the client sees a broken transfer).
    pub fn fail(self, e: String) {
        let _ = self.tx.blocking_send(Err(std::io::Error::other(e)));
    }
}

const CHUNK: usize = 512 << 10;

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A streamed response body fed by `f` writing in a blocking thread.
pub fn stream_body(
    content_type: &'static str,
    f: impl FnOnce(&mut ChannelWriter) -> std::result::Result<(), String> + Send + 'static,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        match f(&mut w).and_then(|()| std::io::Write::flush(&mut w).map_err(|e| e.to_string())) {
            Ok(()) => {}
            Err(e) => w.fail(e),
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn save_response(
    engine: &crate::Engine,
    names: Vec<String>,
) -> Result<axum::response::Response> {
    if names.is_empty() {
        return Err(Error::bad_request("give at least one image to save"));
    }
    // Resolve first, so a bad name is a 404 rather than a broken stream.
    let store = engine.images.clone();
    let check = names.clone();
    tokio::task::spawn_blocking(move || {
        check.iter().try_for_each(|n| store.resolve(n).map(|_| ()))
    })
    .await??;
    let store = engine.images.clone();
    Ok(stream_body("application/x-tar", move |w| {
        store.save(&names, w).map_err(|e| e.to_string())
    }))
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(engine: State, uri: axum::http::Uri) -> Result<axum::response::Response> {
    let names: Vec<String> = query_all(uri.query().unwrap_or(""), "names");
    save_response(&engine, names).await
}

/// All values of a repeated query parameter.
pub fn query_all(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .filter(|v| !v.is_empty())
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /images/load`: the body is an archive; the answer is Docker's
/// stream of JSON messages (`{"stream": "Loaded image: x\n"}`).
pub async fn load(engine: State, q: Query, body: Body) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    let quiet = super::flag(&q, "quiet");
    let (reader, feeder) = BodyReader::feed(body);
    let store = engine.images.clone();
    let res = tokio::task::spawn_blocking(move || store.load(reader)).await?;
    feeder.abort();
    let mut out = String::new();
    match res {
        Ok(images) => {
            for img in images {
                let mut line = |s: String| {
                    out.push_str(&serde_json::json!({ "stream": s + "\n" }).to_string());
                    out.push('\n');
                };
                if img.tags.is_empty() {
                    line(format!("Loaded image ID: {}", img.id));
                }
                for t in &img.tags {
                    line(format!("Loaded image: {t}"));
                }
            }
        }
        // Docker answers 200 and reports a failed load in the stream.
        Err(e) => {
            let m = e.to_string();
            out.push_str(
                &serde_json::json!({"errorDetail": {"message": m}, "error": m}).to_string(),
            );
            out.push('\n');
        }
    }
    let _ = quiet;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// `POST /images/{name}/tag?repo=&tag=` and `POST /images/{name}/push`.
pub async fn post_by_path(
    engine: State,
    q: Query,
    headers: axum::http::HeaderMap,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    if let Some(name) = rest.strip_suffix("/push") {
        return super::distribution::push(engine.0.clone(), name, &q, &headers).await;
    }
    let Some(name) = rest.strip_suffix("/tag") else {
        return Err(Error::not_found(format!("page not found: /images/{rest}")));
    };
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::bad_request("repository name (repo) not specified"))?;
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.clone(),
    };
    let store = engine.images.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || store.tag(&name, &target)).await??;
    Ok(axum::http::StatusCode::CREATED.into_response())
}

/// Which container (if any) uses image `id`: (container id, running).
pub fn image_user(engine: &crate::Engine, id: &str) -> Option<(String, bool)> {
    let all = engine.list();
    all.iter()
        .find(|c| c.image_id == id && c.state.running())
        .or_else(|| all.iter().find(|c| c.image_id == id))
        .map(|c| (c.id.clone(), c.state.running()))
}

fn deleted_json(d: Vec<pier_image::Deleted>) -> Vec<serde_json::Value> {
    d.into_iter()
        .map(|d| match d {
            pier_image::Deleted::Untagged(t) => serde_json::json!({ "Untagged": t }),
            pier_image::Deleted::Deleted(i) => serde_json::json!({ "Deleted": i }),
        })
        .collect()
}

/// `DELETE /images/{name}?force=&noprune=`.
pub async fn delete_by_path(
    engine: State,
    q: Query,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<Vec<serde_json::Value>>> {
    let force = super::flag(&q, "force");
    let e = engine.0.clone();
    let d = tokio::task::spawn_blocking(move || {
        e.images.delete(&name, force, &|id| image_user(&e, id))
    })
    .await??;
    Ok(Json(deleted_json(d)))
}

/// Docker's `filters` query value: `{"key": ["v", ...]}` or the old
/// `{"key": {"v": true}}` form.
pub fn parse_filters(
    q: &std::collections::HashMap<String, String>,
) -> Result<Vec<(String, String)>> {
    let Some(raw) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| Error::bad_request(format!("invalid filter: {e}")))?;
    let mut out = Vec::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        match vals {
            serde_json::Value::Array(a) => out.extend(
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(|x| (k.clone(), x.to_string())),
            ),
            serde_json::Value::Object(o) => out.extend(o.keys().map(|x| (k.clone(), x.clone()))),
            _ => return Err(Error::bad_request(format!("invalid filter {k:?}"))),
        }
    }
    Ok(out)
}

/// `POST /images/prune?filters=`: dangling images (all unused with
/// `dangling=false`), then garbage collection.
pub async fn prune(engine: State, q: Query) -> Result<Json<serde_json::Value>> {
    let filters = parse_filters(&q)?;
    let mut all = false;
    let mut labels = Vec::new();
    let mut until: Option<i64> = None;
    for (k, v) in &filters {
        match k.as_str() {
            "dangling" => all = matches!(v.as_str(), "false" | "0"),
            "label" => labels.push(v.clone()),
            "until" => until = Some(parse_time(v)?),
            other => return Err(Error::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let e = engine.0.clone();
    let (deleted, freed) = tokio::task::spawn_blocking(move || {
        let used: std::collections::HashSet<String> =
            e.list().into_iter().map(|c| c.image_id).collect();
        let store = e.images.clone();
        let keep = |img: &pier_image::ImageSummary| {
            if until.is_some_and(|u| img.created >= u) {
                return true;
            }
            if labels.is_empty() {
                return false;
            }
            let cfg = store.inspect(&img.id).map(|d| d.config).unwrap_or_default();
            !labels.iter().all(|l| has_label(&cfg, l))
        };
        e.images.prune(all, &|id| used.contains(id), &keep)
    })
    .await??;
    let d = deleted_json(deleted);
    Ok(Json(serde_json::json!({
        "ImagesDeleted": if d.is_empty() { serde_json::Value::Null } else { d.into() },
        "SpaceReclaimed": freed,
    })))
}

/// `label=key` or `label=key=value` against a config's labels.
pub fn has_label(config: &serde_json::Value, filter: &str) -> bool {
    let labels = &config["config"]["Labels"];
    match filter.split_once('=') {
        Some((k, v)) => labels[k].as_str() == Some(v),
        None => !labels[filter].is_null(),
    }
}

/// A filter time: unix seconds or RFC 3339.
fn parse_time(v: &str) -> Result<i64> {
    v.parse::<i64>()
        .ok()
        .or_else(|| pier_common::time::parse_rfc3339(v))
        .ok_or_else(|| {
            Error::bad_request(format!("invalid time {v:?}: give unix seconds or RFC 3339"))
        })
}
