//! Debian's `docker-registry` (CNCF distribution) as a test peer: started
//! on a free 127.0.0.1 port with its own storage directory, killed and
//! removed on drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of Debian's docker-registry binary, if installed.
pub fn docker_registry_binary() -> Option<PathBuf> {
    ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A free TCP port on 127.0.0.1 (bound then released: another process may
/// take it in between, which tests accept).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// Waits until `GET /v2/` on `addr` answers with any HTTP status.
pub fn wait_for_http(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok() && s.read_exact(&mut buf).is_ok() {
                return buf.starts_with(b"HTTP/1.");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A running docker-registry; `addr` is `127.0.0.1:PORT`.
pub struct DockerRegistry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl DockerRegistry {
    /// Starts docker-registry with filesystem storage in a temporary
    /// directory and deletes enabled. `None` when it is not installed.
    pub fn start() -> Option<DockerRegistry> {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra YAML lines appended to the
    /// config (e.g. an `auth:` section).
    pub fn start_with(extra_config: &[&str]) -> Option<DockerRegistry> {
        let bin = docker_registry_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("pier-test-registry-")
            .tempdir()
            .expect("creating the registry's directory");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        for line in extra_config {
            config.push_str(line);
            config.push('\n');
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).expect("writing the registry config");
        let log = fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("registry log"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let reg = DockerRegistry { addr, dir, child };
        assert!(
            wait_for_http(&reg.addr, Duration::from_secs(20)),
            "docker-registry did not answer on {}; log: {}",
            reg.addr,
            fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
        );
        Some(reg)
    }

    /// Peak resident set size of the registry process so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_registry_answers_v2_ping() {
        let Some(reg) = DockerRegistry::start() else {
            crate::skip("docker-registry is not installed (apt-get install docker-registry)");
            return;
        };
        let mut s = TcpStream::connect(&reg.addr).unwrap();
        write!(
            s,
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            reg.addr
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("registry/2.0"), "{resp}");
    }
}

#[cfg(test)]
mod skopeo_tests {
    use super::*;
    use crate::oci_layout::{write_oci_layout, LayerFile};

    #[test]
    fn skopeo_pushes_a_test_layout_to_docker_registry() {
        let Some(reg) = DockerRegistry::start() else {
            crate::skip("docker-registry is not installed (apt-get install docker-registry)");
            return;
        };
        if Command::new("skopeo").arg("--version").output().is_err() {
            crate::skip("skopeo is not installed");
            return;
        }
        let layout = tempfile::tempdir().unwrap();
        let img = write_oci_layout(
            layout.path(),
            "v1",
            &[vec![LayerFile::new("etc/hello", "hi\n")]],
            &["sh"],
        )
        .unwrap();
        crate::run_ok(
            Command::new("skopeo")
                .args(["copy", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:v1", layout.path().display()))
                .arg(format!("docker://{}/test/img:v1", reg.addr)),
        );
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/test/img:v1", reg.addr))
            .output()
            .unwrap();
        let raw = String::from_utf8_lossy(&out.stdout);
        assert!(raw.contains(&img.layer_digests[0]), "{raw}");
    }
}
