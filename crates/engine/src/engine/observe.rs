//! What observing a container needs from the engine's internals: where its
//! log is, and a way to learn when its record changes (for `logs -f`).

use super::{Engine, Handle};
use std::path::PathBuf;
use tokio::sync::watch;

impl Engine {
    /// `DATA_ROOT/containers/ID/ID-json.log`, written by the shim.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// The container's directory under the data root.
    pub fn container_path(&self, id: &str) -> PathBuf {
        self.container_dir(id)
    }
}

impl Handle {
    /// Wakes on every change of the container's record (start, exit,
    /// removal).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
