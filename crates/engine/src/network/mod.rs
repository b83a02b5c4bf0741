//! pierd's networks: the default `bridge` network, user-defined bridge
//! networks (records in [`store`]), and each running container's network
//! namespace, addresses and published ports ([`attach`]).
//!
//! The kernel state (bridges, veths, nftables tables, netns mounts)
//! outlives pierd; what pierd keeps in memory (which addresses are taken,
//! the host ports it holds, the DNS resolvers) is rebuilt from the
//! records when it starts ([`Networks::restore`]).

pub mod attach;
pub mod etc;
pub mod json;
pub mod store;

use crate::error::{Error, Result};
use pier_network::ipam::{self, Pool, Subnet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;
pub use store::NetworkRecord;

/// What a container asked for on one network (create's
/// `NetworkingConfig.EndpointsConfig`, or `network connect`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    pub mac: Option<String>,
}

/// A running container's network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetState {
    /// The namespace it runs in: pierd's netns file, or for
    /// `--network container:X` X's.
    pub netns: PathBuf,
    /// Whether pierd made `netns` (and removes it at exit).
    #[serde(default)]
    pub own_netns: bool,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

impl NetState {
    /// Whether `client` is this container's address on network
    /// `network_id` (who asks the network's resolver).
    pub fn is_at(&self, network_id: &str, client: std::net::IpAddr) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.network_id == network_id && std::net::IpAddr::V4(e.ip) == client)
    }
}

/// One network interface of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub host_ifname: String,
    pub ifname: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A container port published on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl From<Proto> for pier_network::ports::Proto {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Tcp => pier_network::ports::Proto::Tcp,
            Proto::Udp => pier_network::ports::Proto::Udp,
            Proto::Sctp => pier_network::ports::Proto::Sctp,
        }
    }
}

impl From<pier_network::ports::Proto> for Proto {
    fn from(p: pier_network::ports::Proto) -> Self {
        match p {
            pier_network::ports::Proto::Tcp => Proto::Tcp,
            pier_network::ports::Proto::Udp => Proto::Udp,
            pier_network::ports::Proto::Sctp => Proto::Sctp,
        }
    }
}

impl PublishedPort {
    pub fn mapping(&self) -> pier_network::ports::Mapping {
        pier_network::ports::Mapping {
            proto: self.proto.into(),
            host_ip: self.host_ip,
            host_port: self.host_port,
            container_port: self.container_port,
        }
    }
}

/// pierd's network settings (flags or daemon.json).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The default bridge's device; None: no default bridge (`--bridge none`).
    pub bridge: Option<String>,
    /// `--bip`: the default bridge's address and prefix.
    pub bip: Option<(Ipv4Addr, u8)>,
    pub pools: Vec<Pool>,
    pub dir: PathBuf,
    pub netns_dir: PathBuf,
}

/// The `host` and `none` networks: shown by `network ls` as docker
/// does, never stored.
pub const BUILTIN: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

#[derive(Default)]
struct State {
    nets: BTreeMap<String, NetworkRecord>,
    /// Taken addresses per network id.
    used: HashMap<String, BTreeSet<Ipv4Addr>>,
    /// Host ports held per container id.
    reservations: HashMap<String, Vec<pier_network::ports::Reservation>>,
    /// Resolvers per network id.
    dns: HashMap<String, pier_network::dns::Server>,
    /// Exited containers whose veths are being deleted.
    releasing: usize,
}

pub struct Networks {
    pub config: NetConfig,
    state: Mutex<State>,
    /// Signalled when a release's veths are gone.
    endpoints_gone: std::sync::Condvar,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A network error as docker's API reports it.
fn net_err(e: pier_network::Error) -> Error {
    match e {
        pier_network::Error::Invalid(m) => Error::bad_request(m),
        pier_network::Error::PortInUse(m) => Error::internal(m),
        other => Error::internal(other.to_string()),
    }
}

/// Parses docker's `--default-address-pool base=CIDR,size=N`.
pub fn parse_pool(s: &str) -> std::result::Result<Pool, String> {
    let (mut base, mut size) = (None, None);
    for kv in s.split(',') {
        match kv.split_once('=') {
            Some(("base", v)) => base = Some(Subnet::parse(v).map_err(|e| e.to_string())?),
            Some(("size", v)) => {
                size = Some(
                    v.parse::<u8>()
                        .ok()
                        .filter(|n| *n <= 30)
                        .ok_or_else(|| format!("invalid size {v:?} in address pool {s:?}"))?,
                )
            }
            _ => return Err(format!("invalid address pool {s:?}: use base=CIDR,size=N")),
        }
    }
    match (base, size) {
        (Some(base), Some(size)) if size >= base.prefix => Ok(Pool { base, size }),
        (Some(_), Some(_)) => Err(format!(
            "invalid address pool {s:?}: size must not be smaller than the base's prefix"
        )),
        _ => Err(format!("invalid address pool {s:?}: use base=CIDR,size=N")),
    }
}

/// Parses `--bip 10.1.0.1/24` (the bridge's own address).
pub fn parse_bip(s: &str) -> std::result::Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid --bip {s:?}: use ADDRESS/PREFIX, e.g. 10.1.0.1/24"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("invalid --bip {s:?}: {ip:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=30).contains(p))
        .ok_or_else(|| format!("invalid --bip {s:?}: the prefix must be 1 to 30"))?;
    Ok((ip, prefix))
}

fn network_of(ip: Ipv4Addr, prefix: u8) -> Subnet {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Subnet {
        addr: Ipv4Addr::from(u32::from(ip) & mask),
        prefix,
    }
}

impl Networks {
    /// Loads the records and makes sure the default bridge network exists
    /// as configured. Kernel state is set up by [`Networks::restore`].
    pub fn open(config: NetConfig) -> Result<Networks> {
        let mut nets: BTreeMap<String, NetworkRecord> = store::load(&config.dir)
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let old_default = nets.values().find(|n| n.default_bridge).cloned();
        match &config.bridge {
            None => {
                if let Some(old) = old_default {
                    nets.remove(&old.id);
                    let _ = store::delete(&config.dir, &old.id);
                }
            }
            Some(device) => {
                let (subnet, gateway) = match config.bip {
                    Some((ip, prefix)) => (network_of(ip, prefix), ip),
                    None => match old_default.as_ref().filter(|o| &o.bridge == device) {
                        Some(o) => (o.subnet, o.gateway),
                        None => {
                            let mut taken: Vec<Subnet> = nets
                                .values()
                                .filter(|n| !n.default_bridge)
                                .map(|n| n.subnet)
                                .collect();
                            taken.extend(ipam::host_routes().unwrap_or_default());
                            let s = ipam::pick_subnet(&config.pools, &taken).ok_or_else(|| {
                                Error::internal(
                                    "no free subnet for the default bridge network: give one with --bip",
                                )
                            })?;
                            (s, s.first_host())
                        }
                    },
                };
                let rec = NetworkRecord {
                    id: old_default
                        .as_ref()
                        .map(|o| o.id.clone())
                        .unwrap_or_else(crate::container::names::new_id),
                    name: "bridge".into(),
                    driver: "bridge".into(),
                    created: old_default
                        .as_ref()
                        .map(|o| o.created.clone())
                        .unwrap_or_else(pier_common::time::now_rfc3339),
                    bridge: device.clone(),
                    subnet,
                    gateway,
                    ip_range: None,
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::from([
                        (
                            "com.docker.network.bridge.default_bridge".into(),
                            "true".into(),
                        ),
                        (store::BRIDGE_NAME_OPTION.into(), device.clone()),
                    ]),
                    default_bridge: true,
                    user_subnet: true,
                };
                if old_default.as_ref() != Some(&rec) {
                    if let Some(old) = old_default.filter(|o| o.bridge != rec.bridge) {
                        let _ = pier_network::firewall::teardown_network(&old.bridge);
                        let _ = pier_network::link::delete_bridge(&old.bridge);
                    }
                    store::save(&config.dir, &rec).map_err(crate::error::io(format!(
                        "saving the default bridge network in {}",
                        config.dir.display()
                    )))?;
                }
                nets.insert(rec.id.clone(), rec);
            }
        }
        std::fs::create_dir_all(&config.netns_dir).map_err(crate::error::io(format!(
            "creating {}",
            config.netns_dir.display()
        )))?;
        Ok(Networks {
            config,
            state: Mutex::new(State {
                nets,
                ..Default::default()
            }),
            endpoints_gone: Default::default(),
        })
    }

    /// The default bridge network, when there is one.
    pub fn default_bridge(&self) -> Option<NetworkRecord> {
        lock(&self.state)
            .nets
            .values()
            .find(|n| n.default_bridge)
            .cloned()
    }

    pub fn all(&self) -> Vec<NetworkRecord> {
        lock(&self.state).nets.values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<NetworkRecord> {
        lock(&self.state).nets.get(id).cloned()
    }

    /// A network by full id, name or unique id prefix (docker's order).
    pub fn find(&self, name_or_id: &str) -> Result<NetworkRecord> {
        let st = lock(&self.state);
        if let Some(n) = st.nets.get(name_or_id) {
            return Ok(n.clone());
        }
        if let Some(n) = st.nets.values().find(|n| n.name == name_or_id) {
            return Ok(n.clone());
        }
        let mut m = st
            .nets
            .values()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
        match (m.next(), m.next()) {
            (Some(n), None) => Ok(n.clone()),
            (Some(_), Some(_)) => Err(Error::bad_request(format!(
                "network {name_or_id} is ambiguous: give more of its id"
            ))),
            _ => Err(Error::not_found(format!("network {name_or_id} not found"))),
        }
    }

    /// `POST /networks/create` after the request was checked: picks or
    /// checks the subnet, makes the bridge and its rules, saves the record.
    pub fn create(&self, req: CreateRequest) -> Result<NetworkRecord> {
        let rec = {
            let mut st = lock(&self.state);
            if req.name == "bridge" && self.config.bridge.is_some()
                || BUILTIN.iter().any(|(n, _)| *n == req.name)
                || st.nets.values().any(|n| n.name == req.name)
            {
                return Err(Error::conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            let mut taken: Vec<Subnet> = st.nets.values().map(|n| n.subnet).collect();
            let subnet = match req.subnet {
                Some(s) => {
                    if taken.iter().any(|t| t.overlaps(&s)) {
                        return Err(Error::new(
                            axum::http::StatusCode::FORBIDDEN,
                            "Pool overlaps with other one on this address space",
                        ));
                    }
                    s
                }
                None => {
                    taken.extend(ipam::host_routes().unwrap_or_default());
                    ipam::pick_subnet(&self.config.pools, &taken).ok_or_else(|| {
                        Error::new(
                            axum::http::StatusCode::FORBIDDEN,
                            "all predefined address pools have been fully subnetted",
                        )
                    })?
                }
            };
            let gateway = match req.gateway {
                Some(g) if !subnet.contains(g) => {
                    return Err(Error::bad_request(format!(
                        "Invalid gateway {g}: it is not in subnet {subnet}"
                    )))
                }
                Some(g) => g,
                None => subnet.first_host(),
            };
            if let Some(r) = &req.ip_range {
                if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
                    return Err(Error::bad_request(format!(
                        "Invalid ip range {r}: it is not within subnet {subnet}"
                    )));
                }
            }
            let id = crate::container::names::new_id();
            let bridge = match req.options.get(store::BRIDGE_NAME_OPTION) {
                Some(b) => {
                    if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(' ') {
                        return Err(Error::bad_request(format!(
                            "invalid bridge name {b:?}: at most 15 characters, no '/' or spaces"
                        )));
                    }
                    if st.nets.values().any(|n| &n.bridge == b) {
                        return Err(Error::conflict(format!(
                            "bridge {b} is already used by another network"
                        )));
                    }
                    b.clone()
                }
                None => format!("pier-{}", &id[..10]),
            };
            let rec = NetworkRecord {
                id: id.clone(),
                name: req.name,
                driver: "bridge".into(),
                created: pier_common::time::now_rfc3339(),
                bridge,
                subnet,
                gateway,
                ip_range: req.ip_range,
                internal: req.internal,
                attachable: req.attachable,
                labels: req.labels,
                options: req.options,
                default_bridge: false,
                user_subnet: req.subnet.is_some(),
            };
            // Recorded first so a crash leaves a network `rm` can remove.
            store::save(&self.config.dir, &rec)
                .map_err(crate::error::io(format!("saving network {}", rec.name)))?;
            st.nets.insert(id, rec.clone());
            rec
        };
        if let Err(e) = setup_kernel(&rec) {
            let _ = self.remove_record(&rec);
            return Err(e);
        }
        Ok(rec)
    }

    /// Removes a network no container uses (the caller checks).
    pub fn remove(&self, rec: &NetworkRecord) -> Result<()> {
        if rec.default_bridge {
            return Err(Error::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "{} is a pre-defined network and cannot be removed",
                    rec.name
                ),
            ));
        }
        self.remove_record(rec)
    }

    fn remove_record(&self, rec: &NetworkRecord) -> Result<()> {
        lock(&self.state).dns.remove(&rec.id);
        pier_network::firewall::teardown_network(&rec.bridge).map_err(net_err)?;
        pier_network::link::delete_bridge(&rec.bridge).map_err(net_err)?;
        store::delete(&self.config.dir, &rec.id)
            .map_err(crate::error::io(format!("removing network {}", rec.name)))?;
        let mut st = lock(&self.state);
        st.nets.remove(&rec.id);
        st.used.remove(&rec.id);
        Ok(())
    }

    /// Makes every network's bridge and rules exist (they may be gone
    /// after a host reboot); pierd calls it when it starts.
    pub fn setup_all(&self) {
        for rec in self.all() {
            if let Err(e) = setup_kernel(&rec) {
                eprintln!("pierd: setting up network {}: {}", rec.name, e.message);
            }
        }
    }

    /// Starts the embedded resolver of each network that has one, on its
    /// gateway; `names(network id)` answers its names.
    pub async fn start_dns(
        &self,
        names: impl Fn(String) -> pier_network::dns::ClientNames,
        upstreams: impl Fn(String) -> pier_network::dns::Upstreams,
    ) {
        for rec in self.all().into_iter().filter(|r| r.has_dns()) {
            if lock(&self.state).dns.contains_key(&rec.id) {
                continue;
            }
            let listen = std::net::SocketAddr::from((rec.gateway, 53));
            match pier_network::dns::Server::spawn_for_clients(
                listen,
                names(rec.id.clone()),
                upstreams(rec.id.clone()),
            )
            .await
            {
                Ok(s) => {
                    lock(&self.state).dns.insert(rec.id.clone(), s);
                }
                Err(e) => eprintln!(
                    "pierd: starting the name resolver of network {} on {listen}: {e}; containers on it will not resolve each other's names",
                    rec.name
                ),
            }
        }
    }
}

/// What `POST /networks/create` asks for, checked.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Subnet>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

fn setup_kernel(rec: &NetworkRecord) -> Result<()> {
    pier_network::link::ensure_bridge(&pier_network::link::Bridge {
        name: rec.bridge.clone(),
        gateway: rec.gateway,
        prefix: rec.subnet.prefix,
        mtu: None,
    })
    .map_err(net_err)?;
    pier_network::firewall::setup_network(&pier_network::firewall::NetworkRules {
        bridge: rec.bridge.clone(),
        subnet: rec.subnet,
        internal: rec.internal,
    })
    .map_err(net_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_and_bips_parse_as_dockerd_flags() {
        let p = parse_pool("base=10.64.0.0/16,size=24").unwrap();
        assert_eq!(p.size, 24);
        assert_eq!(p.base.to_string(), "10.64.0.0/16");
        assert!(parse_pool("base=10.64.0.0/16").is_err());
        assert!(parse_pool("base=10.64.0.0/16,size=8").is_err());
        assert!(parse_pool("nonsense").is_err());
        assert_eq!(
            parse_bip("10.64.255.1/24").unwrap(),
            (Ipv4Addr::new(10, 64, 255, 1), 24)
        );
        assert!(parse_bip("10.64.255.1").is_err());
        assert!(parse_bip("x/24").is_err());
        assert_eq!(
            network_of(Ipv4Addr::new(10, 64, 255, 1), 24).to_string(),
            "10.64.255.0/24"
        );
    }
}
