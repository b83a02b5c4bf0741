//! `POST /build`: the body is the build context (a tar, or a bare
//! Dockerfile); the answer is docker's stream of JSON messages, with the
//! progress as BuildKit's plain output (`#N [stage k/n] RUN ...`,
//! `#N CACHED`, `#N 0.123 output`, `#N DONE 0.4s`) in `stream` messages,
//! the image id in `aux`, and docker's `Successfully built/tagged` lines.

use super::images::query_all;
use super::{flag, Query, State};
use crate::build::context::{self, Context};
use crate::error::{Error, Result};
use axum::body::Body;
use bytes::Bytes;
use pier_builder::{BuildEvent, BuildOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The query of a build, as docker sends it.
#[derive(Debug, Default)]
struct Params {
    tags: Vec<String>,
    dockerfile: String,
    build_args: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    target: Option<String>,
    no_cache: bool,
    /// `pull`: pull every base image, even one the store has.
    pull: bool,
    quiet: bool,
    /// `networkmode=none`.
    no_network: bool,
    /// pier's own `pier-context-path`: the client's context directory, read
    /// where it is instead of a tar in the body (pier's CLI on the local
    /// socket sends it), with `pier-context-id` (`DEV:INODE` of that
    /// directory as the client sees it), checked so that a client in
    /// another mount namespace is refused rather than built from another
    /// directory.
    context_path: Option<PathBuf>,
    context_id: Option<(u64, u64)>,
}

/// A JSON object of strings (`buildargs`, `labels`); docker allows null
/// values in buildargs (an ARG taken from the environment: none here).
fn string_map(q: &HashMap<String, String>, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(raw) = q.get(key).filter(|v| !v.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| Error::bad_request(format!("error reading {key}: {e}")))?;
    Ok(v.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

fn params(q: &HashMap<String, String>, raw_query: &str) -> Result<Params> {
    let mut tags = Vec::new();
    for t in query_all(raw_query, "t") {
        let r = pier_image::reference::Reference::parse(&t)
            .map_err(|e| Error::bad_request(format!("invalid tag {t:?}: {e}")))?;
        if r.digest().is_some() {
            return Err(Error::bad_request(format!(
                "invalid tag {t:?}: a build cannot be tagged with a digest"
            )));
        }
        tags.push(t);
    }
    let dockerfile = q
        .get("dockerfile")
        .filter(|d| !d.is_empty())
        .cloned()
        .unwrap_or_else(|| "Dockerfile".into());
    if q.get("version").is_some_and(|v| v == "2") {
        return Err(Error::bad_request(
            "BuildKit's build API (version=2) is not supported by pier: build with the \
             classic API (DOCKER_BUILDKIT=0 docker build, or pier build)",
        ));
    }
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(Error::bad_request(
            "building from a remote context (git or URL) is not supported: send the context as the body",
        ));
    }
    let no_network = match q.get("networkmode").map(String::as_str) {
        None | Some("" | "default" | "host" | "bridge") => false,
        Some("none") => true,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "network mode {other:?} is not supported for builds: use default, host or none"
            )))
        }
    };
    let context_path = match q.get("pier-context-path") {
        None => None,
        Some(p) if p.starts_with('/') => Some(PathBuf::from(p)),
        Some(p) => {
            return Err(Error::bad_request(format!(
                "pier-context-path {p:?} is not an absolute path: give the context directory's absolute path"
            )))
        }
    };
    let context_id = match q.get("pier-context-id") {
        None => None,
        Some(v) => Some(
            v.split_once(':')
                .and_then(|(d, i)| Some((d.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| {
                    Error::bad_request(format!(
                        "pier-context-id {v:?} is not DEV:INODE (two decimal numbers)"
                    ))
                })?,
        ),
    };
    Ok(Params {
        context_path,
        context_id,
        no_network,
        tags,
        dockerfile,
        build_args: string_map(q, "buildargs")?,
        labels: string_map(q, "labels")?,
        target: q.get("target").filter(|t| !t.is_empty()).cloned(),
        no_cache: flag(q, "nocache"),
        pull: flag(q, "pull"),
        quiet: flag(q, "q"),
    })
}

/// One JSON message of the answer, newline-terminated.
fn message(v: serde_json::Value) -> Bytes {
    let mut s = v.to_string();
    s.push_str("\r\n");
    Bytes::from(s)
}

fn stream(text: &str) -> Bytes {
    message(serde_json::json!({ "stream": text }))
}

/// Turns build events into BuildKit's plain progress lines.
#[derive(Default)]
struct Progress {
    started: HashMap<usize, Instant>,
    /// Output not yet ended by a newline, per step.
    partial: HashMap<usize, Vec<u8>>,
    /// The Dockerfile has one stage.
    single_stage: bool,
    /// Each step's place among its stage's shown steps (position from 1,
    /// their count), for BuildKit's `[stage k/n]`, or None for a step
    /// BuildKit does not show (config only: ENV, CMD, LABEL...). Without
    /// it every step shows, numbered in the whole build.
    places: BTreeMap<usize, Option<(usize, usize)>>,
    /// The number each shown step is shown with (`#N`): in order of start.
    shown: HashMap<usize, usize>,
    hidden: std::collections::HashSet<usize>,
    /// Steps that came from the cache.
    cached: std::collections::HashSet<usize>,
}

impl Progress {
    fn lines(&mut self, ev: BuildEvent) -> String {
        match ev {
            BuildEvent::Step {
                n,
                total,
                stage,
                text,
            } => {
                self.started.insert(n, Instant::now());
                let (k, count) = match self.places.get(&n) {
                    Some(None) => {
                        self.hidden.insert(n);
                        return String::new();
                    }
                    Some(Some(place)) => *place,
                    None => (n, total),
                };
                let n = if self.places.is_empty() {
                    n
                } else {
                    let next = self.shown.len() + 1;
                    *self.shown.entry(n).or_insert(next)
                };
                // As BuildKit: unnamed stages are `stage-N`, and a lone
                // unnamed stage is not named at all.
                let numbered = !stage.is_empty() && stage.bytes().all(|b| b.is_ascii_digit());
                let stage = match (numbered, self.single_stage) {
                    (true, true) => String::new(),
                    (true, false) => format!("stage-{stage}"),
                    _ => stage,
                };
                if stage.is_empty() {
                    format!("#{n} [{k}/{count}] {text}\n")
                } else {
                    format!("#{n} [{stage} {k}/{count}] {text}\n")
                }
            }
            BuildEvent::Cached { n } => {
                self.partial.remove(&n);
                self.cached.insert(n);
                if self.hidden.contains(&n) {
                    return String::new();
                }
                let n = self.num(n);
                format!("#{n} CACHED\n\n")
            }
            BuildEvent::Output { n, data } => {
                let since = self.elapsed(n);
                let shown = self.num(n);
                let buf = self.partial.entry(n).or_default();
                buf.extend_from_slice(&data);
                let mut out = String::new();
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    let line = String::from_utf8_lossy(&line[..line.len() - 1]);
                    out.push_str(&format!(
                        "#{shown} {since:.3} {}\n",
                        line.trim_end_matches('\r')
                    ));
                }
                out
            }
            BuildEvent::Done { n, secs } => {
                if self.cached.contains(&n) || self.hidden.contains(&n) {
                    // BuildKit shows a cached step as CACHED only.
                    return String::new();
                }
                let shown = self.num(n);
                let mut out = String::new();
                if let Some(rest) = self.partial.remove(&n).filter(|r| !r.is_empty()) {
                    let since = self.elapsed(n);
                    out.push_str(&format!(
                        "#{shown} {since:.3} {}\n",
                        String::from_utf8_lossy(&rest)
                    ));
                }
                out.push_str(&format!("#{shown} DONE {secs:.1}s\n\n"));
                out
            }
        }
    }

    /// The number step `n` is shown with.
    fn num(&self, n: usize) -> usize {
        self.shown.get(&n).copied().unwrap_or(n)
    }

    fn elapsed(&self, n: usize) -> f64 {
        self.started
            .get(&n)
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// Output of a failed step that did not end in a newline.
    fn rest(&mut self) -> String {
        let mut keys: Vec<usize> = self.partial.keys().copied().collect();
        keys.sort();
        let mut out = String::new();
        for n in keys {
            if let Some(rest) = self.partial.remove(&n).filter(|r| !r.is_empty()) {
                let shown = self.num(n);
                out.push_str(&format!("#{shown} {}\n", String::from_utf8_lossy(&rest)));
            }
        }
        out
    }
}

/// Which steps BuildKit shows (FROM, RUN, COPY, ADD, WORKDIR: the
/// filesystem steps) and their places among the shown steps of their
/// stage, from the builder's places of every step (stage, position from 1,
/// count).
fn shown_places(
    df: &pier_builder::dockerfile::Dockerfile,
    places: BTreeMap<usize, (usize, usize, usize)>,
) -> BTreeMap<usize, Option<(usize, usize)>> {
    use pier_builder::dockerfile::Kind;
    places
        .into_iter()
        .map(|(n, (i, k, count))| {
            let Some(stage) = df.stages.get(i) else {
                return (n, Some((k, count)));
            };
            let shown: Vec<usize> = std::iter::once(1)
                .chain(
                    stage
                        .instructions
                        .iter()
                        .enumerate()
                        .filter_map(|(j, ins)| {
                            matches!(
                                ins.kind,
                                Kind::Run { .. }
                                    | Kind::Copy(_)
                                    | Kind::Add { .. }
                                    | Kind::Workdir(_)
                            )
                            .then_some(j + 2)
                        }),
                )
                .collect();
            let place = shown
                .iter()
                .position(|p| *p == k)
                .map(|at| (at + 1, shown.len()));
            (n, place)
        })
        .collect()
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /build`.
pub async fn build(
    engine: State,
    q: Query,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    let p = params(&q, uri.query().unwrap_or(""))?;
    // Base images the store lacks are pulled with the client's
    // credentials (docker's CLI sends all it has).
    let auths = match headers.get("x-registry-config") {
        None => Default::default(),
        Some(v) => pier_registry_client::Credentials::from_config_header(
            v.to_str()
                .map_err(|_| Error::bad_request("X-Registry-Config is not ASCII base64"))?,
        )
        .map_err(|e| Error::bad_request(e.to_string()))?,
    };
    let puller = Some(crate::build::pull::puller(engine.0.clone(), auths));
    if let Some(dir) = &p.context_path {
        // pierd listens on its unix socket only: whoever can ask is local
        // (and root-equivalent, as with docker's socket).
        check_context_dir(dir, p.context_id)?;
        drop(body);
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
        let engine = engine.0.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let send = |b: Bytes| {
                let _ = tx.blocking_send(Ok(b));
            };
            let weak = tx.downgrade();
            let gone = Box::new(move || weak.upgrade().is_none_or(|t| t.is_closed()));
            for b in run_build(&engine, &p, Source::InPlace, &dir, &send, gone, puller) {
                send(b);
            }
        });
        let mut rx = rx;
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            Body::from_stream(body),
        )
            .into_response());
    }
    let builder_dir = engine.config.data_root.join("builder");
    let tmp_root = builder_dir.join("tmp");
    std::fs::create_dir_all(&tmp_root)
        .map_err(|e| Error::internal(format!("creating {}: {e}", tmp_root.display())))?;
    let tmp = TempDir(tmp_root.join(crate::container::names::new_id()));
    let ctx_dir = tmp.0.join("context");
    std::fs::create_dir_all(&ctx_dir)
        .map_err(|e| Error::internal(format!("creating {}: {e}", ctx_dir.display())))?;

    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
    let (reader, feeder) = BodyReader::feed(body);
    let engine = engine.0.clone();
    tokio::task::spawn_blocking(move || {
        let send = |b: Bytes| {
            let _ = tx.blocking_send(Ok(b));
        };
        // The last messages go after the temporary context is removed: a
        // client may leave as soon as it reads an error.
        let weak = tx.downgrade();
        let gone = Box::new(move || weak.upgrade().is_none_or(|t| t.is_closed()));
        let last = run_build(
            &engine,
            &p,
            Source::Body(reader, feeder),
            &ctx_dir,
            &send,
            gone,
            puller,
        );
        drop(tmp);
        for b in last {
            send(b);
        }
    });
    let mut rx = rx;
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// docker's error message in the stream.
fn failure(m: &str, code: Option<i32>) -> Bytes {
    let mut detail = serde_json::json!({ "message": m });
    if let Some(c) = code {
        detail["code"] = c.into();
    }
    message(serde_json::json!({"errorDetail": detail, "error": m}))
}

/// Checks a `pier-context-path`: an existing directory pierd can read,
/// named without symlinks (as the CLI sends it), and the one the client
/// saw when it gives its device and inode.
fn check_context_dir(dir: &Path, id: Option<(u64, u64)>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let bad = |m: String| Error::bad_request(format!("pier-context-path {}: {m}", dir.display()));
    let md = std::fs::metadata(dir).map_err(|e| bad(format!("{e}")))?;
    if !md.is_dir() {
        return Err(bad("not a directory: give the context directory".into()));
    }
    match std::fs::canonicalize(dir) {
        Ok(real) if real == dir => {}
        Ok(real) => {
            return Err(bad(format!(
                "not a canonical path (it is {}): give the path without symlinks, . or ..",
                real.display()
            )))
        }
        Err(e) => return Err(bad(format!("{e}"))),
    }
    if let Some((dev, ino)) = id {
        if (md.dev(), md.ino()) != (dev, ino) {
            return Err(bad(
                "the daemon sees another directory at that path than the client (is the client \
                 in another mount namespace?): send the context as a tar"
                    .into(),
            ));
        }
    }
    std::fs::read_dir(dir).map_err(|e| bad(format!("cannot be read by the daemon: {e}")))?;
    Ok(())
}

/// Where the context comes from.
enum Source {
    /// The request body (a tar or a Dockerfile), unpacked into the
    /// build's private directory.
    Body(BodyReader, tokio::task::JoinHandle<()>),
    /// The client's directory, read where it is.
    InPlace,
}

/// Unpacks the context (or takes it where it is) and builds, sending
/// progress with `send`; returns the closing messages (the result or the
/// error).
fn run_build(
    engine: &crate::Engine,
    p: &Params,
    source: Source,
    ctx_dir: &Path,
    send: &(dyn Fn(Bytes) + Sync),
    gone: Box<dyn Fn() -> bool + Send + Sync>,
    puller: Option<crate::build::pull::Puller>,
) -> Vec<Bytes> {
    {
        let fail = |m: &str, code: Option<i32>| vec![failure(m, code)];
        let in_place = matches!(source, Source::InPlace);
        let unpacked = match source {
            Source::Body(reader, feeder) => {
                let u = context::unpack(reader, ctx_dir);
                feeder.abort();
                u
            }
            Source::InPlace => Ok(Context::Archive),
        };
        let dockerfile = match unpacked {
            Err(e) => return fail(&e, None),
            Ok(Context::Dockerfile(text)) => Ok(text),
            Ok(Context::Archive) => context::read_dockerfile(ctx_dir, &p.dockerfile),
        };
        let dockerfile = match dockerfile {
            Ok(d) => d,
            Err(e) => return fail(&e, None),
        };
        let opts = BuildOptions {
            dockerfile,
            dockerfile_name: p.dockerfile.clone(),
            context: ctx_dir.to_path_buf(),
            context_in_place: in_place,
            tags: p.tags.clone(),
            build_args: p.build_args.clone(),
            target: p.target.clone(),
            no_cache: p.no_cache,
            pull: p.pull,
            labels: p.labels.clone(),
        };
        let mut worker = crate::build::RuntimeWorker::new(&engine.config);
        worker.gone = Some(gone);
        worker.no_network = p.no_network;
        worker.puller = puller;
        let cache_dir = engine.config.data_root.join("builder").join("cache");
        let parsed =
            pier_builder::dockerfile::parse_with_warnings(&opts.dockerfile, &opts.dockerfile_name);
        let progress = Mutex::new(Progress {
            single_stage: parsed.as_ref().is_ok_and(|(d, _)| d.stages.len() == 1),
            places: match (&parsed, pier_builder::build::step_places(&opts)) {
                (Ok((df, _)), Ok(places)) => shown_places(df, places),
                _ => BTreeMap::new(),
            },
            ..Default::default()
        });
        // With -q the progress is kept and shown only if the build fails.
        let held = Mutex::new(String::new());
        // The parser's warnings first, as dockerd prints them.
        if let Ok((_, warnings)) = &parsed {
            if !warnings.is_empty() {
                let mut text: String = warnings
                    .iter()
                    .map(|w| format!("[WARNING]: {w}\n"))
                    .collect();
                text.push_str(pier_builder::dockerfile::EMPTY_CONTINUATION_NOTE);
                text.push('\n');
                if p.quiet {
                    lock(&held).push_str(&text);
                } else {
                    send(stream(&text));
                }
            }
        }
        let quiet = p.quiet;
        let events = |ev: BuildEvent| {
            let text = lock(&progress).lines(ev);
            if text.is_empty() {
                return;
            }
            if quiet {
                lock(&held).push_str(&text);
            } else {
                send(stream(&text));
            }
        };
        let result = pier_builder::build(&engine.images, &worker, &cache_dir, &opts, &events);
        let rest = lock(&progress).rest();
        match result {
            Ok(out) => {
                let mut last = vec![message(serde_json::json!({"aux": {"ID": out.image_id}}))];
                if quiet {
                    last.push(stream(&format!("{}\n", out.image_id)));
                    return last;
                }
                let hex = out.image_id.trim_start_matches("sha256:");
                let mut text = format!("Successfully built {}\n", &hex[..hex.len().min(12)]);
                for t in &p.tags {
                    let shown = pier_image::reference::Reference::parse(t)
                        .map(|r| r.familiar())
                        .unwrap_or_else(|_| t.clone());
                    text.push_str(&format!("Successfully tagged {shown}\n"));
                }
                last.push(stream(&text));
                last
            }
            Err(e) => {
                let mut text = std::mem::take(&mut *lock(&held));
                text.push_str(&rest);
                if !text.is_empty() {
                    send(stream(&text));
                }
                let code = match &e {
                    pier_builder::Error::RunFailed { code, .. } => Some(*code),
                    _ => None,
                };
                fail(&e.to_string(), code)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Blocking `Read` over a request body, for the unpacking thread.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<std::result::Result<Bytes, String>>,
    current: Bytes,
}

impl BodyReader {
    /// The reader and the task feeding it (abort it when done reading).
    fn feed(body: Body) -> (BodyReader, tokio::task::JoinHandle<()>) {
        use futures_util::StreamExt;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut stream = body.into_data_stream();
        let feeder = tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                let msg = chunk.map_err(|e| format!("reading the request body: {e}"));
                let failed = msg.is_err();
                if tx.send(msg).await.is_err() || failed {
                    break;
                }
            }
        });
        (
            BodyReader {
                rx,
                current: Bytes::new(),
            },
            feeder,
        )
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_buildkits_plain_output() {
        let mut p = Progress::default();
        let step = p.lines(BuildEvent::Step {
            n: 2,
            total: 3,
            stage: "0".into(),
            text: "RUN echo hi".into(),
        });
        assert_eq!(step, "#2 [stage-0 2/3] RUN echo hi\n");
        let named = p.lines(BuildEvent::Step {
            n: 1,
            total: 3,
            stage: "build".into(),
            text: "FROM x".into(),
        });
        assert_eq!(named, "#1 [build 1/3] FROM x\n");
        let mut single = Progress {
            single_stage: true,
            ..Default::default()
        };
        let step = single.lines(BuildEvent::Step {
            n: 1,
            total: 2,
            stage: "0".into(),
            text: "FROM x".into(),
        });
        assert_eq!(step, "#1 [1/2] FROM x\n");
        let mut placed = Progress {
            places: [(4, Some((2, 3))), (5, None)].into_iter().collect(),
            ..Default::default()
        };
        let step = placed.lines(BuildEvent::Step {
            n: 4,
            total: 6,
            stage: "build".into(),
            text: "RUN x".into(),
        });
        assert_eq!(step, "#1 [build 2/3] RUN x\n");
        let hidden = placed.lines(BuildEvent::Step {
            n: 5,
            total: 6,
            stage: "build".into(),
            text: "CMD x".into(),
        });
        assert_eq!(hidden, "");
        assert_eq!(placed.lines(BuildEvent::Done { n: 5, secs: 0.0 }), "");
        assert_eq!(
            placed.lines(BuildEvent::Done { n: 4, secs: 0.0 }),
            "#1 DONE 0.0s\n\n"
        );
        assert_eq!(
            p.lines(BuildEvent::Output {
                n: 2,
                data: b"par".to_vec()
            }),
            ""
        );
        let out = p.lines(BuildEvent::Output {
            n: 2,
            data: b"tial\nnext".to_vec(),
        });
        assert!(
            out.starts_with("#2 0.") && out.ends_with(" partial\n"),
            "{out:?}"
        );
        let done = p.lines(BuildEvent::Done { n: 2, secs: 0.42 });
        assert!(done.ends_with(" next\n#2 DONE 0.4s\n\n"), "{done:?}");
        assert_eq!(p.lines(BuildEvent::Cached { n: 3 }), "#3 CACHED\n\n");
        assert_eq!(p.lines(BuildEvent::Done { n: 3, secs: 0.0 }), "");
        assert_eq!(p.rest(), "");
    }

    #[test]
    fn the_query_is_read_as_docker_sends_it() {
        let raw =
            "t=a%3A1&t=b&dockerfile=sub%2FDf&buildargs=%7B%22X%22%3A%221%22%2C%22N%22%3Anull%7D\
                   &labels=%7B%22l%22%3A%22v%22%7D&nocache=1&q=1&target=build";
        let q: HashMap<String, String> = serde_urlencoded_pairs(raw);
        let p = params(&q, raw).unwrap();
        assert_eq!(p.tags, ["a:1", "b"]);
        assert_eq!(p.dockerfile, "sub/Df");
        assert_eq!(p.build_args.get("X").map(String::as_str), Some("1"));
        assert!(!p.build_args.contains_key("N"));
        assert_eq!(p.labels.get("l").map(String::as_str), Some("v"));
        assert!(p.no_cache && p.quiet);
        assert_eq!(p.target.as_deref(), Some("build"));
        let v2 = "version=2";
        assert!(params(&serde_urlencoded_pairs(v2), v2).is_err());
        let v1 = "version=1";
        assert!(params(&serde_urlencoded_pairs(v1), v1).is_ok());
        let bad = "t=UPPER";
        assert!(params(&serde_urlencoded_pairs(bad), bad).is_err());
        assert_eq!(
            params(&HashMap::new(), "").unwrap().dockerfile,
            "Dockerfile"
        );
    }

    fn serde_urlencoded_pairs(raw: &str) -> HashMap<String, String> {
        raw.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, _)| (k.to_string(), query_all(raw, k).pop().unwrap_or_default()))
            .collect()
    }
}
