//! `pier-runtime exec`: namespaces, cgroup, process attributes, seccomp,
//! exit codes, --process/--detach/--pid-file.

mod common;

use std::fs;
use std::process::Stdio;

use common::{check, Bundle};

use serde_json::json;

/// A running container (`sleep 1000`) with the given tweak.
fn running(id: &str, tweak: impl FnOnce(&mut Bundle)) -> Bundle {
    let mut b = Bundle::new(&["sleep", "1000"]);
    tweak(&mut b);
    b.run_detached(id);
    b
}

#[test]
fn exec_joins_the_container_and_returns_the_exit_code() {
    let b = running("ex1", |_| {});
    let out = b
        .cmd(&["exec", "ex1", "sh", "-c"])
        .arg(
            "hostname; for n in ipc mnt net pid uts cgroup; do \
               [ $(readlink /proc/self/ns/$n) = $(readlink /proc/1/ns/$n) ] && echo same-$n; done; \
             [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same-cgroups; \
             ls /bin/busybox; exit 5",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pier-test\nsame-ipc\nsame-mnt\nsame-net\nsame-pid\nsame-uts\nsame-cgroup\nsame-cgroups\n/bin/busybox\n"
    );
}

#[test]
fn exec_applies_user_cwd_env_and_caps() {
    let b = running("ex2", |_| {});
    let out = b
        .cmd(&[
            "exec",
            "--user",
            "1000:1001",
            "-g",
            "7",
            "--cwd",
            "/tmp",
            "-e",
            "FOO=bar",
            "--cap",
            "CAP_SYS_ADMIN",
            "ex2",
            "sh",
            "-c",
        ])
        .arg("id; pwd; echo $FOO; grep -E '^Cap(Bnd|Prm)' /proc/self/status")
        .output()
        .unwrap();
    let out = check(&out);
    let mask = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 21) | (1 << 29));
    assert_eq!(
        out,
        // A non-root user keeps no permitted capabilities across execve
        // (no ambient set here), but the bounding set has the added one.
        format!(
            "uid=1000 gid=1001 groups=7\n/tmp\nbar\nCapPrm:\t{:016x}\nCapBnd:\t{mask}\n",
            0
        )
    );
}

#[test]
fn exec_process_file_detached_with_pid_file() {
    let b = running("ex3", |_| {});
    let process = json!({
        "args": ["sh", "-c", "echo from-process-file > /dev/shm/out; sleep 1000; true"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    });
    let pfile = b.path().join("process.json");
    fs::write(&pfile, process.to_string()).unwrap();
    let pid_file = b.path().join("exec.pid");
    let st = b
        .cmd(&["exec", "--detach", "--process"])
        .arg(&pfile)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("ex3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with("sh\0-c\0echo from-process-file"),
        "{cmdline:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = b
            .cmd(&["exec", "ex3", "cat", "/dev/shm/out"])
            .output()
            .unwrap();
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "from-process-file\n");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The exec'd process is killed with the container (`kill --all`).
    assert!(b
        .cmd(&["kill", "--all", "ex3", "KILL"])
        .status()
        .unwrap()
        .success());
}

#[test]
fn exec_gets_the_container_seccomp_filter() {
    let b = running("ex4", |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        });
    });
    let out = b
        .cmd(&[
            "exec",
            "ex4",
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; /bin/pwd 2>&1; true",
        ])
        .output()
        .unwrap();
    assert_eq!(check(&out), "Seccomp:\t2\npwd: getcwd: Permission denied\n");
}

#[test]
fn exec_errors() {
    let b = running("ex5", |_| {});
    let out = b.cmd(&["exec", "ex5", "no-such-program"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("executable file not found"),
        "{out:?}"
    );
    let out = b.cmd(&["exec", "nope", "true"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(b.cmd(&["kill", "ex5", "KILL"]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = b.cmd(&["exec", "ex5", "true"]).output().unwrap();
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("stopped") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
