//! process.terminal with --console-socket: the pty master arrives over the
//! socket, the container's stdio and controlling terminal are the slave.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;

use common::Bundle;
use serde_json::json;

/// Receives one descriptor (and its message) like a console-socket client.
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (String, OwnedFd) {
    let mut buf = [0u8; 256];
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: recvmsg into local buffers; the received fd becomes owned.
    unsafe {
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
        (
            String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
            OwnedFd::from_raw_fd(fd),
        )
    }
}

/// Reads a pty master until the slave side is gone (EIO).
fn read_all(master: OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

#[test]
fn terminal_master_is_sent_over_the_console_socket() {
    let mut b = Bundle::new(&[]);
    b.config["process"]["terminal"] = json!(true);
    b.sh(
        "tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; \
         awk '{print ($7 != 0) ? \"ctty\" : \"no-ctty\"}' /proc/self/stat; \
         grep -c ' /dev/console ' /proc/self/mountinfo; exit 3",
    );
    b.write_config();
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    b.ids.push("tty".into());
    let mut child = b
        .cmd(&["run", "--bundle"])
        .arg(b.path())
        .arg("--console-socket")
        .arg(&sock)
        .arg("tty")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (name, master) = recv_fd(&conn);
    assert_eq!(name, "/dev/ptmx");
    let out = read_all(master);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{out}");
    assert_eq!(out, "/dev/pts/0\nall-ttys\nctty\n1\n");
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["terminal"] = json!(true);
    let out = b.create("nosock", &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--console-socket"),
        "{out:?}"
    );
    assert!(!b.state_root().join("nosock").exists());
}

#[test]
fn exec_tty_sends_a_new_pty() {
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.run_detached("ttyexec");
    let sock = b.path().join("exec-console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut child = b
        .cmd(&["exec", "--tty", "--console-socket"])
        .arg(&sock)
        .args([
            "ttyexec",
            "sh",
            "-c",
            "tty; test -t 0 && echo in-tty; exit 2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (_, master) = recv_fd(&conn);
    let out = read_all(master);
    assert_eq!(child.wait().unwrap().code(), Some(2), "{out}");
    assert!(
        out.starts_with("/dev/pts/") && out.ends_with("\nin-tty\n"),
        "{out}"
    );
}

#[test]
fn run_and_exec_relay_the_pty_without_a_console_socket() {
    let mut b = Bundle::new(&[]);
    b.config["process"]["terminal"] = json!(true);
    b.sh("tty; read x; echo got-$x; exit 6");
    b.write_config();
    b.ids.push("relay".into());
    let mut child = b
        .cmd(&["run", "--bundle"])
        .arg(b.path())
        .arg("relay")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.as_mut().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert_eq!(out.status.code(), Some(6), "{stdout} {out:?}");
    // The pty echoes our input too.
    assert!(stdout.contains("/dev/pts/0\n"), "{stdout}");
    assert!(stdout.contains("got-abc\n"), "{stdout}");

    // exec --tty without a console socket, into a running container.
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["args"] = json!(["sleep", "1000"]);
    b.run_detached("relay2");
    let out = b
        .cmd(&[
            "exec",
            "-t",
            "relay2",
            "sh",
            "-c",
            "test -t 1 && echo tty-ok; exit 3",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tty-ok\r\n");
}
