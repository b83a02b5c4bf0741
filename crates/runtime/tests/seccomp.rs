//! seccomp from inside real containers: configured errnos, argument
//! filters, flags, the docker default profile, and NOTIFY with an agent.

mod common;

use common::Bundle;
use serde_json::json;

fn tmpfs_tmp(b: &mut Bundle) {
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
}

#[test]
fn denied_syscall_returns_the_configured_errno() {
    let mut b = Bundle::new(&[]);
    tmpfs_tmp(&mut b);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "not_a_syscall"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
        ]
    });
    b.sh("mkdir /tmp/x 2>&1; touch /tmp/y && echo touch-ok; chmod 600 /tmp/y 2>&1; true");
    let out = b.run_ok("errno");
    assert_eq!(
        out,
        "mkdir: can't create directory '/tmp/x': Operation not permitted\n\
         touch-ok\nchmod: /tmp/y: Permission denied\n"
    );
}

#[test]
fn default_errno_ret_and_allow_list() {
    let mut b = Bundle::new(&[]);
    tmpfs_tmp(&mut b);
    // Deny everything but what sh needs: a default errno with an allow
    // list. Take mkdir out of the allow list: it gets the default errno
    // (EPERM in docker's profile, here ENOSYS through defaultErrnoRet).
    let mut oci = docker_profile_without(|n| n == "mkdir" || n == "mkdirat");
    oci["defaultErrnoRet"] = json!(38);
    b.config["linux"]["seccomp"] = oci;
    b.sh("mkdir /tmp/d 2>&1; echo sh-runs");
    let out = b.run_ok("deferrno");
    assert!(out.contains("Function not implemented"), "{out}");
    assert!(out.contains("sh-runs"), "{out}");
}

#[test]
fn argument_filters() {
    let mut b = Bundle::new(&[]);
    tmpfs_tmp(&mut b);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // kill(pid, SIGUSR1) is refused, other signals are not.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
            // open*(..., flags & O_CREAT == O_CREAT) is refused.
            {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]},
            // Two comparisons of the same argument: each is a rule.
            {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 2, "value": 5, "op": "SCMP_CMP_EQ"},
                      {"index": 2, "value": 6, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    b.sh("kill -USR1 $$ && echo usr1-sent || echo usr1-refused; \
         kill -0 $$ && echo sig0-ok; \
         touch /tmp/new && echo create-ok || echo create-refused; \
         cat /etc/passwd | grep -q root && echo read-ok; \
         renice -n 5 $$ 2>&1 | grep -q . && echo nice5-refused || echo nice5-ok; \
         renice -n 3 $$ 2>&1 | grep -q . && echo nice3-refused || echo nice3-ok");
    let out = b.run_ok("args");
    assert_eq!(
        out,
        "usr1-refused\nsig0-ok\ncreate-refused\nread-ok\nnice5-refused\nnice3-ok\n"
    );
}

#[test]
fn filter_is_loaded_without_no_new_privileges_and_flags_apply() {
    let mut b = Bundle::new(&[]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.sh("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; /bin/pwd 2>&1; true");
    let out = b.run_ok("nonnp");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn kill_and_trap_actions_end_the_process() {
    let mut b = Bundle::new(&["uname"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    let out = b.run("killproc");
    assert_eq!(out.status.code(), Some(128 + libc::SIGSYS), "{out:?}");
    b.config["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_TRAP");
    let out = b.run("trap");
    assert_eq!(out.status.code(), Some(128 + libc::SIGSYS), "{out:?}");
    b.config["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_LOG");
    let out = b.run("log");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn docker_default_profile_lets_busybox_run() {
    let mut b = Bundle::new(&[]);
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.config["linux"]["seccomp"] = docker_profile(&caps);
    b.sh("echo hello; ls / | wc -l; grep Seccomp: /proc/self/status; unshare -n true 2>&1 || echo unshare-refused");
    let out = b.run_ok("docker");
    assert!(out.starts_with("hello\n"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("unshare-refused"), "{out}");
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// A seccomp agent: receives the listener fd and the state over the
/// socket, answers every notification with EROFS, returns the state JSON
/// and the syscall numbers it saw.
fn agent(listener: std::os::unix::net::UnixListener) -> (serde_json::Value, Vec<i64>) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: recvmsg into local buffers; the received fd becomes owned.
    let (n, fd) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(conn.as_raw_fd(), &mut msg, 0);
        assert!(n > 0);
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null());
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
        (n as usize, OwnedFd::from_raw_fd(fd))
    };
    let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    let mut seen = Vec::new();
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll and the two notify ioctls on local structs.
        unsafe {
            if libc::poll(&mut pfd, 1, 20_000) <= 0 || pfd.revents & libc::POLLIN == 0 {
                break;
            }
            let mut req = Notif::default();
            if libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) != 0 {
                continue;
            }
            seen.push(req.nr as i64);
            let resp = NotifResp {
                id: req.id,
                val: 0,
                error: -libc::EROFS,
                flags: 0,
            };
            libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp);
        }
    }
    (state, seen)
}

#[test]
fn notify_sends_the_listener_fd_to_the_agent() {
    let mut b = Bundle::new(&[]);
    tmpfs_tmp(&mut b);
    let sock = b.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || agent(listener));
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "hello-agent",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.sh("mkdir /tmp/x 2>&1; echo done");
    let out = b.run_ok("notify");
    assert_eq!(
        out,
        "mkdir: can't create directory '/tmp/x': Read-only file system\ndone\n"
    );
    let (state, seen) = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "hello-agent");
    assert_eq!(state["state"]["id"], "notify");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert_eq!(seen, [libc::SYS_mkdir]);
}

#[test]
fn lsm_labels_are_refused_with_a_clear_error() {
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["apparmorProfile"] = json!("docker-default");
    let out = b.run("apparmor");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not support AppArmor"));
}

/// docker's default profile (tests/data) as OCI seccomp for a process
/// with the capabilities `caps`.
fn docker_profile(caps: &[&str]) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/docker-default-seccomp.json"
    );
    let profile: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    pier_runtime::seccomp_profile::docker_to_oci(&profile, caps)
}

/// The docker default profile as OCI seccomp, without the names `drop`
/// says to drop.
fn docker_profile_without(drop: impl Fn(&str) -> bool) -> serde_json::Value {
    let mut oci = docker_profile(&[]);
    for rule in oci["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| !drop(n.as_str().unwrap_or_default()));
        }
    }
    oci
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys_not_the_default_errno() {
    let native = |name: &str| {
        libseccomp::ScmpSyscall::from_name(name)
            .map(|s| s.as_raw_syscall())
            .unwrap_or(-1)
    };
    let setns = native("setns");
    assert!(setns > 0);
    // busybox's nsenter calls setns(2) and prints its errno. Without
    // CAP_SYS_ADMIN docker's profile does not allow setns.
    let probe = "nsenter --net=/proc/self/ns/net true 2>&1; echo sh-runs";

    // A profile that names no syscall from setns on: setns is newer than
    // anything it knows, so it must be ENOSYS (as if the kernel lacked it).
    let mut b = Bundle::new(&[]);
    b.config["linux"]["seccomp"] = docker_profile_without(|n| native(n) >= setns);
    b.sh(probe);
    let out = b.run_ok("enosys-newer");
    assert_eq!(
        out,
        "nsenter: setns(): can't reassociate to namespace 'net': Function not implemented\nsh-runs\n"
    );

    // Left out of a profile that names newer syscalls, setns is denied on
    // purpose: the default errno (EPERM) stays.
    let mut b = Bundle::new(&[]);
    b.config["linux"]["seccomp"] = docker_profile_without(|_| false);
    b.sh(probe);
    let out = b.run_ok("enosys-older");
    assert_eq!(
        out,
        "nsenter: setns(): can't reassociate to namespace 'net': Operation not permitted\nsh-runs\n"
    );
}
