//! nftables rules, through `nft -j -f -` (JSON): one table per network,
//! `pier-BRIDGE` in the `ip` family, holding
//! - masquerade of the subnet's traffic leaving through other devices
//!   (not for `--internal`);
//! - isolation: new connections into the subnet are accepted only from its
//!   own bridge or when DNATed (published ports); an `--internal` network
//!   exchanges nothing with other devices;
//! - DNAT of published ports (prerouting for traffic from outside, output
//!   for the host's own traffic, including 127.0.0.1 via route_localnet
//!   and masquerade), kept as map elements so adding or removing one is a
//!   single element change.
//!
//! When another filter base chain at the forward hook drops by policy
//! (dockerd's iptables FORWARD chain), traffic of pier's bridges is
//! accepted there too, so pier works next to dockerd.
//!
//! How it is done: pier's own table is written in nft's text syntax, in
//! one `nft -f -` run (one atomic transaction), because nft 1.0.6 cannot
//! declare a map with concatenated data (`ipv4_addr . inet_service`) in
//! JSON and crashes on the DNAT rule that uses one. Rules in other
//! programs' tables, and teardown, go through `nft -j -f -`, as JSON takes
//! any table or chain name (the text syntax rejects names that are
//! keywords). Everything nft reports back is read as JSON (`nft -j list`).
//!
//! The table (`ip pier-BRIDGE`):
//! - maps `ports` (`inet_proto . inet_service` -> `ipv4_addr .
//!   inet_service`, bindings on every host address) and `hostports`
//!   (`ipv4_addr . inet_proto . inet_service` -> the same, bindings on one
//!   host address, looked up first);
//! - chains `prerouting` and `output` (nat, dstnat): DNAT through those
//!   maps for packets to a local address (`fib daddr type local`); none on
//!   an internal network, which publishes nothing (as docker);
//! - chain `postrouting` (nat, srcnat): masquerade of the subnet leaving
//!   through other devices, of 127.0.0.0/8 sources DNATed onto the bridge
//!   (`127.0.0.1:HOSTPORT`) and of hairpin traffic (a container reaching a
//!   published port of its own network);
//! - chain `forward` (filter): traffic within the bridge (seen here with
//!   br_netfilter), replies, DNATed connections and (unless internal)
//!   everything leaving the subnet is accepted; the rest into or (internal)
//!   out of the bridge is dropped.
//!
//! [`setup_network`] declares the table, maps and chains with `add` (a
//! no-op when they exist) and flushes and refills only the chains, so a
//! second setup changes no published port.
//!
//! Rules put into foreign forward chains are `iifname "BRIDGE" accept` and
//! `oifname "BRIDGE" accept`, commented `pier-BRIDGE`: plain enough for
//! iptables-nft to keep listing and editing its table (a `ct state` match
//! would make iptables call the table incompatible); pier's own forward
//! chain still drops what must not come in.

use crate::ipam::Subnet;
use crate::ports::{Mapping, Proto};
use serde_json::{json, Value};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
}

/// The table of the network on `bridge`: `pier-BRIDGE` (family `ip`).
pub fn table_name(bridge: &str) -> String {
    format!("pier-{bridge}")
}

/// The comment on pier's rules in other programs' forward chains.
pub fn foreign_comment(bridge: &str) -> String {
    format!("pier-{bridge}")
}

const MAP_ANY: &str = "ports";
const MAP_HOST: &str = "hostports";

/// Creates or refreshes the network's table and the sysctls it needs
/// (ip_forward, the bridge's route_localnet). Idempotent.
pub fn setup_network(n: &NetworkRules) -> crate::Result<()> {
    let what = format!("setting up nftables for network bridge {}", n.bridge);
    check_bridge_name(&n.bridge).map_err(|e| prefixed(&what, e))?;
    if n.subnet.prefix > 32 {
        return Err(crate::Error::Invalid(format!(
            "{what}: invalid subnet prefix /{}",
            n.subnet.prefix
        )));
    }
    let ruleset = list_json(&["-t", "list", "ruleset"]).map_err(|e| prefixed(&what, e))?;
    run_script(&table_script(n), false).map_err(|e| prefixed(&what, e))?;
    let foreign = foreign_commands(&ruleset, &n.bridge, true);
    if !foreign.is_empty() {
        let json = json!({ "nftables": foreign }).to_string();
        run_script(&json, true).map_err(|e| prefixed(&what, e))?;
    }

    sysctl("net/ipv4/ip_forward", "1").map_err(|e| prefixed(&what, e))?;
    let key = format!("net/ipv4/conf/{}/route_localnet", n.bridge);
    sysctl(&key, "1").map_err(|e| match e {
        crate::Error::Io { what: w, source } if source.kind() == std::io::ErrorKind::NotFound => {
            crate::Error::io(
                format!("{what}: {w}"),
                std::io::Error::new(
                    source.kind(),
                    format!("no such bridge {} (create it first)", n.bridge),
                ),
            )
        }
        e => prefixed(&what, e),
    })?;
    Ok(())
}

/// Deletes the network's table (and its accept rules in foreign forward
/// chains); missing ones are fine.
pub fn teardown_network(bridge: &str) -> crate::Result<()> {
    let what = format!("removing nftables rules of network bridge {bridge}");
    check_bridge_name(bridge).map_err(|e| prefixed(&what, e))?;
    let ruleset = list_json(&["-t", "list", "ruleset"]).map_err(|e| prefixed(&what, e))?;
    let mut cmds = foreign_commands(&ruleset, bridge, false);
    let table = table_name(bridge);
    let exists = objects(&ruleset, "table")
        .any(|t| str_of(t, "family") == Some("ip") && str_of(t, "name") == Some(table.as_str()));
    if exists {
        cmds.push(json!({"delete": {"table": {"family": "ip", "name": table}}}));
    }
    if cmds.is_empty() {
        return Ok(());
    }
    let json = json!({ "nftables": cmds }).to_string();
    run_script(&json, true).map_err(|e| prefixed(&what, e))
}

/// Publishes `mappings` to `container_ip` on the network of `bridge`.
pub fn add_ports(bridge: &str, container_ip: Ipv4Addr, mappings: &[Mapping]) -> crate::Result<()> {
    let what = format!("publishing ports of {container_ip} on network bridge {bridge}");
    check_bridge_name(bridge).map_err(|e| prefixed(&what, e))?;
    if mappings.is_empty() {
        return Ok(());
    }
    let existing = elements(bridge).map_err(|e| prefixed(&what, e))?;
    let Some(existing) = existing else {
        return Err(crate::Error::Invalid(format!(
            "{what}: nftables table ip {} does not exist: the network is not set up",
            table_name(bridge)
        )));
    };
    let table = table_name(bridge);
    let mut script = String::new();
    for m in mappings {
        let key = Key::of(m);
        match existing.iter().find(|(k, _)| *k == key) {
            Some((_, v)) if *v == (container_ip, m.container_port) => continue,
            // A stale element (a container gone without its cleanup):
            // the port's reservation says it is ours now.
            Some(_) => script.push_str(&format!(
                "delete element ip {table} {} {{ {} }}\n",
                key.map(),
                key.text()
            )),
            None => {}
        }
        script.push_str(&format!(
            "add element ip {table} {} {{ {} : {container_ip} . {} }}\n",
            key.map(),
            key.text(),
            m.container_port
        ));
    }
    if script.is_empty() {
        return Ok(());
    }
    run_script(&script, false).map_err(|e| prefixed(&what, e))
}

/// Withdraws what [`add_ports`] added; missing elements are fine.
pub fn remove_ports(
    bridge: &str,
    container_ip: Ipv4Addr,
    mappings: &[Mapping],
) -> crate::Result<()> {
    let what = format!("withdrawing published ports of {container_ip} on network bridge {bridge}");
    check_bridge_name(bridge).map_err(|e| prefixed(&what, e))?;
    if mappings.is_empty() {
        return Ok(());
    }
    let Some(existing) = elements(bridge).map_err(|e| prefixed(&what, e))? else {
        return Ok(());
    };
    let table = table_name(bridge);
    let mut script = String::new();
    let mut done = Vec::new();
    for m in mappings {
        let key = Key::of(m);
        // Only our own element: another container may hold the port now.
        let ours = existing
            .iter()
            .any(|(k, v)| *k == key && *v == (container_ip, m.container_port));
        if ours && !done.contains(&key) {
            script.push_str(&format!(
                "delete element ip {table} {} {{ {} }}\n",
                key.map(),
                key.text()
            ));
            done.push(key);
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    run_script(&script, false).map_err(|e| prefixed(&what, e))
}

/// The names of pier's tables (`pier-*`) in the `ip` family: for checks
/// that nothing is left behind.
pub fn tables() -> crate::Result<Vec<String>> {
    let v = list_json(&["list", "tables"]).map_err(|e| prefixed("listing nftables tables", e))?;
    Ok(objects(&v, "table")
        .filter(|t| str_of(t, "family") == Some("ip"))
        .filter_map(|t| str_of(t, "name"))
        .filter(|n| n.starts_with("pier-"))
        .map(str::to_string)
        .collect())
}

/// The text (nft syntax) that declares the table and refills its chains.
fn table_script(n: &NetworkRules) -> String {
    let t = table_name(&n.bridge);
    let b = &n.bridge;
    let subnet = format!("{}/{}", n.subnet.addr, n.subnet.prefix);
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("add table ip {t}"));
    line(format!(
        "add map ip {t} {MAP_ANY} {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}"
    ));
    line(format!(
        "add map ip {t} {MAP_HOST} {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}"
    ));
    for (chain, kind, hook, prio) in [
        ("prerouting", "nat", "prerouting", "-100"),
        ("output", "nat", "output", "-100"),
        ("postrouting", "nat", "postrouting", "100"),
        ("forward", "filter", "forward", "0"),
    ] {
        line(format!(
            "add chain ip {t} {chain} {{ type {kind} hook {hook} priority {prio}; policy accept; }}"
        ));
        line(format!("flush chain ip {t} {chain}"));
    }
    if !n.internal {
        for chain in ["prerouting", "output"] {
            line(format!(
                "add rule ip {t} {chain} fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @{MAP_HOST}"
            ));
            line(format!(
                "add rule ip {t} {chain} fib daddr type local dnat ip to meta l4proto . th dport map @{MAP_ANY}"
            ));
        }
        line(format!(
            "add rule ip {t} postrouting ip saddr {subnet} oifname != \"{b}\" masquerade"
        ));
        line(format!(
            "add rule ip {t} postrouting oifname \"{b}\" ip saddr 127.0.0.0/8 masquerade"
        ));
        line(format!(
            "add rule ip {t} postrouting oifname \"{b}\" ct status dnat ip saddr {subnet} masquerade"
        ));
    }
    // Within the bridge (br_netfilter passes bridged frames through here).
    line(format!(
        "add rule ip {t} forward iifname \"{b}\" oifname \"{b}\" accept"
    ));
    if n.internal {
        line(format!("add rule ip {t} forward iifname \"{b}\" drop"));
        line(format!("add rule ip {t} forward oifname \"{b}\" drop"));
    } else {
        line(format!(
            "add rule ip {t} forward oifname \"{b}\" ct state established,related accept"
        ));
        line(format!(
            "add rule ip {t} forward oifname \"{b}\" ct status dnat accept"
        ));
        line(format!("add rule ip {t} forward oifname \"{b}\" drop"));
        line(format!("add rule ip {t} forward iifname \"{b}\" accept"));
    }
    s
}

/// JSON commands (`nft -j -f -`) that delete pier's rules for `bridge`
/// from other tables' chains and (when `insert`) put them back at the top
/// of every foreign filter base chain at the forward hook whose policy is
/// drop. JSON, as foreign tables and chains may have names nft's text
/// syntax reads as keywords (`fwd`).
fn foreign_commands(ruleset: &Value, bridge: &str, insert: bool) -> Vec<Value> {
    let comment = foreign_comment(bridge);
    let ours = |o: &Value| {
        str_of(o, "table").is_some_and(|t| t.starts_with("pier-"))
            || !matches!(str_of(o, "family"), Some("ip" | "inet"))
    };
    let mut cmds = Vec::new();
    for r in objects(ruleset, "rule") {
        if ours(r) || str_of(r, "comment") != Some(comment.as_str()) {
            continue;
        }
        let (Some(f), Some(t), Some(c), Some(h)) = (
            str_of(r, "family"),
            str_of(r, "table"),
            str_of(r, "chain"),
            r.get("handle").and_then(Value::as_u64),
        ) else {
            continue;
        };
        cmds.push(json!({"delete": {"rule": {
            "family": f, "table": t, "chain": c, "handle": h
        }}}));
    }
    if !insert {
        return cmds;
    }
    for c in objects(ruleset, "chain") {
        if ours(c)
            || str_of(c, "hook") != Some("forward")
            || str_of(c, "type") != Some("filter")
            || str_of(c, "policy") != Some("drop")
        {
            continue;
        }
        let (Some(f), Some(t), Some(name)) =
            (str_of(c, "family"), str_of(c, "table"), str_of(c, "name"))
        else {
            continue;
        };
        // Inserted at the top: `oifname` ends up first.
        for dir in ["iifname", "oifname"] {
            cmds.push(json!({"insert": {"rule": {
                "family": f, "table": t, "chain": name, "comment": comment,
                "expr": [
                    {"match": {"op": "==", "left": {"meta": {"key": dir}}, "right": bridge}},
                    {"accept": null}
                ]
            }}}));
        }
    }
    cmds
}

/// A published port's key in one of the maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    host_ip: Option<Ipv4Addr>,
    proto: Proto,
    port: u16,
}

impl Key {
    fn of(m: &Mapping) -> Key {
        Key {
            host_ip: m.host_ip.filter(|ip| !ip.is_unspecified()),
            proto: m.proto,
            port: m.host_port,
        }
    }

    fn map(&self) -> &'static str {
        if self.host_ip.is_some() {
            MAP_HOST
        } else {
            MAP_ANY
        }
    }

    fn text(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip} . {} . {}", self.proto.as_str(), self.port),
            None => format!("{} . {}", self.proto.as_str(), self.port),
        }
    }
}

type Element = (Key, (Ipv4Addr, u16));

/// The elements of the network's two maps; None when its table is missing.
fn elements(bridge: &str) -> crate::Result<Option<Vec<Element>>> {
    let table = table_name(bridge);
    let tables = list_json(&["list", "tables"])?;
    if !objects(&tables, "table")
        .any(|t| str_of(t, "family") == Some("ip") && str_of(t, "name") == Some(table.as_str()))
    {
        return Ok(None);
    }
    let v = list_json(&["list", "table", "ip", &table])?;
    let mut out = Vec::new();
    for m in objects(&v, "map") {
        let host = match str_of(m, "name") {
            Some(MAP_ANY) => false,
            Some(MAP_HOST) => true,
            _ => continue,
        };
        let Some(elems) = m.get("elem").and_then(Value::as_array) else {
            continue;
        };
        for e in elems {
            if let Some(el) = parse_element(e, host) {
                out.push(el);
            }
        }
    }
    Ok(Some(out))
}

/// `[{"concat": [KEY...]}, {"concat": ["10.1.0.2", 80]}]` (the key may
/// also come wrapped as `{"elem": {"val": ...}}`).
fn parse_element(e: &Value, host: bool) -> Option<Element> {
    let pair = e.as_array()?;
    let (k, v) = (pair.first()?, pair.get(1)?);
    let k = k.get("elem").and_then(|e| e.get("val")).unwrap_or(k);
    let k = k.get("concat")?.as_array()?;
    let v = v.get("concat")?.as_array()?;
    let (host_ip, rest) = if host {
        (Some(k.first()?.as_str()?.parse().ok()?), &k[1..])
    } else {
        (None, &k[..])
    };
    let [proto, port] = rest else { return None };
    let proto = parse_proto(proto)?;
    let port = u16::try_from(port.as_u64()?).ok()?;
    let [cip, cport] = &v[..] else { return None };
    let cip: Ipv4Addr = cip.as_str()?.parse().ok()?;
    let cport = u16::try_from(cport.as_u64()?).ok()?;
    Some((
        Key {
            host_ip,
            proto,
            port,
        },
        (cip, cport),
    ))
}

fn parse_proto(v: &Value) -> Option<Proto> {
    match v {
        Value::String(s) => match s.as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        },
        Value::Number(n) => match n.as_u64()? {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        },
        _ => None,
    }
}

/// The objects of kind `kind` (`table`, `chain`, `rule`, `map`) in nft's
/// JSON output.
fn objects<'a>(v: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    v.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(move |o| o.get(kind))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Bridge names go into table names and quoted strings of nft's syntax.
fn check_bridge_name(bridge: &str) -> crate::Result<()> {
    let ok = !bridge.is_empty()
        && bridge.len() <= 15
        && bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "invalid bridge name {bridge:?}: use at most 15 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn prefixed(what: &str, e: crate::Error) -> crate::Error {
    match e {
        crate::Error::Invalid(m) => crate::Error::Invalid(format!("{what}: {m}")),
        crate::Error::PortInUse(m) => crate::Error::PortInUse(m),
        crate::Error::Io { what: w, source } => crate::Error::io(format!("{what}: {w}"), source),
    }
}

fn nft_command() -> Command {
    // pierd may run with a PATH without /usr/sbin.
    let path = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft");
    Command::new(path)
}

fn nft_failed(args: &str, stderr: &[u8]) -> crate::Error {
    let msg = String::from_utf8_lossy(stderr);
    let msg = msg.trim();
    crate::Error::io(
        format!("nft {args}"),
        std::io::Error::other(format!("nft: {msg}")),
    )
}

fn spawn_failed(e: std::io::Error) -> crate::Error {
    let hint = if e.kind() == std::io::ErrorKind::NotFound {
        " (install nftables: pier needs the nft command)"
    } else {
        ""
    };
    crate::Error::io(
        "running nft",
        std::io::Error::new(e.kind(), format!("{e}{hint}")),
    )
}

/// `nft -j ARGS`, parsed.
fn list_json(args: &[&str]) -> crate::Result<Value> {
    let out = nft_command()
        .arg("-j")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_failed)?;
    if !out.status.success() {
        return Err(nft_failed(&format!("-j {}", args.join(" ")), &out.stderr));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        crate::Error::io(
            format!("reading the output of nft -j {}", args.join(" ")),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// Runs `script` (nft's text syntax, or JSON with `json`) as one nft
/// transaction (`nft -f -`).
fn run_script(script: &str, json: bool) -> crate::Result<()> {
    let mut cmd = nft_command();
    if json {
        cmd.arg("-j");
    }
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_failed)?;
    let written = child
        .stdin
        .take()
        .map(|mut i| i.write_all(script.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| crate::Error::io("waiting for nft", e))?;
    if !out.status.success() {
        let args = if json { "-j -f -" } else { "-f -" };
        return Err(nft_failed(args, &out.stderr));
    }
    if let Some(Err(e)) = written {
        return Err(crate::Error::io("writing rules to nft", e));
    }
    Ok(())
}

/// Writes `value` to /proc/sys/`key` unless it holds it already. In the
/// calling thread's network namespace.
fn sysctl(key: &str, value: &str) -> crate::Result<()> {
    let path = format!("/proc/sys/{key}");
    let name = key.replace('/', ".");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|e| crate::Error::io(format!("setting {name}={value}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(internal: bool) -> NetworkRules {
        NetworkRules {
            bridge: "pier0".into(),
            subnet: Subnet {
                addr: Ipv4Addr::new(10, 7, 0, 0),
                prefix: 24,
            },
            internal,
        }
    }

    #[test]
    fn script_masquerades_and_dnats_unless_internal() {
        let s = table_script(&rules(false));
        assert!(s.contains("ip saddr 10.7.0.0/24 oifname != \"pier0\" masquerade"));
        assert!(s.contains("dnat ip to meta l4proto . th dport map @ports"));
        assert!(s.contains("flush chain ip pier-pier0 forward"));
        let s = table_script(&rules(true));
        assert!(!s.contains("masquerade"));
        assert!(!s.contains("dnat ip to"));
        assert!(s.contains("add rule ip pier-pier0 forward iifname \"pier0\" drop"));
    }

    #[test]
    fn elements_parse_from_nft_json() {
        let any = serde_json::json!([{"concat": ["tcp", 8080]}, {"concat": ["10.1.0.2", 80]}]);
        assert_eq!(
            parse_element(&any, false),
            Some((
                Key {
                    host_ip: None,
                    proto: Proto::Tcp,
                    port: 8080
                },
                (Ipv4Addr::new(10, 1, 0, 2), 80)
            ))
        );
        let host = serde_json::json!([{"concat": ["127.0.0.1", "udp", 53]}, {"concat": ["10.1.0.2", 5353]}]);
        assert_eq!(
            parse_element(&host, true).map(|(k, _)| k.host_ip),
            Some(Some(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(parse_element(&serde_json::json!([1, 2]), true), None);
        assert_eq!(parse_element(&serde_json::json!("x"), false), None);
    }

    #[test]
    fn bridge_names_are_checked() {
        assert!(check_bridge_name("pier-0123456789").is_ok());
        assert!(check_bridge_name("br\"x").is_err());
        assert!(check_bridge_name("").is_err());
        assert!(check_bridge_name("a234567890123456").is_err());
    }
}
