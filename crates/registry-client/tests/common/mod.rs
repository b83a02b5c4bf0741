//! A registry written for the tests (axum on 127.0.0.1:0) that misbehaves
//! on request: wrong bytes, short bodies, resets, hangs, error statuses,
//! oversized or oddly typed manifests, and a Bearer token service.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

pub fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// How the registry serves one blob.
#[derive(Clone, Debug, PartialEq)]
pub enum Blob {
    Normal,
    /// Other bytes of the same length.
    WrongBytes,
    /// The registry holds only the first N bytes (a Range past them is
    /// answered 416).
    Truncated(usize),
    /// The first answer stops after N bytes with a reset; later ones are fine.
    ResetOnceAt(usize),
    /// Every answer sends N bytes then nothing more.
    HangAt(usize),
    /// Answer with this status (every time, or the first `times` times).
    Status(u16, usize),
}

#[derive(Default)]
pub struct State_ {
    pub blobs: HashMap<String, Vec<u8>>,
    /// reference (tag or digest) -> (content type, bytes)
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    pub blob_mode: HashMap<String, Blob>,
    /// Status for manifest requests: (status, times; usize::MAX = always).
    pub manifest_status: Option<(u16, usize)>,
    /// A Docker-Content-Digest header that lies.
    pub lying_digest: Option<String>,
    /// Bytes of each blob served.
    pub served: HashMap<String, u64>,
    /// Range headers seen per blob.
    pub ranges: Vec<(String, String)>,
    /// Bearer auth: (user, pass); tokens fetched.
    pub bearer: Option<(String, String)>,
    pub token_requests: Vec<String>,
}

pub type Shared = Arc<Mutex<State_>>;

pub struct Fake {
    pub addr: String,
    pub state: Shared,
    _rt: tokio::runtime::Runtime,
}

impl Fake {
    pub fn start() -> Fake {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state: Shared = Arc::default();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token))
            .fallback(handle)
            .with_state(state.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake {
            addr,
            state,
            _rt: rt,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State_) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn served(&self, d: &str) -> u64 {
        self.with(|s| s.served.get(d).copied().unwrap_or(0))
    }
}

async fn token(State(st): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    use base64::Engine as _;
    let mut s = st.lock().unwrap();
    let Some((u, p)) = s.bearer.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let q = uri.query().unwrap_or("").to_owned();
    s.token_requests.push(q.clone());
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return (StatusCode::UNAUTHORIZED, r#"{"details":"bad credentials"}"#).into_response();
    }
    let scope = q
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .collect::<Vec<_>>()
        .join(" ");
    axum::Json(serde_json::json!({"token": format!("tok {scope}"), "expires_in": 300}))
        .into_response()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Incompressible bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn errors(code: &str, msg: &str) -> String {
    serde_json::json!({"errors":[{"code":code,"message":msg,"detail":null}]}).to_string()
}

async fn handle(
    State(st): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let mut s = st.lock().unwrap();
    if s.bearer.is_some() {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = auth.starts_with("Bearer tok ")
            && (path == "/v2/"
                || path
                    .strip_prefix("/v2/")
                    .and_then(|p| p.split("/manifests/").next())
                    .and_then(|p| p.split("/blobs/").next())
                    .is_some_and(|repo| auth.contains(&format!("repository:{repo}:pull"))));
        if !ok {
            let realm = format!(
                "http://{}/token",
                headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
            );
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    "www-authenticate",
                    format!(r#"Bearer realm="{realm}",service="fake""#),
                )],
                errors("UNAUTHORIZED", "authentication required"),
            )
                .into_response();
        }
    }
    if path == "/v2/" {
        return "{}".into_response();
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some((_, reference)) = rest.rsplit_once("/manifests/") {
        if let Some((code, times)) = s.manifest_status {
            if times > 0 {
                s.manifest_status = Some((code, times.saturating_sub(1)));
                return (
                    StatusCode::from_u16(code).unwrap(),
                    errors("DENIED", &format!("status {code} as asked")),
                )
                    .into_response();
            }
        }
        let Some((ct, body)) = s.manifests.get(reference).cloned() else {
            return (
                StatusCode::NOT_FOUND,
                errors("MANIFEST_UNKNOWN", "manifest unknown"),
            )
                .into_response();
        };
        let d = s.lying_digest.clone().unwrap_or_else(|| digest(&body));
        return ([("content-type", ct), ("docker-content-digest", d)], body).into_response();
    }
    if let Some((_, d)) = rest.rsplit_once("/blobs/") {
        let d = d.to_owned();
        let Some(body) = s.blobs.get(&d).cloned() else {
            return (
                StatusCode::NOT_FOUND,
                errors("BLOB_UNKNOWN", "blob unknown"),
            )
                .into_response();
        };
        let mode = s.blob_mode.get(&d).cloned().unwrap_or(Blob::Normal);
        let start = match headers.get("range").and_then(|v| v.to_str().ok()) {
            Some(r) => {
                s.ranges.push((d.clone(), r.to_owned()));
                r.trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse::<usize>()
                    .unwrap_or(0)
            }
            None => 0,
        };
        let status = if start > 0 {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        if method == Method::HEAD {
            return ([("content-length", body.len().to_string())], "").into_response();
        }
        let part = body[start.min(body.len())..].to_vec();
        let served = s.served.entry(d.clone()).or_default();
        match mode {
            Blob::Normal => {
                *served += part.len() as u64;
                (status, part).into_response()
            }
            Blob::WrongBytes => {
                *served += part.len() as u64;
                let mut p = part;
                for b in p.iter_mut() {
                    *b ^= 0x5a;
                }
                (status, p).into_response()
            }
            Blob::Truncated(n) => {
                if start >= n {
                    return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                }
                let p = body[start..n.min(body.len())].to_vec();
                *served += p.len() as u64;
                (status, p).into_response()
            }
            Blob::ResetOnceAt(n) => {
                s.blob_mode.insert(d.clone(), Blob::Normal);
                let served = s.served.entry(d.clone()).or_default();
                let head = Bytes::from(part[..n.min(part.len())].to_vec());
                *served += head.len() as u64;
                let len = part.len();
                // The head goes out, then the connection breaks.
                let stream = futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(head)])
                    .chain(futures_util::stream::once(async {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "reset as asked",
                        ))
                    }));
                (
                    status,
                    [("content-length", len.to_string())],
                    Body::from_stream(stream),
                )
                    .into_response()
            }
            Blob::HangAt(n) => {
                let head = Bytes::from(part[..n.min(part.len())].to_vec());
                *served += head.len() as u64;
                let len = part.len();
                let stream = futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(head)])
                    .chain(futures_util::stream::pending());
                (
                    status,
                    [("content-length", len.to_string())],
                    Body::from_stream(stream),
                )
                    .into_response()
            }
            Blob::Status(code, times) => {
                if times > 0 {
                    s.blob_mode.insert(d.clone(), Blob::Status(code, times - 1));
                    return (
                        StatusCode::from_u16(code).unwrap(),
                        errors("UNKNOWN", "as asked"),
                    )
                        .into_response();
                }
                let served = s.served.entry(d.clone()).or_default();
                *served += part.len() as u64;
                (status, part).into_response()
            }
        }
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

use futures_util::StreamExt as _;

/// A gzip layer with one file.
pub fn gz_layer(name: &str, contents: &[u8]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(contents.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    b.append_data(&mut h, name, contents).unwrap();
    let tar = b.into_inner().unwrap();
    let diff_id = digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An image of `layers` (gzip blobs with their diff IDs) stored in the
/// fake under `repo:tag`; returns (manifest digest, config digest, layer digests).
pub fn add_image(
    fake: &Fake,
    tag: &str,
    layers: &[(Vec<u8>, String)],
) -> (String, String, Vec<String>) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": pier_image::manifest::host_arch(),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let cd = digest(&config);
    let mut descs = Vec::new();
    let mut lds = Vec::new();
    fake.with(|s| {
        s.blobs.insert(cd.clone(), config.clone());
        for (gz, _) in layers {
            let d = digest(gz);
            s.blobs.insert(d.clone(), gz.clone());
            descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
            lds.push(d);
        }
    });
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = digest(&manifest);
    fake.with(|s| {
        s.manifests
            .insert(tag.to_owned(), (OCI_MANIFEST.into(), manifest.clone()));
        s.manifests
            .insert(md.clone(), (OCI_MANIFEST.into(), manifest));
    });
    (md, cd, lds)
}

/// A store at `dir` holding a one-layer image `name` imported from `gz`.
pub fn store_with_image(dir: &std::path::Path, name: &str, gz: &[u8]) -> Arc<pier_image::Store> {
    let store = Arc::new(pier_image::Store::open(dir).unwrap());
    store
        .import(
            gz,
            &pier_image::ImportOptions {
                reference: Some(name.to_owned()),
                message: None,
            },
        )
        .unwrap();
    store
}

/// A two-worker tokio runtime for a test's async client calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
