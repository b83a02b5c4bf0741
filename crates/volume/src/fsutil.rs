//! Small filesystem helpers: atomic writes, mount-point checks, and a
//! recursive removal that never crosses into a mounted filesystem.

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, Mode, OFlags, StatxAttributes, StatxFlags, CWD};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An io::Error saying what failed on which path, keeping the kind.
pub(crate) fn ctx(e: impl Into<std::io::Error>, what: &str, path: &Path) -> std::io::Error {
    let e: std::io::Error = e.into();
    std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// A random lowercase hex string of `bytes` random bytes.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let b: u8 = rand::random();
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `mkdir` with exactly `mode` (umask does not apply).
pub(crate) fn mkdir_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    rustix::fs::mkdir(path, Mode::from_raw_mode(mode)).map_err(|e| ctx(e, "mkdir", path))?;
    rustix::fs::chmod(path, Mode::from_raw_mode(mode)).map_err(|e| ctx(e, "chmod", path))
}

pub(crate) fn fsync_dir(path: &Path) -> std::io::Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, "open", path))?;
    rustix::fs::fsync(&fd).map_err(|e| ctx(e, "fsync", path))
}

/// Writes `dir/name` atomically: a temporary file in `dir`, fsync, rename,
/// fsync of `dir`.
pub(crate) fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", random_hex(6)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| ctx(e, "create", &tmp))?;
        f.write_all(data).map_err(|e| ctx(e, "write", &tmp))?;
        f.sync_all().map_err(|e| ctx(e, "fsync", &tmp))?;
        let dst = dir.join(name);
        std::fs::rename(&tmp, &dst).map_err(|e| ctx(e, "rename to", &dst))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether `name` under `dir` (not followed if a symlink) is the root of
/// a mount. statx's STATX_ATTR_MOUNT_ROOT where the kernel reports it
/// (5.8+), else /proc/self/mountinfo.
pub(crate) fn is_mount_root_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> std::io::Result<bool> {
    let st = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
    .map_err(|e| ctx(e, "stat", path))?;
    if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    }
    let full = std::fs::canonicalize(path).map_err(|e| ctx(e, "resolve", path))?;
    mountinfo_has(&full)
}

/// Whether `path` is a mount point (false when it does not exist).
pub(crate) fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    match is_mount_root_at(CWD, path.as_os_str(), path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        r => r,
    }
}

/// Whether /proc/self/mountinfo lists `path` as a mount point.
fn mountinfo_has(path: &Path) -> std::io::Result<bool> {
    let info = std::fs::read("/proc/self/mountinfo")
        .map_err(|e| ctx(e, "read", Path::new("/proc/self/mountinfo")))?;
    for line in info.split(|&b| b == b'\n') {
        let Some(field) = line.split(|&b| b == b' ').nth(4) else {
            continue;
        };
        if unescape_mountinfo(field) == path.as_os_str() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let oct = &field[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(b) = u8::try_from(v) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    OsStr::from_bytes(&out).to_os_string()
}

/// Removes `name` under the directory `dir` (shown as `path`) and all it
/// holds, never following symlinks and refusing, before touching anything
/// below it, any directory that is the root of a mount (a bind of host
/// data would otherwise be emptied). Missing entries are fine.
pub(crate) fn remove_tree_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> std::io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(ctx(e, "stat", path)),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(ctx(e, "remove", path)),
        };
    }
    if is_mount_root_at(dir, name, path)? {
        return Err(std::io::Error::other(format!(
            "refusing to remove {}: a filesystem is mounted there (unmount it first)",
            path.display()
        )));
    }
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(ctx(e, "open", path)),
    };
    // Names first: deleting while reading a directory may skip entries.
    let mut names = Vec::new();
    let mut d = rustix::fs::Dir::read_from(&fd).map_err(|e| ctx(e, "read", path))?;
    while let Some(entry) = d.read() {
        let entry = entry.map_err(|e| ctx(e, "read", path))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    drop(d);
    for n in names {
        remove_tree_at(fd.as_fd(), &n, &path.join(&n))?;
    }
    drop(fd);
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(ctx(e, "remove", path)),
    }
}

/// [`remove_tree_at`] for a full path.
pub(crate) fn remove_tree(path: &Path) -> std::io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other(format!(
            "refusing to remove {}",
            path.display()
        )));
    };
    let parent = if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent.to_path_buf()
    };
    let pfd = rustix::fs::open(
        &parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, "open", &parent))?;
    remove_tree_at(pfd.as_fd(), name, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fallback() {
        assert_eq!(unescape_mountinfo(b"/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo(b"/x\\04"), "/x\\04");
        assert_eq!(unescape_mountinfo(b"/x\\999"), "/x\\999");
        assert!(mountinfo_has(Path::new("/")).unwrap());
        let d = tempfile::tempdir().unwrap();
        assert!(!mountinfo_has(d.path()).unwrap());
        // The statx answer agrees.
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(!is_mount_point(d.path()).unwrap());
        assert!(!is_mount_point(&d.path().join("missing")).unwrap());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "f.json", b"one", 0o600).unwrap();
        write_atomic(d.path(), "f.json", b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(d.path().join("f.json")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.json"]);
    }
}
