//! `pier login/logout/pull/push` against a real docker-registry with
//! htpasswd auth, each test twice: with pier's CLI driving a test dockerd
//! (`pier -H unix://...`, where docker's own CLI is the oracle) and driving
//! pierd. Images reach the registry with skopeo from OCI layouts built in
//! memory. Peers missing -> skipped with the reason (a failure under CI).

use pier_testutil::dockerd::{ensure, have, Dockerd};
use pier_testutil::{write_oci_layout, DockerRegistry, LayerFile, LayoutImage, PierEnv};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const USER: &str = "pier-user";
const PASS: &str = "s3cret-pass";

/// A registry with htpasswd auth, a pier environment, maybe a dockerd,
/// and a DOCKER_CONFIG of the test's own. Fields drop in order: dockerd
/// before the directory it lives in.
struct Setup {
    dockerd: Option<Dockerd>,
    registry: DockerRegistry,
    env: PierEnv,
}

impl Setup {
    /// `None` (after saying why) when a peer is missing.
    fn new(with_dockerd: bool) -> Option<Setup> {
        if !have("htpasswd") {
            pier_testutil::skip("htpasswd is not installed (apt-get install apache2-utils)");
            return None;
        }
        if !ensure(&["skopeo"], "skopeo") {
            pier_testutil::skip("skopeo is not installed (apt-get install skopeo)");
            return None;
        }
        if pier_testutil::registry::docker_registry_binary().is_none() {
            pier_testutil::skip(
                "docker-registry is not installed (apt-get install docker-registry)",
            );
            return None;
        }
        if with_dockerd && !ensure(&["dockerd", "docker"], "docker.io") {
            pier_testutil::skip("dockerd/docker are not installed (apt-get install docker.io)");
            return None;
        }
        let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
        let htpasswd = env.dir.path().join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASS])
            .output()
            .expect("running htpasswd");
        assert!(out.status.success(), "htpasswd: {out:?}");
        std::fs::write(&htpasswd, &out.stdout).unwrap();
        let path_line = format!("    path: {}", htpasswd.display());
        let registry =
            DockerRegistry::start_with(&["auth:", "  htpasswd:", "    realm: test", &path_line])?;
        let dockerd = if with_dockerd {
            match Dockerd::start(env.dir.path()) {
                Ok(d) => Some(d),
                Err(why) => {
                    pier_testutil::skip(&format!("dockerd cannot run here: {why}"));
                    return None;
                }
            }
        } else {
            None
        };
        Some(Setup {
            dockerd,
            registry,
            env,
        })
    }

    fn config_dir(&self) -> PathBuf {
        self.env.dir.path().join("pier-docker-config")
    }

    fn config(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.config_dir().join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn pier(&self) -> Command {
        let mut cmd = self.env.pier();
        if let Some(d) = &self.dockerd {
            cmd.arg("-H").arg(format!("unix://{}", d.sock.display()));
        }
        cmd.env("DOCKER_CONFIG", self.config_dir())
            .env("HOME", self.env.dir.path())
            .env_remove("DOCKER_DEFAULT_PLATFORM");
        cmd
    }

    /// Runs pier with `stdin` piped in.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.pier(), args, stdin)
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "pier {args:?} failed ({}):\nstdout: {}\nstderr: {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            self.dockerd
                .as_ref()
                .map(|d| format!("\ndockerd log:\n{}", d.log_tail()))
                .unwrap_or_default()
        );
        text(&out.stdout)
    }

    /// Runs pier expecting exit status 1, as docker's, with `needle` in
    /// what it says on stderr.
    fn fails_with(&self, args: &[&str], needle: &str) {
        let out = self.run(args, "");
        assert_eq!(out.status.code(), Some(1), "pier {args:?}: {out:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "pier {args:?} should say {needle:?}: {out:?}"
        );
    }

    /// Seeds `test/src:v1` (with `marker` in its top layer), logs in and
    /// pulls it; returns its reference.
    fn pulled_source(&self, marker: &str) -> String {
        self.seed("test/src", "v1", marker);
        self.login();
        let src = format!("{}/test/src:v1", self.registry.addr);
        self.ok(&["pull", "-q", &src], "");
        src
    }

    /// What `skopeo VERB` says (JSON) of `reference` in the registry, with
    /// the test's credentials.
    fn skopeo_json(&self, verb: &str, reference: &str) -> serde_json::Value {
        let out = Command::new("skopeo")
            .args([verb, "--tls-verify=false", "--creds"])
            .arg(format!("{USER}:{PASS}"))
            .arg(format!("docker://{reference}"))
            .output()
            .expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo {verb} {reference}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
    }

    fn login(&self) {
        let out = self.ok(
            &["login", "-u", USER, "--password-stdin", &self.registry.addr],
            &format!("{PASS}\n"),
        );
        assert_eq!(out, "Login Succeeded\n");
    }

    /// Pushes a two-layer image to `repo:tag` with skopeo.
    fn seed(&self, repo: &str, tag: &str, marker: &str) -> LayoutImage {
        let layout = self
            .env
            .dir
            .path()
            .join(format!("layout-{}-{tag}", repo.replace('/', "-")));
        let img = write_oci_layout(
            &layout,
            tag,
            &[
                vec![LayerFile::new("etc/base", "base layer\n")],
                vec![LayerFile::new("etc/marker", marker)],
            ],
            &["sh"],
        )
        .unwrap();
        let out = Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!("{USER}:{PASS}"))
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.registry.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo copy: {}", text(&out.stderr));
        img
    }

    /// Runs pier under `script`, so that its stdin and stdout are a
    /// terminal; for each `(prompt, reply)` waits for the prompt, then
    /// types the reply. Returns what pier printed.
    fn on_terminal(&self, args: &[&str], dialogue: &[(&str, &str)]) -> String {
        let mut pier = self.pier();
        pier.args(args);
        let (mut child, rx, line) = pier_testutil::terminal::spawn(&pier);
        let mut seen = String::new();
        // Where to look for the next prompt.
        let mut from = 0;
        let mut stdin = child.stdin.take().unwrap();
        for (prompt, reply) in dialogue {
            while !seen[from..].contains(prompt) {
                match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                    Ok(chunk) => seen.push_str(&text(&chunk)),
                    Err(_) => {
                        let _ = child.kill();
                        panic!("{line}: no {prompt:?} prompt; printed {seen:?}");
                    }
                }
            }
            from += seen[from..].find(prompt).unwrap_or(0) + prompt.len();
            stdin.write_all(reply.as_bytes()).unwrap();
        }
        drop(stdin);
        let status = child.wait().expect("waiting for script");
        // Everything printed, up to the end of script's output.
        for chunk in rx.iter() {
            seen.push_str(&text(&chunk));
        }
        assert!(status.success(), "{line}: {status}; printed {seen:?}");
        seen
    }

    fn image_exists(&self, name: &str) -> bool {
        self.run(&["image", "inspect", "-f", "{{.Id}}", name], "")
            .status
            .success()
    }
}

/// Runs `cmd` with `args` and `stdin` piped in; returns what it printed.
fn run_with_stdin(mut cmd: Command, args: &[&str], stdin: &str) -> Output {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running pier");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("writing pier's stdin");
    child.wait_with_output().expect("waiting for pier")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Each scenario against a test dockerd and against pierd; `ignore =
/// "why"` marks a pierd variant whose daemon side is not there yet.
macro_rules! against_both_daemons {
    ($($name:ident $(ignore = $why:literal)?),* $(,)?) => {$(
        mod $name {
            #[test]
            fn via_dockerd() {
                if let Some(s) = super::Setup::new(true) {
                    super::$name(&s);
                }
            }
            #[test]
            $(#[ignore = $why])?
            fn via_pierd() {
                if let Some(s) = super::Setup::new(false) {
                    super::$name(&s);
                }
            }
        }
    )*};
}

against_both_daemons!(
    login_and_logout_keep_config_json_as_docker_does,
    pull_uses_stored_credentials_and_prints_progress,
    push_prints_the_digest_the_registry_has,
    pull_all_tags_fetches_every_tag,
    push_all_tags_sends_every_tag,
    login_prompts_on_a_terminal,
    credential_helpers_hold_the_secret,
    build_pulls_a_base_behind_a_login_with_the_stored_credentials,
);

fn login_and_logout_keep_config_json_as_docker_does(s: &Setup) {
    let addr = s.registry.addr.as_str();
    std::fs::create_dir_all(s.config_dir()).unwrap();
    std::fs::write(
        s.config_dir().join("config.json"),
        r#"{"psFormat": "table {{.ID}}", "auths": {"other.example:1": {"auth": "YTpi"}}}"#,
    )
    .unwrap();

    // A wrong password: the daemon's refusal, docker's exit code.
    let bad = s.run(&["login", "-u", USER, "--password-stdin", addr], "wrong\n");
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let err = text(&bad.stderr);
    assert!(err.contains("Error response from daemon"), "{err}");
    if let Some(d) = &s.dockerd {
        let docker = d.docker(&["login", "-u", USER, "-p", "wrong", addr]);
        assert_eq!(bad.status.code(), docker.status.code());
    }
    assert!(s.config()["auths"].get(addr).is_none());

    // -p warns, as docker does; the file keeps every other key.
    let out = s.run(&["login", "-u", USER, "-p", PASS, addr], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let err = text(&out.stderr);
    assert!(
        err.contains("Using --password via the CLI is insecure"),
        "{err}"
    );
    assert!(err.contains("stored unencrypted"), "{err}");
    let cfg = s.config();
    assert_eq!(cfg["psFormat"], "table {{.ID}}");
    assert_eq!(cfg["auths"]["other.example:1"]["auth"], "YTpi");
    let mode = std::fs::metadata(s.config_dir().join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // docker's own login writes the same entry.
    if let Some(d) = &s.dockerd {
        d.ok(&["login", "-u", USER, "-p", PASS, addr]);
        let theirs: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.dir.join("docker-config/config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["auths"][addr], theirs["auths"][addr]);
    } else {
        // base64 of "pier-user:s3cret-pass", as `docker login` writes it.
        assert_eq!(
            cfg["auths"][addr],
            serde_json::json!({ "auth": "cGllci11c2VyOnMzY3JldC1wYXNz" })
        );
    }

    // Logging in again with the stored credentials needs no password.
    let again = s.run(&["login", addr], "");
    assert!(again.status.success(), "{again:?}");
    assert_eq!(text(&again.stdout), "Login Succeeded\n");

    // A URL names the same registry; logout removes only its entry.
    let out = s.ok(&["logout", &format!("http://{addr}/v2/")], "");
    assert_eq!(out, format!("Removing login credentials for {addr}\n"));
    let cfg = s.config();
    assert!(cfg["auths"].get(addr).is_none(), "{cfg}");
    assert_eq!(cfg["auths"]["other.example:1"]["auth"], "YTpi");
    assert_eq!(cfg["psFormat"], "table {{.ID}}");

    // Without a terminal or credentials there is nothing to log in with.
    s.fails_with(&["login", addr], "non-TTY");

    // A config.json that is not JSON: login refuses to overwrite it, pull
    // warns and goes on without credentials, as docker does.
    let cfg_path = s.config_dir().join("config.json");
    std::fs::write(&cfg_path, "{\"auths\": oops").unwrap();
    let out = s.run(&["login", "-u", USER, "--password-stdin", addr], PASS);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("not valid JSON") && err.contains(&*cfg_path.to_string_lossy()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg_path).unwrap(),
        "{\"auths\": oops"
    );
    s.fails_with(
        &["pull", &format!("{addr}/test/none:v1")],
        "WARNING: Error loading config file",
    );
}

fn login_prompts_on_a_terminal(s: &Setup) {
    let addr = s.registry.addr.as_str();
    let out = s.on_terminal(
        &["login", addr],
        &[
            ("Username: ", &format!("{USER}\n")),
            ("Password: ", &format!("{PASS}\n")),
        ],
    );
    assert!(out.contains("Username: "), "{out:?}");
    assert!(out.contains("Password: "), "{out:?}");
    // Typed after the prompt, the password is not echoed.
    assert!(!out.contains(PASS), "{out:?}");
    assert!(out.contains("Login Succeeded"), "{out:?}");
    let cfg = s.config();
    assert_eq!(
        cfg["auths"][addr],
        serde_json::json!({ "auth": "cGllci11c2VyOnMzY3JldC1wYXNz" })
    );
}

fn push_all_tags_sends_every_tag(s: &Setup) {
    let addr = s.registry.addr.as_str();
    let src = s.pulled_source("all tags\n");
    let repo = format!("{addr}/test/alltags");
    for tag in ["one", "two"] {
        s.ok(&["tag", &src, &format!("{repo}:{tag}")], "");
    }
    s.fails_with(
        &["push", "-a", &format!("{repo}:one")],
        "tag can't be used with --all-tags/-a",
    );
    let out = s.ok(&["push", "--all-tags", &repo], "");
    assert!(out.contains("one: digest: sha256:"), "{out}");
    assert!(out.contains("two: digest: sha256:"), "{out}");
    let v = s.skopeo_json("list-tags", &repo);
    let mut got: Vec<&str> = v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    got.sort_unstable();
    assert_eq!(got, ["one", "two"]);
}

fn pull_uses_stored_credentials_and_prints_progress(s: &Setup) {
    let addr = s.registry.addr.as_str();
    let img = s.seed("test/app", "v1", "one\n");
    let reference = format!("{addr}/test/app:v1");

    // No credentials yet: refused, exit 1 as docker.
    let out = s.run(&["pull", &reference], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!s.image_exists(&reference));

    s.login();
    let out = s.ok(&["pull", &reference], "");
    assert!(
        !out.contains('\x1b'),
        "no terminal, no cursor moves: {out:?}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from test/app", "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(
        !out.contains("Downloading"),
        "byte counts only on terminals: {out}"
    );
    assert!(
        out.contains(&format!("Digest: {}\n", img.manifest_digest)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {reference}\n")),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&reference.as_str()), "{out}");
    assert!(s.image_exists(&reference));

    // -q: only the reference; a bare name gets :latest, quietly.
    assert_eq!(
        s.ok(&["pull", "-q", &reference], ""),
        format!("{reference}\n")
    );
    s.seed("test/app", "latest", "latest\n");
    assert_eq!(
        s.ok(&["image", "pull", "-q", &format!("{addr}/test/app")], ""),
        format!("{addr}/test/app:latest\n")
    );
    // --platform goes to the daemon, which checks it against the image.
    assert_eq!(
        s.ok(&["pull", "-q", "--platform", "linux/amd64", &reference], ""),
        format!("{reference}\n")
    );
    // By digest.
    let by_digest = format!("{addr}/test/app@{}", img.manifest_digest);
    let out = s.ok(&["pull", &by_digest], "");
    assert!(out.ends_with(&format!("{by_digest}\n")), "{out}");

    // An up-to-date pull prints exactly what docker's CLI prints, which
    // reads the credentials pier wrote.
    if let Some(d) = &s.dockerd {
        let bare = format!("{addr}/test/app");
        let ours = s.ok(&["pull", &bare], "");
        assert!(ours.starts_with("Using default tag: latest\n"), "{ours}");
        let theirs = Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("DOCKER_CONFIG", s.config_dir())
            .args(["pull", &bare])
            .output()
            .unwrap();
        assert!(theirs.status.success(), "{theirs:?}");
        assert_eq!(ours, text(&theirs.stdout));
    }

    // On a terminal: docker's in-place display, one line per layer.
    s.seed("test/tty", "v1", "tty\n");
    let tty = s.on_terminal(&["pull", &format!("{addr}/test/tty:v1")], &[]);
    assert!(tty.contains("\x1b[2K\r"), "{tty:?}");
    assert!(tty.contains("\x1b[1A"), "{tty:?}");
    assert!(tty.contains(": Pull complete \r"), "{tty:?}");

    // A tag the registry lacks: the daemon's message, exit 1.
    s.fails_with(&["pull", &format!("{addr}/test/app:missing")], "missing");
    // A malformed reference never reaches the daemon.
    s.fails_with(&["pull", "Not/Valid:ref:x"], "invalid reference format");
}

fn push_prints_the_digest_the_registry_has(s: &Setup) {
    let addr = s.registry.addr.as_str();
    let src = s.pulled_source("pushed\n");
    let target = format!("{addr}/test/pushed:v1");
    s.ok(&["tag", &src, &target], "");

    let out = s.ok(&["push", &target], "");
    assert!(!out.contains('\x1b'), "{out:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{addr}/test/pushed]")
    );
    let last = lines.last().copied().unwrap_or_default();
    let digest = last
        .strip_prefix("v1: digest: ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no digest line: {out}"));
    assert!(last.contains(" size: "), "{out}");
    let v = s.skopeo_json("inspect", &target);
    assert_eq!(v["Digest"], digest);

    // -q prints the reference only; a digest reference is refused.
    assert_eq!(
        s.ok(&["image", "push", "-q", &target], ""),
        format!("{target}\n")
    );
    s.fails_with(
        &["push", &format!("{addr}/test/pushed@{digest}")],
        "cannot push a digest reference",
    );

    // A tag that does not exist locally: the daemon's message (in the
    // stream from dockerd, as an HTTP error from pierd), exit 1.
    s.fails_with(
        &["push", &format!("{addr}/test/pushed:nope")],
        &format!("tag does not exist: {addr}/test/pushed:nope"),
    );

    // Logged out: the registry refuses, exit 1.
    s.ok(&["logout", addr], "");
    let out = s.run(&["push", &target], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// `pier build` sends every registry's credentials (docker's
/// `X-Registry-Config`); the daemon pulls a base image it lacks with them.
fn build_pulls_a_base_behind_a_login_with_the_stored_credentials(s: &Setup) {
    let addr = s.registry.addr.as_str();
    s.seed("test/base", "v1", "private base\n");
    let ctx = s.env.dir.path().join("build-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {addr}/test/base:v1\nLABEL built=yes\n"),
    )
    .unwrap();
    let ctx = ctx.to_str().unwrap();
    // Not logged in: the registry refuses the daemon's pull.
    let out = s.run(&["build", "-t", "built-private", ctx], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    s.login();
    s.ok(&["build", "-t", "built-private", ctx], "");
    let label = s.ok(
        &[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"built\"}}",
            "built-private",
        ],
        "",
    );
    assert_eq!(label, "yes\n");
    s.ok(&["image", "inspect", &format!("{addr}/test/base:v1")], "");
}

fn pull_all_tags_fetches_every_tag(s: &Setup) {
    let addr = s.registry.addr.as_str();
    s.seed("test/many", "a", "tag a\n");
    s.seed("test/many", "b", "tag b\n");
    s.login();
    let repo = format!("{addr}/test/many");
    s.fails_with(
        &["pull", "-a", &format!("{repo}:a")],
        "tag can't be used with --all-tags/-a",
    );
    let out = s.ok(&["pull", "--all-tags", &repo], "");
    assert!(out.ends_with(&format!("{repo}\n")), "{out}");
    assert!(s.image_exists(&format!("{repo}:a")), "{out}");
    assert!(s.image_exists(&format!("{repo}:b")), "{out}");
}

/// Installs the fake `docker-credential-pier-test` of pier-cli's unit
/// tests (secrets in files under `dir/helper-store`) in `dir/helper-bin`;
/// returns that directory.
fn write_fake_helper(dir: &Path) -> PathBuf {
    let bin = dir.join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-pier-test");
    std::fs::write(
        &helper,
        include_str!("../../cli/src/credentials_test_helper.sh"),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn credential_helpers_hold_the_secret(s: &Setup) {
    let addr = s.registry.addr.as_str();
    let bin = write_fake_helper(s.env.dir.path());
    std::fs::create_dir_all(s.config_dir()).unwrap();
    std::fs::write(
        s.config_dir().join("config.json"),
        r#"{"credHelpers": {"other.example": "missing-helper"}, "credsStore": "pier-test"}"#,
    )
    .unwrap();
    let with_helper = |args: &[&str], stdin: &str| -> Output {
        let mut cmd = s.pier();
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.env("PATH", std::env::join_paths(paths).unwrap());
        run_with_stdin(cmd, args, stdin)
    };
    let out = with_helper(&["login", "-u", USER, "--password-stdin", addr], PASS);
    assert!(out.status.success(), "{out:?}");
    assert!(!text(&out.stderr).contains("unencrypted"), "{out:?}");
    let raw = std::fs::read_to_string(s.config_dir().join("config.json")).unwrap();
    assert!(!raw.contains(PASS), "{raw}");
    assert_eq!(s.config()["auths"][addr], serde_json::json!({}));
    let stored = std::fs::read_to_string(
        s.env
            .dir
            .path()
            .join("helper-store")
            .join(addr.replace(':', "_")),
    )
    .unwrap();
    assert!(stored.contains(PASS), "{stored}");

    s.seed("test/helped", "v1", "helped\n");
    let reference = format!("{addr}/test/helped:v1");
    let out = with_helper(&["pull", "-q", &reference], "");
    assert!(out.status.success(), "{out:?}");

    let out = with_helper(&["logout", addr], "");
    assert!(out.status.success(), "{out:?}");
    assert!(!s
        .env
        .dir
        .path()
        .join("helper-store")
        .join(addr.replace(':', "_"))
        .exists());
    // Without the helper on PATH: a clear error naming it.
    s.fails_with(&["pull", &reference], "docker-credential-pier-test");
}
