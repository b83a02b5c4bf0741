//! Peers from Debian for interop tests: `have`/`ensure` to find (or, with
//! PIER_TEST_INSTALL_DOCKER=1, install) them, and a dockerd of the test's
//! own with its data root, exec root and socket in a test directory,
//! without a bridge or iptables, stopped and unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn ensure(bins: &[&str], package: &str) -> bool {
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

/// A dockerd of the test's own, killed on drop. Extra daemon flags (e.g.
/// `--insecure-registry`) are not needed for 127.0.0.1 registries.
pub struct Dockerd {
    child: Child,
    pub dir: PathBuf,
    pub sock: PathBuf,
}

impl Dockerd {
    pub fn start(dir: &Path) -> Result<Dockerd, String> {
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

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .args(args)
            .output()
            .expect("running docker")
    }

    pub fn ok(&self, args: &[&str]) -> String {
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
        crate::env::unmount_under(&self.dir);
    }
}
