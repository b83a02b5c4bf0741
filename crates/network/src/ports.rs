//! Published ports: docker's `-p` syntax, its API shapes
//! (`ExposedPorts: {"80/tcp": {}}`, `PortBindings: {"80/tcp":
//! [{"HostIp": "", "HostPort": "8080"}]}`), and host port reservations.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use crate::Error;

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

    /// `tcp`, `udp` or `sctp`, any case (docker lower-cases it); docker's
    /// message otherwise: `invalid proto: X`.
    pub fn parse(s: &str) -> crate::Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(Error::Invalid(format!("invalid proto: {s}"))),
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
        let (port, proto) = split_proto_port(key);
        if port.is_empty() {
            return Err(Error::Invalid(format!("invalid containerPort: {key}")));
        }
        let proto = Proto::parse(proto)?;
        let port = parse_u16(port)
            .map_err(|_| Error::Invalid(format!("invalid containerPort: {port}")))?;
        Ok(Port { port, proto })
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.proto.as_str())
    }
}

impl serde::Serialize for Port {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Port::parse(&s).map_err(serde::de::Error::custom)
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

impl Binding {
    /// `HostIp` as pier binds it: None for every address (`""`,
    /// `0.0.0.0`). pier publishes on IPv4 only: an IPv6 address is refused
    /// with a message saying so; anything else is docker's
    /// `invalid IP address: X`.
    pub fn ipv4(&self) -> crate::Result<Option<Ipv4Addr>> {
        let ip = self.host_ip.as_str();
        if ip.is_empty() {
            return Ok(None);
        }
        if let Ok(v4) = ip.parse::<Ipv4Addr>() {
            return Ok((!v4.is_unspecified()).then_some(v4));
        }
        let bare = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(ip);
        if bare.parse::<Ipv6Addr>().is_ok() {
            return Err(Error::Invalid(format!(
                "cannot publish on {ip}: pier publishes ports on IPv4 addresses only"
            )));
        }
        Err(Error::Invalid(format!("invalid IP address: {ip}")))
    }

    /// `HostPort` as pier reserves it: None for a random port (`""`),
    /// `(p, p)` for one port, `(start, end)` for a range (`8000-8010`) to
    /// pick from. The daemon's message otherwise: `invalid port
    /// specification: "X"`.
    pub fn port_range(&self) -> crate::Result<Option<(u16, u16)>> {
        if self.host_port.is_empty() {
            return Ok(None);
        }
        parse_range(&self.host_port).map(Some).map_err(|_| {
            Error::Invalid(format!("invalid port specification: {:?}", self.host_port))
        })
    }
}

/// Go's `strconv.ParseUint(s, 10, 16)` (digits only, no sign), with its
/// reasons: `invalid syntax`, `value out of range`.
fn parse_u16(s: &str) -> Result<u16, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    // Leading zeros are digits like any other (Go accepts `080`).
    let digits = s.trim_start_matches('0');
    if digits.len() > 5 {
        return Err("value out of range");
    }
    match digits {
        "" => Ok(0),
        d => d
            .parse::<u32>()
            .ok()
            .and_then(|v| u16::try_from(v).ok())
            .ok_or("value out of range"),
    }
}

/// Go's `nat.ParsePortRange`: `80` or `8000-8010`, with its messages.
/// Unlike docker, `1-2-3` is refused rather than read as `1-2`.
fn parse_range(s: &str) -> Result<(u16, u16), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let num =
        |p: &str| parse_u16(p).map_err(|why| format!("strconv.ParseUint: parsing {p:?}: {why}"));
    let Some((a, b)) = s.split_once('-') else {
        let p = num(s)?;
        return Ok((p, p));
    };
    let start = num(a)?;
    if b.contains('-') {
        return Err(format!("invalid range specified for port: {s}"));
    }
    let end = num(b)?;
    if end < start {
        return Err(format!("invalid range specified for port: {s}"));
    }
    Ok((start, end))
}

/// Go's `nat.SplitProtoPort`: `80/udp` -> (`80`, `udp`); no or an empty
/// protocol is tcp; no port gives two empty strings.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    if port.is_empty() {
        return ("", "");
    }
    (port, if proto.is_empty() { "tcp" } else { proto })
}

/// Go's `net.SplitHostPort(ip + ":")` for a bracketed `[::1]`: the bare
/// address, or its error text.
fn strip_brackets(ip: &str) -> Result<&str, String> {
    let hostport = format!("{ip}:");
    let fail = |why: &str| Err(format!("address {hostport}: {why}"));
    let Some(end) = hostport.find(']') else {
        return fail("missing ']' in address");
    };
    let last_colon = hostport.len() - 1;
    if end + 1 != last_colon {
        return if hostport.as_bytes()[end + 1] == b':' {
            fail("too many colons in address")
        } else {
            fail("missing port in address")
        };
    }
    let host = &ip[1..end];
    if hostport[1..].contains('[') {
        return fail("unexpected '[' in address");
    }
    if hostport[end + 1..].contains(']') {
        return fail("unexpected ']' in address");
    }
    Ok(host)
}

/// Go's `net.ParseIP`: an IPv4 or IPv6 address (no zone).
fn is_ip(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok() || s.parse::<Ipv6Addr>().is_ok()
}

/// One `-p` spec (go-connections' `nat.ParsePortSpec`): its ports and
/// bindings, in container port order.
fn parse_spec(raw: &str) -> crate::Result<Vec<(Port, Binding)>> {
    let invalid = |m: String| Error::Invalid(m);
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = split_proto_port(container);
    if container.is_empty() {
        return Err(invalid(format!("no port specified: {raw}<empty>")));
    }
    let proto = Proto::parse(proto)?;
    let mut ip = ip.as_str();
    if ip.starts_with('[') {
        ip = strip_brackets(ip).map_err(|e| invalid(format!("invalid IP address {ip}: {e}")))?;
    }
    if !ip.is_empty() && !is_ip(ip) {
        return Err(invalid(format!("invalid IP address: {ip}")));
    }
    let (start, end) = parse_range(container)
        .map_err(|_| invalid(format!("invalid containerPort: {container}")))?;
    let mut host = None;
    if !host_port.is_empty() {
        let (hs, he) = parse_range(host_port)
            .map_err(|_| invalid(format!("invalid hostPort: {host_port}")))?;
        // A host range with one container port is the range to pick a
        // host port from; otherwise the two ranges must be as long.
        if end - start != he - hs && end != start {
            return Err(invalid(format!(
                "invalid ranges specified for container and host Ports: {container} and {host_port}"
            )));
        }
        host = Some((hs, he));
    }
    let count = u32::from(end - start) + 1;
    Ok((0..count)
        .map(|i| {
            let host_port = match host {
                None => String::new(),
                Some((hs, he)) if count == 1 && hs != he => format!("{hs}-{he}"),
                Some((hs, _)) => (u32::from(hs) + i).to_string(),
            };
            (
                Port {
                    port: (u32::from(start) + i) as u16,
                    proto,
                },
                Binding {
                    host_ip: ip.to_string(),
                    host_port,
                },
            )
        })
        .collect())
}

/// The docker CLI's long `--publish` syntax
/// (`published=8080,target=80,protocol=udp`) in the short one
/// (`8080:80/udp`).
fn long_to_short(spec: &str) -> crate::Result<String> {
    let mut published = "";
    let mut target = "";
    let mut protocol = "tcp";
    for param in spec.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => match k {
                "published" => published = v,
                "target" => target = v,
                "protocol" => protocol = v,
                _ => {}
            },
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid publish opts format (should be name=value but got '{param}')"
                )))
            }
        }
    }
    Ok(format!("{published}:{target}/{protocol}"))
}

/// `-p` specs as the docker CLI turns them into the create body:
/// `[IP:][HOST[-HOST]:]CTR[-CTR][/PROTO]` (ranges expand pairwise; a host
/// range with one container port is kept as a range string in HostPort,
/// as docker does). Returns the exposed ports and their bindings.
/// Messages are docker's: `invalid port specification: "X"`,
/// `invalid hostPort: X`, `invalid containerPort: X`, `invalid proto: X`,
/// `invalid IP address: X`, `invalid ranges specified for container and
/// host Ports: X and Y`.
///
/// As the docker CLI: `-p ""` is `no port specified: <empty>`, an IPv6
/// host address may be given in brackets (`[::1]:80:80`; HostIp is then
/// `::1`), and the long form `published=8080,target=80[,protocol=udp]` is
/// accepted. Two specs for one container port add two bindings.
pub fn parse_publish(specs: &[String]) -> crate::Result<BTreeMap<Port, Vec<Binding>>> {
    let mut out: BTreeMap<Port, Vec<Binding>> = BTreeMap::new();
    for spec in specs {
        let short;
        let spec = if spec.contains('=') {
            short = long_to_short(spec)?;
            short.as_str()
        } else {
            spec.as_str()
        };
        for (port, binding) in parse_spec(spec)? {
            out.entry(port).or_default().push(binding);
        }
    }
    Ok(out)
}

/// `--expose 80`, `--expose 7000-7002/udp`.
///
/// Docker CLI's messages: `invalid port format for --expose: X` (a `:`),
/// `invalid range format for --expose: X, error: ...`, and
/// `invalid proto: X`.
pub fn parse_expose(spec: &str) -> crate::Result<Vec<Port>> {
    if spec.contains(':') {
        return Err(Error::Invalid(format!(
            "invalid port format for --expose: {spec}"
        )));
    }
    let (port, proto) = split_proto_port(spec);
    let (start, end) = parse_range(port).map_err(|e| {
        Error::Invalid(format!(
            "invalid range format for --expose: {spec}, error: {e}"
        ))
    })?;
    let proto = Proto::parse(proto)?;
    Ok((start..=end).map(|port| Port { port, proto }).collect())
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
///
/// The socket has SO_REUSEADDR off, so it conflicts with any other socket
/// on that port and address (or on the wildcard address). SCTP needs the
/// kernel's sctp support: without it this is [`crate::Error::Invalid`]
/// (`sctp is not supported ...`).
pub fn reserve(
    host_ip: Option<Ipv4Addr>,
    port: u16,
    range_end: Option<u16>,
    proto: Proto,
) -> crate::Result<Reservation> {
    use rustix::io::Errno;
    let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let end = if port == 0 {
        0
    } else {
        range_end.unwrap_or(port)
    };
    if end < port {
        return Err(Error::Invalid(format!(
            "invalid host port range {port}-{end}: the end is below the start"
        )));
    }
    for p in port..=end {
        match bind_one(ip, p, proto) {
            Ok((fd, bound)) => {
                return Ok(Reservation {
                    host_ip,
                    host_port: bound,
                    proto,
                    _socket: fd,
                })
            }
            Err(e) if e == Errno::ADDRINUSE => continue,
            Err(e)
                if proto == Proto::Sctp
                    && [
                        Errno::PROTONOSUPPORT,
                        Errno::SOCKTNOSUPPORT,
                        Errno::AFNOSUPPORT,
                    ]
                    .contains(&e) =>
            {
                return Err(Error::Invalid(format!(
                    "sctp is not supported by this kernel ({e}): cannot publish {ip}:{p}/sctp"
                )))
            }
            Err(e) => {
                return Err(Error::io(
                    format!("bind {ip}:{p}/{proto}"),
                    std::io::Error::from(e),
                ))
            }
        }
    }
    let ports = if end == port {
        port.to_string()
    } else {
        format!("{port}-{end}")
    };
    Err(Error::PortInUse(format!(
        "Bind for {ip}:{ports} failed: port is already allocated"
    )))
}

/// A socket bound (not listening) on `ip:port`, and the port it got.
fn bind_one(
    ip: Ipv4Addr,
    port: u16,
    proto: Proto,
) -> rustix::io::Result<(std::os::fd::OwnedFd, u16)> {
    use rustix::net::{ipproto, AddressFamily, SocketFlags, SocketType};
    let (ty, protocol) = match proto {
        Proto::Tcp => (SocketType::STREAM, ipproto::TCP),
        Proto::Udp => (SocketType::DGRAM, ipproto::UDP),
        Proto::Sctp => (SocketType::STREAM, ipproto::SCTP),
    };
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        ty,
        SocketFlags::CLOEXEC,
        Some(protocol),
    )?;
    rustix::net::bind(&fd, &SocketAddrV4::new(ip, port))?;
    let bound = match port {
        0 => rustix::net::getsockname(&fd)
            .ok()
            .and_then(|a| SocketAddrV4::try_from(a).ok())
            .map(|a| a.port())
            .ok_or(rustix::io::Errno::INVAL)?,
        p => p,
    };
    Ok((fd, bound))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err<T: std::fmt::Debug>(r: crate::Result<T>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn tcp(port: u16) -> Port {
        Port {
            port,
            proto: Proto::Tcp,
        }
    }

    fn b(ip: &str, port: &str) -> Binding {
        Binding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    fn publish(specs: &[&str]) -> crate::Result<BTreeMap<Port, Vec<Binding>>> {
        parse_publish(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn one(spec: &str) -> Vec<(String, Vec<Binding>)> {
        publish(&[spec])
            .unwrap()
            .into_iter()
            .map(|(p, b)| (p.to_string(), b))
            .collect()
    }

    #[test]
    fn port_parse_and_display() {
        assert_eq!(Port::parse("80/tcp").unwrap(), tcp(80));
        assert_eq!(Port::parse("80").unwrap(), tcp(80));
        assert_eq!(Port::parse("80/").unwrap(), tcp(80));
        assert_eq!(
            Port::parse("53/udp").unwrap(),
            Port {
                port: 53,
                proto: Proto::Udp
            }
        );
        assert_eq!(Port::parse("132/SCTP").unwrap().to_string(), "132/sctp");
        assert_eq!(Port::parse("65535/tcp").unwrap().port, 65535);
        assert_eq!(tcp(8080).to_string(), "8080/tcp");
        assert_eq!(err(Port::parse("80/icmp")), "invalid proto: icmp");
        assert_eq!(err(Port::parse("80/tcp/x")), "invalid proto: tcp/x");
        for (key, bad) in [
            ("x/tcp", "x"),
            ("65536/tcp", "65536"),
            ("80-81/tcp", "80-81"),
            ("+80", "+80"),
            ("-1", "-1"),
            (" 80", " 80"),
            ("", ""),
            ("/tcp", "/tcp"),
        ] {
            assert_eq!(
                err(Port::parse(key)),
                format!("invalid containerPort: {bad}"),
                "{key:?}"
            );
        }
    }

    #[test]
    fn port_serde_as_api_keys() {
        let mut m = BTreeMap::new();
        m.insert(tcp(80), vec![b("", "8080")]);
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}"#);
        let back: BTreeMap<Port, Vec<Binding>> = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m);
        let partial: Vec<Binding> = serde_json::from_str(r#"[{"HostPort":"1"},{}]"#).unwrap();
        assert_eq!(partial, vec![b("", "1"), b("", "")]);
        assert!(serde_json::from_str::<BTreeMap<Port, ()>>(r#"{"x/tcp":null}"#).is_err());
    }

    #[test]
    fn publish_host_and_container_port() {
        assert_eq!(one("8080:80"), vec![("80/tcp".into(), vec![b("", "8080")])]);
        assert_eq!(
            one("127.0.0.1:8080:80/udp"),
            vec![("80/udp".into(), vec![b("127.0.0.1", "8080")])]
        );
        assert_eq!(
            one("8080:80/TCP"),
            vec![("80/tcp".into(), vec![b("", "8080")])]
        );
    }

    #[test]
    fn publish_random_host_port() {
        // as docker: `-p 80` and `-p IP::80` leave HostPort empty.
        assert_eq!(one("80"), vec![("80/tcp".into(), vec![b("", "")])]);
        assert_eq!(
            one("127.0.0.1::80"),
            vec![("80/tcp".into(), vec![b("127.0.0.1", "")])]
        );
        assert_eq!(one(":80"), vec![("80/tcp".into(), vec![b("", "")])]);
        assert_eq!(one("0:80"), vec![("80/tcp".into(), vec![b("", "0")])]);
    }

    #[test]
    fn publish_ranges_expand_pairwise() {
        assert_eq!(
            one("8000-8001:80-81"),
            vec![
                ("80/tcp".into(), vec![b("", "8000")]),
                ("81/tcp".into(), vec![b("", "8001")]),
            ]
        );
        assert_eq!(
            one("10.0.0.1:7000-7002:7000-7002/udp"),
            vec![
                ("7000/udp".into(), vec![b("10.0.0.1", "7000")]),
                ("7001/udp".into(), vec![b("10.0.0.1", "7001")]),
                ("7002/udp".into(), vec![b("10.0.0.1", "7002")]),
            ]
        );
        // A container range with no host port: each gets a random one.
        assert_eq!(
            one("80-81"),
            vec![
                ("80/tcp".into(), vec![b("", "")]),
                ("81/tcp".into(), vec![b("", "")]),
            ]
        );
        // as docker: a host range with one container port stays a range.
        assert_eq!(
            one("8000-8010:80"),
            vec![("80/tcp".into(), vec![b("", "8000-8010")])]
        );
        assert_eq!(
            one("8000-8000:80"),
            vec![("80/tcp".into(), vec![b("", "8000")])]
        );
    }

    #[test]
    fn publish_ipv6_host_addresses_are_kept_as_strings() {
        assert_eq!(
            one("[::1]:80:80"),
            vec![("80/tcp".into(), vec![b("::1", "80")])]
        );
        assert_eq!(one("[::]::80"), vec![("80/tcp".into(), vec![b("::", "")])]);
        // Without brackets, too, as docker.
        assert_eq!(
            one("fe80::1:8080:80"),
            vec![("80/tcp".into(), vec![b("fe80::1", "8080")])]
        );
        assert_eq!(
            err(publish(&["[::1:80:80"])),
            "invalid IP address [::1: address [::1:: missing ']' in address"
        );
        assert_eq!(
            err(publish(&["[::1]x:80:80"])),
            "invalid IP address [::1]x: address [::1]x:: missing port in address"
        );
        assert_eq!(
            err(publish(&["[::1]]:80:80"])),
            "invalid IP address [::1]]: address [::1]]:: missing port in address"
        );
        assert_eq!(
            err(publish(&["[[::1]:80:80"])),
            "invalid IP address [[::1]: address [[::1]:: unexpected '[' in address"
        );
    }

    #[test]
    fn publish_collects_several_bindings_per_port() {
        let m = publish(&["8080:80", "127.0.0.1:8081:80", "53:53/udp"]).unwrap();
        assert_eq!(m[&tcp(80)], vec![b("", "8080"), b("127.0.0.1", "8081")]);
        assert_eq!(
            m[&Port {
                port: 53,
                proto: Proto::Udp
            }],
            vec![b("", "53")]
        );
        assert_eq!(m.len(), 2);
        assert!(publish(&[]).unwrap().is_empty());
    }

    #[test]
    fn publish_long_syntax() {
        assert_eq!(
            one("published=8080,target=80"),
            vec![("80/tcp".into(), vec![b("", "8080")])]
        );
        assert_eq!(
            one("target=53,protocol=udp,mode=host"),
            vec![("53/udp".into(), vec![b("", "")])]
        );
        assert_eq!(
            err(publish(&["target=80,oops"])),
            "invalid publish opts format (should be name=value but got 'oops')"
        );
        assert_eq!(
            err(publish(&["=80"])),
            "invalid publish opts format (should be name=value but got '=80')"
        );
    }

    #[test]
    fn publish_errors_are_dockers() {
        for (spec, msg) in [
            ("", "no port specified: <empty>"),
            ("8080:", "no port specified: 8080:<empty>"),
            ("8080:/tcp", "no port specified: 8080:/tcp<empty>"),
            ("8080:80/icmp", "invalid proto: icmp"),
            ("8080:x", "invalid containerPort: x"),
            ("8080:65536", "invalid containerPort: 65536"),
            ("8080:81-80", "invalid containerPort: 81-80"),
            ("8080:80-81-82", "invalid containerPort: 80-81-82"),
            ("x:80", "invalid hostPort: x"),
            ("70000:80", "invalid hostPort: 70000"),
            ("-1:80", "invalid hostPort: -1"),
            ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
            ("localhost:8080:80", "invalid IP address: localhost"),
            ("1.2.3.4%eth0:80:80", "invalid IP address: 1.2.3.4%eth0"),
            (
                "8000-8002:80-81",
                "invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
            ),
            (
                "8000:80-81",
                "invalid ranges specified for container and host Ports: 80-81 and 8000",
            ),
        ] {
            assert_eq!(err(publish(&[spec])), msg, "{spec:?}");
        }
        // The first bad spec fails the lot.
        assert_eq!(err(publish(&["80", "x:80"])), "invalid hostPort: x");
    }

    #[test]
    fn expose() {
        assert_eq!(parse_expose("80").unwrap(), vec![tcp(80)]);
        assert_eq!(
            parse_expose("7000-7002/udp").unwrap(),
            (7000..=7002)
                .map(|port| Port {
                    port,
                    proto: Proto::Udp
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(
            err(parse_expose("8080:80")),
            "invalid port format for --expose: 8080:80"
        );
        assert_eq!(
            err(parse_expose("x")),
            "invalid range format for --expose: x, error: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(parse_expose("70000")),
            "invalid range format for --expose: 70000, error: strconv.ParseUint: parsing \"70000\": value out of range"
        );
        assert_eq!(
            err(parse_expose("81-80")),
            "invalid range format for --expose: 81-80, error: invalid range specified for port: 81-80"
        );
        assert_eq!(
            err(parse_expose("")),
            "invalid range format for --expose: , error: empty string specified for ports"
        );
        assert_eq!(err(parse_expose("80/icmp")), "invalid proto: icmp");
    }

    #[test]
    fn binding_helpers() {
        assert_eq!(b("", "").ipv4().unwrap(), None);
        assert_eq!(b("0.0.0.0", "").ipv4().unwrap(), None);
        assert_eq!(
            b("127.0.0.1", "").ipv4().unwrap(),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert!(err(b("::1", "").ipv4()).contains("IPv4"));
        assert_eq!(err(b("nope", "").ipv4()), "invalid IP address: nope");
        assert_eq!(b("", "").port_range().unwrap(), None);
        assert_eq!(b("", "8080").port_range().unwrap(), Some((8080, 8080)));
        assert_eq!(b("", "8000-8010").port_range().unwrap(), Some((8000, 8010)));
        assert_eq!(
            err(b("", "80x").port_range()),
            "invalid port specification: \"80x\""
        );
        assert_eq!(
            err(b("", "9-8").port_range()),
            "invalid port specification: \"9-8\""
        );
    }

    /// A port the kernel gives on 127.0.0.1, free again once we return it
    /// (another process could take it meanwhile; we only bind loopback).
    fn free_port(proto: Proto) -> u16 {
        reserve(Some(Ipv4Addr::LOCALHOST), 0, None, proto)
            .unwrap()
            .host_port
    }

    #[test]
    fn reserve_twice_is_port_in_use_and_drop_frees_it() {
        for proto in [Proto::Tcp, Proto::Udp] {
            let r = reserve(Some(Ipv4Addr::LOCALHOST), 0, None, proto).unwrap();
            assert_ne!(r.host_port, 0);
            assert_eq!(r.proto, proto);
            assert_eq!(r.host_ip, Some(Ipv4Addr::LOCALHOST));
            let port = r.host_port;
            let e = reserve(Some(Ipv4Addr::LOCALHOST), port, None, proto).unwrap_err();
            assert!(matches!(e, Error::PortInUse(_)), "{e:?}");
            // as docker
            assert_eq!(
                e.to_string(),
                format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
            );
            drop(r);
            let again = reserve(Some(Ipv4Addr::LOCALHOST), port, None, proto).unwrap();
            assert_eq!(again.host_port, port);
        }
    }

    #[test]
    fn reserve_conflicts_with_the_wildcard_address() {
        let r = reserve(None, 0, None, Proto::Tcp).unwrap();
        let port = r.host_port;
        assert_eq!(r.host_ip, None);
        let e = reserve(Some(Ipv4Addr::LOCALHOST), port, None, Proto::Tcp).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        let e = reserve(None, port, None, Proto::Tcp).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 0.0.0.0:{port} failed: port is already allocated")
        );
        // The same port number on the other protocol is free.
        drop(reserve(None, port, None, Proto::Udp).unwrap());
    }

    #[test]
    fn reserve_holds_against_other_sockets() {
        // Something else (a std listener, which sets SO_REUSEADDR) cannot
        // take a reserved port, and a port something else listens on
        // cannot be reserved.
        let r = reserve(Some(Ipv4Addr::LOCALHOST), 0, None, Proto::Tcp).unwrap();
        assert!(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, r.host_port)).is_err());
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let e = reserve(Some(Ipv4Addr::LOCALHOST), port, None, Proto::Tcp).unwrap_err();
        assert!(matches!(e, Error::PortInUse(_)), "{e:?}");
        let u = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = u.local_addr().unwrap().port();
        let e = reserve(Some(Ipv4Addr::LOCALHOST), port, None, Proto::Udp).unwrap_err();
        assert!(matches!(e, Error::PortInUse(_)), "{e:?}");
    }

    #[test]
    fn reserve_range_takes_the_next_free_port() {
        let lo = Some(Ipv4Addr::LOCALHOST);
        // Find a run of 3 free ports: hold the middle one, then try them.
        for _ in 0..50 {
            let p = free_port(Proto::Tcp);
            if p > 65533 {
                continue;
            }
            let Ok(first) = reserve(lo, p, None, Proto::Tcp) else {
                continue;
            };
            let Ok(second) = reserve(lo, p + 1, None, Proto::Tcp) else {
                continue;
            };
            // Both held: the range p..=p+1 is exhausted.
            let e = reserve(lo, p, Some(p + 1), Proto::Tcp).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "Bind for 127.0.0.1:{p}-{} failed: port is already allocated",
                    p + 1
                )
            );
            drop(second);
            let got = reserve(lo, p, Some(p + 1), Proto::Tcp).unwrap();
            assert_eq!(got.host_port, p + 1);
            drop(first);
            return;
        }
        panic!("no two adjacent free loopback ports found in 50 tries");
    }

    #[test]
    fn reserve_refuses_a_backwards_range_and_foreign_addresses() {
        let e = reserve(None, 9000, Some(8000), Proto::Tcp).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        // TEST-NET-1 is never a local address: bind fails, not as in use.
        let e = reserve(Some(Ipv4Addr::new(192, 0, 2, 1)), 0, None, Proto::Tcp).unwrap_err();
        match e {
            Error::Io { what, source } => {
                assert_eq!(what, "bind 192.0.2.1:0/tcp");
                assert_eq!(source.raw_os_error(), Some(libc::EADDRNOTAVAIL));
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn prop_parsers_never_panic(s in ".{0,40}") {
            let _ = Port::parse(&s);
            let _ = parse_publish(std::slice::from_ref(&s));
            let _ = parse_expose(&s);
            let _ = b(&s, &s).ipv4();
            let _ = b(&s, &s).port_range();
        }

        #[test]
        fn prop_parsers_never_panic_on_spec_like(s in "[0-9a-fA-F:.\\[\\]/,=-]{0,30}") {
            let _ = Port::parse(&s);
            let _ = parse_publish(std::slice::from_ref(&s));
            let _ = parse_expose(&s);
        }

        #[test]
        fn prop_port_round_trip(port in any::<u16>(), p in 0..3usize) {
            let proto = [Proto::Tcp, Proto::Udp, Proto::Sctp][p];
            let x = Port { port, proto };
            prop_assert_eq!(Port::parse(&x.to_string()).unwrap(), x);
        }

        #[test]
        fn prop_publish_pairs_ranges(
            ip in prop::option::of(any::<[u8; 4]>()),
            host in 1u16..60000,
            ctr in 1u16..60000,
            len in 0u16..20,
            udp in any::<bool>(),
        ) {
            let proto = if udp { "udp" } else { "tcp" };
            let ip_s = ip.map(|o| Ipv4Addr::from(o).to_string()).unwrap_or_default();
            let prefix = if ip.is_some() { format!("{ip_s}:") } else { String::new() };
            let spec = if len == 0 {
                format!("{prefix}{host}:{ctr}/{proto}")
            } else {
                format!("{prefix}{host}-{}:{ctr}-{}/{proto}", host + len, ctr + len)
            };
            let m = parse_publish(&[spec]).unwrap();
            prop_assert_eq!(m.len(), usize::from(len) + 1);
            for (i, (port, bindings)) in m.iter().enumerate() {
                prop_assert_eq!(port.port, ctr + i as u16);
                prop_assert_eq!(port.proto.as_str(), proto);
                prop_assert_eq!(bindings, &vec![b(&ip_s, &(host + i as u16).to_string())]);
            }
        }

        #[test]
        fn prop_expose_range(start in any::<u16>(), len in 0u16..50) {
            let end = start.saturating_add(len);
            let ports = parse_expose(&format!("{start}-{end}/udp")).unwrap();
            prop_assert_eq!(ports.len(), usize::from(end - start) + 1);
            prop_assert!(ports.iter().all(|p| p.proto == Proto::Udp));
            prop_assert_eq!(ports[0].port, start);
            prop_assert_eq!(ports.last().unwrap().port, end);
        }
    }
}
