//! Restart policies through the CLI: on-failure counts its retries,
//! always brings a container back after it dies and after pierd restarts,
//! a user's stop holds until the next start (or, for always, pierd's
//! restart), unless-stopped stays stopped. Behaviour as docker 28.

use pier_testutil::PierEnv;
use std::path::Path;
use std::time::{Duration, Instant};

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn inspect(env: &PierEnv, name: &str, format: &str) -> String {
    env.ok(&["inspect", "-f", format, name]).trim().to_string()
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

struct Cleanup<'a>(&'a PierEnv);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let out = self.0.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
    }
}

fn kill9(pid: i32) {
    // SAFETY: signalling a process this test started (through pier).
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGKILL) },
        0,
        "kill -9 {pid}"
    );
}

const STATE: &str = "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{.State.Restarting}}";

#[test]
fn on_failure_restarts_up_to_its_count() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ]);
    eventually("flaky to give up", || {
        inspect(&env, "flaky", STATE) == "exited 2 1 false"
    });
    let logs = env.ok(&["logs", "flaky"]);
    assert_eq!(logs, "try\ntry\ntry\n", "one run and two restarts");

    // A successful exit is not restarted by on-failure, and a user's start
    // begins a new count.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    assert_eq!(env.ok(&["wait", "fine"]), "0\n");
    assert_eq!(inspect(&env, "fine", STATE), "exited 0 0 false");
    env.ok(&["start", "flaky"]);
    eventually("flaky to give up again", || {
        inspect(&env, "flaky", STATE) == "exited 2 1 false"
    });
    assert_eq!(env.ok(&["logs", "flaky"]).lines().count(), 6);
}

#[test]
fn always_survives_its_death_and_pierd_restarts_until_stopped() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "unless",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    env.ok(&["run", "-d", "--name", "never", "busybox", "sleep", "1000"]);

    // Its process dies (not a user's stop): it is restarted.
    let pid: i32 = inspect(&env, "always", "{{.State.Pid}}").parse().unwrap();
    kill9(pid);
    eventually("always to be restarted", || {
        inspect(&env, "always", "{{.State.Status}} {{.RestartCount}}") == "running 1"
    });
    assert_ne!(inspect(&env, "always", "{{.State.Pid}}"), pid.to_string());

    // pierd dies with everything running, and its shims die too: the new
    // pierd brings always and unless-stopped back, not the one without a
    // policy.
    let pids: Vec<i32> = ["always", "unless", "never"]
        .iter()
        .map(|n| inspect(&env, n, "{{.State.Pid}}").parse().unwrap())
        .collect();
    env.kill_daemon();
    for p in &pids {
        kill9(*p);
    }
    eventually("the old containers to end", || {
        pids.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| s.contains(") Z"))
        })
    });
    eventually(
        "always and unless-stopped back after pierd's restart",
        || {
            inspect(&env, "always", "{{.State.Status}}") == "running"
                && inspect(&env, "unless", "{{.State.Status}}") == "running"
        },
    );
    assert_eq!(
        inspect(&env, "never", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );

    // A user's stop holds...
    env.ok(&["stop", "-t", "0", "always", "unless"]);
    assert_eq!(
        inspect(&env, "always", "{{.State.Status}} {{.State.Restarting}}"),
        "exited false"
    );
    // ...until pierd restarts: always comes back, unless-stopped does not.
    env.kill_daemon();
    eventually("always back after pierd's restart", || {
        inspect(&env, "always", "{{.State.Status}}") == "running"
    });
    assert_eq!(inspect(&env, "unless", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&env, "never", "{{.State.Status}}"), "exited");
}

#[test]
fn a_restarting_container_stops_and_a_start_begins_a_new_count() {
    let env = env();
    let _c = Cleanup(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    eventually("loop to be restarting", || {
        inspect(&env, "loop", "{{.State.Status}} {{.State.Restarting}}") == "restarting true"
    });
    // Five restarts: the back-off alone makes the next five take 3s.
    eventually("loop to restart a few times", || {
        inspect(&env, "loop", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap()
            >= 5
    });
    // As docker: stop cancels the pending restart; the last exit stays.
    assert_eq!(env.ok(&["stop", "loop"]), "loop\n");
    let count: u32 = inspect(&env, "loop", "{{.RestartCount}}").parse().unwrap();
    assert_eq!(
        inspect(
            &env,
            "loop",
            "{{.State.Status}} {{.State.Restarting}} {{.State.ExitCode}}"
        ),
        "exited false 1"
    );
    assert_eq!(env.ok(&["start", "loop"]), "loop\n");
    // As docker: a user's start resets the count (it would be at least
    // `count` otherwise).
    let again: u32 = inspect(&env, "loop", "{{.RestartCount}}").parse().unwrap();
    assert!(again < count, "the count went on from {count} to {again}");
    assert_eq!(env.ok(&["rm", "-f", "loop"]), "loop\n");
}
