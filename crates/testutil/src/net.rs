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
}

impl TestNet {
    /// A random 10.N.0.0/16 (N in 64..=191) that no route of the host
    /// touches, with a lock file so concurrent tests never share one.
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
            let lock = format!("/tmp/pier-testnet-{n}");
            if used
                || std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&lock)
                    .is_err()
            {
                continue;
            }
            return TestNet {
                bridge: format!("pt{:08x}", rand_u32()),
                bip: format!("10.{n}.255.1/24"),
                pool: format!("base=10.{n}.0.0/16,size=24"),
                octet: n,
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

    /// Deletes the bridges and `pier-BRIDGE` nftables tables, and frees
    /// the subnet's lock.
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
        let _ = std::fs::remove_file(format!("/tmp/pier-testnet-{}", self.octet));
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_ne_bytes(b)
}
