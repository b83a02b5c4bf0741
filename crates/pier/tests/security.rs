//! What a container is allowed, through the CLI, checked from inside real
//! containers: Docker's default capabilities, seccomp profile, masked and
//! read-only paths and device rules; `--cap-add`, `--cap-drop`,
//! `--privileged`, `--read-only` and `--security-opt`. One test runs the
//! same probe under a private dockerd and compares.

use pier_testutil::dockerd::Dockerd;
use pier_testutil::PierEnv;
use std::path::Path;
use std::process::Output;

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `pier run --rm FLAGS... busybox sh -c SCRIPT`, which must succeed.
fn sh(env: &PierEnv, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    env.ok(&args)
}

/// The value of `key` in /proc/self/status-like text.
fn status_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
}

/// What the container may do, one line per question.
const PROBE: &str = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
    unshare -U true 2>/dev/null; echo unshare=$?; \
    wc -c < /proc/keys; \
    (echo x > /proc/sys/kernel/domainname) 2>/dev/null; echo procsys=$?; \
    (touch /sys/pier-probe) 2>/dev/null; echo sys=$?; \
    mknod /tmp/null-again c 1 3 && echo mknod-ok; \
    mknod /tmp/lc c 10 237; (: < /tmp/lc) 2>/dev/null; echo loopctl=$?; \
    sort /sys/fs/cgroup/devices/devices.list 2>/dev/null";

#[test]
fn defaults_match_docker() {
    let env = env();
    let pier = sh(&env, &[], PROBE);
    assert_eq!(
        status_field(&pier, "CapEff"),
        "00000000a80425fb",
        "Docker's 14 default capabilities: {pier}"
    );
    assert!(
        pier.contains("unshare=1"),
        "seccomp let unshare through: {pier}"
    );
    assert!(pier.contains("NoNewPrivs:\t0"));
    assert!(pier.contains("Seccomp:\t2"), "no seccomp filter: {pier}");

    let Some(docker) = docker_probe(&env, &[]) else {
        return;
    };
    // As docker, line for line.
    assert_eq!(pier, docker, "pier (left) and docker (right) differ");
}

/// The probe under a private dockerd, or None (skipped) where dockerd
/// cannot run.
fn docker_probe(env: &PierEnv, flags: &[&str]) -> Option<String> {
    let dockerd = match Dockerd::start(env.dir.path()) {
        Ok(d) => d,
        Err(why) => {
            pier_testutil::skip(&format!("dockerd cannot run on this machine: {why}"));
            return None;
        }
    };
    let tar = env.dir.path().join("busybox-docker.tar");
    pier_testutil::write_busybox_tar(&tar).unwrap();
    dockerd.ok(&["import", tar.to_str().unwrap(), "probe-busybox:1"]);
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["probe-busybox:1", "sh", "-c", PROBE]);
    Some(dockerd.ok(&args))
}

#[test]
fn cap_drop_and_cap_add() {
    let env = env();
    assert_eq!(sh(&env, &[], "chown 5 /tmp && echo chown-ok"), "chown-ok\n");
    let out = env.run(&[
        "run",
        "--rm",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "chown",
        "5",
        "/tmp",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    // Names with or without CAP_, any case; ALL.
    let out = sh(
        &env,
        &["--cap-drop", "all", "--cap-add", "cap_kill"],
        "grep CapEff /proc/self/status",
    );
    assert_eq!(status_field(&out, "CapEff"), "0000000000000020");

    let script = "ip addr add 10.123.0.1/8 dev lo 2>/dev/null; echo $?";
    assert_eq!(sh(&env, &[], script).trim(), "2", "NET_ADMIN by default");
    assert_eq!(sh(&env, &["--cap-add", "NET_ADMIN"], script).trim(), "0");

    // CAP_SYS_ADMIN also opens the default seccomp profile's mount rules
    // (the profile is conditioned on the capabilities, as docker's).
    let script = "mkdir -p /mnt/t; mount -t tmpfs none /mnt/t 2>/dev/null; echo $?";
    assert_eq!(
        sh(&env, &[], script).trim(),
        "1",
        "mount without CAP_SYS_ADMIN"
    );
    assert_eq!(sh(&env, &["--cap-add", "SYS_ADMIN"], script).trim(), "0");
}

#[test]
fn privileged_lifts_seccomp_masks_and_device_rules() {
    let env = env();
    let out = sh(&env, &["--privileged"], PROBE);
    let caps = u64::from_str_radix(status_field(&out, "CapEff"), 16).unwrap();
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own_bnd = u64::from_str_radix(status_field(&own, "CapBnd"), 16).unwrap();
    assert_eq!(caps, own_bnd, "a privileged container has every capability");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("unshare=0"), "{out}");
    assert!(
        out.contains("procsys=0"),
        "/proc/sys is still read-only: {out}"
    );
    assert!(out.contains("loopctl=0"), "device rules still apply: {out}");
    assert!(out.contains("mknod-ok"), "{out}");
    assert!(
        out.contains("a *:* rwm"),
        "device cgroup still limited: {out}"
    );
    // The host's devices, as docker.
    let host_devs: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            let ft = e.file_type().unwrap();
            (ft.is_block_device() || ft.is_char_device()) && e.file_name() != "console"
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let listed = sh(&env, &["--privileged"], "ls /dev");
    for d in &host_devs {
        assert!(
            listed.lines().any(|l| l == d),
            "host device /dev/{d} missing in a privileged container: {listed}"
        );
    }
}

#[test]
fn masked_and_readonly_paths_by_default() {
    let env = env();
    let out = sh(&env, &[], PROBE);
    assert!(out.contains("procsys=1"), "/proc/sys writable: {out}");
    assert!(out.contains("sys=1"), "/sys writable: {out}");
    let keys = out.lines().nth(4).unwrap().trim();
    assert_eq!(keys, "0", "/proc/keys is not masked: {out}");
    // The device rules docker's containers get (deny all, then the
    // defaults): not /dev/loop-control (10:237), even through a node of its own.
    assert!(out.contains("loopctl=1"), "{out}");
    assert!(
        out.contains("c 1:3 rwm") && !out.contains("a *:* rwm"),
        "{out}"
    );
}

#[test]
fn read_only_root_refuses_writes_everywhere_but_mounts() {
    let env = env();
    let out = env.run(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /x; echo root=$?; touch /tmp/x; echo tmp=$?; echo ok > /dev/shm/x; echo shm=$?",
    ]);
    // As docker: no automatic tmpfs on /tmp; /dev/shm stays writable.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "root=1\ntmp=1\nshm=0\n"
    );
    assert!(stderr(&out).contains("Read-only file system"));
}

#[test]
fn security_opts() {
    let env = env();
    let nnp = "grep NoNewPrivs /proc/self/status";
    for opt in [
        "no-new-privileges",
        "no-new-privileges:true",
        "no-new-privileges=true",
    ] {
        let out = sh(&env, &["--security-opt", opt], nnp);
        assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{opt}");
    }
    let out = sh(&env, &["--security-opt", "no-new-privileges=false"], nnp);
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");

    let out = sh(
        &env,
        &["--security-opt", "seccomp=unconfined"],
        "grep Seccomp: /proc/self/status; unshare -U true; echo unshare=$?",
    );
    assert_eq!(out, "Seccomp:\t0\nunshare=0\n");

    // A profile file of the user's, read by the CLI as docker's does.
    let profile = env.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = sh(
        &env,
        &["--security-opt", &opt],
        "mkdir /tmp/d 2>/dev/null; echo mkdir=$?; touch /tmp/f; echo touch=$?",
    );
    assert_eq!(out, "mkdir=1\ntouch=0\n");

    // As docker: systempaths=unconfined lifts the masked and read-only
    // /proc paths (no mount over /proc/keys, /proc/sys writable).
    let script = "grep -c ' /proc/keys ' /proc/self/mountinfo; \
                  (echo x > /proc/sys/kernel/domainname) 2>/dev/null; echo procsys=$?";
    assert_eq!(sh(&env, &[], script), "1\nprocsys=1\n");
    let out = sh(&env, &["--security-opt", "systempaths=unconfined"], script);
    assert_eq!(out, "0\nprocsys=0\n");

    // AppArmor and SELinux options are accepted with a warning: this host
    // has neither.
    let out = env.run(&[
        "run",
        "--rm",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "label=disable",
        "busybox",
        "true",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("WARNING"), "{}", stderr(&out));
}
