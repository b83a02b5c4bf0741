//! A registry server of the test's own on 127.0.0.1:0 with its storage in
//! a temporary directory, stopped on drop, and small client helpers.
#![allow(dead_code)]

use pier_registry_server::{Config, Server};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct TestRegistry {
    pub url: String,
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::with(|_| {})
    }

    /// Starts a registry whose config `f` adjusts (root and address are
    /// set first).
    pub fn with(f: impl FnOnce(&mut Config)) -> TestRegistry {
        let root = tempfile::Builder::new()
            .prefix("pier-test-registry-")
            .tempdir()
            .expect("temp dir");
        let mut cfg = Config {
            addr: "127.0.0.1:0".into(),
            root: root.path().join("storage"),
            access_log: false,
            ..Config::default()
        };
        f(&mut cfg);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let server = match Server::bind(cfg).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let _ = addr_tx.send(Ok(server.local_addr().expect("local addr")));
                let _ = server
                    .run_until(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx
            .recv()
            .expect("server thread")
            .expect("registry starts");
        TestRegistry {
            url: format!("http://{addr}"),
            addr,
            root,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn storage(&self) -> std::path::PathBuf {
        self.root.path().join("storage")
    }

    /// Files in the uploads directory.
    pub fn upload_files(&self) -> usize {
        std::fs::read_dir(self.storage().join("uploads"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// GET `path` (`/v2/...`) on this registry, without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(client().get(format!("{}{path}", self.url))).await
    }

    /// HEAD `path` on this registry.
    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.send(client().head(format!("{}{path}", self.url)))
            .await
    }

    /// DELETE `path` on this registry.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(client().delete(format!("{}{path}", self.url)))
            .await
    }

    /// The body of a GET of `path`, whatever the status.
    pub async fn get_bytes(&self, path: &str) -> bytes::Bytes {
        self.get(path).await.bytes().await.expect("response body")
    }

    /// The JSON body of a GET of `path`.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    /// The status of a HEAD of blob `d` in repository `name`.
    pub async fn blob_status(&self, name: &str, d: &str) -> u16 {
        self.head(&format!("/v2/{name}/blobs/{d}"))
            .await
            .status()
            .as_u16()
    }

    /// Opens an upload session in `name` (POST, 202) and returns its
    /// absolute URL.
    pub async fn new_upload(&self, name: &str) -> String {
        let r = self
            .send(client().post(format!("{}/v2/{name}/blobs/uploads/", self.url)))
            .await;
        assert_eq!(r.status(), 202, "opening an upload in {name}");
        absolute(self, &header(&r, "location"))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        req.send().await.expect("the registry answers")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn client() -> reqwest::Client {
    // In a workspace build reqwest is compiled with rustls but no crypto
    // provider (pier-registry-client picks ring itself), and then refuses to
    // build even a plain-http client without a process default.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Resolves a Location header against the registry.
pub fn absolute(reg: &TestRegistry, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{}{location}", reg.url)
    }
}

pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The first error code of an error body.
pub async fn error_code(resp: reqwest::Response) -> String {
    let v: serde_json::Value = resp.json().await.expect("JSON error body");
    v["errors"][0]["code"]
        .as_str()
        .expect("errors[0].code")
        .to_owned()
}

/// Asserts that `resp` has `status` and an error body whose first code is
/// `code`.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status(), status, "expected {status} {code}");
    assert_eq!(error_code(resp).await, code);
}

/// PATCHes one chunk with its `Content-Range` (`START-END`) onto an upload
/// session, with no Content-Type.
pub async fn patch_chunk(location: &str, range: &str, body: &[u8]) -> reqwest::Response {
    client()
        .patch(location)
        .header("content-range", range)
        .body(body.to_vec())
        .send()
        .await
        .expect("the registry answers")
}

/// Closes an upload session with a PUT of `?digest=D` that carries the
/// last chunk and its `Content-Range`.
pub async fn put_last_chunk(
    location: &str,
    d: &str,
    range: &str,
    body: &[u8],
) -> reqwest::Response {
    client()
        .put(format!("{location}?digest={d}"))
        .header("content-range", range)
        .body(body.to_vec())
        .send()
        .await
        .expect("the registry answers")
}

/// Pushes a blob monolithically (POST then PUT); returns its digest.
pub async fn push_blob(reg: &TestRegistry, name: &str, data: &[u8]) -> String {
    let d = digest(data);
    let loc = reg.new_upload(name).await;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = client()
        .put(format!("{loc}{sep}digest={d}"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    d
}

/// A minimal OCI image manifest over `config` and `layers` (bytes pushed
/// by the caller).
pub fn image_manifest(config: &[u8], layers: &[&[u8]], media_type: &str) -> Vec<u8> {
    let (config_type, layer_type) = if media_type.contains("docker") {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": digest(config), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": layer_type, "digest": digest(l), "size": l.len()
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Pushes config + layers + an image manifest tagged `reference`; returns
/// the manifest's digest.
pub async fn push_image(reg: &TestRegistry, name: &str, reference: &str, seed: &str) -> String {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let layer = format!("layer of {seed}").into_bytes();
    push_blob(reg, name, &config).await;
    push_blob(reg, name, &layer).await;
    let m = image_manifest(&config, &[&layer], OCI_MANIFEST);
    put_manifest(reg, name, reference, &m, OCI_MANIFEST).await;
    digest(&m)
}

/// Pushes a manifest that the registry must accept (201).
pub async fn put_manifest(
    reg: &TestRegistry,
    name: &str,
    reference: &str,
    body: &[u8],
    media_type: &str,
) -> reqwest::Response {
    let r = send_manifest(reg, name, reference, body.to_vec(), media_type).await;
    assert_eq!(r.status(), 201, "pushing manifest {reference}");
    r
}

/// PUTs a manifest and returns the answer, whatever it is.
pub async fn send_manifest(
    reg: &TestRegistry,
    name: &str,
    reference: &str,
    body: impl Into<reqwest::Body>,
    media_type: &str,
) -> reqwest::Response {
    client()
        .put(format!("{}/v2/{name}/manifests/{reference}", reg.url))
        .header("content-type", media_type)
        .body(body)
        .send()
        .await
        .expect("the registry answers")
}

/// Sends raw bytes on a fresh connection and returns what comes back
/// until the server closes or 5 s pass.
pub fn raw_request(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `f` until it holds or 20 s pass.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
