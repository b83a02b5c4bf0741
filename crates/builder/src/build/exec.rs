//! The executor: which stages to build, in what order (independent ones
//! in parallel), and each step's effect on the stage's layers and config.
//!
//! History entries are written as BuildKit writes them: `created_by` is
//! `CMD ["sh"]`-style for config steps (Go's `%q` of the list, as BuildKit)
//! and `RUN /bin/sh -c ... # buildkit` for steps that make a layer, with
//! the comment `buildkit.dockerfile.v0`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::cache::Cache;
use super::fs as bfs;
use super::hashcache::HashCache;
use super::{BuildEvent, BuildOptions, BuildOutput, Error, RunRequest, Worker};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{
    self, ArgDecl, Command, Copy, Dockerfile, Healthcheck, Instruction, Kind, Stage,
};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// ARGs every build has without declaring them (RUN sees them when given
/// with --build-arg; they stay out of history, as docker).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A built stage: what later stages and the final image start from.
#[derive(Debug, Clone)]
pub struct StageState {
    pub layers: Vec<PathBuf>,
    pub diff_ids: Vec<String>,
    /// Docker's image config JSON (architecture, os, config, history, rootfs).
    pub image: Value,
    /// The cache key of the last step.
    pub key: String,
}

/// A stage's outcome (its error is kept in `Shared::error`).
type StageResult = Result<Arc<StageState>, ()>;

struct Shared<'a> {
    store: &'a pier_image::Store,
    worker: &'a dyn Worker,
    cache: Cache,
    opts: &'a BuildOptions,
    events: &'a (dyn Fn(BuildEvent) + Sync),
    df: &'a Dockerfile,
    file: &'a str,
    ignore: Option<Ignore>,
    /// Digests of the context's files, for a context read in place.
    hashes: Option<Arc<HashCache>>,
    globals: BTreeMap<String, Option<String>>,
    /// Step numbers: first number of each stage (its FROM).
    first_step: Vec<usize>,
    total: usize,
    results: Mutex<Vec<Option<StageResult>>>,
    ready: Condvar,
    error: Mutex<Option<Error>>,
    cancel: AtomicBool,
    /// Images pulled by this build (one pull at a time: stages pulling
    /// the same base wait for the first).
    pulled: Mutex<std::collections::BTreeSet<String>>,
}

/// The Dockerfile's name for messages (`Dockerfile` when none was given).
fn dockerfile_name(opts: &BuildOptions) -> &str {
    if opts.dockerfile_name.is_empty() {
        "Dockerfile"
    } else {
        opts.dockerfile_name.as_str()
    }
}

pub fn build(
    store: &pier_image::Store,
    worker: &dyn Worker,
    cache_dir: &Path,
    opts: &BuildOptions,
    events: &(dyn Fn(BuildEvent) + Sync),
) -> Result<BuildOutput, Error> {
    let file = dockerfile_name(opts);
    let df = dockerfile::parse(&opts.dockerfile, file)?;
    build_parsed(store, worker, cache_dir, opts, &df, events)
}

/// [`build`] of a parsed Dockerfile.
pub fn build_parsed(
    store: &pier_image::Store,
    worker: &dyn Worker,
    cache_dir: &Path,
    opts: &BuildOptions,
    df: &Dockerfile,
    events: &(dyn Fn(BuildEvent) + Sync),
) -> Result<BuildOutput, Error> {
    let file = dockerfile_name(opts);
    if df.stages.is_empty() {
        return Err(Error::Invalid(format!(
            "{file}: the Dockerfile has no FROM instruction; start it with FROM IMAGE or FROM scratch"
        )));
    }
    let md = std::fs::metadata(&opts.context).map_err(|e| Error::Io {
        what: format!("reading the build context {}", opts.context.display()),
        source: e,
    })?;
    if !md.is_dir() {
        return Err(Error::Invalid(format!(
            "the build context {} is not a directory",
            opts.context.display()
        )));
    }
    let ignore = match std::fs::read_to_string(opts.context.join(".dockerignore")) {
        Ok(t) => Some(Ignore::parse(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::Io {
                what: "reading .dockerignore in the build context".into(),
                source: e,
            })
        }
    };
    let cache = Cache::open(cache_dir)?;

    let Plan {
        globals,
        deps,
        needed,
        first_step,
        total,
        target,
    } = plan(df, opts, file)?;
    let n = df.stages.len();

    let shared = Shared {
        store,
        worker,
        cache,
        opts,
        events,
        df,
        file,
        ignore,
        hashes: opts
            .context_in_place
            .then(|| HashCache::open(&cache_dir.join("hashcache"))),
        globals,
        first_step,
        total,
        results: Mutex::new(vec![None; n]),
        ready: Condvar::new(),
        error: Mutex::new(None),
        cancel: AtomicBool::new(false),
        pulled: Mutex::new(Default::default()),
    };
    std::thread::scope(|scope| {
        for i in (0..n).filter(|i| needed[*i]) {
            let shared = &shared;
            let deps = &deps[i];
            // A deep context tree is walked recursively: a large stack.
            let spawned = std::thread::Builder::new()
                .name(format!("build-stage-{i}"))
                .stack_size(256 << 20)
                .spawn_scoped(scope, move || {
                    let r = shared.wait_for(deps).and_then(|()| shared.build_stage(i));
                    let r = match r {
                        Ok(s) => Ok(Arc::new(s)),
                        Err(e) => {
                            shared.cancel.store(true, Ordering::SeqCst);
                            let mut slot = shared.error.lock().unwrap_or_else(|e| e.into_inner());
                            if slot.is_none() {
                                *slot = e;
                            }
                            Err(())
                        }
                    };
                    let mut res = shared.results.lock().unwrap_or_else(|e| e.into_inner());
                    res[i] = Some(r);
                    shared.ready.notify_all();
                });
            if let Err(e) = spawned {
                shared.cancel.store(true, Ordering::SeqCst);
                let mut slot = shared.error.lock().unwrap_or_else(|e| e.into_inner());
                if slot.is_none() {
                    *slot = Some(Error::Io {
                        what: "starting a build thread".into(),
                        source: e,
                    });
                }
                let mut res = shared.results.lock().unwrap_or_else(|e| e.into_inner());
                res[i] = Some(Err(()));
                shared.ready.notify_all();
            }
        }
    });
    if let Some(h) = &shared.hashes {
        // Only work saved for the next build: a failure to write it is
        // not the build's.
        let _ = h.save();
    }
    if let Some(e) = shared.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let res = shared
        .results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let Some(Some(Ok(state))) = res.into_iter().nth(target) else {
        return Err(Error::Invalid("the target stage was not built".into()));
    };
    let mut image = state.image.clone();
    if !opts.labels.is_empty() {
        let cfg = config_mut(&mut image);
        let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &opts.labels {
            labels[k] = v.clone().into();
        }
    }
    let summary = store.create_image(&image, &opts.tags)?;
    Ok(BuildOutput {
        image_id: summary.id,
    })
}

/// Which stages a build runs and how its steps are numbered.
struct Plan {
    globals: BTreeMap<String, Option<String>>,
    deps: Vec<Vec<usize>>,
    needed: Vec<bool>,
    /// Step number of each needed stage's FROM.
    first_step: Vec<usize>,
    total: usize,
    target: usize,
}

fn plan(df: &Dockerfile, opts: &BuildOptions, file: &str) -> Result<Plan, Error> {
    if df.stages.is_empty() {
        return Err(Error::Invalid(format!(
            "{file}: the Dockerfile has no FROM instruction; start it with FROM IMAGE or FROM scratch"
        )));
    }
    // Global ARGs: build args override defaults; defaults see earlier ones.
    let mut globals: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (k, v) in platform_args() {
        globals.insert(k.into(), Some(v));
    }
    let auto = globals.clone();
    let mut declared: BTreeMap<String, Option<String>> = BTreeMap::new();
    for a in &df.args {
        let v = match opts.build_args.get(&a.name) {
            Some(v) => Some(v.clone()),
            None => match &a.default {
                Some(d) => {
                    let look = |n: &str| {
                        declared
                            .get(n)
                            .cloned()
                            .flatten()
                            .or_else(|| auto.get(n).cloned().flatten())
                    };
                    Some(expand(d, &look, df.escape, file, df.stages[0].line)?)
                }
                None => auto.get(&a.name).cloned().flatten(),
            },
        };
        declared.insert(a.name.clone(), v);
    }
    globals.extend(declared);

    // Which stage is the result, and which stages it needs.
    let n = df.stages.len();
    let target = match &opts.target {
        Some(t) => {
            let t = t.to_lowercase();
            df.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "target stage {t:?} could not be found in {file}; the stages are: {}",
                        df.stages
                            .iter()
                            .enumerate()
                            .map(|(i, s)| s.name.clone().unwrap_or_else(|| i.to_string()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?
        }
        None => n - 1,
    };
    let glook = |name: &str| globals.get(name).cloned().flatten();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(n);
    for (i, s) in df.stages.iter().enumerate() {
        let mut d = Vec::new();
        let base = expand(&s.base, &glook, df.escape, file, s.line)?;
        if let Some(j) = stage_ref(df, i, &base, false) {
            d.push(j);
        }
        for ins in &s.instructions {
            if let Kind::Copy(c) | Kind::Add { copy: c, .. } = &ins.kind {
                if let Some(f) = &c.from {
                    let f = expand(f, &glook, df.escape, file, ins.line)?;
                    if let Some(j) = stage_ref(df, i, &f, true) {
                        d.push(j);
                    } else if f.parse::<usize>().is_ok() {
                        return Err(Error::Invalid(format!(
                            "{file}:{}: COPY --from={f}: there is no stage {f} before this one; stages are numbered from 0",
                            ins.line
                        )));
                    }
                }
            }
        }
        deps.push(d);
    }
    let mut needed = vec![false; n];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed[i] {
            needed[i] = true;
            todo.extend(deps[i].iter().copied());
        }
    }
    let mut first_step = vec![0; n];
    let mut total = 0;
    for i in 0..n {
        if needed[i] {
            first_step[i] = total + 1;
            total += 1 + df.stages[i].instructions.len();
        }
    }

    Ok(Plan {
        globals,
        deps,
        needed,
        first_step,
        total,
        target,
    })
}

/// For each step number of the build `opts` asks for: its stage's index,
/// its position in the stage and the stage's step count as BuildKit's
/// `[stage 2/3]` progress counts them: the FROM and the steps that make
/// a filesystem change (RUN, COPY, ADD, WORKDIR). Config-only steps
/// (CMD, ENV, ...), which BuildKit does not show, have position 0.
pub fn step_places(opts: &BuildOptions) -> Result<BTreeMap<usize, (usize, usize, usize)>, Error> {
    let file = dockerfile_name(opts);
    let df = dockerfile::parse(&opts.dockerfile, file)?;
    let p = plan(&df, opts, file)?;
    let mut out = BTreeMap::new();
    for (i, s) in df.stages.iter().enumerate() {
        if !p.needed[i] {
            continue;
        }
        let shown = |k: &Kind| {
            matches!(
                k,
                Kind::Run { .. } | Kind::Copy(_) | Kind::Add { .. } | Kind::Workdir(_)
            )
        };
        let count = 1 + s.instructions.iter().filter(|ins| shown(&ins.kind)).count();
        out.insert(p.first_step[i], (i, 1, count));
        let mut k = 1;
        for (j, ins) in s.instructions.iter().enumerate() {
            let pos = if shown(&ins.kind) {
                k += 1;
                k
            } else {
                0
            };
            out.insert(p.first_step[i] + 1 + j, (i, pos, count));
        }
    }
    Ok(out)
}

/// Stage `i`'s reference to an earlier stage: by name, or (for --from) by
/// index.
fn stage_ref(df: &Dockerfile, i: usize, name: &str, by_index: bool) -> Option<usize> {
    let lower = name.to_lowercase();
    if let Some(j) = df.stages[..i]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(j);
    }
    if by_index {
        if let Ok(j) = name.parse::<usize>() {
            if j < i {
                return Some(j);
            }
        }
    }
    None
}

fn platform_args() -> Vec<(&'static str, String)> {
    let arch = pier_image::manifest::host_arch().to_owned();
    let platform = format!("linux/{arch}");
    vec![
        ("TARGETPLATFORM", platform.clone()),
        ("TARGETOS", "linux".into()),
        ("TARGETARCH", arch.clone()),
        ("TARGETVARIANT", String::new()),
        ("BUILDPLATFORM", platform),
        ("BUILDOS", "linux".into()),
        ("BUILDARCH", arch),
        ("BUILDVARIANT", String::new()),
    ]
}

/// Expands one raw word (quotes removed, variables substituted), located.
pub fn expand(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
    file: &str,
    line: usize,
) -> Result<String, Error> {
    if !raw.contains(['$', '"', '\'', escape]) {
        return Ok(raw.to_owned());
    }
    dockerfile::expand::word(raw, lookup, escape)
        .map_err(|e| Error::Invalid(format!("{file}:{line}: {e}")))
}

fn expand_words(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
    file: &str,
    line: usize,
) -> Result<Vec<String>, Error> {
    if !raw.contains(['$', '"', '\'', escape]) {
        return Ok(raw.split_whitespace().map(str::to_owned).collect());
    }
    dockerfile::expand::words(raw, lookup, escape)
        .map_err(|e| Error::Invalid(format!("{file}:{line}: {e}")))
}

fn config_mut(image: &mut Value) -> &mut Map<String, Value> {
    if !image["config"].is_object() {
        image["config"] = json!({});
    }
    image["config"].as_object_mut().expect("an object")
}

/// Go's `%q` of a []string: `["a" "b"]`.
fn go_q(v: &[String]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).expect("strings serialise"))
        .collect();
    format!("[{}]", parts.join(" "))
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn now() -> String {
    pier_common::time::now_rfc3339()
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A step's scratch directory (upper, work, mount points); unmounts what
/// it mounted and removes itself when dropped.
pub struct StepDir {
    pub path: PathBuf,
    mounts: Vec<PathBuf>,
}

impl StepDir {
    pub fn new(cache: &Cache) -> Result<StepDir, Error> {
        let (s, ns) = pier_common::time::unix_now();
        let path = cache.tmp_dir().join(format!(
            "{}-{}-{s}{ns}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(path.join("upper"))
            .and_then(|()| std::fs::create_dir_all(path.join("work")))
            .map_err(|e| Error::Io {
                what: format!("creating {}", path.display()),
                source: e,
            })?;
        Ok(StepDir {
            path,
            mounts: Vec::new(),
        })
    }
    pub fn upper(&self) -> PathBuf {
        self.path.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }
    /// The step's view of the rootfs: `layers` with the upper dir on top,
    /// mounted at `<dir>/merged`; with no layers, the upper dir itself.
    pub fn mount_rw(&mut self, layers: &[PathBuf]) -> Result<PathBuf, Error> {
        if layers.is_empty() {
            return Ok(self.upper());
        }
        let target = self.path.join("merged");
        self.mount_at(layers, &target, true)?;
        Ok(target)
    }
    /// A read-only view of `layers` (a stage or image COPY --from reads).
    pub fn mount_ro(&mut self, layers: &[PathBuf], name: &str) -> Result<PathBuf, Error> {
        let target = self.path.join(name);
        if layers.is_empty() {
            std::fs::create_dir_all(&target).map_err(|e| Error::Io {
                what: format!("creating {}", target.display()),
                source: e,
            })?;
            return Ok(target);
        }
        self.mount_at(layers, &target, false)?;
        Ok(target)
    }
    fn mount_at(&mut self, layers: &[PathBuf], target: &Path, rw: bool) -> Result<(), Error> {
        std::fs::create_dir_all(target).map_err(|e| Error::Io {
            what: format!("creating {}", target.display()),
            source: e,
        })?;
        let (upper, work) = if rw {
            (self.upper(), self.work())
        } else {
            (PathBuf::new(), PathBuf::new())
        };
        pier_image::mount::mount_overlay(layers, &upper, &work, target).map_err(|e| Error::Io {
            what: "mounting the build step's filesystem".into(),
            source: e,
        })?;
        self.mounts.push(target.to_path_buf());
        Ok(())
    }
    pub fn unmount_all(&mut self) -> Result<(), Error> {
        while let Some(m) = self.mounts.pop() {
            pier_image::mount::unmount(&m).map_err(|e| Error::Io {
                what: "unmounting the build step's filesystem".into(),
                source: e,
            })?;
        }
        Ok(())
    }
}

impl Drop for StepDir {
    fn drop(&mut self) {
        let mut ok = true;
        while let Some(m) = self.mounts.pop() {
            ok &= pier_image::mount::unmount(&m).is_ok();
        }
        if ok {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The variables of a stage: ENV (in the config) and ARGs.
struct Scope {
    /// Declared ARGs in order, with their values.
    args: Vec<(String, Option<String>)>,
}

fn env_of(image: &Value) -> Vec<(String, String)> {
    image["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (e.to_owned(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Scope {
    fn arg(&self, name: &str) -> Option<String> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }
}

impl Shared<'_> {
    fn wait_for(&self, deps: &[usize]) -> Result<(), Option<Error>> {
        let mut res = self.results.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if deps.iter().any(|d| matches!(res[*d], Some(Err(())))) {
                return Err(None);
            }
            if deps.iter().all(|d| res[*d].is_some()) {
                return Ok(());
            }
            res = self.ready.wait(res).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn stage_result(&self, j: usize) -> Arc<StageState> {
        let res = self.results.lock().unwrap_or_else(|e| e.into_inner());
        match &res[j] {
            Some(Ok(s)) => s.clone(),
            _ => unreachable!("dependencies are built before their dependents"),
        }
    }

    fn loc(&self, line: usize) -> String {
        format!("{}:{line}", self.file)
    }

    fn stage_label(&self, i: usize) -> String {
        self.df.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| i.to_string())
    }

    fn build_stage(&self, i: usize) -> Result<StageState, Option<Error>> {
        let stage = &self.df.stages[i];
        let n0 = self.first_step[i];
        let label = self.stage_label(i);
        let started = Instant::now();
        (self.events)(BuildEvent::Step {
            n: n0,
            total: self.total,
            stage: label.clone(),
            text: format!("FROM {}", stage.base),
        });
        let mut st = self.from(i, stage).map_err(Some)?;
        let mut scope = Scope { args: Vec::new() };
        let mut cmd_set = false;
        // ONBUILD triggers of the base image run first, as docker.
        let triggers: Vec<String> = st.image["config"]["OnBuild"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if !triggers.is_empty() {
            config_mut(&mut st.image).insert("OnBuild".into(), Value::Null);
            for t in triggers {
                let parsed = dockerfile::parse(
                    &format!("FROM scratch\n{t}\n"),
                    &format!("{} (ONBUILD of {})", self.file, stage.base),
                )
                .map_err(|e| Some(e.into()))?;
                for ins in parsed.stages.into_iter().flat_map(|s| s.instructions) {
                    let ins = Instruction {
                        line: stage.line,
                        ..ins
                    };
                    self.step(i, n0, &ins, &mut st, &mut scope, &mut cmd_set)
                        .map_err(Some)?;
                }
            }
        }
        // The FROM's step ends after the triggers it ran.
        (self.events)(BuildEvent::Done {
            n: n0,
            secs: started.elapsed().as_secs_f64(),
        });
        for (k, ins) in stage.instructions.iter().enumerate() {
            if self.cancel.load(Ordering::SeqCst) {
                return Err(None);
            }
            let n = n0 + 1 + k;
            let started = Instant::now();
            (self.events)(BuildEvent::Step {
                n,
                total: self.total,
                stage: label.clone(),
                text: ins.original.clone(),
            });
            self.step(i, n, ins, &mut st, &mut scope, &mut cmd_set)
                .map_err(Some)?;
            (self.events)(BuildEvent::Done {
                n,
                secs: started.elapsed().as_secs_f64(),
            });
        }
        Ok(st)
    }

    fn from(&self, i: usize, stage: &Stage) -> Result<StageState, Error> {
        let glook = |n: &str| self.globals.get(n).cloned().flatten();
        let base = expand(&stage.base, &glook, self.df.escape, self.file, stage.line)?;
        if base.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: FROM needs an image name",
                self.loc(stage.line)
            )));
        }
        if let Some(j) = stage_ref(self.df, i, &base, false) {
            let s = self.stage_result(j);
            let mut s = (*s).clone();
            s.key = sha(&["stage", &s.key]);
            return Ok(s);
        }
        if base == "scratch" {
            return Ok(StageState {
                layers: Vec::new(),
                diff_ids: Vec::new(),
                image: json!({
                    "architecture": pier_image::manifest::host_arch(),
                    "os": "linux",
                    // As BuildKit's empty image.
                    "config": {"Env": [format!("PATH={DEFAULT_PATH}")], "WorkingDir": "/"},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                }),
                key: sha(&["scratch"]),
            });
        }
        let (id, image) = self.resolve_image(&base, self.first_step[i], stage.line)?;
        let img = self.store.resolve(&id)?;
        let mut clean = json!({
            "architecture": image.get("architecture").cloned().unwrap_or_else(|| pier_image::manifest::host_arch().into()),
            "os": image.get("os").cloned().unwrap_or_else(|| "linux".into()),
            "config": image.get("config").cloned().filter(|c| c.is_object()).unwrap_or_else(|| json!({})),
            "rootfs": image["rootfs"].clone(),
            "history": image.get("history").cloned().filter(|h| h.is_array()).unwrap_or_else(|| json!([])),
        });
        if let Some(v) = image.get("variant") {
            clean["variant"] = v.clone();
        }
        let diff_ids: Vec<String> = image["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // As BuildKit: PATH is always set.
        if !env_of(&clean).iter().any(|(k, _)| k == "PATH") {
            let cfg = config_mut(&mut clean);
            let env = cfg.entry("Env").or_insert_with(|| json!([]));
            if !env.is_array() {
                *env = json!([]);
            }
            env.as_array_mut()
                .expect("an array")
                .push(json!(format!("PATH={DEFAULT_PATH}")));
        }
        Ok(StageState {
            layers: img.layers,
            diff_ids,
            image: clean,
            key: sha(&["image", &id]),
        })
    }

    /// The image `name` (id, config) for step `n`: pulled first when the
    /// store lacks it, or with `--pull` (once per build), its progress as
    /// the step's output, as `docker build`.
    fn resolve_image(&self, name: &str, n: usize, line: usize) -> Result<(String, Value), Error> {
        let found =
            |e: pier_image::Error| Error::Invalid(format!("{}: {name}: {e}", self.loc(line)));
        let mut pulled = super::hashcache::lock(&self.pulled);
        let missing = match self.store.image_config_json(name) {
            Ok(_) if !self.opts.pull || pulled.contains(name) => false,
            Ok(_) => true,
            Err(pier_image::Error::ImageNotFound(_)) => true,
            Err(e) => return Err(found(e)),
        };
        if missing {
            let mut output = |data: &[u8]| {
                (self.events)(BuildEvent::Output {
                    n,
                    data: data.to_vec(),
                })
            };
            self.worker
                .pull(name, &mut output)
                .map_err(|e| Error::Invalid(format!("{}: {e}", self.loc(line))))?;
            pulled.insert(name.to_string());
        }
        drop(pulled);
        self.store.image_config_json(name).map_err(found)
    }

    fn lookup<'s>(
        &self,
        st: &StageState,
        scope: &'s Scope,
    ) -> impl Fn(&str) -> Option<String> + 's {
        let env = env_of(&st.image);
        move |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| scope.arg(name))
        }
    }

    /// Runs one instruction on the stage.
    fn step(
        &self,
        i: usize,
        n: usize,
        ins: &Instruction,
        st: &mut StageState,
        scope: &mut Scope,
        cmd_set: &mut bool,
    ) -> Result<(), Error> {
        let esc = self.df.escape;
        let file = self.file;
        let line = ins.line;
        let ex = |raw: &str, st: &StageState, scope: &Scope| -> Result<String, Error> {
            let look = self.lookup(st, scope);
            expand(raw, &look, esc, file, line)
        };
        match &ins.kind {
            Kind::Run {
                command,
                heredocs,
                flags,
            } => {
                if let Some((f, _)) = flags
                    .iter()
                    .find(|(f, _)| f != "network" && f != "security")
                {
                    return Err(Error::Invalid(format!(
                        "{}: RUN --{f} is not supported yet by pier build",
                        self.loc(line)
                    )));
                }
                self.run(i, n, ins, command, heredocs, st, scope)
            }
            Kind::Cmd(c) => {
                let v = self.command(c, st);
                config_mut(&mut st.image).insert("Cmd".into(), json!(v));
                *cmd_set = true;
                self.meta(st, format!("CMD {}", go_q(&v)))
            }
            Kind::Entrypoint(c) => {
                let v = self.command(c, st);
                let cfg = config_mut(&mut st.image);
                cfg.insert("Entrypoint".into(), json!(v));
                if !*cmd_set {
                    // As docker: ENTRYPOINT drops a CMD inherited from the base.
                    cfg.insert("Cmd".into(), Value::Null);
                }
                self.meta(st, format!("ENTRYPOINT {}", go_q(&v)))
            }
            Kind::Shell(v) => {
                if v.is_empty() {
                    return Err(Error::Invalid(format!(
                        "{}: SHELL needs at least one word",
                        self.loc(line)
                    )));
                }
                config_mut(&mut st.image).insert("Shell".into(), json!(v));
                self.meta(st, format!("SHELL [{}]", v.join(" ")))
            }
            Kind::Workdir(raw) => {
                let w = ex(raw, st, scope)?;
                if w.is_empty() {
                    return Err(Error::Invalid(format!(
                        "{}: WORKDIR needs a path",
                        self.loc(line)
                    )));
                }
                let cur = st.image["config"]["WorkingDir"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", if cur.is_empty() { "/" } else { &cur })
                };
                let wd = format!("/{}", bfs::clean_rel(&joined, false).unwrap_or_default());
                config_mut(&mut st.image).insert("WorkingDir".into(), json!(wd));
                self.workdir(n, line, st, &wd)
            }
            Kind::Env(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = ex(k, st, scope)?;
                    let v = ex(v, st, scope)?;
                    if k.is_empty() {
                        return Err(Error::Invalid(format!(
                            "{}: ENV names cannot be empty",
                            self.loc(line)
                        )));
                    }
                    let mut env = env_of(&st.image);
                    match env.iter_mut().find(|(ek, _)| *ek == k) {
                        Some(e) => e.1 = v.clone(),
                        None => env.push((k.clone(), v.clone())),
                    }
                    let list: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    config_mut(&mut st.image).insert("Env".into(), json!(list));
                    shown.push(format!("{k}={v}"));
                }
                self.meta(st, format!("ENV {}", shown.join(" ")))
            }
            Kind::Arg(decls) => {
                let mut shown = Vec::new();
                let mut values = Vec::new();
                for ArgDecl { name, default } in decls {
                    let v = match self.opts.build_args.get(name) {
                        Some(v) => Some(v.clone()),
                        None => match default {
                            Some(d) => Some(ex(d, st, scope)?),
                            None => self.globals.get(name).cloned().flatten(),
                        },
                    };
                    // As BuildKit: the ARG as declared (default expanded).
                    shown.push(match default {
                        Some(d) => format!("{name}={}", ex(d, st, scope)?),
                        None => name.clone(),
                    });
                    values.push(format!("{name}={v:?}"));
                    scope.args.push((name.clone(), v));
                }
                self.meta_keyed(st, format!("ARG {}", shown.join(" ")), &values.join("\0"))
            }
            Kind::Label(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = ex(k, st, scope)?;
                    let v = ex(v, st, scope)?;
                    let cfg = config_mut(&mut st.image);
                    let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
                    if !labels.is_object() {
                        *labels = json!({});
                    }
                    labels[&k] = json!(v);
                    shown.push(format!("{k}={v}"));
                }
                self.meta(st, format!("LABEL {}", shown.join(" ")))
            }
            Kind::Expose(raw) => {
                let mut ports = Vec::new();
                for r in raw {
                    let look = self.lookup(st, scope);
                    for w in expand_words(r, &look, esc, file, line)? {
                        ports.extend(parse_ports(&w).map_err(|e| {
                            Error::Invalid(format!("{}: EXPOSE {w}: {e}", self.loc(line)))
                        })?);
                    }
                }
                let cfg = config_mut(&mut st.image);
                let map = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
                if !map.is_object() {
                    *map = json!({});
                }
                for p in &ports {
                    map[p] = json!({});
                }
                // Go prints a map sorted by key.
                let sorted: std::collections::BTreeSet<&String> = ports.iter().collect();
                let shown: Vec<String> = sorted.iter().map(|p| format!("{p}:{{}}")).collect();
                self.meta(st, format!("EXPOSE map[{}]", shown.join(" ")))
            }
            Kind::User(raw) => {
                let u = ex(raw, st, scope)?;
                config_mut(&mut st.image).insert("User".into(), json!(u));
                self.meta(st, format!("USER {u}"))
            }
            Kind::Volume(raw) => {
                let mut vols = Vec::new();
                for r in raw {
                    let v = ex(r, st, scope)?;
                    if v.trim().is_empty() {
                        return Err(Error::Invalid(format!(
                            "{}: VOLUME specified can not be an empty string",
                            self.loc(line)
                        )));
                    }
                    vols.push(v);
                }
                let cfg = config_mut(&mut st.image);
                let map = cfg.entry("Volumes").or_insert_with(|| json!({}));
                if !map.is_object() {
                    *map = json!({});
                }
                for v in &vols {
                    map[v] = json!({});
                }
                self.meta(st, format!("VOLUME [{}]", vols.join(" ")))
            }
            Kind::StopSignal(raw) => {
                let s = ex(raw, st, scope)?;
                if s.is_empty() {
                    return Err(Error::Invalid(format!(
                        "{}: STOPSIGNAL needs a signal",
                        self.loc(line)
                    )));
                }
                config_mut(&mut st.image).insert("StopSignal".into(), json!(s));
                self.meta(st, format!("STOPSIGNAL {s}"))
            }
            Kind::Healthcheck(h) => {
                let v = self.healthcheck(h, line)?;
                let v_hist = v.clone();
                config_mut(&mut st.image).insert("Healthcheck".into(), v);
                let text = healthcheck_history(&v_hist);
                self.meta(st, text)
            }
            Kind::Onbuild(t) => {
                let cfg = config_mut(&mut st.image);
                let list = cfg.entry("OnBuild").or_insert_with(|| json!([]));
                if !list.is_array() {
                    *list = json!([]);
                }
                list.as_array_mut().expect("an array").push(json!(t));
                self.meta(st, format!("ONBUILD {t}"))
            }
            Kind::Maintainer(m) => {
                st.image["author"] = json!(m);
                self.meta(st, format!("MAINTAINER {m}"))
            }
            Kind::Copy(c) => self.copy(i, n, ins, c, false, st, scope),
            Kind::Add {
                copy,
                checksum,
                keep_git_dir,
            } => {
                if checksum.is_some() || *keep_git_dir {
                    return Err(Error::Invalid(format!(
                        "{}: ADD --checksum and --keep-git-dir are for URLs and git sources, which pier build does not fetch yet",
                        self.loc(line)
                    )));
                }
                self.copy(i, n, ins, copy, true, st, scope)
            }
        }
    }

    /// The argv of CMD/ENTRYPOINT/RUN: exec form as is, shell form with SHELL.
    fn command(&self, c: &Command, st: &StageState) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = self.shell(st);
                v.push(s.clone());
                v
            }
        }
    }

    fn shell(&self, st: &StageState) -> Vec<String> {
        st.image["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn healthcheck(&self, h: &Healthcheck, line: usize) -> Result<Value, Error> {
        let mut v = Map::new();
        match &h.test {
            None => {
                v.insert("Test".into(), json!(["NONE"]));
                return Ok(Value::Object(v));
            }
            Some(Command::Exec(a)) => {
                let mut t = vec!["CMD".to_owned()];
                t.extend(a.iter().cloned());
                v.insert("Test".into(), json!(t));
            }
            Some(Command::Shell(s)) => {
                v.insert("Test".into(), json!(["CMD-SHELL", s]));
            }
        }
        for (name, raw) in [
            ("Interval", &h.interval),
            ("Timeout", &h.timeout),
            ("StartPeriod", &h.start_period),
            ("StartInterval", &h.start_interval),
        ] {
            if let Some(r) = raw {
                let ns = pier_common::duration::parse_go_duration(r)
                    .filter(|d| *d >= 0)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "{}: HEALTHCHECK: {r:?} is not a duration (like 30s or 1m30s)",
                            self.loc(line)
                        ))
                    })?;
                if ns != 0 && ns < 1_000_000 {
                    return Err(Error::Invalid(format!(
                        "{}: HEALTHCHECK: {name} cannot be less than 1ms",
                        self.loc(line)
                    )));
                }
                if ns != 0 {
                    v.insert(name.into(), json!(ns as i64));
                }
            }
        }
        if let Some(r) = &h.retries {
            let n: i64 = r.parse().map_err(|_| {
                Error::Invalid(format!(
                    "{}: HEALTHCHECK --retries={r}: not a number",
                    self.loc(line)
                ))
            })?;
            if n < 0 {
                return Err(Error::Invalid(format!(
                    "{}: HEALTHCHECK --retries cannot be negative",
                    self.loc(line)
                )));
            }
            if n != 0 {
                v.insert("Retries".into(), json!(n));
            }
        }
        Ok(Value::Object(v))
    }

    /// A config-only step: a history entry with `empty_layer`, the key
    /// moved on, and the entry's time taken from the cache when the same
    /// step was made before (so an unchanged build has the same image id).
    fn meta(&self, st: &mut StageState, created_by: String) -> Result<(), Error> {
        self.meta_keyed(st, created_by, "")
    }

    /// [`Self::meta`] with more to the key than the history text shows.
    fn meta_keyed(
        &self,
        st: &mut StageState,
        created_by: String,
        extra: &str,
    ) -> Result<(), Error> {
        let key = sha(&[&st.key, "meta", &created_by, extra]);
        let created = match (!self.opts.no_cache)
            .then(|| self.cache.get(&key))
            .flatten()
        {
            Some(r) => r.created,
            None => {
                let t = now();
                self.cache.put(&key, None, &t)?;
                t
            }
        };
        self.history(st, &created_by, &created, true);
        st.key = key;
        Ok(())
    }

    fn history(&self, st: &mut StageState, created_by: &str, created: &str, empty: bool) {
        let mut h =
            json!({"created": created, "created_by": created_by, "comment": HISTORY_COMMENT});
        if empty {
            h["empty_layer"] = json!(true);
        }
        if !st.image["history"].is_array() {
            st.image["history"] = json!([]);
        }
        st.image["history"]
            .as_array_mut()
            .expect("an array")
            .push(h);
        st.image["created"] = json!(created);
    }

    /// A cache hit for a layer step: the layer when its snapshot is still
    /// in the store.
    fn hit(
        &self,
        n: usize,
        key: &str,
        st: &StageState,
    ) -> Option<(Option<(String, PathBuf)>, String)> {
        if self.opts.no_cache {
            return None;
        }
        let rec = self.cache.get(key)?;
        let layer = match rec.diff_id {
            None => None,
            Some(d) => {
                let mut ids = st.diff_ids.clone();
                ids.push(d.clone());
                Some((d, self.store.stacked_snapshot(&ids)?))
            }
        };
        (self.events)(BuildEvent::Cached { n });
        Some((layer, rec.created))
    }

    /// A step that just ran: its result goes into the cache, then onto the
    /// stage.
    fn record_layer(
        &self,
        st: &mut StageState,
        layer: Option<(String, PathBuf)>,
        key: String,
        created_by: &str,
    ) -> Result<(), Error> {
        let created = now();
        self.cache
            .put(&key, layer.as_ref().map(|l| l.0.as_str()), &created)?;
        self.add_layer(st, layer, key, created_by, &created);
        Ok(())
    }

    fn add_layer(
        &self,
        st: &mut StageState,
        layer: Option<(String, PathBuf)>,
        key: String,
        created_by: &str,
        created: &str,
    ) {
        let empty = layer.is_none();
        if let Some((d, p)) = layer {
            st.diff_ids.push(d);
            st.layers.push(p);
            st.image["rootfs"] = json!({"type": "layers", "diff_ids": st.diff_ids});
        }
        self.history(st, created_by, created, empty);
        st.key = key;
    }

    /// Writes the step's upper dir as a layer; None when it is empty and
    /// `skip_empty`.
    fn commit_upper(
        &self,
        st: &StageState,
        dir: &StepDir,
        skip_empty: bool,
    ) -> Result<Option<(String, PathBuf)>, Error> {
        let upper = dir.upper();
        if skip_empty
            && std::fs::read_dir(&upper)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        {
            return Ok(None);
        }
        Ok(Some(self.store.add_layer(&st.diff_ids, &upper)?))
    }

    fn workdir(&self, n: usize, line: usize, st: &mut StageState, wd: &str) -> Result<(), Error> {
        let created_by = format!("WORKDIR {wd}");
        let user = st.image["config"]["User"].as_str().unwrap_or("").to_owned();
        let key = sha(&[&st.key, "workdir", wd, &user]);
        if let Some((layer, created)) = self.hit(n, &key, st) {
            self.add_layer(st, layer, key, &created_by, &created);
            return Ok(());
        }
        let mut dir = StepDir::new(&self.cache)?;
        let root = dir.mount_rw(&st.layers)?;
        let io = |e| Error::Io {
            what: format!("creating the WORKDIR {wd}"),
            source: e,
        };
        // As BuildKit: the directories WORKDIR makes belong to the USER.
        let owner =
            bfs::Owner {
                chown: Some(bfs::resolve_user(&root, &user).map_err(|e| {
                    Error::Invalid(format!("{}: WORKDIR {wd}: {e}", self.loc(line)))
                })?),
                chmod: None,
            };
        let target = bfs::resolve_in(&root, wd, true).map_err(io)?;
        bfs::mkdir_all(&target, &owner).map_err(io)?;
        dir.unmount_all()?;
        let layer = self.commit_upper(st, &dir, true)?;
        self.record_layer(st, layer, key, &created_by)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        _i: usize,
        n: usize,
        ins: &Instruction,
        command: &Command,
        heredocs: &[dockerfile::Heredoc],
        st: &mut StageState,
        scope: &Scope,
    ) -> Result<(), Error> {
        let mut args = self.command(command, st);
        if args.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: RUN needs a command; the exec form [] is empty",
                self.loc(ins.line)
            )));
        }
        if let (Command::Shell(text), false) = (command, heredocs.is_empty()) {
            let t = text.trim();
            let only = heredocs.len() == 1
                && t.starts_with("<<")
                && t.trim_start_matches(['<', '-', '"', '\''])
                    .trim_end_matches(['"', '\''])
                    == heredocs[0].name;
            let last = args.len() - 1;
            if only {
                args[last] = heredocs[0].content.clone();
            } else {
                let mut s = text.clone();
                for h in heredocs {
                    s.push('\n');
                    s.push_str(&h.content);
                    if !h.content.ends_with('\n') {
                        s.push('\n');
                    }
                    s.push_str(&h.name);
                }
                s.push('\n');
                args[last] = s;
            }
        }
        // ENV first, then the ARGs ENV does not override, then proxies.
        let env = env_of(&st.image);
        let mut vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !env.iter().any(|(k, _)| k == "PATH") {
            vars.push(format!("PATH={DEFAULT_PATH}"));
        }
        let mut arg_vars: Vec<String> = Vec::new();
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for (k, v) in scope.args.iter().rev() {
            if seen.insert(k, ()).is_some() || env.iter().any(|(ek, _)| ek == k) {
                continue;
            }
            if let Some(v) = v {
                arg_vars.push(format!("{k}={v}"));
            }
        }
        arg_vars.reverse();
        let mut proxies = Vec::new();
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(*p) {
                if !arg_vars.iter().any(|a| a.starts_with(&format!("{p}="))) {
                    proxies.push(format!("{p}={v}"));
                }
            }
        }
        let cwd = st.image["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned();
        let user = st.image["config"]["User"].as_str().unwrap_or("").to_owned();
        // As BuildKit: every ARG declared in the stage, in order (again
        // when declared again), with its current value, ENV's if ENV sets it.
        let shown_args: Vec<String> = scope
            .args
            .iter()
            .map(|(k, _)| {
                let v = env
                    .iter()
                    .rev()
                    .find(|(ek, _)| ek == k)
                    .map(|(_, v)| v.clone())
                    .or_else(|| scope.arg(k))
                    .unwrap_or_default();
                format!("{k}={v}")
            })
            .collect();
        let created_by = if shown_args.is_empty() {
            format!("RUN {} # buildkit", args.join(" "))
        } else {
            format!(
                "RUN |{} {} {} # buildkit",
                shown_args.len(),
                shown_args.join(" "),
                args.join(" ")
            )
        };
        // As runc (docker's RUN): HOME from the user's passwd entry.
        if !env.iter().any(|(k, _)| k == "HOME") {
            vars.push(format!("HOME={}", home_of(&st.layers, &user)));
        }
        let all_env: Vec<String> = vars
            .iter()
            .chain(&arg_vars)
            .chain(&proxies)
            .cloned()
            .collect();
        let key = sha(&[
            &st.key,
            "run",
            &serde_json::to_string(&args).expect("strings"),
            &all_env.join("\0"),
            &cwd,
            &user,
        ]);
        if let Some((layer, created)) = self.hit(n, &key, st) {
            self.add_layer(st, layer, key, &created_by, &created);
            return Ok(());
        }
        let dir = StepDir::new(&self.cache)?;
        let (upper, work) = (dir.upper(), dir.work());
        let req = RunRequest {
            layers: &st.layers,
            upper: &upper,
            work: &work,
            args: args.clone(),
            env: all_env,
            cwd,
            user,
        };
        let code = self
            .worker
            .run(&req, &mut |data: &[u8]| {
                (self.events)(BuildEvent::Output {
                    n,
                    data: data.to_vec(),
                })
            })
            .map_err(|e| Error::Worker(format!("{}: {}: {e}", self.loc(ins.line), ins.original)))?;
        if code != 0 {
            return Err(Error::RunFailed {
                command: args.join(" "),
                code,
            });
        }
        let layer = self.commit_upper(st, &dir, false)?;
        drop(dir);
        self.record_layer(st, layer, key, &created_by)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        i: usize,
        n: usize,
        ins: &Instruction,
        c: &Copy,
        add: bool,
        st: &mut StageState,
        scope: &Scope,
    ) -> Result<(), Error> {
        let line = ins.line;
        let what = if add { "ADD" } else { "COPY" };
        let look = self.lookup(st, scope);
        let esc = self.df.escape;
        let ex = |raw: &str| expand(raw, &look, esc, self.file, line);
        let bad = |m: String| Error::Invalid(format!("{}: {what} failed: {m}", self.loc(line)));
        if c.sources.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: {what} requires at least two arguments",
                self.loc(line)
            )));
        }
        let dest_raw = ex(&c.dest)?;
        let chown = c.chown.as_deref().map(ex).transpose()?;
        let chmod = match c.chmod.as_deref().map(ex).transpose()? {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        bad(format!(
                            "--chmod={m}: give an octal mode such as 644 or 0755"
                        ))
                    })?,
            ),
        };
        let glook = |n: &str| self.globals.get(n).cloned().flatten().or_else(|| look(n));
        let from = c
            .from
            .as_deref()
            .map(|f| expand(f, &glook, esc, self.file, line))
            .transpose()?;

        // Where the sources are read from.
        let mut dir = StepDir::new(&self.cache)?;
        let (src_root, from_key, ignore) = match &from {
            None => (
                self.opts.context.clone(),
                "context".to_owned(),
                self.ignore.as_ref(),
            ),
            Some(f) => match stage_ref(self.df, i, f, true) {
                Some(j) => {
                    let s = self.stage_result(j);
                    (
                        dir.mount_ro(&s.layers, "from")?,
                        format!("stage {}", s.key),
                        None,
                    )
                }
                None => {
                    let (id, _) = self.resolve_image(f, n, line)?;
                    let img = self.store.resolve(&id)?;
                    (
                        dir.mount_ro(&img.layers, "from")?,
                        format!("image {id}"),
                        None,
                    )
                }
            },
        };

        // The sources: (host path, path relative to src_root) or heredocs.
        enum Src {
            Path(PathBuf, String),
            Doc(String, Vec<u8>),
        }
        let mut srcs: Vec<Src> = Vec::new();
        let mut raw_srcs = Vec::new();
        let mut many = c.sources.len() > 1;
        for raw in &c.sources {
            let doc_name = raw
                .trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(['"', '\'']);
            // The parser names a heredoc source by its delimiter.
            {
                if let Some(h) = c
                    .heredocs
                    .iter()
                    .find(|h| h.name == doc_name || h.name == *raw)
                {
                    let content = if h.expand {
                        let look = self.lookup(st, scope);
                        expand_heredoc(&h.content, &look, esc, self.file, line)?
                    } else {
                        h.content.clone()
                    };
                    raw_srcs.push(format!("<<{}", h.name));
                    srcs.push(Src::Doc(h.name.clone(), content.into_bytes()));
                    continue;
                }
            }
            let s = ex(raw)?;
            raw_srcs.push(s.clone());
            if s.contains("://") || s.starts_with("git@") {
                if add {
                    return Err(bad(format!(
                        "{s}: ADD from a URL is not supported yet by pier build; download it into the context and COPY it"
                    )));
                }
                return Err(bad(format!("{s}: source can't be a URL for COPY")));
            }
            let rel = bfs::clean_rel(&s, from.is_none())
                .ok_or_else(|| bad(format!("forbidden path outside the build context: {s}")))?;
            if bfs::has_glob(&rel) {
                let hits = bfs::glob(&src_root, &rel, ignore).map_err(|e| Error::Io {
                    what: format!("{}: reading the sources of {what}", self.loc(line)),
                    source: e,
                })?;
                if hits.len() > 1 {
                    many = true;
                }
                for h in hits {
                    let p = bfs::resolve_in(&src_root, &h, true)
                        .map_err(|e| bad(format!("{h}: {e}")))?;
                    srcs.push(Src::Path(p.clone(), bfs::rel_of(&src_root, &p)));
                }
                continue;
            }
            let p = bfs::resolve_in(&src_root, &rel, true).map_err(|e| bad(format!("{s}: {e}")))?;
            let prel = bfs::rel_of(&src_root, &p);
            let excluded =
                ignore.is_some_and(|ig| !prel.is_empty() && ig.excluded(&prel) && !p.is_dir());
            if excluded || std::fs::symlink_metadata(&p).is_err() {
                return Err(bad(format!(
                    "file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
                )));
            }
            srcs.push(Src::Path(p, prel));
        }
        if srcs.is_empty() {
            return Err(bad(format!(
                "no source files were specified (nothing matches {})",
                raw_srcs.join(" ")
            )));
        }

        let wd = st.image["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned();
        let dest_is_dir = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        let dest_abs = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{wd}/{dest_raw}")
        };
        let dest = format!("/{}", bfs::clean_rel(&dest_abs, false).unwrap_or_default());
        if many && !dest_is_dir {
            return Err(bad(format!(
                "when using {what} with more than one source file, the destination must be a directory and end with a /"
            )));
        }

        // A context read in place: digests from the hash cache, and what
        // was hashed is checked again as it is copied.
        let in_place = from.is_none() && self.opts.context_in_place;
        let hashes = self.hashes.as_deref().filter(|_| in_place);
        let mut seen = in_place.then(bfs::Seen::default);

        // The key: parent, the instruction, every source's content.
        let mut h = Sha256::new();
        for p in [
            st.key.as_str(),
            what,
            &from_key,
            &dest_raw,
            &dest,
            chown.as_deref().unwrap_or(""),
            &format!("{chmod:?}"),
            &wd,
        ] {
            h.update(p.as_bytes());
            h.update([0]);
        }
        for s in &srcs {
            match s {
                Src::Doc(name, data) => {
                    h.update(b"doc\0");
                    h.update(name.as_bytes());
                    h.update([0]);
                    h.update(data);
                }
                Src::Path(p, rel) => {
                    h.update(b"path\0");
                    bfs::hash_tree(
                        &mut h,
                        p,
                        rel,
                        ignore,
                        from.is_none(),
                        hashes,
                        seen.as_mut(),
                    )
                    .map_err(|e| Error::Io {
                        what: format!("{}: reading {rel} for {what}", self.loc(line)),
                        source: e,
                    })?;
                }
            }
        }
        let key = hex::encode(h.finalize());
        // As BuildKit: flags are not in the history text.
        let created_by = format!("{what} {} {dest_raw} # buildkit", raw_srcs.join(" "));
        if let Some((layer, created)) = self.hit(n, &key, st) {
            self.add_layer(st, layer, key, &created_by, &created);
            return Ok(());
        }

        // Copy into the step's view of the rootfs.
        let root = dir.mount_rw(&st.layers)?;
        let ids = match &chown {
            Some(spec) => Some(bfs::parse_chown(Some(&root), spec).map_err(&bad)?),
            None => None,
        };
        let owner = bfs::Owner { chown: ids, chmod };
        let io = |e: std::io::Error| Error::Io {
            what: format!("{}: {what} to {dest}", self.loc(line)),
            source: e,
        };
        let target = bfs::resolve_in(&root, &dest, true).map_err(io)?;
        let target_is_dir = dest_is_dir || target.is_dir();
        for s in &srcs {
            match s {
                Src::Doc(name, data) => {
                    let to = if target_is_dir {
                        bfs::mkdir_all(&target, &owner).map_err(io)?;
                        target.join(name)
                    } else {
                        if let Some(p) = target.parent() {
                            bfs::mkdir_all(p, &owner).map_err(io)?;
                        }
                        target.clone()
                    };
                    bfs::write_file(&to, data, &owner).map_err(io)?;
                }
                Src::Path(p, rel) => {
                    let md = std::fs::symlink_metadata(p).map_err(io)?;
                    if md.is_dir() {
                        bfs::mkdir_all(&target, &owner).map_err(io)?;
                        for e in std::fs::read_dir(p).map_err(io)? {
                            let e = e.map_err(io)?;
                            let r = if rel.is_empty() {
                                e.file_name().to_string_lossy().into_owned()
                            } else {
                                format!("{rel}/{}", e.file_name().to_string_lossy())
                            };
                            let excluded = ignore.is_some_and(|ig| ig.excluded(&r));
                            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                            if bfs::left_out(ignore, &r, is_dir) {
                                continue;
                            }
                            let d = target.join(e.file_name());
                            bfs::copy_tree(&e.path(), &d, &r, ignore, &owner, seen.as_ref())
                                .map_err(io)?;
                            if excluded
                                && std::fs::read_dir(&d).is_ok_and(|mut x| x.next().is_none())
                            {
                                let _ = std::fs::remove_dir(&d);
                            }
                        }
                        continue;
                    }
                    if add && md.is_file() && from.is_none() {
                        if let Some(kind) = bfs::archive_kind(p).map_err(io)? {
                            if kind == "bzip2" || kind == "xz" {
                                return Err(bad(format!("{rel}: extracting {kind} archives is not supported yet; use a plain, gzip or zstd tar")));
                            }
                            bfs::mkdir_all(&target, &owner).map_err(io)?;
                            let f = std::fs::File::open(p).map_err(io)?;
                            let mut r = HashingReader {
                                inner: f,
                                h: Sha256::new(),
                            };
                            pier_image::extract::unpack_layer(&mut r, &target)
                                .map_err(|e| bad(format!("extracting {rel}: {e}")))?;
                            if let Some(s) = &seen {
                                std::io::copy(&mut r, &mut std::io::sink()).map_err(io)?;
                                s.check_file(p, r.h.finalize().into()).map_err(io)?;
                            }
                            continue;
                        }
                    }
                    let name = p.file_name().map(|n| n.to_owned()).unwrap_or_default();
                    let to = if target_is_dir {
                        bfs::mkdir_all(&target, &owner).map_err(io)?;
                        target.join(name)
                    } else {
                        if let Some(parent) = target.parent() {
                            bfs::mkdir_all(parent, &owner).map_err(io)?;
                        }
                        target.clone()
                    };
                    bfs::copy_tree(p, &to, rel, ignore, &owner, seen.as_ref()).map_err(io)?;
                }
            }
        }
        if let Some(s) = &seen {
            s.all_copied().map_err(io)?;
        }
        dir.unmount_all()?;
        let layer = self.commit_upper(st, &dir, false)?;
        drop(dir);
        self.record_layer(st, layer, key, &created_by)
    }
}

/// A reader that hashes what it reads.
struct HashingReader<R> {
    inner: R,
    h: Sha256,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
}

/// Expands variables in a heredoc body: each line is expanded as a word
/// would be, quotes kept (docker expands heredocs without unquoting).
fn expand_heredoc(
    body: &str,
    look: &dyn Fn(&str) -> Option<String>,
    esc: char,
    file: &str,
    line: usize,
) -> Result<String, Error> {
    if !body.contains('$') {
        return Ok(body.to_owned());
    }
    let mut out = String::new();
    for l in body.split_inclusive('\n') {
        let (text, nl) = match l.strip_suffix('\n') {
            Some(t) => (t, "\n"),
            None => (l, ""),
        };
        if !text.contains('$') {
            out.push_str(l);
            continue;
        }
        // Quotes escaped so the word rules keep them.
        let escaped: String = text
            .chars()
            .flat_map(|c| {
                if c == '"' || c == '\'' || c == esc {
                    vec![esc, c]
                } else {
                    vec![c]
                }
            })
            .collect();
        out.push_str(&expand(&escaped, look, esc, file, line)?);
        out.push_str(nl);
    }
    Ok(out)
}

/// The home directory of USER `user` in the image's /etc/passwd (the
/// topmost layer's), "/" when it has none, as runc sets HOME.
fn home_of(layers: &[PathBuf], user: &str) -> String {
    let name = user.split(':').next().unwrap_or("");
    let name = if name.is_empty() { "0" } else { name };
    let passwd = layers.iter().rev().find_map(|l| {
        let p = l.join("etc/passwd");
        let md = std::fs::symlink_metadata(&p).ok()?;
        if md.is_file() {
            std::fs::read_to_string(&p).ok()
        } else {
            None
        }
    });
    passwd
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && (f[0] == name || f[2] == name)).then(|| f[5].to_owned())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_owned())
}

/// BuildKit's history text of a HEALTHCHECK: Go's `%q` of the struct
/// (`&{["CMD-SHELL" "x"] "5s" "0s" "0s" '\x00'}`).
fn healthcheck_history(v: &Value) -> String {
    let test: Vec<String> = v["Test"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let d = |k: &str| format!("{:?}", go_duration(v[k].as_i64().unwrap_or(0)));
    let mut fields = vec![go_q(&test), d("Interval"), d("Timeout"), d("StartPeriod")];
    if v.get("StartInterval").is_some() {
        fields.push(d("StartInterval"));
    }
    fields.push(go_quote_rune(v["Retries"].as_i64().unwrap_or(0)));
    format!("HEALTHCHECK &{{{}}}", fields.join(" "))
}

/// Go's time.Duration.String().
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let frac = |v: u64, unit: u64| -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.to_string().len() - 1;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    let s = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 1_000))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 1_000_000))
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let sec = frac(u % 60_000_000_000, 1_000_000_000);
        if h > 0 {
            format!("{h}h{m}m{sec}s")
        } else if m > 0 {
            format!("{m}m{sec}s")
        } else {
            format!("{sec}s")
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

/// Go's `%q` of an integer: a quoted rune.
fn go_quote_rune(n: i64) -> String {
    let body = match n {
        7 => "\\a".to_owned(),
        8 => "\\b".to_owned(),
        9 => "\\t".to_owned(),
        10 => "\\n".to_owned(),
        11 => "\\v".to_owned(),
        12 => "\\f".to_owned(),
        13 => "\\r".to_owned(),
        39 => "\\'".to_owned(),
        92 => "\\\\".to_owned(),
        0..=31 | 127 => format!("\\x{n:02x}"),
        32..=126 => ((n as u8) as char).to_string(),
        _ => match u32::try_from(n).ok().and_then(char::from_u32) {
            Some(c) if !c.is_control() => c.to_string(),
            _ if (0..=0xffff).contains(&n) => format!("\\u{n:04x}"),
            _ => format!("\\U{:08x}", n.clamp(0, 0x10ffff)),
        },
    };
    format!("'{body}'")
}

/// `80`, `80/udp`, `8000-8002/tcp` to docker's `80/tcp` keys.
fn parse_ports(w: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match w.split_once('/') {
        Some((p, pr)) => (p, pr.to_lowercase()),
        None => (w, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {s}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!("invalid range: {ports}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}
