//! Persistent network namespaces: a new namespace bind-mounted on a file
//! (as `ip netns add` does), so it outlives the thread that made it and a
//! container's runtime can join it by path.

use std::path::Path;

/// Creates a network namespace and bind-mounts it on `path` (the file is
/// created; its directory must exist). Its loopback is brought up. Made
/// from a short-lived thread that unshares, so the caller's namespace is
/// untouched. An existing mount at `path` is an error.
pub fn create(path: &Path) -> crate::Result<()> {
    todo!("{path:?}")
}

/// Unmounts (lazily) and removes `path`; a missing file is fine.
pub fn remove(path: &Path) -> crate::Result<()> {
    todo!("{path:?}")
}

/// Runs `f` on a new thread that has joined the namespace at `path`
/// (a netns file, or `/proc/PID/ns/net`), and returns its result.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> crate::Result<T> {
    let _ = f;
    todo!("{path:?}")
}
