//! Overlay mounts of image snapshots with the new mount API.
//!
//! `mount(2)` passes overlay options in one page (4 KiB), which 100+ layers
//! overflow. Here each lower layer is passed on its own with
//! `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", path)` (kernel >= 6.8); older
//! kernels get one `lowerdir=top:...:bottom` string instead. Note that the
//! kernel copies each fsconfig string with a 256-byte limit, so every single
//! path must be shorter than that (snapshot paths are).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
    unmount as umount2, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
    UnmountFlags,
};

/// Mounts an overlay of `lowers` (lowest first, as `Image::layers`) with
/// `upper` and `work` on `target`. An empty `upper` path makes a read-only
/// overlay without upper and work directories; with a single lower layer
/// that is a read-only bind mount (overlayfs wants two lowers then).
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    if lowers.len() == 1 && upper.as_os_str().is_empty() {
        return bind_read_only(&lowers[0], target);
    }
    match mount_overlay_with(lowers, upper, work, target, true) {
        Err(Fallback) => match mount_overlay_with(lowers, upper, work, target, false) {
            Ok(r) => r,
            Err(Fallback) => unreachable!("no fallback from the lowerdir string"),
        },
        Ok(r) => r,
    }
}

/// `lowerdir+` refused: the kernel is older than 6.8.
struct Fallback;

fn mount_overlay_with(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    lowerdir_plus: bool,
) -> Result<io::Result<()>, Fallback> {
    let fail = |what: &str, e: Errno, fs: Option<BorrowedFd<'_>>| -> io::Error {
        let log = fs.map(kernel_log).unwrap_or_default();
        let log = if log.is_empty() {
            String::new()
        } else {
            format!(" (kernel: {log})")
        };
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "mounting an overlay on {}: {what}: {e}{log}",
                target.display()
            ),
        )
    };
    if lowers.is_empty() {
        return Ok(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "mounting an overlay on {}: no lower layers given",
                target.display()
            ),
        )));
    }
    let fs = match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            return Ok(Err(fail(
                "fsopen(\"overlay\") (is the overlay module available?)",
                e,
                None,
            )))
        }
    };
    let set = |key: &str, value: &[u8]| -> io::Result<()> {
        fsconfig_set_string(&fs, key, value).map_err(|e| {
            fail(
                &format!("option {key}={}", String::from_utf8_lossy(value)),
                e,
                Some(fs.as_fd()),
            )
        })
    };
    if lowerdir_plus {
        for (i, l) in lowers.iter().rev().enumerate() {
            match fsconfig_set_string(&fs, "lowerdir+", l.as_os_str().as_bytes()) {
                Ok(()) => {}
                Err(Errno::INVAL) if i == 0 => {
                    // Unknown parameter (kernel < 6.8), unless the path was
                    // the problem: the string form will tell.
                    let _ = kernel_log(fs.as_fd());
                    return Err(Fallback);
                }
                Err(e) => {
                    return Ok(Err(fail(
                        &format!("lower layer {}", l.display()),
                        e,
                        Some(fs.as_fd()),
                    )))
                }
            }
        }
    } else {
        let mut s = Vec::new();
        for l in lowers.iter().rev() {
            if !s.is_empty() {
                s.push(b':');
            }
            for &b in l.as_os_str().as_bytes() {
                if matches!(b, b':' | b',' | b'\\') {
                    s.push(b'\\');
                }
                s.push(b);
            }
        }
        if let Err(e) = set("lowerdir", &s) {
            let hint = if s.len() >= 256 {
                " (this kernel lacks lowerdir+ (6.8) and the layer list exceeds its 256-byte option limit)"
            } else {
                ""
            };
            return Ok(Err(io::Error::new(e.kind(), format!("{e}{hint}"))));
        }
    }
    let mut attrs = MountAttrFlags::empty();
    if upper.as_os_str().is_empty() {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    } else {
        if let Err(e) = set("upperdir", upper.as_os_str().as_bytes()) {
            return Ok(Err(e));
        }
        if let Err(e) = set("workdir", work.as_os_str().as_bytes()) {
            return Ok(Err(e));
        }
    }
    if let Err(e) = fsconfig_create(&fs) {
        return Ok(Err(fail("creating the overlay", e, Some(fs.as_fd()))));
    }
    let mnt: OwnedFd = match fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs) {
        Ok(m) => m,
        Err(e) => return Ok(Err(fail("fsmount", e, Some(fs.as_fd())))),
    };
    Ok(move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("move_mount to the target", e, None)))
}

/// `open_tree(CLONE)` + `mount_setattr(RDONLY)` + `move_mount`.
fn bind_read_only(source: &Path, target: &Path) -> io::Result<()> {
    let ctx = |what: &str, e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "bind-mounting {} read-only on {}: {what}: {e}",
                source.display(),
                target.display()
            ),
        )
    };
    let tree = open_tree(
        CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| ctx("open_tree", e.into()))?;
    set_mount_attr(
        tree.as_fd(),
        MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64,
        0,
        false,
    )
    .map_err(|e| ctx("mount_setattr", e))?;
    move_mount(
        &tree,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| ctx("move_mount", e.into()))
}

/// mount_setattr(2) on the mount `fd` refers to (an attached or detached
/// one, from open_tree): sets the `MOUNT_ATTR_*` flags in `set` and, when
/// not 0, the propagation (`MS_PRIVATE`, ...); on its submounts too when
/// `recursive`.
pub fn set_mount_attr(
    fd: BorrowedFd<'_>,
    set: u64,
    propagation: u64,
    recursive: bool,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from a
    // valid, initialised struct laid out as the kernel's `struct mount_attr`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the messages the kernel queued on an fs context ("e overlayfs: ...").
fn kernel_log(fs: BorrowedFd<'_>) -> String {
    let mut msgs = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = rustix::io::read(fs, &mut buf[..]) {
        if n == 0 {
            break;
        }
        msgs.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
        if msgs.len() > 16 {
            break;
        }
    }
    msgs.join("; ")
}

/// Detaches the mount at `target` (`umount2(MNT_DETACH)`); a path that is
/// not a mount point (or does not exist) is not an error.
pub fn unmount(target: &Path) -> io::Result<()> {
    match umount2(target, UnmountFlags::DETACH) {
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("unmounting {}: {e}", target.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn string_fallback_mounts_too() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |s: &str| tmp.path().join(s);
        let mut lowers = Vec::new();
        for i in 0..3 {
            let l = p(&format!("l{i}"));
            fs::create_dir(&l).unwrap();
            fs::write(l.join("f"), format!("{i}")).unwrap();
            fs::write(l.join(format!("only{i}")), "").unwrap();
            lowers.push(l);
        }
        for d in ["u", "w", "m"] {
            fs::create_dir(p(d)).unwrap();
        }
        let r = mount_overlay_with(&lowers, &p("u"), &p("w"), &p("m"), false);
        let Ok(r) = r else {
            panic!("no fallback expected")
        };
        r.unwrap();
        let top = fs::read_to_string(p("m/f"));
        let listing: Vec<_> = fs::read_dir(p("m"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        unmount(&p("m")).unwrap();
        assert_eq!(top.unwrap(), "2");
        assert_eq!(listing.len(), 4);
        // Not mounted any more: unmount again is fine.
        unmount(&p("m")).unwrap();
        unmount(&p("does-not-exist")).unwrap();
    }

    #[test]
    fn no_layers_is_an_error() {
        let e = mount_overlay(&[], Path::new(""), Path::new(""), Path::new("/nonexistent"))
            .unwrap_err();
        assert!(e.to_string().contains("no lower layers"), "{e}");
    }
}
