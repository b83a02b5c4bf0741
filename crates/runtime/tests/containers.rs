//! End-to-end tests: real bundles (busybox rootfs + a runc-like config.json)
//! driven through the pier-runtime binary. They need root and busybox-static.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

mod common;

use common::Bundle;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn with_args(b: &mut Bundle, script: &str) {
    b.config["process"]["args"] = json!(sh(script));
}

#[test]
fn run_sets_hostname_and_process_is_pid1() {
    let mut b = Bundle::new(&[]);
    with_args(
        &mut b,
        "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo",
    );
    let out = b.run_ok("hostname");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pier-test", "{out}");
    assert_eq!(lines[1], "1", "{out}");
    assert!(lines[2].starts_with("sh -c hostname"), "{out}");
    assert!(
        !b.state_dir_exists("hostname"),
        "run must delete the container"
    );
}

#[test]
fn run_returns_the_exit_code() {
    let mut b = Bundle::new(&["sh", "-c", "exit 7"]);
    let out = b.run("exit7");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!b.state_dir_exists("exit7"));
}

#[test]
fn mountinfo_shows_rootfs_as_root_and_no_host_paths() {
    let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
    let out = b.run_ok("mountinfo");
    let rootfs = b.rootfs().canonicalize().unwrap();
    let mut saw_root = false;
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (fs_root, mount_point) = (f[3], f[4]);
        if mount_point == "/" {
            assert_eq!(fs_root, rootfs.to_str().unwrap(), "{line}");
            assert!(f[5].starts_with("ro"), "root must be read-only: {line}");
            saw_root = true;
            continue;
        }
        assert!(
            ["/proc", "/dev", "/sys"]
                .iter()
                .any(|p| mount_point == *p || mount_point.starts_with(&format!("{p}/"))),
            "unexpected mount point {mount_point}: {out}"
        );
    }
    assert!(saw_root, "{out}");
    for host in ["/work", "/run", "/home", "/boot"] {
        assert!(
            !out.lines().any(|l| l.split(' ').nth(4) == Some(host)),
            "host mount {host} visible: {out}"
        );
    }
}

#[test]
fn network_namespace_has_only_lo() {
    let mut b = Bundle::new(&[]);
    with_args(&mut b, "cat /proc/net/dev; echo ---; ip -o link");
    let out = b.run_ok("net");
    let (dev, links) = out.split_once("---").unwrap();
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(ifaces, ["lo"], "{out}");
    let link_names: Vec<&str> = links.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(link_names, ["lo"], "{out}");
}

#[test]
fn missing_executable_is_exec_not_found_and_leaves_no_state() {
    let mut b = Bundle::new(&["no-such-program"]);
    let out = b.run("missing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exec: \"no-such-program\": executable file not found in $PATH"),
        "{stderr}"
    );
    assert!(!b.state_dir_exists("missing"));

    // A file that exists but cannot be executed: permission denied.
    b.config["process"]["args"] = json!(["/etc/passwd"]);
    let out = b.run("noexec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exec: \"/etc/passwd\": permission denied"),
        "{stderr}"
    );
    assert!(!b.state_dir_exists("noexec"));
}

#[test]
fn env_and_cwd_are_applied() {
    let mut b = Bundle::new(&[]);
    with_args(&mut b, "echo \"$GREETING\"; pwd");
    b.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hello pier"]);
    b.config["process"]["cwd"] = json!("/work/here");
    let out = b.run_ok("envcwd");
    assert_eq!(out, "hello pier\n/work/here\n");
    assert!(
        b.rootfs().join("work/here").is_dir(),
        "cwd created in the rootfs"
    );
}

#[test]
fn user_and_groups_from_process_user() {
    let mut b = Bundle::new(&["id"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20]});
    let out = b.run_ok("user");
    assert!(out.starts_with("uid=1000 gid=1001"), "{out}");
    assert!(
        out.contains("groups=10,20") || out.contains("groups=10") && out.contains(",20"),
        "{out}"
    );
}

#[test]
fn capabilities_are_limited_to_the_spec() {
    let mut b = Bundle::new(&["grep", "^Cap", "/proc/self/status"]);
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29).
    let mask = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    let zero = format!("{:016x}", 0);
    // runc's default spec has no inheritable set, so the ambient raise
    // cannot take effect (the kernel requires permitted + inheritable).
    let out = b.run_ok("caps");
    for (set, want) in [
        ("CapInh", &zero),
        ("CapPrm", &mask),
        ("CapEff", &mask),
        ("CapBnd", &mask),
        ("CapAmb", &zero),
    ] {
        let line = out.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(line.ends_with(want.as_str()), "{set}: {out}");
    }
    b.config["process"]["capabilities"]["inheritable"] =
        b.config["process"]["capabilities"]["bounding"].clone();
    let out = b.run_ok("caps2");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = out.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(line.ends_with(&mask), "{set}: {out}");
    }
}

#[test]
fn masked_paths_read_empty_and_readonly_paths_refuse_writes() {
    let mut b = Bundle::new(&[]);
    let rootfs = b.rootfs();
    fs::write(rootfs.join("etc/secret"), "s3cret").unwrap();
    fs::create_dir_all(rootfs.join("etc/secretdir")).unwrap();
    fs::write(rootfs.join("etc/secretdir/key"), "k").unwrap();
    fs::create_dir_all(rootfs.join("data/ro")).unwrap();
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["maskedPaths"] = json!(["/etc/secret", "/etc/secretdir", "/proc/kcore"]);
    b.config["linux"]["readonlyPaths"] = json!(["/data/ro", "/proc/sys"]);
    with_args(
        &mut b,
        "echo \"[$(cat /etc/secret)]\"; ls /etc/secretdir | wc -l; \
         touch /data/ro/x 2>/dev/null && echo ro-writable || echo ro-refused; \
         touch /data/rw && echo rw-ok; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-refused",
    );
    let out = b.run_ok("masked");
    assert_eq!(out, "[]\n0\nro-refused\nrw-ok\nsys-refused\n");
    assert!(!rootfs.join("data/ro/x").exists());
}

#[test]
fn readonly_root_refuses_writes() {
    let mut b = Bundle::new(&[]);
    with_args(
        &mut b,
        "touch /x 2>/dev/null && echo writable || echo refused; touch /dev/shm/y && echo shm-ok",
    );
    assert_eq!(b.run_ok("roroot"), "refused\nshm-ok\n");
}

#[test]
fn symlinked_mount_destination_stays_inside_rootfs() {
    let mut b = Bundle::new(&[]);
    let name = format!("pier-escape-{}", std::process::id());
    let host_target = Path::new("/tmp").join(&name);
    // Removes what an escaping mount would have made on the host, also when
    // an assertion fails.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
            let _ = fs::remove_dir_all(format!("{}-bind", self.0.display()));
        }
    }
    let _cleanup = Cleanup(host_target.clone());
    let _ = fs::remove_dir_all(&host_target);
    let rootfs = b.rootfs();
    symlink(format!("/../../tmp/{name}"), rootfs.join("data")).unwrap();
    symlink(format!("../../../tmp/{name}-bind"), rootfs.join("bound")).unwrap();
    let src = b.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("hello"), "from the host").unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/bound", "type": "bind", "source": "src", "options": ["rbind", "ro"]}));
    with_args(
        &mut b,
        &format!(
            "echo inside > /data/file && cat /data/file; cat /bound/hello; echo; \
             grep -c ' /tmp/{name} ' /proc/self/mountinfo; grep -c ' /tmp/{name}-bind ' /proc/self/mountinfo; \
             touch /bound/nope 2>/dev/null && echo bind-writable || echo bind-ro"
        ),
    );
    let out = b.run_ok("escape");
    assert_eq!(out, "inside\nfrom the host\n1\n1\nbind-ro\n");
    assert!(
        !host_target.exists(),
        "host {} was touched",
        host_target.display()
    );
    assert!(!Path::new("/tmp").join(format!("{name}-bind")).exists());
    assert!(
        rootfs.join("tmp").join(&name).is_dir(),
        "created inside the rootfs"
    );
    assert!(rootfs.join("tmp").join(format!("{name}-bind")).is_dir());
}

#[test]
fn create_start_state_kill_delete_lifecycle() {
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.config["annotations"] = json!({"org.pier.test": "yes"});
    b.write_config();
    let id = "life";
    b.ids.push(id.into());
    let pid_file = b.path().join("init.pid");
    let bundle = b.path().to_owned();
    let st = b
        .cmd(&["create", "--bundle"])
        .arg(&bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let state = |b: &mut Bundle| -> Value {
        let out = b.cmd(&["state", id]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let s = state(&mut b);
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], id);
    assert_eq!(s["pid"], pid);
    assert_eq!(
        s["bundle"],
        bundle.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(s["annotations"]["org.pier.test"], "yes");
    assert!(s["ociVersion"].is_string());

    // A second create with the same id fails.
    let out = b
        .cmd(&["create", "--bundle"])
        .arg(&bundle)
        .arg(id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let list = b.cmd(&["list", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout), "life\n");

    assert!(b.cmd(&["start", id]).status().unwrap().success());
    assert_eq!(state(&mut b)["status"], "running");
    // The process really is the program now.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x001000\x00");

    let out = b.cmd(&["delete", id]).output().unwrap();
    assert!(
        !out.status.success(),
        "running container deleted without force"
    );

    assert!(b.cmd(&["kill", id, "KILL"]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while state(&mut b)["status"] != "stopped" {
        assert!(std::time::Instant::now() < deadline, "did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(b.cmd(&["delete", id]).status().unwrap().success());
    assert!(!b.state_dir_exists(id));
}

#[test]
fn unsupported_features_are_refused() {
    // Time offsets without a time namespace cannot be honoured.
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    let out = b.run("timens");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a new time namespace"));
}

#[test]
fn invalid_ids_are_rejected() {
    let mut b = Bundle::new(&["true"]);
    let out = b.run("../escape");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container id"));
}

#[test]
fn no_pivot_uses_move_mount_and_chroot() {
    let mut b = Bundle::new(&[]);
    with_args(
        &mut b,
        "hostname; awk '$5 == \"/\" {print $4}' /proc/self/mountinfo; ls /bin/busybox",
    );
    let out = b.run_with("nopivot", &["--no-pivot"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = b.rootfs().canonicalize().unwrap();
    assert_eq!(
        stdout,
        format!("pier-test\n{}\n/bin/busybox\n", rootfs.display())
    );
}
