//! Networks and container network settings as the Docker API shows them.

use super::{NetState, NetworkRecord, Networks, BUILTIN};
use crate::container::ContainerRecord;
use serde_json::{json, Map, Value};

/// A container's endpoint on one network (inspect's and list's
/// `NetworkSettings.Networks.NAME`); addresses only while it runs.
fn endpoint_json(net_id: &str, rec: &ContainerRecord, state: Option<&NetState>) -> Value {
    let cfg = rec.networks.get(net_id).cloned().unwrap_or_default();
    let ep = state.and_then(|s| s.endpoints.iter().find(|e| e.network_id == net_id));
    let mut aliases = cfg.aliases.clone();
    if ep.is_some() && !aliases.is_empty() {
        aliases.push(rec.id[..12].to_string());
    }
    json!({
        "IPAMConfig": cfg.ipv4.map(|ip| json!({"IPv4Address": ip.to_string()})),
        "Links": null,
        "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "MacAddress": ep.map(|e| e.mac.clone()).or(cfg.mac.clone()).unwrap_or_default(),
        "DriverOpts": null,
        "NetworkID": net_id,
        "EndpointID": ep.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": ep.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": if ep.is_some() {
            let mut names = vec![rec.name.clone(), rec.id[..12].to_string()];
            names.extend(cfg.aliases.iter().cloned());
            json!(names)
        } else { Value::Null },
    })
}

/// `NetworkSettings.Networks`: by network name.
pub fn container_networks(networks: &Networks, rec: &ContainerRecord) -> Value {
    let mut out = Map::new();
    let state = rec.net.as_ref().filter(|_| rec.state.running());
    for id in rec.networks.keys() {
        let name = networks
            .get(id)
            .map(|n| n.name)
            .unwrap_or_else(|| id.clone());
        out.insert(name, endpoint_json(id, rec, state));
    }
    if out.is_empty() {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let name = match mode.as_str() {
            "host" => "host".to_string(),
            m if m.starts_with("container:") => return json!({}),
            _ => "none".to_string(),
        };
        let id = builtin_id(networks, &name);
        out.insert(
            name,
            json!({
                "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                "DriverOpts": null, "NetworkID": id, "EndpointID": "", "Gateway": "",
                "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DNSNames": null,
            }),
        );
    }
    Value::Object(out)
}

/// `NetworkSettings.Ports`: each exposed or published port, with its host
/// bindings while the container runs (null when not published).
pub fn ports_map(rec: &ContainerRecord) -> Value {
    let mut out = Map::new();
    for p in rec.config.exposed_ports.iter().flatten() {
        out.insert(normalize_port(p), Value::Null);
    }
    if let Some(state) = rec.net.as_ref().filter(|_| rec.state.running()) {
        for p in &state.ports {
            let key = format!("{}/{}", p.container_port, proto_str(p.proto));
            let entry = out.entry(key).or_insert_with(|| json!([]));
            if entry.is_null() {
                *entry = json!([]);
            }
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({
                    "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                    "HostPort": p.host_port.to_string(),
                }));
            }
        }
    }
    Value::Object(out)
}

/// The list's `Ports`: published ones with their host side, exposed ones
/// without.
pub fn ports_list(rec: &ContainerRecord) -> Value {
    let mut out = Vec::new();
    let state = rec.net.as_ref().filter(|_| rec.state.running());
    let published: Vec<_> = state.map(|s| s.ports.clone()).unwrap_or_default();
    for p in &published {
        out.push(json!({
            "IP": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
            "PrivatePort": p.container_port,
            "PublicPort": p.host_port,
            "Type": proto_str(p.proto),
        }));
    }
    for key in rec.config.exposed_ports.iter().flatten() {
        let Ok(port) = pier_network::ports::Port::parse(key) else {
            continue;
        };
        let proto: super::Proto = port.proto.into();
        if !published
            .iter()
            .any(|p| p.container_port == port.port && p.proto == proto)
        {
            out.push(json!({"PrivatePort": port.port, "Type": port.proto.as_str()}));
        }
    }
    Value::Array(out)
}

fn normalize_port(p: &str) -> String {
    if p.contains('/') {
        p.to_string()
    } else {
        format!("{p}/tcp")
    }
}

fn proto_str(p: super::Proto) -> &'static str {
    pier_network::ports::Proto::from(p).as_str()
}

/// A stable id for the `host` and `none` networks of this pierd.
pub fn builtin_id(networks: &Networks, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{}:{name}", networks.config.dir.display()).as_bytes());
    hex::encode(d)
}

/// One network as `GET /networks/{id}` shows it; `containers` are those
/// running on it.
pub fn network_json(rec: &NetworkRecord, containers: &[ContainerRecord]) -> Value {
    let mut members = Map::new();
    for c in containers {
        let Some(ep) = c
            .net
            .as_ref()
            .filter(|_| c.state.running())
            .and_then(|s| s.endpoints.iter().find(|e| e.network_id == rec.id))
        else {
            continue;
        };
        members.insert(
            c.id.clone(),
            json!({
                "Name": c.name,
                "EndpointID": ep.endpoint_id,
                "MacAddress": ep.mac,
                "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                "IPv6Address": "",
            }),
        );
    }
    let mut config = json!({"Subnet": rec.subnet.to_string(), "Gateway": rec.gateway.to_string()});
    if let Some(r) = &rec.ip_range {
        config["IPRange"] = json!(r.to_string());
    }
    json!({
        "Name": rec.name,
        "Id": rec.id,
        "Created": rec.created,
        "Scope": "local",
        "Driver": rec.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": [config]},
        "Internal": rec.internal,
        "Attachable": rec.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": members,
        "Options": rec.options,
        "Labels": rec.labels,
    })
}

/// `host` and `none`, as docker lists them.
pub fn builtin_json(networks: &Networks, name: &str, containers: &[ContainerRecord]) -> Value {
    let driver = BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .unwrap_or("null");
    let mut members = Map::new();
    for c in containers
        .iter()
        .filter(|c| c.state.running() && c.host_config.network_mode.as_deref() == Some(name))
    {
        members.insert(
            c.id.clone(),
            json!({"Name": c.name, "EndpointID": "", "MacAddress": "", "IPv4Address": "", "IPv6Address": ""}),
        );
    }
    json!({
        "Name": name,
        "Id": builtin_id(networks, name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": members,
        "Options": {},
        "Labels": {},
    })
}
