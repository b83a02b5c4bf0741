//! cgroup v2 device rules, for real: pier-runtime's v2 code path
//! (`Cgroup::add` + `Cgroup::apply`, libcgroups' v2 manager with its
//! eBPF device program) on a real cgroup2 hierarchy, with a real process
//! in the cgroup opening real device nodes.
//!
//! A BPF_CGROUP_DEVICE program attaches to any cgroup2 directory, with
//! controllers or not: on a hybrid host (v1 controllers, an empty cgroup2
//! at /sys/fs/cgroup/unified) this runs on that cgroup2, on a pure v2 host
//! on /sys/fs/cgroup. The process stays in the v1 devices cgroup it was
//! born in (which allows everything), so every denial seen here comes from
//! the eBPF program.
//!
//! The cgroup is /pier-test-v2dev-<pid> in that hierarchy; a Drop guard
//! kills the process and removes the cgroup (which detaches the program)
//! even when the test fails. A second test runs whole containers through
//! `pier-runtime run` in a private mount namespace where that cgroup2 is
//! mounted at /sys/fs/cgroup, i.e. the runtime's pure v2 path.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use oci_spec::runtime::LinuxResources;
use pier_runtime::cgroups::{Cgroup, CgroupState, Mode};

/// Mount point of the first cgroup2 filesystem, from mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = pier_runtime::mountinfo::read_own().ok()?;
    mounts
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| PathBuf::from(m.mount_point))
}

/// The test's process and cgroup; on drop the process is killed and
/// reaped, then the cgroup removed.
struct Guard {
    child: Child,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A shell that, for every line on its stdin, tries to open each node of
/// `probes` ("path:r" or "path:w") and prints "<probe> ok" or
/// "<probe> <error>", then "end".
fn spawn_prober(probes: &[String]) -> Child {
    let script = r#"
while read _; do
  for p in "$@"; do
    f=${p%:*}
    if [ "${p##*:}" = r ]; then err=$( (exec 3<"$f") 2>&1 ); else err=$( (exec 3>"$f") 2>&1 ); fi
    if [ $? = 0 ]; then echo "$p ok"; else echo "$p $err"; fi
  done
  echo end
done
"#;
    Command::new(pier_testutil::busybox())
        .args(["sh", "-c", script, "prober"])
        .args(probes)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning busybox sh")
}

/// One round of probes: probe -> "ok" or the shell's error message.
fn probe_round(
    stdin: &mut ChildStdin,
    out: &mut BufReader<ChildStdout>,
) -> std::collections::BTreeMap<String, String> {
    writeln!(stdin, "go").expect("writing to the prober");
    stdin.flush().expect("flushing to the prober");
    let mut results = std::collections::BTreeMap::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("reading the prober");
        assert!(n > 0, "the prober exited early");
        let line = line.trim_end();
        if line == "end" {
            return results;
        }
        let (probe, result) = line.split_once(' ').unwrap_or((line, ""));
        results.insert(probe.to_owned(), result.to_owned());
    }
}

fn resources(devices: serde_json::Value) -> LinuxResources {
    serde_json::from_value(serde_json::json!({ "devices": devices }))
        .expect("a valid linux.resources")
}

fn assert_ok(r: &std::collections::BTreeMap<String, String>, probe: &str, when: &str) {
    assert_eq!(r[probe], "ok", "{when}: opening {probe} should work: {r:?}");
}

fn assert_eperm(r: &std::collections::BTreeMap<String, String>, probe: &str, when: &str) {
    assert!(
        r[probe].contains("Operation not permitted"),
        "{when}: opening {probe} should fail with EPERM: {r:?}"
    );
}

#[test]
fn v2_device_rules_are_enforced_by_the_ebpf_program() {
    let Some(v2_root) = cgroup2_or_skip() else {
        return;
    };
    // Our own device nodes: /dev/null (1:3, allowed by default) and
    // /dev/kmsg's numbers (1:11, denied by default), in a private dir.
    let nodes = tempfile::Builder::new()
        .prefix("pier-test-v2dev-")
        .tempdir()
        .expect("a temp dir");
    let null = nodes.path().join("null");
    let kmsg = nodes.path().join("kmsg");
    for (p, minor) in [(&null, "3"), (&kmsg, "11")] {
        let st = Command::new("mknod")
            .arg(p)
            .args(["c", "1", minor])
            .status()
            .expect("running mknod");
        assert!(st.success(), "mknod {}", p.display());
    }
    let probe = |p: &Path, mode: &str| format!("{}:{mode}", p.display());
    let (null_w, kmsg_r, kmsg_w) = (probe(&null, "w"), probe(&kmsg, "r"), probe(&kmsg, "w"));

    let st = CgroupState {
        path: PathBuf::from(format!("/pier-test-v2dev-{}", std::process::id())),
        mode: Mode::V2,
        nested: Default::default(),
    };
    let dir = v2_root.join(st.path.strip_prefix("/").expect("absolute"));
    let mut guard = Guard {
        child: spawn_prober(&[null_w.clone(), kmsg_r.clone(), kmsg_w.clone()]),
        dir: dir.clone(),
    };
    let mut stdin = guard.child.stdin.take().expect("prober stdin");
    let mut out = BufReader::new(guard.child.stdout.take().expect("prober stdout"));

    // Outside the cgroup every node opens (a test that can fail below).
    let before = probe_round(&mut stdin, &mut out);
    for p in [&null_w, &kmsg_r, &kmsg_w] {
        assert_ok(&before, p, "before the cgroup");
    }

    // Into the cgroup, with what `create` writes for a runc-like spec:
    // deny all, then the default devices.
    let cg = Cgroup::open_in(&v2_root, &st).expect("opening the v2 cgroup");
    let pid = guard.child.id() as i32;
    cg.add(pid).expect("moving the prober into the cgroup");
    let procs = fs::read_to_string(dir.join("cgroup.procs")).expect("cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "prober {pid} not in {}: {procs}",
        dir.display()
    );
    // Each apply replaces the previous program. With "allow all" and
    // denials the default devices come last and allow /dev/null again, as
    // runc does.
    for (what, rules, kmsg_readable) in [
        (
            "default rules",
            serde_json::json!([{"allow": false, "access": "rwm"}]),
            false,
        ),
        (
            "c 1:11 r",
            serde_json::json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
            ]),
            true,
        ),
        (
            "allow all, deny 1:3 and 1:11 w",
            serde_json::json!([
                {"allow": true, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}
            ]),
            true,
        ),
    ] {
        if let Err(e) = cg.apply(&resources(rules)) {
            panic!("applying {what}: {e}");
        }
        let got = probe_round(&mut stdin, &mut out);
        assert_ok(&got, &null_w, what);
        if kmsg_readable {
            assert_ok(&got, &kmsg_r, what);
        } else {
            assert_eperm(&got, &kmsg_r, what);
        }
        assert_eperm(&got, &kmsg_w, what);
    }

    drop(stdin);
    drop(guard);
    assert!(!dir.exists(), "{} survived the test", dir.display());
}

/// Removes the (empty) directories on drop, in order.
struct Rmdir(Vec<PathBuf>);

impl Drop for Rmdir {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::remove_dir(d);
        }
    }
}

/// The cgroup2 mount point, or None after `skip` says why these tests
/// cannot run here (not root, or no cgroup2 hierarchy).
fn cgroup2_or_skip() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        pier_testutil::skip("cgroup v2 tests need root");
        return None;
    }
    let found = cgroup2_mount();
    if found.is_none() {
        pier_testutil::skip("no cgroup2 hierarchy is mounted on this host");
    }
    found
}

/// The whole pure-v2 path, end to end: `pier-runtime run` in a private
/// mount namespace where /sys/fs/cgroup is the cgroup2 hierarchy (so the
/// runtime sees a pure v2 host), with a container that has /dev/probe
/// (c 1:200, a number no driver has) as a `linux.devices` node. Deny-all
/// plus the default devices refuse it with EPERM from inside while
/// /dev/null works; with a spec rule allowing c 1:200 for reading the
/// open gets past the cgroup to the kernel's ENXIO (no such device).
#[test]
fn pure_v2_run_enforces_device_rules_from_inside() {
    let Some(v2_root) = cgroup2_or_skip() else {
        return;
    };
    for (n, rules, want) in [
        (
            0,
            serde_json::json!([{"allow": false, "access": "rwm"}]),
            "Operation not permitted",
        ),
        (
            1,
            serde_json::json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 200, "access": "r"}
            ]),
            "No such device or address",
        ),
    ] {
        let id = format!("pier-test-v2run-{}-{n}", std::process::id());
        // The container's cgroup, should the run fail half-way.
        let _cg = Rmdir(vec![v2_root.join(&id)]);
        let mut b = common::Bundle::new(&[]);
        b.sh("echo x > /dev/null && echo null-ok; (exec 3</dev/probe) 2>&1; true");
        b.config["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/probe", "type": "c", "major": 1, "minor": 200,
             "fileMode": 420, "uid": 0, "gid": 0}
        ]);
        b.config["linux"]["resources"] = serde_json::json!({ "devices": rules });
        b.write_config();
        b.ids.push(id.clone());
        let script = format!(
            "mount -t cgroup2 none /sys/fs/cgroup && exec {runtime} run --bundle {bundle} {id}",
            runtime = b.shell_runtime(),
            bundle = b.path().display(),
        );
        let stdout = common::sh_in_private_mount_ns(&script, || format!("rules {n}"));
        assert!(stdout.contains("null-ok"), "rules {n}: {stdout}");
        assert!(stdout.contains(want), "rules {n}: {stdout}");
        if n == 1 {
            assert!(!stdout.contains("not permitted"), "rules {n}: {stdout}");
        }
        // `run` deleted the container's cgroup in the unified hierarchy.
        assert!(!v2_root.join(&id).exists(), "rules {n}: cgroup left");
    }
}

/// The rest of the pure v2 path on the same simulated host: a relative
/// cgroupsPath under the parent of the caller's cgroup, `pause`/`resume`
/// through cgroup.freeze, `ps`, and `delete` removing the cgroup.
#[test]
fn pure_v2_lifecycle_through_the_unified_tree() {
    let Some(v2_root) = cgroup2_or_skip() else {
        return;
    };
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    let parent = Path::new(own)
        .parent()
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let rel = format!("pier-test-v2life-{}", std::process::id());
    let cg = parent.join(&rel).join("c");
    let on_host = v2_root.join(cg.strip_prefix("/").unwrap());
    let _cg = Rmdir(vec![
        on_host.clone(),
        on_host.parent().unwrap().to_path_buf(),
    ]);
    let mut b = common::Bundle::new(&["sleep", "100"]);
    b.config["linux"]["cgroupsPath"] = serde_json::json!(format!("{rel}/c"));
    b.write_config();
    let id = format!("pier-test-v2life-{}", std::process::id());
    b.ids.push(id.clone());
    let dir = format!("/sys/fs/cgroup{}", cg.display());
    let script = format!(
        "set -e; mount -t cgroup2 none /sys/fs/cgroup
         R='{runtime}'
         $R create --bundle {bundle} {id} </dev/null >/dev/null 2>{bundle}/create.err
         $R start {id}
         echo procs $(cat {dir}/cgroup.procs)
         $R pause {id}; echo freeze $(cat {dir}/cgroup.freeze)
         $R state {id} | grep -o '\"status\": *\"[a-z]*\"' | tr -d ' '
         $R resume {id}; echo freeze $(cat {dir}/cgroup.freeze)
         echo ps $($R ps -f json {id})
         $R delete --force {id}
         test ! -e {dir} && echo removed",
        runtime = b.shell_runtime(),
        bundle = b.path().display(),
    );
    let stdout = common::sh_in_private_mount_ns(&script, || {
        fs::read_to_string(b.path().join("create.err")).unwrap_or_default()
    });
    let lines: Vec<&str> = stdout.lines().collect();
    let pid = lines[0].strip_prefix("procs ").expect("procs line");
    assert!(pid.parse::<u32>().is_ok(), "{stdout}");
    assert_eq!(lines[1], "freeze 1", "{stdout}");
    assert_eq!(lines[2], "\"status\":\"paused\"", "{stdout}");
    assert_eq!(lines[3], "freeze 0", "{stdout}");
    assert_eq!(lines[4], format!("ps [{pid}]"), "{stdout}");
    assert_eq!(lines[5], "removed", "{stdout}");
}
