//! `pier build` end to end (issue 9): the CLI's flags as docker's, built
//! images that run and go through a registry, the content-addressed cache
//! (kept across pierd restarts, invalidated from the changed step on
//! only), multi-stage builds with parallel stages, .dockerignore, the
//! Dockerfile reference's instructions, history and one layer per
//! filesystem step, and bad input refused with located messages and
//! nothing left behind. Expectations are docker's (BuildKit's where the
//! builders differ), checked against dockerd 20.10; build_docker.rs
//! compares the results with docker's directly.

#[path = "build_support/mod.rs"]
mod support;

use pier_testutil::PierEnv;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{both, stdout, tar_entries, write_context, Entry, Saved};

/// A pier environment with busybox imported; its containers are removed on
/// drop (PierEnv's drop does the rest).
struct T {
    env: PierEnv,
}

impl T {
    fn new() -> T {
        let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
        env.import_busybox("busybox");
        T { env }
    }

    fn ctx(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        write_context(&self.env.dir.path().join(name), files)
    }

    fn build(&self, args: &[&str]) -> Output {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        self.env.run(&all)
    }

    /// `pier build ARGS`, which must succeed; returns its output.
    fn build_ok(&self, args: &[&str]) -> Output {
        let out = self.build(args);
        assert!(
            out.status.success(),
            "pier build {args:?} failed ({}):\n{}",
            out.status,
            both(&out)
        );
        out
    }

    /// `pier build ARGS` sending the context as a tar (as to a remote
    /// daemon) instead of naming the directory; must succeed.
    fn build_tar_ok(&self, args: &[&str]) -> Output {
        let out = self
            .env
            .pier()
            .arg("build")
            .args(args)
            .env("PIER_BUILD_CONTEXT", "tar")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pier build (tar) {args:?} failed ({}):\n{}",
            out.status,
            both(&out)
        );
        out
    }

    /// `pier build ARGS`, which must fail; returns both streams.
    fn build_fails(&self, args: &[&str]) -> String {
        let out = self.build(args);
        assert!(
            !out.status.success(),
            "pier build {args:?} succeeded but must fail:\n{}",
            both(&out)
        );
        both(&out)
    }

    fn id(&self, image: &str) -> String {
        self.env
            .ok(&["image", "inspect", "-f", "{{.Id}}", image])
            .trim()
            .to_string()
    }

    fn exists(&self, image: &str) -> bool {
        self.env.run(&["image", "inspect", image]).status.success()
    }

    fn config(&self, image: &str) -> serde_json::Value {
        let out = self
            .env
            .ok(&["image", "inspect", "-f", "{{json .Config}}", image]);
        serde_json::from_str(out.trim()).expect("Config is JSON")
    }

    fn saved(&self, image: &str) -> Saved {
        let out = self.env.pier().args(["save", image]).output().unwrap();
        assert!(out.status.success(), "pier save {image}: {}", both(&out));
        Saved::parse(&out.stdout)
    }

    /// The image's files, from the export of a container created from it.
    fn files(&self, image: &str) -> BTreeMap<String, Entry> {
        let name = format!("files-{}", std::process::id());
        self.env.ok(&["create", "--name", &name, image, "true"]);
        let out = self.env.pier().args(["export", &name]).output().unwrap();
        self.env.ok(&["rm", &name]);
        assert!(out.status.success(), "pier export: {}", both(&out));
        tar_entries(&out.stdout)
    }

    /// `pier run --rm IMAGE ARGS`'s stdout.
    fn run(&self, image: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "--rm", image];
        all.extend_from_slice(args);
        self.env.ok(&all)
    }

    fn cat(&self, image: &str, path: &str) -> String {
        self.run(image, &["cat", path])
    }
}

impl Drop for T {
    fn drop(&mut self) {
        let out = self.env.run(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.env.run(&["rm", "-f", id]);
        }
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// How many progress lines say a step came from the cache.
fn cached_steps(out: &str) -> usize {
    out.lines().filter(|l| l.contains("CACHED")).count()
}

#[test]
fn built_image_runs_under_every_tag() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            ("hello.txt", "hello\n"),
            (
                "Dockerfile",
                "FROM busybox\nWORKDIR /app\nCOPY hello.txt .\nRUN echo built > /app/built.txt\nCMD [\"cat\", \"/app/hello.txt\", \"/app/built.txt\"]\n",
            ),
        ],
    );
    t.build_ok(&["-t", "one", "-t", "two:v2", p(&ctx)]);
    assert_eq!(t.env.ok(&["run", "--rm", "one"]), "hello\nbuilt\n");
    assert_eq!(t.env.ok(&["run", "--rm", "two:v2"]), "hello\nbuilt\n");
    assert_eq!(t.id("one"), t.id("two:v2"));
    assert_eq!(t.config("one")["WorkingDir"], "/app");
}

#[test]
fn quiet_prints_only_the_id_and_iidfile_holds_it() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo noisy-$((40+2))\n")],
    );
    let iid = t.env.dir.path().join("iid");
    let out = t.build_ok(&["-q", "--iidfile", p(&iid), "-t", "quiet", p(&ctx)]);
    let printed = stdout(&out);
    let id = printed.trim();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "-q must print only the image id, as docker; printed {printed:?}"
    );
    assert!(
        !both(&out).contains("noisy-42"),
        "-q must not show RUN output: {}",
        both(&out)
    );
    // As docker: the iidfile holds the id without a newline.
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    assert_eq!(t.id("quiet"), id);
}

#[test]
fn dockerfile_from_f_stdin_and_tar_contexts() {
    let t = T::new();
    // -f naming a file inside the context, under another name.
    let ctx = t.ctx(
        "ctx",
        &[
            ("f.txt", "from-context\n"),
            ("sub/Build.df", "FROM busybox\nCOPY f.txt /f\n"),
        ],
    );
    t.build_ok(&["-f", p(&ctx.join("sub/Build.df")), "-t", "by-f", p(&ctx)]);
    assert_eq!(t.cat("by-f", "/f"), "from-context\n");

    // -f outside the context, as docker allows.
    let outside = t.env.dir.path().join("Outside.df");
    std::fs::write(&outside, "FROM busybox\nCOPY f.txt /g\n").unwrap();
    t.build_ok(&["-f", p(&outside), "-t", "outside-f", p(&ctx)]);
    assert_eq!(t.cat("outside-f", "/g"), "from-context\n");

    // -f - : the Dockerfile from stdin, the context from the directory.
    let out = t
        .env
        .pier()
        .args(["build", "-f", "-", "-t", "stdin-f", p(&ctx)])
        .stdin(std::fs::File::open(&outside).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "build -f -: {}", both(&out));
    assert_eq!(t.cat("stdin-f", "/g"), "from-context\n");

    // CONTEXT '-' with a Dockerfile on stdin: no context.
    let df = t.env.dir.path().join("Plain.df");
    std::fs::write(&df, "FROM busybox\nRUN echo no-context > /n\n").unwrap();
    let out = t
        .env
        .pier()
        .args(["build", "-t", "stdin-df", "-"])
        .stdin(std::fs::File::open(&df).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "build - < Dockerfile: {}", both(&out));
    assert_eq!(t.cat("stdin-df", "/n"), "no-context\n");

    // CONTEXT '-' with a tar on stdin: the tar is the context.
    let tar = t.env.dir.path().join("ctx.tar");
    let tarctx = t.ctx(
        "tarctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY t.txt /t\n"),
            ("t.txt", "in-tar\n"),
        ],
    );
    let st = Command::new("tar")
        .arg("-C")
        .arg(&tarctx)
        .args(["-cf", p(&tar), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let out = t
        .env
        .pier()
        .args(["build", "-t", "stdin-tar", "-"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "build - < ctx.tar: {}", both(&out));
    assert_eq!(t.cat("stdin-tar", "/t"), "in-tar\n");
}

#[test]
fn build_args_target_and_labels() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            r#"ARG BASE=busybox
FROM $BASE AS first
RUN echo "[$BASE]" > /base-before
ARG BASE
RUN echo "[$BASE]" > /base-after
ARG GREETING=hi
ARG DEFAULTED=dflt
RUN echo "$GREETING $DEFAULTED" > /greeting
RUN echo "proxy=$HTTP_PROXY undeclared=[$NOTDECLARED]" > /predefined
LABEL from=first
FROM first AS second
RUN echo second > /second
"#,
        )],
    );
    t.build_ok(&[
        "--build-arg",
        "GREETING=hello",
        "--build-arg",
        "HTTP_PROXY=http://proxy.invalid:3128",
        "--build-arg",
        "NOTDECLARED=x",
        "--target",
        "first",
        "--label",
        "extra=yes",
        "-t",
        "args",
        p(&ctx),
    ]);
    // As docker: a global ARG is seen by FROM, and in a stage only once
    // declared there again (with its global value).
    assert_eq!(t.cat("args", "/base-before"), "[]\n");
    assert_eq!(t.cat("args", "/base-after"), "[busybox]\n");
    assert_eq!(t.cat("args", "/greeting"), "hello dflt\n");
    // Predefined ARGs need no declaration; others do.
    assert_eq!(
        t.cat("args", "/predefined"),
        "proxy=http://proxy.invalid:3128 undeclared=[]\n"
    );
    // --target stops at that stage.
    let out = t.env.run(&["run", "--rm", "args", "ls", "/second"]);
    assert!(!out.status.success(), "--target first built stage second");
    let config = t.config("args");
    assert_eq!(config["Labels"]["from"], "first");
    assert_eq!(config["Labels"]["extra"], "yes");
    // Build args do not persist in the image's environment.
    let env = config["Env"].to_string();
    assert!(
        !env.contains("GREETING") && !env.contains("HTTP_PROXY"),
        "ARG values leaked into Env: {env}"
    );

    // A missing --target stage is refused, naming it (as docker).
    let msg = t.build_fails(&["--target", "nosuchstage", p(&ctx)]);
    assert!(msg.contains("nosuchstage"), "{msg}");
}

/// A Dockerfile whose RUN steps print markers that the instruction text
/// does not contain (the shell computes them), and record a fresh uuid.
const CACHE_DF: &str = "FROM busybox
COPY a.txt /a.txt
RUN echo ran-$((1+1)) && cat /proc/sys/kernel/random/uuid > /u1
COPY b.txt /b.txt
RUN echo ran-$((2+2)) && cat /proc/sys/kernel/random/uuid > /u2
CMD [\"cat\", \"/b.txt\"]
";

fn cache_ctx(t: &T) -> PathBuf {
    t.ctx(
        "cache",
        &[
            ("Dockerfile", CACHE_DF),
            ("a.txt", "a1\n"),
            ("b.txt", "b1\n"),
        ],
    )
}

#[test]
fn second_build_is_all_cached() {
    let t = T::new();
    let ctx = cache_ctx(&t);
    let first = t.build_ok(&["-t", "c1", p(&ctx)]);
    assert!(both(&first).contains("ran-2"), "{}", both(&first));
    let second = t.build_ok(&["-t", "c2", p(&ctx)]);
    let out = both(&second);
    assert!(
        !out.contains("ran-2") && !out.contains("ran-4"),
        "a second build re-ran a RUN step:\n{out}"
    );
    // As BuildKit: every filesystem step says CACHED (config-only steps
    // such as CMD need no cache).
    assert!(
        cached_steps(&out) >= 4,
        "every COPY and RUN must say CACHED:\n{out}"
    );
    assert_eq!(t.id("c1"), t.id("c2"));
}

#[test]
fn touch_keeps_the_cache() {
    let t = T::new();
    let ctx = cache_ctx(&t);
    t.build_ok(&["-t", "c1", p(&ctx)]);
    // Content, not mtimes: a new mtime (and a chmod back and forth) is no change.
    for f in ["a.txt", "b.txt", "Dockerfile"] {
        let st = Command::new("touch")
            .args(["-d", "2001-02-03 04:05:06"])
            .arg(ctx.join(f))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = both(&t.build_ok(&["-t", "c2", p(&ctx)]));
    assert!(
        !out.contains("ran-2") && !out.contains("ran-4"),
        "touch invalidated the cache:\n{out}"
    );
    assert_eq!(t.id("c1"), t.id("c2"));
}

#[test]
fn changed_file_reruns_from_the_copy_that_reads_it() {
    let t = T::new();
    let ctx = cache_ctx(&t);
    t.build_ok(&["-t", "v1", p(&ctx)]);
    let u1 = t.cat("v1", "/u1");
    let u2 = t.cat("v1", "/u2");

    std::fs::write(ctx.join("b.txt"), "b2\n").unwrap();
    let out = both(&t.build_ok(&["-t", "v2", p(&ctx)]));
    assert!(
        !out.contains("ran-2"),
        "the step before COPY b.txt re-ran:\n{out}"
    );
    assert!(
        out.contains("ran-4"),
        "the RUN after COPY b.txt did not re-run:\n{out}"
    );
    assert_eq!(t.cat("v2", "/u1"), u1);
    assert_ne!(t.cat("v2", "/u2"), u2);
    assert_eq!(t.env.ok(&["run", "--rm", "v2"]), "b2\n");

    // The first file: everything from its COPY on.
    std::fs::write(ctx.join("a.txt"), "a2\n").unwrap();
    t.build_ok(&["-t", "v3", p(&ctx)]);
    assert_ne!(t.cat("v3", "/u1"), u1);

    // Back to the first contents: the first build's steps are found again.
    std::fs::write(ctx.join("a.txt"), "a1\n").unwrap();
    std::fs::write(ctx.join("b.txt"), "b1\n").unwrap();
    let out = both(&t.build_ok(&["-t", "v4", p(&ctx)]));
    assert!(!out.contains("ran-2") && !out.contains("ran-4"), "{out}");
    assert_eq!(t.id("v4"), t.id("v1"));

    // --no-cache runs everything again.
    let out = both(&t.build_ok(&["--no-cache", "-t", "v5", p(&ctx)]));
    assert!(out.contains("ran-2") && out.contains("ran-4"), "{out}");
    assert_ne!(t.cat("v5", "/u1"), u1);
}

#[test]
fn cache_survives_a_pierd_restart() {
    let t = T::new();
    let ctx = cache_ctx(&t);
    t.build_ok(&["-t", "before", p(&ctx)]);
    t.env.kill_daemon();
    let out = both(&t.build_ok(&["-t", "after", p(&ctx)]));
    assert!(
        !out.contains("ran-2") && !out.contains("ran-4"),
        "the cache was lost with pierd:\n{out}"
    );
    assert_eq!(t.id("before"), t.id("after"));
}

#[test]
fn multi_stage_copy_from_runs_independent_stages_in_parallel() {
    let t = T::new();
    let port = pier_testutil::registry::free_port();
    // The two first stages meet over the host's loopback (RUN steps use
    // the host's network): the listener waits for the talker, so a
    // builder that ran them one after the other would fail here. (The
    // connection goes to a program of its own: busybox's plain `nc -l`
    // may end at its empty stdin before the talker's bytes arrive.)
    let df = format!(
        r#"FROM busybox AS listener
RUN printf '#!/bin/sh\ncat > /got\n' > /recv && chmod +x /recv && timeout 120 nc -l -p {port} -e /recv && grep -q hello /got
FROM busybox AS talker
RUN i=0; until echo hello | nc 127.0.0.1 {port}; do i=$((i+1)); [ $i -lt 1200 ] || exit 1; sleep 0.1; done; echo sent > /sent
FROM busybox AS unused
RUN exit 1
FROM busybox
COPY --from=listener /got /from-listener
COPY --from=talker /sent /from-talker
COPY --from=1 /sent /by-index
COPY --from=busybox /etc/passwd /from-image
"#
    );
    let ctx = t.ctx("ctx", &[("Dockerfile", &df)]);
    t.build_ok(&["-t", "multi", p(&ctx)]);
    assert_eq!(t.cat("multi", "/from-listener"), "hello\n");
    assert_eq!(t.cat("multi", "/from-talker"), "sent\n");
    assert_eq!(t.cat("multi", "/by-index"), "sent\n");
    assert!(t.cat("multi", "/from-image").starts_with("root:"));
    // The final image has its own layers only: busybox's and one per COPY.
    assert_eq!(t.saved("multi").diff_ids(), 5);
}

#[test]
fn dockerignore_excludes_and_reincludes() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (
                ".dockerignore",
                "# comment\n*.log\n!keep.log\nsecret/\n**/*.tmp\nDockerfile\n",
            ),
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx\nCOPY inlink /followed\n",
            ),
            ("a.txt", "a\n"),
            ("b.log", "b\n"),
            ("keep.log", "k\n"),
            ("secret/s", "s\n"),
            ("sub/c.tmp", "c\n"),
            ("sub/d.txt", "d\n"),
            ("sub/deep/e.tmp", "e\n"),
            ("real.txt", "r\n"),
            ("inlink", "->real.txt"),
        ],
    );
    t.build_ok(&["-t", "ignored", p(&ctx)]);
    let files = t.files("ignored");
    let under: Vec<&str> = files
        .keys()
        .filter(|k| k.starts_with("/ctx/"))
        .map(String::as_str)
        .collect();
    // As docker (BuildKit): an ignored Dockerfile is still used, but not
    // copied; symlinks are copied as links by COPY . and followed when
    // named as the source.
    assert_eq!(
        under,
        [
            "/ctx/.dockerignore",
            "/ctx/a.txt",
            "/ctx/inlink",
            "/ctx/keep.log",
            "/ctx/real.txt",
            "/ctx/sub",
            "/ctx/sub/d.txt",
            "/ctx/sub/deep",
        ]
    );
    assert_eq!(files["/ctx/inlink"].kind, 'l');
    assert_eq!(files["/ctx/inlink"].data, b"real.txt");
    assert_eq!(files["/followed"].kind, 'f');
    assert_eq!(files["/followed"].data, b"r\n");
}

#[test]
fn instructions_set_the_config() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            r#"# syntax=docker/dockerfile:1
ARG TAG=latest
FROM --platform=linux/amd64 busybox:${TAG} AS base
SHELL ["/bin/sh", "-c"]
ENV A=1 B="two words"
ENV C $A-x
ENV D=${A:+set} E=${UNSET:-fallback}
LABEL l1=v1 "l 2"="v 2"
LABEL multi=a \
      cont=b
EXPOSE 80 443/udp
USER nobody
RUN echo "uid=$(id -u)"
USER root
WORKDIR /w
WORKDIR sub
RUN pwd > /pwd
VOLUME ["/data"]
VOLUME /data2 /data3
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=2 CMD true
ONBUILD RUN echo onbuild
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
USER nobody:nogroup
"#,
        )],
    );
    let out = both(&t.build_ok(&["-t", "config", p(&ctx)]));
    assert!(
        out.contains("uid=65534"),
        "RUN did not run as USER nobody:\n{out}"
    );
    let c = t.config("config");
    let env: Vec<String> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for want in [
        "A=1",
        "B=two words",
        "C=1-x",
        "D=set",
        "E=fallback",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(env.contains(&want.to_string()), "{want} not in {env:?}");
    }
    assert_eq!(c["Labels"]["l1"], "v1");
    assert_eq!(c["Labels"]["l 2"], "v 2");
    assert_eq!(c["Labels"]["multi"], "a");
    assert_eq!(c["Labels"]["cont"], "b");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "443/udp": {}})
    );
    assert_eq!(c["User"], "nobody:nogroup");
    assert_eq!(c["WorkingDir"], "/w/sub");
    assert_eq!(
        c["Volumes"],
        serde_json::json!({"/data": {}, "/data2": {}, "/data3": {}})
    );
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64,
            "Timeout": 3_000_000_000u64, "StartPeriod": 2_000_000_000u64, "Retries": 2})
    );
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo onbuild"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["echo hi"]));
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(t.run("config", &["cat /pwd"]), "/w/sub\n");
}

#[test]
fn run_forms_heredocs_and_shell() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            r#"FROM busybox
RUN ["/bin/sh", "-c", "echo exec > /exec"]
RUN ["echo", "$HOME"]
RUN echo "$0" > /shell-before
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "$0 $-" > /shell-after
RUN <<EOF
echo line1 > /heredoc
echo line2 >> /heredoc
EOF
RUN <<EOF sh
echo via-sh > /heredoc-sh
EOF
ENV GREETING=hello
COPY <<EOF /copied-heredoc
content ${GREETING}
EOF
COPY <<"EOF" /quoted-heredoc
content ${GREETING}
EOF
COPY <<-EOF <<EOT /many/
	tabbed
	EOF
second
EOT
RUN echo one \
    two > /continued
"#,
        )],
    );
    let out = both(&t.build_ok(&["-t", "forms", p(&ctx)]));
    // The exec form does not expand variables (no shell).
    assert!(
        out.contains("$HOME"),
        "exec-form RUN output missing:\n{out}"
    );
    assert_eq!(t.cat("forms", "/exec"), "exec\n");
    assert_eq!(t.cat("forms", "/shell-before"), "/bin/sh\n");
    assert!(t.cat("forms", "/shell-after").contains('e'));
    assert_eq!(t.cat("forms", "/heredoc"), "line1\nline2\n");
    assert_eq!(t.cat("forms", "/heredoc-sh"), "via-sh\n");
    // As BuildKit: COPY heredocs expand the build's variables (ENV, ARG)
    // unless the delimiter is quoted.
    assert_eq!(t.cat("forms", "/copied-heredoc"), "content hello\n");
    assert_eq!(t.cat("forms", "/quoted-heredoc"), "content ${GREETING}\n");
    assert_eq!(t.cat("forms", "/many/EOF"), "tabbed\n");
    assert_eq!(t.cat("forms", "/many/EOT"), "second\n");
    assert_eq!(t.cat("forms", "/continued"), "one two\n");
}

/// An uncompressed tar with `dir/inner.txt` (mode 0600, uid 1234) and a
/// gzipped copy, for ADD.
fn write_archives(dir: &Path) {
    let src = dir.join("archive-src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("dir/inner.txt"), "inner\n").unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args([
            "--owner=1234",
            "--group=1234",
            "--mode=u=rw,go=",
            "-cf",
            p(&dir.join("arch.tar")),
            "dir/inner.txt",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {0}/arch.tar > {0}/arch.tar.gz",
            dir.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(&src).unwrap();
}

#[test]
fn copy_and_add_semantics() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (
                "Dockerfile",
                r#"FROM busybox
COPY --chown=65534:65534 f.txt /owned/
COPY --chown=nobody f.txt /byname
COPY --chmod=755 f.txt /mode
COPY --link f.txt /linked
COPY dir /dircontents/
COPY dir /dircontents-noslash
COPY dir/*.txt /globbed/
COPY f.txt g.txt /multi/
COPY d?r/s*/ /qglob/
ADD arch.tar /extracted/
ADD arch.tar.gz /extracted-gz/
ADD f.txt /added
COPY arch.tar /not-extracted.tar
WORKDIR /rel
COPY f.txt relative
COPY --chown=1:2 dir /chowned
"#,
            ),
            ("f.txt", "f\n"),
            ("g.txt", "g\n"),
            ("dir/x.txt", "x\n"),
            ("dir/y.md", "y\n"),
            ("dir/sub/z.txt", "z\n"),
        ],
    );
    write_archives(&ctx);
    t.build_ok(&["-t", "copies", p(&ctx)]);
    let f = t.files("copies");
    let get = |path: &str| -> &Entry {
        f.get(path)
            .unwrap_or_else(|| panic!("{path} missing from the image"))
    };
    let owned = get("/owned/f.txt");
    assert_eq!((owned.uid, owned.gid, owned.mode), (65534, 65534, 0o644));
    assert_eq!((get("/byname").uid, get("/byname").gid), (65534, 65534));
    assert_eq!(get("/mode").mode, 0o755);
    assert_eq!(get("/linked").data, b"f\n");
    // A directory source copies its contents, not itself.
    for d in ["/dircontents", "/dircontents-noslash"] {
        assert_eq!(get(&format!("{d}/x.txt")).data, b"x\n");
        assert_eq!(get(&format!("{d}/sub/z.txt")).data, b"z\n");
        assert!(!f.contains_key(&format!("{d}/dir")));
    }
    assert_eq!(get("/globbed/x.txt").data, b"x\n");
    assert!(!f.contains_key("/globbed/y.md"));
    assert_eq!(get("/multi/f.txt").data, b"f\n");
    assert_eq!(get("/multi/g.txt").data, b"g\n");
    assert_eq!(get("/qglob/z.txt").data, b"z\n");
    // ADD extracts local tars (compressed too), keeping modes and owners.
    let inner = get("/extracted/dir/inner.txt");
    assert_eq!(
        (inner.data.as_slice(), inner.mode, inner.uid, inner.gid),
        (&b"inner\n"[..], 0o600, 1234, 1234)
    );
    assert_eq!(get("/extracted-gz/dir/inner.txt").data, b"inner\n");
    assert_eq!(get("/added").data, b"f\n");
    assert_eq!(get("/not-extracted.tar").kind, 'f');
    assert_eq!(get("/rel/relative").data, b"f\n");
    // Files copied from the context belong to root unless --chown says.
    assert_eq!((get("/multi/f.txt").uid, get("/multi/f.txt").gid), (0, 0));
    let ch = get("/chowned/sub/z.txt");
    assert_eq!((ch.uid, ch.gid), (1, 2));
    assert_eq!((get("/chowned/sub").uid, get("/chowned/sub").gid), (1, 2));
}

#[test]
fn scratch_image_holds_only_what_was_copied() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY f.txt /f\nCOPY dir /d\nCMD [\"/f\"]\n",
            ),
            ("f.txt", "f\n"),
            ("dir/x", "x\n"),
        ],
    );
    t.build_ok(&["-t", "scratchy", p(&ctx)]);
    let saved = t.saved("scratchy");
    assert_eq!(saved.diff_ids(), 2, "one layer per COPY");
    let mut paths = Vec::new();
    for layer in &saved.layers {
        paths.extend(tar_entries(layer).into_keys());
    }
    paths.sort();
    assert_eq!(paths, ["/d", "/d/x", "/f"]);
}

#[test]
fn one_layer_per_filesystem_step_and_history() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nENV E=1\nRUN echo a > /a\nLABEL x=y\nCOPY f.txt /f\nEXPOSE 80\nUSER root\nCMD [\"sh\"]\n",
            ),
            ("f.txt", "f\n"),
        ],
    );
    t.build_ok(&["-t", "layers", p(&ctx)]);
    let base = t.saved("busybox");
    let s = t.saved("layers");
    assert_eq!(s.diff_ids(), base.diff_ids() + 2);
    assert_eq!(s.layers.len(), s.diff_ids());
    // The RUN's layer holds what it wrote and nothing else; so does COPY's
    // (as docker, parent directories may come along: BuildKit's RUN layer
    // has /etc, where the runtime's mount points were).
    let run_layer: Vec<String> = tar_entries(&s.layers[base.diff_ids()])
        .into_iter()
        .filter(|(_, e)| e.kind != 'd')
        .map(|(k, _)| k)
        .collect();
    assert_eq!(run_layer, ["/a"]);
    let copy_layer: Vec<String> = tar_entries(&s.layers[base.diff_ids() + 1])
        .into_keys()
        .collect();
    assert_eq!(copy_layer, ["/f"]);
    // History: the base's entries, then one per step; config-only steps are
    // empty_layer, and non-empty entries match the layers one to one.
    let h = s.history();
    let own = &h[base.history().len()..];
    let empty: Vec<bool> = own.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        empty,
        [true, false, true, false, true, true, true],
        "history: {own:?}"
    );
    assert_eq!(h.iter().filter(|(_, e)| !e).count(), s.diff_ids());
    assert!(own[1].0.contains("echo a > /a"), "{own:?}");
    assert!(own[0].0.contains("ENV E=1"), "{own:?}");
    // pier history lists them too, newest first.
    let hist = t.env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "layers",
    ]);
    assert!(hist.lines().next().unwrap_or("").contains("CMD"), "{hist}");
    assert!(hist.contains("echo a > /a"), "{hist}");
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let t = T::new();
    let base = t.ctx(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo triggered > /onbuild\nONBUILD ENV FROMBASE=1\n",
        )],
    );
    t.build_ok(&["-t", "onbuild-base", p(&base)]);
    let child = t.ctx(
        "child",
        &[("Dockerfile", "FROM onbuild-base\nRUN cat /onbuild\n")],
    );
    t.build_ok(&["-t", "onbuild-child", p(&child)]);
    assert_eq!(t.cat("onbuild-child", "/onbuild"), "triggered\n");
    let c = t.config("onbuild-child");
    assert!(c["Env"].to_string().contains("FROMBASE=1"), "{c}");
    // As docker: triggers are not inherited by the grandchildren.
    assert!(
        c["OnBuild"].is_null() || c["OnBuild"] == serde_json::json!([]),
        "{c}"
    );
}

#[test]
fn built_image_pushes_and_pulls() {
    let Some(reg) = pier_testutil::DockerRegistry::start() else {
        pier_testutil::skip("docker-registry is not installed (Debian docker-registry)");
        return;
    };
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY m.txt /m\nRUN echo ran >> /m\nCMD [\"cat\", \"/m\"]\n",
            ),
            ("m.txt", "pushed\n"),
        ],
    );
    let name = format!("{}/build/app:v1", reg.addr);
    t.build_ok(&["-t", &name, p(&ctx)]);
    let id = t.id(&name);
    t.env.ok(&["push", &name]);
    t.env.ok(&["rmi", &name]);
    assert!(!t.exists(&name));
    t.env.ok(&["pull", &name]);
    assert_eq!(t.id(&name), id, "the pulled image is the built one");
    assert_eq!(t.env.ok(&["run", "--rm", &name]), "pushed\nran\n");
}

/// As `docker build`: a FROM (or `COPY --from`) image the store lacks is
/// pulled, its pull's lines in the FROM step's output; `--pull` pulls one
/// the store has; one the registry lacks fails the build at its line.
#[test]
fn a_base_image_the_store_lacks_is_pulled_as_docker_build_does() {
    let Some(reg) = pier_testutil::DockerRegistry::start() else {
        pier_testutil::skip("docker-registry is not installed (Debian docker-registry)");
        return;
    };
    let t = T::new();
    let base = format!("{}/base/bb:1", reg.addr);
    t.env.ok(&["tag", "busybox", &base]);
    t.env.ok(&["push", &base]);
    t.env.ok(&["rmi", &base]);
    assert!(!t.exists(&base));
    // Two stages FROM the missing base (built side by side: one pull).
    let dockerfile = format!(
        "FROM {base} AS a\nRUN echo a > /a\nFROM {base}\nCOPY --from=a /a /a\nCMD [\"cat\", \"/a\"]\n"
    );
    let ctx = t.ctx("ctx", &[("Dockerfile", &dockerfile)]);
    let out = both(&t.build_ok(&["-t", "from-reg", p(&ctx)]));
    assert!(out.contains("1: Pulling from base/bb"), "{out}");
    assert_eq!(out.matches("Pulling from").count(), 1, "{out}");
    // Its one layer is busybox's, which the store has.
    assert!(out.contains(": Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {base}")),
        "{out}"
    );
    assert!(t.exists(&base));
    assert_eq!(t.env.ok(&["run", "--rm", "from-reg"]), "a\n");
    // Present now: not pulled again, unless --pull.
    let again = both(&t.build_ok(&["--no-cache", "-t", "from-reg", p(&ctx)]));
    assert!(!again.contains("Pulling from"), "{again}");
    let pulled = both(&t.build_ok(&["--pull", "-t", "from-reg", p(&ctx)]));
    assert!(
        pulled.contains(&format!("Status: Image is up to date for {base}")),
        "{pulled}"
    );
    // A base the registry does not have.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nFROM {}/base/none:1\n", reg.addr),
    )
    .unwrap();
    let msg = t.build_fails(&[p(&ctx)]);
    assert!(
        msg.contains("base/none") && names_line(&msg, "Dockerfile", 2),
        "{msg}"
    );
}

// ---- bad input ----------------------------------------------------------

/// Whether `out` points at line `n` of `file`.
fn names_line(out: &str, file: &str, n: usize) -> bool {
    out.contains(file)
        && (out.contains(&format!("line {n}")) || out.contains(&format!("{file}:{n}")))
}

#[test]
fn syntax_error_names_the_file_and_line() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Broken.Dockerfile",
            "FROM busybox\nRUN echo ok\nCOPY onlyone\n",
        )],
    );
    let df = ctx.join("Broken.Dockerfile");
    let msg = t.build_fails(&["-f", p(&df), "-t", "broken", p(&ctx)]);
    assert!(names_line(&msg, "Broken.Dockerfile", 3), "{msg}");
    assert!(!t.exists("broken"));

    for (text, line) in [
        ("FROM busybox\nENV\n", 2),
        ("FROM busybox\nONBUILD FROM busybox\n", 2),
        ("RUN echo no from\n", 1),
        ("FROM busybox\nHEALTHCHECK --interval=nope CMD true\n", 2),
        ("FROM busybox\nCOPY --bogus=1 a b\n", 2),
    ] {
        std::fs::write(&df, text).unwrap();
        let msg = t.build_fails(&["-f", p(&df), p(&ctx)]);
        assert!(
            names_line(&msg, "Broken.Dockerfile", line),
            "{text:?}: no file and line {line} in:\n{msg}"
        );
    }
}

#[test]
fn unknown_instruction_is_refused_with_its_line() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[("Dockerfile", "FROM busybox\n\n# comment\nFOO bar\n")],
    );
    let msg = t.build_fails(&["-t", "unknown", p(&ctx)]);
    assert!(
        msg.to_lowercase().contains("unknown instruction") && msg.to_uppercase().contains("FOO"),
        "{msg}"
    );
    assert!(names_line(&msg, "Dockerfile", 4), "{msg}");
    assert!(!t.exists("unknown"));
}

#[test]
fn copy_outside_the_context_is_refused() {
    let t = T::new();
    std::fs::write(t.env.dir.path().join("outside.txt"), "SECRET-OUTSIDE\n").unwrap();
    let ctx = t.ctx(
        "ctx",
        &[("Dockerfile", "FROM busybox\nCOPY ../outside.txt /o\n")],
    );
    let msg = t.build_fails(&["-t", "escaped", p(&ctx)]);
    assert!(msg.contains("outside.txt"), "{msg}");
    assert!(!msg.contains("SECRET-OUTSIDE"));
    assert!(!t.exists("escaped"));
    // Nor by an absolute path that happens to exist on the host.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox\nCOPY {} /o\n",
            t.env.dir.path().join("outside.txt").display()
        ),
    )
    .unwrap();
    t.build_fails(&["-t", "escaped", p(&ctx)]);
    assert!(!t.exists("escaped"));
}

#[test]
fn copy_through_symlinks_leaving_the_context_is_refused() {
    let t = T::new();
    let outside = t.env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "SECRET-LINKED\n").unwrap();
    let ctx = t.ctx(
        "ctx",
        &[
            ("abs", &format!("->{}", outside.display())),
            ("rel", "->../outside"),
            ("file", &format!("->{}/secret", outside.display())),
        ],
    );
    // As docker: symlinks resolve inside the context, where these point at
    // nothing, so each COPY fails and nothing of the host gets in.
    for src in ["abs/secret", "rel/secret", "abs", "rel", "file"] {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM busybox\nCOPY {src} /s\n"),
        )
        .unwrap();
        let out = t.build(&["-t", "linked", p(&ctx)]);
        assert!(
            !out.status.success(),
            "COPY {src} through a symlink out of the context succeeded:\n{}",
            both(&out)
        );
        assert!(!both(&out).contains("SECRET-LINKED"));
        assert!(!t.exists("linked"));
    }
}

#[test]
fn missing_stage_is_refused() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS one\nRUN true\nFROM busybox\nCOPY --from=nosuchstage /x /x\n",
        )],
    );
    let msg = t.build_fails(&["-t", "nostage", p(&ctx)]);
    assert!(msg.contains("nosuchstage"), "{msg}");
    assert!(!t.exists("nostage"));
    // A stage index that does not exist (as docker: only earlier stages).
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox AS one\nCOPY --from=1 /x /x\nFROM busybox\n",
    )
    .unwrap();
    t.build_fails(&["-t", "nostage", p(&ctx)]);
    assert!(!t.exists("nostage"));
}

/// Every path under `root`, relative.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&d))
        .map(str::to_string)
        .collect()
}

#[test]
fn failing_run_shows_its_output_and_code_and_leaves_nothing() {
    let t = T::new();
    let tmp = t.env.dir.path().join("tmpdir");
    std::fs::create_dir(&tmp).unwrap();
    let ok = t.ctx("ok", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    let bad = t.ctx(
        "bad",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo out-marker-$((40+2)); echo err-marker-$((50+1)) >&2; exit 3\n",
        )],
    );
    // pierd is started by this first build, with TMPDIR in the test's dir.
    let out = t
        .env
        .pier()
        .env("TMPDIR", &tmp)
        .args(["build", "-t", "fine", p(&ok)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let before = (tree(&t.env.data_root), tree(&t.env.exec_root), tree(&tmp));

    let out = t
        .env
        .pier()
        .env("TMPDIR", &tmp)
        .args(["build", "-t", "failed", p(&bad)])
        .output()
        .unwrap();
    let msg = both(&out);
    assert!(!out.status.success(), "a failing RUN built:\n{msg}");
    assert!(
        msg.contains("out-marker-42") && msg.contains("err-marker-51"),
        "{msg}"
    );
    assert!(
        msg.contains("code: 3"),
        "the exit code is not shown:\n{msg}"
    );
    assert!(!t.exists("failed"), "a failed build tagged its image");

    assert_eq!(t.env.ok(&["ps", "-aq"]), "", "a build container is left");
    assert_eq!(mounts_under(t.env.dir.path()), Vec::<String>::new());
    let after = (tree(&t.env.data_root), tree(&t.env.exec_root), tree(&tmp));
    let new = |b: &Vec<String>, a: &Vec<String>| -> Vec<String> {
        a.iter().filter(|p| !b.contains(p)).cloned().collect()
    };
    assert_eq!(
        new(&before.0, &after.0),
        Vec::<String>::new(),
        "left in the data root"
    );
    assert_eq!(
        new(&before.1, &after.1),
        Vec::<String>::new(),
        "left in the exec root"
    );
    assert_eq!(after.2, Vec::<String>::new(), "left in TMPDIR");
    // The builder still works after a failure.
    t.build_ok(&["-t", "fine2", p(&ok)]);
}

#[test]
fn unreadable_context_file_is_refused() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx\n"),
            ("ok.txt", "ok\n"),
            ("unreadable.txt", "hidden\n"),
        ],
    );
    let f = ctx.join("unreadable.txt");
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if !pier_testutil::dockerd::have("setpriv") {
        pier_testutil::skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE");
        return;
    }
    // pierd runs with every capability; the CLI, which reads the context
    // as the user, runs without the ones that let root read anything.
    t.env.ok(&["images"]);
    let cmd = t.env.pier();
    let cli = cmd.get_program().to_owned();
    let out = Command::new("setpriv")
        .args([
            "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search",
        ])
        .arg(cli)
        .args(["build", "-t", "unreadable", p(&ctx)])
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env_remove("PIER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let msg = both(&out);
    // As docker's classic builder ("no permission to read from '...'");
    // BuildKit 20.10 silently copies an empty file instead.
    assert!(
        !out.status.success(),
        "a context with an unreadable file built:\n{msg}"
    );
    assert!(
        msg.contains("unreadable.txt"),
        "the file is not named:\n{msg}"
    );
    assert!(msg.to_lowercase().contains("permission"), "{msg}");
    assert!(!t.exists("unreadable"));
}

#[test]
fn huge_sparse_context_builds_without_buffering_it() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY small.txt /small\nRUN cat /small\n",
            ),
            ("small.txt", "small\n"),
        ],
    );
    let big = std::fs::File::create(ctx.join("big")).unwrap();
    big.set_len(2 << 30).unwrap();
    drop(big);
    t.env.ok(&["images"]); // a fresh pierd: its peak RSS is this build's
    let pid = t.env.daemon_pid().expect("pierd runs");
    // Read in place (only what COPY names is read), then sent as a tar
    // (streamed by the CLI, unpacked by pierd as it comes).
    t.build_ok(&["-t", "huge", p(&ctx)]);
    assert_eq!(t.cat("huge", "/small"), "small\n");
    t.build_tar_ok(&["--no-cache", "-t", "huge-sent", p(&ctx)]);
    assert_eq!(t.cat("huge-sent", "/small"), "small\n");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        hwm_kib < 512 * 1024,
        "pierd peaked at {hwm_kib} KiB for a 2 GiB context: it buffers it"
    );
    // The CLI (a child of this test) must stream too.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert!(
        (ru.ru_maxrss as u64) < 512 * 1024,
        "a child (the pier CLI) peaked at {} KiB",
        ru.ru_maxrss
    );
}

#[test]
fn many_layers_build_and_run() {
    let t = T::new();
    // 60 RUN layers: more lower dirs than one page of overlay mount data
    // holds with long paths; docker's limit is 125.
    let mut df = String::from("FROM busybox\n");
    for i in 0..60 {
        df.push_str(&format!("RUN echo {i} >> /layers\n"));
    }
    df.push_str("CMD [\"wc\", \"-l\", \"/layers\"]\n");
    let ctx = t.ctx("ctx", &[("Dockerfile", &df)]);
    t.build_ok(&["-t", "deep", p(&ctx)]);
    assert_eq!(t.saved("deep").diff_ids(), 61);
    assert_eq!(t.env.ok(&["run", "--rm", "deep"]).trim(), "60 /layers");
}

#[test]
fn excluded_file_named_by_copy_is_refused() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            (".dockerignore", "secret.txt\n"),
            ("secret.txt", "SECRET-IGNORED\n"),
            ("Dockerfile", "FROM busybox\nCOPY secret.txt /s\n"),
        ],
    );
    // As docker: an excluded file is not in the context at all.
    let msg = t.build_fails(&["-t", "excluded", p(&ctx)]);
    assert!(msg.contains("secret.txt"), "{msg}");
    assert!(!t.exists("excluded"));
}

#[test]
fn failing_stage_fails_the_build_and_tags_nothing() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS bad\nRUN echo stage-failed-$((6*7)); exit 7\nFROM busybox AS good\nRUN sleep 1; echo fine > /fine\nFROM busybox\nCOPY --from=good /fine /fine\nCOPY --from=bad /etc/passwd /p\n",
        )],
    );
    let msg = t.build_fails(&["-t", "stagefail", p(&ctx)]);
    assert!(
        msg.contains("stage-failed-42") && msg.contains("code: 7"),
        "{msg}"
    );
    assert!(!t.exists("stagefail"));
    assert_eq!(t.env.ok(&["ps", "-aq"]), "");
    assert_eq!(mounts_under(t.env.dir.path()), Vec::<String>::new());
}

#[test]
fn concurrent_identical_builds_agree() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[
            ("f.txt", "f\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY f.txt /f\nRUN echo same > /same\nLABEL a=b\n",
            ),
        ],
    );
    let children: Vec<_> = (0..3)
        .map(|i| {
            t.env
                .pier()
                .args(["build", "-q", "-t", &format!("race{i}"), p(&ctx)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", both(&out));
    }
    for i in 0..3 {
        assert_eq!(t.cat(&format!("race{i}"), "/same"), "same\n");
    }
    // Once built, the cache gives every later build the same image.
    let a = t.id(stdout(&t.build_ok(&["-q", p(&ctx)])).trim());
    let b = t.id(stdout(&t.build_ok(&["-q", p(&ctx)])).trim());
    assert_eq!(a, b);
}

#[test]
fn interrupted_build_leaves_nothing_behind() {
    let t = T::new();
    // A sleep of a length no other test uses, to find its process.
    let secs = 1000 + std::process::id() % 8000;
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nRUN echo started-$((1+2)); sleep {secs}\n"),
        )],
    );
    let mut child = t
        .env
        .pier()
        .args(["build", "-t", "interrupted", p(&ctx)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the RUN step runs (its marker is printed).
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("started-3") {
                return true;
            }
        }
        false
    });
    let started = reader.join().unwrap();
    // SAFETY: signalling the CLI this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(started, "the RUN step never started");
    // pierd notices the client is gone and stops the step.
    let t0 = std::time::Instant::now();
    loop {
        let sleeping = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c == format!("sleep\0{secs}\0").as_bytes())
            })
            .count();
        let mounts = mounts_under(t.env.dir.path());
        if sleeping == 0 && mounts.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "60 s after the client went away: {sleeping} RUN processes, mounts {mounts:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!t.exists("interrupted"));
    assert!(t.env.daemon_pid().is_some(), "pierd died");
}

/// A tar whose entries try to leave the directory it is extracted into:
/// `..` paths, an absolute path, and a symlink to the host's /tmp with an
/// entry below it, and one well-behaved file.
fn write_evil_tar(path: &Path, tag: &str) {
    let script = format!(
        r#"
import io, tarfile, sys
t = tarfile.open(sys.argv[1], "w")
def add(name, data=b"evil\n"):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
add("ok.txt", b"ok\n")
add("../../../../../../../../tmp/pier-escape-dotdot-{tag}")
add("/tmp/pier-escape-abs-{tag}")
l = tarfile.TarInfo("link"); l.type = tarfile.SYMTYPE; l.linkname = "/tmp"; t.addfile(l)
add("link/pier-escape-link-{tag}")
h = tarfile.TarInfo("hard"); h.type = tarfile.LNKTYPE; h.linkname = "/etc/hostname"; t.addfile(h)
t.close()
"#
    );
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .status()
        .expect("python3");
    assert!(st.success());
}

#[test]
fn add_of_a_tar_never_writes_outside_its_destination() {
    let t = T::new();
    let tag = format!("{}", std::process::id());
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nADD evil.tar /dest/\nRUN ls -la /dest /tmp\n",
        )],
    );
    write_evil_tar(&ctx.join("evil.tar"), &tag);
    let out = t.build(&["-t", "evil", p(&ctx)]);
    // Failing or succeeding is the builder's choice; the host must be
    // untouched either way.
    for kind in ["dotdot", "abs", "link"] {
        let host = format!("/tmp/pier-escape-{kind}-{tag}");
        let there = Path::new(&host).exists();
        let _ = std::fs::remove_file(&host);
        assert!(
            !there,
            "ADD of a tar wrote {host} on the host:\n{}",
            both(&out)
        );
    }
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    if out.status.success() {
        let f = t.files("evil");
        assert_eq!(f["/dest/ok.txt"].data, b"ok\n");
        // A hard link may only point inside the archive's destination.
        if let Some(h) = f.get("/dest/hard") {
            assert!(
                hostname.is_empty() || h.data != hostname.as_bytes(),
                "the hard link copied the host's /etc/hostname"
            );
        }
    }
}

/// Whether a line is `#N REST` with N a number and REST matching `rest`.
fn step_line(out: &str, rest: impl Fn(&str) -> bool) -> bool {
    out.lines().any(|l| {
        l.strip_prefix('#')
            .and_then(|l| l.split_once(' '))
            .is_some_and(|(n, r)| n.parse::<u32>().is_ok() && rest(r))
    })
}

#[test]
fn progress_is_buildkit_plain_output() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one-$((0+1))\nFROM busybox AS named\nRUN echo two\nFROM busybox\nCOPY --from=0 /bin/sh /x\nCOPY --from=named /bin/sh /y\nCMD [\"x\"]\n",
        )],
    );
    let out = both(&t.build_ok(&["-t", "progress", p(&ctx)]));
    // As BuildKit's --progress=plain: stages by name, else stage-N.
    for want in [
        "[stage-0 2/2] RUN echo one-$((0+1))",
        "[named 2/2] RUN echo two",
        "[stage-2 2/3] COPY --from=0 /bin/sh /x",
        "[stage-2 3/3] COPY --from=named /bin/sh /y",
    ] {
        assert!(step_line(&out, |r| r == want), "no '#N {want}' in:\n{out}");
    }
    // RUN output with its time in the step, and each step's DONE.
    assert!(
        step_line(&out, |r| r
            .split_once(' ')
            .is_some_and(
                |(secs, text)| secs.parse::<f64>().is_ok() && text == "one-1"
            )),
        "no '#N SECS one-1' in:\n{out}"
    );
    assert!(
        step_line(&out, |r| r
            .strip_prefix("DONE ")
            .and_then(|s| s.strip_suffix('s'))
            .is_some_and(|s| s.parse::<f64>().is_ok())),
        "no '#N DONE SECSs' in:\n{out}"
    );
    let again = both(&t.build_ok(&["-t", "progress", p(&ctx)]));
    assert!(step_line(&again, |r| r == "CACHED"), "{again}");
    assert!(!again.contains("one-1"), "{again}");
}

#[test]
fn label_flags_go_on_the_final_image_over_its_labels() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nLABEL from=file keep=yes\nFROM busybox AS final\nLABEL final=1 from=final\n",
        )],
    );
    t.build_ok(&[
        "--label",
        "from=cli",
        "--label",
        "new=2",
        "-t",
        "labels",
        p(&ctx),
    ]);
    // As docker: --label wins over the Dockerfile's, on the final stage only.
    assert_eq!(
        t.config("labels")["Labels"],
        serde_json::json!({"final": "1", "from": "cli", "new": "2"})
    );
    // As docker: --target takes a stage name, not an index.
    let msg = t.build_fails(&["--target", "0", "-t", "by-index", p(&ctx)]);
    assert!(msg.contains('0'), "{msg}");
    assert!(!t.exists("by-index"));
}

#[test]
fn build_arg_change_invalidates_from_its_declaration_on() {
    let t = T::new();
    let ctx = t.ctx(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /u0\nARG V\nRUN cat /proc/sys/kernel/random/uuid > /u1\nARG W\nRUN cat /proc/sys/kernel/random/uuid > /u2\n",
        )],
    );
    let build = |tag: &str, args: &[&str]| -> Vec<String> {
        let mut all = vec!["-t", tag];
        all.extend_from_slice(args);
        all.push(p(&ctx));
        t.build_ok(&all);
        ["/u0", "/u1", "/u2"]
            .iter()
            .map(|f| t.cat(tag, f))
            .collect()
    };
    // As docker (checked with BuildKit 20.10): a build arg is part of the
    // key of the RUN steps after its ARG; an undeclared one of none.
    let a1 = build("a1", &["--build-arg", "V=1"]);
    let a2 = build("a2", &["--build-arg", "V=2"]);
    assert_eq!(a2[0], a1[0]);
    assert_ne!(a2[1], a1[1]);
    assert_ne!(a2[2], a1[2]);
    let a3 = build("a3", &["--build-arg", "V=1"]);
    assert_eq!(a3, a1, "V=1 again must find the first build's steps");
    let a4 = build("a4", &["--build-arg", "V=1", "--build-arg", "W=x"]);
    assert_eq!(a4[..2], a1[..2]);
    assert_ne!(a4[2], a1[2]);
    let a5 = build("a5", &["--build-arg", "V=1", "--build-arg", "UNUSED=z"]);
    assert_eq!(a5, a1, "an undeclared build arg changed the cache keys");
}

/// A context like dockerignore_excludes_and_reincludes's, with a hard
/// link and a nested directory.
fn in_place_ctx(t: &T) -> PathBuf {
    let ctx = t.ctx(
        "inplace",
        &[
            (".dockerignore", "*.log\n!keep.log\nsecret/\n**/*.tmp\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx\nCOPY inlink /followed\nRUN echo ran-$((40+2)) | tee /r\n",
            ),
            ("a.txt", "a\n"),
            ("b.log", "b\n"),
            ("keep.log", "k\n"),
            ("secret/s", "s\n"),
            ("sub/c.tmp", "c\n"),
            ("sub/d.txt", "d\n"),
            ("sub/deep/e.tmp", "e\n"),
            ("real.txt", "r\n"),
            ("inlink", "->real.txt"),
        ],
    );
    std::fs::hard_link(ctx.join("a.txt"), ctx.join("sub/a-link.txt")).unwrap();
    ctx
}

fn listing(files: &BTreeMap<String, support::Entry>) -> Vec<String> {
    files
        .iter()
        .filter(|(k, _)| k.starts_with("/ctx") || k.starts_with("/followed"))
        .map(|(k, e)| format!("{k} {e}"))
        .collect()
}

#[test]
fn a_context_read_in_place_gives_the_tar_contexts_image() {
    let t = T::new();
    let ctx = in_place_ctx(&t);
    t.build_tar_ok(&["-t", "sent", p(&ctx)]);
    let sent = listing(&t.files("sent"));
    // The same context read in place: the same step keys, so every step
    // comes from the first build and the image is the same.
    let out = both(&t.build_ok(&["-t", "inplace", p(&ctx)]));
    assert!(!out.contains("ran-42"), "{out}");
    assert!(cached_steps(&out) >= 3, "{out}");
    assert_eq!(t.id("sent"), t.id("inplace"));
    // Built afresh in place: the same files (.dockerignore honoured as
    // for the tar).
    t.build_ok(&["--no-cache", "-t", "fresh", p(&ctx)]);
    let fresh = listing(&t.files("fresh"));
    assert_eq!(fresh, sent);
    assert!(fresh.iter().any(|l| l.starts_with("/ctx/keep.log ")));
    assert!(fresh.iter().any(|l| l.starts_with("/ctx/sub/a-link.txt ")));
    for gone in [
        "/ctx/b.log ",
        "/ctx/secret",
        "/ctx/sub/c.tmp ",
        "/ctx/sub/deep/e.tmp ",
    ] {
        assert!(
            !fresh.iter().any(|l| l.starts_with(gone)),
            "{gone} copied: {fresh:?}"
        );
    }
}

#[test]
fn a_context_read_in_place_sees_a_change_of_the_same_size_and_mtime() {
    let t = T::new();
    let ctx = in_place_ctx(&t);
    t.build_ok(&["-t", "one", p(&ctx)]);
    let touch_back = |f: &Path| {
        let st = Command::new("touch")
            .args(["-d", "2001-02-03 04:05:06"])
            .arg(f)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let f = ctx.join("sub/d.txt");
    touch_back(&f);
    t.build_ok(&["-t", "two", p(&ctx)]);
    assert_eq!(t.id("one"), t.id("two"), "a new mtime alone is no change");
    std::fs::write(&f, "D\n").unwrap();
    touch_back(&f);
    let out = both(&t.build_ok(&["-t", "three", p(&ctx)]));
    assert!(out.contains("ran-42"), "the change was not seen:\n{out}");
    assert_eq!(t.cat("three", "/ctx/sub/d.txt"), "D\n");
    // Through the other name of a hard link.
    std::fs::write(ctx.join("a.txt"), "A\n").unwrap();
    t.build_ok(&["-t", "four", p(&ctx)]);
    assert_eq!(t.cat("four", "/ctx/sub/a-link.txt"), "A\n");
}

#[test]
fn the_hash_cache_survives_a_pierd_restart() {
    let t = T::new();
    let ctx = in_place_ctx(&t);
    let cache = t.env.data_root.join("builder/cache/hashcache");
    // Files changed within the last seconds are hashed on every build
    // (they could change again within one tick of the clock): wait.
    std::thread::sleep(std::time::Duration::from_secs(4));
    t.build_ok(&["-t", "before", p(&ctx)]);
    use std::os::unix::fs::MetadataExt;
    let written = std::fs::metadata(&cache)
        .expect("an in-place build writes the hash cache")
        .ino();
    t.env.kill_daemon();
    let out = both(&t.build_ok(&["-t", "after", p(&ctx)]));
    assert!(!out.contains("ran-42"), "{out}");
    assert_eq!(t.id("before"), t.id("after"));
    // Nothing was hashed again (the cache is rewritten, renamed over,
    // only when something new was hashed).
    assert_eq!(std::fs::metadata(&cache).unwrap().ino(), written);
    // And after the restart a change of the same size and mtime is seen.
    let f = ctx.join("real.txt");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, "R\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    t.build_ok(&["-t", "changed", p(&ctx)]);
    assert_eq!(t.cat("changed", "/followed"), "R\n");
    // A tar build does not use (or write) it.
    std::fs::remove_file(&cache).unwrap();
    t.build_tar_ok(&["--no-cache", "-t", "sent", p(&ctx)]);
    assert!(!cache.exists());
}

/// A CLI in another mount namespace names a directory pierd sees as
/// another one (or not at all): pierd refuses it and the CLI sends the
/// context as a tar instead, so the build uses the CLI's files.
#[test]
fn a_context_pierd_sees_elsewhere_is_sent_instead() {
    if !pier_testutil::dockerd::have("unshare") {
        pier_testutil::skip("unshare (util-linux) is needed for a mount namespace");
        return;
    }
    let t = T::new();
    let df = "FROM busybox\nCOPY which.txt /which.txt\n";
    // What pierd sees at the path.
    let ns = t.env.dir.path().join("ns");
    write_context(
        &ns.join("ctx"),
        &[("Dockerfile", df), ("which.txt", "pierd's\n")],
    );
    t.env.ok(&["images"]); // pierd runs, outside the namespace below
    let cmd = t.env.pier();
    let cli = cmd.get_program().to_str().unwrap().to_owned();
    let dir = p(&ns).to_owned();
    // In the CLI's namespace a tmpfs over it holds other files.
    let script = format!(
        "set -e; mount -t tmpfs none '{dir}'; mkdir '{dir}/ctx'; \
         printf '{}' > '{dir}/ctx/Dockerfile'; echo the-clients > '{dir}/ctx/which.txt'; \
         exec '{cli}' build -t elsewhere '{dir}/ctx'",
        df.replace('\n', "\\n")
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env_remove("PIER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(t.cat("elsewhere", "/which.txt"), "the-clients\n");
}
