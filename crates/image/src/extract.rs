//! Safe layer extraction.
//!
//! The `tar` crate is used only to read entries; every file is created here
//! with `*at` system calls relative to a directory fd that was opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` below the target, so no
//! entry can land outside it: absolute paths and `..` are resolved as if the
//! target were `/`, and symlinks (including ones the layer itself created)
//! are followed only inside the target. The final path component is never
//! followed: existing entries are removed and recreated (`O_EXCL|O_NOFOLLOW`).
//!
//! Whiteouts are converted to overlayfs form while unpacking, so a layer's
//! snapshot does not depend on its parent's content:
//! - `DIR/.wh.NAME` becomes a 0/0 character device `DIR/NAME`;
//! - `DIR/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `DIR`.
//!
//! `trusted.overlay.*` xattrs carried by the layer itself are dropped: they
//! would steer overlayfs (redirects, metacopy) from untrusted content.

use std::ffi::{CString, OsStr};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
    XattrFlags,
};
use rustix::io::Errno;

use crate::{Error, Result};

/// Prefix of a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker in a layer tar.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to hide a lower directory's content.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an unpack did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries processed (whiteouts included).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// Compression of a layer stream, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Reads the first (up to) 4 bytes of `reader` and tells its compression
/// from them (gzip `1f 8b`, zstd `28 b5 2f fd`; anything else is plain).
fn sniff(reader: &mut impl Read) -> io::Result<(Compression, io::Cursor<Vec<u8>>)> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match reader.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let c = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Compression::Gzip
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Compression::Zstd
    } else {
        Compression::None
    };
    Ok((c, io::Cursor::new(magic[..n].to_vec())))
}

/// Wraps `reader` in the decompressor its magic bytes call for.
pub fn decompress<'a, R: Read + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let (c, head) = sniff(&mut reader)?;
    let whole = head.chain(reader);
    Ok(match c {
        Compression::Gzip => (c, Box::new(flate2::read::MultiGzDecoder::new(whole))),
        Compression::Zstd => (c, Box::new(zstd::stream::read::Decoder::new(whole)?)),
        Compression::None => (c, Box::new(whole)),
    })
}

/// As [`decompress`], decompressing from `reader`'s own buffer (no copy
/// into one of the decompressor's).
pub fn decompress_buffered<'a, R: io::BufRead + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let (c, head) = sniff(&mut reader)?;
    let whole = head.chain(reader);
    Ok(match c {
        Compression::Gzip => (c, Box::new(flate2::bufread::MultiGzDecoder::new(whole))),
        Compression::Zstd => (
            c,
            Box::new(zstd::stream::read::Decoder::with_buffer(whole)?),
        ),
        Compression::None => (c, Box::new(whole)),
    })
}

/// A regular file's data is handed to writeback in steps of this many
/// bytes as it is unpacked.
const WRITEBACK_STEP: u64 = 4 << 20;

/// Unpacks a layer (plain, gzip or zstd tar) into `dir`, which must exist.
pub fn unpack_layer(reader: impl Read, dir: &Path) -> Result<UnpackStats> {
    let (_, plain) = decompress(reader).map_err(|e| layer_err("reading the layer stream", e))?;
    unpack_tar(plain, dir)
}

/// Unpacks an uncompressed tar stream into `dir` and reads the stream to its
/// end (so a checksumming reader below sees every byte).
pub fn unpack_tar(mut reader: impl Read, dir: &Path) -> Result<UnpackStats> {
    let root = rfs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        context: format!("opening the unpack target {}", dir.display()),
        source: e.into(),
    })?;
    let mut u = Unpacker {
        root,
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
        buf: vec![0; 128 * 1024],
        cached_parent: None,
    };
    {
        let mut archive = tar::Archive::new(&mut reader);
        let entries = archive
            .entries()
            .map_err(|e| layer_err("reading the layer tar", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| layer_err("reading the layer tar", e))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            u.entry(&mut entry).map_err(|e| match e {
                EntryError::Layer(msg) => Error::InvalidLayer(format!("entry {name:?}: {msg}")),
                EntryError::Io(e) if is_stream_error(&e) => {
                    layer_err(&format!("reading entry {name:?} of the layer tar"), e)
                }
                EntryError::Io(e) => Error::Io {
                    context: format!("unpacking {name:?} into {}", dir.display()),
                    source: e,
                },
            })?;
            u.stats.entries += 1;
        }
    }
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| layer_err("reading the end of the layer stream", e))?;
    u.finish_dirs().map_err(|e| Error::Io {
        context: format!("setting directory times in {}", dir.display()),
        source: e,
    })?;
    Ok(u.stats)
}

fn layer_err(what: &str, e: io::Error) -> Error {
    Error::InvalidLayer(format!(
        "{what}: {e} (the archive is truncated or corrupt; check the file or download it again)"
    ))
}

/// Errors of the input stream rather than of the target filesystem.
fn is_stream_error(e: &io::Error) -> bool {
    e.raw_os_error().is_none()
        && matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::Other
        )
}

enum EntryError {
    Layer(String),
    Io(io::Error),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        EntryError::Io(e)
    }
}
impl From<Errno> for EntryError {
    fn from(e: Errno) -> Self {
        EntryError::Io(e.into())
    }
}

type EResult<T> = std::result::Result<T, EntryError>;

fn bad(msg: impl Into<String>) -> EntryError {
    EntryError::Layer(msg.into())
}

/// Splits a tar path into clean components, resolving `.`, `..` and a
/// leading `/` lexically against the root (as `filepath.Clean("/" + p)`).
fn clean(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn cstr(b: &[u8]) -> EResult<CString> {
    CString::new(b).map_err(|_| bad("path contains a NUL byte"))
}

struct Unpacker {
    root: OwnedFd,
    /// Directories whose times are set last (creating children changes them).
    dir_times: Vec<(Vec<Vec<u8>>, Timestamps)>,
    stats: UnpackStats,
    buf: Vec<u8>,
    /// The parent directory of the last regular file, reused by the next
    /// regular file in the same directory. Only regular files may use it:
    /// they never change a directory on the way, while any other entry
    /// (directory, symlink, link, whiteout) drops it.
    cached_parent: Option<(Vec<Vec<u8>>, OwnedFd)>,
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    times: Timestamps,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> EResult<()> {
        let comps = clean(&entry.path_bytes());
        let kind = entry.header().entry_type();
        let meta = read_meta(entry)?;

        let Some((name, parent_comps)) = comps.split_last() else {
            // The root itself ("./"): only a directory entry makes sense.
            if kind.is_dir() {
                let root = self.root.try_clone()?;
                apply_fd_meta(root.as_fd(), &meta)?;
                self.dir_times.push((Vec::new(), meta.times));
                return Ok(());
            }
            return Err(bad("a non-directory entry names the root"));
        };
        let plain_file = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous)
            && !name.starts_with(WHITEOUT_PREFIX.as_bytes());
        let parent = match self.cached_parent.take() {
            Some((c, fd)) if plain_file && c.as_slice() == parent_comps => fd,
            _ => self.open_dir(parent_comps, true)?,
        };
        let name_os = OsStr::from_bytes(name);

        // Whiteouts.
        if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if name == WHITEOUT_OPAQUE.as_bytes() {
                rfs::fsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())?;
            } else if rest.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other `.wh..wh.*` entries (aufs metadata) mean nothing here.
            } else if rest.is_empty() {
                return Err(bad("whiteout without a name"));
            } else {
                let target = OsStr::from_bytes(rest);
                remove_at(parent.as_fd(), target)?;
                rfs::mknodat(
                    &parent,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )?;
                rfs::chownat(
                    &parent,
                    target,
                    Some(uid(meta.uid)),
                    Some(gid(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            return Ok(());
        }

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match rfs::mkdirat(&parent, name_os, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rfs::statat(&parent, name_os, AtFlags::SYMLINK_NOFOLLOW)?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            remove_at(parent.as_fd(), name_os)?;
                            rfs::mkdirat(&parent, name_os, Mode::from_raw_mode(0o700))?;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                let fd = rfs::openat(
                    &parent,
                    name_os,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                apply_fd_meta(fd.as_fd(), &meta)?;
                self.dir_times.push((comps.clone(), meta.times));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let create = || {
                    rfs::openat(
                        &parent,
                        name_os,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                };
                // Whatever is there (file, symlink, directory) is replaced.
                let fd = match create() {
                    Err(Errno::EXIST) => {
                        remove_at(parent.as_fd(), name_os)?;
                        create()?
                    }
                    r => r?,
                };
                let mut file = std::fs::File::from(fd);
                let want = entry.size();
                let mut got = 0u64;
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e.into()),
                    };
                    file.write_all(&self.buf[..n])?;
                    let before = got;
                    got += n as u64;
                    // Start writing a big file back while it is still
                    // being written, so the sync that commits the layer
                    // finds only its last few MiB dirty (it is on the
                    // critical path of a pull).
                    if before / WRITEBACK_STEP != got / WRITEBACK_STEP {
                        let start = (got / WRITEBACK_STEP - 1) * WRITEBACK_STEP;
                        crate::content::start_writeback(&file, start, WRITEBACK_STEP);
                    }
                }
                if got != want {
                    return Err(EntryError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file content ends after {got} of {want} bytes"),
                    )));
                }
                self.stats.bytes += got;
                if got > 0 {
                    // The rest (everything, for a file under one step).
                    let start = got / WRITEBACK_STEP * WRITEBACK_STEP;
                    crate::content::start_writeback(&file, start, 0);
                }
                apply_fd_meta(file.as_fd(), &meta)?;
                rfs::futimens(&file, &meta.times)?;
                drop(file);
                if plain_file {
                    self.cached_parent = Some((parent_comps.to_vec(), parent));
                }
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("symlink without a target"))?
                    .into_owned();
                remove_at(parent.as_fd(), name_os)?;
                rfs::symlinkat(cstr(&target)?.as_c_str(), &parent, name_os)?;
                self.apply_at_meta(parent.as_fd(), name_os, &meta, false)?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("hard link without a target"))?
                    .into_owned();
                let tcomps = clean(&target);
                let Some((tname, tparent_comps)) = tcomps.split_last() else {
                    return Err(bad("hard link to the root directory"));
                };
                if tcomps == comps {
                    return Ok(()); // a link to itself: nothing to do
                }
                let missing = || {
                    bad(format!(
                        "hard link target {:?} is not in the layer",
                        String::from_utf8_lossy(&target)
                    ))
                };
                let tparent = match self.open_dir(tparent_comps, false) {
                    Ok(fd) => fd,
                    Err(EntryError::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                        return Err(missing())
                    }
                    Err(e) => return Err(e),
                };
                let tname_os = OsStr::from_bytes(tname);
                match rfs::statat(&tparent, tname_os, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        return Err(bad("hard link to a directory"))
                    }
                    Ok(_) => {}
                    Err(Errno::NOENT) => return Err(missing()),
                    Err(e) => return Err(e.into()),
                }
                remove_at(parent.as_fd(), name_os)?;
                rfs::linkat(&tparent, tname_os, &parent, name_os, AtFlags::empty())?;
            }
            T::Char | T::Block | T::Fifo => {
                let ft = match kind {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let h = entry.header();
                let dev = if ft == FileType::Fifo {
                    0
                } else {
                    let major = h.device_major()?.unwrap_or(0);
                    let minor = h.device_minor()?.unwrap_or(0);
                    rfs::makedev(major, minor)
                };
                remove_at(parent.as_fd(), name_os)?;
                rfs::mknodat(&parent, name_os, ft, Mode::empty(), dev)?;
                self.apply_at_meta(parent.as_fd(), name_os, &meta, true)?;
            }
            T::XGlobalHeader => {}
            other => {
                return Err(bad(format!(
                    "unsupported tar entry type {:?} (byte {:#04x})",
                    other,
                    other.as_byte()
                )))
            }
        }
        Ok(())
    }

    /// Owner, mode (unless a symlink), xattrs and times of a non-directory
    /// entry that cannot be opened safely (symlink, device, fifo).
    fn apply_at_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        m: &Meta,
        chmod: bool,
    ) -> EResult<()> {
        rfs::chownat(
            parent,
            name,
            Some(uid(m.uid)),
            Some(gid(m.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if chmod {
            rfs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(m.mode & 0o7777),
                AtFlags::empty(),
            )?;
        }
        if !m.xattrs.is_empty() {
            // The parent fd's magic link names exactly the directory opened
            // inside the root; lsetxattr does not follow the last component.
            let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            path.extend_from_slice(name.as_bytes());
            let path = OsStr::from_bytes(&path);
            for (k, v) in &m.xattrs {
                rfs::lsetxattr(path, cstr(k)?.as_c_str(), v, XattrFlags::empty())
                    .map_err(|e| xattr_err(k, e))?;
            }
        }
        rfs::utimensat(parent, name, &m.times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Opens the directory `comps` inside the root, resolving symlinks inside
    /// it; with `create`, missing directories are made (mode 0755).
    fn open_dir(&self, comps: &[Vec<u8>], create: bool) -> EResult<OwnedFd> {
        if comps.is_empty() {
            return Ok(self.root.try_clone()?);
        }
        let path = join(comps);
        match open_in_root(self.root.as_fd(), &path) {
            Err(Errno::NOENT) if create => {
                let (last, up) = comps.split_last().expect("not empty");
                let parent = self.open_dir(up, true)?;
                match rfs::mkdirat(&parent, OsStr::from_bytes(last), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_in_root(self.root.as_fd(), &path).map_err(|e| match e {
                    Errno::NOENT => bad(format!(
                        "cannot create directory {:?}: a symlink on the way points \
                         to nothing inside the layer",
                        String::from_utf8_lossy(&path)
                    )),
                    e => e.into(),
                })
            }
            Err(Errno::NOTDIR) => Err(bad(format!(
                "{:?} is not a directory but the layer puts entries under it",
                String::from_utf8_lossy(&path)
            ))),
            Err(e) => Err(e.into()),
            Ok(fd) => Ok(fd),
        }
    }

    fn finish_dirs(&mut self) -> io::Result<()> {
        for (comps, times) in std::mem::take(&mut self.dir_times) {
            match comps.split_last() {
                None => rfs::futimens(&self.root, &times)?,
                Some((name, up)) => {
                    let parent = match self.open_dir(up, false) {
                        Ok(p) => p,
                        Err(EntryError::Io(e)) => return Err(e),
                        Err(EntryError::Layer(m)) => return Err(io::Error::other(m)),
                    };
                    match rfs::utimensat(
                        &parent,
                        OsStr::from_bytes(name),
                        &times,
                        AtFlags::SYMLINK_NOFOLLOW,
                    ) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }
}

fn open_in_root(root: BorrowedFd<'_>, path: &[u8]) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rfs::openat2(
            root,
            OsStr::from_bytes(path),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // openat2 asks for a retry when a concurrent rename raced it.
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}
fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

fn xattr_err(name: &[u8], e: Errno) -> EntryError {
    EntryError::Io(io::Error::new(
        io::Error::from(e).kind(),
        format!("setting xattr {}: {e}", String::from_utf8_lossy(name)),
    ))
}

/// Owner, then mode (chown clears set-id bits), then xattrs (after chown,
/// which clears security.capability), on an open file or directory.
fn apply_fd_meta(fd: BorrowedFd<'_>, m: &Meta) -> EResult<()> {
    rfs::fchown(fd, Some(uid(m.uid)), Some(gid(m.gid)))?;
    rfs::fchmod(fd, Mode::from_raw_mode(m.mode & 0o7777))?;
    for (k, v) in &m.xattrs {
        rfs::fsetxattr(fd, cstr(k)?.as_c_str(), v, XattrFlags::empty())
            .map_err(|e| xattr_err(k, e))?;
    }
    Ok(())
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> EResult<Meta> {
    let h = entry.header();
    let to32 = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| bad(format!("{what} {v} is out of range")))
    };
    // Blank numeric fields read as 0, as Go's archive/tar (which wrote most
    // layers) does.
    let old = h.as_old();
    let num = |field: &[u8], get: io::Result<u64>| -> io::Result<u64> {
        if field.iter().all(|&b| b == 0 || b == b' ') {
            Ok(0)
        } else {
            get
        }
    };
    let uid = to32(num(&old.uid, h.uid())?, "uid")?;
    let gid = to32(num(&old.gid, h.gid())?, "gid")?;
    let mode = num(&old.mode, h.mode().map(u64::from))? as u32;
    let mtime = num(&old.mtime, h.mtime())?;
    let mut times = Timestamps {
        last_access: Timespec {
            tv_sec: mtime as i64,
            tv_nsec: 0,
        },
        last_modification: Timespec {
            tv_sec: mtime as i64,
            tv_nsec: 0,
        },
    };
    let mut xattrs = Vec::new();
    let mut atime = None;
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if !name.starts_with(b"trusted.overlay.") {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            } else if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    times.last_modification = t;
                }
            } else if key == b"atime" {
                atime = parse_pax_time(ext.value_bytes());
            }
        }
    }
    times.last_access = atime.unwrap_or(times.last_modification);
    Ok(Meta {
        uid,
        gid,
        mode,
        times,
        xattrs,
    })
}

/// "1700000000.123456789" (PAX time) to a Timespec.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut nsec = 0i64;
    let digits: String = frac.chars().take(9).collect();
    if !digits.is_empty() {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nsec = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    if tv_sec < 0 && nsec > 0 {
        // "-1.5" means 1.5 s before the epoch.
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: (1_000_000_000 - nsec) as _,
        });
    }
    Some(Timespec {
        tv_sec,
        tv_nsec: nsec as _,
    })
}

/// Removes `name` in `parent` whatever it is (a directory with its content);
/// never follows symlinks. Absent is fine.
pub(crate) fn remove_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Errno::PERM.into());
            }
            let dir = rfs::openat(
                parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let names: Vec<CString> = Dir::read_from(&dir)?
                .filter_map(|e| match e {
                    Ok(e) => {
                        let n = e.file_name();
                        (n.to_bytes() != b"." && n.to_bytes() != b"..").then(|| Ok(n.to_owned()))
                    }
                    Err(e) => Some(Err(e)),
                })
                .collect::<rustix::io::Result<_>>()?;
            for n in names {
                remove_at(dir.as_fd(), OsStr::from_bytes(n.to_bytes()))?;
            }
            rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
