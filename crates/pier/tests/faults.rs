//! Faults (issue 7): pierd SIGKILLed under 20 running containers and
//! restarted, a shim SIGKILLed, a crash in the middle of `create`,
//! malformed API requests, bad flags and unknown images. What must hold:
//! containers outlive pierd and are re-adopted (state, logs, logs -f,
//! attach, later exit codes); a dead shim's container is reported dead and
//! cleaned up; nothing is left half-made or leaked (mounts, cgroups, dirs).

use pier_testutil::PierEnv;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A pier environment with busybox imported; on drop (even after a failed
/// assertion) it removes every container through pierd first, so that
/// their cgroups go too, then PierEnv's drop kills what is left.
struct Env(PierEnv);

impl std::ops::Deref for Env {
    type Target = PierEnv;
    fn deref(&self) -> &PierEnv {
        &self.0
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Ok(out) = self.0.pier().args(["ps", "-a", "-q"]).output() else {
            return;
        };
        let ids: Vec<String> = stdout(&out)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = self.0.pier().arg("rm").arg("-f").args(&ids).output();
        }
    }
}

fn env() -> Env {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    Env(env)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` until it returns `Some`; panics with `what` after 30 s (a
/// deadline for something that must happen, not a timing assertion).
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

// ---- a raw HTTP/1.1 client on pierd's socket ------------------------------

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn socket(env: &PierEnv) -> PathBuf {
    env.exec_root.join("pier.sock")
}

/// Sends `raw` (a whole request, possibly malformed) and reads the answer
/// until pierd closes the connection; `None` if it closed without one.
fn raw_request(env: &PierEnv, raw: &[u8], shutdown_write: bool) -> Option<Response> {
    let mut s = UnixStream::connect(socket(env))
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket(env).display()));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw).unwrap();
    if shutdown_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut data = Vec::new();
    let _ = s.read_to_end(&mut data);
    parse_response(&data)
}

fn parse_response(data: &[u8]) -> Option<Response> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = data[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let start = nl + 2;
            out.extend_from_slice(rest.get(start..start + size)?);
            rest = rest.get(start + size + 2..).unwrap_or_default();
        }
        body = out;
    }
    Some(Response { status, body })
}

fn request(env: &PierEnv, method: &str, path: &str, body: Option<&str>) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: pier\r\nConnection: close\r\n");
    if let Some(b) = body {
        raw.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        raw.push_str("\r\n");
    }
    raw_request(env, raw.as_bytes(), false)
        .unwrap_or_else(|| panic!("{method} {path}: pierd closed the connection without an answer"))
}

/// GET /containers/NAME/json.
fn inspect(env: &PierEnv, name: &str) -> serde_json::Value {
    let r = request(env, "GET", &format!("/v1.41/containers/{name}/json"), None);
    assert_eq!(
        r.status,
        200,
        "inspecting {name}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn pid_of(env: &PierEnv, name: &str) -> i32 {
    let pid = inspect(env, name)["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "{name} has no State.Pid");
    pid
}

/// A live process (not a zombie).
/// Reaped, not only a zombie: a SIGKILLed multi-threaded pierd shows as a
/// zombie while its other threads still hold its descriptors (the API
/// socket, which would accept a connection and drop it).
fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Every container, stopped ones too, from the API: (name, id).
fn all_containers(env: &PierEnv) -> Vec<(String, String)> {
    let r = request(env, "GET", "/containers/json?all=1", None);
    assert_eq!(r.status, 200);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Names"][0]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
                c["Id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn container_dirs(env: &PierEnv) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.data_root.join("containers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Mount points at or under `root`.
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == root || p.starts_with(&format!("{root}/")))
        .map(str::to_string)
        .collect()
}

/// cgroup directories named after the container, in any hierarchy
/// (`/sys/fs/cgroup/*/pier/ID`, or nested deeper).
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy() == id {
                out.push(p);
            } else if depth > 0 {
                walk(&p, id, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 5, &mut out);
    out
}

/// Reads lines of a child's stdout on a thread.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Kills a CLI child (logs -f, attach) this test started.
fn kill_child(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The numbers a counting container logged, in order.
fn counted(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.trim().trim_start_matches('t').parse().ok())
        .collect()
}

const COUNTER: &str = "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done";
const TTY_COUNTER: &str = "i=0; while :; do echo t$i; i=$((i+1)); sleep 0.1; done";
const TRAP_9: &str = "trap 'exit 9' TERM; while :; do sleep 0.1; done";
const EXIT_4_ON_GO: &str = "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 4";

#[test]
fn containers_outlive_a_sigkilled_pierd_and_are_readopted() {
    let env = env();
    let mut names = Vec::new();
    let mut start = |name: String, args: &[&str]| {
        let mut all = vec!["run", "-d", "--name", name.as_str()];
        all.extend_from_slice(args);
        env.ok(&all);
        names.push(name);
    };
    for i in 0..7 {
        start(format!("f-log-{i}"), &["busybox", "sh", "-c", COUNTER]);
    }
    for i in 0..4 {
        start(
            format!("f-tty-{i}"),
            &["-t", "busybox", "sh", "-c", TTY_COUNTER],
        );
    }
    for i in 0..2 {
        start(format!("f-cat-{i}"), &["-i", "busybox", "cat"]);
    }
    for i in 0..3 {
        start(format!("f-trap-{i}"), &["busybox", "sh", "-c", TRAP_9]);
    }
    for i in 0..3 {
        start(format!("f-sleep-{i}"), &["busybox", "sleep", "1000"]);
    }
    start("f-self".into(), &["busybox", "sh", "-c", EXIT_4_ON_GO]);
    assert_eq!(names.len(), 20);
    let pids: Vec<(String, i32)> = names.iter().map(|n| (n.clone(), pid_of(&env, n))).collect();
    let ids: Vec<String> = names
        .iter()
        .map(|n| inspect(&env, n)["Id"].as_str().unwrap().to_string())
        .collect();
    // Something was logged before the crash.
    eventually("f-log-0 logged before the crash", || {
        let out = env.run(&["logs", "f-log-0"]);
        (counted(&stdout(&out)).len() >= 2).then_some(())
    });

    let pierd = env.daemon_pid().expect("pierd runs");
    // SAFETY: the pierd this test's environment started.
    unsafe { libc::kill(pierd, libc::SIGKILL) };
    eventually("pierd died", || gone(pierd).then_some(()));
    for (name, pid) in &pids {
        assert!(alive(*pid), "{name}'s init {pid} died with pierd");
    }

    // The next command starts pierd again; it re-adopts every container.
    let ps = env.ok(&["ps"]);
    let new_pierd = env.daemon_pid().expect("pier ps started pierd");
    assert_ne!(new_pierd, pierd);
    for (name, pid) in &pids {
        let line = ps
            .lines()
            .find(|l| l.trim_end().ends_with(name.as_str()))
            .unwrap_or_else(|| panic!("pier ps after the restart does not list {name}:\n{ps}"));
        assert!(line.contains(" Up "), "{name} not listed as up: {line}");
        let c = inspect(&env, name);
        assert_eq!(c["State"]["Status"], "running", "{name}: {}", c["State"]);
        assert_eq!(c["State"]["Running"], true, "{name}");
        assert_eq!(c["State"]["Pid"].as_i64(), Some(*pid as i64), "{name}");
        assert!(alive(*pid), "{name}'s init {pid} died at the restart");
    }

    // logs: lines written after the restart arrive.
    let before = counted(&env.ok(&["logs", "f-log-0"]));
    let last = *before.last().expect("f-log-0 logged nothing");
    eventually("f-log-0's log grows after the restart", || {
        let now = counted(&env.ok(&["logs", "f-log-0"]));
        (now.last().copied().unwrap_or(0) > last + 2).then_some(())
    });
    let tty = env.ok(&["logs", "f-tty-0"]);
    assert!(counted(&tty).len() >= 2, "f-tty-0 logged nothing: {tty:?}");

    // logs -f streams new lines.
    let mut follow = env
        .pier()
        .args(["logs", "-f", "--tail", "0", "f-log-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut follow);
    let got: Vec<u64> = (0..3)
        .filter_map(|_| lines.recv_timeout(Duration::from_secs(20)).ok())
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    kill_child(follow);
    assert_eq!(got.len(), 3, "logs -f streamed {got:?} from f-log-1");
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");

    // attach: output of a counting container, and stdin to cat.
    let mut attach = env
        .pier()
        .args(["attach", "--no-stdin", "f-log-2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut attach);
    let line = lines.recv_timeout(Duration::from_secs(20));
    kill_child(attach);
    let line = line.expect("attach to f-log-2 after the restart printed nothing");
    assert!(line.trim().parse::<u64>().is_ok(), "{line:?}");

    let mut attach = env
        .pier()
        .args(["attach", "--sig-proxy=false", "f-cat-0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut attach);
    let mut stdin = attach.stdin.take().unwrap();
    let mut echoed = None;
    // The attach may connect after the first write: repeat until echoed.
    for _ in 0..40 {
        let _ = stdin.write_all(b"after the restart\n");
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(500)) {
            echoed = Some(l);
            break;
        }
    }
    drop(stdin);
    kill_child(attach);
    assert_eq!(echoed.as_deref(), Some("after the restart"));

    // Exits after the restart are recorded with their codes: stop (the
    // program's own code on SIGTERM), kill (137), and an exit of its own.
    assert_eq!(env.ok(&["stop", "f-trap-0"]).trim(), "f-trap-0");
    let s = &inspect(&env, "f-trap-0")["State"];
    assert_eq!(
        (s["Status"].as_str(), s["ExitCode"].as_i64()),
        (Some("exited"), Some(9)),
        "{s}"
    );
    assert_eq!(env.ok(&["kill", "f-sleep-0"]).trim(), "f-sleep-0");
    eventually("f-sleep-0 recorded as exited 137 after pier kill", || {
        let s = inspect(&env, "f-sleep-0")["State"].clone();
        (s["Status"] == "exited").then_some(())
    });
    assert_eq!(inspect(&env, "f-sleep-0")["State"]["ExitCode"], 137);
    let self_pid = pids.iter().find(|(n, _)| n == "f-self").unwrap().1;
    std::fs::write(format!("/proc/{self_pid}/root/tmp/go"), "").unwrap();
    eventually("f-self recorded as exited after it exited", || {
        let s = inspect(&env, "f-self")["State"].clone();
        (s["Status"] == "exited").then_some(())
    });
    assert_eq!(inspect(&env, "f-self")["State"]["ExitCode"], 4);
    let ps = env.ok(&["ps", "-a"]);
    for (name, code) in [("f-trap-0", 9), ("f-sleep-0", 137), ("f-self", 4)] {
        let line = ps.lines().find(|l| l.trim_end().ends_with(name)).unwrap();
        assert!(line.contains(&format!("Exited ({code})")), "{line}");
    }

    // Removing everything leaves nothing behind.
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    env.ok(&rm);
    for (name, pid) in &pids {
        assert!(!alive(*pid), "{name}'s init {pid} outlived rm -f");
    }
    assert_eq!(container_dirs(&env), Vec::<String>::new());
    assert_eq!(mounts_under(&env.data_root), Vec::<String>::new());
    for id in &ids {
        assert_eq!(
            cgroups_of(id),
            Vec::<PathBuf>::new(),
            "cgroups left of {id}"
        );
    }
}

#[test]
fn a_sigkilled_shim_leaves_a_dead_cleaned_up_container() {
    let env = env();
    let id = env
        .ok(&["run", "-d", "--name", "f-shim", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let init = pid_of(&env, "f-shim");
    // The shim runs as `pier-shim EXEC_ROOT/containers/ID`; the container's
    // init is its child.
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let shim: i32 = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{shim}/cmdline")).unwrap())
        .into_owned();
    assert!(
        cmdline.contains("pier-shim") && cmdline.contains(&id),
        "the init's parent {shim} is not its shim: {cmdline:?}"
    );
    assert!(
        !cgroups_of(&id).is_empty(),
        "the running container has no cgroup"
    );
    // SAFETY: the shim this test's pierd started.
    unsafe { libc::kill(shim, libc::SIGKILL) };

    eventually("pierd reports f-shim as not running", || {
        let s = inspect(&env, "f-shim")["State"].clone();
        (s["Running"] == false && s["Status"] == "exited").then_some(())
    });
    eventually("the container's init is gone after its shim died", || {
        (!alive(init)).then_some(())
    });
    let ps = env.ok(&["ps", "-q"]);
    assert_eq!(ps, "", "pier ps lists a container whose shim died");
    eventually("no mounts are left of the container", || {
        mounts_under(&env.data_root).is_empty().then_some(())
    });
    eventually("no cgroups are left of the container", || {
        cgroups_of(&id).is_empty().then_some(())
    });
    env.ok(&["rm", "f-shim"]);
    assert_eq!(container_dirs(&env), Vec::<String>::new());
    assert!(!env.exec_root.join("containers").join(&id).exists());
}

#[test]
fn a_crash_in_the_middle_of_create_leaves_nothing_after_the_restart() {
    let env = env();
    // A complete container, which must survive the restart.
    env.ok(&["run", "-d", "--name", "f-whole", "busybox", "sleep", "1000"]);
    // What `create` leaves when pierd dies before its record is in place:
    // the writable layer directories and a temporary record file.
    let half = "0123456789abcdef".repeat(4);
    let dir = env.data_root.join("containers").join(&half);
    for sub in ["upper/etc", "work", "rootfs"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join(".container.json.tmp"), "{\"Id\":\"0123").unwrap();
    let pierd = env.daemon_pid().expect("pierd runs");
    // SAFETY: the pierd this test's environment started.
    unsafe { libc::kill(pierd, libc::SIGKILL) };
    eventually("pierd died", || gone(pierd).then_some(()));
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("f-whole"), "{ps}");
    let names: Vec<String> = all_containers(&env).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["f-whole".to_string()]);
    let whole_id = inspect(&env, "f-whole")["Id"].as_str().unwrap().to_string();
    assert_eq!(
        container_dirs(&env),
        vec![whole_id],
        "half-made container directories left after the restart"
    );
    env.ok(&["rm", "-f", "f-whole"]);
}

#[test]
fn a_pierd_killed_between_create_and_start_keeps_a_startable_container() {
    let env = env();
    let r = request(
        &env,
        "POST",
        "/v1.41/containers/create?name=f-created",
        Some(r#"{"Image":"busybox","Cmd":["sh","-c","exit 6"]}"#),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let pierd = env.daemon_pid().expect("pierd runs");
    // SAFETY: the pierd this test's environment started.
    unsafe { libc::kill(pierd, libc::SIGKILL) };
    eventually("pierd died", || gone(pierd).then_some(()));
    // As docker: the created container is kept, in state "created".
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("f-created") && ps.contains("Created"), "{ps}");
    let r = request(&env, "POST", &format!("/containers/{id}/start"), None);
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    eventually("f-created exited 6", || {
        let s = inspect(&env, "f-created")["State"].clone();
        (s["Status"] == "exited" && s["ExitCode"] == 6).then_some(())
    });
    env.ok(&["rm", "f-created"]);
    assert_eq!(container_dirs(&env), Vec::<String>::new());
}

#[test]
fn malformed_api_requests_get_clear_errors_and_create_nothing() {
    let env = env();
    let before = container_dirs(&env);
    let create = |body: &str| request(&env, "POST", "/v1.41/containers/create", Some(body));
    let cases: &[(&str, u16, &str)] = &[
        ("{not json", 400, ""),
        (r#"{"Image": 5}"#, 400, ""),
        (r#"{"Image":"busybox","Cmd":"not a list"}"#, 400, ""),
        (
            r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
            400,
            "",
        ),
        (r#"{"Image":"busybox","Env":[1,2]}"#, 400, ""),
        // as docker: "No such image: f-nosuch:latest"
        (
            r#"{"Image":"f-nosuch"}"#,
            404,
            "No such image: f-nosuch:latest",
        ),
        (
            r#"{"Image":"busybox","Cmd":["true"],"WorkingDir":"relative"}"#,
            400,
            "absolute path",
        ),
    ];
    // Every case is tried; the failures are reported together.
    let mut wrong = Vec::new();
    for (body, status, needle) in cases {
        let r = create(body);
        let msg = r.json()["message"].as_str().unwrap_or("").to_string();
        if r.status != *status || msg.is_empty() || !msg.contains(needle) {
            wrong.push(format!(
                "create with {body}: {} {msg:?}, expected {status} and a message with {needle:?}",
                r.status
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // As docker: a bad name is refused before anything is made. (The
    // imported image has no CMD, and dockerd checks the command before
    // the name, so the request gives one.)
    let r = request(
        &env,
        "POST",
        "/containers/create?name=bad/name",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("Invalid container name"));
    // A body cut short (the client hung up), a request that is not HTTP,
    // and an unknown route: pierd answers or closes, and keeps serving.
    let cut = "POST /containers/create HTTP/1.1\r\nHost: pier\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"Image\":\"bus";
    if let Some(r) = raw_request(&env, cut.as_bytes(), true) {
        assert!(
            r.status >= 400,
            "a truncated body was accepted: {}",
            r.status
        );
    }
    let _ = raw_request(&env, b"HELLO PIER\r\n\r\n", true);
    let r = request(&env, "POST", "/containers/f-nosuch/frobnicate", Some("{}"));
    assert_eq!(r.status, 404);
    assert!(!r.json()["message"].as_str().unwrap().is_empty());
    let r = request(&env, "POST", "/containers/f-nosuch/start", None);
    assert_eq!(r.status, 404);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("No such container: f-nosuch"));

    assert_eq!(request(&env, "GET", "/_ping", None).body, b"OK");
    assert_eq!(all_containers(&env), Vec::new());
    assert_eq!(container_dirs(&env), before);
}

#[test]
fn bad_flags_and_unknown_images_exit_125_and_create_nothing() {
    let env = env();
    let before = container_dirs(&env);
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--no-such-flag", "busybox", "true"],
            "--no-such-flag",
        ),
        (&["run", "--memory", "lots", "busybox", "true"], "lots"),
        (
            &["run", "--restart", "sometimes", "busybox", "true"],
            "sometimes",
        ),
        (&["run", "--cpus", "many", "busybox", "true"], "many"),
        (
            &["run", "--name", "bad/name", "busybox", "true"],
            "Invalid container name",
        ),
        (
            &["run", "--rm", "-w", "relative", "busybox", "true"],
            "absolute path",
        ),
        // Nothing listens on port 1: the pull fails at once.
        (
            &["run", "--rm", "127.0.0.1:1/f-nosuch", "true"],
            "127.0.0.1:1/f-nosuch",
        ),
        (&["create", "127.0.0.1:1/f-nosuch"], "127.0.0.1:1/f-nosuch"),
    ];
    // Every case is tried; the failures are reported together.
    let mut wrong = Vec::new();
    for (args, needle) in cases {
        let out = env.run(args);
        if out.status.code() != Some(125) || !stderr(&out).contains(needle) {
            wrong.push(format!(
                "pier {args:?} exited {:?}, expected 125 and an error naming {needle:?}: {}{}",
                out.status.code(),
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(all_containers(&env), Vec::new());
    assert_eq!(container_dirs(&env), before);
    assert_eq!(mounts_under(&env.data_root), Vec::<String>::new());
}

#[test]
fn exits_while_pierd_is_down_are_recorded_when_it_comes_back() {
    let env = env();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "f-down",
        "busybox",
        "sh",
        "-c",
        EXIT_4_ON_GO,
    ]);
    let rm_id = env
        .ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            "f-down-rm",
            "busybox",
            "sh",
            "-c",
            EXIT_4_ON_GO,
        ])
        .trim()
        .to_string();
    let pids = [pid_of(&env, "f-down"), pid_of(&env, "f-down-rm")];
    let pierd = env.daemon_pid().expect("pierd runs");
    // SAFETY: the pierd this test's environment started.
    unsafe { libc::kill(pierd, libc::SIGKILL) };
    eventually("pierd died", || gone(pierd).then_some(()));
    for pid in pids {
        std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").unwrap();
    }
    eventually("both containers exited while pierd was down", || {
        pids.iter().all(|p| !alive(*p)).then_some(())
    });
    // The next command starts pierd: the exit is recorded from the shim's
    // record, and the --rm container is removed, as dockerd does.
    let ps = env.ok(&["ps", "-a"]);
    let line = ps
        .lines()
        .find(|l| l.trim_end().ends_with("f-down"))
        .unwrap_or_else(|| panic!("f-down is not listed after the restart:\n{ps}"));
    assert!(line.contains("Exited (4)"), "{line}");
    let s = &inspect(&env, "f-down")["State"];
    assert_eq!(
        (s["Status"].as_str(), s["ExitCode"].as_i64()),
        (Some("exited"), Some(4)),
        "{s}"
    );
    eventually(
        "the --rm container that exited while pierd was down is removed",
        || (!all_containers(&env).iter().any(|(n, _)| n == "f-down-rm")).then_some(()),
    );
    assert!(!env.data_root.join("containers").join(&rm_id).exists());
    assert_eq!(cgroups_of(&rm_id), Vec::<PathBuf>::new());
    env.ok(&["rm", "f-down"]);
    assert_eq!(container_dirs(&env), Vec::<String>::new());
    assert_eq!(mounts_under(&env.data_root), Vec::<String>::new());
}

#[test]
fn a_shim_killed_while_pierd_is_down_is_found_dead_at_the_restart() {
    let env = env();
    let id = env
        .ok(&[
            "run", "-d", "--name", "f-orphan", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    let init = pid_of(&env, "f-orphan");
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let shim: i32 = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let pierd = env.daemon_pid().expect("pierd runs");
    // SAFETY: the pierd and the shim this test's environment started.
    unsafe {
        libc::kill(pierd, libc::SIGKILL);
        libc::kill(shim, libc::SIGKILL);
    }
    eventually("pierd and the shim died", || {
        (!alive(pierd) && !alive(shim)).then_some(())
    });
    // The next pierd finds no shim to re-adopt the container from: it is
    // reported not running and its remains are cleaned up.
    env.ok(&["ps"]);
    eventually("f-orphan is reported not running", || {
        let s = inspect(&env, "f-orphan")["State"].clone();
        (s["Running"] == false && s["Status"] == "exited").then_some(())
    });
    eventually("f-orphan's init is gone", || (!alive(init)).then_some(()));
    eventually("no mounts are left of f-orphan", || {
        mounts_under(&env.data_root).is_empty().then_some(())
    });
    eventually("no cgroups are left of f-orphan", || {
        cgroups_of(&id).is_empty().then_some(())
    });
    env.ok(&["rm", "f-orphan"]);
    assert_eq!(container_dirs(&env), Vec::<String>::new());
}

#[test]
fn bad_requests_about_a_running_container_are_refused_like_dockerd() {
    let env = env();
    let id = env
        .ok(&[
            "run", "-d", "--name", "f-target", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    let pid = pid_of(&env, "f-target");
    // (method, path, body, status, part of the message): each one as
    // dockerd 28 answers it.
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "POST",
            "/v1.41/containers/f-target/kill?signal=NOPE",
            None,
            400,
            "Invalid signal: NOPE",
        ),
        (
            "POST",
            "/v1.41/containers/f-target/exec",
            Some("{bad"),
            400,
            "",
        ),
        (
            "POST",
            "/v1.41/containers/f-target/exec",
            Some(r#"{"Cmd":[]}"#),
            400,
            "No exec command specified",
        ),
        (
            "GET",
            "/v1.41/containers/f-target/logs",
            None,
            400,
            "you must choose at least one stream",
        ),
        (
            "POST",
            "/v1.41/containers/f-target/rename?name=",
            None,
            400,
            "Neither old nor new names may be empty",
        ),
        (
            "POST",
            "/v1.41/containers/f-target/rename?name=bad/name",
            None,
            400,
            "Invalid container name",
        ),
        (
            "GET",
            "/v1.41/containers/json?filters=%7Bbad",
            None,
            400,
            "",
        ),
        (
            "GET",
            "/v1.41/containers/json?filters=%7B%22nosuch%22%3A%5B%22x%22%5D%7D",
            None,
            400,
            "Invalid filter 'nosuch'",
        ),
        (
            "POST",
            "/v1.41/containers/f-target/resize?h=abc&w=1",
            None,
            400,
            "abc",
        ),
        (
            "POST",
            "/v1.41/containers/create",
            Some(r#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"bogus"}}}"#),
            400,
            "bogus",
        ),
        (
            "POST",
            "/v1.41/containers/create",
            Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Memory":1}}"#),
            400,
            "Minimum memory limit allowed is 6MB",
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, status, needle) in cases {
        let r = request(&env, method, path, *body);
        let msg = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        if r.status != *status || msg.is_empty() || !msg.contains(needle) {
            wrong.push(format!(
                "{method} {path}: {} {msg:?}, expected {status} and a message with {needle:?}",
                r.status
            ));
        }
    }
    // dockerd answers 500 (its strconv error); any refusal will do.
    let r = request(&env, "POST", "/v1.41/containers/f-target/stop?t=abc", None);
    if r.status < 400 {
        wrong.push(format!("stop?t=abc was accepted: {}", r.status));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing happened to the container, nothing else was made.
    assert!(alive(pid), "f-target's init died");
    let s = &inspect(&env, "f-target");
    assert_eq!(
        (s["Name"].as_str(), s["State"]["Status"].as_str()),
        (Some("/f-target"), Some("running"))
    );
    assert_eq!(
        all_containers(&env),
        vec![("f-target".to_string(), id.clone())]
    );
    assert_eq!(container_dirs(&env), vec![id]);
}
