//! `pier network create|ls|inspect|rm|connect|disconnect|prune`: one
//! Docker Engine API call each (`/networks...`), sent and printed as the
//! docker 28 CLI does. Errors from the daemon exit 1, as docker's network
//! commands do; a bad flag value exits 125 before anything is sent.

mod ls;

pub use ls::LsArgs;

use super::image_ops::exit1;
use super::volume::labels;
use crate::client::{empty, encode, full, Client};
use crate::error::CliError;
use crate::template::Template;
use hyper::Method;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::net::IpAddr;

#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "CIDR")]
    subnet: Vec<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long, value_name = "IP")]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "CIDR")]
    ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Enable or disable IPv6 networking (pier: IPv4 only)
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    opt: Vec<String>,
    /// Name of the network
    #[arg(value_name = "NETWORK")]
    name: String,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template (or "json")
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short, long)]
    verbose: bool,
    #[arg(required = true, value_name = "NETWORK")]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "ALIAS")]
    alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "IP")]
    ip: Option<String>,
    /// IPv6 address (pier: IPv4 only)
    #[arg(long, value_name = "IP")]
    ip6: Option<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "KEY=VALUE")]
    driver_opt: Vec<String>,
    #[arg(value_name = "NETWORK")]
    network: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    #[arg(value_name = "NETWORK")]
    network: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

pub async fn run(client: &Client, cmd: NetworkCommand) -> Result<i32, CliError> {
    match cmd {
        NetworkCommand::Create(a) => create(client, a).await,
        NetworkCommand::Ls(a) => ls::ls(client, a).await,
        NetworkCommand::Inspect(a) => inspect(client, a).await,
        NetworkCommand::Rm(a) => rm(client, a).await,
        NetworkCommand::Connect(a) => connect(client, a).await,
        NetworkCommand::Disconnect(a) => disconnect(client, a).await,
        NetworkCommand::Prune(a) => prune(client, a).await,
    }
}

/// A CIDR as Go's net.ParseCIDR takes it: the address and its network
/// (host bits cleared), IPv4 or IPv6.
fn parse_cidr(s: &str) -> Option<(IpAddr, IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = p.parse().ok()?;
    let net = match ip {
        IpAddr::V4(v4) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        _ => return None,
    };
    Some((ip, net, prefix))
}

/// Whether `ip` is inside `net/prefix` (families must match).
fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(i) & mask == u32::from(n)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(i) & mask == u128::from(n)
        }
        _ => false,
    }
}

/// The docker CLI's subnetMatches: whether `data` (an address or a CIDR,
/// whose own address is taken) lies inside `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let (_, net, prefix) =
        parse_cidr(subnet).ok_or(format!("invalid subnet: invalid CIDR address: {subnet}"))?;
    let ip = if data.contains('/') {
        parse_cidr(data)
            .ok_or(format!("invalid CIDR address: {data}"))?
            .0
    } else {
        match data.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(false),
        }
    };
    Ok(cidr_contains(net, prefix, ip))
}

/// The IPAM Config list the docker CLI builds from `--subnet`,
/// `--ip-range` and `--gateway`, with its checks and messages (exit 1).
pub fn ipam_config(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
) -> Result<Vec<Value>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for s in subnets {
        for (k, _, _) in &configs {
            if subnet_matches(s, k)? || subnet_matches(k, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        configs.push((s.clone(), None, None));
    }
    for (what, list) in [("range", ranges), ("gateway", gateways)] {
        for r in list {
            let mut matched = false;
            for c in configs.iter_mut() {
                if !subnet_matches(&c.0, r)? {
                    continue;
                }
                let slot = if what == "range" { &mut c.1 } else { &mut c.2 };
                if let Some(prev) = slot {
                    return Err(if what == "range" {
                        format!(
                            "cannot configure multiple ranges ({r}, {prev}) on the same subnet ({})",
                            c.0
                        )
                    } else {
                        format!(
                            "cannot configure multiple gateways ({r}, {prev}) for the same subnet ({})",
                            c.0
                        )
                    });
                }
                *slot = Some(r.clone());
                matched = true;
            }
            if !matched {
                return Err(format!("no matching subnet for {what} {r}"));
            }
        }
    }
    Ok(configs
        .into_iter()
        .map(|(s, r, g)| {
            let mut m = Map::new();
            m.insert("Subnet".into(), json!(s));
            if let Some(r) = r {
                m.insert("IPRange".into(), json!(r));
            }
            if let Some(g) = g {
                m.insert("Gateway".into(), json!(g));
            }
            Value::Object(m)
        })
        .collect())
}

/// `KEY=VALUE` flags as a map (a bare KEY has an empty value), as the
/// docker CLI's MapOpts.
fn kv_map(flags: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for o in flags {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
        m.insert(k.to_string(), json!(v));
    }
    m
}

/// The `POST /networks/create` body, as the docker 28 CLI sends it.
pub fn create_body(args: &CreateArgs) -> Result<Value, CliError> {
    let labels = labels(&args.label)?;
    if args.ipv6 {
        return Err(exit1(CliError::engine(
            "pier supports IPv4 networks only: --ipv6 cannot be used; leave it out",
        )));
    }
    let config = ipam_config(&args.subnet, &args.ip_range, &args.gateway)
        .map_err(|e| exit1(CliError::engine(e)))?;
    Ok(json!({
        "Driver": args.driver,
        "Scope": "",
        "IPAM": {"Driver": args.ipam_driver, "Options": {}, "Config": config},
        "Internal": args.internal,
        "Attachable": args.attachable,
        "Ingress": false,
        "ConfigOnly": false,
        "ConfigFrom": null,
        "Options": kv_map(&args.opt),
        "Labels": labels,
        "Name": args.name,
    }))
}

async fn create(client: &Client, args: CreateArgs) -> Result<i32, CliError> {
    let body = create_body(&args)?;
    let resp = client
        .send(Method::POST, "/networks/create", full(body.to_string()))
        .await
        .map_err(exit1)?;
    let v: Value = crate::client::read_json(resp).await.map_err(exit1)?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("{w}");
    }
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

/// Go's json.Indent of API documents gathered in an array, with 4-space
/// indentation, as docker's inspect prints them: keys stay in the order
/// the daemon sent them (serde_json's Value would sort them).
pub fn indent_array(docs: &[Vec<u8>]) -> String {
    if docs.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[");
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n    ");
        indent_into(&String::from_utf8_lossy(d), 1, &mut out);
    }
    out.push_str("\n]");
    out
}

/// JSON text without the whitespace outside its strings.
fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in src.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn indent_into(src: &str, base: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        for _ in 0..level {
            out.push_str("    ");
        }
    };
    let chars: Vec<char> = src.chars().collect();
    let mut level = base;
    let mut i = 0;
    let mut in_str = false;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == close {
                    out.push(close);
                    i = j;
                } else {
                    level += 1;
                    newline(out, level);
                }
            }
            '}' | ']' => {
                level = level.saturating_sub(1);
                newline(out, level);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
}

async fn inspect(client: &Client, args: InspectArgs) -> Result<i32, CliError> {
    use http_body_util::BodyExt;
    let template = match args.format.as_deref() {
        Some(f) if !f.is_empty() && f != "json" => {
            Some(Template::parse(f).map_err(|e| exit1(CliError::engine(e)))?)
        }
        _ => None,
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut errors = Vec::new();
    for name in &args.networks {
        let mut path = format!("/networks/{}", encode(name));
        if args.verbose {
            path.push_str("?verbose=true");
        }
        let resp = match client.send(Method::GET, &path, empty()).await {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.message);
                continue;
            }
        };
        match resp.into_body().collect().await {
            Ok(b) => found.push(b.to_bytes().to_vec()),
            Err(e) => errors.push(format!("reading network {name}: {e}")),
        }
    }
    let values = || -> Result<Vec<Value>, CliError> {
        found
            .iter()
            .map(|d| {
                serde_json::from_slice(d).map_err(|e| {
                    exit1(CliError::engine(format!(
                        "the daemon's network document: {e}"
                    )))
                })
            })
            .collect()
    };
    match (&template, args.format.as_deref()) {
        (Some(t), _) => {
            let mut out = std::io::stdout().lock();
            for v in values()? {
                let line = t.render(&v).map_err(|e| exit1(CliError::engine(e)))?;
                let _ = writeln!(out, "{line}");
            }
        }
        (None, Some("json")) => {
            values()?; // only well-formed documents, as docker
            let docs: Vec<String> = found
                .iter()
                .map(|d| compact(&String::from_utf8_lossy(d)))
                .collect();
            println!("[{}]", docs.join(","));
        }
        (None, _) => println!("{}", indent_array(&found)),
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(i32::from(!errors.is_empty()))
}

async fn rm(client: &Client, args: RmArgs) -> Result<i32, CliError> {
    let mut failed = false;
    for name in &args.networks {
        match client
            .call(Method::DELETE, &format!("/networks/{}", encode(name)))
            .await
        {
            Ok(_) => println!("{name}"),
            // As docker: -f makes a missing network no error.
            Err(e) if args.force && e.status == Some(404) => {}
            Err(e) => {
                eprintln!("{}", e.message);
                failed = true;
            }
        }
    }
    if failed {
        // The docker CLI's closing line for a partly failed rm.
        eprintln!("exit status 1");
    }
    Ok(i32::from(failed))
}

/// The `POST /networks/{id}/connect` body, as the docker 28 CLI sends it.
pub fn connect_body(args: &ConnectArgs) -> Result<Value, CliError> {
    if args.ip6.is_some() {
        return Err(exit1(CliError::engine(
            "pier supports IPv4 networks only: --ip6 cannot be used; leave it out",
        )));
    }
    let mut ep = Map::new();
    // As docker: IPAMConfig always there, empty without --ip.
    ep.insert(
        "IPAMConfig".into(),
        match &args.ip {
            Some(ip) => json!({ "IPv4Address": ip }),
            None => json!({}),
        },
    );
    if !args.alias.is_empty() {
        ep.insert("Aliases".into(), json!(args.alias));
    }
    ep.insert("DriverOpts".into(), Value::Object(kv_map(&args.driver_opt)));
    Ok(json!({"Container": args.container, "EndpointConfig": ep}))
}

async fn connect(client: &Client, args: ConnectArgs) -> Result<i32, CliError> {
    let body = connect_body(&args)?;
    let path = format!("/networks/{}/connect", encode(&args.network));
    client
        .send(Method::POST, &path, full(body.to_string()))
        .await
        .map_err(exit1)?;
    Ok(0)
}

async fn disconnect(client: &Client, args: DisconnectArgs) -> Result<i32, CliError> {
    let body = json!({"Container": args.container, "Force": args.force});
    let path = format!("/networks/{}/disconnect", encode(&args.network));
    client
        .send(Method::POST, &path, full(body.to_string()))
        .await
        .map_err(exit1)?;
    Ok(0)
}

/// The prompt `network prune` shows without `-f` (docker 28's text).
pub const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ";

/// What `network prune` prints for the daemon's answer (docker's text;
/// nothing when nothing went).
pub fn prune_report(v: &Value) -> String {
    let mut out = String::new();
    if let Some(names) = v["NetworksDeleted"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("Deleted Networks:\n");
        for n in names {
            out.push_str(n.as_str().unwrap_or_default());
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

async fn prune(client: &Client, args: PruneArgs) -> Result<i32, CliError> {
    let q = ls::filters(&args.filter, "--filter")?;
    if !args.force && !super::prune::ask(PRUNE_WARNING) {
        return Ok(0);
    }
    let v = super::prune::post(client, "networks", &q).await?;
    print!("{}", prune_report(&v));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: clap::Args>(argv: &[&str]) -> T {
        #[derive(clap::Parser)]
        struct P<A: clap::Args> {
            #[command(flatten)]
            a: A,
        }
        let mut all = vec!["x"];
        all.extend_from_slice(argv);
        <P<T> as clap::Parser>::try_parse_from(all).unwrap().a
    }

    #[test]
    fn create_body_as_the_docker_cli_sends_it() {
        // As docker 28 (captured from its request).
        assert_eq!(
            create_body(&parse(&["n0"])).unwrap(),
            json!({"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[]},
                   "Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,
                   "ConfigFrom":null,"Options":{},"Labels":{},"Name":"n0"})
        );
        let b = create_body(&parse(&[
            "-d",
            "bridge",
            "--subnet",
            "10.9.0.0/24",
            "--gateway",
            "10.9.0.1",
            "--ip-range",
            "10.9.0.128/25",
            "--internal",
            "--attachable",
            "--label",
            "a=b",
            "--label",
            "c",
            "-o",
            "com.docker.network.bridge.name=br9",
            "--opt",
            "x",
            "n1",
        ]))
        .unwrap();
        assert_eq!(
            b,
            json!({"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},
                   "Config":[{"Subnet":"10.9.0.0/24","IPRange":"10.9.0.128/25","Gateway":"10.9.0.1"}]},
                   "Internal":true,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,
                   "Options":{"com.docker.network.bridge.name":"br9","x":""},"Labels":{"a":"b","c":""},"Name":"n1"})
        );
        let e = create_body(&parse(&["--ipv6", "n"])).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.message.contains("IPv4 networks only"), "{}", e.message);
        let e = create_body(&parse(&["--label", "a b", "n"])).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.code),
            (
                "invalid argument \"a b\" for \"--label\" flag: label 'a b' contains whitespaces",
                125
            )
        );
    }

    #[test]
    fn ipam_flags_checked_as_the_docker_cli() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ipam_config(&s(&["10.9.0.0/24", "10.8.0.0/24"]), &[], &s(&["10.8.0.1"])).unwrap(),
            vec![
                json!({"Subnet": "10.9.0.0/24"}),
                json!({"Subnet": "10.8.0.0/24", "Gateway": "10.8.0.1"})
            ]
        );
        for (subnets, ranges, gateways, want) in [
            (
                &[][..],
                &[][..],
                &["10.1.1.1"][..],
                "every ip-range or gateway must have a corresponding subnet",
            ),
            (
                &["10.1.1.0/24"],
                &[],
                &["10.2.1.1"],
                "no matching subnet for gateway 10.2.1.1",
            ),
            (
                &["10.1.1.0/24"],
                &[],
                &["nonsense"],
                "no matching subnet for gateway nonsense",
            ),
            (
                &["10.1.1.0/24", "10.1.0.0/16"],
                &[],
                &[],
                "multiple overlapping subnet configuration is not supported",
            ),
            (
                &["10.1.1.0/24", "10.1.0.0/33"],
                &[],
                &[],
                "invalid subnet: invalid CIDR address: 10.1.0.0/33",
            ),
            (
                &["10.1.1.0/24"],
                &["10.2.0.0/25"],
                &[],
                "no matching subnet for range 10.2.0.0/25",
            ),
            (
                &["10.1.1.0/24"],
                &["10.1.1.0/2x"],
                &[],
                "invalid CIDR address: 10.1.1.0/2x",
            ),
            (
                &["10.1.0.0/16", "10.2.0.0/16"],
                &[],
                &["10.1.0.1", "10.1.0.2"],
                "cannot configure multiple gateways (10.1.0.2, 10.1.0.1) for the same subnet (10.1.0.0/16)",
            ),
        ] {
            assert_eq!(
                ipam_config(&s(subnets), &s(ranges), &s(gateways)).unwrap_err(),
                want,
                "{subnets:?} {ranges:?} {gateways:?}"
            );
        }
        // A single subnet is the daemon's to check, as docker.
        assert_eq!(
            ipam_config(&s(&["10.1.1.0/33"]), &[], &[]).unwrap(),
            vec![json!({"Subnet": "10.1.1.0/33"})]
        );
    }

    #[test]
    fn a_bad_second_subnet_is_found_when_compared() {
        // As docker: subnetMatches parses the subnet it compares first.
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ipam_config(&s(&["10.1.0.0/16", "bad"]), &[], &[]).unwrap_err(),
            "invalid subnet: invalid CIDR address: bad"
        );
    }

    #[test]
    fn connect_body_as_the_docker_cli_sends_it() {
        assert_eq!(
            connect_body(&parse(&[
                "--alias", "a", "--alias", "b", "--ip", "10.9.0.5", "n1", "c1"
            ]))
            .unwrap(),
            json!({"Container": "c1", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.9.0.5"},
                   "Aliases": ["a", "b"], "DriverOpts": {}}})
        );
        assert_eq!(
            connect_body(&parse(&["n1", "c1"])).unwrap(),
            json!({"Container": "c1", "EndpointConfig": {"IPAMConfig": {}, "DriverOpts": {}}})
        );
        assert_eq!(
            connect_body(&parse(&["--ip6", "::1", "n1", "c1"]))
                .unwrap_err()
                .code,
            1
        );
    }

    #[test]
    fn inspect_indents_as_go_keeping_the_daemons_key_order() {
        let doc = br#"{"Name":"nA","Id":"f6","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.99.1.0/24"}]},"Containers":{},"Labels":{"a":"b, c:d"},"X":[],"Y":"q\"{,:"}"#;
        assert_eq!(
            indent_array(&[doc.to_vec()]),
            r#"[
    {
        "Name": "nA",
        "Id": "f6",
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
                {
                    "Subnet": "10.99.1.0/24"
                }
            ]
        },
        "Containers": {},
        "Labels": {
            "a": "b, c:d"
        },
        "X": [],
        "Y": "q\"{,:"
    }
]"#
        );
        assert_eq!(indent_array(&[]), "[]");
        assert_eq!(
            compact("{ \"a\" : [1, 2],\n \"b\": \"x \\\" y\" }\n"),
            "{\"a\":[1,2],\"b\":\"x \\\" y\"}"
        );
        assert_eq!(
            indent_array(&[b"{\"a\":1}\n".to_vec(), b"{}".to_vec()]),
            "[\n    {\n        \"a\": 1\n    },\n    {}\n]"
        );
    }

    #[test]
    fn prune_prints_dockers_report() {
        assert_eq!(
            prune_report(&json!({"NetworksDeleted": ["n1", "n2"]})),
            "Deleted Networks:\nn1\nn2\n\n"
        );
        assert_eq!(prune_report(&json!({"NetworksDeleted": null})), "");
        assert_eq!(prune_report(&json!({"NetworksDeleted": []})), "");
        assert!(PRUNE_WARNING.ends_with("[y/N] "));
    }
}
