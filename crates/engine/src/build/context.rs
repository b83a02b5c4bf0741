//! The build context a client sends (`POST /build`'s body): a tar, plain
//! or compressed, or a bare Dockerfile. The context is untrusted: every
//! entry is created with `*at` calls below the target, parent directories
//! are opened with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (an entry under
//! a symlink is refused, so nothing lands outside), the last component is
//! never followed, and device nodes and fifos are left out. Names are
//! taken as they are: `.wh.` files are plain files here, not whiteouts.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What the body was.
#[derive(Debug, PartialEq, Eq)]
pub enum Context {
    /// A tar archive, unpacked into the target.
    Archive,
    /// A bare Dockerfile (`docker build - < Dockerfile`): its text.
    Dockerfile(String),
}

/// The largest bare Dockerfile accepted.
const MAX_DOCKERFILE: u64 = 16 << 20;

/// Unpacks the context in `reader` into `dir` (an existing, empty
/// directory).
pub fn unpack(reader: impl Read, dir: &Path) -> Result<Context, String> {
    let (_, mut plain) = pier_image::extract::decompress(reader)
        .map_err(|e| format!("reading the build context: {e}"))?;
    let mut head = Vec::with_capacity(512);
    (&mut plain)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| format!("reading the build context: {e}"))?;
    if !pier_builder::context::looks_like_tar(&head) {
        let mut text = head;
        plain
            .take(MAX_DOCKERFILE)
            .read_to_end(&mut text)
            .map_err(|e| format!("reading the build context: {e}"))?;
        if text.iter().all(|b| *b == 0) {
            // An empty archive (or an empty body): an empty context.
            return Ok(Context::Archive);
        }
        return String::from_utf8(text)
            .map(Context::Dockerfile)
            .map_err(|_| {
                "the build context is neither a tar archive nor a Dockerfile: send a tar \
             (plain, gzip or zstd) of the context directory"
                    .to_string()
            });
    }
    let root = rfs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let mut u = Unpacker {
        root,
        dirs: Vec::new(),
    };
    let consumed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut archive = tar::Archive::new(Counting {
        inner: io::Cursor::new(head).chain(plain),
        n: consumed.clone(),
    });
    let entries = archive
        .entries()
        .map_err(|e| format!("reading the build context tar: {e}"))?;
    // Where the last entry's content ended.
    let mut last_end = None;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            // The docker CLI's tar with a Dockerfile from outside the
            // context ends right after that file's content, without
            // padding or end blocks; Go's tar reader (dockerd) takes that
            // as the end, and so does this.
            Err(_) if last_end == Some(consumed.get()) => break,
            Err(e) => return Err(format!("reading the build context tar: {e}")),
        };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        u.entry(&mut entry)
            .map_err(|e| format!("unpacking {name:?} of the build context: {e}"))?;
        last_end = Some(entry.raw_file_position() + entry.size());
    }
    for (comps, mtime) in std::mem::take(&mut u.dirs).into_iter().rev() {
        if let Ok(fd) = u.open_dir(&comps) {
            let _ = rfs::futimens(&fd, &times(mtime));
        }
    }
    Ok(Context::Archive)
}

/// A reader that counts what it reads.
struct Counting<R> {
    inner: R,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Lexically cleaned components (`.`, `..` and a leading `/` resolved
/// against the root).
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

struct Unpacker {
    root: OwnedFd,
    /// Directories and their mtimes, set once their content is in.
    dirs: Vec<(Vec<Vec<u8>>, u64)>,
}

fn remove_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => Err(io::Error::other(
            "a directory of that name is already there",
        )),
        Err(e) => Err(e.into()),
    }
}

impl Unpacker {
    /// Opens directory `comps` below the root, refusing symlinks on the way.
    fn open_dir(&self, comps: &[Vec<u8>]) -> io::Result<OwnedFd> {
        if comps.is_empty() {
            return self.root.try_clone();
        }
        let path = comps.join(&b'/');
        rfs::openat2(
            &self.root,
            OsStr::from_bytes(&path),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR | Errno::XDEV => io::Error::other(format!(
                "{:?} is not a directory (a symlink or file) but the archive puts entries under it",
                String::from_utf8_lossy(&path)
            )),
            e => e.into(),
        })
    }

    /// Opens (making missing ones, 0755) the directory `comps`.
    fn make_dir(&self, comps: &[Vec<u8>]) -> io::Result<OwnedFd> {
        match self.open_dir(comps) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let (last, up) = comps.split_last().expect("the root exists");
                let parent = self.make_dir(up)?;
                match rfs::mkdirat(&parent, OsStr::from_bytes(last), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                self.open_dir(comps)
            }
            other => other,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> io::Result<()> {
        use tar::EntryType as T;
        let comps = clean(&entry.path_bytes());
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry.header().mtime().unwrap_or(0);
        let Some((name, parent_comps)) = comps.split_last() else {
            return Ok(()); // "./": the context directory itself
        };
        if !matches!(
            kind,
            T::Directory | T::Regular | T::Continuous | T::Symlink | T::Link
        ) {
            // Devices, fifos, metadata entries: nothing of a context.
            return Ok(());
        }
        let parent = self.make_dir(parent_comps)?;
        let name = OsStr::from_bytes(name);
        match kind {
            T::Directory => {
                match rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let fd = self.open_dir(&comps)?;
                rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
                self.dirs.push((comps.clone(), mtime));
            }
            T::Regular | T::Continuous => {
                remove_at(parent.as_fd(), name)?;
                let fd = rfs::openat(
                    &parent,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut f = std::fs::File::from(fd);
                let want = entry.size();
                let got = io::copy(entry, &mut f)?;
                if got != want {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file ends after {got} of {want} bytes"),
                    ));
                }
                f.flush()?;
                rfs::fchmod(&f, Mode::from_raw_mode(mode))?;
                rfs::futimens(&f, &times(mtime))?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| io::Error::other("a symlink without a target"))?
                    .into_owned();
                remove_at(parent.as_fd(), name)?;
                rfs::symlinkat(OsStr::from_bytes(&target), &parent, name)?;
            }
            _ => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| io::Error::other("a hard link without a target"))?
                    .into_owned();
                let t = clean(&target);
                let Some((tname, tparent)) = t.split_last() else {
                    return Err(io::Error::other("a hard link to the context's root"));
                };
                if t == comps {
                    return Ok(());
                }
                let tdir = self.open_dir(tparent)?;
                let st = rfs::statat(&tdir, OsStr::from_bytes(tname), AtFlags::SYMLINK_NOFOLLOW)?;
                if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
                    return Err(io::Error::other(format!(
                        "a hard link to {:?}, which is not a regular file of the archive",
                        String::from_utf8_lossy(&target)
                    )));
                }
                remove_at(parent.as_fd(), name)?;
                rfs::linkat(
                    &tdir,
                    OsStr::from_bytes(tname),
                    &parent,
                    name,
                    AtFlags::empty(),
                )?;
            }
        }
        Ok(())
    }
}

/// Reads the Dockerfile at `path` (relative to the context) without
/// leaving the context; symlinks inside it are followed as docker does.
pub fn read_dockerfile(dir: &Path, path: &str) -> Result<String, String> {
    let missing = || format!("Cannot locate specified Dockerfile: {path}");
    let root = rfs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let rel = path.trim_start_matches('/');
    let fd = rfs::openat2(
        &root,
        if rel.is_empty() { "." } else { rel },
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|_| missing())?;
    let mut f = std::fs::File::from(fd);
    if !f.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err(missing());
    }
    let mut bytes = Vec::new();
    Read::by_ref(&mut f)
        .take(MAX_DOCKERFILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the Dockerfile {path}: {e}"))?;
    if bytes.len() as u64 > MAX_DOCKERFILE {
        return Err(format!(
            "the Dockerfile {path} is larger than {} MiB",
            MAX_DOCKERFILE >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("the Dockerfile {path} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o750
            } else {
                0o640
            });
            h.set_size(data.len() as u64);
            h.set_mtime(1_000_000);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            // Raw names: the tar crate refuses `..` when setting a path.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_context_unpacks_inside_its_directory_only() {
        use tar::EntryType as T;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ctx");
        std::fs::create_dir(&dir).unwrap();
        let data = tar_of(&[
            ("Dockerfile", T::Regular, b"FROM scratch\n", ""),
            ("sub/", T::Directory, b"", ""),
            ("sub/.wh.file", T::Regular, b"kept", ""),
            ("../escape", T::Regular, b"x", ""),
            ("link", T::Symlink, b"", "/"),
            ("hard", T::Link, b"", "Dockerfile"),
            ("dev", T::Char, b"", ""),
        ]);
        assert_eq!(unpack(&data[..], &dir).unwrap(), Context::Archive);
        assert_eq!(std::fs::read(dir.join("escape")).unwrap(), b"x");
        assert!(!tmp.path().join("escape").exists());
        assert_eq!(std::fs::read(dir.join("sub/.wh.file")).unwrap(), b"kept");
        assert_eq!(std::fs::read(dir.join("hard")).unwrap(), b"FROM scratch\n");
        assert!(!dir.join("dev").exists());
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir.join("sub")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
        assert_eq!(m.mtime(), 1_000_000);
        assert_eq!(
            read_dockerfile(&dir, "Dockerfile").unwrap(),
            "FROM scratch\n"
        );
        // The symlink to / resolves inside the context.
        assert_eq!(
            read_dockerfile(&dir, "link/Dockerfile").unwrap(),
            "FROM scratch\n"
        );
        assert!(read_dockerfile(&dir, "nope")
            .unwrap_err()
            .contains("Cannot locate specified Dockerfile: nope"));

        // Entries through a symlink are refused.
        let dir2 = tmp.path().join("ctx2");
        std::fs::create_dir(&dir2).unwrap();
        let data = tar_of(&[
            ("out", T::Symlink, b"", tmp.path().to_str().unwrap()),
            ("out/pwned", T::Regular, b"x", ""),
        ]);
        let e = unpack(&data[..], &dir2).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        assert!(!tmp.path().join("pwned").exists());
    }

    #[test]
    fn a_tar_cut_after_its_last_files_content_is_complete_but_not_one_cut_inside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tar_of(&[
            ("a", tar::EntryType::Regular, b"1", ""),
            ("Dockerfile", tar::EntryType::Regular, b"FROM x\n", ""),
        ]);
        // As the docker CLI sends a Dockerfile from outside the context.
        let cut = &data[..512 + 512 + 512 + 7];
        assert_eq!(unpack(cut, tmp.path()).unwrap(), Context::Archive);
        assert_eq!(
            std::fs::read(tmp.path().join("Dockerfile")).unwrap(),
            b"FROM x\n"
        );
        let short = &data[..512 + 512 + 512 + 3];
        let dir = tmp.path().join("2");
        std::fs::create_dir(&dir).unwrap();
        assert!(unpack(short, &dir).is_err());
    }

    #[test]
    fn a_bare_dockerfile_and_gzip_are_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let df = b"FROM busybox\nRUN true\n";
        assert_eq!(
            unpack(&df[..], tmp.path()).unwrap(),
            Context::Dockerfile(String::from_utf8(df.to_vec()).unwrap())
        );
        let data = tar_of(&[("a", tar::EntryType::Regular, b"1", "")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(unpack(&gz[..], tmp.path()).unwrap(), Context::Archive);
        assert_eq!(std::fs::read(tmp.path().join("a")).unwrap(), b"1");
        assert_eq!(unpack(&b""[..], tmp.path()).unwrap(), Context::Archive);
    }
}
