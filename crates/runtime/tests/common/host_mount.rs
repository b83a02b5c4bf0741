//! Mounts a test makes in the host's mount namespace, undone on drop even
//! when the test fails.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let source = source.map(cpath).transpose()?;
    let fstype = fstype.map(|t| CString::new(t).expect("no NUL in a type name"));
    let target = cpath(target)?;
    let p = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is a valid C string or null.
    let r = unsafe {
        libc::mount(
            p(&source),
            target.as_ptr(),
            p(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A mount on `dir`; on drop every mount at or below `dir` is lazily
/// unmounted (stacked ones and any that propagated there too).
pub struct HostMount {
    pub dir: PathBuf,
}

impl HostMount {
    /// A fresh tmpfs on `dir`.
    pub fn tmpfs(dir: &Path) -> io::Result<HostMount> {
        mount(Some(Path::new("tmpfs")), dir, Some("tmpfs"), 0)?;
        Ok(HostMount {
            dir: dir.to_owned(),
        })
    }

    /// `dir` bind-mounted onto itself (a mount point of its own).
    pub fn bind_self(dir: &Path) -> io::Result<HostMount> {
        mount(Some(dir), dir, None, libc::MS_BIND)?;
        Ok(HostMount {
            dir: dir.to_owned(),
        })
    }

    /// Puts the mount in a shared peer group of its own.
    pub fn make_shared(&self) -> io::Result<()> {
        mount(None, &self.dir, None, libc::MS_SHARED)
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        // Deepest first; a point with stacked mounts needs one call each.
        for _ in 0..64 {
            let mps = super::host_mounts_at_or_below(&self.dir);
            let Some(mp) = mps.into_iter().max_by_key(|m| m.len()) else {
                return;
            };
            let Ok(c) = CString::new(mp) else { return };
            // SAFETY: umount2 with a valid C string.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                return;
            }
        }
    }
}
