//! `pier build` and `POST /build` plumbing: the context the CLI sends
//! (.dockerignore, a Dockerfile outside the context, stdin), the progress
//! stream, a failing RUN's output and exit code, what is left behind, an
//! untrusted context sent straight to the API, and docker's own CLI
//! building against pierd.

use pier_testutil::PierEnv;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A context directory under the env's temporary dir.
fn context(env: &PierEnv, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.dir.path().join(name);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn build(env: &PierEnv, args: &[&str]) -> Output {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    env.run(&all)
}

fn build_stdin(env: &PierEnv, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = env
        .pier()
        .arg("build")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Nothing of a build may stay: no mounts under the env, no step
/// bundles, no temporary contexts.
fn assert_nothing_left(env: &PierEnv) {
    let root = env.dir.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&root))
        .collect();
    assert!(left.is_empty(), "mounts left behind: {left:?}");
    for dir in [
        env.exec_root.join("builds"),
        env.data_root.join("builder/tmp"),
    ] {
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "left in {}: {entries:?}", dir.display());
    }
    // (dot files are the runtime's caches)
    let runtime: Vec<_> = std::fs::read_dir(env.exec_root.join("runtime"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(runtime.is_empty(), "runtime state left: {runtime:?}");
}

#[test]
fn build_sends_the_context_honouring_dockerignore_and_streams_progress() {
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx/\nRUN ls -a /ctx; echo to-stderr >&2\nCMD [\"sh\"]\n",
            ),
            ("keep.txt", "kept\n"),
            ("secret.txt", "no\n"),
            ("logs/a.log", "no\n"),
            ("logs/keep.log", "yes\n"),
            (
                ".dockerignore",
                "secret.txt\nlogs\n!logs/keep.log\nDockerfile\n",
            ),
        ],
    );
    let out = build(&env, &["-t", "ctx-img:1", ctx.to_str().unwrap()]);
    let stdout = assert_ok(&out, "pier build");
    // BuildKit's plain progress: numbered steps of the one stage.
    assert!(stdout.contains("#1 [1/3] FROM busybox\n"), "{stdout}");
    assert!(
        stdout.contains("#3 [3/3] RUN ls -a /ctx; echo to-stderr >&2\n"),
        "{stdout}"
    );
    assert!(stdout.contains("#3 DONE "), "{stdout}");
    let run_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("#3 0.") || l.starts_with("#3 1.") || l.starts_with("#3 2."))
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or(""))
        .collect();
    // Ignored files are not in the context; an exception re-includes a
    // file; an ignored Dockerfile is sent (the build needs it) but, as
    // docker, not copied.
    for want in [".dockerignore", "keep.txt", "logs", "to-stderr"] {
        assert!(run_lines.contains(&want), "{want} in {run_lines:?}");
    }
    assert!(!run_lines.contains(&"secret.txt"), "{run_lines:?}");
    assert!(!run_lines.contains(&"Dockerfile"), "{run_lines:?}");
    let listed = assert_ok(
        &env.run(&["run", "--rm", "ctx-img:1", "ls", "/ctx/logs"]),
        "pier run",
    );
    assert_eq!(listed.trim(), "keep.log");
    let last: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert_eq!(last[0], "Successfully tagged ctx-img:1");
    assert!(last[1].starts_with("Successfully built "), "{stdout}");

    // The same again: every step from the cache.
    let again = assert_ok(
        &build(&env, &["-t", "ctx-img:1", ctx.to_str().unwrap()]),
        "a second build",
    );
    assert!(again.contains("#3 CACHED\n"), "{again}");
    assert!(!again.contains("\n#3 0."), "a cached RUN ran: {again}");
    assert_nothing_left(&env);
}

#[test]
fn a_dockerfile_outside_the_context_or_on_stdin_and_a_context_on_stdin() {
    let env = env();
    let ctx = context(&env, "ctx", &[("data.txt", "from-context\n")]);
    let outside = env.dir.path().join("elsewhere.Dockerfile");
    std::fs::write(&outside, "FROM busybox\nCOPY . /c/\nRUN ls -a /c\n").unwrap();
    let out = assert_ok(
        &build(
            &env,
            &[
                "-f",
                outside.to_str().unwrap(),
                "-t",
                "outside",
                ctx.to_str().unwrap(),
            ],
        ),
        "build -f outside the context",
    );
    assert!(out.contains(" data.txt\n"), "{out}");
    // As docker: the generated Dockerfile is listed in the .dockerignore
    // sent, so COPY . leaves it out.
    assert!(!out.contains(".dockerfile."), "{out}");

    // -f - : the Dockerfile from stdin, the context from the directory.
    let out = assert_ok(
        &build_stdin(
            &env,
            &["-f", "-", ctx.to_str().unwrap()],
            b"FROM busybox\nCOPY data.txt /\nRUN cat /data.txt\n",
        ),
        "build -f -",
    );
    assert!(out.contains(" from-context\n"), "{out}");

    // - : a bare Dockerfile (no context).
    let out = assert_ok(
        &build_stdin(
            &env,
            &["-t", "stdin-df", "-"],
            b"FROM busybox\nRUN echo bare-dockerfile\n",
        ),
        "build - < Dockerfile",
    );
    assert!(out.contains(" bare-dockerfile\n"), "{out}");

    // - : a tar context (here gzip-compressed, as `tar cz` makes it).
    let tar = Command::new("tar")
        .args(["-C", ctx.to_str().unwrap(), "-czf", "-", "."])
        .output()
        .unwrap();
    std::fs::write(ctx.join("Dockerfile"), "unused").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let df = b"FROM busybox\nCOPY sub/f /f\nRUN cat /f\n";
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(10);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "sub/f", &b"tar-stdin\n"[..]).unwrap();
    let plain = b.into_inner().unwrap();
    let out = assert_ok(&build_stdin(&env, &["-"], &plain), "build - < ctx.tar");
    assert!(out.contains(" tar-stdin\n"), "{out}");
    assert!(tar.status.success());
    let out = build_stdin(&env, &["-f", "nope/Dockerfile", "-"], &tar.stdout);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Cannot locate specified Dockerfile: nope/Dockerfile"),
        "{}",
        text(&out.stderr)
    );
    assert_nothing_left(&env);
}

#[test]
fn a_failing_run_shows_its_output_and_exit_code_and_tags_nothing() {
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before-failure; echo on-stderr >&2; exit 7\nRUN echo never\n",
        )],
    );
    let out = build(&env, &["-t", "failed-img", ctx.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // As docker (the CLI exits with the failing RUN's code).
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(" before-failure\n") && stdout.contains(" on-stderr\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert!(
        stderr.contains(
            "The command '/bin/sh -c echo before-failure; echo on-stderr >&2; exit 7' \
             returned a non-zero code: 7"
        ),
        "{stderr}"
    );
    let images = env.ok(&["images", "-q", "failed-img"]);
    assert!(images.trim().is_empty(), "tagged after a failure: {images}");

    // -q: nothing on success but the id; the progress on failure.
    let out = build(&env, &["-q", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7));
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("before-failure"),
        "{}",
        text(&out.stderr)
    );

    // Other errors exit 1: a syntax error names the file and line.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nNOSUCH x\n").unwrap();
    let out = build(&env, &[ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).is_empty());
    let out = build(&env, &[env.dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unable to prepare context"),
        "{}",
        text(&out.stderr)
    );
    assert_nothing_left(&env);
}

#[test]
fn quiet_prints_only_the_id_and_iidfile_keeps_it() {
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nARG A=default\nLABEL a=$A\nRUN echo $A > /a\n",
        )],
    );
    let iid = env.dir.path().join("iid");
    std::fs::write(&iid, "stale").unwrap();
    let out = assert_ok(
        &build(
            &env,
            &[
                "-q",
                "--iidfile",
                iid.to_str().unwrap(),
                "--build-arg",
                "A=given",
                "--label",
                "from=cli",
                "-t",
                "quiet-img",
                ctx.to_str().unwrap(),
            ],
        ),
        "build -q",
    );
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out:?}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    let labels = env.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        "quiet-img",
    ]);
    assert!(
        labels.contains("\"a\":\"given\"") && labels.contains("\"from\":\"cli\""),
        "{labels}"
    );
    let a = env.ok(&["run", "--rm", "quiet-img", "cat", "/a"]);
    assert_eq!(a.trim(), "given");
}

/// POST /build on pierd's socket with `body`; the raw answer.
fn post_build(env: &PierEnv, query: &str, body: &[u8]) -> String {
    let sock = env.exec_root.join("pier.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    write!(
        s,
        "POST /v1.41/build?{query} HTTP/1.1\r\nHost: pier\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // pierd may answer (400) and close before it has read the body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    text(&out)
}

fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn the_api_keeps_an_untrusted_context_inside_and_reports_errors_in_the_stream() {
    use tar::EntryType as T;
    let env = env();
    let victim = env.dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    // `..` is resolved inside the context; an entry under a symlink that
    // leads out is refused. (`.wh.` names stay plain files in the context:
    // pier-engine's build::context unit tests check that.)
    let body = raw_tar(&[
        (
            "Dockerfile",
            T::Regular,
            b"FROM busybox\nCOPY . /c/\nRUN ls -a /c\n",
            "",
        ),
        ("../../../escaped", T::Regular, b"x", ""),
    ]);
    let answer = post_build(&env, "t=api-img", &body);
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("{\"aux\":{\"ID\":\"sha256:"), "{answer}");
    assert!(
        answer.contains(" escaped\\n") && !env.dir.path().join("escaped").exists(),
        "{answer}"
    );
    assert!(
        answer.contains("Successfully tagged api-img:latest"),
        "{answer}"
    );

    let body = raw_tar(&[
        ("Dockerfile", T::Regular, b"FROM busybox\n", ""),
        ("out", T::Symlink, b"", victim.to_str().unwrap()),
        ("out/pwned", T::Regular, b"x", ""),
    ]);
    let answer = post_build(&env, "", &body);
    assert!(answer.contains("\"errorDetail\""), "{answer}");
    assert!(answer.contains("not a directory"), "{answer}");
    assert!(!victim.join("pwned").exists());

    // A missing Dockerfile, bad buildargs.
    let body = raw_tar(&[("x", T::Regular, b"", "")]);
    let answer = post_build(&env, "dockerfile=nope", &body);
    assert!(
        answer.contains("Cannot locate specified Dockerfile: nope"),
        "{answer}"
    );
    let answer = post_build(&env, "buildargs=%5B", &body);
    assert!(answer.contains("HTTP/1.1 400"), "{answer}");
    assert_nothing_left(&env);
}

#[test]
fn docker_cli_builds_against_pierd() {
    if !pier_testutil::dockerd::ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /c/\nRUN ls /c\n"),
            ("f.txt", "x\n"),
            ("ignored.txt", "x\n"),
            (".dockerignore", "ignored.txt\n"),
        ],
    );
    let docker = |args: &[&str]| -> Output {
        Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", env.exec_root.join("pier.sock").display()),
            )
            .env("DOCKER_CONFIG", env.dir.path().join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .unwrap()
    };
    let out = docker(&["build", "-t", "from-docker", ctx.to_str().unwrap()]);
    let stdout = assert_ok(&out, "docker build");
    assert!(
        stdout.contains(" f.txt\n") && !stdout.contains("ignored.txt"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Successfully tagged from-docker:latest"),
        "{stdout}"
    );
    let id = env.ok(&["image", "inspect", "-f", "{{.Id}}", "from-docker"]);
    assert!(id.starts_with("sha256:"));

    // A Dockerfile outside the context (the CLI's tar then ends without
    // padding) and a failing RUN's exit code.
    let outside = env.dir.path().join("fail.Dockerfile");
    std::fs::write(&outside, "FROM busybox\nRUN echo out; exit 5\n").unwrap();
    let out = docker(&[
        "build",
        "-f",
        outside.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(" out\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("returned a non-zero code: 5"),
        "{}",
        text(&out.stderr)
    );
    let out = docker(&["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(assert_ok(&out, "docker build -q").trim(), id.trim());
    assert_nothing_left(&env);
}

#[test]
fn a_build_whose_client_goes_away_stops_and_leaves_nothing() {
    use std::io::BufRead;
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo started; sleep 600\nRUN echo never\n",
        )],
    );
    let mut child = env
        .pier()
        .args(["build", "-t", "abandoned", ctx.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        let started = l.ends_with(" started");
        seen.push(l);
        if started {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.ends_with(" started")),
        "{seen:?}"
    );
    // As docker: the client going away cancels the build.
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let builds = env.exec_root.join("builds");
    while std::fs::read_dir(&builds).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned build still runs after 60s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The last step's cleanup and the temporary context's removal follow.
    let tmp = env.data_root.join("builder/tmp");
    while std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_some()) {
        assert!(std::time::Instant::now() < deadline, "the context stays");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_nothing_left(&env);
    let images = env.ok(&["images", "-q", "abandoned"]);
    assert!(images.trim().is_empty(), "{images}");
}

#[test]
fn run_has_the_hosts_network_unless_network_none() {
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN ls /sys/class/net\n")],
    );
    let step_output = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("#2 ") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string())
            .collect()
    };
    let none = assert_ok(
        &build(&env, &["--network", "none", ctx.to_str().unwrap()]),
        "build --network none",
    );
    assert_eq!(step_output(&none), ["lo"], "{none}");
    let host = assert_ok(
        &build(&env, &["--no-cache", ctx.to_str().unwrap()]),
        "build",
    );
    let host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut got = step_output(&host);
    got.sort();
    let mut want = host_links;
    want.sort();
    assert_eq!(got, want, "{host}");
    let out = build(&env, &["--network", "bogus", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_unreadable_context_fails_before_anything_is_sent() {
    use std::os::unix::fs::PermissionsExt;
    if !pier_testutil::dockerd::have("setpriv") {
        pier_testutil::skip("setpriv (util-linux) is needed to run pier as a user");
        return;
    }
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    let ctx = context(
        &env,
        "ctx",
        &[("Dockerfile", "FROM busybox\n"), ("secret", "x")],
    );
    for d in [env.dir.path(), ctx.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(ctx.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything: run the CLI as nobody (it checks the context
    // before it talks to pierd).
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pier"))
        .args(["build", ctx.to_str().unwrap()])
        .env("PIER_DATA_ROOT", &env.data_root)
        .env("PIER_BRIDGE", "none")
        .env("PIER_EXEC_ROOT", &env.exec_root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // As docker's CLI words it.
    assert!(
        text(&out.stderr).contains(&format!(
            "error checking context: no permission to read from '{}'",
            ctx.join("secret").display()
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !env.exec_root.join("pier.sock").exists(),
        "pierd was started"
    );
}

#[test]
fn a_pierd_killed_during_a_build_leaves_nothing_once_restarted() {
    use std::io::BufRead;
    let env = env();
    let ctx = context(
        &env,
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo started; sleep 600\n")],
    );
    let mut child = env
        .pier()
        .args(["build", ctx.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines {
        if l.unwrap().ends_with(" started") {
            break;
        }
    }
    env.kill_daemon();
    let _ = child.wait();
    // The next pierd removes the step's runtime state (killing it), its
    // mount and bundle, and the temporary context.
    env.ok(&["ps", "-a"]);
    assert_nothing_left(&env);
}

/// `pier-context-path` (pier's CLI on the local socket names its context
/// directory instead of sending it): only an existing directory, named
/// canonically, and the one the client saw when it says which.
#[test]
fn a_context_path_is_read_in_place_only_when_it_is_the_clients_directory() {
    use std::os::unix::fs::MetadataExt;
    let env = env();
    let ctx = context(
        &env,
        "named",
        &[
            ("Dockerfile", "FROM busybox\nCOPY in.txt /in.txt\n"),
            ("in.txt", "in place\n"),
        ],
    );
    std::os::unix::fs::symlink("/etc", ctx.join("abs")).unwrap();
    let enc = |p: &Path| p.to_str().unwrap().replace('/', "%2F");
    let md = std::fs::metadata(&ctx).unwrap();
    let id = format!("{}:{}", md.dev(), md.ino());
    let answer = post_build(
        &env,
        &format!(
            "t=named&pier-context-path={}&pier-context-id={id}",
            enc(&ctx)
        ),
        b"",
    );
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("Successfully tagged named:latest"),
        "{answer}"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "named", "cat", "/in.txt"]),
        "in place\n"
    );

    let link = env.dir.path().join("link-to-named");
    std::os::unix::fs::symlink(&ctx, &link).unwrap();
    let file = ctx.join("in.txt");
    for (query, why) in [
        ("pier-context-path=named".to_string(), "absolute"),
        (format!("pier-context-path={}", enc(&link)), "canonical"),
        (
            format!("pier-context-path={}", enc(&file)),
            "not a directory",
        ),
        (
            format!("pier-context-path={}%2Fmissing", enc(&ctx)),
            "No such file",
        ),
        (
            format!("pier-context-path={}&pier-context-id=1:2", enc(&ctx)),
            "another directory",
        ),
        (
            format!("pier-context-path={}&pier-context-id=x", enc(&ctx)),
            "DEV:INODE",
        ),
    ] {
        let answer = post_build(&env, &format!("t=refused&{query}"), b"");
        assert!(answer.contains("HTTP/1.1 400"), "{query}: {answer}");
        assert!(answer.contains(why), "{query}: {answer}");
    }
    // A symlink inside the context does not lead out of it: /etc is the
    // context's (missing) etc.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY abs/hostname /h\n",
    )
    .unwrap();
    let answer = post_build(
        &env,
        &format!("t=refused&pier-context-path={}", enc(&ctx)),
        b"",
    );
    assert!(answer.contains("\"errorDetail\""), "{answer}");
    assert!(
        answer.contains("file not found in build context"),
        "{answer}"
    );
    assert!(!env.run(&["image", "inspect", "refused"]).status.success());
    assert_nothing_left(&env);
}
