//! Volumes with docker as peer and oracle (issue 8): the docker CLI drives
//! pierd's volume endpoints and `run -v`, and differential tests run the
//! same commands against a private dockerd (docker CLI) and pierd (pier
//! CLI) and compare what they print, minus ids and data-root paths. Each
//! test is skipped, saying why, without docker (a failure under CI).

use pier_testutil::dockerd::{ensure, Dockerd};
use pier_testutil::PierEnv;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A pier environment with busybox imported; removes its containers first
/// on drop (PierEnv's drop does the rest).
struct Pier {
    env: PierEnv,
}

impl Pier {
    fn new() -> Pier {
        let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
        env.import_busybox("busybox");
        Pier { env }
    }

    /// The docker CLI pointed at this pierd.
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.env.exec_root.join("pier.sock").display()),
            )
            .env("DOCKER_CONFIG", self.env.dir.path().join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .expect("running docker")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} against pierd failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}

impl Drop for Pier {
    fn drop(&mut self) {
        let out = self.env.run(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.env.run(&["rm", "-f", id]);
        }
    }
}

#[test]
fn docker_cli_manages_volumes_on_pierd() {
    if !ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let t = Pier::new();
    assert_eq!(
        t.docker_ok(&["volume", "create", "--label", "via=docker", "dcli"]),
        "dcli\n"
    );
    assert_eq!(t.docker_ok(&["volume", "ls", "-q"]), "dcli\n");
    assert_eq!(
        t.docker_ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.via}}",
            "dcli"
        ]),
        "dcli local local docker\n"
    );
    // pier sees what docker created, and the other way round.
    assert_eq!(t.env.ok(&["volume", "ls", "-q"]), "dcli\n");
    t.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "dcli:/d",
        "busybox",
        "sh",
        "-c",
        "echo via-docker > /d/f",
    ]);
    assert_eq!(
        t.env
            .ok(&["run", "--rm", "-v", "dcli:/d", "busybox", "cat", "/d/f"]),
        "via-docker\n"
    );
    // A bind and an anonymous volume through docker run.
    let h = t.env.dir.path().join("dcli-bind");
    std::fs::create_dir(&h).unwrap();
    let bind = format!("{}:/h", h.display());
    t.docker_ok(&[
        "run",
        "--name",
        "dcli-c",
        "-v",
        &bind,
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo bound > /h/f",
    ]);
    assert_eq!(std::fs::read_to_string(h.join("f")).unwrap(), "bound\n");
    let mounts = t.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}",
        "dcli-c",
    ]);
    let mut m: Vec<&str> = mounts.trim().split(';').filter(|s| !s.is_empty()).collect();
    m.sort();
    assert_eq!(m, ["bind /h true", "volume /anon true"]);
    // The docker CLI's other encodings: --mount (HostConfig.Mounts) with
    // readonly and volume-nocopy, --tmpfs (HostConfig.Tmpfs), :ro binds,
    // --volumes-from with :ro.
    let out = t.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=dcli-ro,dst=/d,readonly",
        "busybox",
        "touch",
        "/d/f",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        t.docker_ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=dcli-nocopy,dst=/etc,volume-nocopy",
            "busybox",
            "sh",
            "-c",
            "test -e /etc/passwd || echo empty",
        ]),
        "empty\n"
    );
    let out = t.docker_ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/tt:size=1m",
        "busybox",
        "grep",
        " /tt ",
        "/proc/mounts",
    ]);
    assert!(
        out.starts_with("tmpfs /tt tmpfs ") && out.contains("size=1024k"),
        "{out}"
    );
    let ro_bind = format!("{}:/h:ro", h.display());
    let out = t.docker(&["run", "--rm", "-v", &ro_bind, "busybox", "touch", "/h/x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!h.join("x").exists());
    let out = t.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "dcli-c:ro",
        "busybox",
        "sh",
        "-c",
        "cat /h/f; touch /h/y",
    ]);
    assert_eq!(stdout(&out), "bound\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!h.join("y").exists());
    for v in ["dcli-ro", "dcli-nocopy"] {
        t.docker_ok(&["volume", "rm", v]);
    }
    // In use: refused with docker's message.
    let out = t.docker(&["volume", "rm", "dcli"]);
    assert!(out.status.success(), "dcli is not in use: {}", stderr(&out));
    let anon = t
        .docker_ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Name}}{{end}}",
            "dcli-c",
        ])
        .trim()
        .to_string();
    let out = t.docker(&["volume", "rm", &anon]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("remove {anon}: volume is in use - [")),
        "{}",
        stderr(&out)
    );
    t.docker_ok(&["rm", "-v", "dcli-c"]);
    assert_eq!(t.docker_ok(&["volume", "ls", "-q"]), "");
    let out = t.docker(&["volume", "inspect", "dcli"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("get dcli: no such volume"),
        "{}",
        stderr(&out)
    );
    // Prune through the API (docker 28 CLI: anonymous only without -a).
    t.docker_ok(&["volume", "create", "dcli-named"]);
    t.docker_ok(&["run", "--name", "dcli-a", "-v", "/anon", "busybox", "true"]);
    t.docker_ok(&["rm", "dcli-a"]);
    let out = t.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Deleted Volumes:"), "{out}");
    assert_eq!(t.docker_ok(&["volume", "ls", "-q"]), "dcli-named\n");
    t.docker_ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(t.docker_ok(&["volume", "ls", "-q"]), "");
}

/// pierd and a private dockerd, both with busybox, and a directory for
/// host paths both use.
struct Both {
    pier: Pier,
    dockerd: Dockerd,
    host: PathBuf,
}

fn both() -> Option<Both> {
    if !ensure(&["dockerd", "docker"], "docker.io") {
        pier_testutil::skip("dockerd/docker not installed (Debian docker.io)");
        return None;
    }
    let pier = Pier::new();
    let ddir = pier.env.dir.path().join("dockerd");
    std::fs::create_dir(&ddir).unwrap();
    let dockerd = match Dockerd::start(&ddir) {
        Ok(d) => d,
        Err(why) => {
            pier_testutil::skip(&format!("dockerd cannot run here: {why}"));
            return None;
        }
    };
    let tar = pier.env.dir.path().join("busybox.tar");
    dockerd.ok(&["import", p(&tar), "busybox"]);
    let host = pier.env.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    Some(Both {
        pier,
        dockerd,
        host,
    })
}

impl Both {
    /// Runs `args` with both; (docker's output, pier's output).
    fn both(&self, args: &[&str]) -> (Output, Output) {
        (self.dockerd.docker(args), self.pier.env.run(args))
    }

    /// Both must succeed; their stdouts.
    fn both_ok(&self, args: &[&str]) -> (String, String) {
        let (d, p) = self.both(args);
        assert!(
            d.status.success(),
            "docker {args:?} failed: {}\ndockerd log:\n{}",
            stderr(&d),
            self.dockerd.log_tail()
        );
        assert!(p.status.success(), "pier {args:?} failed: {}", stderr(&p));
        (stdout(&d), stdout(&p))
    }
}

impl Drop for Both {
    fn drop(&mut self) {
        let out = self.dockerd.docker(&["ps", "-aq"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.dockerd.docker(&["rm", "-f", id]);
        }
    }
}

/// Replaces 64-hex words with ANON and the volumes directory of either
/// engine's data root with VOLUMES.
fn normalize(s: &str, data_roots: &[&Path]) -> String {
    let mut s = s.to_string();
    for r in data_roots {
        s = s.replace(&format!("{}/volumes", r.display()), "VOLUMES");
    }
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push_str("ANON");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_hexdigit() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[test]
fn copy_up_matches_dockerd() {
    let Some(b) = both() else { return };
    // A directory with modes, owners, a subdirectory, a symlink and a
    // hidden file, committed into an image by each engine.
    let script = "mkdir -m 1750 /special && cd /special && \
                  echo one > a && chmod 600 a && chown 65534:65534 a && \
                  mkdir -m 711 sub && echo two > sub/b && ln -s sub/b link && \
                  echo h > .hidden && chown 65534:65534 /special";
    b.both_ok(&["run", "--name", "mk", "busybox", "sh", "-c", script]);
    b.both_ok(&["commit", "mk", "special:1"]);
    b.both_ok(&["run", "--rm", "-v", "cu:/special", "special:1", "true"]);
    let list = "cd /v && find . | sort | while read f; do \
                stat -c '%n %a %u %g %F %s' \"$f\"; done; cat a sub/b; readlink link";
    let (d, p) = b.both_ok(&["run", "--rm", "-v", "cu:/v", "busybox", "sh", "-c", list]);
    assert_eq!(
        p, d,
        "copy-up differs from docker's\npier:\n{p}\ndocker:\n{d}"
    );
    // volume-nocopy: an empty volume in both.
    b.both_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nc,dst=/special,volume-nocopy",
        "special:1",
        "true",
    ]);
    let (d, p) = b.both_ok(&["run", "--rm", "-v", "nc:/v", "busybox", "ls", "-A", "/v"]);
    assert_eq!(p, d);
    assert_eq!(d, "");
}

#[test]
fn mounts_and_volume_commands_match_dockerd() {
    let Some(b) = both() else { return };
    let ro_bind = format!("{}:/h:ro", b.host.display());
    let mnt_bind = format!("type=bind,src={},dst=/b", b.host.display());
    b.both_ok(&[
        "volume", "create", "--label", "a=1", "--label", "b", "labelled",
    ]);
    b.both_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "tmpvol",
    ]);
    b.both_ok(&[
        "run",
        "--name",
        "mnt-c",
        "-v",
        "named:/n",
        "-v",
        "/anon",
        "-v",
        &ro_bind,
        "-v",
        "labelled:/l:ro",
        "-v",
        "tmpvol:/tv",
        "--mount",
        &mnt_bind,
        "--mount",
        "type=volume,src=mro,dst=/mr,readonly",
        "--mount",
        "type=tmpfs,dst=/t",
        "--tmpfs",
        "/t2",
        "busybox",
        "true",
    ]);
    let roots = [
        b.pier.env.data_root.as_path(),
        &b.dockerd.dir.join("docker-data"),
    ];
    let mounts = |s: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let mut m: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| normalize(&m.to_string(), &roots))
            .collect();
        m.sort();
        m
    };
    // Every difference is collected, then reported at once.
    let mut diffs = Vec::new();
    let (d, p) = b.both_ok(&["inspect", "-f", "{{json .Mounts}}", "mnt-c"]);
    let (d, p) = (mounts(&d), mounts(&p));
    for m in &d {
        if !p.contains(m) {
            diffs.push(format!("inspect .Mounts: pier lacks docker's {m}"));
        }
    }
    for m in &p {
        if !d.contains(m) {
            diffs.push(format!("inspect .Mounts: pier has {m}, docker has not"));
        }
    }
    for args in [
        vec!["volume", "ls"],
        vec!["volume", "ls", "-q", "--filter", "dangling=true"],
        vec!["volume", "ls", "-q", "--filter", "label=a=1"],
        vec![
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ],
        vec![
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{json .Labels}} {{json .Options}}",
            "labelled",
            "tmpvol",
            "named",
        ],
    ] {
        let (d, p) = b.both_ok(&args);
        let sorted = |s: &str| {
            let mut l: Vec<String> = s.lines().map(|l| normalize(l, &roots)).collect();
            l.sort();
            l
        };
        let (d, p) = (sorted(&d), sorted(&p));
        if d != p {
            diffs.push(format!("{args:?}:\n  docker: {d:?}\n  pier:   {p:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "pier differs from docker:\n{}",
        diffs.join("\n")
    );
}

/// Exit code and the daemon's error line ("Error response from daemon:
/// ...", without the CLI's name before it), with ids and paths normalized.
fn error_of(out: &Output, roots: &[&Path]) -> (Option<i32>, String) {
    let err = stderr(out);
    let line = err
        .lines()
        .find_map(|l| l.split_once("Error response from daemon: ").map(|x| x.1))
        .unwrap_or(err.trim());
    (out.status.code(), normalize(line, roots))
}

/// Same exit code, and pier's message is docker's, possibly followed by
/// advice of its own (e.g. `(pier has only the "local" driver)`).
fn same_error(docker: &(Option<i32>, String), pier: &(Option<i32>, String)) -> bool {
    docker.0 == pier.0 && !docker.1.is_empty() && pier.1.starts_with(&docker.1)
}

#[test]
fn bad_input_errors_match_dockerd() {
    let Some(b) = both() else { return };
    let missing = b.host.join("missing");
    let mnt_missing = format!("type=bind,src={},dst=/d", missing.display());
    let dup_bind = format!("{}:/d", b.host.display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "--rm", "-v", "rel/dir:/d", "busybox", "true"],
        vec!["run", "--rm", "--mount", &mnt_missing, "busybox", "true"],
        vec!["run", "--rm", "-v", "bad1:/d:xx", "busybox", "true"],
        vec!["run", "--rm", "-v", "bad1:d", "busybox", "true"],
        vec![
            "run", "--rm", "-v", "da:/d", "-v", "db:/d", "busybox", "true",
        ],
        vec![
            "run", "--rm", "-v", &dup_bind, "--tmpfs", "/d", "busybox", "true",
        ],
        vec![
            "run",
            "--rm",
            "--mount",
            "type=foo,dst=/d",
            "busybox",
            "true",
        ],
        vec!["run", "--rm", "--volumes-from", "nope", "busybox", "true"],
        vec!["volume", "create", "a/b"],
        vec!["volume", "create", "x"],
        vec!["volume", "create", "_x"],
        vec!["volume", "create", "-d", "nosuchdriver", "drv"],
        vec!["volume", "inspect", "nope"],
        vec!["volume", "rm", "nope"],
    ];
    let roots = [
        b.pier.env.data_root.as_path(),
        &b.dockerd.dir.join("docker-data"),
    ];
    let mut diffs = Vec::new();
    for args in &cases {
        let (d, p) = b.both(args);
        let (d, p) = (error_of(&d, &roots), error_of(&p, &roots));
        if !same_error(&d, &p) {
            diffs.push(format!("{args:?}:\n  docker: {d:?}\n  pier:   {p:?}"));
        }
    }
    assert!(!missing.exists());
    // A volume in use: same message, ids aside.
    b.both_ok(&[
        "create", "--name", "user", "-v", "inuse:/u", "busybox", "true",
    ]);
    let (d, p) = b.both(&["volume", "rm", "inuse"]);
    let (d, p) = (error_of(&d, &roots), error_of(&p, &roots));
    if !same_error(&d, &p) {
        diffs.push(format!(
            "volume rm inuse:\n  docker: {d:?}\n  pier:   {p:?}"
        ));
    }
    assert!(diffs.is_empty(), "errors differ:\n{}", diffs.join("\n"));
}

/// Another API client: the Python SDK (docker-py) with volumes.
const DOCKER_PY: &str = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
v = c.volumes.create(name="pyvol", labels={"via": "py"})
assert v.name == "pyvol", v.attrs
assert v.attrs["Labels"] == {"via": "py"}, v.attrs
assert v.attrs["Driver"] == "local", v.attrs
assert [x.name for x in c.volumes.list()] == ["pyvol"]
assert c.volumes.get("pyvol").attrs["Scope"] == "local"
out = c.containers.run("busybox", ["sh", "-c", "echo py > /d/f"],
                       volumes={"pyvol": {"bind": "/d", "mode": "rw"}}, remove=True)
assert c.containers.run("busybox", ["cat", "/d/f"], volumes=["pyvol:/d:ro"], remove=True) == b"py\n"
m = docker.types.Mount(target="/m", source="pyvol", type="volume", read_only=True)
try:
    c.containers.run("busybox", ["sh", "-c", "echo x > /m/g"], mounts=[m], remove=True)
    raise AssertionError("a read-only mount took a write")
except docker.errors.ContainerError as e:
    assert e.exit_status == 1, e
k = c.containers.create("busybox", ["true"], volumes=["pyvol:/d", "/anon"], name="pyuser")
k.reload()
dsts = sorted((x["Type"], x["Destination"], x["RW"]) for x in k.attrs["Mounts"])
assert dsts == [("volume", "/anon", True), ("volume", "/d", True)], k.attrs["Mounts"]
try:
    c.volumes.get("pyvol").remove()
    raise AssertionError("removed a volume in use")
except docker.errors.APIError as e:
    assert "remove pyvol: volume is in use - [" + k.id + "]" in e.explanation, e.explanation
k.remove(v=True)
assert [x.name for x in c.volumes.list()] == ["pyvol"], c.volumes.list()
c.volumes.get("pyvol").remove()
try:
    c.volumes.get("pyvol")
    raise AssertionError("no NotFound")
except docker.errors.NotFound as e:
    assert "get pyvol: no such volume" in e.explanation, e.explanation
r = c.volumes.prune()
assert "VolumesDeleted" in r and "SpaceReclaimed" in r, r
print("ok")
"#;

#[test]
fn docker_py_manages_volumes_on_pierd() {
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
    let t = Pier::new();
    let url = format!("unix://{}", t.env.exec_root.join("pier.sock").display());
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
fn docker_commit_change_volume_makes_an_image_volume() {
    if !ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let t = Pier::new();
    t.env.ok(&[
        "run",
        "--name",
        "csrc",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo seed > /data/s",
    ]);
    // As docker: `commit --change 'VOLUME /data'` (the API's `changes`
    // query parameter) puts /data in the image's Config.Volumes.
    t.docker_ok(&["commit", "-c", "VOLUME /data", "csrc", "cv:1"]);
    assert_eq!(
        t.docker_ok(&["image", "inspect", "-f", "{{json .Config.Volumes}}", "cv:1"]),
        "{\"/data\":{}}\n"
    );
    assert_eq!(
        t.docker_ok(&["run", "--name", "cu", "cv:1", "cat", "/data/s"]),
        "seed\n"
    );
    assert_eq!(
        t.docker_ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}",
            "cu"
        ]),
        "volume /data\n"
    );
}

#[test]
fn system_df_counts_volumes_as_dockerd() {
    let Some(b) = both() else { return };
    b.both_ok(&["volume", "create", "df-used"]);
    b.both_ok(&["volume", "create", "df-unused"]);
    b.both_ok(&[
        "run",
        "--rm",
        "-v",
        "df-used:/a",
        "-v",
        "df-unused:/b",
        "busybox",
        "sh",
        "-c",
        "head -c 1000 /dev/zero > /a/f; head -c 24 /dev/zero > /b/g",
    ]);
    b.both_ok(&[
        "create",
        "--name",
        "df-user",
        "-v",
        "df-used:/a",
        "busybox",
        "true",
    ]);
    // As docker: volumes counted, the used one active, sizes summed and the
    // unused ones reclaimable.
    let (d, p) = b.both_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    let line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Local Volumes|"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line(&d), "Local Volumes|2|1|1.024kB|24B (2%)");
    let (dv, pv) = b.both_ok(&["system", "df", "-v"]);
    let rows = |s: &str| {
        let mut r: Vec<String> = s
            .lines()
            .filter(|l| l.starts_with("df-"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        (line(&p), rows(&pv)),
        (line(&d), rows(&dv)),
        "pier:\n{p}{pv}\ndocker:\n{d}{dv}"
    );
}
