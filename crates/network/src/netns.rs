//! Persistent network namespaces: a new namespace bind-mounted on a file
//! (as `ip netns add` does), so it outlives the thread that made it and a
//! container's runtime can join it by path.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::mount::{mount_bind, unmount, UnmountFlags};
use rustix::thread::{move_into_link_name_space, unshare_unsafe, LinkNameSpaceType, UnshareFlags};

use crate::Error;

/// `NSFS_MAGIC`: the file system of `/proc/*/ns/*` and of their bind mounts.
const NSFS_MAGIC: u64 = 0x6e73_6673;

/// Whether `path` is a namespace file (a bind mount of one).
fn is_ns_mount(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as u64 == NSFS_MAGIC)
}

/// Creates a network namespace and bind-mounts it on `path` (the file is
/// created; its directory must exist). Its loopback is brought up. Made
/// from a short-lived thread that unshares, so the caller's namespace is
/// untouched. An existing mount at `path` is an error.
pub fn create(path: &Path) -> crate::Result<()> {
    if is_ns_mount(path) {
        return Err(Error::io(
            format!("creating network namespace {}", path.display()),
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a namespace is already mounted there (remove it first)",
            ),
        ));
    }
    let existed = path.exists();
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            Error::io(
                format!("creating network namespace file {}", path.display()),
                e,
            )
        })?;
    let target = path.to_path_buf();
    let made = std::thread::Builder::new()
        .name("pier-netns".into())
        .spawn(move || -> crate::Result<()> {
            // SAFETY: only the network namespace is unshared (no FILES), and
            // only this thread's; it exits right after.
            unsafe { unshare_unsafe(UnshareFlags::NEWNET) }
                .map_err(|e| Error::io("unsharing a network namespace", e.into()))?;
            crate::link::set_up_by_name("lo")?;
            let tid = rustix::thread::gettid().as_raw_nonzero();
            let source = format!("/proc/self/task/{tid}/ns/net");
            mount_bind(source.as_str(), &target).map_err(|e| {
                Error::io(
                    format!(
                        "bind-mounting the network namespace on {}",
                        target.display()
                    ),
                    e.into(),
                )
            })
        })
        .map_err(|e| Error::io("starting a thread for a network namespace", e))?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    if made.is_err() && !existed {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Unmounts (lazily) and removes `path`; a missing file is fine.
pub fn remove(path: &Path) -> crate::Result<()> {
    match unmount(path, UnmountFlags::DETACH) {
        // EINVAL: not a mount point (already unmounted, or never mounted).
        Ok(()) | Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => {
            return Err(Error::io(
                format!("unmounting network namespace {}", path.display()),
                e.into(),
            ))
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(
            format!("removing network namespace file {}", path.display()),
            e,
        )),
        _ => Ok(()),
    }
}

/// Runs `f` on a new thread that has joined the namespace at `path`
/// (a netns file, or `/proc/PID/ns/net`), and returns its result.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> crate::Result<T> {
    let ns = File::open(path)
        .map_err(|e| Error::io(format!("opening network namespace {}", path.display()), e))?;
    let shown = path.display().to_string();
    std::thread::Builder::new()
        .name("pier-netns-run".into())
        .spawn(move || -> crate::Result<T> {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| Error::io(format!("joining network namespace {shown}"), e.into()))?;
            drop(ns);
            Ok(f())
        })
        .map_err(|e| Error::io("starting a thread for a network namespace", e))?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
