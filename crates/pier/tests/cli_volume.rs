//! The pier CLI's volume side checked against docker itself: `pier -H`
//! pointed at a private dockerd, beside the docker CLI on the same daemon.
//! `pier volume ...` must print what `docker volume ...` prints, and `pier
//! create -v/--mount/--tmpfs/--volumes-from` must leave dockerd with the
//! same container configuration as `docker create` with the same flags
//! (what the daemon got is what the CLI sent). Skipped without docker.

use pier_testutil::dockerd::{ensure, Dockerd};
use pier_testutil::PierEnv;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Peers {
    // Dropped first: dockerd stops before the directory goes.
    dockerd: Dockerd,
    env: PierEnv,
}

fn peers() -> Option<Peers> {
    if !ensure(&["dockerd", "docker"], "docker.io") {
        pier_testutil::skip(
            "dockerd/docker not installed (apt-get install docker.io, or set PIER_TEST_INSTALL_DOCKER=1)",
        );
        return None;
    }
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    let dockerd = match Dockerd::start(env.dir.path()) {
        Ok(d) => d,
        Err(why) => {
            pier_testutil::skip(&format!("dockerd cannot run on this machine: {why}"));
            return None;
        }
    };
    Some(Peers { dockerd, env })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Peers {
    /// `pier -H DOCKERD ARGS` run in `cwd`.
    fn pier_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut cmd = self.env.pier();
        cmd.arg("-H")
            .arg(format!("unix://{}", self.dockerd.sock.display()))
            .args(args)
            .current_dir(cwd);
        cmd.output().expect("running pier")
    }

    fn pier(&self, args: &[&str]) -> Output {
        self.pier_in(self.env.dir.path(), args)
    }

    fn docker_in(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dockerd.sock.display()),
            )
            .env("DOCKER_CONFIG", self.dockerd.dir.join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("running docker")
    }

    /// Runs the same command with both CLIs and checks they print the same
    /// and exit the same (stderr compared without pier's "pier: " prefix).
    fn same(&self, args: &[&str]) -> String {
        let p = self.pier(args);
        let d = self.dockerd.docker(args);
        assert_eq!(
            text(&p.stdout),
            text(&d.stdout),
            "stdout of pier {args:?} (left) and docker (right) differ; pier stderr: {}",
            text(&p.stderr)
        );
        let first = |o: &Output| {
            let e = text(&o.stderr);
            let l = e.lines().next().unwrap_or("").to_string();
            l.strip_prefix("pier: ").unwrap_or(&l).to_string()
        };
        assert_eq!(first(&p), first(&d), "stderr of pier {args:?} and docker");
        assert_eq!(
            p.status.code(),
            d.status.code(),
            "exit code of pier {args:?} and docker"
        );
        text(&p.stdout)
    }

    fn pier_ok(&self, args: &[&str]) -> String {
        let out = self.pier(args);
        assert!(
            out.status.success(),
            "pier {args:?} against dockerd failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

#[test]
fn volume_commands_print_what_docker_prints() {
    let Some(t) = peers() else { return };
    // As docker: create prints the name, anonymous ones get a 64-hex name.
    assert_eq!(
        t.pier_ok(&[
            "volume",
            "create",
            "--label",
            "tier=db",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "cv-one"
        ]),
        "cv-one\n"
    );
    assert_eq!(t.pier_ok(&["volume", "create", "--name", "cv-2"]), "cv-2\n");
    assert_eq!(t.pier_ok(&["volume", "create", "cv-10"]), "cv-10\n");
    let anon = t.pier_ok(&["volume", "create"]);
    assert!(
        anon.trim().len() == 64 && anon.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "anonymous volume name: {anon:?}"
    );
    // The body pier sent reached dockerd as docker's would have.
    let v: Value = serde_json::from_str(&t.dockerd.ok(&["volume", "inspect", "cv-one"])).unwrap();
    assert_eq!(v[0]["Labels"], serde_json::json!({"tier": "db"}));
    // Several labels (compared here only: docker prints a volume's labels
    // in Go's random map order).
    t.pier_ok(&[
        "volume", "create", "--label", "a=1", "--label", "k", "cv-lab",
    ]);
    let lab: Value = serde_json::from_str(&t.dockerd.ok(&["volume", "inspect", "cv-lab"])).unwrap();
    assert_eq!(lab[0]["Labels"], serde_json::json!({"a": "1", "k": ""}));
    t.dockerd.ok(&["volume", "rm", "cv-lab"]);
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs"})
    );

    // Listing and inspecting, byte for byte as docker (natural name order).
    let table = t.same(&["volume", "ls"]);
    assert!(table.starts_with("DRIVER    VOLUME NAME\n"), "{table}");
    let names = t.same(&["volume", "ls", "-q"]);
    let cv: Vec<&str> = names.lines().filter(|n| n.starts_with("cv-")).collect();
    assert_eq!(cv, ["cv-2", "cv-10", "cv-one"]);
    t.same(&["volume", "list", "--format", "json"]);
    t.same(&[
        "volume",
        "ls",
        "--format",
        "table {{.Name}}\t{{.Labels}}\t{{.Scope}}\t{{.Mountpoint}}",
    ]);
    t.same(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}: {{.Driver}} {{.Labels}}",
    ]);
    t.same(&["volume", "ls", "-q", "--format", "{{.Name}}/{{.Driver}}"]);
    assert_eq!(
        t.same(&["volume", "ls", "-q", "-f", "label=tier=db"]),
        "cv-one\n"
    );
    t.same(&["volume", "ls", "-f", "name=cv-1", "-f", "driver=local"]);
    t.same(&["volume", "ls", "-f", "dangling=true", "-q"]);
    // Bad filters: docker's flag message (125), the daemon's refusal (1).
    t.same(&["volume", "ls", "-f", "badfilter"]);
    t.same(&["volume", "ls", "-f", "nosuch=1"]);
    t.same(&["volume", "inspect", "cv-one", "cv-2"]);
    t.same(&["volume", "inspect", "--format", "json", "cv-2"]);
    t.same(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Labels}}",
        "cv-one",
    ]);
    // A missing volume: the found ones printed, docker's error, exit 1.
    let out = t.same(&["volume", "inspect", "cv-2", "cv-missing", "cv-10"]);
    assert!(out.contains("\"cv-10\""), "{out}");
    t.same(&["volume", "inspect", "cv-missing"]);
    // Refused before anything is sent, as docker.
    t.same(&["volume", "create", "--name", "cv-x", "cv-y"]);
    t.same(&["volume", "create", "--label", "a b=c", "cv-z"]);
    t.same(&["volume", "create", "bad/name"]);

    // rm: each removed name printed, the errors after, exit 1 if any.
    let out = t.pier(&["volume", "rm", "cv-missing", "cv-2", "cv-10"]);
    assert_eq!(text(&out.stdout), "cv-2\ncv-10\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error response from daemon: get cv-missing: no such volume\n"
    );
    // -f: a missing volume is no error (the daemon's answer, as docker).
    let out = t.pier(&["volume", "rm", "-f", "cv-missing"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("cv-missing\n", Some(0))
    );
    assert!(t.dockerd.ok(&["volume", "ls", "-q"]).contains("cv-one"));

    // prune -f: docker's report; the anonymous volume goes.
    let out = t.pier_ok(&["volume", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Volumes:\n") && out.contains(anon.trim()),
        "{out}"
    );
    assert!(out.ends_with("\n\nTotal reclaimed space: 0B\n"), "{out:?}");
    // Nothing left to prune: only the total, as docker.
    t.dockerd.ok(&["volume", "rm", "cv-one"]);
    assert_eq!(
        t.pier_ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // Without -f: docker's question; anything but y keeps everything.
    t.pier_ok(&["volume", "create"]);
    let mut child = t
        .env
        .pier()
        .arg("-H")
        .arg(format!("unix://{}", t.dockerd.sock.display()))
        .args(["volume", "prune"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(t.dockerd.ok(&["volume", "ls", "-q"]).lines().count(), 1);
    // --all with an `all` filter is refused by the CLI, as docker.
    let out = t.pier(&["volume", "prune", "-a", "-f", "--filter", "all=1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr)
        .contains("conflicting options: cannot specify both --all and --filter all=1"));
}

/// The parts of a container's inspect document the volume flags fill.
fn volume_config(t: &Peers, name: &str) -> Value {
    let v: Value = serde_json::from_str(&t.dockerd.ok(&["inspect", name])).unwrap();
    let hc = &v[0]["HostConfig"];
    // The docker CLI sends its -v binds in map order (random); pier in
    // command-line order: compared as sets.
    let mut binds: Vec<String> = hc["Binds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str().map(str::to_string))
        .collect();
    binds.sort();
    serde_json::json!({
        "Binds": binds,
        "Mounts": hc["Mounts"],
        "Tmpfs": hc["Tmpfs"],
        "VolumesFrom": hc["VolumesFrom"],
        "Volumes": v[0]["Config"]["Volumes"],
    })
}

#[test]
fn run_flags_reach_the_daemon_as_docker_sends_them() {
    let Some(t) = peers() else { return };
    let tar = t.env.dir.path().join("busybox.tar");
    pier_testutil::write_busybox_tar(&tar).unwrap();
    t.dockerd.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    t.dockerd.ok(&[
        "create", "--name", "vsrc", "-v", "/shared", "busybox", "true",
    ]);
    // A working directory for the relative sources, with what --mount
    // binds (it refuses a missing source, -v does not).
    let cwd: PathBuf = t.env.dir.path().join("work");
    std::fs::create_dir_all(cwd.join("sub")).unwrap();
    let flags = [
        "-v", "/anon",
        "-v", "./rel:/r",
        "-v", ".:/dot",
        "-v", "../up:/u:ro",
        "-v", "named-vol:/n:ro",
        "-v", "/tmp:/t:rw,rslave",
        "--tmpfs", "/tm",
        "--tmpfs", "/tm2:size=1m,mode=700",
        "--volumes-from", "vsrc:ro",
        "--mount", "type=bind,src=./sub,dst=/m1,ro,bind-propagation=rslave",
        "--mount", "type=volume,src=mvol,dst=/m2,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
        "--mount", "type=tmpfs,dst=/m3,tmpfs-size=1m,tmpfs-mode=1777",
        "--mount", "type=volume,target=/m4",
    ];
    let with = |name: &str| {
        let mut a = vec!["create", "--name", name];
        a.extend_from_slice(&flags);
        a.extend_from_slice(&["busybox", "true"]);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let args = with("by-docker");
    let d = t.docker_in(&cwd, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(d.status.success(), "docker create: {}", text(&d.stderr));
    let args = with("by-pier");
    let p = t.pier_in(&cwd, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(p.status.success(), "pier create: {}", text(&p.stderr));

    let (dv, pv) = (volume_config(&t, "by-docker"), volume_config(&t, "by-pier"));
    assert_eq!(pv, dv, "pier's (left) and docker's (right) volume config");
    // And what that is, so that a change on both sides is noticed too.
    let work = cwd.to_str().unwrap();
    let up = t.env.dir.path().join("up");
    let mut want = vec![
        format!("{work}/rel:/r"),
        format!("{work}:/dot"),
        format!("{}:/u:ro", up.display()),
        "named-vol:/n:ro".to_string(),
        "/tmp:/t:rw,rslave".to_string(),
    ];
    want.sort();
    assert_eq!(pv["Binds"], serde_json::json!(want));
    assert_eq!(pv["Volumes"], serde_json::json!({"/anon": {}}));
    assert_eq!(pv["Mounts"][0]["Source"], format!("{work}/sub"));
    assert_eq!(pv["Mounts"][2]["TmpfsOptions"]["Mode"], 0o1777);

    // A bad --mount or -v fails before anything is sent: docker's message,
    // exit 125, no container.
    for (flag, value, want) in [
        (
            "--mount",
            "type=volume,dst=/a,foo=bar",
            "invalid argument \"type=volume,dst=/a,foo=bar\" for \"--mount\" flag: unexpected key 'foo' in 'foo=bar'",
        ),
        (
            "--mount",
            "type=bind,src=/tmp",
            "invalid argument \"type=bind,src=/tmp\" for \"--mount\" flag: target is required",
        ),
        (
            "--mount",
            "type=tmpfs,dst=/a,tmpfs-mode=99",
            "invalid argument \"type=tmpfs,dst=/a,tmpfs-mode=99\" for \"--mount\" flag: invalid value for tmpfs-mode: 99",
        ),
        ("-v", ":/x", "invalid spec: :/x: empty section between colons"),
        ("-v", "/x:/y:ro:z", "invalid spec: /x:/y:ro:z: too many colons"),
    ] {
        let p = t.pier_in(&cwd, &["create", "--name", "never", flag, value, "busybox", "true"]);
        assert_eq!(p.status.code(), Some(125), "pier create {flag} {value}");
        assert_eq!(text(&p.stderr), format!("pier: {want}\n"));
        let d = t.docker_in(&cwd, &["create", "--name", "never", flag, value, "busybox", "true"]);
        assert_eq!(d.status.code(), Some(125), "docker create {flag} {value}");
        assert!(
            text(&d.stderr).contains(want),
            "docker's message for {flag} {value}: {}",
            text(&d.stderr)
        );
    }
    let out = t.dockerd.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!out.contains("never"), "a container was created: {out}");

    // rm -v asks the daemon to remove the anonymous volumes too (v=1).
    let before = t.dockerd.ok(&["volume", "ls", "-q"]);
    let anon = t.dockerd.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "by-pier",
    ]);
    let anon = anon.trim();
    assert!(
        before.contains(anon) && !anon.is_empty(),
        "{before} / {anon}"
    );
    assert_eq!(t.pier_ok(&["rm", "-v", "by-pier"]), "by-pier\n");
    let after = t.dockerd.ok(&["volume", "ls", "-q"]);
    assert!(
        !after.contains(anon),
        "rm -v left the anonymous volume {anon}"
    );
    assert!(after.contains("named-vol"), "rm -v removed a named volume");
}

/// Both CLIs against pierd (the docker CLI through its Docker API): the
/// same answers, printed the same way.
#[test]
fn pier_and_docker_clis_print_the_same_from_pierd() {
    if !ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    let docker = |args: &[&str]| {
        Command::new("docker")
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
    env.ok(&["volume", "create", "--label", "tier=db", "pd-1"]);
    env.ok(&["volume", "create", "pd-10"]);
    env.ok(&["volume", "create", "pd-9"]);
    env.ok(&[
        "create", "--name", "holder", "-v", "pd-9:/d", "-v", "/anon", "busybox", "true",
    ]);
    for args in [
        &["volume", "ls"][..],
        &["volume", "ls", "-q"],
        &["volume", "ls", "--format", "json"],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Labels}}\t{{.Mountpoint}}",
        ],
        &["volume", "ls", "-f", "label=tier=db"],
        &["volume", "ls", "-q", "-f", "dangling=true"],
        &["volume", "ls", "-q", "-f", "dangling=false"],
        &["volume", "ls", "-f", "name=pd-1"],
        &["volume", "ls", "-f", "nosuch=1"],
        &["volume", "inspect", "pd-1", "pd-10"],
        &["volume", "inspect", "pd-9", "pd-missing"],
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Name}}:{{.Driver}}:{{.Labels}}",
            "pd-1",
        ],
        &["volume", "rm", "pd-9"],
    ] {
        let p = env.run(args);
        let d = docker(args);
        assert_eq!(
            text(&p.stdout),
            text(&d.stdout),
            "stdout of pier {args:?} (left) and docker (right) from pierd; stderr {} / {}",
            text(&p.stderr),
            text(&d.stderr)
        );
        let strip = |o: &Output| text(&o.stderr).replace("pier: ", "");
        assert_eq!(strip(&p), strip(&d), "stderr of pier {args:?} and docker");
        assert_eq!(
            p.status.code(),
            d.status.code(),
            "exit of pier {args:?} and docker"
        );
    }
    // The names in natural order, as docker sorts them.
    let q = env.ok(&["volume", "ls", "-q", "-f", "name=pd-"]);
    assert_eq!(q, "pd-1\npd-9\npd-10\n");
    // pier rm -v takes the anonymous volume along, never the named one.
    let anon = env.ok(&["volume", "ls", "-q", "-f", "dangling=false"]);
    assert_eq!(anon.lines().count(), 2, "{anon}");
    env.ok(&["rm", "-v", "holder"]);
    assert_eq!(env.ok(&["volume", "ls", "-q", "-f", "name=pd-"]), q);
    assert_eq!(env.ok(&["volume", "ls", "-q", "-f", "dangling=false"]), "");
}

/// `pier inspect` finds volumes after containers and images (as docker),
/// `--type volume` picks them alone, and `system df` counts them: total,
/// in use by a container, their bytes, what is reclaimable.
#[test]
fn inspect_and_system_df_know_volumes() {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env.ok(&["volume", "create", "df-used"]);
    env.ok(&["volume", "create", "df-free"]);
    let data = |name: &str| {
        let p = env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", name]);
        PathBuf::from(p.trim())
    };
    std::fs::write(data("df-used").join("f"), vec![b'u'; 3000]).unwrap();
    std::fs::write(data("df-free").join("f"), vec![b'f'; 5000]).unwrap();
    env.ok(&[
        "create",
        "--name",
        "df-c",
        "-v",
        "df-used:/d",
        "busybox",
        "true",
    ]);

    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}}",
            "df-free"
        ]),
        "df-free local local\n"
    );
    assert_eq!(
        env.ok(&["inspect", "--type", "volume", "-f", "{{.Name}}", "df-used"]),
        "df-used\n"
    );
    let out = env.run(&["inspect", "--type", "volume", "df-c"]);
    assert_eq!(out.status.code(), Some(1), "a container is not a volume");
    assert!(
        text(&out.stderr).contains("no such volume"),
        "{}",
        text(&out.stderr)
    );

    let df = env.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    let row = df
        .lines()
        .find(|l| l.starts_with("Local Volumes|"))
        .unwrap_or_else(|| panic!("no volume row in:\n{df}"));
    assert_eq!(row, "Local Volumes|2|1|8kB|5kB (62%)", "{df}");
    env.ok(&["rm", "df-c"]);
}
