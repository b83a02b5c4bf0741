//! Docker's copy-up: the image's content at a volume's mount point copied
//! into the new, empty volume. Everything is done through directory fds
//! and `*at` calls with symlinks never followed, and the destination is
//! resolved inside the rootfs (openat2 RESOLVE_IN_ROOT, or an fd walk on
//! kernels without it), so nothing outside the source tree is read.

use crate::fsutil::ctx;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, ResolveFlags, Statx, StatxAttributes, StatxFlags, Timespec,
    Timestamps, XattrFlags,
};
use rustix::io::Errno;
use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub(crate) fn copy_up(rootfs: &Path, destination: &str, volume_data: &Path) -> io::Result<bool> {
    let dst = rustix::fs::open(
        volume_data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, "open", volume_data))?;
    if !dir_is_empty(dst.as_fd(), volume_data)? {
        return Ok(false);
    }
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, "open", rootfs))?;
    let src_path = rootfs.join(destination.trim_start_matches('/'));
    let Some(src) = resolve_in_root(root.as_fd(), destination)
        .map_err(|e| ctx(e, "resolving in the rootfs", &src_path))?
    else {
        return Ok(false);
    };
    let top = statx_at(src.as_fd(), c"", AtFlags::EMPTY_PATH, &src_path)?;
    let mut c = Copier {
        dst_root: dst.as_fd(),
        links: HashMap::new(),
        src_top: src_path,
        dst_top: volume_data.to_path_buf(),
    };
    let copied = c
        .copy_dir(src.as_fd(), dst.as_fd(), Path::new(""))
        // The volume's directory takes the source directory's owner,
        // mode, xattrs and times, as docker.
        .and_then(|()| c.finish_fd(src.as_fd(), dst.as_fd(), &top, Path::new("")));
    if let Err(e) = copied {
        // Half a copy would pass for the volume's content at the next
        // start (a non-empty volume is never copied into): empty it.
        if let Err(clean) = empty_dir(dst.as_fd(), volume_data) {
            eprintln!("pier-volume: cleaning up the failed copy-up: {clean}");
        }
        return Err(e);
    }
    Ok(true)
}

fn entry_names(fd: BorrowedFd<'_>, path: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    let mut d = rustix::fs::Dir::read_from(fd).map_err(|e| ctx(e, "read", path))?;
    while let Some(entry) = d.read() {
        let entry = entry.map_err(|e| ctx(e, "read", path))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

fn empty_dir(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    for n in entry_names(fd, path)? {
        crate::fsutil::remove_tree_at(fd, &n, &path.join(&n))?;
    }
    Ok(())
}

fn dir_is_empty(fd: BorrowedFd<'_>, path: &Path) -> io::Result<bool> {
    let mut d = rustix::fs::Dir::read_from(fd).map_err(|e| ctx(e, "read", path))?;
    while let Some(entry) = d.read() {
        let entry = entry.map_err(|e| ctx(e, "read", path))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Opens the directory `destination` as seen from inside `root`: symlinks
/// (absolute or relative, `..` included) resolve as if `root` were `/`.
/// None when it does not exist or is not a directory.
pub(crate) fn resolve_in_root(
    root: BorrowedFd<'_>,
    destination: &str,
) -> io::Result<Option<OwnedFd>> {
    let rel = destination.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    for _ in 0..8 {
        match rustix::fs::openat2(
            root,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            // A rename raced with the lookup: try again.
            Err(Errno::AGAIN) => continue,
            // No openat2 (kernel < 5.6, or a seccomp filter).
            Err(Errno::NOSYS) | Err(Errno::PERM) => return walk_in_root(root, destination),
            Err(e) => return Err(e.into()),
        }
    }
    walk_in_root(root, destination)
}

fn components(p: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

/// [`resolve_in_root`] by hand: one component at a time, each opened
/// with O_NOFOLLOW from the directory fd before it; a symlink's target is
/// spliced into the remaining path (absolute ones restart at `root`), and
/// `..` goes back to the previously opened directory, never above `root`.
pub(crate) fn walk_in_root(root: BorrowedFd<'_>, destination: &str) -> io::Result<Option<OwnedFd>> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut pending: VecDeque<Vec<u8>> = components(destination.as_bytes()).collect();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == b".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().map_or(root, |f| f.as_fd());
        let name = OsStr::from_bytes(&c);
        match rustix::fs::readlinkat(cur, name, Vec::new()) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    return Err(Errno::LOOP.into());
                }
                let t = target.to_bytes();
                if t.starts_with(b"/") {
                    stack.clear();
                }
                for comp in components(t).rev() {
                    pending.push_front(comp);
                }
            }
            // Not a symlink.
            Err(Errno::INVAL) => match rustix::fs::openat(
                cur,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => stack.push(fd),
                Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
                Err(e) => return Err(e.into()),
            },
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    let cur = stack.last().map_or(root, |f| f.as_fd());
    match rustix::fs::openat(
        cur,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn statx_at<P: rustix::path::Arg>(
    dir: BorrowedFd<'_>,
    name: P,
    flags: AtFlags,
    path: &Path,
) -> io::Result<Statx> {
    rustix::fs::statx(
        dir,
        name,
        flags | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
    .map_err(|e| ctx(e, "stat", path))
}

fn times(st: &Statx) -> Timestamps {
    let ts = |t: rustix::fs::StatxTimestamp| Timespec {
        tv_sec: t.tv_sec,
        tv_nsec: t.tv_nsec.into(),
    };
    Timestamps {
        last_access: ts(st.stx_atime),
        last_modification: ts(st.stx_mtime),
    }
}

fn ids(st: &Statx) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    (
        Some(rustix::fs::Uid::from_raw(st.stx_uid)),
        Some(rustix::fs::Gid::from_raw(st.stx_gid)),
    )
}

fn perm(st: &Statx) -> Mode {
    Mode::from_raw_mode(u32::from(st.stx_mode) & 0o7777)
}

struct Copier<'a> {
    dst_root: BorrowedFd<'a>,
    /// Hard links: (dev, inode) of a source file -> its copy, relative to
    /// `dst_root`.
    links: HashMap<(u32, u32, u64), PathBuf>,
    src_top: PathBuf,
    dst_top: PathBuf,
}

impl Copier<'_> {
    fn copy_dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path) -> io::Result<()> {
        let src_dir = self.src_top.join(rel);
        // Names first, so only two fds stay open per level.
        let mut names = entry_names(src, &src_dir)?;
        names.sort();
        for name in names {
            self.copy_entry(src, dst, &name, &rel.join(&name))?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
    ) -> io::Result<()> {
        let sp = self.src_top.join(rel);
        let dp = self.dst_top.join(rel);
        let st = statx_at(src, name, AtFlags::empty(), &sp)?;
        let ft = FileType::from_raw_mode(u32::from(st.stx_mode));
        let open_src = |flags: OFlags| {
            rustix::fs::openat(
                src,
                name,
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|e| ctx(e, "open", &sp))
        };
        match ft {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| ctx(e, "mkdir", &dp))?;
                let sfd = open_src(OFlags::RDONLY | OFlags::DIRECTORY)?;
                let dfd = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ctx(e, "open", &dp))?;
                // Another filesystem mounted inside the image tree is not
                // the image's content: its mount point stays empty.
                let mount_root = st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
                    && st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
                if !mount_root {
                    self.copy_dir(sfd.as_fd(), dfd.as_fd(), rel)?;
                }
                self.finish_fd(sfd.as_fd(), dfd.as_fd(), &st, rel)
            }
            FileType::RegularFile => {
                let key = (st.stx_dev_major, st.stx_dev_minor, st.stx_ino);
                if st.stx_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        // The first copy's directory is reopened one
                        // component at a time without following symlinks:
                        // a container already using the volume cannot
                        // make this link a host file.
                        let (parent, base) = open_beneath(self.dst_root, first)
                            .map_err(|e| ctx(e, "open", &self.dst_top.join(first)))?;
                        return rustix::fs::linkat(
                            parent.as_ref().map_or(self.dst_root, |f| f.as_fd()),
                            &base,
                            dst,
                            name,
                            AtFlags::empty(),
                        )
                        .map_err(|e| ctx(e, "link", &dp));
                    }
                }
                let sfd = open_src(OFlags::RDONLY)?;
                let dfd = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| ctx(e, "create", &dp))?;
                let mut sf = std::fs::File::from(sfd);
                let mut df = std::fs::File::from(dfd);
                io::copy(&mut sf, &mut df).map_err(|e| ctx(e, "copy to", &dp))?;
                self.finish_fd(sf.as_fd(), df.as_fd(), &st, rel)?;
                if st.stx_nlink > 1 {
                    self.links.insert(key, rel.to_path_buf());
                }
                Ok(())
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())
                    .map_err(|e| ctx(e, "readlink", &sp))?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)
                    .map_err(|e| ctx(e, "symlink", &dp))?;
                self.finish_at(dst, name, &st, &dp, false)
            }
            FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket => {
                let dev = rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor);
                rustix::fs::mknodat(dst, name, ft, perm(&st), dev)
                    .map_err(|e| ctx(e, "mknod", &dp))?;
                self.finish_at(dst, name, &st, &dp, true)
            }
            FileType::Unknown => Ok(()),
        }
    }

    /// Owner, xattrs, mode (after chown, which clears set-id bits) and
    /// times of a copied file or directory.
    fn finish_fd(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        st: &Statx,
        rel: &Path,
    ) -> io::Result<()> {
        let dp = self.dst_top.join(rel);
        let (u, g) = ids(st);
        rustix::fs::fchown(dst, u, g).map_err(|e| ctx(e, "chown", &dp))?;
        copy_xattrs(src, dst).map_err(|e| ctx(e, "copying xattrs to", &dp))?;
        rustix::fs::fchmod(dst, perm(st)).map_err(|e| ctx(e, "chmod", &dp))?;
        rustix::fs::futimens(dst, &times(st)).map_err(|e| ctx(e, "set times of", &dp))
    }

    /// The same for what has no fd of its own (symlinks, device nodes).
    fn finish_at(
        &self,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        st: &Statx,
        dp: &Path,
        chmod: bool,
    ) -> io::Result<()> {
        let (u, g) = ids(st);
        rustix::fs::chownat(dst, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ctx(e, "chown", dp))?;
        if chmod {
            chmod_nofollow(dst, name, perm(st)).map_err(|e| ctx(e, "chmod", dp))?;
        }
        rustix::fs::utimensat(dst, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ctx(e, "set times of", dp))
    }
}

/// Opens the directory holding `rel` (relative to `root`, no `..`) one
/// component at a time with O_NOFOLLOW; None for `root` itself. Returns
/// it with `rel`'s last component.
fn open_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<(Option<OwnedFd>, OsString)> {
    let base = rel
        .file_name()
        .ok_or_else(|| io::Error::from(Errno::INVAL))?
        .to_os_string();
    let mut cur: Option<OwnedFd> = None;
    for comp in rel.parent().into_iter().flat_map(Path::components) {
        let std::path::Component::Normal(c) = comp else {
            return Err(Errno::INVAL.into());
        };
        let next = rustix::fs::openat(
            cur.as_ref().map_or(root, |f| f.as_fd()),
            c,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        cur = Some(next);
    }
    Ok((cur, base))
}

/// chmod of `name` in `dir` that never follows a symlink: the node is
/// pinned with an O_PATH fd and changed through /proc/self/fd (a device
/// node or fifo has no fd to fchmod; plain chmodat would follow a symlink
/// put in its place).
fn chmod_nofollow(dir: BorrowedFd<'_>, name: &OsStr, mode: Mode) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Err(Errno::LOOP.into());
    }
    let proc_path = format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&fd));
    match rustix::fs::chmod(proc_path.as_str(), mode) {
        Ok(()) => Ok(()),
        // No /proc: the O_PATH fd and type check above narrow the race.
        Err(Errno::NOENT) => {
            rustix::fs::chmodat(dir, name, mode, AtFlags::empty()).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}

/// Copies extended attributes; those the target filesystem or our
/// privileges refuse (e.g. `security.selinux`, `trusted.*`) are skipped.
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let size = match rustix::fs::flistxattr_query(src) {
        Ok(0) => return Ok(()),
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut list = vec![0u8; size + 256];
    let n = rustix::fs::flistxattr(src, &mut list[..])?;
    for raw in list[..n].split_inclusive(|&b| b == 0) {
        let Ok(name) = CStr::from_bytes_with_nul(raw) else {
            continue;
        };
        let len = match rustix::fs::fgetxattr_query(src, name) {
            Ok(len) => len,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut value = vec![0u8; len];
        let len = match rustix::fs::fgetxattr(src, name, &mut value[..]) {
            Ok(len) => len,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::fsetxattr(dst, name, &value[..len], XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) | Err(Errno::ACCESS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
