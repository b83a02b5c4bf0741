//! Shared test support for the runtime's integration tests: a bundle made
//! of a busybox rootfs and a runc-like config.json, with its own state root;
//! containers are force-deleted when it drops.

#![allow(dead_code)]

pub mod host_mount;
pub mod race;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_pier-runtime");

pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub root: tempfile::TempDir,
    pub config: Value,
    pub ids: Vec<String>,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempdir();
        let root = tempdir();
        pier_testutil::write_busybox_rootfs(&dir.path().join("rootfs")).unwrap();
        Bundle {
            dir,
            root,
            config: default_config(args),
            ids: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn state_root(&self) -> &Path {
        self.root.path()
    }

    pub fn write_config(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// `pier-runtime --root ROOT ARGS...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.state_root()).args(args);
        c
    }

    /// `pier-runtime --root ROOT` as the start of a shell command line.
    pub fn shell_runtime(&self) -> String {
        format!("{BIN} --root {}", self.state_root().display())
    }

    pub fn sh(&mut self, script: &str) {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
    }

    /// `pier-runtime run` in the foreground with stdin from /dev/null.
    pub fn run_with(&mut self, id: &str, extra: &[&str]) -> Output {
        self.write_config();
        self.ids.push(id.to_owned());
        let bundle = self.path().to_owned();
        self.cmd(&["run", "--bundle"])
            .arg(bundle)
            .args(extra)
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn run(&mut self, id: &str) -> Output {
        self.run_with(id, &[])
    }

    /// Runs and returns stdout, asserting success.
    pub fn run_ok(&mut self, id: &str) -> String {
        let out = self.run(id);
        check(&out)
    }

    /// `run --detach ID` with the container's stdio on /dev/null (a pipe
    /// would stay open as long as the container runs); asserts success.
    pub fn run_detached(&mut self, id: &str) {
        self.write_config();
        self.ids.push(id.to_owned());
        let status = self
            .cmd(&["run", "--detach", "--bundle"])
            .arg(self.path())
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "run --detach {id} failed: {status}");
    }

    pub fn state_dir_exists(&self, id: &str) -> bool {
        self.state_root().join(id).exists()
    }

    /// `create` with the container's stdio on /dev/null; the runtime's
    /// stderr goes through a file (a pipe would stay open in the container).
    pub fn create(&mut self, id: &str, extra: &[&str]) -> Output {
        self.write_config();
        self.ids.push(id.to_owned());
        let bundle = self.path().to_owned();
        let err_path = self.path().join(format!("create-{id}.err"));
        let err = fs::File::create(&err_path).unwrap();
        let status = self
            .cmd(&["create", "--bundle"])
            .arg(bundle)
            .args(extra)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .unwrap();
        Output {
            status,
            stdout: Vec::new(),
            stderr: fs::read(&err_path).unwrap(),
        }
    }
}

/// Asserts success and returns stdout.
pub fn check(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.ids) {
            let _ = Command::new(BIN)
                .arg("--root")
                .arg(self.root.path())
                .args(["delete", "--force", &id])
                .stderr(Stdio::null())
                .status();
        }
        // A container without a mount namespace mounts into the host's;
        // a test that fails before `delete` must not leave those behind.
        pier_testutil::env::unmount_under(self.dir.path());
    }
}

/// A temporary directory named like every test directory of pier's
/// (`pier-test-*`), so a leftover is easy to recognise.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pier-test-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// What `pier-runtime spec` (like `runc spec`) writes, with terminal off,
/// the given args and hostname `pier-test`: its cgroup mount and device
/// rules included.
pub fn spec_config(args: &[&str]) -> Value {
    let mut spec = pier_runtime::default_spec(false);
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["hostname"] = json!("pier-test");
    spec
}

/// [`spec_config`] without the cgroup mount and the device rules (tests
/// that check them add them back from [`spec_config`]).
pub fn default_config(args: &[&str]) -> Value {
    let mut spec = spec_config(args);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
    }
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("resources");
    }
    spec
}

/// The spec's `/sys/fs/cgroup` mount (type cgroup, read-only).
pub fn cgroup_mount() -> Value {
    let spec = spec_config(&[]);
    let mounts = spec["mounts"].as_array().cloned().unwrap_or_default();
    let found = mounts.into_iter().find(|m| m["type"] == "cgroup");
    found.expect("pier-runtime spec has a cgroup mount")
}

/// The spec's `linux.resources`: every device denied (the default
/// devices are allowed on top of it by the runtime).
pub fn spec_resources() -> Value {
    spec_config(&[])["linux"]["resources"].clone()
}

/// Commands on a bundle's containers that assert success.
impl Bundle {
    /// `pier-runtime ARGS...` with stdin from /dev/null; asserts success
    /// and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "pier-runtime {args:?}: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `create` then `start`, asserting both succeed.
    pub fn start(&mut self, id: &str) {
        let out = self.create(id, &[]);
        assert!(
            out.status.success(),
            "create {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.ok(&["start", id]);
    }

    /// `state ID` as JSON.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// `ps -f json ID`: the container's pids.
    pub fn pids(&self, id: &str) -> Vec<i32> {
        serde_json::from_str(&self.ok(&["ps", "-f", "json", id])).unwrap()
    }
}

/// Mount points at or below `dir` in this (the host's) mount namespace.
pub fn host_mounts_at_or_below(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    let entries = pier_runtime::mountinfo::read_own().expect("reading /proc/self/mountinfo");
    entries
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|mp| mp == dir.as_ref() || mp.starts_with(&format!("{dir}/")))
        .collect()
}

/// Runs `script` with sh in a mount namespace of its own with private
/// propagation (unshare), so what it mounts never reaches the host;
/// asserts it succeeds (the failure says `context()`) and returns stdout.
pub fn sh_in_private_mount_ns(script: &str, context: impl FnOnce() -> String) -> String {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}: {stdout}{}",
        context(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
