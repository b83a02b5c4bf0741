//! pierd's side of `docker build`: the worker that runs RUN steps with
//! pier's runtime, and the build context a client sends.

pub mod context;
pub mod pull;
pub mod worker;

pub use worker::RuntimeWorker;

/// Removes what a pierd that died during a build left: step bundles (and
/// their mounts) and temporary contexts. pierd calls it when it starts,
/// after the runtime state of unknown containers is gone.
pub fn clean_stale(config: &crate::Config) {
    RuntimeWorker::new(config).clean_stale();
    if let Ok(entries) = std::fs::read_dir(config.data_root.join("builder").join("tmp")) {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
