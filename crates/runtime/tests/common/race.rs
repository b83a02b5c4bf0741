//! The attacker of the symlink-exchange race tests: a host thread that
//! swaps two names with renameat2(RENAME_EXCHANGE) in a tight loop.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
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
