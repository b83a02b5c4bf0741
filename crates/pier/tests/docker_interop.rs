//! Interchange with Docker and skopeo. Each test is skipped, with a
//! message saying why, when the peer is not installed or cannot run
//! (set PIER_TEST_INSTALL_DOCKER=1 to let the test `apt-get install
//! docker.io skopeo`). dockerd runs with its own data root, exec root and
//! socket in the test's temporary directory, without a bridge or iptables.

use pier_testutil::PierEnv;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env() -> PierEnv {
    PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure(bins: &[&str], package: &str) -> bool {
    if bins.iter().all(|b| have(b)) {
        return true;
    }
    if std::env::var("PIER_TEST_INSTALL_DOCKER").as_deref() == Ok("1") {
        let _ = Command::new("apt-get")
            .args(["install", "-y", package])
            .stdout(Stdio::null())
            .status();
    }
    bins.iter().all(|b| have(b))
}

/// A dockerd of the test's own, killed on drop.
struct Dockerd {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Result<Dockerd, String> {
        let sock = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("docker-data"))
            .arg("--exec-root")
            .arg(dir.join("docker-exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        let mut d = Dockerd {
            child,
            dir: dir.to_path_buf(),
            sock,
        };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!("dockerd exited ({st}):\n{}", d.log_tail()));
            }
            if d.docker(&["version"]).status.success() {
                return Ok(d);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(format!(
            "dockerd did not answer within 60 s:\n{}",
            d.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .args(args)
            .output()
            .expect("running docker")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}\n{}\ndockerd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd; then make sure.
        // SAFETY: signalling the dockerd this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        pier_testutil::env::unmount_under(&self.dir);
    }
}

#[test]
fn docker_save_loads_into_pier_and_pier_save_loads_into_docker() {
    if !ensure(&["dockerd", "docker"], "docker.io") {
        pier_testutil::skip("dockerd/docker not installed (apt-get install docker.io, or set PIER_TEST_INSTALL_DOCKER=1)");
        return;
    }
    let env = env();
    let dockerd = match Dockerd::start(env.dir.path()) {
        Ok(d) => d,
        Err(why) => {
            pier_testutil::skip(&format!("dockerd cannot run on this machine: {why}"));
            return;
        }
    };
    // An image built by Docker: imported busybox plus a RUN layer.
    let bb = env.dir.path().join("busybox.tar");
    pier_testutil::write_busybox_tar(&bb).unwrap();
    dockerd.ok(&["import", p(&bb), "interop-base:1"]);
    let ctx = env.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM interop-base:1\nRUN echo built-by-docker > /built\nENV GREETING=hello\nCMD [\"cat\", \"/built\"]\n",
    )
    .unwrap();
    dockerd.ok(&["build", "-q", "-t", "interop:docker", p(&ctx)]);
    let docker_id = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop:docker"]);

    // docker save -> pier load -> pier run.
    let dtar = env.dir.path().join("from-docker.tar");
    dockerd.ok(&["save", "-o", p(&dtar), "interop:docker"]);
    assert_eq!(
        env.ok(&["load", "-i", p(&dtar)]).trim(),
        "Loaded image: interop:docker"
    );
    assert_eq!(
        env.ok(&["images", "-q", "--no-trunc", "interop"]).trim(),
        docker_id.trim()
    );
    assert_eq!(
        env.ok(&["run", "--rm", "interop:docker"]).trim(),
        "built-by-docker"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "interop:docker",
            "sh",
            "-c",
            "echo $GREETING"
        ])
        .trim(),
        "hello"
    );

    // pier commit -> pier save -> docker load -> docker run.
    env.ok(&[
        "run",
        "--name",
        "mk",
        "interop:docker",
        "sh",
        "-c",
        "echo made-by-pier > /pier; rm /built",
    ]);
    let pier_id = env.ok(&["commit", "mk", "interop:pier"]);
    let ptar = env.dir.path().join("from-pier.tar");
    env.ok(&["save", "-o", p(&ptar), "interop:pier"]);
    let out = dockerd.ok(&["load", "-i", p(&ptar)]);
    assert!(out.contains("interop:pier"), "{out}");
    let loaded = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop:pier"]);
    assert_eq!(loaded.trim(), pier_id.trim());
    let out = dockerd.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "interop:pier",
        "sh",
        "-c",
        "cat /pier; test -e /built && echo still-there || echo removed",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["made-by-pier", "removed"]);
}

#[test]
fn skopeo_reads_pier_save_and_pier_loads_skopeo_oci_layouts() {
    if !ensure(&["skopeo"], "skopeo") {
        pier_testutil::skip(
            "skopeo not installed (apt-get install skopeo, or set PIER_TEST_INSTALL_DOCKER=1)",
        );
        return;
    }
    let env = env();
    env.import_busybox("busybox");
    env.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "echo layer2 > /l2",
    ]);
    let id = env.ok(&["commit", "mk", "sk:1"]);
    let tar = env.dir.path().join("sk.tar");
    env.ok(&["save", "-o", p(&tar), "sk:1"]);
    // pier's archive is an OCI layout: skopeo reads it as oci:DIR.
    let layout = env.dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let st = Command::new("tar")
        .args(["-xf", p(&tar), "-C", p(&layout)])
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("skopeo")
        .args(["inspect", "--config", &format!("oci:{}", p(&layout))])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // skopeo writes an OCI layout (gzip layers, new manifest); pier loads it.
    let copy = env.dir.path().join("copy");
    let out = Command::new("skopeo")
        .args([
            "copy",
            &format!("oci:{}", p(&layout)),
            &format!("oci:{}:example.com/sk:2", p(&copy)),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctar = env.dir.path().join("copy.tar");
    let st = Command::new("tar")
        .args(["-cf", p(&ctar), "-C", p(&copy), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let other = self::env();
    assert_eq!(
        other.ok(&["load", "-i", p(&ctar)]).trim(),
        "Loaded image: example.com/sk:2"
    );
    assert_eq!(other.ok(&["images", "-q", "--no-trunc"]).trim(), id.trim());
    assert_eq!(
        other
            .ok(&["run", "--rm", "example.com/sk:2", "cat", "/l2"])
            .trim(),
        "layer2"
    );
}

#[test]
fn the_docker_cli_drives_pierd_image_endpoints() {
    if !have("docker") {
        pier_testutil::skip("the docker CLI is not installed");
        return;
    }
    let env = env();
    env.import_busybox("busybox");
    let host = format!("unix://{}", env.exec_root.join("pier.sock").display());
    let docker = |args: &[&str]| -> String {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", env.dir.path().join("docker-config"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    docker(&["tag", "busybox", "other/bb:2"]);
    let list = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        list.contains("other/bb:2") && list.contains("busybox:latest"),
        "{list}"
    );
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Os}}", "other/bb:2"]).trim(),
        "linux"
    );
    assert!(docker(&["history", "-q", "busybox"]).lines().count() >= 1);
    let tar = env.dir.path().join("via-docker-cli.tar");
    docker(&["save", "-o", p(&tar), "other/bb:2"]);
    let out = docker(&["rmi", "other/bb:2"]);
    assert!(out.contains("Untagged: other/bb:2"), "{out}");
    let out = docker(&["load", "-i", p(&tar)]);
    assert!(out.contains("Loaded image: other/bb:2"), "{out}");
    assert!(docker(&["system", "df"]).starts_with("TYPE"));
}
