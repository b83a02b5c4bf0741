//! `pier port CONTAINER [PRIVATE_PORT[/PROTO]]`: a container's published
//! ports from `GET /containers/{id}/json` (NetworkSettings.Ports), printed
//! as the docker 28 CLI prints them; and the PORTS column of `ps` from the
//! list API's Ports array, as docker's DisplayablePorts.

use crate::client::{encode, Client};
use crate::cmd::image_ops::exit1;
use crate::cmd::volume::natural_cmp;
use crate::error::CliError;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

/// Go's net.JoinHostPort: an IPv6 host in brackets.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The lines `docker port` prints for a container's
/// NetworkSettings.Ports: every binding (`80/tcp -> 0.0.0.0:8080`), or,
/// for one port, its host addresses (`0.0.0.0:8080`); naturally sorted.
pub fn port_lines(
    ports: &Value,
    container: &str,
    port: Option<&str>,
) -> Result<Vec<String>, String> {
    let bindings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                join_host_port(
                    b["HostIp"].as_str().unwrap_or_default(),
                    b["HostPort"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    };
    let mut out = Vec::new();
    match port {
        Some(arg) => {
            let (p, proto) = arg.split_once('/').unwrap_or((arg, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Err(e) = p.parse::<u16>() {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow => "value out of range",
                    _ => "invalid syntax",
                };
                return Err(format!(
                    "Error: invalid port ({p}): strconv.ParseUint: parsing \"{p}\": {why}"
                ));
            }
            out = bindings(&ports[format!("{p}/{proto}")]);
            if out.is_empty() {
                return Err(format!(
                    "Error: No public port '{arg}' published for {container}"
                ));
            }
        }
        None => {
            for (from, frontends) in ports.as_object().into_iter().flatten() {
                for b in bindings(frontends) {
                    out.push(format!("{from} -> {b}"));
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

pub async fn port(client: &Client, args: PortArgs) -> Result<i32, CliError> {
    let v: Value = client
        .get_json(&format!("/containers/{}/json", encode(&args.container)))
        .await
        .map_err(exit1)?;
    let lines = port_lines(
        &v["NetworkSettings"]["Ports"],
        &args.container,
        args.port.as_deref(),
    )
    .map_err(|e| exit1(CliError::engine(e)))?;
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

/// The `ps` PORTS column for the list API's Ports array, as docker's
/// DisplayablePorts: `0.0.0.0:8080->80/tcp, 443/tcp`; consecutive ports
/// of one kind grouped (`7000-7002/tcp`).
pub fn display_ports(ports: &Value) -> String {
    struct P {
        ip: String,
        private: u16,
        public: u16,
        proto: String,
    }
    let mut list: Vec<P> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or_default().to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0) as u16,
            public: p["PublicPort"].as_u64().unwrap_or(0) as u16,
            proto: p["Type"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    list.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public.cmp(&b.public))
            .then_with(|| a.proto.cmp(&b.proto))
    });
    let form = |key: &str, first: u16, last: u16| {
        let (ip, proto) = match key.rsplit_once('/') {
            Some((ip, proto)) if key.matches('/').count() == 1 => (ip, proto),
            _ => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{ip}:{group}->{group}");
        }
        format!("{group}/{proto}")
    };
    let mut groups: HashMap<String, (u16, u16)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in &list {
        let mut key = p.proto.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public.to_string()),
                    p.private,
                    p.proto
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.proto);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (p.private, p.private));
                order.push(key);
            }
            Some(g) if g.1.checked_add(1) == Some(p.private) => g.1 = p.private,
            Some(g) => {
                result.push(form(&key, g.0, g.1));
                *g = (p.private, p.private);
            }
        }
    }
    for key in &order {
        let (first, last) = groups[key];
        result.push(form(key, first, last));
    }
    result.extend(mappings);
    result.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_prints_as_docker() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "443/tcp": null,
            "9/tcp": [],
        });
        assert_eq!(
            port_lines(&ports, "c1", None).unwrap(),
            [
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080"
            ]
        );
        assert_eq!(
            port_lines(&ports, "c1", Some("80")).unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&ports, "c1", Some("53/udp")).unwrap(),
            ["127.0.0.1:5353"]
        );
        // docker's messages, naming the port as it was given.
        assert_eq!(
            port_lines(&ports, "c1", Some("81/tcp")).unwrap_err(),
            "Error: No public port '81/tcp' published for c1"
        );
        assert_eq!(
            port_lines(&ports, "c1", Some("443")).unwrap_err(),
            "Error: No public port '443' published for c1"
        );
        assert_eq!(
            port_lines(&ports, "c1", Some("53")).unwrap_err(),
            "Error: No public port '53' published for c1"
        );
        assert_eq!(
            port_lines(&ports, "c1", Some("abc")).unwrap_err(),
            "Error: invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert!(port_lines(&Value::Null, "c1", None).unwrap().is_empty());
    }

    #[test]
    fn ps_ports_column_as_docker() {
        let p = |ip: &str, private: u16, public: u16, proto: &str| {
            if ip.is_empty() {
                json!({"PrivatePort": private, "Type": proto})
            } else {
                json!({"IP": ip, "PrivatePort": private, "PublicPort": public, "Type": proto})
            }
        };
        assert_eq!(
            display_ports(&json!([
                p("", 443, 0, "tcp"),
                p("0.0.0.0", 80, 8080, "tcp")
            ])),
            "443/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            display_ports(&json!([
                p("", 7002, 0, "tcp"),
                p("", 7000, 0, "tcp"),
                p("", 7001, 0, "tcp"),
                p("", 53, 0, "udp"),
                p("", 9000, 0, "tcp")
            ])),
            // As docker: a group closed by a gap comes first.
            "7000-7002/tcp, 53/udp, 9000/tcp"
        );
        assert_eq!(
            display_ports(&json!([
                p("0.0.0.0", 80, 80, "tcp"),
                p("0.0.0.0", 81, 81, "tcp"),
                p("::", 80, 8080, "tcp")
            ])),
            "0.0.0.0:80-81->80-81/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(display_ports(&json!([])), "");
        assert_eq!(display_ports(&Value::Null), "");
    }
}
