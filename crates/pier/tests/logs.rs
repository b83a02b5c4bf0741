//! `pier logs` through the CLI: a finished container's output with stdout
//! and stderr on their own descriptors, `--tail`, `-t`, `--since`/`--until`,
//! `-f` that ends when the container exits, and raw output of a tty
//! container. Each test has its own pierd and cleans up through PierEnv.

use pier_testutil::PierEnv;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

/// Waits (at most a minute, a hang guard) until container `name` exited.
fn wait_exited(env: &PierEnv, name: &str) {
    let t = Instant::now();
    let filter = format!("name=^{name}$");
    while env
        .ok(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "status=exited",
        ])
        .trim()
        .is_empty()
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "container {name} did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn logs_of_a_finished_container_keep_stdout_and_stderr_apart() {
    let env = env();
    env.ok(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2",
    ]);
    let out = env.run(&["logs", "done"]);
    assert!(out.status.success(), "logs failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out1\nout2\n");
    assert_eq!(text(&out.stderr), "err1\n");
    // `container logs` is the same command.
    assert_eq!(env.ok(&["container", "logs", "done"]), "out1\nout2\n");
}

#[test]
fn logs_tail_keeps_the_last_lines_and_t_prefixes_timestamps() {
    let env = env();
    env.ok(&[
        "run",
        "--name",
        "counted",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done",
    ]);
    assert_eq!(
        env.ok(&["logs", "--tail", "2", "counted"]),
        "line4\nline5\n"
    );
    assert_eq!(env.ok(&["logs", "-n", "0", "counted"]), "");
    assert_eq!(
        env.ok(&["logs", "--tail", "all", "counted"])
            .lines()
            .count(),
        5
    );
    assert_eq!(
        env.ok(&["logs", "--tail", "99", "counted"]).lines().count(),
        5
    );
    let stamped = env.ok(&["logs", "-t", "--tail", "1", "counted"]);
    // As docker: RFC 3339 with nine digits of fraction, a space, the line.
    let (ts, line) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "line5");
    assert_eq!(ts.len(), "2026-11-30T15:07:26.604496487Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
}

#[test]
fn logs_since_and_until_select_by_time() {
    let env = env();
    // The sleep only makes the two lines' timestamps differ.
    env.ok(&[
        "run",
        "--name",
        "timed",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 1; echo second",
    ]);
    let stamped = env.ok(&["logs", "-t", "timed"]);
    let stamps: Vec<&str> = stamped
        .lines()
        .map(|l| l.split_once(' ').unwrap().0)
        .collect();
    assert_eq!(stamps.len(), 2, "{stamped}");
    assert_eq!(env.ok(&["logs", "--since", stamps[1], "timed"]), "second\n");
    assert_eq!(env.ok(&["logs", "--until", stamps[0], "timed"]), "first\n");
    assert_eq!(
        env.ok(&["logs", "--since", "10m", "timed"]),
        "first\nsecond\n"
    );
    assert_eq!(env.ok(&["logs", "--since", "2999-01-01", "timed"]), "");
    assert_eq!(env.ok(&["logs", "--until", "1", "timed"]), "");
    // As docker: a value that is no time is refused before asking pierd.
    let bad = env.run(&["logs", "--since", "bogus", "timed"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("invalid value for \"since\""),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn logs_follow_streams_until_the_container_exits() {
    let env = env();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo start; echo warn >&2; sleep 2; echo end",
    ]);
    let mut child = env
        .pier()
        .args(["logs", "-f", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against a follower that never ends, not a timing check.
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("logs -f did not end after the container exited");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "logs -f failed: {err}");
    assert_eq!(out, "start\nend\n");
    assert_eq!(err, "warn\n");
}

#[test]
fn logs_of_a_tty_container_are_its_raw_output() {
    let env = env();
    env.ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "tty",
        "busybox",
        "sh",
        "-c",
        "echo on-tty; echo also >&2",
    ]);
    wait_exited(&env, "tty");
    let out = env.run(&["logs", "tty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A terminal has one stream, and it writes CR LF.
    assert_eq!(text(&out.stdout), "on-tty\r\nalso\r\n");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn logs_of_an_unknown_container_fail_as_docker() {
    let env = env();
    let out = env.run(&["logs", "no-such-box"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Error response from daemon: No such container: no-such-box"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn logs_follow_works_after_pierd_was_killed_and_ends_at_the_later_exit() {
    let env = env();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "echo before; while [ ! -e /go ]; do sleep 0.1; done; echo after",
    ]);
    let pid = env.daemon_pid().expect("pierd runs");
    // SAFETY: signalling the pierd this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let t = Instant::now();
    while env.daemon_pid().is_some() {
        assert!(t.elapsed() < Duration::from_secs(30), "pierd did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next command starts a new pierd, which re-adopts the container.
    let mut child = env
        .pier()
        .args(["logs", "-f", "survivor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    // Let the container finish only once the follower has its first line.
    let mut seen = Vec::new();
    while !seen.ends_with(b"before\n") {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(chunk) => seen.extend(chunk),
            Err(e) => {
                let _ = child.kill();
                panic!("logs -f showed no output ({e}): {}", text(&seen));
            }
        }
    }
    let ps = env.ok(&["ps", "--filter", "name=survivor", "--format", "{{.State}}"]);
    assert_eq!(ps.trim(), "running", "the container did not survive pierd");
    env.ok(&["exec", "survivor", "touch", "/go"]);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("logs -f did not end after the re-adopted container exited");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The output ends with the follower: the channel closes.
    seen.extend(rx.iter().flatten());
    let out = text(&seen);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "logs -f failed: {err}");
    assert_eq!(out, "before\nafter\n");
    let state = env.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "survivor",
    ]);
    assert_eq!(state.trim(), "exited 0");
}

#[test]
fn logs_larger_than_a_read_come_out_whole() {
    let env = env();
    // About 3 MB of json-file log: more than pierd reads at once.
    env.ok(&[
        "run",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 30000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done",
    ]);
    let out = env.run(&["logs", "chatty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = text(&out.stdout);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 30000);
    assert_eq!(lines[0], "line-0-padding-padding-padding");
    assert_eq!(lines[29999], "line-29999-padding-padding-padding");
    assert_eq!(
        env.ok(&["logs", "--tail", "1", "chatty"]),
        "line-29999-padding-padding-padding\n"
    );
}
