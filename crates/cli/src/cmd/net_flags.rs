//! The networking flags of `pier run` and `pier create` (`--network`,
//! `--network-alias`, `--ip`, `--mac-address`, `-p`, `-P`, `--expose`,
//! `--dns*`, `--add-host`), checked with the docker CLI's messages and
//! turned into the create body as the docker 28 CLI sends it:
//! HostConfig.NetworkMode/PortBindings/PublishAllPorts/Dns*/ExtraHosts,
//! ExposedPorts and NetworkingConfig.EndpointsConfig.

use crate::error::CliError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Default, clap::Args)]
pub struct NetFlags {
    /// Connect a container to a network (none, host, bridge, NAME, container:ID)
    #[arg(long, alias = "net", value_name = "NETWORK")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST:]CTR[/PROTO])
    #[arg(short = 'p', long, value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "DOMAIN", allow_hyphen_values = true)]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip, or host:host-gateway)
    #[arg(long = "add-host", value_name = "HOST:IP", allow_hyphen_values = true)]
    pub add_host: Vec<String>,
}

/// Docker's message for a flag value it cannot take (exit 125).
fn bad(value: &str, flag: &str, why: impl std::fmt::Display) -> CliError {
    CliError::engine(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// The docker CLI's ValidateIPAddress: the address in canonical form.
pub fn validate_ip(val: &str) -> Result<String, String> {
    val.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {val}"))
}

/// The docker CLI's ValidateDNSSearch: `.` or a domain name (labels of
/// letters, digits and inner hyphens, at least one letter somewhere, an
/// optional final dot), shorter than 255.
pub fn validate_dns_search(val: &str) -> Result<String, String> {
    let val = val.trim_matches(' ');
    if val == "." {
        return Ok(val.to_string());
    }
    let err = || format!("{val} is not a valid domain");
    if !val.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(err());
    }
    let name = val.trim_end();
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    if name.split('.').all(label_ok) && name.len() < 255 {
        Ok(name.to_string())
    } else {
        Err(err())
    }
}

/// The docker CLI's ValidateExtraHost: `host:ip` or `host=ip` (an IPv6
/// address maybe in brackets) or `host:host-gateway`, sent as `host:ip`.
pub fn validate_extra_host(val: &str) -> Result<String, String> {
    let (k, v) = match val.split_once('=') {
        Some(kv) => kv,
        None => val
            .split_once(':')
            .ok_or_else(|| format!("bad format for add-host: {val:?}"))?,
    };
    if k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: {val:?}"));
    }
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if validate_ip(v).is_err() {
            return Err(format!("invalid IP address in add-host: {v:?}"));
        }
    }
    Ok(format!("{k}:{v}"))
}

/// Go's net.ParseMAC: 6, 8 or 20 bytes as `xx:xx..`, `xx-xx..` or
/// `xxxx.xxxx..`.
pub fn valid_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    let (sep, width) = match s.as_bytes().get(2).copied() {
        Some(b':') => (':', 2),
        Some(b'-') => ('-', 2),
        _ => ('.', 4),
    };
    let groups: Vec<&str> = s.split(sep).collect();
    let bytes = groups.len() * width / 2;
    matches!(bytes, 6 | 8 | 20) && groups.iter().all(|g| hex(g, width))
}

/// Whether a `--network` value names a user-defined network (not
/// default, bridge, host, none or container:ID), as docker's IsUserDefined.
fn user_defined(n: &str) -> bool {
    !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
}

impl NetFlags {
    /// Checks the flags and adds what they ask for to the create body and
    /// its HostConfig, as the docker 28 CLI does.
    pub fn apply(&self, hc: &mut Map<String, Value>, body: &mut Value) -> Result<(), CliError> {
        let mut dns = Vec::new();
        for d in &self.dns {
            dns.push(validate_ip(d).map_err(|e| bad(d, "--dns", e))?);
        }
        let mut search = Vec::new();
        for d in &self.dns_search {
            search.push(validate_dns_search(d).map_err(|e| bad(d, "--dns-search", e))?);
        }
        let mut hosts = Vec::new();
        for h in &self.add_host {
            hosts.push(validate_extra_host(h).map_err(|e| bad(h, "--add-host", e))?);
        }
        if let Some(m) = &self.mac_address {
            if !valid_mac(m.trim()) {
                return Err(CliError::engine(format!("{m} is not a valid mac address")));
            }
        }

        let (exposed, bindings) = self.ports()?;
        if !exposed.is_empty() {
            body["ExposedPorts"] =
                Value::Object(exposed.into_iter().map(|p| (p, json!({}))).collect());
        }
        // As docker: these always, empty or not (dockerd keeps [] and {}).
        hc.insert("PortBindings".into(), json!(bindings));
        hc.insert("PublishAllPorts".into(), json!(self.publish_all));
        hc.insert("Dns".into(), json!(dns));
        hc.insert("DnsSearch".into(), json!(search));
        hc.insert("DnsOptions".into(), json!(self.dns_option));
        if !hosts.is_empty() {
            hc.insert("ExtraHosts".into(), json!(hosts));
        }

        let (mode, endpoints) = self.endpoints().map_err(CliError::engine)?;
        hc.insert("NetworkMode".into(), json!(mode));
        body["NetworkingConfig"] = json!({ "EndpointsConfig": endpoints });
        Ok(())
    }

    /// ExposedPorts keys and PortBindings from `-p` and `--expose`, with
    /// docker's messages (exit 125).
    #[allow(clippy::type_complexity)]
    fn ports(
        &self,
    ) -> Result<
        (
            std::collections::BTreeSet<String>,
            BTreeMap<String, Vec<pier_network::ports::Binding>>,
        ),
        CliError,
    > {
        let mut exposed = std::collections::BTreeSet::new();
        let mut bindings = BTreeMap::new();
        if !self.publish.is_empty() {
            let map = pier_network::ports::parse_publish(&self.publish)
                .map_err(|e| CliError::engine(e.to_string()))?;
            for (port, b) in map {
                exposed.insert(port.to_string());
                bindings.insert(port.to_string(), b);
            }
        }
        for e in &self.expose {
            // docker's messages come from the parser.
            let ports = pier_network::ports::parse_expose(e)
                .map_err(|err| CliError::engine(err.to_string()))?;
            exposed.extend(ports.iter().map(|p| p.to_string()));
        }
        Ok((exposed, bindings))
    }

    /// HostConfig.NetworkMode and NetworkingConfig.EndpointsConfig as the
    /// docker 28 CLI's parseNetworkOpts makes them: `--network-alias`,
    /// `--ip` and `--mac-address` go to the first network; a lone network
    /// with none of them gets no endpoint entry, no `--network` gets a
    /// `default` one. `--network name=N,alias=A,ip=IP,mac-address=M,
    /// driver-opt=K=V` (docker's long syntax) sets them per network.
    pub fn endpoints(&self) -> Result<(String, Map<String, Value>), String> {
        let mut atts = Vec::new();
        for n in &self.network {
            atts.push(
                Attachment::parse(n)
                    .map_err(|e| format!("invalid argument \"{n}\" for \"--network\" flag: {e}"))?,
            );
        }
        let given = !atts.is_empty();
        if !given {
            atts.push(Attachment {
                target: "default".into(),
                ..Default::default()
            });
        }
        let count = atts.len();
        let mut endpoints = Map::new();
        let (mut user, mut builtin) = (false, false);
        for (i, mut att) in atts.into_iter().enumerate() {
            if given {
                if user_defined(&att.target) {
                    user = true;
                } else {
                    builtin = true;
                }
            }
            if i == 0 {
                self.apply_container_options(&mut att)?;
            }
            let ep = att.endpoint()?;
            if given && endpoints.contains_key(&att.target) {
                return Err(format!(
                    "network {:?} is specified multiple times",
                    att.target
                ));
            }
            if given && i == 0 && count == 1 && ep.is_empty() {
                continue;
            }
            endpoints.insert(att.target.clone(), Value::Object(ep));
        }
        if user && builtin {
            return Err("conflicting options: cannot attach both user-defined and non-user-defined network-modes".into());
        }
        let mode = match self.network.first() {
            Some(_) => Attachment::parse(&self.network[0])?.target,
            None => "default".into(),
        };
        Ok((mode, endpoints))
    }

    /// docker's applyContainerOptions: the container-wide flags onto the
    /// first network, refused when it sets them itself.
    fn apply_container_options(&self, att: &mut Attachment) -> Result<(), String> {
        if !att.aliases.is_empty() && !self.network_alias.is_empty() {
            return Err(
                "conflicting options: cannot specify both --network-alias and per-network alias"
                    .into(),
            );
        }
        if att.ip.is_some() && self.ip.is_some() {
            return Err(
                "conflicting options: cannot specify both --ip and per-network IPv4 address".into(),
            );
        }
        if att.mac.is_some() && self.mac_address.is_some() {
            return Err(
                "conflicting options: cannot specify both --mac-address and per-network MAC address"
                    .into(),
            );
        }
        if !self.network_alias.is_empty() {
            att.aliases = self.network_alias.clone();
        }
        if self.ip.is_some() {
            att.ip = self.ip.clone();
        }
        if self.mac_address.is_some() {
            att.mac = self.mac_address.clone();
        }
        Ok(())
    }
}

/// One `--network` value: a name, or docker's long syntax.
#[derive(Debug, Default)]
struct Attachment {
    target: String,
    aliases: Vec<String>,
    ip: Option<String>,
    mac: Option<String>,
    driver_opts: Map<String, Value>,
}

impl Attachment {
    /// docker's NetworkOpt.Set: `key=value,...` when the value has a
    /// `word=word` in it, else a network name.
    fn parse(value: &str) -> Result<Attachment, String> {
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let b = value.as_bytes();
        let long = (1..b.len().saturating_sub(1))
            .any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]));
        if !long {
            return Ok(Attachment {
                target: value.to_string(),
                ..Default::default()
            });
        }
        let mut att = Attachment::default();
        for field in value.split(',') {
            let (key, val) = match field.split_once('=') {
                Some((k, v)) if !k.is_empty() => (k.trim().to_lowercase(), v.trim()),
                _ => return Err(format!("invalid field {field}")),
            };
            match key.as_str() {
                "name" => att.target = val.to_string(),
                "alias" => att.aliases.push(val.to_string()),
                "ip" => att.ip = Some(val.to_string()),
                "ip6" => return Err("pier supports IPv4 networks only: ip6 cannot be used".into()),
                "mac-address" => att.mac = Some(val.to_string()),
                "driver-opt" => {
                    let (k, v) = val
                        .split_once('=')
                        .ok_or("invalid key value pair format in driver options")?;
                    att.driver_opts
                        .insert(k.trim().to_lowercase(), json!(v.trim()));
                }
                _ => return Err(format!("invalid field key {key}")),
            }
        }
        if att.target.is_empty() {
            return Err("network name not specified".into());
        }
        Ok(att)
    }

    /// docker's parseNetworkAttachmentOpt: the EndpointSettings fields set.
    fn endpoint(&self) -> Result<Map<String, Value>, String> {
        if self.target.trim().is_empty() {
            return Err("no name set for network".into());
        }
        if !user_defined(&self.target) && !self.aliases.is_empty() {
            return Err(
                "network-scoped aliases are only supported for user-defined networks".into(),
            );
        }
        let mut ep = Map::new();
        if !self.aliases.is_empty() {
            ep.insert("Aliases".into(), json!(self.aliases));
        }
        if !self.driver_opts.is_empty() {
            ep.insert("DriverOpts".into(), Value::Object(self.driver_opts.clone()));
        }
        if let Some(ip) = &self.ip {
            ep.insert("IPAMConfig".into(), json!({ "IPv4Address": ip }));
        }
        if let Some(m) = &self.mac {
            if !valid_mac(m.trim()) {
                return Err(format!("{m} is not a valid mac address"));
            }
            ep.insert("MacAddress".into(), json!(m));
        }
        Ok(ep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(argv: &[&str]) -> NetFlags {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: NetFlags,
        }
        let mut all = vec!["x"];
        all.extend_from_slice(argv);
        <P as clap::Parser>::try_parse_from(all).unwrap().a
    }

    fn apply(argv: &[&str]) -> Result<Value, CliError> {
        let mut hc = Map::new();
        let mut body = json!({});
        flags(argv).apply(&mut hc, &mut body)?;
        body["HostConfig"] = Value::Object(hc);
        Ok(body)
    }

    #[test]
    fn endpoints_as_the_docker_cli_sends_them() {
        // As docker 28 (captured): no --network is `default` with an
        // endpoint entry of its own.
        let b = apply(&[]).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert_eq!(
            b["NetworkingConfig"],
            json!({"EndpointsConfig": {"default": {}}})
        );
        // A lone network without endpoint options: no entry.
        let b = apply(&["--network", "host"]).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "host");
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
        let b = apply(&[
            "--network",
            "n1",
            "--network-alias",
            "a1",
            "--ip",
            "10.1.0.5",
            "--mac-address",
            "02:42:0a:01:00:05",
        ])
        .unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "n1");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"],
            json!({"n1": {"Aliases": ["a1"], "IPAMConfig": {"IPv4Address": "10.1.0.5"},
                          "MacAddress": "02:42:0a:01:00:05"}})
        );
        let b = apply(&["--network", "bridge", "--ip", "172.17.0.9"]).unwrap();
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"],
            json!({"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}})
        );
        // Two networks: both listed, the options on the first.
        let b = apply(&["--network", "n1", "--net", "n2", "--ip", "10.0.0.1"]).unwrap();
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"],
            json!({"n1": {"IPAMConfig": {"IPv4Address": "10.0.0.1"}}, "n2": {}})
        );
        for (argv, want) in [
            (&["--network-alias", "x"][..], "network-scoped aliases are only supported for user-defined networks"),
            (&["--network-alias", "x", "--network", "host"], "network-scoped aliases are only supported for user-defined networks"),
            (&["--network", "n1", "--network", "host"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
            (&["--network", "n1", "--network", "n1"], "network \"n1\" is specified multiple times"),
            (&["--mac-address", "zz"], "zz is not a valid mac address"),
        ] {
            let e = apply(argv).unwrap_err();
            assert_eq!((e.message.as_str(), e.code), (want, 125), "{argv:?}");
        }
    }

    #[test]
    fn networks_in_dockers_long_syntax() {
        let b = apply(&[
            "--network",
            "name=n1,alias=a,alias=b,ip=10.1.0.5,mac-address=02:42:0a:01:00:05,driver-opt=K=v",
            "--network",
            "name=n2",
        ])
        .unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "n1");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"],
            json!({"n1": {"Aliases": ["a", "b"], "IPAMConfig": {"IPv4Address": "10.1.0.5"},
                          "MacAddress": "02:42:0a:01:00:05", "DriverOpts": {"k": "v"}},
                   "n2": {}})
        );
        // A lone long-syntax network with nothing else: no entry.
        let b = apply(&["--network", "name=n1"]).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "n1");
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
        // container:ID is a name, not long syntax.
        let b = apply(&["--network", "container:abc"]).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "container:abc");
        for (argv, want) in [
            (&["--network", "name=n1,alias=a", "--network-alias", "b"][..],
             "conflicting options: cannot specify both --network-alias and per-network alias"),
            (&["--network", "name=n1,ip=10.0.0.1", "--ip", "10.0.0.2"],
             "conflicting options: cannot specify both --ip and per-network IPv4 address"),
            (&["--network", "name=n1,foo=bar"],
             "invalid argument \"name=n1,foo=bar\" for \"--network\" flag: invalid field key foo"),
            (&["--network", "alias=a"],
             "invalid argument \"alias=a\" for \"--network\" flag: network name not specified"),
            (&["--network", "name=n1,mac-address=zz"], "zz is not a valid mac address"),
            (&["--network", "name=bridge,alias=a"],
             "network-scoped aliases are only supported for user-defined networks"),
        ] {
            let e = apply(argv).unwrap_err();
            assert_eq!((e.message.as_str(), e.code), (want, 125), "{argv:?}");
        }
    }

    #[test]
    fn dns_and_hosts_as_the_docker_cli_checks_them() {
        let b = apply(&[
            "--dns",
            "1.1.1.1",
            "--dns",
            " ::1",
            "--dns-search",
            "x.com",
            "--dns-search",
            ".",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "h:1.2.3.4",
            "--add-host",
            "g:host-gateway",
            "--add-host",
            "v6=[::1]",
            "--add-host",
            "w:::1",
        ])
        .unwrap();
        let hc = &b["HostConfig"];
        assert_eq!(hc["Dns"], json!(["1.1.1.1", "::1"]));
        assert_eq!(hc["DnsSearch"], json!(["x.com", "."]));
        assert_eq!(hc["DnsOptions"], json!(["ndots:2"]));
        assert_eq!(
            hc["ExtraHosts"],
            json!(["h:1.2.3.4", "g:host-gateway", "v6:::1", "w:::1"])
        );
        // docker's messages, exit 125.
        for (argv, want) in [
            (
                &["--add-host", "bad"][..],
                r#"invalid argument "bad" for "--add-host" flag: bad format for add-host: "bad""#,
            ),
            (
                &["--add-host", ":1.2.3.4"],
                r#"invalid argument ":1.2.3.4" for "--add-host" flag: bad format for add-host: ":1.2.3.4""#,
            ),
            (
                &["--add-host", "h:1.2.3"],
                r#"invalid argument "h:1.2.3" for "--add-host" flag: invalid IP address in add-host: "1.2.3""#,
            ),
            (
                &["--dns", "bad"],
                r#"invalid argument "bad" for "--dns" flag: IP address is not correctly formatted: bad"#,
            ),
            (
                &["--dns-search", "-bad"],
                r#"invalid argument "-bad" for "--dns-search" flag: -bad is not a valid domain"#,
            ),
            (
                &["--dns-search", "1.2"],
                r#"invalid argument "1.2" for "--dns-search" flag: 1.2 is not a valid domain"#,
            ),
            (
                &["--expose", "1:2"],
                "invalid port format for --expose: 1:2",
            ),
        ] {
            let e = apply(argv).unwrap_err();
            assert_eq!((e.message.as_str(), e.code), (want, 125), "{argv:?}");
        }
    }

    #[test]
    fn ports_as_the_docker_cli_sends_them() {
        // As docker 28 (captured): every published or exposed port in
        // ExposedPorts, bindings in PortBindings, -P as PublishAllPorts.
        let b = apply(&[
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1::53/udp",
            "-P",
            "--expose",
            "7000-7001",
        ])
        .unwrap();
        assert_eq!(
            b["ExposedPorts"],
            json!({"53/udp": {}, "7000/tcp": {}, "7001/tcp": {}, "80/tcp": {}})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                   "80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(b["HostConfig"]["PublishAllPorts"], true);
        let b = apply(&["-p", "80", "-p", "8081:80"]).unwrap();
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "", "HostPort": "8081"}]})
        );
        let b = apply(&[]).unwrap();
        assert!(b.get("ExposedPorts").is_none());
        assert_eq!(
            (&b["HostConfig"]["PortBindings"], &b["HostConfig"]["Dns"]),
            (&json!({}), &json!([]))
        );
        // docker's messages, exit 125.
        for (argv, want) in [
            (&["-p", "bad"][..], "invalid containerPort: bad"),
            (&["-p", "70000:80"], "invalid hostPort: 70000"),
            (&["--expose", "1:2"], "invalid port format for --expose: 1:2"),
            (
                &["--expose", "abc"],
                "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax",
            ),
        ] {
            let e = apply(argv).unwrap_err();
            assert_eq!((e.message.as_str(), e.code), (want, 125), "{argv:?}");
        }
    }

    #[test]
    fn macs_as_go_parses_them() {
        assert!(valid_mac("02:42:0a:01:00:05") && valid_mac("02-42-0A-01-00-05"));
        assert!(valid_mac("0242.0a01.0005"));
        assert!(valid_mac("02:42:0a:01:00:05:00:01"));
        assert!(!valid_mac("02:42:0a:01:00") && !valid_mac("zz") && !valid_mac(""));
        assert!(!valid_mac("02:42:0a:01:00:5") && !valid_mac("02:42-0a:01:00:05"));
    }

    #[test]
    fn dns_search_domains() {
        assert_eq!(validate_dns_search("example.com.").unwrap(), "example.com");
        assert_eq!(validate_dns_search("a-b.c1").unwrap(), "a-b.c1");
        assert!(validate_dns_search("a..b").is_err());
        assert!(validate_dns_search("a-.b").is_err());
        assert!(validate_dns_search(&"a".repeat(255)).is_err());
    }
}
