//! The engine's side of networking: which networks a new container joins,
//! bringing its network up before it starts and down when it stops,
//! `network connect/disconnect`, the names the embedded resolvers answer,
//! and taking the networks back after pierd restarts.

use super::{lock, Engine, Handle};
use crate::container::spec::NetFiles;
use crate::container::validate::{self, Network};
use crate::container::ContainerRecord;
use crate::error::{Error, Result};
use crate::network::{attach, etc, EndpointConfig, NetState, NetworkRecord, BUILTIN};
use bollard_stubs::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

impl Engine {
    /// Resolves the create request's network mode and endpoints: the
    /// networks (by id) the container joins, with docker's checks. Fills
    /// in the mode (`default` becomes `bridge`, or `none` without a
    /// default bridge) and, for `container:X`, X's full id and hostname.
    pub(super) fn resolve_networks(
        &self,
        body: &ContainerCreateBody,
        hc: &mut HostConfig,
        config: &mut ContainerConfig,
    ) -> Result<BTreeMap<String, EndpointConfig>> {
        let mode = validate::network(hc.network_mode.as_deref()).map_err(Error::bad_request)?;
        // Port bindings are checked now, so a bad one creates nothing.
        attach::wanted_ports(
            hc.port_bindings.as_ref(),
            config.exposed_ports.as_deref().unwrap_or_default(),
            hc.publish_all_ports.unwrap_or(false),
        )?;
        let endpoints = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let endpoint_config = |key: &str, rec: &NetworkRecord| -> Result<EndpointConfig> {
            let Some(s) = endpoints
                .get(key)
                .or_else(|| endpoints.get("default").filter(|_| rec.default_bridge))
                .or_else(|| endpoints.get(&rec.id))
                .or_else(|| endpoints.get(&rec.name))
            else {
                return Ok(EndpointConfig::default());
            };
            let ipv4 = match s
                .ipam_config
                .as_ref()
                .and_then(|i| i.ipv4_address.clone())
                .filter(|a| !a.is_empty())
            {
                Some(a) => Some(
                    a.parse::<Ipv4Addr>()
                        .map_err(|_| Error::bad_request(format!("invalid IPv4 address: {a}")))?,
                ),
                None => None,
            };
            let aliases = s.aliases.clone().unwrap_or_default();
            if rec.default_bridge && !aliases.is_empty() {
                return Err(Error::bad_request(
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
            if rec.default_bridge && ipv4.is_some() {
                return Err(Error::bad_request(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            if !rec.user_subnet && ipv4.is_some() {
                return Err(Error::bad_request(
                    "user specified IP address is supported only when connecting to networks with user configured subnets",
                ));
            }
            let mac = s.mac_address.clone().filter(|m| !m.is_empty());
            if let Some(m) = &mac {
                pier_network::ipam::parse_mac(m).map_err(|e| Error::bad_request(e.to_string()))?;
            }
            Ok(EndpointConfig { aliases, ipv4, mac })
        };
        let mut out = BTreeMap::new();
        let primary = match mode {
            Network::Default => match self.networks.default_bridge() {
                Some(b) => {
                    hc.network_mode = Some("bridge".into());
                    Some(("bridge".to_string(), b))
                }
                None => {
                    hc.network_mode = Some("none".into());
                    None
                }
            },
            Network::Named(name) => {
                let rec = self.networks.find(&name)?;
                Some((name, rec))
            }
            Network::Container(other) => {
                if config.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                    return Err(Error::bad_request(
                        "conflicting options: hostname and the network mode",
                    ));
                }
                if !hc.port_bindings.as_ref().is_none_or(|p| p.is_empty())
                    || hc.publish_all_ports == Some(true)
                {
                    return Err(Error::bad_request(
                        "conflicting options: port publishing and the container type network mode",
                    ));
                }
                let h = self.find(&other)?;
                let o = h.record();
                hc.network_mode = Some(format!("container:{}", o.id));
                config.hostname = Some(o.hostname());
                None
            }
            Network::None | Network::Host => None,
        };
        if let Some((key, rec)) = primary {
            let key_of_mode = key.clone();
            out.insert(rec.id.clone(), endpoint_config(&key, &rec)?);
            // API >= 1.44 may name more networks to join at create.
            for key in endpoints.keys() {
                // docker's CLI names the mode's network `default` too.
                if key == "default" || key == &key_of_mode {
                    continue;
                }
                let other = self.networks.find(key)?;
                if !out.contains_key(&other.id) {
                    out.insert(other.id.clone(), endpoint_config(key, &other)?);
                }
            }
        }
        Ok(out)
    }

    /// Brings up the container's network before it starts: its own
    /// namespace with its networks and ports, or the namespace of the
    /// container it shares; and the hosts/resolv.conf files that go with
    /// it. None for `host` and `none` (the runtime handles those).
    pub(super) async fn network_up(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Option<(NetState, NetFiles)>> {
        if let Ok(Network::Container(other)) =
            validate::network(rec.host_config.network_mode.as_deref())
        {
            let h = self.find(&other).map_err(|_| {
                Error::bad_request(format!(
                    "cannot join network of a non running container: {other}"
                ))
            })?;
            let o = h.record();
            if !o.state.running() || o.state.pid <= 0 {
                return Err(Error::conflict(format!(
                    "cannot join network of a non running container: {}",
                    o.name
                )));
            }
            let dir = self.container_dir(&o.id);
            let files = NetFiles {
                hosts: std::fs::read_to_string(dir.join("hosts")).unwrap_or_default(),
                resolv_conf: std::fs::read_to_string(dir.join("resolv.conf")).ok(),
            };
            let netns = match &o.net {
                Some(n) => n.netns.clone(),
                None => format!("/proc/{}/ns/net", o.state.pid).into(),
            };
            return Ok(Some((
                NetState {
                    netns,
                    own_netns: false,
                    endpoints: Vec::new(),
                    ports: Vec::new(),
                },
                files,
            )));
        }
        if rec.networks.is_empty() {
            return Ok(None);
        }
        let mut nets = Vec::new();
        // The network the mode names first: it carries the default route.
        let mode_net = match validate::network(rec.host_config.network_mode.as_deref()) {
            Ok(Network::Named(n)) => self.networks.find(&n).ok().map(|r| r.id),
            _ => None,
        };
        let mut ids: Vec<&String> = rec.networks.keys().collect();
        ids.sort_by_key(|id| Some(*id) != mode_net.as_ref());
        for id in ids {
            let net = self.networks.get(id).ok_or_else(|| {
                Error::not_found(format!(
                    "network {id} not found: it was removed; disconnect the container from it (pier network disconnect) and start it again"
                ))
            })?;
            nets.push((net, rec.networks[id].clone()));
        }
        let wanted = attach::wanted_ports(
            rec.host_config.port_bindings.as_ref(),
            rec.config.exposed_ports.as_deref().unwrap_or_default(),
            rec.host_config.publish_all_ports.unwrap_or(false),
        )?;
        let networks = self.networks.clone();
        let id = rec.id.clone();
        let state =
            tokio::task::spawn_blocking(move || networks.attach(&id, &nets, &wanted)).await??;
        let files = self.net_files(rec, &state);
        Ok(Some((state, files)))
    }

    /// hosts and resolv.conf for a container with its own namespace.
    fn net_files(&self, rec: &ContainerRecord, state: &NetState) -> NetFiles {
        let hc = &rec.host_config;
        let gateway_of_default = self.networks.default_bridge().map(|b| b.gateway);
        let extra: Vec<(String, String)> = hc
            .extra_hosts
            .iter()
            .flatten()
            .filter_map(|e| e.split_once(':'))
            .map(|(name, ip)| {
                let ip = match (ip, gateway_of_default) {
                    ("host-gateway", Some(gw)) => gw.to_string(),
                    _ => ip.to_string(),
                };
                (name.to_string(), ip)
            })
            .collect();
        let primary = state.endpoints.first();
        let hosts = etc::hosts(&rec.hostname(), primary.map(|e| e.ip), &extra);
        let embedded = primary
            .and_then(|e| self.networks.get(&e.network_id))
            .filter(|n| n.has_dns())
            .map(|n| n.gateway);
        let host =
            etc::parse_resolv(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        let resolv = etc::resolv_conf(
            &host,
            embedded,
            &list(&hc.dns),
            &list(&hc.dns_search),
            &list(&hc.dns_options),
        );
        NetFiles {
            hosts,
            resolv_conf: Some(resolv),
        }
    }

    /// Takes the container's network down (it stopped, or its start
    /// failed) and forgets it in the record.
    pub(super) async fn network_down(&self, h: &Handle) {
        if self.release_network(h).await {
            let _ = self.update(h, |_| {});
        }
    }

    /// As [`Engine::network_down`], leaving the record's save to the
    /// caller's next update (the exit's): one fsync less per container.
    /// Whether there was a network to release.
    pub(super) async fn release_network(&self, h: &Handle) -> bool {
        let Some(state) = h.record().net else {
            return false;
        };
        let networks = self.networks.clone();
        let id = h.id.clone();
        let _ = tokio::task::spawn_blocking(move || networks.release(&id, &state)).await;
        lock(&h.record).net = None;
        true
    }

    /// What the resolver of network `network_id` answers for `name` asked
    /// by `client`: containers by name, alias or short id (also as
    /// `NAME.NETWORK`) on any user network the asking container is on (as
    /// docker's per-container resolver), or on this one when the client is
    /// unknown; None for any other name (forwarded).
    pub fn resolve_name(
        &self,
        network_id: &str,
        client: std::net::IpAddr,
        name: &str,
    ) -> Option<Vec<Ipv4Addr>> {
        // Each query runs this: only the running containers' names and
        // endpoints are copied, not whole records.
        let handles: Vec<Arc<Handle>> = lock(&self.containers).values().cloned().collect();
        let recs: Vec<(String, String, NetState)> = handles
            .iter()
            .filter_map(|h| {
                let r = lock(&h.record);
                let net = r.net.clone()?;
                Some((r.id.clone(), r.name.clone(), net))
            })
            .collect();
        let mut scope: Vec<String> = recs
            .iter()
            .map(|(_, _, net)| net)
            .find(|s| s.is_at(network_id, client))
            .map(|s| s.endpoints.iter().map(|e| e.network_id.clone()).collect())
            .unwrap_or_else(|| vec![network_id.to_string()]);
        scope.retain(|id| self.networks.get(id).is_some_and(|n| n.has_dns()));
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut ips = Vec::new();
        for net_id in &scope {
            let Some(net) = self.networks.get(net_id) else {
                continue;
            };
            let suffix = format!(".{}", net.name.to_ascii_lowercase());
            let bare = name.strip_suffix(&suffix).unwrap_or(&name);
            for (id, cname, state) in &recs {
                for ep in state.endpoints.iter().filter(|e| &e.network_id == net_id) {
                    let hit = cname.to_ascii_lowercase() == bare
                        || (bare.len() >= 12 && id.starts_with(bare))
                        || ep.aliases.iter().any(|a| a.to_ascii_lowercase() == bare);
                    if hit && !ips.contains(&ep.ip) {
                        ips.push(ep.ip);
                    }
                }
            }
        }
        (!ips.is_empty()).then_some(ips)
    }

    /// Starts the resolvers of the user networks.
    pub(super) async fn start_resolvers(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let host = pier_network::dns::upstreams_of(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        );
        self.networks
            .start_dns(
                |net_id| {
                    let weak = weak.clone();
                    Arc::new(move |client: std::net::SocketAddr, name: &str| {
                        weak.upgrade()?.resolve_name(&net_id, client.ip(), name)
                    })
                },
                |net_id| {
                    let (weak, host) = (weak.clone(), host.clone());
                    Arc::new(move |client: std::net::SocketAddr| {
                        weak.upgrade()
                            .and_then(|e| e.dns_servers_of(&net_id, client.ip()))
                            .unwrap_or_else(|| host.clone())
                    })
                },
            )
            .await;
    }

    /// The `--dns` servers of the running container at `client` on network
    /// `network_id`, where its resolver forwards what it does not know
    /// (as docker's, whose resolv.conf names only the embedded resolver);
    /// None when it has none (loopback ones left out: the resolver is in
    /// the host's namespace) and the host's are used.
    fn dns_servers_of(
        &self,
        network_id: &str,
        client: std::net::IpAddr,
    ) -> Option<Vec<std::net::SocketAddr>> {
        let handles: Vec<Arc<Handle>> = lock(&self.containers).values().cloned().collect();
        let dns = handles.iter().find_map(|h| {
            let r = lock(&h.record);
            r.net
                .as_ref()?
                .is_at(network_id, client)
                .then(|| r.host_config.dns.clone().unwrap_or_default())
        })?;
        let servers: Vec<std::net::SocketAddr> = dns
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect();
        (!servers.is_empty()).then_some(servers)
    }

    /// A network event as docker's: `name`, `type`, and `container` for
    /// connect and disconnect.
    fn emit_network(&self, net: &NetworkRecord, action: &str, container: Option<&str>) {
        let mut attrs = std::collections::HashMap::from([
            ("name".to_string(), net.name.clone()),
            ("type".to_string(), net.driver.clone()),
        ]);
        if let Some(c) = container {
            attrs.insert("container".into(), c.to_string());
        }
        self.emit("network", action, &net.id, attrs);
    }

    /// Containers (running or not) that are on network `id`.
    pub fn network_users(&self, id: &str) -> Vec<ContainerRecord> {
        self.list()
            .into_iter()
            .filter(|r| r.networks.contains_key(id))
            .collect()
    }

    /// `POST /networks/create`: the network, its bridge and its resolver.
    pub async fn create_network(
        self: &Arc<Self>,
        req: crate::network::CreateRequest,
    ) -> Result<NetworkRecord> {
        if BUILTIN.iter().any(|(n, _)| *n == req.name) {
            return Err(Error::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "operation is not permitted on predefined {} network",
                    req.name
                ),
            ));
        }
        let networks = self.networks.clone();
        let rec = tokio::task::spawn_blocking(move || networks.create(req)).await??;
        self.start_resolvers().await;
        self.emit_network(&rec, "create", None);
        Ok(rec)
    }

    /// `DELETE /networks/{id}`: refused while a container is on it.
    pub async fn remove_network(&self, rec: &NetworkRecord) -> Result<()> {
        if rec.default_bridge {
            return Err(Error::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "{} is a pre-defined network and cannot be removed",
                    rec.name
                ),
            ));
        }
        if !self.network_users(&rec.id).is_empty() {
            return Err(Error::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "error while removing network: network {} id {} has active endpoints",
                    rec.name, rec.id
                ),
            ));
        }
        let (networks, r) = (self.networks.clone(), rec.clone());
        tokio::task::spawn_blocking(move || networks.remove(&r)).await??;
        self.emit_network(rec, "destroy", None);
        Ok(())
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect_network(
        &self,
        net: &NetworkRecord,
        container: &str,
        cfg: EndpointConfig,
    ) -> Result<()> {
        let h = self.find(container)?;
        let _op = h.op.lock().await;
        let rec = h.record();
        let mode = validate::network(rec.host_config.network_mode.as_deref());
        if matches!(
            mode,
            Ok(Network::Host | Network::None | Network::Container(_))
        ) {
            let what = match mode {
                Ok(Network::None) => "none network",
                Ok(Network::Container(_)) => "another container's network",
                _ => "host network",
            };
            return Err(Error::bad_request(format!(
                "container cannot be disconnected from {what} or connected to {what}"
            )));
        }
        if rec.networks.contains_key(&net.id) {
            return Err(Error::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "endpoint with name {} already exists in network {}",
                    rec.name, net.name
                ),
            ));
        }
        if net.default_bridge && !cfg.aliases.is_empty() {
            return Err(Error::bad_request(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        if cfg.ipv4.is_some() && (net.default_bridge || !net.user_subnet) {
            return Err(Error::bad_request(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        if let Some(mut state) = rec.net.clone().filter(|_| rec.state.running()) {
            let (networks, n, c) = (self.networks.clone(), net.clone(), cfg.clone());
            let state = tokio::task::spawn_blocking(move || {
                networks.connect(&mut state, &n, &c).map(|()| state)
            })
            .await??;
            self.update(&h, |r| {
                r.net = Some(state);
                r.networks.insert(net.id.clone(), cfg);
            })?;
        } else {
            self.update(&h, |r| {
                r.networks.insert(net.id.clone(), cfg);
            })?;
        }
        self.emit_network(net, "connect", Some(&rec.id));
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(&self, net: &NetworkRecord, container: &str) -> Result<()> {
        let h = self.find(container)?;
        let _op = h.op.lock().await;
        let rec = h.record();
        if !rec.networks.contains_key(&net.id) {
            return Err(Error::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "container {} is not connected to network {}",
                    rec.id, net.name
                ),
            ));
        }
        let mut net_state = rec.net.clone();
        if let Some(mut state) = net_state.take().filter(|_| rec.state.running()) {
            let (networks, id) = (self.networks.clone(), net.id.clone());
            net_state = Some(
                tokio::task::spawn_blocking(move || {
                    networks.disconnect(&mut state, &id).map(|()| state)
                })
                .await??,
            );
        }
        self.update(&h, |r| {
            r.networks.remove(&net.id);
            if r.net.is_some() {
                r.net = net_state;
            }
        })?;
        self.emit_network(net, "disconnect", Some(&rec.id));
        Ok(())
    }

    /// After the containers are loaded: bridges and rules made again if
    /// missing, running containers' addresses and ports taken back,
    /// stopped ones' leftovers released, resolvers started.
    pub(super) async fn restore_networks(self: &Arc<Self>) {
        let networks = self.networks.clone();
        let _ = tokio::task::spawn_blocking(move || networks.setup_all()).await;
        let handles: Vec<Arc<Handle>> = lock(&self.containers).values().cloned().collect();
        for h in handles {
            let rec = h.record();
            let Some(state) = rec.net.clone() else {
                continue;
            };
            let networks = self.networks.clone();
            if rec.state.running() {
                let id = rec.id.clone();
                let _ = tokio::task::spawn_blocking(move || networks.restore(&id, &state)).await;
            } else {
                self.network_down(&h).await;
            }
        }
        self.remove_stray_namespaces();
        self.start_resolvers().await;
    }

    /// Namespaces under EXEC_ROOT/netns that no record holds: a pierd that
    /// died between making a container's network and saving its record.
    /// Their veths go with them.
    fn remove_stray_namespaces(&self) {
        let held: std::collections::HashSet<std::path::PathBuf> = lock(&self.containers)
            .values()
            .filter_map(|h| h.record().net.map(|n| n.netns))
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.networks.config.netns_dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !held.contains(&path) {
                eprintln!(
                    "pierd: removing the network namespace {} that no container holds",
                    path.display()
                );
                if let Err(e) = pier_network::netns::remove(&path) {
                    eprintln!("pierd: {e}");
                }
            }
        }
    }
}
