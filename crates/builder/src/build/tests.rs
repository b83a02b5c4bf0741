//! The executor against a real image store in a tempdir, with a fake
//! worker that writes files into the step's upper dir from a table.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::exec::build_parsed;
use super::*;
use crate::dockerfile::{
    ArgDecl, Command, Copy, Dockerfile, Healthcheck, Instruction, Kind, Stage,
};

/// RUN steps by their command (the last argv word): "fail" exits 3,
/// "write PATH CONTENT" writes a file into the upper dir, anything else
/// exits 0 changing nothing.
/// (args, env, cwd, user) of a RUN.
type Seen = (Vec<String>, Vec<String>, String, String);

#[derive(Default)]
struct FakeWorker {
    seen: Mutex<Vec<Seen>>,
}

impl Worker for FakeWorker {
    fn run(&self, req: &RunRequest, output: &mut dyn FnMut(&[u8])) -> Result<i32, String> {
        self.seen.lock().unwrap().push((
            req.args.clone(),
            req.env.clone(),
            req.cwd.clone(),
            req.user.clone(),
        ));
        let cmd = req.args.last().cloned().unwrap_or_default();
        output(format!("running {cmd}\n").as_bytes());
        if cmd == "fail" {
            // Something written before failing must not survive.
            fs::write(req.upper.join("partial"), "x").unwrap();
            return Ok(3);
        }
        if let Some(rest) = cmd.strip_prefix("write ") {
            let (path, content) = rest.split_once(' ').unwrap_or((rest, ""));
            let p = req.upper.join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        Ok(0)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: pier_image::Store,
    cache: PathBuf,
    context: PathBuf,
    worker: FakeWorker,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = pier_image::Store::open(&dir.path().join("data")).unwrap();
        use pier_testutil::oci_layout::{layer_tar, LayerFile};
        let tar = layer_tar(&[
            LayerFile::new(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            ),
            LayerFile::new("etc/group", "root:x:0:\nstaff:x:50:\n"),
            LayerFile::new("bin/sh", "#!fake\n"),
        ])
        .unwrap();
        store
            .import(
                &tar[..],
                &pier_image::ImportOptions {
                    reference: Some("base:1".into()),
                    message: None,
                },
            )
            .unwrap();
        let context = dir.path().join("context");
        fs::create_dir_all(&context).unwrap();
        Env {
            cache: dir.path().join("cache"),
            store,
            context,
            worker: FakeWorker::default(),
            _dir: dir,
        }
    }

    fn file(&self, rel: &str, content: &str) {
        let p = self.context.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn opts(&self, tag: &str) -> BuildOptions {
        BuildOptions {
            dockerfile_name: "Dockerfile".into(),
            context: self.context.clone(),
            tags: vec![tag.into()],
            ..Default::default()
        }
    }

    fn build(
        &self,
        df: &Dockerfile,
        opts: &BuildOptions,
    ) -> (Result<BuildOutput, Error>, Vec<BuildEvent>) {
        let events = Mutex::new(Vec::new());
        let r = build_parsed(&self.store, &self.worker, &self.cache, opts, df, &|e| {
            events.lock().unwrap().push(e)
        });
        (r, events.into_inner().unwrap())
    }

    /// The image's merged files: path -> the topmost snapshot holding it.
    fn find(&self, tag: &str, path: &str) -> Option<PathBuf> {
        let img = self.store.resolve(tag).unwrap();
        img.layers
            .iter()
            .rev()
            .map(|l| l.join(path.trim_start_matches('/')))
            .find(|p| fs::symlink_metadata(p).is_ok())
    }

    fn config(&self, tag: &str) -> serde_json::Value {
        self.store.image_config_json(tag).unwrap().1
    }

    fn tmp_is_empty(&self) -> bool {
        fs::read_dir(self.cache.join("tmp"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    }
}

fn ins(line: usize, original: &str, kind: Kind) -> Instruction {
    Instruction {
        line,
        original: original.into(),
        kind,
    }
}

fn stage(name: Option<&str>, base: &str, instructions: Vec<Instruction>) -> Stage {
    Stage {
        name: name.map(str::to_owned),
        base: base.into(),
        platform: None,
        line: 1,
        instructions,
    }
}

fn df(stages: Vec<Stage>) -> Dockerfile {
    Dockerfile {
        escape: '\\',
        args: Vec::new(),
        stages,
    }
}

fn copy(sources: &[&str], dest: &str) -> Copy {
    Copy {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        heredocs: Vec::new(),
    }
}

fn run(cmd: &str) -> Kind {
    Kind::Run {
        command: Command::Shell(cmd.into()),
        heredocs: Vec::new(),
        flags: Vec::new(),
    }
}

fn history(cfg: &serde_json::Value) -> Vec<(String, bool)> {
    cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or("").to_owned(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn no_mounts_under(p: &Path) -> bool {
    let m = fs::read_to_string("/proc/self/mountinfo").unwrap();
    !m.contains(p.to_str().unwrap())
}

#[test]
fn scratch_copy_files_dirs_and_symlinks_stay_in_the_context() {
    let env = Env::new();
    env.file("a.txt", "hello");
    env.file("dir/b.txt", "bee");
    env.file("dir/sub/c.txt", "sea");
    fs::set_permissions(
        env.context.join("dir/b.txt"),
        fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", env.context.join("dir/out")).unwrap();
    std::os::unix::fs::lchown(env.context.join("dir/sub/c.txt"), Some(1234), Some(1234)).unwrap();
    let d = df(vec![stage(
        None,
        "scratch",
        vec![
            ins(
                2,
                "COPY a.txt /a.txt",
                Kind::Copy(copy(&["a.txt"], "/a.txt")),
            ),
            ins(3, "COPY dir /d/", Kind::Copy(copy(&["dir"], "/d/"))),
            ins(
                4,
                "COPY *.txt dir/sub/*.txt /g/",
                Kind::Copy(copy(&["*.txt", "dir/sub/*.txt"], "/g/")),
            ),
        ],
    )]);
    let (r, events) = env.build(&d, &env.opts("out:1"));
    let out = r.unwrap();
    assert!(out.image_id.starts_with("sha256:"));
    assert_eq!(
        fs::read_to_string(env.find("out:1", "a.txt").unwrap()).unwrap(),
        "hello"
    );
    // A directory's contents are copied, not the directory itself (as docker).
    let b = env.find("out:1", "d/b.txt").unwrap();
    assert_eq!(fs::read_to_string(&b).unwrap(), "bee");
    assert_eq!(fs::metadata(&b).unwrap().mode() & 0o7777, 0o751);
    let c = env.find("out:1", "d/sub/c.txt").unwrap();
    assert_eq!(
        (
            fs::metadata(&c).unwrap().uid(),
            fs::metadata(&c).unwrap().gid()
        ),
        (0, 0)
    );
    // The symlink is copied as a link, never followed out of the context.
    let l = env.find("out:1", "d/out").unwrap();
    assert_eq!(fs::read_link(&l).unwrap(), Path::new("/etc/passwd"));
    assert!(env.find("out:1", "d/dir").is_none());
    assert!(env.find("out:1", "g/a.txt").is_some() && env.find("out:1", "g/c.txt").is_some());
    let cfg = env.config("out:1");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    assert_eq!(
        history(&cfg),
        vec![
            ("COPY a.txt /a.txt # buildkit".to_owned(), false),
            ("COPY dir /d/ # buildkit".to_owned(), false),
            ("COPY *.txt dir/sub/*.txt /g/ # buildkit".to_owned(), false),
        ]
    );
    assert_eq!(
        cfg["config"]["Env"][0],
        format!("PATH={}", super::exec::DEFAULT_PATH)
    );
    // Events: FROM + 3 steps, each Step then Done.
    let steps: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Step { n, total, .. } => {
                assert_eq!(*total, 4);
                Some(*n)
            }
            _ => None,
        })
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4]);
    assert!(env.tmp_is_empty());
}

#[test]
fn sources_outside_the_context_are_refused() {
    let env = Env::new();
    env.file("a.txt", "hello");
    std::os::unix::fs::symlink("/etc", env.context.join("etc-link")).unwrap();
    for (src, want) in [
        ("../secret", "outside the build context"),
        ("etc-link/passwd", "not found"),
        ("missing.txt", "not found"),
        ("nomatch*", "no source files"),
    ] {
        let d = df(vec![stage(
            None,
            "scratch",
            vec![ins(
                7,
                &format!("COPY {src} /x"),
                Kind::Copy(copy(&[src], "/x")),
            )],
        )]);
        let e = env.build(&d, &env.opts("bad:1")).0.unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("Dockerfile:7"), "{src}: {e}");
    }
    // An absolute source is relative to the context root.
    let d = df(vec![stage(
        None,
        "scratch",
        vec![ins(
            2,
            "COPY /a.txt /x",
            Kind::Copy(copy(&["/a.txt"], "/x")),
        )],
    )]);
    env.build(&d, &env.opts("abs:1")).0.unwrap();
    assert_eq!(
        fs::read_to_string(env.find("abs:1", "x").unwrap()).unwrap(),
        "hello"
    );
    // Several sources need a directory destination.
    let d = df(vec![stage(
        None,
        "scratch",
        vec![ins(
            2,
            "COPY a.txt a.txt /x",
            Kind::Copy(copy(&["a.txt", "a.txt"], "/x")),
        )],
    )]);
    let e = env.build(&d, &env.opts("bad:2")).0.unwrap_err().to_string();
    assert!(e.contains("must be a directory"), "{e}");
    assert!(env.store.resolve("bad:1").is_err());
}

#[test]
fn chown_chmod_and_heredocs_on_an_image() {
    let env = Env::new();
    env.file("f", "data");
    let mut c = copy(&["f"], "/app/");
    c.chown = Some("app:staff".into());
    c.chmod = Some("0600".into());
    let mut by_name = copy(&["f"], "/app-only-user");
    by_name.chown = Some("app".into());
    let mut h = copy(&["<<EOF"], "/etc/motd");
    h.heredocs = vec![crate::dockerfile::Heredoc {
        name: "EOF".into(),
        content: "hi there\n".into(),
        expand: false,
    }];
    let d = df(vec![stage(
        None,
        "base:1",
        vec![
            ins(
                2,
                "COPY --chown=app:staff --chmod=0600 f /app/",
                Kind::Copy(c),
            ),
            ins(3, "COPY --chown=app f /app-only-user", Kind::Copy(by_name)),
            ins(4, "COPY <<EOF /etc/motd", Kind::Copy(h)),
        ],
    )]);
    env.build(&d, &env.opts("own:1")).0.unwrap();
    let f = env.find("own:1", "app/f").unwrap();
    let md = fs::metadata(&f).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (1000, 50, 0o600));
    let dir = fs::metadata(env.find("own:1", "app").unwrap()).unwrap();
    assert_eq!((dir.uid(), dir.gid()), (1000, 50));
    // A user name alone takes its passwd group (as BuildKit).
    let f = fs::metadata(env.find("own:1", "app-only-user").unwrap()).unwrap();
    assert_eq!((f.uid(), f.gid()), (1000, 1000));
    assert_eq!(
        fs::read_to_string(env.find("own:1", "etc/motd").unwrap()).unwrap(),
        "hi there\n"
    );
    // The base's files are still there, under the new layers.
    assert!(env.find("own:1", "etc/passwd").is_some());
    assert_eq!(env.store.resolve("own:1").unwrap().layers.len(), 4);
    let mut c = copy(&["f"], "/x");
    c.chown = Some("nobody".into());
    let d = df(vec![stage(
        None,
        "base:1",
        vec![ins(4, "COPY --chown=nobody f /x", Kind::Copy(c))],
    )]);
    let e = env.build(&d, &env.opts("own:2")).0.unwrap_err().to_string();
    assert!(
        e.contains("unable to find user nobody") && e.contains("Dockerfile:4"),
        "{e}"
    );
}

#[test]
fn multi_stage_copy_from_and_unused_stages_are_not_built() {
    let env = Env::new();
    let mut from = copy(&["/out/tool"], "/usr/bin/tool");
    from.from = Some("build".into());
    let mut by_index = copy(&["/out/tool"], "/again");
    by_index.from = Some("1".into());
    let d = df(vec![
        // Never needed: its image does not exist, and that is no error.
        stage(Some("unused"), "not-pulled:9", vec![]),
        stage(
            Some("build"),
            "base:1",
            vec![ins(
                3,
                "RUN write /out/tool binary",
                run("write /out/tool binary"),
            )],
        ),
        stage(
            None,
            "scratch",
            vec![
                ins(
                    5,
                    "COPY --from=build /out/tool /usr/bin/tool",
                    Kind::Copy(from),
                ),
                ins(6, "COPY --from=1 /out/tool /again", Kind::Copy(by_index)),
            ],
        ),
    ]);
    let (r, events) = env.build(&d, &env.opts("multi:1"));
    r.unwrap();
    assert_eq!(
        fs::read_to_string(env.find("multi:1", "usr/bin/tool").unwrap()).unwrap(),
        "binary"
    );
    assert!(env.find("multi:1", "again").is_some());
    assert!(
        env.find("multi:1", "etc/passwd").is_none(),
        "only the copied file"
    );
    assert!(events.iter().any(
        |e| matches!(e, BuildEvent::Output { data, .. } if data.starts_with(b"running write"))
    ));
    assert!(!events
        .iter()
        .any(|e| matches!(e, BuildEvent::Step { stage, .. } if stage == "unused")));
    // --target stops at a stage; the final stage is not built.
    let mut o = env.opts("target:1");
    o.target = Some("BUILD".into());
    let (r, events) = env.build(&d, &o);
    r.unwrap();
    assert!(env.find("target:1", "out/tool").is_some());
    assert!(events
        .iter()
        .all(|e| !matches!(e, BuildEvent::Step { text, .. } if text.starts_with("COPY"))));
    // A missing image is named, with what to do.
    let d = df(vec![stage(None, "not-pulled:9", vec![])]);
    let e = env.build(&d, &env.opts("x:1")).0.unwrap_err().to_string();
    assert!(
        e.contains("not-pulled:9") && e.contains("pull it first"),
        "{e}"
    );
    let mut o = env.opts("x:1");
    o.target = Some("nope".into());
    assert!(env
        .build(&d, &o)
        .0
        .unwrap_err()
        .to_string()
        .contains("nope"));
}

#[test]
fn config_steps_change_only_the_config_and_write_history() {
    let env = Env::new();
    let parent = df(vec![stage(
        None,
        "base:1",
        vec![ins(
            2,
            "CMD [\"sh\"]",
            Kind::Cmd(Command::Exec(vec!["sh".into()])),
        )],
    )]);
    env.build(&parent, &env.opts("parent:1")).0.unwrap();
    assert_eq!(
        env.config("parent:1")["config"]["Cmd"],
        serde_json::json!(["sh"])
    );
    let mut d = df(vec![stage(
        None,
        "parent:1",
        vec![
            ins(
                2,
                "ARG VERSION=1",
                Kind::Arg(vec![ArgDecl {
                    name: "VERSION".into(),
                    default: Some("1".into()),
                }]),
            ),
            ins(
                3,
                "ENV A=b C=d",
                Kind::Env(vec![("A".into(), "b".into()), ("C".into(), "d".into())]),
            ),
            ins(
                4,
                "ENTRYPOINT [\"/bin/tool\"]",
                Kind::Entrypoint(Command::Exec(vec!["/bin/tool".into()])),
            ),
            ins(5, "LABEL k=v", Kind::Label(vec![("k".into(), "v".into())])),
            ins(
                6,
                "EXPOSE 80 53/udp",
                Kind::Expose(vec!["80".into(), "53/udp".into()]),
            ),
            ins(7, "USER app", Kind::User("app".into())),
            ins(8, "VOLUME /data", Kind::Volume(vec!["/data".into()])),
            ins(9, "STOPSIGNAL SIGINT", Kind::StopSignal("SIGINT".into())),
            ins(
                10,
                "HEALTHCHECK --interval=5s CMD true",
                Kind::Healthcheck(Healthcheck {
                    test: Some(Command::Shell("true".into())),
                    interval: Some("5s".into()),
                    timeout: None,
                    start_period: None,
                    start_interval: None,
                    retries: Some("2".into()),
                }),
            ),
            ins(
                11,
                "SHELL [\"/bin/sh\", \"-ec\"]",
                Kind::Shell(vec!["/bin/sh".into(), "-ec".into()]),
            ),
            ins(12, "WORKDIR /srv", Kind::Workdir("/srv".into())),
            ins(13, "WORKDIR app", Kind::Workdir("app".into())),
            ins(14, "WORKDIR /", Kind::Workdir("/".into())),
            ins(15, "WORKDIR /srv/app", Kind::Workdir("/srv/app".into())),
            ins(16, "RUN echo hi", run("echo hi")),
        ],
    )]);
    d.args = vec![];
    let mut o = env.opts("cfg:1");
    o.build_args = BTreeMap::from([
        ("VERSION".to_owned(), "2".to_owned()),
        ("http_proxy".to_owned(), "http://p".to_owned()),
    ]);
    o.labels = BTreeMap::from([("from-cli".to_owned(), "yes".to_owned())]);
    env.build(&d, &o).0.unwrap();
    let cfg = env.config("cfg:1");
    let c = &cfg["config"];
    // ENTRYPOINT reset the CMD inherited from the base, as docker.
    assert!(c["Cmd"].is_null(), "{c}");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/tool"]));
    assert_eq!(
        c["Env"],
        serde_json::json!([format!("PATH={}", super::exec::DEFAULT_PATH), "A=b", "C=d"])
    );
    assert_eq!(
        c["Labels"],
        serde_json::json!({"k": "v", "from-cli": "yes"})
    );
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["User"], "app");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2})
    );
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(c["WorkingDir"], "/srv/app");
    let h = history(&cfg);
    let ours: Vec<(String, bool)> = h[h.len() - 16..].to_vec();
    let want: Vec<(&str, bool)> = vec![
        ("CMD [\"sh\"]", true),
        ("ARG VERSION=1", true),
        ("ENV A=b C=d", true),
        ("ENTRYPOINT [\"/bin/tool\"]", true),
        ("LABEL k=v", true),
        ("EXPOSE map[53/udp:{} 80/tcp:{}]", true),
        ("USER app", true),
        ("VOLUME [/data]", true),
        ("STOPSIGNAL SIGINT", true),
        (
            "HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"0s\" \"0s\" '\\x02'}",
            true,
        ),
        ("SHELL [/bin/sh -ec]", true),
        ("WORKDIR /srv", false),
        ("WORKDIR /srv/app", false),
        ("WORKDIR /", true),
        ("WORKDIR /srv/app", true),
        ("RUN |1 VERSION=2 /bin/sh -ec echo hi # buildkit", false),
    ];
    let want: Vec<(String, bool)> = want.into_iter().map(|(s, b)| (s.to_owned(), b)).collect();
    assert_eq!(ours, want);
    // Layers: base + 2 WORKDIRs that made a directory + RUN.
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    // As BuildKit: WORKDIR's directories belong to the USER.
    let srv = fs::metadata(env.find("cfg:1", "srv/app").unwrap()).unwrap();
    assert!(srv.is_dir());
    assert_eq!((srv.uid(), srv.gid()), (1000, 1000));
    let seen = env.worker.seen.lock().unwrap();
    let (args, envs, cwd, user) = seen.last().unwrap();
    assert_eq!(
        args,
        &vec!["/bin/sh".to_owned(), "-ec".into(), "echo hi".into()]
    );
    assert_eq!(cwd, "/srv/app");
    assert_eq!(user, "app");
    for want in [
        "A=b",
        "C=d",
        "VERSION=2",
        "http_proxy=http://p",
        "HOME=/home/app",
    ] {
        assert!(envs.contains(&want.to_owned()), "{want} in {envs:?}");
    }
}

fn cache_df() -> Dockerfile {
    df(vec![stage(
        None,
        "base:1",
        vec![
            ins(2, "WORKDIR /app", Kind::Workdir("/app".into())),
            ins(3, "COPY one.txt .", Kind::Copy(copy(&["one.txt"], "."))),
            ins(4, "COPY two.txt .", Kind::Copy(copy(&["two.txt"], "."))),
            ins(5, "RUN write /app/made yes", run("write /app/made yes")),
            ins(
                6,
                "CMD [\"sh\"]",
                Kind::Cmd(Command::Exec(vec!["sh".into()])),
            ),
        ],
    )])
}

fn cached(events: &[BuildEvent]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Cached { n } => Some(*n),
            _ => None,
        })
        .collect()
}

#[test]
fn cache_hits_by_content_and_invalidates_from_the_changed_step_on() {
    let env = Env::new();
    env.file("one.txt", "1");
    env.file("two.txt", "2");
    let d = cache_df();
    let (r, ev) = env.build(&d, &env.opts("c:1"));
    let first = r.unwrap();
    assert!(cached(&ev).is_empty());
    assert_eq!(env.worker.seen.lock().unwrap().len(), 1);

    // Nothing changed: every layer step is a hit, the RUN does not run,
    // and the image is the same.
    let (r, ev) = env.build(&d, &env.opts("c:2"));
    assert_eq!(r.unwrap(), first);
    assert_eq!(cached(&ev), vec![2, 3, 4, 5]);
    assert_eq!(env.worker.seen.lock().unwrap().len(), 1);

    // A new mtime alone is no change.
    let f = fs::File::options()
        .write(true)
        .open(env.context.join("two.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    let (r, ev) = env.build(&d, &env.opts("c:3"));
    assert_eq!(r.unwrap(), first);
    assert_eq!(cached(&ev), vec![2, 3, 4, 5]);

    // Changed content: that COPY and what follows are rebuilt, not before.
    env.file("two.txt", "22");
    let (r, ev) = env.build(&d, &env.opts("c:4"));
    assert_ne!(r.unwrap(), first);
    assert_eq!(cached(&ev), vec![2, 3]);
    assert_eq!(env.worker.seen.lock().unwrap().len(), 2);
    assert_eq!(
        fs::read_to_string(env.find("c:4", "app/two.txt").unwrap()).unwrap(),
        "22"
    );

    // --no-cache: no lookups, but the records are written.
    let mut o = env.opts("c:5");
    o.no_cache = true;
    let (r, ev) = env.build(&d, &o);
    r.unwrap();
    assert!(cached(&ev).is_empty());
    assert_eq!(env.worker.seen.lock().unwrap().len(), 3);
    let (_, ev) = env.build(&d, &env.opts("c:6"));
    assert_eq!(cached(&ev), vec![2, 3, 4, 5]);

    // A hit whose layer is gone from the store is rebuilt.
    let top = env
        .store
        .resolve("c:6")
        .unwrap()
        .layers
        .last()
        .unwrap()
        .clone();
    fs::remove_dir_all(&top).unwrap();
    let (r, ev) = env.build(&d, &env.opts("c:7"));
    r.unwrap();
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    assert_eq!(env.worker.seen.lock().unwrap().len(), 4);
    assert!(env.find("c:7", "app/made").is_some());
    assert!(env.tmp_is_empty());
}

#[test]
fn a_failing_run_tags_nothing_and_leaves_nothing_behind() {
    let env = Env::new();
    let d = df(vec![stage(
        None,
        "base:1",
        vec![
            ins(2, "RUN write /ok yes", run("write /ok yes")),
            ins(3, "RUN fail", run("fail")),
            ins(4, "RUN write /never x", run("write /never x")),
        ],
    )]);
    let (r, ev) = env.build(&d, &env.opts("failed:1"));
    match r {
        Err(Error::RunFailed { command, code }) => {
            assert_eq!((command.as_str(), code), ("/bin/sh -c fail", 3));
        }
        other => panic!("{other:?}"),
    }
    let e = Error::RunFailed {
        command: "/bin/sh -c fail".into(),
        code: 3,
    };
    assert_eq!(
        e.to_string(),
        "The command '/bin/sh -c fail' returned a non-zero code: 3"
    );
    assert!(env.store.resolve("failed:1").is_err());
    assert!(env.tmp_is_empty());
    assert!(no_mounts_under(&env.cache));
    assert!(ev
        .iter()
        .any(|e| matches!(e, BuildEvent::Output { n: 3, .. })));
    assert!(!ev
        .iter()
        .any(|e| matches!(e, BuildEvent::Step { n: 4, .. })));
    assert_eq!(env.worker.seen.lock().unwrap().len(), 2);
}

#[test]
fn add_extracts_local_tars() {
    let env = Env::new();
    let tar = pier_testutil::oci_layout::layer_tar(&[pier_testutil::oci_layout::LayerFile::new(
        "inner/x", "in tar",
    )])
    .unwrap();
    fs::write(env.context.join("t.tar"), &tar).unwrap();
    let mut gz = flate2_free_gzip(&tar);
    fs::write(env.context.join("t.tar.gz"), &mut gz).unwrap();
    let add = |src: &str, dest: &str| Kind::Add {
        copy: copy(&[src], dest),
        checksum: None,
        keep_git_dir: false,
    };
    let d = df(vec![stage(
        None,
        "scratch",
        vec![
            ins(2, "ADD t.tar /plain/", add("t.tar", "/plain/")),
            ins(3, "ADD t.tar.gz /gz", add("t.tar.gz", "/gz")),
            ins(
                4,
                "COPY t.tar /copied/",
                Kind::Copy(copy(&["t.tar"], "/copied/")),
            ),
        ],
    )]);
    env.build(&d, &env.opts("add:1")).0.unwrap();
    assert_eq!(
        fs::read_to_string(env.find("add:1", "plain/inner/x").unwrap()).unwrap(),
        "in tar"
    );
    assert_eq!(
        fs::read_to_string(env.find("add:1", "gz/inner/x").unwrap()).unwrap(),
        "in tar"
    );
    assert!(env.find("add:1", "copied/t.tar").is_some());
    let d = df(vec![stage(
        None,
        "scratch",
        vec![ins(
            2,
            "ADD http://example.com/x /x",
            add("http://example.com/x", "/x"),
        )],
    )]);
    let e = env.build(&d, &env.opts("add:2")).0.unwrap_err().to_string();
    assert!(e.contains("not supported yet"), "{e}");
}

/// A gzip stream with stored (uncompressed) deflate blocks: no flate2
/// needed in this crate's tests.
fn flate2_free_gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for b in data {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn step_places_number_steps_within_their_stage() {
    let opts = BuildOptions {
        dockerfile: "FROM busybox\nRUN a\nFROM busybox AS unused\nRUN b\nFROM busybox AS named\nENV X=1\nRUN c\nFROM scratch\nCOPY --from=0 /x /x\nCOPY --from=named /y /y\nCMD [\"x\"]\n".into(),
        ..Default::default()
    };
    let p = step_places(&opts).unwrap();
    // The unused stage has no steps; numbers run on over the stages built;
    // as BuildKit, config-only steps are not counted (position 0).
    assert_eq!(p.len(), 2 + 3 + 4);
    assert_eq!(p[&1], (0, 1, 2));
    assert_eq!(p[&2], (0, 2, 2));
    assert_eq!(p[&3], (2, 1, 2));
    assert_eq!(p[&4], (2, 0, 2));
    assert_eq!(p[&5], (2, 2, 2));
    assert_eq!(p[&7], (3, 2, 3));
    assert_eq!(p[&8], (3, 3, 3));
    assert_eq!(p[&9], (3, 0, 3));
}

#[test]
fn a_deep_context_tree_is_copied_without_overflowing_the_stack() {
    let env = Env::new();
    let mut p = env.context.join("deep");
    for _ in 0..1500 {
        p.push("d");
    }
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join("leaf"), "leaf").unwrap();
    let d = df(vec![stage(
        None,
        "scratch",
        vec![ins(
            2,
            "COPY deep /deep/",
            Kind::Copy(copy(&["deep"], "/deep/")),
        )],
    )]);
    env.build(&d, &env.opts("deep:1")).0.unwrap();
    let rel = format!("deep/{}leaf", "d/".repeat(1500));
    assert_eq!(
        fs::read_to_string(env.find("deep:1", &rel).unwrap()).unwrap(),
        "leaf"
    );
}

#[test]
fn onbuild_triggers_run_under_the_from_step_in_order() {
    let env = Env::new();
    let parent = df(vec![stage(
        None,
        "base:1",
        vec![ins(
            2,
            "ONBUILD RUN write /t x",
            Kind::Onbuild("RUN write /t x".into()),
        )],
    )]);
    env.build(&parent, &env.opts("onb:1")).0.unwrap();
    assert_eq!(
        env.config("onb:1")["config"]["OnBuild"],
        serde_json::json!(["RUN write /t x"])
    );
    let child = df(vec![stage(None, "onb:1", vec![])]);
    let (r, ev) = env.build(&child, &env.opts("onb:2"));
    r.unwrap();
    assert_eq!(
        fs::read_to_string(env.find("onb:2", "t").unwrap()).unwrap(),
        "x"
    );
    // As docker: the triggers do not carry over to the child.
    assert!(env.config("onb:2")["config"]["OnBuild"].is_null());
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            BuildEvent::Step { .. } => "step",
            BuildEvent::Cached { .. } => "cached",
            BuildEvent::Output { .. } => "output",
            BuildEvent::Done { .. } => "done",
        })
        .collect();
    assert_eq!(kinds, ["step", "output", "done"]);
}

fn set_mtime(p: &Path, secs: u64) {
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn a_context_read_in_place_keys_as_a_private_copy_and_sees_every_change() {
    let env = Env::new();
    env.file("one.txt", "1");
    env.file("two.txt", "2");
    env.file(".dockerignore", "two.txt.bak\n");
    env.file("two.txt.bak", "ignored");
    // A hard link: two names, one inode; both are copied with the content.
    fs::hard_link(
        env.context.join("one.txt"),
        env.context.join("one-link.txt"),
    )
    .unwrap();
    let d = df(vec![stage(
        None,
        "base:1",
        vec![
            ins(2, "WORKDIR /app", Kind::Workdir("/app".into())),
            ins(3, "COPY . .", Kind::Copy(copy(&["."], "."))),
            ins(4, "RUN write /app/made yes", run("write /app/made yes")),
        ],
    )]);
    let (r, _) = env.build(&d, &env.opts("p:1"));
    let first = r.unwrap();
    let in_place = |tag: &str| {
        let mut o = env.opts(tag);
        o.context_in_place = true;
        o
    };
    // The same context read in place: the same keys, so every step is a
    // hit and the image is the same.
    let (r, ev) = env.build(&d, &in_place("p:2"));
    assert_eq!(r.unwrap(), first);
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    assert!(env.find("p:2", "app/two.txt.bak").is_none());
    assert_eq!(
        fs::read_to_string(env.find("p:2", "app/one-link.txt").unwrap()).unwrap(),
        "1"
    );

    // Same size, same mtime, other content: seen (the ctime moved).
    let two = env.context.join("two.txt");
    set_mtime(&two, 1_000_000);
    let (r, ev) = env.build(&d, &in_place("p:3"));
    assert_eq!(r.unwrap(), first, "a new mtime alone is no change");
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    fs::write(&two, "3").unwrap();
    set_mtime(&two, 1_000_000);
    let (r, ev) = env.build(&d, &in_place("p:4"));
    let third = r.unwrap();
    assert_ne!(third, first);
    assert_eq!(cached(&ev), vec![2]);
    assert_eq!(
        fs::read_to_string(env.find("p:4", "app/two.txt").unwrap()).unwrap(),
        "3"
    );
    // Replaced by another file of the same size and mtime (a new inode).
    let new = env.context.join("new");
    fs::write(&new, "4").unwrap();
    set_mtime(&new, 1_000_000);
    fs::rename(&new, &two).unwrap();
    let (r, ev) = env.build(&d, &in_place("p:5"));
    r.unwrap();
    assert_eq!(cached(&ev), vec![2]);
    assert_eq!(
        fs::read_to_string(env.find("p:5", "app/two.txt").unwrap()).unwrap(),
        "4"
    );
    // The hard link's content changes through its other name.
    fs::write(env.context.join("one.txt"), "9").unwrap();
    let (r, ev) = env.build(&d, &in_place("p:6"));
    r.unwrap();
    assert_eq!(cached(&ev), vec![2]);
    assert_eq!(
        fs::read_to_string(env.find("p:6", "app/one-link.txt").unwrap()).unwrap(),
        "9"
    );
    // The mode is part of the key; the owner is not (COPY makes files
    // root's; a sent context has them root's), as docker.
    let (_, ev) = env.build(&d, &in_place("p:7"));
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    fs::set_permissions(&two, fs::Permissions::from_mode(0o600)).unwrap();
    let (_, ev) = env.build(&d, &in_place("p:8"));
    assert_eq!(cached(&ev), vec![2]);
    std::os::unix::fs::lchown(&two, Some(1000), Some(1000)).unwrap();
    let (_, ev) = env.build(&d, &in_place("p:9"));
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    // A fifo (never copied, never in a sent tar) is no change either.
    let fifo = std::ffi::CString::new(env.context.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let (_, ev) = env.build(&d, &in_place("p:10a"));
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    // An ignored file changing changes nothing.
    env.file("two.txt.bak", "other");
    let (_, ev) = env.build(&d, &in_place("p:10"));
    assert_eq!(cached(&ev), vec![2, 3, 4]);
    assert!(env.tmp_is_empty());
}

#[test]
fn a_context_changed_between_hashing_and_copying_is_refused() {
    use super::fs as bfs;
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), "aa").unwrap();
    std::fs::write(src.join("g"), "gg").unwrap();
    std::os::unix::fs::symlink("g", src.join("l")).unwrap();
    let owner = bfs::Owner::default();
    let copy_all = |seen: &bfs::Seen, to: &str| -> std::io::Result<()> {
        let dst = tmp.path().join(to);
        std::fs::create_dir_all(&dst).unwrap();
        for name in ["d", "g", "l"] {
            bfs::copy_tree(
                &src.join(name),
                &dst.join(name),
                name,
                None,
                &owner,
                Some(seen),
            )?;
        }
        seen.all_copied()
    };
    let hashed = || {
        let mut seen = bfs::Seen::default();
        let mut h = sha2::Sha256::new();
        bfs::hash_tree(&mut h, &src, "", None, true, None, Some(&mut seen)).unwrap();
        seen
    };
    // Unchanged: copied.
    copy_all(&hashed(), "ok").unwrap();
    assert_eq!(std::fs::read(tmp.path().join("ok/d/f")).unwrap(), b"aa");

    // Content changed (same size) after hashing.
    let seen = hashed();
    std::fs::write(src.join("d/f"), "bb").unwrap();
    let e = copy_all(&seen, "c1").unwrap_err().to_string();
    assert!(e.contains("changed while the build was reading it"), "{e}");
    // A file appeared, one went away, a link was retargeted.
    let seen = hashed();
    std::fs::write(src.join("d/new"), "n").unwrap();
    assert!(copy_all(&seen, "c2").is_err());
    let seen = hashed();
    std::fs::remove_file(src.join("d/new")).unwrap();
    assert!(copy_all(&seen, "c3").is_err());
    let seen = hashed();
    std::fs::remove_file(src.join("l")).unwrap();
    std::os::unix::fs::symlink("d", src.join("l")).unwrap();
    assert!(copy_all(&seen, "c4").is_err());
}
