//! Published ports: docker's `-p` syntax, its API shapes
//! (`ExposedPorts: {"80/tcp": {}}`, `PortBindings: {"80/tcp":
//! [{"HostIp": "", "HostPort": "8080"}]}`), and host port reservations.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// A container port: `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    pub port: u16,
    pub proto: Proto,
}

impl Port {
    /// Parses an API key: `80/tcp`, `53/udp`, `80` (tcp). Docker's
    /// message: `invalid containerPort: X`, `invalid proto: X`.
    pub fn parse(key: &str) -> crate::Result<Port> {
        todo!("{key}")
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.proto.as_str())
    }
}

/// One host binding of a container port, as the API carries it: empty
/// `host_ip` is every address, empty `host_port` is a random one.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    #[serde(rename = "HostIp", default)]
    pub host_ip: String,
    #[serde(rename = "HostPort", default)]
    pub host_port: String,
}

/// `-p` specs as the docker CLI turns them into the create body:
/// `[IP:][HOST[-HOST]:]CTR[-CTR][/PROTO]` (ranges expand pairwise; a host
/// range with one container port is kept as a range string in HostPort,
/// as docker does). Returns the exposed ports and their bindings.
/// Messages are docker's: `invalid port specification: "X"`,
/// `invalid hostPort: X`, `invalid containerPort: X`, `invalid proto: X`,
/// `invalid IP address: X`, `invalid ranges specified for container and
/// host Ports: X and Y`.
pub fn parse_publish(specs: &[String]) -> crate::Result<BTreeMap<Port, Vec<Binding>>> {
    todo!("{specs:?}")
}

/// `--expose 80`, `--expose 7000-7002/udp`.
pub fn parse_expose(spec: &str) -> crate::Result<Vec<Port>> {
    todo!("{spec}")
}

/// A port binding made concrete: what the firewall and the reservation
/// need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mapping {
    pub proto: Proto,
    /// None: every host address (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// A host port held by pierd while it is published, so nothing else on
/// the host can take it and a second container publishing it fails:
/// a bound (not listening) socket.
#[derive(Debug)]
pub struct Reservation {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    _socket: std::os::fd::OwnedFd,
}

/// Binds `host_ip:port/proto` (`port` 0: the kernel picks a free one from
/// the ephemeral range, docker's random port). An address in use is
/// [`crate::Error::PortInUse`] with docker's message: `Bind for
/// 0.0.0.0:8080 failed: port is already allocated`. `range` (from a
/// `HostPort` like `8000-8010`) makes it try each port in turn.
pub fn reserve(
    host_ip: Option<Ipv4Addr>,
    port: u16,
    range_end: Option<u16>,
    proto: Proto,
) -> crate::Result<Reservation> {
    todo!("{host_ip:?}{port}{range_end:?}{proto:?}")
}
