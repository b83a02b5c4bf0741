//! Running a Dockerfile: stages, steps, layers, the build cache.

mod cache;
mod exec;
mod fs;
pub mod hashcache;
#[cfg(test)]
mod tests;

pub use exec::step_places;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `pier build` / `POST /build` asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's contents.
    pub dockerfile: String,
    /// Its name, for messages ("Dockerfile").
    pub dockerfile_name: String,
    /// The context, unpacked (the builder applies .dockerignore itself).
    pub context: PathBuf,
    /// The context is the client's own directory, read where it is (not a
    /// private copy): file digests come from the hash cache
    /// (`<cache_dir>/hashcache`, see [`hashcache`]), and every file COPY
    /// or ADD takes from it is checked, as it is copied, to be what the
    /// step's cache key was made from.
    pub context_in_place: bool,
    /// REPO[:TAG] names for the result.
    pub tags: Vec<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`: build up to that stage.
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--pull`: pull every base image, even one the store has.
    pub pull: bool,
    /// `--label K=V` on the resulting image.
    pub labels: BTreeMap<String, String>,
}

/// Progress, in order per step (steps of parallel stages interleave).
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// A step starts: its number (1-based, over the whole build), the
    /// number of steps, the stage's name or index, the instruction as
    /// written.
    Step {
        n: usize,
        total: usize,
        stage: String,
        text: String,
    },
    /// The step's result came from the cache.
    Cached { n: usize },
    /// Output of a RUN step.
    Output { n: usize, data: Vec<u8> },
    /// The step finished, after `secs`.
    Done { n: usize, secs: f64 },
}

/// The build's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// "sha256:..." of the image config.
    pub image_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Syntax(#[from] crate::dockerfile::SyntaxError),
    /// A RUN exited non-zero: docker's
    /// `The command '/bin/sh -c false' returned a non-zero code: 1`.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    /// Anything else the user must fix (a missing stage or file, a COPY
    /// source outside the context, a bad flag value), located.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Image(#[from] pier_image::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The worker could not run a step at all.
    #[error("{0}")]
    Worker(String),
}

/// One RUN step for the worker.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    /// The step's root filesystem, lowest layer first (snapshot dirs).
    pub layers: &'a [PathBuf],
    /// An empty directory that receives the step's changes (the overlay's
    /// upper dir), and the overlay's work dir beside it.
    pub upper: &'a Path,
    pub work: &'a Path,
    /// The process: SHELL + command, or the exec form.
    pub args: Vec<String>,
    /// ENV in scope plus the build ARGs, `K=V`.
    pub env: Vec<String>,
    /// WORKDIR (absolute; made if missing).
    pub cwd: String,
    /// USER, `name|uid[:group|gid]`, empty for root.
    pub user: String,
}

/// Runs RUN steps: pierd's implementation uses pier's runtime with
/// docker's default security and the host's network, as `docker build`.
pub trait Worker: Send + Sync {
    /// Runs the process to its end, streaming its stdout and stderr to
    /// `output`; returns its exit code. Err only when it could not run.
    fn run(&self, req: &RunRequest, output: &mut dyn FnMut(&[u8])) -> Result<i32, String>;

    /// Pulls image `name` into the store (a FROM or `COPY --from` image
    /// the store lacks, or any of them with `--pull`), writing the pull's
    /// progress lines to `output`, as `docker build` does. Workers that
    /// cannot pull say so.
    fn pull(&self, name: &str, output: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        let _ = output;
        Err(format!(
            "image {name} is not in pier's image store: pull it first (pier pull {name})"
        ))
    }
}

/// Builds the Dockerfile in `opts` with images from `store`, RUN steps on
/// `worker`, and the build cache under `cache_dir`; the result is tagged
/// with `opts.tags`. Events go to `events` as they happen.
pub fn build(
    store: &pier_image::Store,
    worker: &dyn Worker,
    cache_dir: &Path,
    opts: &BuildOptions,
    events: &(dyn Fn(BuildEvent) + Sync),
) -> Result<BuildOutput, Error> {
    exec::build(store, worker, cache_dir, opts, events)
}
