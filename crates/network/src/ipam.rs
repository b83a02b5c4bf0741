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

/// The netmask of a prefix length as a number (`/24`: 0xffffff00).
fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

impl Subnet {
    /// Parses `A.B.C.D/N`. Docker's messages: `invalid CIDR address: X`;
    /// host bits set (`10.1.0.5/24`) are an error as well
    /// (`invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24`).
    /// IPv6 is refused with a message saying pier supports IPv4 only.
    ///
    /// A network needs room for a gateway and at least one container:
    /// /31 and /32 are refused (see [`Subnet::parse_network`] for address
    /// ranges, where they are fine).
    pub fn parse(s: &str) -> crate::Result<Subnet> {
        let net = Subnet::parse_network(s)?;
        if net.prefix > 30 {
            return Err(crate::Error::Invalid(format!(
                "invalid subnet {s}: a /{} network has fewer than 2 usable addresses \
                 (one for the gateway, one for a container); use a prefix of /30 or shorter",
                net.prefix
            )));
        }
        Ok(net)
    }

    /// Like [`Subnet::parse`] but accepts every prefix length, /31 and /32
    /// included: for `--ip-range` and stored records.
    pub fn parse_network(s: &str) -> crate::Result<Subnet> {
        let invalid = || crate::Error::Invalid(format!("invalid CIDR address: {s}"));
        let (ip, prefix) = s.split_once('/').ok_or_else(invalid)?;
        if ip.contains(':') && ip.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(crate::Error::Invalid(format!(
                "invalid subnet {s}: pier supports IPv4 networks only, and {ip} is an IPv6 address"
            )));
        }
        let ip: Ipv4Addr = ip.parse().map_err(|_| invalid())?;
        // Digits only, leading zeros allowed (as Go's ParseCIDR: `/024`).
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = prefix.trim_start_matches('0');
        if digits.len() > 2 {
            return Err(invalid());
        }
        let prefix: u8 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid())?
        };
        if prefix > 32 {
            return Err(invalid());
        }
        let net = Subnet {
            addr: Ipv4Addr::from(u32::from(ip) & mask(prefix)),
            prefix,
        };
        if net.addr != ip {
            return Err(crate::Error::Invalid(format!(
                "invalid subnet {s}: it should be {net}"
            )));
        }
        Ok(net)
    }

    /// The network that holds `ip` with this prefix length (host bits
    /// cleared): `network_of(10.1.2.3, 16)` is 10.1.0.0/16.
    pub fn network_of(ip: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        Subnet {
            addr: Ipv4Addr::from(u32::from(ip) & mask(prefix)),
            prefix,
        }
    }

    /// The netmask (`255.255.255.0` for a /24).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// How many addresses the subnet spans, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix.min(32)))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = mask(self.prefix);
        u32::from(ip) & m == u32::from(self.addr) & m
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        // Two prefixes overlap exactly when the shorter one holds the
        // other's network address.
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The first usable address (`.1` of a /24): docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        let net = u32::from(self.addr) & mask(self.prefix);
        if self.prefix >= 31 {
            // No network/broadcast addresses in a /31 or /32.
            Ipv4Addr::from(net)
        } else {
            Ipv4Addr::from(net + 1)
        }
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
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
        // Every valid network, /31 and /32 included (an `--ip-range` may be
        // one address); user input goes through Subnet::parse first.
        Subnet::parse_network(&s).map_err(serde::de::Error::custom)
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
    let net = u64::from(u32::from(subnet.addr) & mask(subnet.prefix));
    let bcast = u64::from(u32::from(subnet.broadcast()));
    let (mut lo, mut hi) = (net, bcast);
    if let Some(r) = range {
        lo = lo.max(u64::from(u32::from(r.addr) & mask(r.prefix)));
        hi = hi.min(u64::from(u32::from(r.broadcast())));
    }
    let gateway = u64::from(u32::from(gateway));
    let mut c = lo;
    // Walk the candidates and the used set together, so a long run of
    // used addresses costs one step each, never a lookup per address.
    let mut taken = used.range(Ipv4Addr::from(lo as u32)..).peekable();
    while c <= hi {
        if c == net || c == bcast || c == gateway {
            c += 1;
            continue;
        }
        while taken.peek().is_some_and(|u| u64::from(u32::from(**u)) < c) {
            taken.next();
        }
        if taken.peek().is_some_and(|u| u64::from(u32::from(**u)) == c) {
            c += 1;
            continue;
        }
        return Some(Ipv4Addr::from(c as u32));
    }
    None
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
    let mut pools: Vec<Pool> = (17..=31u8)
        .map(|b| Pool {
            base: Subnet {
                addr: Ipv4Addr::new(172, b, 0, 0),
                prefix: 16,
            },
            size: 16,
        })
        .collect();
    pools.push(Pool {
        base: Subnet {
            addr: Ipv4Addr::new(192, 168, 0, 0),
            prefix: 16,
        },
        size: 20,
    });
    pools
}

/// The first subnet carved from `pools`, in order, that overlaps none of
/// `taken` (other networks' subnets and the host's routes).
///
/// A pool whose `size` is shorter than its base's prefix or longer than 30
/// (no room for a gateway and a container) gives nothing.
pub fn pick_subnet(pools: &[Pool], taken: &[Subnet]) -> Option<Subnet> {
    for pool in pools {
        if pool.size < pool.base.prefix || pool.size > 30 {
            continue;
        }
        let step = 1u64 << (32 - u32::from(pool.size));
        let end = u64::from(u32::from(pool.base.broadcast()));
        let mut c = u64::from(u32::from(pool.base.addr) & mask(pool.base.prefix));
        while c <= end {
            let cand = Subnet {
                addr: Ipv4Addr::from(c as u32),
                prefix: pool.size,
            };
            // Skip past everything the overlapping networks cover (a taken
            // /8 skips a whole run of candidates at once).
            let skip_to = taken
                .iter()
                .filter(|t| t.overlaps(&cand))
                .map(|t| u64::from(u32::from(t.broadcast())))
                .max();
            match skip_to {
                None => return Some(cand),
                Some(b) => {
                    let past = b.max(c + step - 1) + 1;
                    // Align up to the next candidate boundary.
                    c = past.div_ceil(step) * step;
                }
            }
        }
    }
    None
}

/// The host's IPv4 routes and interface networks (from /proc/net/route),
/// so a new network avoids them as docker does. The default route is left
/// out.
pub fn host_routes() -> std::io::Result<Vec<Subnet>> {
    let text = std::fs::read_to_string("/proc/net/route")?;
    Ok(parse_routes(&text))
}

/// Parses the text of /proc/net/route: a header line, then one route a
/// line whose Destination and Mask columns are the address bytes as
/// little-endian hex (`0002A8C0` is 192.168.2.0). Lines that do not parse,
/// the default route and non-contiguous masks are left out; duplicates
/// are removed.
pub fn parse_routes(text: &str) -> Vec<Subnet> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 8 {
            continue;
        }
        let (Some(dest), Some(m)) = (parse_le_hex(cols[1]), parse_le_hex(cols[7])) else {
            continue;
        };
        let m = u32::from(m);
        let prefix = m.leading_ones();
        if prefix == 0 || m.count_ones() != prefix {
            // The default route, or a mask with holes.
            continue;
        }
        let net = Subnet::network_of(dest, prefix as u8);
        if !out.contains(&net) {
            out.push(net);
        }
    }
    out
}

/// `0002A8C0` (the kernel's little-endian u32 in hex) -> 192.168.2.0.
fn parse_le_hex(s: &str) -> Option<Ipv4Addr> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(s, 16).ok()?;
    Some(Ipv4Addr::from(v.to_le_bytes()))
}

/// Docker's MAC for an IP: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `aa:bb:cc:dd:ee:ff`, lower case.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses `aa:bb:cc:dd:ee:ff` (docker: `invalid MAC address: X`); a
/// multicast address is refused.
///
/// `-` is accepted as the separator too, as Go's `net.ParseMAC` does; the
/// all-zero address is refused as well (the kernel would refuse it).
pub fn parse_mac(s: &str) -> crate::Result<[u8; 6]> {
    let invalid = || crate::Error::Invalid(format!("invalid MAC address: {s}"));
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut n = 0;
    for part in s.split(sep) {
        if n == 6 || part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        mac[n] = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        n += 1;
    }
    if n != 6 {
        return Err(invalid());
    }
    if mac[0] & 1 == 1 {
        return Err(crate::Error::Invalid(format!(
            "invalid MAC address: {s}: it is a multicast address (the first byte is odd); \
             a container needs a unicast one such as 02:42:ac:11:00:02"
        )));
    }
    if mac == [0; 6] {
        return Err(crate::Error::Invalid(format!(
            "invalid MAC address: {s}: the all-zero address cannot be given to an interface"
        )));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Subnet {
        Subnet::parse_network(s).unwrap()
    }

    fn err(r: crate::Result<impl std::fmt::Debug>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parse_accepts_networks() {
        let s = Subnet::parse("10.1.0.0/24").unwrap();
        assert_eq!(s.addr, Ipv4Addr::new(10, 1, 0, 0));
        assert_eq!(s.prefix, 24);
        assert_eq!(s.to_string(), "10.1.0.0/24");
        assert_eq!(Subnet::parse("0.0.0.0/0").unwrap().prefix, 0);
        assert_eq!(Subnet::parse("192.168.1.4/30").unwrap().prefix, 30);
        // as docker (Go's ParseCIDR): leading zeros in the prefix are fine.
        assert_eq!(Subnet::parse("10.1.0.0/024").unwrap(), net("10.1.0.0/24"));
        assert_eq!(Subnet::parse("10.1.0.0/00016").unwrap().prefix, 16);
    }

    #[test]
    fn parse_refuses_bad_cidr_with_dockers_message() {
        for s in [
            "",
            "10.1.0.0",
            "10.1.0.0/",
            "10.1.0.0/33",
            "10.1.0/24",
            "10.1.0.256/24",
            "x/24",
            "10.1.0.0/-1",
            "10.1.0.0/+8",
            "10.1.0.0/24/1",
            " 10.1.0.0/24",
            "10.1.0.0/ 24",
            "10.1.0.0/999",
            "10.1.0.0/0033",
            "010.1.0.0/24",
            "10.1.0.0/1e1",
            "10.1.0.0/99999999999999999999",
        ] {
            assert_eq!(
                err(Subnet::parse(s)),
                format!("invalid CIDR address: {s}"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn parse_names_the_right_network_when_host_bits_are_set() {
        // as docker: `invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24`
        assert_eq!(
            err(Subnet::parse("10.1.0.5/24")),
            "invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24"
        );
        assert_eq!(
            err(Subnet::parse("172.20.300.0/16")),
            "invalid CIDR address: 172.20.300.0/16"
        );
        assert_eq!(
            err(Subnet::parse("172.20.3.0/16")),
            "invalid subnet 172.20.3.0/16: it should be 172.20.0.0/16"
        );
        assert_eq!(
            err(Subnet::parse("10.0.0.1/0")),
            "invalid subnet 10.0.0.1/0: it should be 0.0.0.0/0"
        );
    }

    #[test]
    fn parse_refuses_ipv6_saying_ipv4_only() {
        let e = err(Subnet::parse("fd00::/64"));
        assert!(e.contains("IPv4") && e.contains("fd00::"), "{e}");
    }

    #[test]
    fn parse_refuses_subnets_without_room_for_gateway_and_container() {
        for s in ["10.0.0.0/31", "10.0.0.7/32"] {
            let e = err(Subnet::parse(s));
            assert!(e.contains(s) && e.contains("/30"), "{e}");
        }
        // ... which are fine as address ranges.
        assert_eq!(net("10.0.0.7/32").addr, Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(net("10.0.0.0/31").prefix, 31);
    }

    #[test]
    fn serde_round_trips_and_refuses_garbage() {
        let s = net("10.9.8.0/24");
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, "\"10.9.8.0/24\"");
        assert_eq!(serde_json::from_str::<Subnet>(&j).unwrap(), s);
        assert_eq!(
            serde_json::from_str::<Subnet>("\"10.0.0.3/32\"").unwrap(),
            net("10.0.0.3/32")
        );
        assert!(serde_json::from_str::<Subnet>("\"10.9.8.1/24\"").is_err());
        let p: Pool = serde_json::from_str(r#"{"base":"10.200.0.0/16","size":24}"#).unwrap();
        assert_eq!(p.base, net("10.200.0.0/16"));
        assert_eq!(p.size, 24);
    }

    #[test]
    fn contains_overlaps_first_host_broadcast() {
        let s = net("10.1.0.0/24");
        assert!(s.contains(Ipv4Addr::new(10, 1, 0, 0)));
        assert!(s.contains(Ipv4Addr::new(10, 1, 0, 255)));
        assert!(!s.contains(Ipv4Addr::new(10, 1, 1, 0)));
        assert!(!s.contains(Ipv4Addr::new(10, 0, 255, 255)));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 1, 0, 255));
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(s.size(), 256);
        assert!(s.overlaps(&net("10.0.0.0/8")));
        assert!(net("10.0.0.0/8").overlaps(&s));
        assert!(s.overlaps(&net("10.1.0.128/25")));
        assert!(!s.overlaps(&net("10.1.1.0/24")));
        assert!(!s.overlaps(&net("10.0.255.0/24")));
        assert!(net("0.0.0.0/0").overlaps(&s));
        assert!(net("0.0.0.0/0").contains(Ipv4Addr::new(255, 255, 255, 255)));
        assert_eq!(net("0.0.0.0/0").broadcast(), Ipv4Addr::BROADCAST);
        assert_eq!(net("10.0.0.8/32").first_host(), Ipv4Addr::new(10, 0, 0, 8));
        assert_eq!(net("10.0.0.8/32").broadcast(), Ipv4Addr::new(10, 0, 0, 8));
        assert_eq!(
            Subnet::network_of(Ipv4Addr::new(10, 1, 2, 3), 16),
            net("10.1.0.0/16")
        );
    }

    #[test]
    fn allocate_takes_the_lowest_free_address() {
        let s = net("10.1.0.0/24");
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        assert_eq!(
            allocate(&s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 0, 2))
        );
        used.insert(Ipv4Addr::new(10, 1, 0, 2));
        used.insert(Ipv4Addr::new(10, 1, 0, 4));
        assert_eq!(
            allocate(&s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 0, 3))
        );
        used.insert(Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(
            allocate(&s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 0, 5))
        );
        // A gateway elsewhere in the subnet frees .1.
        assert_eq!(
            allocate(&s, None, Ipv4Addr::new(10, 1, 0, 254), &used),
            Some(Ipv4Addr::new(10, 1, 0, 1))
        );
    }

    #[test]
    fn allocate_stays_inside_the_range() {
        let s = net("10.1.0.0/16");
        let r = net("10.1.5.0/24");
        let mut used = BTreeSet::new();
        // .0 of the range is not the subnet's network address: usable.
        assert_eq!(
            allocate(&s, Some(&r), s.first_host(), &used),
            Some(Ipv4Addr::new(10, 1, 5, 0))
        );
        used.insert(Ipv4Addr::new(10, 1, 5, 0));
        assert_eq!(
            allocate(&s, Some(&r), s.first_host(), &used),
            Some(Ipv4Addr::new(10, 1, 5, 1))
        );
        // A one-address range.
        let one = net("10.1.9.9/32");
        assert_eq!(
            allocate(&s, Some(&one), s.first_host(), &used),
            Some(Ipv4Addr::new(10, 1, 9, 9))
        );
        used.insert(Ipv4Addr::new(10, 1, 9, 9));
        assert_eq!(allocate(&s, Some(&one), s.first_host(), &used), None);
        // A range outside the subnet has nothing.
        assert_eq!(
            allocate(&s, Some(&net("10.2.0.0/24")), s.first_host(), &used),
            None
        );
    }

    #[test]
    fn allocate_returns_none_when_full() {
        // /30: network .0, gateway .1, one container .2, broadcast .3.
        let s = net("10.1.0.0/30");
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        assert_eq!(
            allocate(&s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 0, 2))
        );
        used.insert(Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(allocate(&s, None, gw, &used), None);
        // A /24 with every host used.
        let s = net("10.1.1.0/24");
        let used: BTreeSet<_> = (2..=254).map(|d| Ipv4Addr::new(10, 1, 1, d)).collect();
        assert_eq!(allocate(&s, None, s.first_host(), &used), None);
        // The top of the address space does not overflow.
        let s = net("255.255.255.0/24");
        let used: BTreeSet<_> = (2..=253).map(|d| Ipv4Addr::new(255, 255, 255, d)).collect();
        assert_eq!(
            allocate(&s, None, s.first_host(), &used),
            Some(Ipv4Addr::new(255, 255, 255, 254))
        );
    }

    #[test]
    fn allocate_is_fast_on_a_big_full_subnet() {
        // 65k used addresses walked once (a lookup per address would do too,
        // but this pins that a /16 with a full set terminates with None).
        let s = net("10.7.0.0/16");
        let used: BTreeSet<_> = (2..u32::from(s.broadcast()) - u32::from(s.addr))
            .map(|i| Ipv4Addr::from(u32::from(s.addr) + i))
            .collect();
        assert_eq!(allocate(&s, None, s.first_host(), &used), None);
    }

    #[test]
    fn default_pools_are_dockers() {
        let p = default_pools();
        assert_eq!(p.len(), 16);
        assert_eq!(p[0].base, net("172.17.0.0/16"));
        assert_eq!(p[0].size, 16);
        assert_eq!(p[14].base, net("172.31.0.0/16"));
        assert_eq!(p[14].size, 16);
        assert_eq!(p[15].base, net("192.168.0.0/16"));
        assert_eq!(p[15].size, 20);
        assert_eq!(pick_subnet(&p, &[]), Some(net("172.17.0.0/16")));
    }

    #[test]
    fn pick_subnet_skips_taken_networks_and_routes() {
        let p = default_pools();
        let taken = [net("172.17.0.0/16"), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&p, &taken), Some(net("172.19.0.0/16")));
        // A taken /12 covers all of 172.16-31: the /20s of 192.168 follow.
        let taken = [
            net("172.16.0.0/12"),
            net("192.168.0.0/20"),
            net("192.168.17.0/24"),
        ];
        assert_eq!(pick_subnet(&p, &taken), Some(net("192.168.32.0/20")));
        // A default route (0.0.0.0/0) would take everything; it is not a
        // host route, but pick_subnet honours whatever it is given.
        assert_eq!(pick_subnet(&p, &[net("0.0.0.0/0")]), None);
        // Small subnets from a test pool.
        let pool = [Pool {
            base: net("10.42.0.0/16"),
            size: 24,
        }];
        assert_eq!(pick_subnet(&pool, &[]), Some(net("10.42.0.0/24")));
        let taken = [net("10.42.0.0/23"), net("10.42.2.128/25")];
        assert_eq!(pick_subnet(&pool, &taken), Some(net("10.42.3.0/24")));
        let all: Vec<Subnet> = (0..=255u8)
            .map(|i| net(&format!("10.42.{i}.0/24")))
            .collect();
        assert_eq!(pick_subnet(&pool, &all), None);
    }

    #[test]
    fn pick_subnet_ignores_impossible_pools() {
        let bad = [
            Pool {
                base: net("10.0.0.0/16"),
                size: 8,
            },
            Pool {
                base: net("10.0.0.0/16"),
                size: 31,
            },
            Pool {
                base: net("10.1.0.0/16"),
                size: 30,
            },
        ];
        assert_eq!(pick_subnet(&bad, &[]), Some(net("10.1.0.0/30")));
    }

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
wg0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
eth0\t0402A8C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0
eth0\t0502A8C0\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0
eth0\tnothex!!\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
short line
lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
";

    #[test]
    fn parse_routes_reads_little_endian_hex() {
        assert_eq!(
            parse_routes(ROUTES),
            vec![
                net("192.168.2.0/24"),
                net("172.17.0.0/16"),
                net("10.0.0.0/8"),
                net("192.168.2.4/32"),
                net("127.0.0.0/8"),
            ]
        );
        assert_eq!(parse_routes(""), vec![]);
        assert_eq!(parse_routes("Iface\tDestination\n"), vec![]);
    }

    #[test]
    fn host_routes_reads_this_namespace() {
        // Whatever the host has, the default route is never in it and the
        // file parses.
        let routes = host_routes().unwrap();
        assert!(routes.iter().all(|r| r.prefix > 0), "{routes:?}");
    }

    #[test]
    fn macs() {
        let ip = Ipv4Addr::new(172, 17, 0, 2);
        assert_eq!(mac_for(ip), [0x02, 0x42, 172, 17, 0, 2]);
        assert_eq!(format_mac(&mac_for(ip)), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:AC:11:00:02").unwrap(), mac_for(ip));
        assert_eq!(parse_mac("02-42-ac-11-00-02").unwrap(), mac_for(ip));
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "02:42:ac:11:00:2",
            "02:42:ac:11:00:0g",
            "0242ac110002",
            "02:42:ac-11:00:02",
            "02::42:ac:11:00",
            " 02:42:ac:11:00:02",
            "02:42:ac:11:00:+2",
        ] {
            assert_eq!(
                err(parse_mac(bad)),
                format!("invalid MAC address: {bad}"),
                "{bad:?}"
            );
        }
        let e = err(parse_mac("01:00:5e:00:00:01"));
        assert!(
            e.starts_with("invalid MAC address: 01:00:5e:00:00:01") && e.contains("multicast"),
            "{e}"
        );
        assert!(err(parse_mac("ff:ff:ff:ff:ff:ff")).contains("multicast"));
        assert!(err(parse_mac("00:00:00:00:00:00")).contains("all-zero"));
    }

    fn any_subnet() -> impl Strategy<Value = Subnet> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| Subnet::network_of(Ipv4Addr::from(a), p))
    }

    proptest! {
        #[test]
        fn prop_parse_never_panics(s in ".{0,40}") {
            let _ = Subnet::parse(&s);
            let _ = Subnet::parse_network(&s);
            let _ = parse_mac(&s);
            let _ = parse_routes(&s);
        }

        #[test]
        fn prop_parse_never_panics_on_cidr_like(s in "[0-9a-f:./ -]{0,24}") {
            let _ = Subnet::parse(&s);
            let _ = parse_mac(&s);
        }

        #[test]
        fn prop_display_parse_round_trip(s in any_subnet()) {
            prop_assert_eq!(Subnet::parse_network(&s.to_string()).unwrap(), s);
            if s.prefix <= 30 {
                prop_assert_eq!(Subnet::parse(&s.to_string()).unwrap(), s);
            } else {
                prop_assert!(Subnet::parse(&s.to_string()).is_err());
            }
        }

        #[test]
        fn prop_host_bits_are_an_error(a in any::<u32>(), p in 0u8..=32) {
            let ip = Ipv4Addr::from(a);
            let s = format!("{ip}/{p}");
            let netw = Subnet::network_of(ip, p);
            match Subnet::parse_network(&s) {
                Ok(n) => prop_assert_eq!(n.addr, ip),
                Err(e) => {
                    prop_assert_ne!(netw.addr, ip);
                    prop_assert_eq!(e.to_string(), format!("invalid subnet {s}: it should be {netw}"));
                }
            }
        }

        #[test]
        fn prop_mac_round_trip(b in any::<[u8; 6]>()) {
            match parse_mac(&format_mac(&b)) {
                Ok(m) => prop_assert_eq!(m, b),
                Err(_) => prop_assert!(b[0] & 1 == 1 || b == [0; 6]),
            }
        }

        #[test]
        fn prop_contains_matches_bounds(s in any_subnet(), a in any::<u32>()) {
            let ip = Ipv4Addr::from(a);
            let inside = u32::from(s.addr) <= a && a <= u32::from(s.broadcast());
            prop_assert_eq!(s.contains(ip), inside);
        }

        #[test]
        fn prop_overlaps_is_symmetric_and_exact(a in any_subnet(), b in any_subnet()) {
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
            let (a0, a1) = (u32::from(a.addr), u32::from(a.broadcast()));
            let (b0, b1) = (u32::from(b.addr), u32::from(b.broadcast()));
            prop_assert_eq!(a.overlaps(&b), a0 <= b1 && b0 <= a1);
        }

        #[test]
        fn prop_allocate_never_returns_reserved_or_used(
            base in any::<u32>(),
            prefix in 22u8..=30,
            range_prefix in prop::option::of(22u8..=32),
            range_off in any::<u32>(),
            gw_off in any::<u32>(),
            used_offs in prop::collection::vec(any::<u32>(), 0..300),
        ) {
            let s = Subnet::network_of(Ipv4Addr::from(base), prefix);
            let size = s.size() as u32;
            let at = |off: u32| Ipv4Addr::from(u32::from(s.addr) + off % size);
            let range = range_prefix.map(|p| Subnet::network_of(at(range_off), p.max(prefix)));
            let gw = at(gw_off);
            let used: BTreeSet<_> = used_offs.iter().map(|o| at(*o)).collect();
            let got = allocate(&s, range.as_ref(), gw, &used);
            let ok = |ip: Ipv4Addr| {
                s.contains(ip)
                    && range.is_none_or(|r| r.contains(ip))
                    && ip != s.addr
                    && ip != s.broadcast()
                    && ip != gw
                    && !used.contains(&ip)
            };
            // The lowest acceptable address, by brute force.
            let want = (0..size).map(at).find(|ip| ok(*ip));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn prop_pick_subnet_never_overlaps_taken(
            taken in prop::collection::vec(
                (any::<u8>(), any::<u8>(), 8u8..=28)
                    .prop_map(|(a, b, p)| Subnet::network_of(Ipv4Addr::new(10, a, b, 0), p)),
                0..20),
            size in 16u8..=22,
        ) {
            let pools = [
                Pool { base: Subnet::parse("10.0.0.0/9").unwrap(), size },
                Pool { base: Subnet::parse("10.128.0.0/9").unwrap(), size: size.max(20) },
            ];
            match pick_subnet(&pools, &taken) {
                Some(got) => {
                    prop_assert!(taken.iter().all(|t| !t.overlaps(&got)));
                    prop_assert!(pools.iter().any(|p| p.base.overlaps(&got) && p.size == got.prefix));
                    prop_assert_eq!(Subnet::network_of(got.addr, got.prefix), got);
                }
                None => {
                    // Every candidate of the first pool is taken.
                    let step = 1u32 << (32 - size);
                    let n = 1u32 << (size - 9);
                    for i in 0..n {
                        let c = Subnet { addr: Ipv4Addr::from(u32::from(pools[0].base.addr) + i * step), prefix: size };
                        prop_assert!(taken.iter().any(|t| t.overlaps(&c)));
                    }
                }
            }
        }

        #[test]
        fn prop_pick_subnet_is_the_first_free(
            taken in prop::collection::vec(
                (0u8..16, any::<u8>(), 12u8..=28)
                    .prop_map(|(a, b, p)| Subnet::network_of(Ipv4Addr::new(10, a, b, 0), p)),
                0..12),
        ) {
            let pools = [Pool { base: Subnet::parse("10.0.0.0/12").unwrap(), size: 20 }];
            let want = (0..256u32)
                .map(|i| Subnet { addr: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i << 12)), prefix: 20 })
                .find(|c| taken.iter().all(|t| !t.overlaps(c)));
            prop_assert_eq!(pick_subnet(&pools, &taken), want);
        }
    }
}
