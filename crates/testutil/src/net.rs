//! Networks of a test's own: a default bridge name, a subnet for it and
//! an address pool that no other test (or the host) uses, and the removal
//! of every bridge and nftables table pier made for the environment.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct TestNet {
    /// The default bridge device (`--bridge`): `pt` + 8 hex digits.
    pub bridge: String,
    /// Its address (`--bip`): `10.N.255.1/24`.
    pub bip: String,
    /// pierd's `--default-address-pool`: `base=10.N.0.0/16,size=24`.
    pub pool: String,
    /// N, the second byte of every address of this environment.
    pub octet: u8,
    /// `/tmp/pier-testnet-N`, flocked while N is this environment's: the
    /// kernel lets go of it when the test process ends, however it ends
    /// (SIGKILL included), so no N is lost to a stale lock.
    _lock: std::sync::Arc<NetLock>,
}

impl TestNet {
    /// A random 10.N.0.0/16 (N in 64..=191) that no route of the host
    /// touches, with a locked file so concurrent tests never share one.
    pub fn pick() -> TestNet {
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        for _ in 0..200 {
            let n: u8 = 64 + (rand_u32() % 128) as u8;
            // /proc/net/route holds destinations as little-endian hex.
            let needle = format!("{n:02X}0A");
            let used = routes
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(1))
                .any(|dst| dst.ends_with(&needle));
            if used {
                continue;
            }
            let Some(lock) = lock_exclusively(&format!("/tmp/pier-testnet-{n}")) else {
                continue;
            };
            return TestNet {
                bridge: format!("pt{:08x}", rand_u32()),
                bip: format!("10.{n}.255.1/24"),
                pool: format!("base=10.{n}.0.0/16,size=24"),
                octet: n,
                _lock: std::sync::Arc::new(lock),
            };
        }
        panic!("no free 10.N.0.0/16 for a test network (see /tmp/pier-testnet-*)");
    }

    /// The bridges of this environment: the default one and those of the
    /// networks recorded under `data_root/networks/*.json` (`"bridge"`).
    pub fn bridges(&self, data_root: &Path) -> Vec<String> {
        let mut names = vec![self.bridge.clone()];
        for e in std::fs::read_dir(data_root.join("networks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = std::fs::read(e.path()) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
                if let Some(b) = v.get("bridge").and_then(|b| b.as_str()) {
                    names.push(b.to_string());
                }
            }
        }
        names
    }

    /// Deletes the bridges and `pier-BRIDGE` nftables tables (the
    /// subnet's lock goes with the last clone of this TestNet).
    pub fn remove(&self, data_root: &Path) {
        for b in self.bridges(data_root) {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stderr(std::process::Stdio::null())
                .status();
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", &format!("pier-{b}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A flocked lock file, removed (while still locked) when dropped.
#[derive(Debug)]
pub struct NetLock {
    path: String,
    _file: std::fs::File,
}

impl Drop for NetLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `path` opened (made if missing) and flocked, or None when another
/// process holds it. A file its holder removed after this one opened it
/// is not a lock any more: the path must still name the locked file.
fn lock_exclusively(path: &str) -> Option<NetLock> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ok()?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    let (held, named) = (file.metadata().ok()?, std::fs::metadata(path).ok()?);
    (rc == 0 && held.ino() == named.ino() && held.dev() == named.dev()).then(|| NetLock {
        path: path.to_string(),
        _file: file,
    })
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_held_once_and_removed_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock").to_string_lossy().into_owned();
        let held = lock_exclusively(&path).expect("a free lock");
        assert!(lock_exclusively(&path).is_none(), "locked twice");
        drop(held);
        assert!(!Path::new(&path).exists(), "the lock file is left");
        assert!(lock_exclusively(&path).is_some(), "not free again");
    }
}
