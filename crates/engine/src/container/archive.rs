//! Files inside a container's root filesystem for `docker cp` (the archive
//! API): stat a path, write a tar of it, extract a tar into a directory.
//!
//! Every path is resolved below the container's root directory fd with
//! `openat2(RESOLVE_IN_ROOT)`: `..`, absolute paths and symlinks (`/evil ->
//! /`, `-> ../../../tmp`) are resolved as if that directory were `/`, so
//! nothing outside it is ever read or written. The tree is walked with
//! `*at` calls on directory fds and `O_NOFOLLOW`; extraction reuses
//! pier-image's safe extractor, rooted at the resolved target directory.

use base64::Engine as _;
use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a path could not be used.
#[derive(Debug)]
pub enum CpError {
    /// The path does not exist in the container.
    NotFound,
    /// PUT's target exists but is not a directory.
    NotDirectory,
    /// The request or the archive is invalid (400).
    Invalid(String),
    /// Anything else (500).
    Io(String),
}

impl std::fmt::Display for CpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpError::NotFound => f.write_str("no such file or directory"),
            CpError::NotDirectory => f.write_str("extraction point is not a directory"),
            CpError::Invalid(m) | CpError::Io(m) => f.write_str(m),
        }
    }
}

fn errno(context: &str, e: Errno) -> CpError {
    match e {
        Errno::NOENT => CpError::NotFound,
        Errno::NOTDIR => CpError::NotDirectory,
        e => CpError::Io(format!("{context}: {}", io::Error::from(e))),
    }
}

/// Docker's `PathStat` (the `X-Docker-Container-Path-Stat` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits, as Docker's clients read them.
    pub mode: u32,
    pub mtime: String,
    pub link_target: String,
}

impl PathStat {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name, "size": self.size, "mode": self.mode,
            "mtime": self.mtime, "linkTarget": self.link_target,
        })
    }
    /// The header value: base64 of the JSON.
    pub fn header_value(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_json().to_string())
    }
    pub fn is_dir(&self) -> bool {
        self.mode & GO_DIR != 0
    }
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A unix `st_mode` as Go's `os.FileMode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => GO_DIR,
        libc::S_IFLNK => GO_SYMLINK,
        libc::S_IFIFO => GO_PIPE,
        libc::S_IFSOCK => GO_SOCKET,
        libc::S_IFBLK => GO_DEVICE,
        libc::S_IFCHR => GO_DEVICE | GO_CHARDEV,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= GO_SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= GO_SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= GO_STICKY;
    }
    m
}

/// A path of the container as Docker treats it: made absolute and cleaned,
/// remembering a trailing `/.` (copy a directory's content) or `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrPath {
    /// Clean components below `/`.
    pub comps: Vec<String>,
    pub trailing_dot: bool,
    pub trailing_sep: bool,
}

impl CtrPath {
    pub fn parse(path: &str) -> CtrPath {
        let mut comps: Vec<String> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    comps.pop();
                }
                c => comps.push(c.to_string()),
            }
        }
        let trailing_dot = path == "." || path.ends_with("/.");
        let trailing_sep = !trailing_dot && path.ends_with('/');
        CtrPath {
            comps,
            trailing_dot,
            trailing_sep,
        }
    }
    /// The cleaned absolute path, without the trailing marker.
    pub fn abs(&self) -> String {
        format!("/{}", self.comps.join("/"))
    }
    /// Go's `filepath.Base` of the path with its trailing marker: the name
    /// the archive's entries start with.
    pub fn base(&self) -> String {
        if self.trailing_dot {
            ".".into()
        } else {
            self.comps.last().cloned().unwrap_or_else(|| "/".into())
        }
    }
    /// Whether the last component is followed if it is a symlink.
    fn follows_last(&self) -> bool {
        self.trailing_dot || self.trailing_sep || self.comps.is_empty()
    }
}

fn cstring(s: &[u8]) -> Result<CString, CpError> {
    CString::new(s).map_err(|_| CpError::Invalid("path contains a NUL byte".into()))
}

/// `openat2` below `root` with `RESOLVE_IN_ROOT`.
fn open_in(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rfs::openat2(
            root,
            OsStr::from_bytes(path),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// Opens a container's root directory.
pub fn open_root(root: &Path) -> Result<OwnedFd, CpError> {
    rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno(&format!("opening {}", root.display()), e))
}

/// A small file of the container (as /etc/passwd), read inside the root.
pub fn read_small(root: BorrowedFd<'_>, path: &str) -> Option<String> {
    let fd = open_in(root, CtrPath::parse(path).abs().as_bytes(), OFlags::RDONLY).ok()?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// A resolved path: a directory fd and a name in it (not followed), or the
/// fd itself (`name` None).
pub struct Item {
    pub dir: OwnedFd,
    pub name: Option<CString>,
    pub path: CtrPath,
}

impl Item {
    fn stat(&self) -> Result<rfs::Stat, CpError> {
        match &self.name {
            Some(n) => rfs::statat(&self.dir, n.as_c_str(), AtFlags::SYMLINK_NOFOLLOW),
            None => rfs::fstat(&self.dir),
        }
        .map_err(|e| errno("stat", e))
    }
}

/// Resolves `path` for GET/HEAD as Docker does: the directory part follows
/// symlinks (inside the root), the last component does not unless the path
/// ends in `/` or `/.`.
pub fn resolve(root: BorrowedFd<'_>, path: &str) -> Result<Item, CpError> {
    let p = CtrPath::parse(path);
    // A file on the way ("/etc/passwd/x", "/etc/passwd/"): dockerd's lstat
    // error, without its host path.
    let not_dir = |e: Errno| match e {
        Errno::NOTDIR => CpError::Io(format!("lstat {path}: not a directory")),
        e => errno("resolving the path", e),
    };
    if p.follows_last() {
        let fd =
            open_in(root, p.abs().as_bytes(), OFlags::PATH | OFlags::DIRECTORY).map_err(not_dir)?;
        return Ok(Item {
            dir: fd,
            name: None,
            path: p,
        });
    }
    let (name, parent) = p.comps.split_last().expect("not the root");
    let dir = open_in(
        root,
        format!("/{}", parent.join("/")).as_bytes(),
        OFlags::PATH | OFlags::DIRECTORY,
    )
    .map_err(not_dir)?;
    let item = Item {
        dir,
        name: Some(cstring(name.as_bytes())?),
        path: p,
    };
    item.stat()?;
    Ok(item)
}

/// The host path an fd names (from /proc).
fn fd_path(fd: BorrowedFd<'_>) -> Result<PathBuf, CpError> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| CpError::Io(format!("reading the path of an open file: {e}")))
}

/// Docker's stat of a resolved item; a symlink's `linkTarget` is where it
/// leads inside the container.
pub fn stat(root: BorrowedFd<'_>, item: &Item) -> Result<PathStat, CpError> {
    stat_with(root, item, &Overrides::default())
}

/// [`stat`] with the files a running container has mounted over its rootfs.
pub fn stat_with(root: BorrowedFd<'_>, item: &Item, ov: &Overrides) -> Result<PathStat, CpError> {
    let mut st = item.stat()?;
    if let Some(host) = ov.get(&st) {
        st = rfs::stat(host).map_err(|e| errno("stat of a mounted file", e))?;
    }
    let mode = go_mode(st.st_mode);
    let mut link_target = String::new();
    if mode & GO_SYMLINK != 0 {
        link_target = match open_in(root, item.path.abs().as_bytes(), OFlags::PATH) {
            Ok(fd) => {
                let root_path = fd_path(root)?;
                let target = fd_path(fd.as_fd())?;
                match target.strip_prefix(&root_path) {
                    Ok(rel) => format!("/{}", rel.display()),
                    Err(_) => String::from("/"),
                }
            }
            // A dangling link: its target, made absolute lexically.
            Err(_) => {
                let name = item.name.as_ref().expect("a symlink has a name");
                let raw = rfs::readlinkat(&item.dir, name.as_c_str(), Vec::new())
                    .map_err(|e| errno("reading the symlink", e))?;
                let raw = raw.to_string_lossy().into_owned();
                let parent = &item.path.comps[..item.path.comps.len() - 1];
                let joined = if raw.starts_with('/') {
                    raw
                } else {
                    format!("/{}/{raw}", parent.join("/"))
                };
                CtrPath::parse(&joined).abs()
            }
        };
    }
    Ok(PathStat {
        name: item.path.base(),
        size: st.st_size,
        mode,
        mtime: pier_common::time::rfc3339(st.st_mtime, st.st_mtime_nsec as u32),
        link_target,
    })
}

/// Writes a tar of the item (recursively for a directory, symlinks stored
/// as links) with entries named after `item.path.base()`; for `/.` and `/`
/// the directory's own entry is `./` and its children are named plainly.
pub fn write_tar(item: &Item, w: impl Write) -> io::Result<()> {
    write_tar_with(item, &Overrides::default(), w)
}

/// Files a running container sees bind-mounted over its rootfs
/// (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`): their content comes
/// from the mounted source, as docker mounts them for a copy.
#[derive(Debug, Default)]
pub struct Overrides(HashMap<(u64, u64), PathBuf>);

impl Overrides {
    /// `files`: (path in the container, source on the host). Each path is
    /// resolved inside the root as the runtime resolves a mount target.
    pub fn new(root: BorrowedFd<'_>, files: &[(&str, PathBuf)]) -> Overrides {
        let mut map = HashMap::new();
        for (path, source) in files {
            if !source.is_file() {
                continue;
            }
            let Ok(fd) = open_in(root, path.as_bytes(), OFlags::PATH) else {
                continue;
            };
            if let Ok(st) = rfs::fstat(&fd) {
                if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                    map.insert((st.st_dev, st.st_ino), source.clone());
                }
            }
        }
        Overrides(map)
    }

    fn get(&self, st: &rfs::Stat) -> Option<&PathBuf> {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        self.0.get(&(st.st_dev, st.st_ino))
    }
}

/// [`write_tar`] with the files a running container has mounted.
pub fn write_tar_with(item: &Item, ov: &Overrides, w: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Complete);
    let base = item.path.base();
    let mut walker = Walker {
        hardlinks: HashMap::new(),
        overrides: ov,
    };
    match &item.name {
        Some(n) => walker.append(&mut b, item.dir.as_fd(), n.as_c_str(), base.as_bytes())?,
        None => {
            let st = rfs::fstat(&item.dir)?;
            let dir = rfs::openat(
                &item.dir,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            // As docker: `/` archives as "/", "/bin/", ...; a directory's
            // content (`/.`) as "./", "./a", ...
            let (root_name, prefixed): (&[u8], bool) = match base.as_str() {
                "/" => (b"", true),
                "." => (b"./", false),
                b => (b.as_bytes(), true),
            };
            walker.append_dir(&mut b, dir, &st, root_name, prefixed)?;
        }
    }
    b.into_inner()?.flush()
}

struct Walker<'a> {
    overrides: &'a Overrides,
    hardlinks: HashMap<(u64, u64), Vec<u8>>,
}

fn header_for(st: &rfs::Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn child_name(prefix: &[u8], name: &[u8], prefixed: bool) -> Vec<u8> {
    let mut v = if prefixed {
        prefix.to_vec()
    } else {
        b".".to_vec()
    };
    v.push(b'/');
    v.extend_from_slice(name);
    v
}

/// Appends an entry named exactly `name` (the tar crate would drop a
/// leading `./`, which Docker's clients rely on for a directory's content).
fn put_data<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    data: impl Read,
) -> io::Result<()> {
    if name.len() < 100 {
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name);
        h.set_cksum();
        return b.append(h, data);
    }
    // The tar crate writes long names as GNU extensions, relative only.
    let name = name.strip_prefix(b"/").unwrap_or(name);
    b.append_data(h, Path::new(OsStr::from_bytes(name)), data)
}

/// A symlink or hard link entry named exactly `name`.
fn put_link<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    target: &[u8],
) -> io::Result<()> {
    if name.len() < 100 && target.len() < 100 {
        let field = &mut h.as_old_mut().linkname;
        field.fill(0);
        field[..target.len()].copy_from_slice(target);
        return put_data(b, h, name, io::empty());
    }
    b.append_link(
        h,
        Path::new(OsStr::from_bytes(name)),
        Path::new(OsStr::from_bytes(target)),
    )
}

impl Walker<'_> {
    fn append<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        parent: BorrowedFd<'_>,
        name: &CStr,
        tar_name: &[u8],
    ) -> io::Result<()> {
        let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let path = Path::new(OsStr::from_bytes(tar_name));
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.hardlinks.get(&key) {
                let mut h = header_for(&st, tar::EntryType::Link);
                return put_link(b, &mut h, tar_name, first);
            }
            self.hardlinks.insert(key, tar_name.to_vec());
        }
        match ft {
            FileType::Directory => {
                let dir = rfs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.append_dir(b, dir, &st, tar_name, true)
            }
            FileType::RegularFile => {
                let fd = rfs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let mut st = rfs::fstat(&fd)?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Err(io::Error::other(format!(
                        "{} changed while it was read",
                        path.display()
                    )));
                }
                let fd = match self.overrides.get(&st) {
                    Some(host) => {
                        let fd = rfs::open(
                            host,
                            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )?;
                        st = rfs::fstat(&fd)?;
                        fd
                    }
                    None => fd,
                };
                let mut h = header_for(&st, tar::EntryType::Regular);
                let size = st.st_size.max(0) as u64;
                h.set_size(size);
                let file = std::fs::File::from(fd);
                put_data(b, &mut h, tar_name, file.take(size))
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(parent, name, Vec::new())?;
                let mut h = header_for(&st, tar::EntryType::Symlink);
                put_link(b, &mut h, tar_name, target.as_bytes())
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let kind = match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header_for(&st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(rfs::major(st.st_rdev))?;
                    h.set_device_minor(rfs::minor(st.st_rdev))?;
                }
                put_data(b, &mut h, tar_name, io::empty())
            }
            // Sockets are not archived (as Docker).
            _ => Ok(()),
        }
    }

    /// A directory entry (named `tar_name`) and its content, sorted by name;
    /// children are named `tar_name/child` when `prefixed`.
    fn append_dir<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        dir: OwnedFd,
        st: &rfs::Stat,
        tar_name: &[u8],
        prefixed: bool,
    ) -> io::Result<()> {
        let mut h = header_for(st, tar::EntryType::Directory);
        let mut dname = tar_name.to_vec();
        if !dname.ends_with(b"/") {
            dname.push(b'/');
        }
        put_data(b, &mut h, &dname, io::empty())?;
        let mut names: Vec<CString> = Vec::new();
        for e in Dir::read_from(&dir)? {
            let e = e?;
            let n = e.file_name();
            if n.to_bytes() != b"." && n.to_bytes() != b".." {
                names.push(n.to_owned());
            }
        }
        names.sort();
        let prefix = tar_name.strip_suffix(b"/").unwrap_or(tar_name);
        for n in names {
            let child = child_name(prefix, n.to_bytes(), prefixed);
            match self.append(b, dir.as_fd(), n.as_c_str(), &child) {
                // Removed meanwhile: skipped, as a walk would.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                r => r?,
            }
        }
        Ok(())
    }
}

/// How to extract (PUT's options).
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory and back.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every entry (`copyUIDGID` with a container user).
    pub chown: Option<(u32, u32)>,
}

/// Extracts the tar `reader` into the directory `path` of the container
/// (symlinks followed inside the root, the last one too). The archive is
/// unpacked by pier-image's extractor with the target directory as its
/// root; entries are checked on the way for the overwrite rule.
pub fn extract(
    root: BorrowedFd<'_>,
    path: &str,
    reader: impl Read,
    opts: &ExtractOptions,
) -> Result<(), CpError> {
    let p = CtrPath::parse(path);
    let target = open_in(root, p.abs().as_bytes(), OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| errno("resolving the extraction point", e))?;
    let (pr, pw) = rustix::pipe::pipe().map_err(|e| errno("making a pipe", e))?;
    let target_path = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
    let unpacker = std::thread::spawn(move || {
        let r = pier_image::extract::unpack_tar(std::fs::File::from(pr), &target_path);
        drop(target_path);
        r
    });
    let checked = {
        let mut out = std::fs::File::from(pw);
        let r = copy_checked(target.as_fd(), &p, reader, &mut out, opts);
        drop(out);
        r
    };
    let unpacked = unpacker
        .join()
        .map_err(|_| CpError::Io("the extractor thread panicked".into()))?;
    drop(target);
    checked?;
    unpacked.map_err(|e| match e {
        pier_image::Error::InvalidLayer(m) => CpError::Invalid(m.replace("layer", "archive")),
        e => CpError::Io(e.to_string()),
    })?;
    Ok(())
}

/// Copies the archive to `out` entry by entry, applying the options.
fn copy_checked(
    target: BorrowedFd<'_>,
    base: &CtrPath,
    reader: impl Read,
    out: impl Write,
    opts: &ExtractOptions,
) -> Result<(), CpError> {
    let bad = |e: io::Error| CpError::Invalid(format!("reading the archive: {e}"));
    // A failed write means the extractor stopped: its error is the one shown.
    let wr = |e: io::Error| CpError::Io(format!("extracting: {e}"));
    let mut archive = tar::Archive::new(reader);
    let mut b = tar::Builder::new(out);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path_bytes().into_owned();
        let trimmed = name.strip_suffix(b"/").unwrap_or(&name);
        if trimmed
            .rsplit(|&c| c == b'/')
            .next()
            .is_some_and(|b| b.starts_with(b".wh."))
        {
            // The extractor would take it for a layer's deletion marker.
            return Err(CpError::Invalid(format!(
                "cannot copy {:?}: names starting with .wh. mark deletions in image layers",
                String::from_utf8_lossy(&name)
            )));
        }
        let mut h = entry.header().clone();
        let kind = h.entry_type();
        if opts.no_overwrite_dir_non_dir {
            let comps: Vec<&[u8]> = name
                .split(|&c| c == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .collect();
            if !comps.is_empty() && !comps.contains(&&b".."[..]) {
                let rel = comps.join(&b'/');
                if let Ok(fd) = open_in(target, &rel, OFlags::PATH | OFlags::NOFOLLOW) {
                    let is_dir = rfs::fstat(&fd)
                        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                        .unwrap_or(false);
                    let shown = format!(
                        "{}/{}",
                        base.abs().trim_end_matches('/'),
                        String::from_utf8_lossy(&rel)
                    );
                    if is_dir && !kind.is_dir() {
                        return Err(CpError::Invalid(format!(
                            "cannot overwrite directory {shown:?} with non-directory {shown:?}"
                        )));
                    }
                    if !is_dir && kind.is_dir() {
                        return Err(CpError::Invalid(format!(
                            "cannot overwrite non-directory {shown:?} with directory {shown:?}"
                        )));
                    }
                }
            }
        }
        if let Some((uid, gid)) = opts.chown {
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
        }
        let path = Path::new(OsStr::from_bytes(&name));
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .ok_or_else(|| CpError::Invalid("a link entry without a target".into()))?;
                b.append_link(&mut h, path, Path::new(OsStr::from_bytes(&target)))
                    .map_err(wr)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                let size = h.size().map_err(bad)?;
                b.append_data(&mut h, path, (&mut entry).take(size))
                    .map_err(wr)?;
            }
        }
    }
    b.into_inner().map_err(wr)?.flush().map_err(wr)?;
    // Read the stream to its end (the zero blocks after the last entry),
    // so the client's upload completes before the answer.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(bad)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_keeping_docker_markers() {
        let p = CtrPath::parse("a/../b/./c/.");
        assert_eq!(p.abs(), "/b/c");
        assert!(p.trailing_dot && !p.trailing_sep);
        assert_eq!(p.base(), ".");
        let p = CtrPath::parse("/../../etc/");
        assert_eq!(p.abs(), "/etc");
        assert!(p.trailing_sep);
        assert_eq!(p.base(), "etc");
        assert_eq!(CtrPath::parse("/").base(), "/");
        assert_eq!(CtrPath::parse("/x/y").base(), "y");
    }

    #[test]
    fn modes_are_go_file_modes() {
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_mode(libc::S_IFCHR | 0o666),
            (1 << 26) | (1 << 21) | 0o666
        );
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::fs::write(r.join("etc/a"), "A").unwrap();
        std::fs::write(r.join("etc/sub/b"), "B").unwrap();
        std::os::unix::fs::symlink("/", r.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc", r.join("etc/up")).unwrap();
        t
    }

    fn names(item: &Item) -> Vec<String> {
        let mut buf = Vec::new();
        write_tar(item, &mut buf).unwrap();
        let mut a = tar::Archive::new(&buf[..]);
        a.entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tree();
        let root = open_root(t.path()).unwrap();
        // /evil -> / : /evil/etc/a is the container's /etc/a.
        let item = resolve(root.as_fd(), "/evil/etc/a").unwrap();
        let st = stat(root.as_fd(), &item).unwrap();
        assert_eq!((st.name.as_str(), st.size), ("a", 1));
        // /etc/up -> ../../../../../etc stays the container's /etc.
        let item = resolve(root.as_fd(), "/etc/up/").unwrap();
        assert_eq!(names(&item)[..2], ["up/".to_string(), "up/a".to_string()]);
        // The link itself, with its target resolved inside the container.
        let item = resolve(root.as_fd(), "/evil").unwrap();
        let st = stat(root.as_fd(), &item).unwrap();
        assert_eq!(st.link_target, "/");
        assert_eq!(names(&item), ["evil"]);
        assert!(matches!(
            resolve(root.as_fd(), "/evil/nope"),
            Err(CpError::NotFound)
        ));
    }

    #[test]
    fn tar_names_follow_docker() {
        let t = tree();
        let root = open_root(t.path()).unwrap();
        let n = names(&resolve(root.as_fd(), "/etc").unwrap());
        assert_eq!(n, ["etc/", "etc/a", "etc/sub/", "etc/sub/b", "etc/up"]);
        let n = names(&resolve(root.as_fd(), "/etc/.").unwrap());
        assert_eq!(n, ["./", "./a", "./sub/", "./sub/b", "./up"]);
        let n = names(&resolve(root.as_fd(), "/").unwrap());
        assert_eq!(n[..3], ["/", "/etc/", "/etc/a"]);
    }

    #[test]
    fn extraction_stays_in_the_root_and_keeps_directories() {
        let t = tree();
        let root = open_root(t.path()).unwrap();
        let mut buf = Vec::new();
        {
            let mut b = tar::Builder::new(&mut buf);
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o640);
            b.append_data(&mut h, "x", &b"hi"[..]).unwrap();
            b.finish().unwrap();
        }
        // Into /evil/ (-> /): lands in the container's root.
        extract(root.as_fd(), "/evil/", &buf[..], &ExtractOptions::default()).unwrap();
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"hi");
        // A file over a directory is refused with the option.
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            chown: None,
        };
        let mut buf = Vec::new();
        {
            let mut b = tar::Builder::new(&mut buf);
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            b.append_data(&mut h, "sub", &b""[..]).unwrap();
            b.finish().unwrap();
        }
        let e = extract(root.as_fd(), "/etc", &buf[..], &opts).unwrap_err();
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        assert!(t.path().join("etc/sub/b").exists());
        assert!(matches!(
            extract(root.as_fd(), "/etc/a", &buf[..], &opts),
            Err(CpError::NotDirectory)
        ));
        // A whiteout name would delete /etc/a: refused, /etc/a stays.
        let mut buf = Vec::new();
        {
            let mut b = tar::Builder::new(&mut buf);
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            b.append_data(&mut h, ".wh.a", &b""[..]).unwrap();
            b.finish().unwrap();
        }
        let e = extract(root.as_fd(), "/etc", &buf[..], &opts).unwrap_err();
        assert!(e.to_string().contains(".wh."), "{e}");
        assert!(t.path().join("etc/a").is_file());
    }
}
