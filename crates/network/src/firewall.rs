//! nftables rules, through `nft -j -f -` (JSON): one table per network,
//! `pier-BRIDGE` in the `ip` family, holding
//! - masquerade of the subnet's traffic leaving through other devices
//!   (not for `--internal`);
//! - isolation: new connections into the subnet are accepted only from its
//!   own bridge or when DNATed (published ports); an `--internal` network
//!   exchanges nothing with other devices;
//! - DNAT of published ports (prerouting for traffic from outside, output
//!   for the host's own traffic, including 127.0.0.1 via route_localnet
//!   and masquerade), kept as map elements so adding or removing one is a
//!   single element change.
//!
//! When another filter base chain at the forward hook drops by policy
//! (dockerd's iptables FORWARD chain), traffic of pier's bridges is
//! accepted there too, so pier works next to dockerd.

use crate::ipam::Subnet;
use crate::ports::Mapping;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
}

/// Creates or refreshes the network's table and the sysctls it needs
/// (ip_forward, the bridge's route_localnet). Idempotent.
pub fn setup_network(n: &NetworkRules) -> crate::Result<()> {
    todo!("{n:?}")
}

/// Deletes the network's table (and its accept rules in foreign forward
/// chains); missing ones are fine.
pub fn teardown_network(bridge: &str) -> crate::Result<()> {
    todo!("{bridge}")
}

/// Publishes `mappings` to `container_ip` on the network of `bridge`.
pub fn add_ports(bridge: &str, container_ip: Ipv4Addr, mappings: &[Mapping]) -> crate::Result<()> {
    todo!("{bridge}{container_ip}{mappings:?}")
}

/// Withdraws what [`add_ports`] added; missing elements are fine.
pub fn remove_ports(
    bridge: &str,
    container_ip: Ipv4Addr,
    mappings: &[Mapping],
) -> crate::Result<()> {
    todo!("{bridge}{container_ip}{mappings:?}")
}

/// The names of pier's tables (`pier-*`) in the `ip` family: for checks
/// that nothing is left behind.
pub fn tables() -> crate::Result<Vec<String>> {
    todo!()
}
