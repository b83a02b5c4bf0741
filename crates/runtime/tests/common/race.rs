//! Attacker-side tools for the symlink-exchange race tests: a host thread
//! that swaps two names with renameat2(RENAME_EXCHANGE) in a tight loop,
//! and a decoy host directory that is a shared mount of its own, so that a
//! mount landing on it in a container's namespace (with rshared root
//! propagation) shows up in the host's mountinfo.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("test paths have no NUL")
}

/// Swaps `dir/a` and `dir/b` for each pair, over and over, until dropped.
pub struct Exchanger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<u64>>>,
}

impl Exchanger {
    pub fn start(dir: &Path, pairs: &[(&str, &str)]) -> Exchanger {
        let dirfd = File::open(dir).expect("opening the exchange directory");
        let pairs: Vec<(CString, CString)> = pairs
            .iter()
            .map(|(a, b)| (cpath(Path::new(a)), cpath(Path::new(b))))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !flag.load(Ordering::Relaxed) {
                for (a, b) in &pairs {
                    let fd = dirfd.as_raw_fd();
                    // SAFETY: valid descriptor and C strings.
                    let r = unsafe {
                        libc::renameat2(fd, a.as_ptr(), fd, b.as_ptr(), libc::RENAME_EXCHANGE)
                    };
                    if r != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    swaps += 1;
                }
            }
            Ok(swaps)
        });
        Exchanger {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the loop; the number of swaps done, or why a swap failed.
    pub fn finish(mut self) -> io::Result<u64> {
        self.halt()
    }

    fn halt(&mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("the exchange thread panicked"))?,
            None => Ok(0),
        }
    }
}

impl Drop for Exchanger {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// `dir` bind-mounted onto itself and made shared; every mount at or
/// below it is lazily unmounted on drop (escaped mounts included).
pub struct SharedDecoy {
    pub dir: PathBuf,
}

impl SharedDecoy {
    pub fn new(dir: &Path) -> io::Result<SharedDecoy> {
        let c = cpath(dir);
        // SAFETY: mount(2) with valid C strings and null data.
        unsafe {
            if libc::mount(
                c.as_ptr(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        let guard = SharedDecoy {
            dir: dir.to_owned(),
        };
        // SAFETY: as above.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_SHARED,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(guard)
    }
}

impl Drop for SharedDecoy {
    fn drop(&mut self) {
        // Deepest first; a path with stacked mounts needs one call each.
        for _ in 0..64 {
            let mps = super::host_mounts_at_or_below(&self.dir);
            let Some(mp) = mps.into_iter().max_by_key(|m| m.len()) else {
                return;
            };
            let c = cpath(Path::new(&mp));
            // SAFETY: umount2 with a valid C string.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                return;
            }
        }
    }
}
