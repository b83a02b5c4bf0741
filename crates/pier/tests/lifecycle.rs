//! A container's life through the CLI: start, stop, kill, restart, pause,
//! unpause, rename, wait, rm, events; and what pierd does when a shim or
//! pierd itself is SIGKILLed, or a crash left a half-made container.
//! Messages pinned "as docker" were checked against dockerd 28.

use pier_testutil::PierEnv;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `pier inspect -f FORMAT NAME`, trimmed.
fn inspect(env: &PierEnv, name: &str, format: &str) -> String {
    env.ok(&["inspect", "-f", format, name]).trim().to_string()
}

fn id_of(env: &PierEnv, name: &str) -> String {
    inspect(env, name, "{{.Id}}")
}

/// Runs `pier ARGS`, expects it to fail with exit code `code`, returns stderr.
fn fails(env: &PierEnv, args: &[&str], code: i32) -> String {
    let out = env.run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "pier {args:?} should fail with {code}:\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// Polls until `cond` holds; panics with `what` after a minute (a hang
/// guard, not a timing assertion).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the containers a test made (and so their cgroups), even when it
/// fails; PierEnv's Drop then kills pierd and unmounts.
struct Cleanup<'a>(&'a PierEnv);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let out = self.0.run(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
    }
}

/// A container whose shell exits 3 on SIGTERM.
const TRAPS_TERM: &str = "trap 'exit 3' TERM; while true; do sleep 0.1; done";

fn is_mounted_under(dir: &Path) -> Option<String> {
    let root = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&root)))
        .map(str::to_string)
}

/// Cgroup directories named after the container (`/pier/<id>` in any
/// hierarchy).
fn cgroup_dirs(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let v2 = format!("/sys/fs/cgroup/pier/{id}");
    if Path::new(&v2).exists() {
        found.push(v2);
    }
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = e.path().join("pier").join(id);
        if p.exists() {
            found.push(p.display().to_string());
        }
    }
    found
}

fn parent_pid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X')
        )
    })
}

fn kill9(pid: i32) {
    // SAFETY: signalling a process this test started (through pier).
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGKILL) },
        0,
        "kill -9 {pid}"
    );
}

#[test]
fn stop_start_kill_wait_and_rm_as_docker() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&[
        "run", "-d", "--name", "web", "busybox", "sh", "-c", TRAPS_TERM,
    ]);
    let id = id_of(&env, "web");

    assert_eq!(env.ok(&["stop", "web"]), "web\n");
    assert_eq!(
        inspect(&env, "web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    // As docker: stopping a stopped container is no error.
    assert_eq!(env.ok(&["stop", "web"]), "web\n");

    assert_eq!(env.ok(&["start", "web"]), "web\n");
    assert_eq!(inspect(&env, "web", "{{.State.Status}}"), "running");
    // As docker: starting a running container echoes it too.
    assert_eq!(env.ok(&["start", "web"]), "web\n");
    assert_eq!(env.ok(&["kill", "web"]), "web\n");
    assert_eq!(env.ok(&["wait", "web"]), "137\n");

    let err = fails(&env, &["kill", "web"], 1);
    assert_eq!(
        err.trim(),
        format!(
            "Error response from daemon: Cannot kill container: web: Container {id} is not running"
        )
    );
    env.ok(&["start", "web"]);
    let err = fails(&env, &["kill", "-s", "FOO", "web"], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: Invalid signal: FOO"
    );
    let err = fails(&env, &["stop", "nope", "web"], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: No such container: nope"
    );
    assert_eq!(inspect(&env, "web", "{{.State.ExitCode}}"), "3");

    env.ok(&["restart", "-t", "5", "web"]);
    assert_eq!(inspect(&env, "web", "{{.State.Status}}"), "running");
    let err = fails(&env, &["rm", "web"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: You cannot remove a running container {id}. Stop the container before attempting removal or force remove")
    );
    // As docker: with -f, a missing container is reported but not a failure.
    let out = env.run(&["rm", "-f", "web", "nope"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "web\n");
    assert!(stderr(&out).contains("No such container: nope"));
    fails(&env, &["inspect", "web"], 1);
}

#[test]
fn stop_uses_the_containers_stop_signal_unless_told_otherwise() {
    let env = env();
    let _c = Cleanup(&env);
    let script = "trap 'exit 10' USR1; trap 'exit 12' USR2; while true; do sleep 0.1; done";
    env.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(env.ok(&["stop", "sig"]), "sig\n");
    assert_eq!(inspect(&env, "sig", "{{.State.ExitCode}}"), "10");
    env.ok(&["start", "sig"]);
    assert_eq!(env.ok(&["stop", "-s", "USR2", "sig"]), "sig\n");
    assert_eq!(inspect(&env, "sig", "{{.State.ExitCode}}"), "12");
    env.ok(&["start", "sig"]);
    assert_eq!(env.ok(&["restart", "-t", "3", "sig"]), "sig\n");
    // As docker: a running container's exit code is 0 again.
    assert_eq!(
        inspect(&env, "sig", "{{.State.Status}} {{.State.ExitCode}}"),
        "running 0"
    );
}

#[test]
fn start_reruns_an_exited_container_on_its_own_filesystem() {
    let env = env();
    let _c = Cleanup(&env);
    let script = "echo run >> /runs; cat /runs; exit 7";
    let out = env.run(&["run", "--name", "again", "busybox", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "run\n");
    let out = env.run(&["start", "-a", "again"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "run\nrun\n");
    assert_eq!(env.ok(&["start", "again"]), "again\n");
    assert_eq!(env.ok(&["wait", "again"]), "7\n");
    assert_eq!(env.ok(&["rm", "again"]), "again\n");

    // -i: our stdin goes to the restarted container.
    let with_input = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = env
            .pier()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let script = "read x; echo got $x";
    let out = with_input(
        &[
            "run", "-i", "--name", "reader", "busybox", "sh", "-c", script,
        ],
        "one\n",
    );
    assert_eq!(stdout(&out), "got one\n", "{}", stderr(&out));
    let out = with_input(&["start", "-ai", "reader"], "two\n");
    assert_eq!(stdout(&out), "got two\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

/// A restart starts the container again as soon as its exit is known. The
/// old shim must have released the rootfs mount and runtime state by then,
/// or it takes them from the new start (seen in CI as "sleep: executable
/// file not found" from `docker restart`).
#[test]
fn back_to_back_restarts_keep_the_rootfs_and_state() {
    let env = env();
    let _c = Cleanup(&env);
    // Four at once, so that the old shims' clean-up competes for the CPU
    // with the new starts.
    std::thread::scope(|s| {
        for n in 0..4 {
            let env = &env;
            s.spawn(move || {
                let name = format!("rr{n}");
                env.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]);
                for i in 0..25 {
                    let out = env.run(&["restart", "-t", "0", &name]);
                    assert!(
                        out.status.success(),
                        "restart {i} of {name} failed: {}",
                        stderr(&out)
                    );
                    assert_eq!(
                        env.ok(&["exec", &name, "ls", "/bin/sleep"]),
                        "/bin/sleep\n",
                        "after restart {i} of {name}"
                    );
                }
            });
        }
    });
}

#[test]
fn pause_unpause_and_stop_a_paused_container() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&["run", "-d", "--name", "frozen", "busybox", "sleep", "1000"]);
    let id = id_of(&env, "frozen");
    assert_eq!(env.ok(&["pause", "frozen"]), "frozen\n");
    assert_eq!(
        inspect(
            &env,
            "frozen",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"
        ),
        "paused true true"
    );
    let freezer = format!("/sys/fs/cgroup/freezer/pier/{id}/freezer.state");
    let events = format!("/sys/fs/cgroup/pier/{id}/cgroup.events");
    if let Ok(state) = std::fs::read_to_string(&freezer) {
        assert_eq!(state.trim(), "FROZEN");
    } else {
        let ev = std::fs::read_to_string(&events).expect("the container's cgroup");
        assert!(ev.contains("frozen 1"), "{ev}");
    }

    // As docker, word for word.
    let err = fails(&env, &["pause", "frozen"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: Container {id} is already paused")
    );
    let err = fails(&env, &["start", "frozen"], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: cannot start a paused container, try unpause instead\n\
         Error: failed to start containers: frozen"
    );
    let err = fails(&env, &["rm", "frozen"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: You cannot remove a paused container {id}. Unpause and then stop the container before attempting removal or force remove")
    );

    assert_eq!(env.ok(&["unpause", "frozen"]), "frozen\n");
    assert_eq!(
        inspect(&env, "frozen", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );
    let err = fails(&env, &["unpause", "frozen"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: Container {id} is not paused")
    );

    // A paused container stops: sleep as pid 1 ignores SIGTERM, so SIGKILL
    // after the timeout.
    env.ok(&["pause", "frozen"]);
    assert_eq!(env.ok(&["stop", "-t", "1", "frozen"]), "frozen\n");
    assert_eq!(
        inspect(
            &env,
            "frozen",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}"
        ),
        "exited 137 false"
    );
    let err = fails(&env, &["pause", "frozen"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: Container {id} is not running")
    );
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

#[test]
fn rename_as_docker() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&["run", "-d", "--name", "first", "busybox", "sleep", "1000"]);
    env.ok(&["run", "-d", "--name", "second", "busybox", "sleep", "1000"]);
    let second = id_of(&env, "second");
    assert_eq!(env.ok(&["rename", "first", "third"]), "");
    assert_eq!(inspect(&env, "third", "{{.Name}}"), "/third");
    fails(&env, &["inspect", "first"], 1);

    let err = fails(&env, &["rename", "third", "second"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: Error when allocating new name: Conflict. The container name \"/second\" is already in use by container \"{second}\". You have to remove (or rename) that container to be able to reuse that name.\nError: failed to rename container named third")
    );
    let err = fails(&env, &["rename", "third", "third"], 1);
    assert!(err.starts_with("Error response from daemon: Renaming a container with the same name as its current name\n"), "{err}");
    let err = fails(&env, &["rename", "third", "bad name"], 1);
    assert!(err.starts_with("Error response from daemon: Error when allocating new name: Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\n"), "{err}");
    // The name is free again for a new container.
    env.ok(&["run", "-d", "--name", "first", "busybox", "sleep", "1000"]);
}

#[test]
fn events_are_streamed_and_replayed_as_docker_prints_them() {
    let env = env();
    let _c = Cleanup(&env);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    // Streams live (after replaying since `since`), until we have seen the
    // destroy.
    let mut live = env
        .pier()
        .args([
            "events",
            "--since",
            &since,
            "--filter",
            "type=container",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = BufReader::new(live.stdout.take().unwrap());

    env.ok(&[
        "run", "-d", "--name", "ev", "busybox", "sh", "-c", TRAPS_TERM,
    ]);
    let id = id_of(&env, "ev");
    env.ok(&["exec", "ev", "true"]);
    env.ok(&["pause", "ev"]);
    env.ok(&["unpause", "ev"]);
    env.ok(&["stop", "ev"]);
    env.ok(&["start", "ev"]);
    env.ok(&["rename", "ev", "ev2"]);
    env.ok(&["rm", "-f", "ev2"]);

    let mut seen = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        let done = line.starts_with("destroy");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = live.kill();
    let _ = live.wait();
    assert_eq!(
        seen,
        [
            "create ev",
            "start ev",
            // As docker: "exec_create: " + entrypoint + " " + args.
            "exec_create: true  ev",
            "exec_start: true  ev",
            "exec_die ev",
            "pause ev",
            "unpause ev",
            "kill ev",
            "die ev",
            "stop ev",
            "start ev",
            "rename ev2",
            "kill ev2",
            "die ev2",
            "destroy ev2"
        ]
    );

    // Replayed between since and until, with docker's line format and the
    // container filter.
    let out = env.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        "0s",
        "--filter",
        &format!("container={id}"),
        "--filter",
        "event=die",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    // As docker: `until` alone replays everything before it.
    let all = env.ok(&["events", "--until", "0s", "--filter", "event=destroy"]);
    assert_eq!(all.lines().count(), 1, "{all}");
    let (time, rest) = lines[0].split_once(' ').unwrap();
    assert!(
        time.ends_with('Z') && time.len() == "2026-11-30T15:16:54.287095456Z".len(),
        "{time}"
    );
    assert_eq!(
        rest,
        format!("container die {id} (exitCode=3, image=busybox, name=ev)")
    );
}

#[test]
fn a_shim_killed_with_sigkill_leaves_nothing_behind() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]);
    let id = id_of(&env, "victim");
    let pid: i32 = inspect(&env, "victim", "{{.State.Pid}}").parse().unwrap();
    let shim = parent_pid(pid);
    let cmdline = std::fs::read_to_string(format!("/proc/{shim}/cmdline")).unwrap();
    assert!(
        cmdline.contains("pier-shim"),
        "the init's parent is not its shim: {cmdline}"
    );
    assert!(
        !cgroup_dirs(&id).is_empty(),
        "the container has no cgroup to check"
    );

    kill9(shim);
    // As docker when containerd's shim dies: exited, 137.
    assert_eq!(env.ok(&["wait", "victim"]), "137\n");
    assert_eq!(
        inspect(&env, "victim", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    eventually("the container's init to be gone", || !alive(pid));
    let dir = env.data_root.join("containers").join(&id);
    assert_eq!(is_mounted_under(&dir), None);
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(!env.exec_root.join("runtime").join(&id).exists());
    // It starts again, and goes away cleanly.
    assert_eq!(env.ok(&["start", "victim"]), "victim\n");
    assert_eq!(env.ok(&["rm", "-f", "victim"]), "victim\n");
    assert!(!dir.exists());
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

#[test]
fn running_containers_survive_a_sigkilled_pierd() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&[
        "run", "-d", "--name", "one", "busybox", "sh", "-c", TRAPS_TERM,
    ]);
    env.ok(&["run", "-d", "--name", "two", "busybox", "sleep", "1000"]);
    env.ok(&["run", "-d", "--name", "three", "busybox", "sleep", "1000"]);
    env.ok(&["run", "-d", "--name", "four", "busybox", "sleep", "1000"]);
    let two_pid: i32 = inspect(&env, "two", "{{.State.Pid}}").parse().unwrap();
    let four_pid: i32 = inspect(&env, "four", "{{.State.Pid}}").parse().unwrap();
    let four = id_of(&env, "four");

    env.kill_daemon();
    // The next command starts a new pierd, which re-adopts them.
    let ps = env.ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort();
    assert_eq!(
        ps,
        [
            "four running",
            "one running",
            "three running",
            "two running"
        ]
    );
    assert_eq!(env.ok(&["stop", "one"]), "one\n");
    assert_eq!(
        inspect(&env, "one", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );

    // A container that ends while pierd is down: its exit is collected.
    // One whose shim dies meanwhile: reported killed, and cleaned up.
    env.kill_daemon();
    kill9(two_pid);
    eventually("two's init to be reaped", || !alive(two_pid));
    let four_shim = parent_pid(four_pid);
    assert!(
        std::fs::read_to_string(format!("/proc/{four_shim}/cmdline"))
            .unwrap()
            .contains("pier-shim")
    );
    kill9(four_shim);
    eventually("four's shim to be gone", || !alive(four_shim));
    assert_eq!(
        inspect(&env, "four", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    eventually("four's init to be killed", || !alive(four_pid));
    let four_dir = env.data_root.join("containers").join(&four);
    assert_eq!(is_mounted_under(&four_dir), None);
    assert!(cgroup_dirs(&four).is_empty(), "{:?}", cgroup_dirs(&four));
    assert_eq!(env.ok(&["wait", "two"]), "137\n");
    assert_eq!(inspect(&env, "two", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&env, "three", "{{.State.Status}}"), "running");
    assert_eq!(env.ok(&["kill", "three"]), "three\n");
    assert_eq!(env.ok(&["wait", "three"]), "137\n");
}

#[test]
fn pierd_cleans_what_a_crash_during_create_or_start_left() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&["run", "--name", "done", "busybox", "true"]);
    let done = id_of(&env, "done");
    env.kill_daemon();

    // A create that died before writing its record, with its rootfs
    // mounted; a stopped container whose rootfs a dying start left mounted;
    // an exec dir without a shim.
    let half = env.data_root.join("containers").join("f".repeat(64));
    let done_rootfs = env.data_root.join("containers").join(&done).join("rootfs");
    for d in ["upper", "work", "rootfs"] {
        std::fs::create_dir_all(half.join(d)).unwrap();
    }
    // ...and a `cp` of the stopped container cut short, its mount left.
    let done_cp = env
        .data_root
        .join("containers")
        .join(&done)
        .join("cp-0123456789abcdef");
    std::fs::create_dir_all(&done_cp).unwrap();
    for target in [half.join("rootfs"), done_rootfs.clone(), done_cp.clone()] {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "leftover"])
            .arg(&target)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs on {}", target.display());
    }
    let stale_exec = env.exec_root.join("containers").join("e".repeat(64));
    std::fs::create_dir_all(&stale_exec).unwrap();

    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Names}}"]), "done\n");
    assert!(!half.exists(), "the half-made container is still there");
    assert_eq!(is_mounted_under(&env.data_root), None);
    assert!(!stale_exec.exists());
    // The stopped container is whole and starts.
    assert_eq!(env.ok(&["start", "-a", "done"]), "");
    assert_eq!(env.ok(&["rm", "done"]), "done\n");
    assert!(!env.data_root.join("containers").join(&done).exists());
}

/// The docker CLI itself against pierd: each lifecycle command and the
/// event stream parse as docker's.
#[test]
fn the_docker_cli_drives_the_lifecycle_and_reads_the_events() {
    if !pier_testutil::dockerd::ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let env = env();
    let _c = Cleanup(&env);
    let docker = |args: &[&str]| {
        std::process::Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", env.exec_root.join("pier.sock").display()),
            )
            .env("DOCKER_CONFIG", env.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .expect("running docker")
    };
    let ok = |args: &[&str]| {
        let out = docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} against pierd failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };
    assert!(!ok(&["version", "-f", "{{.Server.Version}}"])
        .trim()
        .is_empty());
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    ok(&[
        "run", "-d", "--name", "dk", "busybox", "sh", "-c", TRAPS_TERM,
    ]);
    assert_eq!(ok(&["pause", "dk"]), "dk\n");
    assert_eq!(
        ok(&["inspect", "-f", "{{.State.Status}}", "dk"]),
        "paused\n"
    );
    assert_eq!(ok(&["unpause", "dk"]), "dk\n");
    assert_eq!(ok(&["rename", "dk", "dk2"]), "");
    assert_eq!(ok(&["restart", "-t", "5", "dk2"]), "dk2\n");
    assert_eq!(ok(&["stop", "dk2"]), "dk2\n");
    assert_eq!(ok(&["wait", "dk2"]), "3\n");
    assert_eq!(ok(&["start", "dk2"]), "dk2\n");
    assert_eq!(ok(&["kill", "-s", "KILL", "dk2"]), "dk2\n");
    assert_eq!(ok(&["wait", "dk2"]), "137\n");
    assert_eq!(ok(&["rm", "dk2"]), "dk2\n");
    let out = docker(&["stop", "dk2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: No such container: dk2"
    );

    // The CLI sends whole seconds: an `until` in the next second or later
    // takes in every event so far (the stream then ends at that time).
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    let events: Vec<&str> = events.lines().map(str::trim_end).collect();
    assert_eq!(
        events,
        [
            "create dk",
            "start dk",
            "pause dk",
            "unpause dk",
            "rename dk2",
            "kill dk2",
            "die dk2 3",
            "stop dk2",
            "start dk2",
            "restart dk2",
            "kill dk2",
            "die dk2 3",
            "stop dk2",
            "start dk2",
            "kill dk2",
            "die dk2 137",
            "destroy dk2",
        ]
    );
}
