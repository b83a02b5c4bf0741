//! End to end: `exec`, terminals (`run -t`, resize), `attach` and OOM
//! kills, through the CLI and the Engine API, each test with its own pierd
//! (PierEnv cleans up even on failure).

use pier_testutil::PierEnv;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A detached `sleep` container named `name`; returns its id.
fn sleeper(env: &PierEnv, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    env.ok(&args).trim().to_string()
}

/// One HTTP request to pierd's socket; returns the status and body. With
/// `upgrade`, sends `Upgrade: tcp` and returns the stream after the
/// headers instead of reading the body.
fn api_raw(
    env: &PierEnv,
    method: &str,
    path: &str,
    body: &str,
    upgrade: bool,
) -> (u16, String, BufReader<UnixStream>) {
    let mut s = UnixStream::connect(env.exec_root.join("pier.sock")).expect("connecting to pierd");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let conn = if upgrade {
        "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    } else {
        "Connection: close\r\n"
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: pier\r\n{conn}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = None;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if upgrade && status == 101 {
        return (status, String::new(), r);
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).unwrap();
            out.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = len {
        out.resize(n, 0);
        r.read_exact(&mut out).unwrap();
    }
    (status, String::from_utf8_lossy(&out).into_owned(), r)
}

fn api(env: &PierEnv, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, body, _) = api_raw(env, method, path, body, false);
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Kills a child process on drop (a pier attach left running on failure).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exec_runs_in_a_running_container_with_its_output_and_exit_code() {
    let env = env();
    sleeper(&env, "ex1", &[]);
    let out = env.run(&["exec", "ex1", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    // It runs inside the container: its pid namespace, beside the init.
    let ps = env.ok(&[
        "exec",
        "ex1",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(ps.trim(), "sleep 1000");
}

#[test]
fn exec_takes_env_user_and_workdir() {
    let env = env();
    sleeper(&env, "ex2", &["-e", "KEEP=container", "-e", "OVER=old"]);
    let out = env.ok(&[
        "exec",
        "-e",
        "A=b",
        "-e",
        "OVER=new",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "ex2",
        "sh",
        "-c",
        "echo $A $KEEP $OVER; id -u; id -g; pwd",
    ]);
    assert_eq!(out, "b container new\n65534\n65534\n/tmp\n");
    // Without -u/-w: the container's user and directory.
    assert_eq!(env.ok(&["exec", "ex2", "sh", "-c", "id -u; pwd"]), "0\n/\n");
}

/// `pier ARGS` on a terminal (under `script`): waits for `wait_for` in
/// what it prints, then types `keys`; returns its exit status and output.
fn on_terminal(env: &PierEnv, args: &[&str], wait_for: &str, keys: &[u8]) -> (i32, String) {
    let mut pier = env.pier();
    pier.args(args);
    let (mut child, rx, line) = pier_testutil::terminal::spawn(&pier);
    let mut seen = String::new();
    while !seen.contains(wait_for) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => {
                let _ = child.kill();
                panic!("{line}: no {wait_for:?}; printed {seen:?}");
            }
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(keys).unwrap();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{line}: still running after the keys; printed {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (status.code().unwrap_or(-1), seen)
}

/// As docker: `--detach-keys` replaces ctrl-p ctrl-q; the exec goes on
/// without us. A key list docker would refuse is refused before anything
/// runs.
#[test]
fn exec_detach_keys_detach_from_the_terminal() {
    if !pier_testutil::dockerd::have("script") {
        pier_testutil::skip("script (util-linux) is needed for a terminal");
        return;
    }
    let env = env();
    sleeper(&env, "exd", &[]);
    let (code, seen) = on_terminal(
        &env,
        &[
            "exec",
            "-it",
            "--detach-keys",
            "ctrl-a,x",
            "exd",
            "sh",
            "-c",
            "echo rea''dy; sleep 300",
        ],
        "ready",
        b"\x01x",
    );
    assert_eq!(code, 0, "{seen:?}");
    let ps = env.ok(&["exec", "exd", "ps", "-o", "args"]);
    assert!(ps.contains("sleep 300"), "the exec was ended: {ps}");
    let out = env.run(&["exec", "-i", "--detach-keys", "ctrl-1", "exd", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Invalid detach keys (ctrl-1) provided"),
        "{}",
        stderr(&out)
    );
}

/// As docker: `exec --privileged` gives the process every capability the
/// container lacks; a plain exec has the container's.
#[test]
fn exec_privileged_has_every_capability() {
    let env = env();
    sleeper(&env, "exp", &[]);
    let eff = |extra: &[&str]| -> u64 {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["exp", "grep", "CapEff", "/proc/self/status"]);
        let out = env.ok(&args);
        let hex = out
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        u64::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("CapEff: {out}"))
    };
    let plain = eff(&[]);
    let privileged = eff(&["--privileged"]);
    // CAP_SYS_ADMIN (21) is not among docker's defaults.
    assert_eq!(plain & (1 << 21), 0, "{plain:x}");
    assert_ne!(privileged & (1 << 21), 0, "{privileged:x}");
    assert_eq!(plain & !privileged, 0, "{plain:x} {privileged:x}");
}

#[test]
fn exec_interactive_reads_piped_stdin_until_eof() {
    let env = env();
    sleeper(&env, "ex3", &[]);
    let mut child = env
        .pier()
        .args(["exec", "-i", "ex3", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello\nworld\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello\nworld\ndone\n");
}

#[test]
fn exec_detached_runs_in_the_background_and_is_inspectable() {
    let env = env();
    sleeper(&env, "ex4", &[]);
    let out = env.run(&["exec", "-d", "ex4", "sh", "-c", "echo x > /tmp/dx"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "exec -d prints nothing, as docker");
    let mut seen = false;
    for _ in 0..100 {
        if env.run(&["exec", "ex4", "cat", "/tmp/dx"]).stdout == b"x\n" {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "the detached exec never wrote its file");

    // Through the API: a detached exec's exit code and pid are recorded.
    let (st, created) = api(
        &env,
        "POST",
        "/containers/ex4/exec",
        r#"{"Cmd":["sh","-c","exit 7"]}"#,
    );
    assert_eq!(st, 201, "{created}");
    let id = created["Id"].as_str().unwrap().to_string();
    let (st, idle) = api(&env, "GET", &format!("/exec/{id}/json"), "");
    assert_eq!(st, 200);
    assert_eq!(idle["Running"], false);
    assert_eq!(idle["ExitCode"], serde_json::Value::Null);
    // As docker: the container lists the execs that have not ended.
    let (_, ctr) = api(&env, "GET", "/containers/ex4/json", "");
    assert_eq!(
        ctr["ExecIDs"],
        serde_json::json!([id]),
        "{}",
        ctr["ExecIDs"]
    );
    let (st, _) = api(
        &env,
        "POST",
        &format!("/exec/{id}/start"),
        r#"{"Detach":true}"#,
    );
    assert_eq!(st, 200);
    let mut done = serde_json::Value::Null;
    for _ in 0..100 {
        done = api(&env, "GET", &format!("/exec/{id}/json"), "").1;
        if done["Running"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(done["ExitCode"], 7, "{done}");
    let (_, ctr) = api(&env, "GET", "/containers/ex4/json", "");
    assert_eq!(
        ctr["ExecIDs"],
        serde_json::Value::Null,
        "ended execs are not listed"
    );
    assert!(done["Pid"].as_i64().unwrap() > 0, "{done}");
    assert_eq!(done["ProcessConfig"]["entrypoint"], "sh");
    // An exec runs once.
    let (st, _) = api(
        &env,
        "POST",
        &format!("/exec/{id}/start"),
        r#"{"Detach":true}"#,
    );
    assert_eq!(st, 409);
    let (st, body) = api(&env, "GET", "/exec/nope/json", "");
    assert_eq!(st, 404);
    assert_eq!(body["message"], "No such exec instance: nope");
}

#[test]
fn exec_into_a_stopped_container_fails_as_docker() {
    let env = env();
    let out = env.run(&["run", "--name", "ex5", "busybox", "true"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let id = env.ok(&["inspect", "--format", "{{.Id}}", "ex5"]);
    let out = env.run(&["exec", "ex5", "ls"]);
    // As docker: "Error response from daemon: Container ID is not running", exit 1.
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "Error response from daemon: Container {} is not running",
            id.trim()
        )),
        "stderr: {}",
        stderr(&out)
    );
    let out = env.run(&["exec", "no-such-ctr", "ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such container: no-such-ctr"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn exec_of_a_missing_binary_fails_with_126_as_docker() {
    let env = env();
    sleeper(&env, "ex6", &[]);
    let out = env.run(&["exec", "ex6", "nope"]);
    // As docker 20.10: the error comes on the stream (stdout) and the exec's
    // exit code is 126, a missing binary included.
    assert_eq!(out.status.code(), Some(126), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "OCI runtime exec failed: exec failed: unable to start container process: \
         exec: \"nope\": executable file not found in $PATH: unknown\r\n"
    );
    // Detached: the daemon refuses, the CLI exits 1.
    let out = env.run(&["exec", "-d", "ex6", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("executable file not found"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn run_t_gives_the_container_a_terminal_even_without_one_here() {
    let env = env();
    // stdin/stdout of this test are no terminal; docker still allocates a
    // pty in the container, and its output ends lines with \r\n.
    let out = env.run(&["run", "--rm", "-t", "busybox", "tty"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "/dev/pts/0\r\n");
    let out = env.run(&["run", "--rm", "busybox", "tty"]);
    assert_eq!(stdout(&out), "not a tty\n");
    // exec -t too.
    sleeper(&env, "tt0", &[]);
    assert_eq!(
        env.ok(&["exec", "-t", "tt0", "sh", "-c", "tty; echo $TERM"]),
        "/dev/pts/0\r\nxterm\r\n"
    );
}

#[test]
fn logs_of_a_tty_container_are_all_stdout() {
    let env = env();
    let out = env.run(&[
        "run",
        "-t",
        "--name",
        "tl",
        "busybox",
        "sh",
        "-c",
        "echo hi; echo err >&2",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi\r\nerr\r\n");
    let id = env
        .ok(&["inspect", "--format", "{{.Id}}", "tl"])
        .trim()
        .to_string();
    let log = std::fs::read_to_string(env.data_root.join(format!("containers/{id}/{id}-json.log")))
        .unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["log"].as_str().unwrap(), e["stream"].as_str().unwrap()))
        .collect();
    // As docker: {"log":"hi\r\n","stream":"stdout",...}
    assert_eq!(got, [("hi\r\n", "stdout"), ("err\r\n", "stdout")]);
}

#[test]
fn resize_sets_the_terminal_size_of_a_container_and_of_an_exec() {
    let env = env();
    sleeper(&env, "tr", &["-t"]);
    let (st, body) = api(&env, "POST", "/containers/tr/resize?h=33&w=111", "");
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        env.ok(&["exec", "tr", "stty", "-F", "/dev/pts/0", "size"]),
        "33 111\n"
    );

    // An exec's own pty: resize, then let it print its size.
    let (st, created) = api(
        &env,
        "POST",
        "/containers/tr/exec",
        r#"{"Cmd":["sh","-c","read x; stty size"],"Tty":true,"AttachStdin":true,"AttachStdout":true}"#,
    );
    assert_eq!(st, 201, "{created}");
    let id = created["Id"].as_str().unwrap().to_string();
    let (st, _, mut stream) = api_raw(&env, "POST", &format!("/exec/{id}/start"), "{}", true);
    assert_eq!(st, 101);
    let mut resized = false;
    for _ in 0..100 {
        if api(&env, "POST", &format!("/exec/{id}/resize?h=20&w=70"), "").0 == 200 {
            resized = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(resized, "the exec never took a resize");
    stream.get_mut().write_all(b"go\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    // Raw stream (no multiplexing with a terminal): the echo of our input,
    // then the size.
    assert!(out.ends_with("20 70\r\n"), "exec output: {out:?}");
    assert!(
        !out.as_bytes().contains(&0u8),
        "a tty stream is not multiplexed: {out:?}"
    );
    let (_, rec) = api(&env, "GET", &format!("/exec/{id}/json"), "");
    assert_eq!(rec["ExitCode"], 0, "{rec}");
    assert_eq!(rec["ProcessConfig"]["tty"], true);
}

#[test]
fn attach_sees_new_output_and_exits_with_the_container() {
    let env = env();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "at",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done",
    ]);
    let child = env
        .pier()
        .args(["attach", "at"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("tick "), "attach printed {first:?}");
    env.ok(&["kill", "at"]);
    for _ in lines.by_ref() {}
    let status = child.0.wait().unwrap();
    // As docker: attach exits with the container's exit code (SIGKILL: 137).
    assert_eq!(status.code(), Some(137));

    // With -i, attach carries stdin.
    env.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "at2",
        "busybox",
        "sh",
        "-c",
        "read x; echo got $x",
    ]);
    let mut child = env
        .pier()
        .args(["attach", "at2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"ping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "got ping\n");
    assert_eq!(out.status.code(), Some(0));

    let out = env.run(&["attach", "at"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("You cannot attach to a stopped container, start it first"));
}

#[test]
fn oom_kill_is_recorded() {
    let env = env();
    let out = env.run(&[
        "run",
        "--name",
        "oom",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "tail /dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
    let (_, c) = api(&env, "GET", "/containers/oom/json", "");
    assert_eq!(c["State"]["OOMKilled"], true, "{}", c["State"]);
    // And a container that was not OOM killed says so.
    env.ok(&["run", "--name", "fine", "-m", "8m", "busybox", "true"]);
    let (_, c) = api(&env, "GET", "/containers/fine/json", "");
    assert_eq!(c["State"]["OOMKilled"], false);
}

#[test]
fn the_docker_cli_can_exec_through_pierd() {
    if !pier_testutil::dockerd::have("docker") {
        pier_testutil::skip("the docker CLI is not installed");
        return;
    }
    let env = env();
    sleeper(&env, "dk", &[]);
    let docker = |args: &[&str], stdin: &[u8]| {
        let mut child = std::process::Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", env.exec_root.join("pier.sock").display()),
            )
            .env("DOCKER_CONFIG", env.dir.path().join("docker-config"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running docker");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = docker(
        &["exec", "dk", "sh", "-c", "echo hi; echo err >&2; exit 4"],
        b"",
    );
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(stderr(&out), "err\n");
    let out = docker(&["exec", "-i", "dk", "cat"], b"piped\n");
    assert_eq!(stdout(&out), "piped\n", "stderr: {}", stderr(&out));
    let out = docker(&["exec", "-t", "dk", "tty"], b"");
    assert_eq!(stdout(&out), "/dev/pts/0\r\n", "stderr: {}", stderr(&out));
    let out = docker(&["exec", "dk", "nope"], b"");
    assert_eq!(out.status.code(), Some(126));
}
