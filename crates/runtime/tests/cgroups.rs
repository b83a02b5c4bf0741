//! cgroup tests: real containers from busybox bundles driven through the
//! pier-runtime binary (and the library for OOM reporting), checked from
//! outside through the cgroup files and from inside. They need root and
//! busybox-static; they work on cgroup v1, hybrid and v2 hosts (each check
//! reads the file of the host's layout). Every container and cgroup is
//! cleaned up by Drop guards, even when a test fails.
//!
//! Container ids start with "cgt-" and cgroups live under
//! /pier-cgtest-<pid>-<n>/ (one per test thread), so these tests never collide with other test
//! binaries running at the same time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ROOT: &str = "/sys/fs/cgroup";

fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The cgroup (inside the hierarchy) the current test's containers go
/// under: one per test thread, since each test's Bundle removes it when
/// dropped, which must not pull it from under a test running beside.
fn parent_cgroup() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local!(static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    TAG.with(|t| format!("/pier-cgtest-{}-{t}", std::process::id()))
}

/// Directory of `controller` for the in-hierarchy `path` (v2: one tree).
fn cg_dir(controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if is_v2() {
        Path::new(ROOT).join(rel)
    } else {
        Path::new(ROOT).join(controller).join(rel)
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn cg_read(controller: &str, path: &str, v1: &str, v2: &str) -> String {
    let file = if is_v2() { v2 } else { v1 };
    read(&cg_dir(controller, path).join(file))
}

/// Every directory a cgroup `path` may have (each v1 hierarchy, or v2).
fn all_dirs(path: &str) -> Vec<PathBuf> {
    if is_v2() {
        return vec![cg_dir("", path)];
    }
    fs::read_dir(ROOT)
        .unwrap()
        .flatten()
        .map(|e| e.path().join(path.trim_start_matches('/')))
        .collect()
}

fn rmdir_all(path: &str) {
    for d in all_dirs(path) {
        let _ = fs::remove_dir(&d);
    }
}

mod common;

/// A container runc made under `root`: force-deleted on drop, then its
/// `cgroup` (if given) removed from every hierarchy.
struct RuncContainer<'a> {
    root: &'a Path,
    id: String,
    cgroup: Option<String>,
}

impl Drop for RuncContainer<'_> {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
        if let Some(cg) = &self.cgroup {
            rmdir_all(cg);
        }
    }
}

/// The shared test bundle (tests/common) with the device rules of a runc
/// spec; on drop it also removes its containers' cgroups and the parent.
struct Bundle(common::Bundle);

impl std::ops::Deref for Bundle {
    type Target = common::Bundle;
    fn deref(&self) -> &common::Bundle {
        &self.0
    }
}

impl std::ops::DerefMut for Bundle {
    fn deref_mut(&mut self) -> &mut common::Bundle {
        &mut self.0
    }
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        let mut b = common::Bundle::new(args);
        b.config["linux"]["resources"] = common::spec_resources();
        Bundle(b)
    }

    /// Gives the next container the cgroup `parent_cgroup()/id`.
    fn cgroup_for(&mut self, id: &str) -> String {
        let p = format!("{}/{id}", parent_cgroup());
        self.config["linux"]["cgroupsPath"] = json!(p);
        p
    }

    /// `create`; on failure the runtime's stderr.
    fn create(&mut self, id: &str) -> Result<(), String> {
        let out = self.0.create(id, &[]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Before the shared bundle's own drop: the cgroups can only go
        // once their containers are deleted.
        for id in self.0.ids.clone() {
            let _ = Command::new(common::BIN)
                .arg("--root")
                .arg(self.0.root.path())
                .args(["delete", "--force", &id])
                .stderr(Stdio::null())
                .status();
            rmdir_all(&format!("{}/{id}", parent_cgroup()));
        }
        rmdir_all(&parent_cgroup());
    }
}

fn sh(b: &mut Bundle, script: &str) {
    b.config["process"]["args"] = json!(["sh", "-c", script]);
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The block device behind the root filesystem's disk ("254:0" for vda),
/// for throttle rules; None if there is no virtio or scsi disk.
fn a_block_device() -> Option<String> {
    ["vda", "sda", "nvme0n1", "xvda"]
        .iter()
        .find_map(|d| fs::read_to_string(format!("/sys/block/{d}/dev")).ok())
        .map(|s| s.trim().to_owned())
}

#[test]
fn resources_are_written_to_the_cgroup_files() {
    let mut b = Bundle::new(&["sleep", "100"]);
    let id = "cgt-resources";
    let path = b.cgroup_for(id);
    let mut res = json!({
        "memory": {"limit": 67108864, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]
    });
    let swap = !is_v2()
        && cg_dir("memory", "/")
            .join("memory.memsw.limit_in_bytes")
            .exists();
    if swap || is_v2() {
        res["memory"]["swap"] = json!(134217728);
    }
    let dev = a_block_device();
    if let Some(d) = &dev {
        let (maj, min) = d.split_once(':').unwrap();
        res["blockIO"] = json!({"throttleReadBpsDevice": [
            {"major": maj.parse::<i64>().unwrap(), "minor": min.parse::<i64>().unwrap(), "rate": 1048576}
        ]});
    }
    b.config["linux"]["resources"] = res;
    b.start(id);

    assert_eq!(
        cg_read("memory", &path, "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(
        cg_read("memory", &path, "memory.soft_limit_in_bytes", "memory.low"),
        "33554432"
    );
    if swap {
        assert_eq!(
            read(&cg_dir("memory", &path).join("memory.memsw.limit_in_bytes")),
            "134217728"
        );
    }
    assert_eq!(cg_read("pids", &path, "pids.max", "pids.max"), "42");
    if is_v2() {
        assert_eq!(read(&cg_dir("", &path).join("cpu.max")), "50000 100000");
    } else {
        assert_eq!(read(&cg_dir("cpu", &path).join("cpu.shares")), "512");
        assert_eq!(
            read(&cg_dir("cpu", &path).join("cpu.cfs_quota_us")),
            "50000"
        );
        assert_eq!(
            read(&cg_dir("cpu", &path).join("cpu.cfs_period_us")),
            "100000"
        );
        // Denied by default; /dev/null allowed (with the default devices
        // every runtime allows, like runc).
        let devices = read(&cg_dir("devices", &path).join("devices.list"));
        assert!(devices.lines().any(|l| l == "c 1:3 rwm"), "{devices}");
        assert!(!devices.contains("a *:*"), "{devices}");
    }
    assert_eq!(cg_read("cpuset", &path, "cpuset.cpus", "cpuset.cpus"), "0");
    if let Some(d) = dev {
        let f = cg_read("blkio", &path, "blkio.throttle.read_bps_device", "io.max");
        assert!(f.contains(&d) && f.contains("1048576"), "{f}");
    }
    // The init is in the cgroup, seen from outside and from inside.
    let pid = b.state(id)["pid"].as_i64().unwrap() as i32;
    let procs = cg_read("memory", &path, "cgroup.procs", "cgroup.procs");
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let inside = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(inside.contains(&path), "{inside}");
}

/// The same config through runc and pier-runtime gives the same values in
/// the cgroup files (skipped without runc, and on v2 hosts where runc
/// writes some values in other units).
#[test]
fn cgroup_files_match_runc() {
    if Command::new("runc").arg("--version").output().is_err() {
        pier_testutil::skip("runc is not installed");
        return;
    }
    if is_v2() {
        eprintln!("skipped: runc writes some v2 values in other units");
        return;
    }
    let mut b = Bundle::new(&["sleep", "100"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 50331648, "reservation": 25165824},
        "cpu": {"shares": 256, "quota": 20000, "period": 50000},
        "pids": {"limit": 17},
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw"}
        ]
    });
    let pier_path = b.cgroup_for("cgt-diff-pier");
    b.start("cgt-diff-pier");
    // runc on the same bundle, its own root and cgroup.
    let runc_root = tempfile::tempdir().unwrap();
    let runc_path = format!("{}/cgt-diff-runc", parent_cgroup());
    b.config["linux"]["cgroupsPath"] = json!(runc_path);
    // runc wants an absolute rootfs path or one relative to the bundle.
    b.write_config();
    let _g = RuncContainer {
        root: runc_root.path(),
        id: "cgt-diff-runc".into(),
        cgroup: Some(runc_path.clone()),
    };
    let st = Command::new("runc")
        .arg("--root")
        .arg(runc_root.path())
        .args(["create", "--bundle"])
        .arg(b.dir.path())
        .arg("cgt-diff-runc")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    for (ctrl, file) in [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("pids", "pids.max"),
        ("devices", "devices.list"),
    ] {
        let sorted = |s: String| {
            // libcgroups also allows /dev/console (c 5:1), which runc 1.1
            // leaves out of its defaults.
            let mut v: Vec<String> = s
                .lines()
                .filter(|l| *l != "c 5:1 rwm")
                .map(str::to_owned)
                .collect();
            v.sort();
            v
        };
        let ours = sorted(read(&cg_dir(ctrl, &pier_path).join(file)));
        let theirs = sorted(read(&cg_dir(ctrl, &runc_path).join(file)));
        assert_eq!(ours, theirs, "{ctrl}/{file}");
    }
}

#[test]
fn pids_limit_caps_a_fork_bomb() {
    let mut b = Bundle::new(&[]);
    let id = "cgt-pids";
    let path = b.cgroup_for(id);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 8});
    // 40 background sleeps: only 8 processes fit in the cgroup.
    sh(
        &mut b,
        "i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done 2>/dev/null; sleep 100",
    );
    b.start(id);
    wait_until("the fork loop to end", || {
        b.pids(id).len() >= 8 || b.state(id)["status"] == "stopped"
    });
    std::thread::sleep(Duration::from_millis(300));
    let n = b.pids(id).len();
    assert!(n <= 8, "{n} processes in a cgroup limited to 8");
    assert_eq!(cg_read("pids", &path, "pids.max", "pids.max"), "8");
    let current: u64 = cg_read("pids", &path, "pids.current", "pids.current")
        .parse()
        .unwrap();
    assert!(current <= 8, "pids.current {current}");
    // The kernel counted the refused forks.
    let events = cg_read("pids", &path, "pids.events", "pids.events");
    let refused: u64 = events
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(refused > 0, "pids.events: {events}");
}

/// Process state letter of `pid`.
fn proc_state(pid: i32) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let mut b = Bundle::new(&[]);
    let id = "cgt-pause";
    let path = b.cgroup_for(id);
    // A counter the test reads from outside through /proc/PID/root.
    sh(
        &mut b,
        "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; done",
    );
    b.start(id);
    let pid = b.state(id)["pid"].as_i64().unwrap() as i32;
    let counter = || {
        fs::read_to_string(format!("/proc/{pid}/root/dev/shm/n"))
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    wait_until("the counter to start", || counter() > 0);

    b.ok(&["pause", id]);
    assert_eq!(b.state(id)["status"], "paused");
    let list = b.ok(&["list"]);
    assert!(list.contains("paused"), "{list}");
    if is_v2() {
        assert_eq!(read(&cg_dir("", &path).join("cgroup.freeze")), "1");
    } else {
        assert_eq!(
            read(&cg_dir("freezer", &path).join("freezer.state")),
            "FROZEN"
        );
        // v1 frozen tasks sleep uninterruptibly in the refrigerator.
        assert!(proc_state(pid).starts_with('D'), "{}", proc_state(pid));
    }
    // A read may race with the last write before the freeze: settle first.
    std::thread::sleep(Duration::from_millis(50));
    let a = counter();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter(), a, "the counter moved while paused");
    // Pausing twice is an error; so is starting a paused container.
    assert!(!b
        .cmd(&["pause", id])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());

    b.ok(&["resume", id]);
    assert_eq!(b.state(id)["status"], "running");
    wait_until("the counter to move again", || counter() > a);
    assert!(!b
        .cmd(&["resume", id])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());

    // A paused container can still be deleted with --force.
    b.ok(&["pause", id]);
    b.ok(&["delete", "--force", id]);
    assert!(all_dirs(&path).iter().all(|d| !d.exists()));
}

#[test]
fn ps_lists_the_container_processes() {
    let mut b = Bundle::new(&[]);
    let id = "cgt-ps";
    b.cgroup_for(id);
    sh(&mut b, "sleep 101 & sleep 102 & wait");
    b.start(id);
    wait_until("three processes", || b.pids(id).len() == 3);
    let pids = b.pids(id);
    let init = b.state(id)["pid"].as_i64().unwrap() as i32;
    assert!(pids.contains(&init), "{pids:?}");
    let table = b.ok(&["ps", id]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"), "{table}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        table.contains("sleep 101") && table.contains("sleep 102"),
        "{table}"
    );
    // ps options are passed through.
    let custom = b.ok(&["ps", id, "-o", "pid,comm"]);
    assert!(
        custom.starts_with("    PID") || custom.contains("PID COMMAND"),
        "{custom}"
    );
    assert_eq!(custom.lines().count(), 4, "{custom}");
}

#[test]
fn events_stats_reports_memory_and_pids() {
    let mut b = Bundle::new(&["sleep", "100"]);
    let id = "cgt-events";
    b.cgroup_for(id);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 9});
    b.start(id);
    let out = b.ok(&["events", "--stats", id]);
    let ev: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id);
    let d = &ev["data"];
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{d}");
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 9, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
}

#[test]
fn kill_all_reaches_every_process() {
    let mut b = Bundle::new(&[]);
    let id = "cgt-killall";
    let path = b.cgroup_for(id);
    // No pid namespace: killing the init alone would leave the sleeps.
    b.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "ipc"}]);
    b.config["hostname"] = json!(null);
    sh(&mut b, "sleep 201 & sleep 202 & wait");
    b.start(id);
    wait_until("three processes", || b.pids(id).len() == 3);
    let pids = b.pids(id);
    b.ok(&["kill", "--all", id, "KILL"]);
    wait_until("every process to die", || {
        pids.iter().all(|p| {
            let s = proc_state(*p);
            s.is_empty() || s.starts_with('Z')
        })
    });
    wait_until("an empty cgroup", || {
        cg_read("pids", &path, "cgroup.procs", "cgroup.procs").is_empty()
    });
}

#[test]
fn delete_removes_the_cgroup() {
    let mut b = Bundle::new(&["sleep", "100"]);
    let id = "cgt-delete";
    let path = b.cgroup_for(id);
    b.start(id);
    assert!(cg_dir("memory", &path).is_dir());
    b.ok(&["delete", "--force", id]);
    for d in all_dirs(&path) {
        assert!(!d.exists(), "{} survived delete", d.display());
    }
    // `run` deletes its cgroup too.
    let id = "cgt-delete-run";
    let path = b.cgroup_for(id);
    b.config["process"]["args"] = json!(["true"]);
    assert!(b.run(id).status.success());
    for d in all_dirs(&path) {
        assert!(!d.exists(), "{} survived run", d.display());
    }
}

#[test]
fn default_and_relative_cgroups_paths() {
    // Before the bundle: dropped after it deleted the containers.
    let _parents = under_own_cgroups(&format!("pier-cgtest-rel-{}", std::process::id()));
    let mut b = Bundle::new(&["sleep", "100"]);
    let id = format!("cgt-default-{}", std::process::id());
    b.start(&id);
    let st = fs::read_to_string(b.root.path().join(&id).join("state.json")).unwrap();
    let st: Value = serde_json::from_str(&st).unwrap();
    let path = st["cgroup"]["path"].as_str().unwrap().to_owned();
    assert!(path.ends_with(&format!("/{id}")), "{path}");
    assert!(cg_dir("pids", &path).is_dir(), "{path}");
    b.ok(&["delete", "--force", &id]);
    assert!(!cg_dir("pids", &path).exists());

    let rel = format!("pier-cgtest-rel-{}/c", std::process::id());
    b.config["linux"]["cgroupsPath"] = json!(rel);
    b.start("cgt-rel");
    let st = fs::read_to_string(b.root.path().join("cgt-rel/state.json")).unwrap();
    let st: Value = serde_json::from_str(&st).unwrap();
    let path = st["cgroup"]["path"].as_str().unwrap().to_owned();
    assert!(path.ends_with(&rel), "{path}");
    assert!(cg_dir("pids", &path).is_dir(), "{path}");
    b.ok(&["delete", "--force", "cgt-rel"]);
}

#[test]
fn oom_kill_is_reported() {
    let mut b = Bundle::new(&[]);
    let id = "cgt-oom";
    b.cgroup_for(id);
    let mut mem = json!({"limit": 16777216});
    if is_v2()
        || cg_dir("memory", "/")
            .join("memory.memsw.limit_in_bytes")
            .exists()
    {
        mem["swap"] = json!(16777216);
    }
    b.config["linux"]["resources"]["memory"] = mem;
    // tail keeps a line that never ends: it grows until the OOM killer.
    sh(&mut b, "tail /dev/zero; sleep 100");
    b.start(id);
    let rt = pier_runtime::Runtime::new(b.root.path());
    wait_until("an OOM kill", || rt.load(id).unwrap().oom_killed());
    assert!(rt.load(id).unwrap().oom_kills() >= 1);
    // The container (its sh) lives on; events --stats still answers.
    let ev: Value = serde_json::from_str(b.ok(&["events", "--stats", id]).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
}

#[test]
fn rlimit_above_the_hard_limit_fails_clearly() {
    // Only meaningful where root cannot raise hard limits (no
    // CAP_SYS_RESOURCE beyond them, as on this project's machines).
    let probe = Command::new("sh")
        .args(["-c", "ulimit -Hn $(( $(ulimit -Hn) + 1000 ))"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    if probe.success() {
        eprintln!("skipped: this host lets root raise hard limits");
        return;
    }
    let hard: u64 = String::from_utf8(
        Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let mut b = Bundle::new(&["true"]);
    b.cgroup_for("cgt-rlimit");
    b.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "hard": hard + 1000, "soft": hard + 1000}]);
    let err = b.create("cgt-rlimit").unwrap_err();
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(!b.root.path().join("cgt-rlimit").exists());
    // A failed create leaves no cgroup behind.
    let path = format!("{}/cgt-rlimit", parent_cgroup());
    assert!(all_dirs(&path).iter().all(|d| !d.exists()));
}

/// With a cgroup namespace, the container sees its own cgroup as the root:
/// the init was born in it (the namespace is rooted where it was cloned).
#[test]
fn cgroup_namespace_is_rooted_at_the_container_cgroup() {
    let mut b = Bundle::new(&["cat", "/proc/self/cgroup"]);
    let id = "cgt-cgroupns";
    let path = b.cgroup_for(id);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    let out = b.run(id);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty());
    // Every hierarchy the container was placed in shows "/".
    let pids_line = lines
        .iter()
        .find(|l| l.split(':').nth(1) == Some(if is_v2() { "" } else { "pids" }))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(pids_line.ends_with(":/"), "{text}");
    // The caller's own cgroups are untouched.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(!own.contains(&path), "{own}");
}

#[test]
fn cgroup_mount_shows_the_containers_own_cgroup_read_only() {
    let (file, want) = if is_v2() {
        ("/sys/fs/cgroup/memory.max", "41943040")
    } else {
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "41943040")
    };
    for (id, cgroupns) in [("cgt-cgmount", false), ("cgt-cgmount-ns", true)] {
        let mut b = Bundle::new(&[]);
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(common::cgroup_mount());
        b.config["linux"]["resources"]["memory"] = json!({"limit": 41943040});
        if cgroupns {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        }
        let path = b.cgroup_for(id);
        sh(
            &mut b,
            &format!("cat {file}; echo 1 > {file} 2>/dev/null && echo WRITABLE; true"),
        );
        let out = b.run(id);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{id}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), want, "{id}: container sees {stdout:?}");
        for d in all_dirs(&path) {
            assert!(!d.exists(), "{} survived run", d.display());
        }
    }
}

/// Directories (parents of containers' cgroups) removed on drop, with
/// their child `c` first.
struct Parents(Vec<PathBuf>);

impl Drop for Parents {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::remove_dir(d.join("c"));
            let _ = fs::remove_dir(d);
        }
    }
}

/// `name` under this process's own cgroup in every hierarchy (and under
/// its parent, where v2 puts relative paths).
fn under_own_cgroups(name: &str) -> Parents {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut v = Vec::new();
    for (_, d) in dirs_of(&own) {
        v.extend(d.parent().map(|p| p.join(name)));
        v.push(d.join(name));
    }
    Parents(v)
}

/// The hierarchy a /proc/PID/cgroup line's controllers live in ("" is the
/// cgroup2 one), from this process's mountinfo.
fn hierarchy_mount(ctrls: &str) -> Option<PathBuf> {
    let mounts = pier_runtime::mountinfo::read_own().unwrap();
    mounts.into_iter().find_map(|m| {
        let opts: Vec<&str> = m.super_options.split(',').collect();
        let found = if ctrls.is_empty() {
            m.fstype == "cgroup2"
        } else {
            m.fstype == "cgroup" && ctrls.split(',').all(|c| opts.contains(&c))
        };
        found.then(|| PathBuf::from(m.mount_point))
    })
}

/// Every directory a /proc/PID/cgroup text names: (controllers, dir).
fn dirs_of(proc_cgroup: &str) -> Vec<(String, PathBuf)> {
    proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let mount = hierarchy_mount(ctrls)?;
            Some((ctrls.to_owned(), mount.join(path.trim_start_matches('/'))))
        })
        .collect()
}

/// runc on this host puts a container in every hierarchy (name=systemd
/// and, on hybrid hosts, the unified cgroup2 too) and a relative
/// cgroupsPath under the caller's own cgroup of each hierarchy (here the
/// memory one is nested): pier-runtime must do the same, for relative and
/// absolute paths.
#[test]
fn placement_in_every_hierarchy_matches_runc() {
    if Command::new("runc").arg("--version").output().is_err() {
        pier_testutil::skip("runc is not installed");
        return;
    }
    let me = std::process::id();
    let rel_parent = format!("pier-cgtest-place-{me}");
    // What both runtimes leave: the parents of their cgroups.
    let _rel = under_own_cgroups(&rel_parent);
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let _abs = Parents(
        dirs_of(&own)
            .iter()
            .filter_map(|(ctrls, _)| hierarchy_mount(ctrls))
            .map(|m| m.join(&parent_cgroup()[1..]))
            .collect(),
    );
    let mut b = Bundle::new(&["cat", "/proc/self/cgroup"]);
    let runc_root = tempfile::tempdir().unwrap();
    for (n, path) in [
        (0, format!("{rel_parent}/c")),
        (1, format!("{}/c", parent_cgroup())),
    ] {
        b.config["linux"]["cgroupsPath"] = json!(path);
        b.config["linux"]["resources"] = common::spec_resources();
        b.write_config();
        let runc_id = format!("cgt-place-runc-{n}");
        let _runc = RuncContainer {
            root: runc_root.path(),
            id: runc_id.clone(),
            cgroup: None,
        };
        let theirs = Command::new("runc")
            .arg("--root")
            .arg(runc_root.path())
            .args(["run", "--bundle"])
            .arg(b.dir.path())
            .arg(&runc_id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(theirs.status.success(), "runc run: {theirs:?}");
        let ours = b.run(&format!("cgt-place-pier-{n}"));
        assert!(ours.status.success(), "pier-runtime run: {ours:?}");
        let (theirs, ours) = (
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&ours.stdout),
        );
        assert_eq!(ours, theirs, "{path}: /proc/self/cgroup of the container");
        assert!(ours.lines().all(|l| l.ends_with(&path)), "{ours}");
        // `run` removed every one of them, nested and unified included.
        for (ctrls, d) in dirs_of(&ours) {
            assert!(!d.exists(), "{ctrls}: {} survived run", d.display());
        }
    }
}

/// A relative path with a nested memory cgroup: the limits land in each
/// hierarchy's own directory, stats are read from there, and delete
/// removes them all.
#[test]
fn relative_path_limits_and_stats_follow_each_hierarchy() {
    let rel_parent = format!("pier-cgtest-relstats-{}", std::process::id());
    // Before the bundle: dropped after it deleted the container.
    let _parents = under_own_cgroups(&rel_parent);
    let mut b = Bundle::new(&["sleep", "100"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("{rel_parent}/c"));
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 9});
    let id = "cgt-relstats";
    b.start(id);
    let pid = b.state(id)["pid"].as_i64().unwrap();
    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let dirs = dirs_of(&proc_cgroup);
    // Under the test's own cgroup of each hierarchy.
    let own = read(Path::new("/proc/self/cgroup"));
    for ((ctrls, theirs), (_, mine)) in dirs.iter().zip(dirs_of(&own)) {
        assert_eq!(
            theirs,
            &mine.join(&rel_parent).join("c"),
            "{ctrls}: {proc_cgroup}"
        );
    }
    let dir_of = |c: &str| {
        dirs.iter()
            .find(|(ctrls, _)| ctrls.split(',').any(|x| x == c))
            .map(|(_, d)| d.clone())
    };
    if is_v2() {
        assert_eq!(read(&dir_of("").unwrap().join("memory.max")), "67108864");
    } else {
        let mem = dir_of("memory").unwrap();
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&dir_of("pids").unwrap().join("pids.max")), "9");
    }
    let ev: Value = serde_json::from_str(b.ok(&["events", "--stats", id]).trim()).unwrap();
    let d = &ev["data"];
    assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 9, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    // pause/resume reach the freezer wherever it is.
    b.ok(&["pause", id]);
    assert_eq!(b.state(id)["status"], "paused");
    b.ok(&["resume", id]);
    assert_eq!(b.state(id)["status"], "running");
    b.ok(&["delete", "--force", id]);
    for (ctrls, d) in &dirs {
        assert!(!d.exists(), "{ctrls}: {} survived delete", d.display());
    }
}

/// On a hybrid host whose unified cgroup2 is read-only (as in a container
/// given the host's cgroups read-only), the container still runs: joining
/// that controller-less hierarchy is skipped, with or without a cgroup
/// namespace (whose setup moves the runtime in and back out). The
/// read-only remount happens in a private mount namespace of its own.
#[test]
fn read_only_unified_hierarchy_is_skipped() {
    let unified = Path::new(ROOT).join("unified");
    if is_v2() || hierarchy_mount("").as_deref() != Some(unified.as_path()) {
        eprintln!("skipped: not a hybrid host");
        return;
    }
    for (n, cgroupns) in [(0, false), (1, true)] {
        let mut b = Bundle::new(&["cat", "/proc/self/cgroup"]);
        let id = format!("cgt-ro-unified-{n}");
        let path = b.cgroup_for(&id);
        if cgroupns {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        }
        b.write_config();
        b.ids.push(id.clone());
        let script = format!(
            "mount -o remount,bind,ro {u} && exec {runtime} run --bundle {bundle} {id}",
            u = unified.display(),
            runtime = b.shell_runtime(),
            bundle = b.path().display(),
        );
        let stdout = common::sh_in_private_mount_ns(&script, || format!("cgroupns {cgroupns}"));
        // In every v1 hierarchy, not in the read-only unified one.
        let v2_line = stdout.lines().find(|l| l.starts_with("0::"));
        let pids_line = stdout.lines().find(|l| l.contains(":pids:"));
        if cgroupns {
            assert!(pids_line.is_some_and(|l| l.ends_with(":/")), "{stdout}");
        } else {
            assert!(pids_line.is_some_and(|l| l.ends_with(&path)), "{stdout}");
            assert!(v2_line.is_some_and(|l| !l.ends_with(&path)), "{stdout}");
        }
        assert!(!unified.join(&path[1..]).exists(), "{stdout}");
    }
}

/// pier-runtime's own v1 stats reader (used when the container's cgroup
/// is nested differently per hierarchy) reads the same values as
/// libcgroups' on a cgroup both can read.
#[test]
fn own_v1_stats_match_libcgroups() {
    if is_v2() {
        eprintln!("skipped: v1 stats on a v1 host only");
        return;
    }
    let mut b = Bundle::new(&["sleep", "100"]);
    let id = "cgt-v1stats";
    b.cgroup_for(id);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 50331648});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 11});
    b.start(id);
    let c = pier_runtime::Runtime::new(b.root.path()).load(id).unwrap();
    let st = c.cgroup_state().unwrap().clone();
    assert!(st.nested.is_empty(), "an absolute path: {st:?}");
    let theirs = c.stats().unwrap();
    let ours = pier_runtime::cgroups::read_v1_stats(&st);
    let (m, n) = (&ours.memory, &theirs.memory);
    assert_eq!(m.memory.limit, 50331648);
    assert_eq!(m.memory.limit, n.memory.limit);
    assert_eq!(m.memswap.limit, n.memswap.limit);
    assert_eq!(m.kernel.limit, n.kernel.limit);
    assert_eq!(m.hierarchy, n.hierarchy);
    let keys = |s: &std::collections::HashMap<String, u64>| {
        let mut k: Vec<String> = s.keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&m.stats), keys(&n.stats));
    assert_eq!((ours.pids.current, ours.pids.limit), (1, 11));
    assert_eq!(
        (ours.pids.current, ours.pids.limit),
        (theirs.pids.current, theirs.pids.limit)
    );
    let (u, v) = (&ours.cpu.usage, &theirs.cpu.usage);
    assert!(u.usage_total > 0 && u.usage_total >= v.usage_total);
    assert_eq!(u.per_core_usage_total.len(), v.per_core_usage_total.len());
    assert_eq!(u.per_core_usage_user.len(), v.per_core_usage_user.len());
    assert_eq!(u.per_core_usage_kernel.len(), v.per_core_usage_kernel.len());
    assert_eq!(ours.cpu.throttling.periods, theirs.cpu.throttling.periods);
}
