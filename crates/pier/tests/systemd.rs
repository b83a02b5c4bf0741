//! systemd socket activation, as pierd.socket does it: the listening
//! socket is bound by someone else and passed as fd 3 with LISTEN_FDS=1 and
//! LISTEN_PID naming pierd. pierd serves the API on it, does not bind (or
//! later remove) a socket of its own, and hands neither the descriptor nor
//! the variables on to shims and containers.

use pier_testutil::PierEnv;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ping(sock: &Path) -> Option<String> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: pier\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// In the forked child: makes `fd` the child's fd 3, inheritable. dup2
/// onto itself would keep close-on-exec, so fd 3 itself is only cleared.
fn pass_as_fd_3(fd: i32) -> std::io::Result<()> {
    // SAFETY: dup2 and fcntl are async-signal-safe and touch descriptors only.
    let r = unsafe {
        if fd == 3 {
            libc::fcntl(3, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, 3)
        }
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn pierd_serves_the_listener_systemd_passes_as_fd_3() {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    let sock = env.dir.path().join("activated.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let sock_inode = std::fs::metadata(&sock).unwrap().ino();
    let listener_fd = listener.as_raw_fd();
    let host = format!("unix://{}", sock.display());

    // `sh` execs pierd, so LISTEN_PID=$$ is pierd's own pid, as systemd
    // sets it; the listener becomes fd 3 in the child only.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=pierd.socket exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_pierd"))
        .arg("--data-root")
        .arg(&env.data_root)
        .arg("--exec-root")
        .arg(&env.exec_root)
        // No default bridge: tests run side by side (see PierEnv); a flag,
        // as systemd-socket-activate passes no environment.
        .args(["--bridge", "none"])
        .env_remove("PIER_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child only (pass_as_fd_3).
    unsafe {
        cmd.pre_exec(move || pass_as_fd_3(listener_fd));
    }
    let mut pierd = cmd.spawn().unwrap();
    drop(listener);

    let answer = eventually("pierd answers /_ping on the passed socket", || {
        if let Ok(Some(st)) = pierd.try_wait() {
            let mut err = String::new();
            let _ = pierd.stderr.take().unwrap().read_to_string(&mut err);
            panic!("pierd exited ({st}): {err}");
        }
        ping(&sock)
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("OK"), "{answer}");
    assert!(
        !env.exec_root.join("pier.sock").exists(),
        "pierd bound a socket of its own although systemd passed one"
    );

    // The whole engine through the activated socket.
    let tar = env.dir.path().join("busybox.tar");
    pier_testutil::write_busybox_tar(&tar).unwrap();
    let pier = |args: &[&str]| {
        let out = env
            .pier()
            .env("PIER_HOST", &host)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pier {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    pier(&["image", "import", tar.to_str().unwrap(), "busybox"]);
    assert_eq!(
        pier(&["run", "--rm", "busybox", "echo", "activated"]),
        "activated\n"
    );

    // Shims get neither the variables nor the descriptor.
    let id = pier(&["run", "-d", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let shim = eventually("the container's shim runs", || {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.contains("pier-shim") && cmdline.contains(&id)).then_some(pid)
        })
    });
    let environ = std::fs::read(format!("/proc/{shim}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains("LISTEN_PID") && !environ.contains("LISTEN_FDS"),
        "the shim inherited socket activation's variables"
    );
    let socket_link = format!("socket:[{sock_inode}]");
    for fd in std::fs::read_dir(format!("/proc/{shim}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert_ne!(
            target.to_string_lossy(),
            socket_link,
            "the shim inherited pierd's API socket"
        );
    }
    pier(&["rm", "-f", &id]);

    // On SIGTERM pierd leaves the socket file to systemd, which keeps it
    // to start pierd again on the next connection.
    // SAFETY: signalling the pierd this test started.
    unsafe { libc::kill(pierd.id() as i32, libc::SIGTERM) };
    let status = pierd.wait().unwrap();
    assert!(status.success(), "pierd exited with {status} on SIGTERM");
    assert!(
        sock.exists(),
        "pierd removed the socket systemd had passed it"
    );
}

#[test]
fn pierd_refuses_a_passed_descriptor_that_is_not_a_listening_unix_socket() {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    let file = std::fs::File::create(env.dir.path().join("not-a-socket")).unwrap();
    let fd = file.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_pierd"))
        .arg("--data-root")
        .arg(&env.data_root)
        .arg("--exec-root")
        .arg(&env.exec_root)
        // No default bridge: tests run side by side (see PierEnv); a flag,
        // as systemd-socket-activate passes no environment.
        .args(["--bridge", "none"])
        .env_remove("PIER_HOST");
    // SAFETY: as above.
    unsafe {
        cmd.pre_exec(move || pass_as_fd_3(fd));
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("socket activation: fd 3 is not a socket"),
        "{err}"
    );
}

/// The same through systemd's own implementation of the protocol
/// (systemd-socket-activate binds the socket, and execs pierd with
/// LISTEN_FDS on the first connection), when systemd is installed.
#[test]
fn systemd_socket_activate_starts_pierd_on_the_first_connection() {
    if !pier_testutil::dockerd::have("systemd-socket-activate") {
        pier_testutil::skip("systemd-socket-activate is not installed (systemd)");
        return;
    }
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    let sock = env.dir.path().join("activated.sock");
    let mut activate = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .arg(env!("CARGO_BIN_EXE_pierd"))
        .arg("--data-root")
        .arg(&env.data_root)
        .arg("--exec-root")
        .arg(&env.exec_root)
        // No default bridge: tests run side by side (see PierEnv); a flag,
        // as systemd-socket-activate passes no environment.
        .args(["--bridge", "none"])
        .env_remove("PIER_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = eventually(
        "pierd answers /_ping through systemd-socket-activate",
        || ping(&sock),
    );
    // systemd-socket-activate execs pierd in its own process.
    assert!(
        env.daemon_pid() == Some(activate.id() as i32),
        "pierd is not the activated process"
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("OK"),
        "{answer}"
    );
    assert!(!env.exec_root.join("pier.sock").exists());
    // SAFETY: signalling the process this test started.
    unsafe { libc::kill(activate.id() as i32, libc::SIGTERM) };
    let status = activate.wait().unwrap();
    assert!(status.success(), "pierd exited with {status} on SIGTERM");
}
