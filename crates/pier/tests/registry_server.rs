//! `pier registry serve` with the clients people use: skopeo (plain, with
//! htpasswd Basic and bearer-token auth, over TLS), docker push/pull
//! through a dockerd of the test's own, and pier's own pull/push. The
//! registry is the `pier` binary on a free 127.0.0.1 port, killed on drop.

use pier_testutil::dockerd::{ensure, Dockerd};
use pier_testutil::registry::free_port;
use pier_testutil::{write_oci_layout, LayerFile, LayoutImage, PierEnv};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn pier_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pier"))
}

/// A `pier registry serve` process of the test's own.
struct Served {
    addr: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let dir = tempfile::Builder::new()
            .prefix("pier-test-registry-")
            .tempdir()
            .unwrap();
        let (addr, child) = Self::spawn(dir.path(), extra);
        let mut s = Served { addr, dir, child };
        s.wait_listening();
        s
    }

    /// Starts `pier registry serve` on a free port with its storage and
    /// (truncated) log in `dir`.
    fn spawn(dir: &Path, extra: &[&str]) -> (String, Child) {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(pier_bin())
            .args(["registry", "serve", "--addr", &addr, "--root"])
            .arg(dir.join("storage"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting pier registry serve");
        (addr, child)
    }

    /// A new server on the same storage, on another port, once the
    /// current one has exited.
    fn restart(&mut self) {
        (self.addr, self.child) = Self::spawn(self.dir.path(), &[]);
        self.wait_listening();
    }

    /// Waits until the server says it listens (plain HTTP or TLS alike).
    fn wait_listening(&mut self) {
        let started = std::time::Instant::now();
        while !self.log().contains("listening on") {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pier registry serve exited ({status}): {}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "pier registry did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("running skopeo")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_skopeo() -> bool {
    have_peer(&["skopeo"], "skopeo")
}

/// True when the Debian `package` with `bins` is installed (or could be
/// installed); otherwise skips the test, saying which package it needs.
fn have_peer(bins: &[&str], package: &str) -> bool {
    if ensure(bins, package) {
        return true;
    }
    pier_testutil::skip(&format!(
        "{} not installed (apt-get install {package})",
        bins.join("/")
    ));
    false
}

/// The peer daemon `started`, or `None` after skipping the test with why
/// `what` cannot run here.
fn running<T>(started: Result<T, String>, what: &str) -> Option<T> {
    match started {
        Ok(peer) => Some(peer),
        Err(why) => {
            pier_testutil::skip(&format!("{what} cannot run on this machine: {why}"));
            None
        }
    }
}

/// A temporary directory of the test's own.
fn work_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pier-test-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// Writes the test image as an OCI layout in `work/layout` (where
/// [`pull_and_compare`] looks) tagged v1; returns it and its skopeo source
/// name.
fn layout_in(work: &Path) -> (LayoutImage, String) {
    let dir = work.join("layout");
    let img = layout(&dir, "v1");
    (img, format!("oci:{}:v1", dir.display()))
}

/// `skopeo copy` from `src` to the plain-HTTP registry `dest`, with
/// `user:password` credentials if given.
fn push_to(src: &str, dest: &str, creds: Option<&str>) -> Output {
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src, dest]);
    skopeo(&args)
}

/// A two-layer test image in an OCI layout under `dir`.
fn layout(dir: &Path, tag: &str) -> LayoutImage {
    let big: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 253) as u8).collect();
    write_oci_layout(
        dir,
        tag,
        &[
            vec![LayerFile::new("etc/hello", "hello from pier's registry\n")],
            vec![LayerFile::new("data/big.bin", big)],
        ],
        &["sh"],
    )
    .unwrap()
}

fn blob_in(layout: &Path, d: &str) -> Vec<u8> {
    let p = layout
        .join("blobs/sha256")
        .join(d.strip_prefix("sha256:").unwrap());
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Pulls `src` to an OCI layout and checks it holds the image's manifest,
/// config and every layer, byte for byte as in the layout pushed from
/// `work/layout`.
fn pull_and_compare(src: &str, extra: &[&str], img: &LayoutImage, work: &Path) {
    let out_dir = work.join(format!("pulled-{}", rand_suffix()));
    let dest = format!("oci:{}:got", out_dir.display());
    let mut args = vec!["copy"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[src, &dest]);
    ok(skopeo(&args), "skopeo copy (pull)");
    for d in img
        .layer_digests
        .iter()
        .chain([&img.config_digest, &img.manifest_digest])
    {
        assert!(
            blob_in(&out_dir, d) == blob_in(&work.join("layout"), d),
            "pulled blob {d} differs"
        );
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn skopeo_copies_to_and_from_pier_registry() {
    if !have_skopeo() {
        return;
    }
    let reg = Served::start(&[]);
    let work = work_dir();
    let (img, src) = layout_in(work.path());
    let dest = format!("docker://{}/team/app:v1", reg.addr);
    ok(push_to(&src, &dest, None), "skopeo copy (push)");
    // The manifest is stored byte for byte.
    let raw = ok(
        skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]),
        "skopeo inspect",
    );
    assert_eq!(
        raw.as_bytes(),
        blob_in(&work.path().join("layout"), &img.manifest_digest)
    );
    let tags = ok(
        skopeo(&[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{}/team/app", reg.addr),
        ]),
        "skopeo list-tags",
    );
    assert!(tags.contains("\"v1\""), "{tags}");
    pull_and_compare(&dest, &["--src-tls-verify=false"], &img, work.path());
    // A second push of the same image into another repository mounts
    // or skips every blob, and the store keeps one copy of each.
    ok(
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &dest,
            &format!("docker://{}/other/app:v1", reg.addr),
        ]),
        "skopeo copy (registry to registry)",
    );
    let mut stored = 0;
    for fan in std::fs::read_dir(reg.storage().join("blobs/sha256")).unwrap() {
        stored += std::fs::read_dir(fan.unwrap().path()).unwrap().count();
    }
    assert_eq!(stored, img.layer_digests.len() + 2, "blobs stored once");
    // The access log is JSON lines.
    let log = reg.log();
    let line = log
        .lines()
        .find(|l| l.contains("/manifests/v1"))
        .expect("a log line for the manifest");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(v["status"].is_u64() && v["method"].is_string(), "{line}");

    // gc from the command line: nothing to collect, then a deleted image's
    // blobs are.
    let gc = |dry: bool| {
        let mut cmd = Command::new(pier_bin());
        cmd.args(["registry", "gc", "--grace", "0", "--root"])
            .arg(reg.storage());
        if dry {
            cmd.arg("--dry-run");
        }
        ok(cmd.output().unwrap(), "pier registry gc")
    };
    assert!(gc(true).contains("would remove 0 blobs"), "{}", gc(true));
    for repo in ["team/app", "other/app"] {
        ok(
            skopeo(&[
                "delete",
                "--tls-verify=false",
                &format!("docker://{}/{repo}:v1", reg.addr),
            ]),
            "skopeo delete",
        );
    }
    let dry = gc(true);
    assert!(
        dry.contains(&format!("would remove {}", img.layer_digests[0])),
        "{dry}"
    );
    let real = gc(false);
    assert!(
        real.contains(&format!("removed {} blobs", img.layer_digests.len() + 2)),
        "{real}"
    );
}

fn htpasswd(dir: &Path) -> Option<PathBuf> {
    if !have_peer(&["htpasswd"], "apache2-utils") {
        return None;
    }
    let path = dir.join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&path)
        .args(["ci", "pa55word"])
        .output()
        .unwrap();
    ok(out, "htpasswd");
    Some(path)
}

fn auth_round_trip(extra: &[&str]) {
    if !have_skopeo() {
        return;
    }
    let work = work_dir();
    let Some(htpasswd) = htpasswd(work.path()) else {
        return;
    };
    let mut args = vec!["--htpasswd", htpasswd.to_str().unwrap()];
    args.extend_from_slice(extra);
    let reg = Served::start(&args);
    let (img, src) = layout_in(work.path());
    let dest = format!("docker://{}/secure/app:v1", reg.addr);
    let out = push_to(&src, &dest, None);
    assert!(!out.status.success(), "a push without credentials worked");
    let out = push_to(&src, &dest, Some("ci:wrong"));
    assert!(!out.status.success(), "a push with a wrong password worked");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"),
        "{stderr}"
    );
    ok(
        push_to(&src, &dest, Some("ci:pa55word")),
        "skopeo copy with credentials",
    );
    pull_and_compare(
        &dest,
        &["--src-tls-verify=false", "--src-creds", "ci:pa55word"],
        &img,
        work.path(),
    );
    let out = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]);
    assert!(!out.status.success(), "an anonymous pull worked");
}

#[test]
fn skopeo_with_htpasswd_basic_auth() {
    auth_round_trip(&[]);
}

#[test]
fn skopeo_with_bearer_token_auth() {
    auth_round_trip(&["--token-auth"]);
}

#[test]
fn skopeo_over_tls_with_a_cert_dir() {
    if !have_skopeo() || !have_peer(&["openssl"], "openssl") {
        return;
    }
    let work = work_dir();
    let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    ok(out, "openssl req");
    let reg = Served::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let certs = work.path().join("certs.d");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let (img, src) = layout_in(work.path());
    let dest = format!("docker://{}/tls/app:v1", reg.addr);
    // Without the CA the certificate is refused.
    let out = skopeo(&["copy", &src, &dest]);
    assert!(
        !out.status.success(),
        "an untrusted certificate was accepted"
    );
    ok(
        skopeo(&[
            "copy",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            &src,
            &dest,
        ]),
        "skopeo copy over TLS",
    );
    pull_and_compare(
        &dest,
        &["--src-cert-dir", certs.to_str().unwrap()],
        &img,
        work.path(),
    );
}

#[test]
fn docker_pushes_to_and_pulls_from_pier_registry() {
    if !have_skopeo() || !have_peer(&["dockerd", "docker"], "docker.io") {
        return;
    }
    let work = work_dir();
    let Some(dockerd) = running(Dockerd::start(work.path()), "dockerd") else {
        return;
    };
    let reg = Served::start(&[]);
    // Into dockerd: layout -> docker-archive -> docker load.
    let (_, src) = layout_in(work.path());
    let archive = work.path().join("image.tar");
    ok(
        skopeo(&[
            "copy",
            &src,
            &format!("docker-archive:{}:local/app:v1", archive.display()),
        ]),
        "skopeo copy to docker-archive",
    );
    dockerd.ok(&["load", "-i", archive.to_str().unwrap()]);
    let image_id = |name: &str| {
        let id = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", name]);
        id.trim().to_owned()
    };
    let id = image_id("local/app:v1");
    let remote = format!("{}/dock/app:v1", reg.addr);
    dockerd.ok(&["tag", "local/app:v1", &remote]);
    dockerd.ok(&["push", &remote]);
    dockerd.ok(&["rmi", &remote, "local/app:v1"]);
    let out = dockerd.docker(&["image", "inspect", &remote]);
    assert!(!out.status.success(), "the image is still in dockerd");
    dockerd.ok(&["pull", &remote]);
    assert_eq!(image_id(&remote), id);
    // What docker pushed is readable by another client.
    let raw = ok(
        skopeo(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ]),
        "skopeo inspect",
    );
    assert!(raw.contains("\"Layers\""), "{raw}");

    // With htpasswd and docker's token flow: docker login, push, pull.
    let Some(htpasswd) = htpasswd(work.path()) else {
        return;
    };
    let secure = Served::start(&["--htpasswd", htpasswd.to_str().unwrap(), "--token-auth"]);
    let remote = format!("{}/secure/app:v1", secure.addr);
    dockerd.ok(&["tag", &format!("{}/dock/app:v1", reg.addr), &remote]);
    let out = dockerd.docker(&["push", &remote]);
    assert!(!out.status.success(), "docker pushed without logging in");
    let login = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", dockerd.sock.display()))
        .env("DOCKER_CONFIG", dockerd.dir.join("docker-config"))
        .args(["login", "-u", "ci", "--password-stdin", &secure.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(b"pa55word\n")?;
            c.wait_with_output()
        })
        .unwrap();
    ok(login, "docker login");
    dockerd.ok(&["push", &remote]);
    dockerd.ok(&["rmi", &remote]);
    dockerd.ok(&["pull", &remote]);
    assert_eq!(image_id(&remote), id);
    assert!(secure.log().contains("\"user\":\"ci\""), "{}", secure.log());
}

#[test]
fn pier_pushes_to_and_pulls_from_pier_registry() {
    let env = PierEnv::new(pier_bin());
    let reg = Served::start(&[]);
    let id = env.import_busybox("local/bb:v1");
    let remote = format!("{}/pier/bb:v1", reg.addr);
    env.ok(&["tag", "local/bb:v1", &remote]);
    env.ok(&["push", &remote]);
    env.ok(&["rmi", &remote, "local/bb:v1"]);
    env.ok(&["pull", &remote]);
    let got = env.ok(&["images", "-q", "--no-trunc", &remote]);
    assert_eq!(got.trim(), id.trim());
    assert_eq!(
        env.ok(&["run", "--rm", &remote, "busybox", "echo", "pulled"])
            .trim(),
        "pulled"
    );
}

#[test]
fn a_config_file_sets_read_only_and_bad_configs_are_refused() {
    if !have_skopeo() {
        return;
    }
    let work = work_dir();
    let cfg = work.path().join("registry.toml");
    std::fs::write(&cfg, "read_only = true\nmax_manifest_bytes = 65536\n").unwrap();
    let reg = Served::start(&["--config", cfg.to_str().unwrap()]);
    let (_, src) = layout_in(work.path());
    let out = push_to(&src, &format!("docker://{}/ro/app:v1", reg.addr), None);
    assert!(
        !out.status.success(),
        "a push to a read-only registry worked"
    );
    assert!(reg.log().contains("\"status\":405"), "{}", reg.log());

    let bad = work.path().join("bad.toml");
    std::fs::write(&bad, "adress = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(pier_bin())
        .args(["registry", "serve", "--config", bad.to_str().unwrap()])
        .args(["--addr", "127.0.0.1:0", "--root"])
        .arg(work.path().join("never-made"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("adress"), "{stderr}");
    let root = work.path().join("never-made");
    let out = Command::new(pier_bin())
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(&root)
        .arg("--htpasswd")
        .arg(work.path().join("missing"))
        .output()
        .unwrap();
    assert!(!root.exists(), "a refused config still made the root");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("htpasswd"), "{stderr}");
}

/// A containerd of the test's own (root, state and socket in `dir`),
/// killed, unmounted and removed on drop.
struct Containerd {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Result<Containerd, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let sock = dir.join("containerd.sock");
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{1}\"\n[ttrpc]\n  address = \"{1}.ttrpc\"\n",
                dir.display(),
                sock.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("containerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting containerd: {e}"))?;
        let c = Containerd {
            child,
            dir: dir.to_path_buf(),
            sock,
        };
        for _ in 0..200 {
            if c.ctr(&["version"]).status.success() {
                return Ok(c);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default())
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", "pier-registry-test"])
            .args(args)
            .output()
            .expect("running ctr")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        pier_testutil::env::unmount_under(&self.dir);
    }
}

#[test]
fn containerd_pulls_from_and_pushes_to_pier_registry() {
    if !have_skopeo() || !have_peer(&["containerd", "ctr"], "containerd") {
        return;
    }
    let work = work_dir();
    let Some(ctrd) = running(
        Containerd::start(&work.path().join("containerd")),
        "containerd",
    ) else {
        return;
    };
    let reg = Served::start(&[]);
    let (img, src) = layout_in(work.path());
    let remote = format!("{}/ctr/app:v1", reg.addr);
    ok(
        push_to(&src, &format!("docker://{remote}"), None),
        "skopeo copy (push)",
    );
    ok(
        ctrd.ctr(&["images", "pull", "--plain-http", &remote]),
        "ctr images pull",
    );
    let list = ok(ctrd.ctr(&["images", "ls"]), "ctr images ls");
    assert!(
        list.contains(&remote) && list.contains(&img.manifest_digest),
        "{list}"
    );
    let copy = format!("{}/ctr/copy:v1", reg.addr);
    ok(
        ctrd.ctr(&["images", "tag", &remote, &copy]),
        "ctr images tag",
    );
    ok(
        ctrd.ctr(&["images", "push", "--plain-http", &copy]),
        "ctr images push",
    );
    let raw = ok(
        skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{copy}"),
        ]),
        "skopeo inspect",
    );
    assert_eq!(
        raw.as_bytes(),
        blob_in(&work.path().join("layout"), &img.manifest_digest)
    );
}

#[test]
fn a_server_killed_mid_upload_restarts_with_nothing_half_made() {
    use std::io::Write;
    let mut reg = Served::start(&[]);
    let storage = reg.storage();
    let data = vec![5u8; 3 << 20];
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let mut s = std::net::TcpStream::connect(&reg.addr).unwrap();
    write!(
        s,
        "POST /v2/crash/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(&data[..2 << 20]).unwrap();
    let upload_bytes = || -> u64 {
        std::fs::read_dir(storage.join("uploads"))
            .map(|d| {
                d.flatten()
                    .filter_map(|f| f.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let t = std::time::Instant::now();
    while upload_bytes() < 1 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the upload never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL: no chance to clean up.
    reg.child.kill().unwrap();
    reg.child.wait().unwrap();
    drop(s);
    assert!(upload_bytes() > 0);
    // A new server on the same root.
    reg.restart();
    assert_eq!(upload_bytes(), 0, "the dead upload was not cleaned up");
    let stored = std::fs::read_dir(storage.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(stored, 0, "a blob appeared from a dead upload");
    // And it serves.
    assert!(pier_testutil::registry::wait_for_http(
        &reg.addr,
        Duration::from_secs(20)
    ));
}
