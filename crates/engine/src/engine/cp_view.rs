//! A private view of a container's filesystem for the archive API: its
//! root with its binds and volumes mounted at their destinations, as the
//! container sees them, so `cp` reads from and writes into them (as
//! docker's). Every destination is resolved inside the view
//! (`openat2(RESOLVE_IN_ROOT)`), and mounts are attached by descriptor, so a
//! symlink in the container cannot place one outside it.

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One mount for the view: a host directory or file at a container path.
pub struct ViewMount {
    pub source: PathBuf,
    /// Absolute, lexically clean container path.
    pub destination: String,
    pub rw: bool,
}

/// The view; detached and removed on drop.
pub struct View {
    dir: PathBuf,
    attached: bool,
}

impl View {
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.attached {
            let _ = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Read-only when asked, and private, so that nothing mounted in the view
/// reaches the container or the host.
fn set_attrs(fd: BorrowedFd<'_>, read_only: bool) -> io::Result<()> {
    let set = if read_only {
        rustix::mount::MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64
    } else {
        0
    };
    pier_image::mount::set_mount_attr(fd, set, libc::MS_PRIVATE, true)
}

fn clone_tree(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::mount::open_tree(
        CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )?)
}

fn open_in(root: BorrowedFd<'_>, path: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens `destination` inside the view, creating it (a directory, or an
/// empty file for a file source) with its missing parents when `create`.
fn destination(root: BorrowedFd<'_>, m: &ViewMount, create: bool) -> io::Result<Option<OwnedFd>> {
    match open_in(root, &m.destination) {
        Ok(fd) => return Ok(Some(fd)),
        Err(Errno::NOENT) if create => {}
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let parts: Vec<&str> = m.destination.split('/').filter(|c| !c.is_empty()).collect();
    let mut parent = open_in(root, "/")?;
    for (i, name) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let here = format!("/{}", parts[..=i].join("/"));
        match open_in(root, &here) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = rustix::fs::openat(
            &parent,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if last && !m.source.is_dir() {
            rustix::fs::openat(
                &dir,
                *name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
            )?;
        } else {
            match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        parent = open_in(root, &here)?;
    }
    Ok(Some(parent))
}

/// Makes the view at `dir` (created here) of `root` with `mounts`, parents
/// before children. Missing destinations are made when `create` (the view
/// is writable), else skipped.
pub fn make(root: &Path, dir: PathBuf, mounts: &[ViewMount], create: bool) -> io::Result<View> {
    std::fs::create_dir(&dir)?;
    let mut view = View {
        dir,
        attached: false,
    };
    let tree = clone_tree(root)?;
    set_attrs(tree.as_fd(), false)?;
    rustix::mount::move_mount(
        &tree,
        "",
        CWD,
        &view.dir,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    view.attached = true;
    let top = rustix::fs::open(
        &view.dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut sorted: Vec<&ViewMount> = mounts.iter().collect();
    sorted.sort_by_key(|m| crate::container::mounts::depth(&m.destination));
    for m in sorted {
        let Some(target) = destination(top.as_fd(), m, create)? else {
            continue;
        };
        let tree = clone_tree(&m.source)?;
        set_attrs(tree.as_fd(), !m.rw)?;
        rustix::mount::move_mount(
            &tree,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )?;
    }
    Ok(view)
}
