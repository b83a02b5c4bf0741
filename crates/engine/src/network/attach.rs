//! A container's network while it runs: its namespace, one veth per
//! network (`eth0`, `eth1`, ...), addresses, and published ports (a held
//! host port plus a DNAT map element each). [`Networks::attach`] undoes
//! what it did when a step fails; [`Networks::release`] is best effort and
//! idempotent, so a container that died while pierd was down is released
//! when pierd comes back.

use super::{lock, net_err, Endpoint, EndpointConfig, NetState, NetworkRecord, Networks};
use super::{Proto, PublishedPort};
use crate::error::{Error, Result};
use pier_network::{firewall, ipam, link, netns, ports};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// A port the container asks to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedPort {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    /// 0: a random one.
    pub host_port: u16,
    pub range_end: Option<u16>,
}

/// The ports of `HostConfig.PortBindings`, and with `publish_all` every
/// exposed port not bound there, on a random host port (docker's `-P`).
/// An IPv6 host address is refused: pier publishes on IPv4 only.
pub fn wanted_ports(
    bindings: Option<&bollard_stubs::models::PortMap>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<WantedPort>> {
    let mut out = Vec::new();
    let mut bound = std::collections::BTreeSet::new();
    let mut keys: Vec<_> = bindings.map(|b| b.iter().collect()).unwrap_or_default();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, list) in keys {
        let port = ports::Port::parse(key).map_err(net_err)?;
        bound.insert(port);
        let list = list.clone().unwrap_or_default();
        let list = if list.is_empty() {
            vec![Default::default()]
        } else {
            list
        };
        for b in list {
            let ip = b.host_ip.as_deref().unwrap_or("");
            let host_ip = match ip {
                "" | "0.0.0.0" => None,
                ip if ip.contains(':') => {
                    return Err(Error::bad_request(format!(
                        "cannot publish {key} on {ip}: pier publishes ports on IPv4 addresses only; leave the address out or give an IPv4 one"
                    )))
                }
                ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                    Error::bad_request(format!("invalid IP address in port binding: {ip}"))
                })?),
            };
            let hp = b.host_port.as_deref().unwrap_or("");
            let (host_port, range_end) = match hp.split_once('-') {
                _ if hp.is_empty() => (0, None),
                Some((a, z)) => (parse_port(a, hp)?, Some(parse_port(z, hp)?)),
                None => (parse_port(hp, hp)?, None),
            };
            out.push(WantedPort {
                container_port: port.port,
                proto: port.proto.into(),
                host_ip,
                host_port,
                range_end,
            });
        }
    }
    if publish_all {
        let mut exposed: Vec<ports::Port> = exposed
            .iter()
            .map(|k| ports::Port::parse(k).map_err(net_err))
            .collect::<Result<_>>()?;
        exposed.sort();
        for p in exposed.into_iter().filter(|p| !bound.contains(p)) {
            out.push(WantedPort {
                container_port: p.port,
                proto: p.proto.into(),
                host_ip: None,
                host_port: 0,
                range_end: None,
            });
        }
    }
    Ok(out)
}

fn parse_port(s: &str, whole: &str) -> Result<u16> {
    s.parse::<u16>()
        .map_err(|_| Error::bad_request(format!("invalid hostPort: {whole}")))
}

impl Networks {
    /// Makes the container's namespace, joins it to `networks` in order
    /// (the first one carries the default route and the published ports)
    /// and publishes `wanted`.
    pub fn attach(
        &self,
        container_id: &str,
        networks: &[(NetworkRecord, EndpointConfig)],
        wanted: &[WantedPort],
    ) -> Result<NetState> {
        let path = self.config.netns_dir.join(container_id);
        let _ = netns::remove(&path);
        netns::create(&path).map_err(net_err)?;
        let mut state = NetState {
            netns: path,
            own_netns: true,
            endpoints: Vec::new(),
            ports: Vec::new(),
        };
        let result = (|| {
            for (i, (net, cfg)) in networks.iter().enumerate() {
                let ep = self.join(&state, net, cfg, i == 0)?;
                state.endpoints.push(ep);
            }
            if let (Some(primary), false) = (state.endpoints.first(), wanted.is_empty()) {
                let primary = primary.clone();
                let bridge = networks[0].0.bridge.clone();
                self.publish(container_id, &mut state, &bridge, primary.ip, wanted)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(state),
            Err(e) => {
                self.withdraw(container_id, &state);
                self.remove_endpoints(container_id, &state.endpoints);
                Err(e)
            }
        }
    }

    /// One more interface in a running container's namespace (`network
    /// connect`).
    pub fn connect(
        &self,
        state: &mut NetState,
        net: &NetworkRecord,
        cfg: &EndpointConfig,
    ) -> Result<()> {
        let first = state.endpoints.is_empty();
        let ep = self.join(state, net, cfg, first)?;
        state.endpoints.push(ep);
        Ok(())
    }

    /// Takes a running container off one network (`network disconnect`).
    pub fn disconnect(&self, state: &mut NetState, network_id: &str) -> Result<()> {
        let Some(i) = state
            .endpoints
            .iter()
            .position(|e| e.network_id == network_id)
        else {
            return Ok(());
        };
        let ep = state.endpoints.remove(i);
        link::detach(&ep.host_ifname).map_err(net_err)?;
        if let Some(used) = lock(&self.state).used.get_mut(&ep.network_id) {
            used.remove(&ep.ip);
        }
        Ok(())
    }

    fn join(
        &self,
        state: &NetState,
        net: &NetworkRecord,
        cfg: &EndpointConfig,
        default_route: bool,
    ) -> Result<Endpoint> {
        // An address (or the last free one) may still be held by the
        // veth of an exited container being deleted: wait for it.
        let pending = {
            let st = lock(&self.state);
            let used = st.used.get(&net.id);
            st.releasing > 0
                && match cfg.ipv4 {
                    Some(ip) => used.is_some_and(|u| u.contains(&ip)),
                    None => used.is_some_and(|u| {
                        ipam::allocate(&net.subnet, net.ip_range.as_ref(), net.gateway, u).is_none()
                    }),
                }
        };
        if pending {
            self.settle(std::time::Duration::from_secs(10));
        }
        let ip = {
            let mut st = lock(&self.state);
            let used = st.used.entry(net.id.clone()).or_default();
            let ip = match cfg.ipv4 {
                Some(ip) => {
                    if !net.subnet.contains(ip)
                        || ip == net.subnet.addr
                        || ip == net.subnet.broadcast()
                    {
                        return Err(Error::bad_request(format!(
                            "no configured subnet or ip-range contain the IP address {ip}"
                        )));
                    }
                    if used.contains(&ip) || ip == net.gateway {
                        return Err(Error::bad_request(format!(
                            "Address already in use: {ip} on network {}",
                            net.name
                        )));
                    }
                    ip
                }
                None => ipam::allocate(&net.subnet, net.ip_range.as_ref(), net.gateway, used)
                    .ok_or_else(|| {
                        Error::new(
                            axum::http::StatusCode::FORBIDDEN,
                            format!(
                                "no available IPv4 addresses on this network's address pools: {} ({})",
                                net.name, net.id
                            ),
                        )
                    })?,
            };
            used.insert(ip);
            ip
        };
        let release_ip = || {
            if let Some(used) = lock(&self.state).used.get_mut(&net.id) {
                used.remove(&ip);
            }
        };
        let mac = match &cfg.mac {
            Some(m) if !m.is_empty() => match ipam::parse_mac(m) {
                Ok(m) => m,
                Err(e) => {
                    release_ip();
                    return Err(net_err(e));
                }
            },
            _ => ipam::mac_for(ip),
        };
        let taken: Vec<&str> = state.endpoints.iter().map(|e| e.ifname.as_str()).collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !taken.contains(&n.as_str()))
            .unwrap_or_default();
        let ep = Endpoint {
            network_id: net.id.clone(),
            endpoint_id: crate::container::names::new_id(),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
            mac: ipam::format_mac(&mac),
            host_ifname: link::host_ifname(),
            ifname,
            aliases: cfg.aliases.clone(),
        };
        let attached = link::attach(&link::Attachment {
            bridge: net.bridge.clone(),
            host_ifname: ep.host_ifname.clone(),
            netns: state.netns.clone(),
            ifname: ep.ifname.clone(),
            mac,
            address: ip,
            prefix: net.subnet.prefix,
            gateway: (default_route && !net.internal).then_some(net.gateway),
            mtu: None,
        });
        if let Err(e) = attached {
            release_ip();
            return Err(Error::internal(format!(
                "joining network {}: {e}",
                net.name
            )));
        }
        Ok(ep)
    }

    fn publish(
        &self,
        container_id: &str,
        state: &mut NetState,
        bridge: &str,
        ip: Ipv4Addr,
        wanted: &[WantedPort],
    ) -> Result<()> {
        let mut held = Vec::new();
        for w in wanted {
            let r = ports::reserve(w.host_ip, w.host_port, w.range_end, w.proto.into()).map_err(
                |e| match e {
                    pier_network::Error::PortInUse(m) => Error::internal(format!(
                        "driver failed programming external connectivity on endpoint: {m}"
                    )),
                    other => net_err(other),
                },
            )?;
            state.ports.push(PublishedPort {
                container_port: w.container_port,
                proto: w.proto,
                host_ip: w.host_ip,
                host_port: r.host_port,
            });
            held.push(r);
        }
        lock(&self.state)
            .reservations
            .insert(container_id.to_string(), held);
        let mappings: Vec<ports::Mapping> = state.ports.iter().map(|p| p.mapping()).collect();
        firewall::add_ports(bridge, ip, &mappings).map_err(net_err)
    }

    /// Withdraws everything [`Networks::attach`] made; best effort (each
    /// failure is logged), safe to repeat. The host ports and the
    /// namespace are given back before it returns; the veth pairs are
    /// deleted on a thread of their own, as deleting a link waits for an
    /// RCU grace period (~20 ms, most of what a container's exit costs),
    /// and their addresses stay taken until they are gone.
    pub fn release(self: &Arc<Self>, container_id: &str, state: &NetState) {
        self.withdraw(container_id, state);
        if state.endpoints.is_empty() {
            return;
        }
        lock(&self.state).releasing += 1;
        let (me, id, endpoints) = (
            Arc::clone(self),
            container_id.to_string(),
            state.endpoints.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("pier-net-release".into())
            .spawn(move || {
                me.remove_endpoints(&id, &endpoints);
                me.released()
            });
        if spawned.is_err() {
            self.remove_endpoints(container_id, &state.endpoints);
            self.released();
        }
    }

    fn released(&self) {
        lock(&self.state).releasing -= 1;
        self.endpoints_gone.notify_all();
    }

    /// The published ports and the namespace of a container.
    fn withdraw(&self, container_id: &str, state: &NetState) {
        if let Some(primary) = state.endpoints.first() {
            if !state.ports.is_empty() {
                if let Some(net) = self.get(&primary.network_id) {
                    let mappings: Vec<ports::Mapping> =
                        state.ports.iter().map(|p| p.mapping()).collect();
                    if let Err(e) = firewall::remove_ports(&net.bridge, primary.ip, &mappings) {
                        eprintln!("pierd: withdrawing the ports of {container_id}: {e}");
                    }
                }
            }
        }
        lock(&self.state).reservations.remove(container_id);
        // Unmounting drops the namespace (unless another container
        // shares it), and with it the container ends of the veths.
        if state.own_netns {
            if let Err(e) = netns::remove(&state.netns) {
                eprintln!("pierd: removing the network namespace of {container_id}: {e}");
            }
        }
    }

    /// Deletes the veth pairs and frees their addresses.
    fn remove_endpoints(&self, container_id: &str, endpoints: &[Endpoint]) {
        for ep in endpoints {
            if let Err(e) = link::detach(&ep.host_ifname) {
                eprintln!("pierd: removing {} of {container_id}: {e}", ep.host_ifname);
            }
            if let Some(used) = lock(&self.state).used.get_mut(&ep.network_id) {
                used.remove(&ep.ip);
            }
        }
    }

    /// Waits (at most `limit`) until the veths of exited containers are
    /// gone and their addresses free.
    pub fn settle(&self, limit: std::time::Duration) {
        let st = lock(&self.state);
        let _ = self
            .endpoints_gone
            .wait_timeout_while(st, limit, |st| st.releasing > 0);
    }

    /// Takes back what a running container holds after pierd restarted:
    /// its addresses, its host ports, its DNAT elements.
    pub fn restore(&self, container_id: &str, state: &NetState) {
        {
            let mut st = lock(&self.state);
            for ep in &state.endpoints {
                st.used
                    .entry(ep.network_id.clone())
                    .or_default()
                    .insert(ep.ip);
            }
        }
        let Some(primary) = state.endpoints.first() else {
            return;
        };
        let mut held = Vec::new();
        for p in &state.ports {
            match ports::reserve(p.host_ip, p.host_port, None, p.proto.into()) {
                Ok(r) => held.push(r),
                Err(e) => eprintln!(
                    "pierd: holding host port {} of {container_id} again: {e}",
                    p.host_port
                ),
            }
        }
        lock(&self.state)
            .reservations
            .insert(container_id.to_string(), held);
        if let (Some(net), false) = (self.get(&primary.network_id), state.ports.is_empty()) {
            let mappings: Vec<ports::Mapping> = state.ports.iter().map(|p| p.mapping()).collect();
            if let Err(e) = firewall::add_ports(&net.bridge, primary.ip, &mappings) {
                eprintln!("pierd: publishing the ports of {container_id} again: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::PortBinding;
    use std::collections::HashMap;

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn port_bindings_become_wanted_ports() {
        let map: bollard_stubs::models::PortMap = HashMap::from([
            (
                "80/tcp".to_string(),
                Some(vec![binding("", "8080"), binding("127.0.0.1", "")]),
            ),
            (
                "90".to_string(),
                Some(vec![binding("0.0.0.0", "9000-9010")]),
            ),
        ]);
        let w = wanted_ports(Some(&map), &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        assert_eq!(
            w,
            vec![
                WantedPort {
                    container_port: 80,
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    range_end: None
                },
                WantedPort {
                    container_port: 80,
                    proto: Proto::Tcp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 0,
                    range_end: None
                },
                WantedPort {
                    container_port: 90,
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 9000,
                    range_end: Some(9010)
                },
                // -P: the exposed port nobody bound, on a random port.
                WantedPort {
                    container_port: 443,
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 0,
                    range_end: None
                },
            ]
        );
        let bad: bollard_stubs::models::PortMap =
            HashMap::from([("80/tcp".to_string(), Some(vec![binding("", "http")]))]);
        assert!(wanted_ports(Some(&bad), &[], false)
            .unwrap_err()
            .message
            .contains("invalid hostPort: http"));
        let v6: bollard_stubs::models::PortMap =
            HashMap::from([("53/udp".to_string(), Some(vec![binding("::1", "53")]))]);
        assert!(wanted_ports(Some(&v6), &[], false)
            .unwrap_err()
            .message
            .contains("IPv4 addresses only"));
    }
}
