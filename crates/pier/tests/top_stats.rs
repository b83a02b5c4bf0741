//! `pier top`, `pier stats` and `pier diff` end to end.

use pier_testutil::PierEnv;
use std::path::Path;
use std::time::{Duration, Instant};

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` until it returns Some (a bounded wait for the container to
/// reach a state; no timing is asserted).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn top_lists_the_containers_processes_and_only_them() {
    let env = env();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "sleep 1001 & sleep 1002 & wait",
    ]);
    env.ok(&["run", "-d", "--name", "c2", "busybox", "sleep", "1003"]);
    let out = eventually("both sleeps of c1", || {
        let out = env.ok(&["top", "c1"]);
        (out.contains("sleep 1001") && out.contains("sleep 1002")).then_some(out)
    });
    let mut lines = out.lines();
    let titles: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // ps -ef's columns, as docker's default.
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "sh and two sleeps: {out}");
    assert!(
        !out.contains("sleep 1003"),
        "another container's process: {out}"
    );
    assert!(
        !out.contains("pierd") && !out.contains("pier-shim"),
        "{out}"
    );
    // Host pids: each row's PID is a live process on the host.
    for r in &rows {
        let pid = r.split_whitespace().nth(1).unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "{r}");
    }
    // ps options pass through.
    let out = env.ok(&["top", "c1", "-o", "pid,comm"]);
    let titles: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(titles, ["PID", "COMMAND"]);
    assert_eq!(
        out.lines().filter(|l| l.ends_with("sleep")).count(),
        2,
        "{out}"
    );

    // Not running: docker's error and exit 1.
    env.ok(&["create", "--name", "c3", "busybox", "true"]);
    let out = env.run(&["top", "c3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    let out = env.run(&["top", "nope"]);
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "-f", "c1", "c2", "c3"]);
}

#[test]
fn stats_no_stream_shows_pids_and_memory() {
    let env = env();
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "sleep 1001 & sleep 1002 & wait",
        ])
        .trim()
        .to_string();
    eventually("c1's sleeps", || {
        let out = env.ok(&["top", "c1"]);
        out.contains("sleep 1002").then_some(())
    });
    let out = env.ok(&["stats", "--no-stream", "c1"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{col} missing: {header}");
    }
    let row = lines.next().expect("a row for c1");
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains(" c1 "), "{row}");
    assert!(row.trim_end().ends_with(" 3"), "sh and two sleeps: {row}");

    let out = env.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.PIDs}}|{{.MemUsage}}|{{.CPUPerc}}",
        "c1",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f[..2], ["c1", "3"]);
    let (usage, limit) = f[2].split_once(" / ").unwrap();
    assert_ne!(usage, "0B", "memory usage is reported: {out}");
    assert_ne!(limit, "0B", "{out}");
    assert!(f[3].ends_with('%'), "{out}");

    // Without names: the running containers; -a adds stopped ones.
    env.ok(&["create", "--name", "idle", "busybox", "true"]);
    let out = env.ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(out.trim(), "c1");
    let out = env.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.PIDs}}",
    ]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["c1 3", "idle 0"]);
    env.ok(&["rm", "-f", "c1", "idle"]);
}

#[test]
fn diff_shows_added_changed_and_deleted_paths() {
    let env = env();
    // Stopped: the changes a finished container left (as docker: kinds A,
    // C, D and the changed parent directories).
    env.ok(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "touch /new; echo x >> /etc/passwd; rm /bin/ls",
    ]);
    let out = env.ok(&["diff", "done"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in ["A /new", "C /etc", "C /etc/passwd", "C /bin", "D /bin/ls"] {
        assert!(lines.contains(&want), "{want} missing:\n{out}");
    }
    assert!(!out.contains("/proc"), "{out}");
    // Running: changes show while it runs.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "mkdir /made; sleep 1000",
    ]);
    let out = eventually("/made in the diff", || {
        let out = env.ok(&["diff", "live"]);
        out.contains("A /made").then_some(out)
    });
    assert!(!out.contains("D "), "{out}");
    let out = env.run(&["diff", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    env.ok(&["rm", "-f", "done", "live"]);
}
