//! Helpers of `pull_push.rs`: pierd's API over curl, skopeo, test images,
//! a byte-counting TCP proxy.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pier_testutil::oci_layout::{busybox_layer, write_oci_layout, LayerFile, LayoutImage};
use pier_testutil::{skip, DockerRegistry, PierEnv};

pub fn new_env() -> PierEnv {
    PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")))
}

/// Peers every test here needs; None (after `skip`) when one is missing.
pub fn peers() -> Option<()> {
    for bin in ["skopeo", "curl"] {
        if !pier_testutil::dockerd::have(bin) {
            skip(&format!("{bin} is not installed"));
            return None;
        }
    }
    if pier_testutil::registry::docker_registry_binary().is_none() {
        skip("docker-registry is not installed (apt-get install docker-registry)");
        return None;
    }
    Some(())
}

/// An answer of pierd's API: status and body.
pub struct Api {
    pub status: u16,
    pub body: String,
}

impl Api {
    /// The JSON lines of a streamed answer.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
    pub fn statuses(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|v| v["status"].as_str().map(str::to_owned))
            .collect()
    }
    pub fn error(&self) -> Option<String> {
        self.lines()
            .iter()
            .find_map(|v| v["error"].as_str().map(str::to_owned))
    }
    pub fn assert_ok(&self, what: &str) {
        assert_eq!(self.status, 200, "{what}: {}", self.body);
        assert_eq!(self.error(), None, "{what}: {}", self.body);
    }
}

/// `curl --unix-socket` to this env's pierd (started first by `pier images`).
pub fn api(env: &PierEnv, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Api {
    let sock = env.exec_root.join("pier.sock");
    if !sock.exists() {
        env.ok(&["images"]);
    }
    api_at(&sock, method, path, auth, body)
}

/// `curl --unix-socket SOCK` (pierd's or a dockerd's).
pub fn api_at(
    sock: &Path,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Api {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "--unix-socket"])
        .arg(sock)
        .args(["-w", "\n%{http_code}"]);
    if let Some(a) = auth {
        cmd.args(["-H", &format!("X-Registry-Auth: {a}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    cmd.arg(format!("http://pier/v1.41{path}"));
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Api {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
    }
}

pub fn pull(env: &PierEnv, image: &str, tag: &str, auth: Option<&str>) -> Api {
    api(
        env,
        "POST",
        &format!("/images/create?fromImage={image}&tag={tag}"),
        auth,
        None,
    )
}

pub fn skopeo_copy(layout: &Path, tag: &str, dest: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--dest-tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--dest-creds", c]);
    }
    let out = cmd
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo copy to {dest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn layout_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pier-test-layout-")
        .tempdir()
        .unwrap()
}

/// A busybox image with /etc/msg, pushed to `reg` as `repo:tag`.
pub fn push_test_image(reg: &DockerRegistry, repo: &str, tag: &str, msg: &str) -> LayoutImage {
    let layout = layout_dir();
    let img = write_oci_layout(
        layout.path(),
        tag,
        &[
            busybox_layer().unwrap(),
            vec![LayerFile::new("etc/msg", msg)],
        ],
        &["sh"],
    )
    .unwrap();
    skopeo_copy(
        layout.path(),
        tag,
        &format!("{}/{repo}:{tag}", reg.addr),
        None,
    );
    img
}

/// A TCP proxy that counts the bytes the server sends; stopped on drop.
pub struct CountingProxy {
    pub addr: String,
    pub served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CountingProxy {
    pub fn start(upstream: &str) -> CountingProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let served = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (up, s2, stop2) = (upstream.to_owned(), served.clone(), stop.clone());
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&up) else {
                            continue;
                        };
                        let (c2, s_2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || copy(c2, s_2, None));
                        let counter = s2.clone();
                        std::thread::spawn(move || copy(server, client, Some(counter)));
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        CountingProxy { addr, served, stop }
    }
}

pub fn copy(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(c) = &count {
                    c.fetch_add(n as u64, Ordering::SeqCst);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn random_file(path: &str, n: usize) -> LayerFile {
    let mut v = vec![0u8; n];
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ n as u64 ^ path.len() as u64;
    for (i, b) in v.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> (i % 8 * 8)) as u8;
    }
    LayerFile::new(path, v)
}

pub trait CloneFiles {
    fn clone_files(&self) -> Vec<LayerFile>;
}

impl CloneFiles for Vec<LayerFile> {
    fn clone_files(&self) -> Vec<LayerFile> {
        self.iter()
            .map(|f| LayerFile {
                path: f.path.clone(),
                contents: f.contents.clone(),
                mode: f.mode,
            })
            .collect()
    }
}

pub fn b64url(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Per layer, the statuses in order with repeats collapsed ("Downloading"
/// comes many times); "Waiting" depends on timing and is left out.
pub fn layer_shape(r: &Api) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for l in r.lines() {
        let (Some(id), Some(st)) = (l["id"].as_str(), l["status"].as_str()) else {
            continue;
        };
        if st == "Waiting"
            || l["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("Pulling from"))
        {
            continue;
        }
        let v = out.entry(id.to_owned()).or_default();
        if v.last().map(String::as_str) != Some(st) {
            v.push(st.to_owned());
        }
    }
    out
}
