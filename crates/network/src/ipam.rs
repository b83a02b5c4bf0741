//! IPv4 address management: subnets, the lowest free address, docker's
//! default address pools, and MAC addresses derived from IPs.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// An IPv4 network: `addr` has no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `A.B.C.D/N`. Docker's messages: `invalid CIDR address: X`;
    /// host bits set (`10.1.0.5/24`) are an error as well
    /// (`invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24`).
    /// IPv6 is refused with a message saying pier supports IPv4 only.
    pub fn parse(s: &str) -> crate::Result<Subnet> {
        todo!("{s}")
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        todo!("{ip}")
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        todo!("{other:?}")
    }

    /// The first usable address (`.1` of a /24): docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        todo!()
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        todo!()
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The lowest address of `range` (default: the whole subnet) that is not
/// the network or broadcast address, not `gateway` and not in `used`;
/// None when the subnet is full.
pub fn allocate(
    subnet: &Subnet,
    range: Option<&Subnet>,
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    todo!("{subnet}{range:?}{gateway}{used:?}")
}

/// A base network carved into subnets of `size` bits (docker's
/// `default-address-pools` entries: `{"base": "172.17.0.0/16", "size": 16}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

/// Docker's defaults: 172.17.0.0/16 ... 172.31.0.0/16 as /16s, then
/// 192.168.0.0/16 as /20s.
pub fn default_pools() -> Vec<Pool> {
    todo!()
}

/// The first subnet carved from `pools`, in order, that overlaps none of
/// `taken` (other networks' subnets and the host's routes).
pub fn pick_subnet(pools: &[Pool], taken: &[Subnet]) -> Option<Subnet> {
    todo!("{pools:?}{taken:?}")
}

/// The host's IPv4 routes and interface networks (from /proc/net/route),
/// so a new network avoids them as docker does. The default route is left
/// out.
pub fn host_routes() -> std::io::Result<Vec<Subnet>> {
    todo!()
}

/// Docker's MAC for an IP: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    todo!("{ip}")
}

/// `aa:bb:cc:dd:ee:ff`, lower case.
pub fn format_mac(mac: &[u8; 6]) -> String {
    todo!("{mac:?}")
}

/// Parses `aa:bb:cc:dd:ee:ff` (docker: `invalid MAC address: X`); a
/// multicast address is refused.
pub fn parse_mac(s: &str) -> crate::Result<[u8; 6]> {
    todo!("{s}")
}
