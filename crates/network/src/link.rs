//! Links over rtnetlink: the bridge of a network, and a veth pair per
//! container attachment (host end on the bridge, the other end moved into
//! the container's namespace as `eth0`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// Device name, at most 15 bytes: `pier0`, `pier-0123456789`.
    pub name: String,
    /// The gateway address the bridge holds, with the subnet's prefix.
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub mtu: Option<u32>,
}

/// Makes sure the bridge exists, holds the gateway address and is up
/// (idempotent: pierd calls it on every start).
pub fn ensure_bridge(bridge: &Bridge) -> crate::Result<()> {
    todo!("{bridge:?}")
}

/// Deletes the bridge device; a missing one is fine.
pub fn delete_bridge(name: &str) -> crate::Result<()> {
    todo!("{name}")
}

/// One container's link to one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub bridge: String,
    /// The host end's name: `veth` + 7 hex digits.
    pub host_ifname: String,
    /// The container's namespace (a netns file).
    pub netns: PathBuf,
    /// The name inside: `eth0`, `eth1`, ...
    pub ifname: String,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// Default route through this gateway (the first network's only).
    pub gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
}

/// Creates the veth pair, puts the host end on the bridge (hairpin on)
/// and up, moves the peer into the namespace as `ifname` with its MAC and
/// address, up, with the default route when asked. Undoes what it did on
/// failure.
pub fn attach(a: &Attachment) -> crate::Result<()> {
    todo!("{a:?}")
}

/// Deletes the host end of a veth pair (which takes its peer along); a
/// missing one is fine.
pub fn detach(host_ifname: &str) -> crate::Result<()> {
    todo!("{host_ifname}")
}

/// Whether a link of that name exists in the caller's namespace.
pub fn exists(name: &str) -> crate::Result<bool> {
    todo!("{name}")
}

/// A fresh host-end name: `veth` + 7 random hex digits.
pub fn host_ifname() -> String {
    todo!()
}
