//! The networks pierd knows, one JSON file each:
//! `DATA_ROOT/networks/ID.json`, written atomically. `bridge` names the
//! device (tests and cleanup tools read it).

use pier_network::ipam::Subnet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Docker's option naming a network's bridge device.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// Always `bridge` for records; `host` and `null` are not stored.
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// The bridge device.
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The default `bridge` network (made by pierd, cannot be removed).
    #[serde(default)]
    pub default_bridge: bool,
    /// Whether the user chose the subnet (docker shows IPAM.Config only
    /// then, for user networks it always shows what was picked).
    #[serde(default)]
    pub user_subnet: bool,
}

impl NetworkRecord {
    /// Whether containers on it resolve each other by name (docker: user
    /// networks only).
    pub fn has_dns(&self) -> bool {
        !self.default_bridge
    }
}

pub fn dir(data_root: &Path) -> PathBuf {
    data_root.join("networks")
}

/// Every record under `dir`; unreadable ones are reported and skipped.
pub fn load(dir: &Path) -> Vec<NetworkRecord> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => out.push(r),
            Err(e) => eprintln!(
                "pierd: skipping network record {}: {e}; remove it if the network is gone",
                path.display()
            ),
        }
    }
    out
}

pub fn save(dir: &Path, rec: &NetworkRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::fsutil::write_json_atomic(&dir.join(format!("{}.json", rec.id)), rec)
}

pub fn delete(dir: &Path, id: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(format!("{id}.json"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Docker's rule for network names (those of containers):
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> NetworkRecord {
        NetworkRecord {
            id: id.into(),
            name: "n".into(),
            driver: "bridge".into(),
            created: "2026-01-01T00:00:00Z".into(),
            bridge: "pier-0123456789".into(),
            subnet: Subnet {
                addr: Ipv4Addr::new(10, 1, 0, 0),
                prefix: 24,
            },
            gateway: Ipv4Addr::new(10, 1, 0, 1),
            ip_range: None,
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            default_bridge: false,
            user_subnet: true,
        }
    }

    #[test]
    fn records_round_trip_and_bad_files_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        save(d.path(), &rec("a1")).unwrap();
        std::fs::write(d.path().join("bad.json"), b"{not json").unwrap();
        let all = load(d.path());
        assert_eq!(all, vec![rec("a1")]);
        // testutil's cleanup reads the device from "bridge".
        let text = std::fs::read(d.path().join("a1.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["bridge"], "pier-0123456789");
        delete(d.path(), "a1").unwrap();
        delete(d.path(), "a1").unwrap();
        assert!(load(d.path()).is_empty());
    }

    #[test]
    fn names_follow_docker_rules() {
        assert!(valid_name("my-net.1_a"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
    }
}
