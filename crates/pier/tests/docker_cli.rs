//! Docker's own CLI (Debian's docker.io) driving pierd: DOCKER_HOST points
//! at pierd's socket and every `docker` command goes through pier's Docker
//! Engine API, API version negotiation included. Each assertion checks what
//! the command printed or did, as it would against dockerd.

use pier_testutil::PierEnv;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A pier environment with busybox imported (which starts its pierd) and
/// the `docker` CLI pointed at it; `None` (skipped) without docker.
struct DockerCli {
    env: PierEnv,
}

fn setup() -> Option<DockerCli> {
    if !pier_testutil::dockerd::ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return None;
    }
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    Some(DockerCli { env })
}

impl DockerCli {
    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.env.exec_root.join("pier.sock").display()),
        )
        .env("DOCKER_CONFIG", self.env.dir.path().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.docker().args(args).output().expect("running docker")
    }

    /// `docker ARGS`, which must exit 0; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?} against pierd failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `docker run -d ARGS`: the new container's full id.
    fn run_detached(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.ok(&all).trim().to_string();
        assert_eq!(
            id.len(),
            64,
            "docker run -d printed no container id: {id:?}"
        );
        id
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }
}

impl Drop for DockerCli {
    fn drop(&mut self) {
        // PierEnv's drop kills pierd, shims and containers; this removes
        // them through the API first so that their cgroups go too.
        let Ok(out) = self.env.pier().args(["ps", "-a", "-q"]).output() else {
            return;
        };
        let ids: Vec<String> = stdout(&out)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = self.env.pier().arg("rm").arg("-f").args(&ids).output();
        }
    }
}

/// Waits for a `docker` child that was fed stdin; kills it and fails if
/// it has not exited after 30 s (closing stdin must end it).
fn output_within_30s(child: std::process::Child, what: &str) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("waiting for docker"),
        Err(_) => {
            // SAFETY: the docker CLI process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} did not exit within 30 s");
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` until it returns `Some` or 20 s pass (a deadline, not a timing
/// assertion: the failure message says what never happened).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn docker_version_and_info_describe_pierd() {
    let Some(d) = setup() else { return };
    let out = d.ok(&["version"]);
    let server = out
        .split_once("Server:")
        .unwrap_or_else(|| panic!("docker version shows no server part:\n{out}"))
        .1;
    assert!(
        server.contains("Version:          0.1.0"),
        "server version missing:\n{out}"
    );
    // The CLI negotiated an API version with pierd's /_ping and shows the
    // server's range from /version's Engine component.
    assert!(
        server.contains("API version:      1.56 (minimum version 1.24)"),
        "server API versions missing:\n{out}"
    );
    assert!(
        server.contains("OS/Arch:          linux/"),
        "server OS/Arch missing:\n{out}"
    );
    let api = d.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(api.trim(), "1.56 linux");

    let info = d.ok(&[
        "info",
        "--format",
        "{{.ServerVersion}}|{{.Images}}|{{.Containers}}|{{.DockerRootDir}}|{{.LoggingDriver}}|{{.OSType}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("0.1.0|1|0|{}|json-file|linux", d.env.data_root.display())
    );
    let info = d.ok(&["info"]);
    assert!(info.contains("Server Version: 0.1.0"), "{info}");
    assert!(info.contains(" Images: 1"), "{info}");
}

#[test]
fn docker_run_rm_prints_the_output_and_exits_with_the_code() {
    let Some(d) = setup() else { return };
    let out = d.run(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    let out = d.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo to-err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stderr(&out), "to-err\n");
    // stdin through docker's attach (-i).
    let mut child = d
        .docker()
        .args(["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped through\n")
        .unwrap();
    let out = output_within_30s(child, "docker run --rm -i busybox tr a-z A-Z");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "PIPED THROUGH\n");
    // A missing executable: docker's 127 and a message naming it.
    let out = d.run(&["run", "--rm", "busybox", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-program"), "{}", stderr(&out));
    // --rm removed them all.
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn docker_run_d_ps_and_inspect_show_the_running_container() {
    let Some(d) = setup() else { return };
    let id = d.run_detached(&["--name", "dcli-run", "busybox", "sleep", "1000"]);
    let ps = d.ok(&[
        "ps",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}",
    ]);
    let line = ps
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("docker ps does not list {id}:\n{ps}"));
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(
        &fields[..4],
        &[id.as_str(), "dcli-run", "busybox", "\"sleep 1000\""]
    );
    assert!(fields[4].starts_with("Up "), "status: {line}");
    // The default table: header and the short id.
    let table = d.ok(&["ps"]);
    assert!(table.starts_with("CONTAINER ID   IMAGE"), "{table}");
    assert!(table.contains(&id[..12]), "{table}");
    assert_eq!(d.ok(&["ps", "-q"]).trim(), &id[..12]);

    let state = d.inspect(
        "dcli-run",
        "{{.Id}}|{{.Name}}|{{.State.Status}}|{{.State.Running}}|{{.Config.Image}}|{{json .Config.Cmd}}",
    );
    assert_eq!(
        state,
        format!("{id}|/dcli-run|running|true|busybox|[\"sleep\",\"1000\"]")
    );
    // State.Pid is the container's init on the host: sleep.
    let pid = d.inspect("dcli-run", "{{.State.Pid}}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_else(|e| panic!("State.Pid {pid} is not a live process: {e}"));
    assert_eq!(cmdline, b"sleep\x001000\x00");
    // The whole document is JSON docker can parse (an array of one).
    let json: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", &id])).unwrap();
    assert_eq!(json[0]["Id"], id.as_str());
    // As docker: an unknown name is an error naming it, exit 1.
    let out = d.run(&["inspect", "dcli-no-such"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such") && stderr(&out).contains("dcli-no-such"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn docker_exec_runs_a_program_in_the_running_container() {
    let Some(d) = setup() else { return };
    d.run_detached(&[
        "--name",
        "dcli-exec",
        "--hostname",
        "exec-box",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = d.ok(&[
        "exec",
        "dcli-exec",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo",
    ]);
    assert_eq!(out, "exec-box\nsleep 1000 \n");
    let out = d.ok(&[
        "exec",
        "-e",
        "GREETING=hello",
        "-w",
        "/tmp",
        "dcli-exec",
        "sh",
        "-c",
        "echo $GREETING $PWD",
    ]);
    assert_eq!(out, "hello /tmp\n");
    let out = d.run(&["exec", "dcli-exec", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // stdin with -i.
    let mut child = d
        .docker()
        .args(["exec", "-i", "dcli-exec", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"into exec\n")
        .unwrap();
    let out = output_within_30s(child, "docker exec -i dcli-exec cat");
    assert_eq!(stdout(&out), "into exec\n", "{}", stderr(&out));
}

#[test]
fn docker_logs_shows_stdout_and_stderr_apart() {
    let Some(d) = setup() else { return };
    d.run_detached(&[
        "--name",
        "dcli-logs",
        "busybox",
        "sh",
        "-c",
        // "done" only once the test saw the first two lines: the order
        // of lines across stdout and stderr is not fixed (as docker).
        "echo to-out; echo to-err >&2; \
         while [ ! -e /tmp/go ]; do sleep 0.1; done; echo done; sleep 1000",
    ]);
    eventually(
        "docker logs never showed the container's first lines",
        || {
            let out = d.run(&["logs", "dcli-logs"]);
            (out.status.success()
                && stdout(&out).contains("to-out")
                && stderr(&out).contains("to-err"))
            .then_some(())
        },
    );
    let pid = d.inspect("dcli-logs", "{{.State.Pid}}");
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").unwrap();
    let out = eventually("docker logs never showed the container's last line", || {
        let out = d.run(&["logs", "dcli-logs"]);
        (out.status.success() && stdout(&out).contains("done")).then_some(out)
    });
    assert_eq!(stdout(&out), "to-out\ndone\n");
    assert_eq!(stderr(&out), "to-err\n");
    let out = d.run(&["logs", "--tail", "1", "dcli-logs"]);
    assert_eq!(stdout(&out), "done\n", "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let out = d.run(&["logs", "-t", "dcli-logs"]);
    let first = stdout(&out);
    let first = first.lines().next().unwrap_or_default().to_string();
    // RFC 3339 with nanoseconds, then the line: 2026-11-30T15:00:00.123456789Z to-out
    assert!(
        first.ends_with("Z to-out") && first.as_bytes().get(4) == Some(&b'-'),
        "{first:?}"
    );
}

#[test]
fn docker_stop_records_the_exit_and_rm_removes_the_container() {
    let Some(d) = setup() else { return };
    // A shell that exits 7 on SIGTERM: stop's signal, the recorded code.
    let id = d.run_detached(&[
        "--name",
        "dcli-stop",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do sleep 0.1; done",
    ]);
    let pid = d.inspect("dcli-stop", "{{.State.Pid}}");
    assert_eq!(d.ok(&["stop", "dcli-stop"]), "dcli-stop\n");
    assert_eq!(
        d.inspect(
            "dcli-stop",
            "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}"
        ),
        "exited false 7"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the container's init {pid} is still alive after docker stop"
    );
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("dcli-stop Exited (7)"), "{ps}");
    assert_eq!(
        d.ok(&["ps", "-q"]),
        "",
        "docker ps lists a stopped container"
    );

    assert_eq!(d.ok(&["rm", "dcli-stop"]), "dcli-stop\n");
    assert!(!d.ok(&["ps", "-a", "-q", "--no-trunc"]).contains(&id));
    assert!(!d.env.data_root.join("containers").join(&id).exists());
    let out = d.run(&["rm", "dcli-stop"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("No such container"),
        "{}",
        stderr(&out)
    );

    // rm -f on a running container kills and removes it.
    let id = d.run_detached(&["--name", "dcli-rm", "busybox", "sleep", "1000"]);
    let pid = d.inspect("dcli-rm", "{{.State.Pid}}");
    let out = d.run(&["rm", "dcli-rm"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "docker rm removed a running container"
    );
    assert!(
        // dockerd 28's words (checked against the dockerd installed here).
        stderr(&out).contains("Stop the container before attempting removal or force remove"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.ok(&["rm", "-f", "dcli-rm"]), "dcli-rm\n");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!d.env.data_root.join("containers").join(&id).exists());
}

#[test]
fn docker_images_lists_the_imported_image() {
    let Some(d) = setup() else { return };
    let id = d.env.ok(&["images", "-q", "--no-trunc"]).trim().to_string();
    let out = d.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    assert_eq!(out, format!("busybox:latest {id}\n"));
    let table = d.ok(&["images"]);
    assert!(table.starts_with("REPOSITORY   TAG"), "{table}");
    let id_short = id.trim_start_matches("sha256:");
    assert!(table.contains(&id_short[..12]), "{table}");
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{index .RepoTags 0}}",
            "busybox"
        ])
        .trim(),
        format!("{id} busybox:latest")
    );
}

#[test]
fn docker_create_start_and_wait() {
    let Some(d) = setup() else { return };
    let id = d.ok(&[
        "create", "--name", "dcli-cw", "busybox", "sh", "-c", "exit 4",
    ]);
    assert_eq!(id.trim().len(), 64, "{id:?}");
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]),
        "dcli-cw|Created\n"
    );
    assert_eq!(d.ok(&["start", "dcli-cw"]), "dcli-cw\n");
    assert_eq!(d.ok(&["wait", "dcli-cw"]), "4\n");
    assert_eq!(
        d.inspect("dcli-cw", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 4"
    );
}

#[test]
fn docker_pause_rename_restart_and_kill() {
    let Some(d) = setup() else { return };
    d.run_detached(&["--name", "dcli-k", "busybox", "sleep", "1000"]);
    assert_eq!(d.ok(&["pause", "dcli-k"]), "dcli-k\n");
    assert_eq!(
        d.inspect("dcli-k", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    // as docker: "Up ... (Paused)"
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.trim_end().ends_with("(Paused)"), "{ps:?}");
    assert_eq!(d.ok(&["unpause", "dcli-k"]), "dcli-k\n");
    assert_eq!(
        d.inspect("dcli-k", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );

    assert_eq!(d.ok(&["rename", "dcli-k", "dcli-k2"]), "");
    assert_eq!(d.inspect("dcli-k2", "{{.Name}}"), "/dcli-k2");
    assert_ne!(d.run(&["inspect", "dcli-k"]).status.code(), Some(0));

    let pid = d.inspect("dcli-k2", "{{.State.Pid}}");
    assert_eq!(d.ok(&["restart", "-t", "1", "dcli-k2"]), "dcli-k2\n");
    // as docker: a restart by hand does not count in RestartCount.
    let after = d.inspect(
        "dcli-k2",
        "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}",
    );
    let fields: Vec<&str> = after.split(' ').collect();
    assert_eq!(&fields[..2], &["running", "0"], "{after}");
    assert_ne!(fields[2], pid, "docker restart left the same init running");

    assert_eq!(d.ok(&["kill", "dcli-k2"]), "dcli-k2\n");
    assert_eq!(d.ok(&["wait", "dcli-k2"]), "137\n");
}

#[test]
fn docker_top_stats_and_cp() {
    let Some(d) = setup() else { return };
    d.run_detached(&["--name", "dcli-ts", "busybox", "sleep", "1000"]);
    let pid = d.inspect("dcli-ts", "{{.State.Pid}}");
    let top = d.ok(&["top", "dcli-ts"]);
    let mut lines = top.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{top}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("root ") && row.ends_with("sleep 1000"),
        "{top}"
    );
    assert_eq!(row.split_whitespace().nth(1), Some(pid.as_str()), "{top}");

    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.PIDs}}",
        "dcli-ts",
    ]);
    assert_eq!(stats, "dcli-ts|1\n");

    let host = d.env.dir.path().join("cp");
    std::fs::create_dir_all(host.join("out")).unwrap();
    std::fs::write(host.join("f.txt"), "copied in\n").unwrap();
    d.ok(&["cp", host.join("f.txt").to_str().unwrap(), "dcli-ts:/tmp/"]);
    assert_eq!(
        d.ok(&["exec", "dcli-ts", "cat", "/tmp/f.txt"]),
        "copied in\n"
    );
    d.ok(&[
        "exec",
        "dcli-ts",
        "sh",
        "-c",
        "echo copied out > /tmp/g.txt",
    ]);
    d.ok(&[
        "cp",
        "dcli-ts:/tmp/g.txt",
        host.join("out").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out/g.txt")).unwrap(),
        "copied out\n"
    );
}

#[test]
fn docker_logs_follow_and_attach_stream_new_output() {
    let Some(d) = setup() else { return };
    d.run_detached(&[
        "--name",
        "dcli-f",
        "busybox",
        "sh",
        "-c",
        "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done",
    ]);
    for args in [
        &["logs", "-f", "--tail", "0", "dcli-f"][..],
        &["attach", "--no-stdin", "dcli-f"][..],
    ] {
        let mut child = d
            .docker()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let got: Vec<u64> = (0..3)
            .filter_map(|_| rx.recv_timeout(Duration::from_secs(20)).ok())
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got.len(), 3, "docker {args:?} streamed {got:?}");
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 1),
            "docker {args:?}: {got:?}"
        );
    }
}

#[test]
fn docker_container_prune_removes_stopped_containers() {
    let Some(d) = setup() else { return };
    let out = d.run(&["run", "--name", "dcli-p1", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stopped = d.inspect("dcli-p1", "{{.Id}}");
    let running = d.run_detached(&["--name", "dcli-p2", "busybox", "sleep", "1000"]);
    let out = d.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains(&format!("{stopped}\n")), "{out}");
    assert!(!out.contains(&running), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(
        d.ok(&["ps", "-a", "-q", "--no-trunc"]),
        format!("{running}\n")
    );
}

#[test]
fn docker_run_t_gives_a_terminal() {
    let Some(d) = setup() else { return };
    // as docker: -t without -i needs no terminal on the client's stdin;
    // the pty turns "\n" into "\r\n".
    let out = d.run(&["run", "--rm", "-t", "busybox", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\r\n");
    let out = d.run(&[
        "run",
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "test -t 1 && exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[test]
fn docker_events_show_a_containers_life() {
    let Some(d) = setup() else { return };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    d.ok(&["run", "--rm", "--name", "dcli-ev", "busybox", "true"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(now + 1).to_string(),
        "--filter",
        "container=dcli-ev",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    // as docker, for a foreground `docker run --rm`.
    assert_eq!(
        out,
        "container create dcli-ev\ncontainer attach dcli-ev\ncontainer start dcli-ev\n\
         container die dcli-ev\ncontainer destroy dcli-ev\n"
    );
}

/// Another Docker API client: the Python SDK (docker-py), when installed.
const DOCKER_PY: &str = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
assert c.ping() is True
assert c.version()["ApiVersion"] == "1.56", c.version()
assert [i.tags for i in c.images.list()] == [["busybox:latest"]], c.images.list()
assert c.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
k = c.containers.run("busybox", ["sh", "-c", "echo started; sleep 1000"], detach=True, name="dcli-py")
k.reload()
assert k.status == "running", k.status
r = k.exec_run(["sh", "-c", "echo from exec; exit 3"])
assert (r.exit_code, r.output) == (3, b"from exec\n"), r
assert b"started\n" in k.logs(), k.logs()
assert [x.name for x in c.containers.list()] == ["dcli-py"]
k.stop(timeout=1)
# as docker: sh as pid 1 ignores SIGTERM, so stop kills it.
assert k.wait()["StatusCode"] == 137
k.reload()
assert (k.status, k.attrs["State"]["ExitCode"]) == ("exited", 137)
k.remove()
assert c.containers.list(all=True) == []
try:
    c.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    raise AssertionError("no ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3
try:
    c.containers.get("dcli-nosuch")
    raise AssertionError("no NotFound")
except docker.errors.NotFound as e:
    assert "No such container: dcli-nosuch" in e.explanation, e.explanation
print("ok")
"#;

#[test]
fn docker_py_drives_pierd() {
    // Every interpreter here that has the SDK: Debian's python3-docker
    // (5.x, which CI installs) and a newer one from PyPI when present.
    let mut sdks: Vec<(&str, String)> = Vec::new();
    for python in ["python3", "/usr/bin/python3"] {
        let Ok(out) = Command::new(python)
            .args([
                "-c",
                "import docker, sys; print(docker.__version__, sys.executable)",
            ])
            .output()
        else {
            continue;
        };
        let id = stdout(&out);
        if out.status.success() && !sdks.iter().any(|(_, seen)| *seen == id) {
            sdks.push((python, id));
        }
    }
    if sdks.is_empty() {
        pier_testutil::skip("the Docker SDK for Python is not installed (python3-docker)");
        return;
    }
    let Some(d) = setup() else { return };
    let url = format!("unix://{}", d.env.exec_root.join("pier.sock").display());
    for (python, sdk) in sdks {
        let out = Command::new(python)
            .args(["-c", DOCKER_PY, &url])
            .output()
            .unwrap();
        assert!(
            out.status.success() && stdout(&out) == "ok\n",
            "docker-py {} against pierd:\n{}{}",
            sdk.trim(),
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn older_docker_api_versions_work() {
    let Some(d) = setup() else { return };
    // The CLI below API 1.30 waits for a --rm container's end through
    // /events (its status/id/from fields, which dockerd keeps sending to
    // clients older than 1.52); from 1.30 on through /wait.
    for v in ["1.24", "1.29", "1.30", "1.41", "1.44"] {
        let child = d
            .docker()
            .env("DOCKER_API_VERSION", v)
            .args(["run", "--rm", "busybox", "echo", "hi"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = output_within_30s(child, &format!("DOCKER_API_VERSION={v} docker run --rm"));
        assert_eq!(out.status.code(), Some(0), "API {v}: {}", stderr(&out));
        assert_eq!(stdout(&out), "hi\n", "API {v}");
        let out = d
            .docker()
            .env("DOCKER_API_VERSION", v)
            .args(["ps", "-a", "-q"])
            .output()
            .unwrap();
        assert_eq!(stdout(&out), "", "API {v}: --rm left a container");
    }
    // as docker: below the minimum version, a clear refusal.
    let out = d
        .docker()
        .env("DOCKER_API_VERSION", "1.12")
        .args(["ps"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out)
            .contains("client version 1.12 is too old. Minimum supported API version is 1.24"),
        "{}",
        stderr(&out)
    );
}
