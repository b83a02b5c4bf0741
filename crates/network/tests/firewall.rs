//! pier's nftables rules, each test in a throwaway network namespace of its
//! own (a thread that unshares CLONE_NEWNET; the `nft`, `ip` and
//! `iptables` it runs inherit it), so the host's ruleset is never touched.
//! Everything a test makes goes away with its namespace when the thread
//! ends. Traffic goes only to loopback and to addresses on the test's own
//! bridge.

use pier_network::firewall::{self, NetworkRules};
use pier_network::ipam::Subnet;
use pier_network::ports::{Mapping, Proto};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on a thread in a new, empty network namespace (loopback up).
fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = std::thread::spawn(move || {
        unshare_net();
        run("ip", &["link", "set", "lo", "up"]);
        f()
    });
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn unshare_net() {
    // SAFETY: unshare only changes this thread's network namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
}

/// Runs a command, panics with its stderr when it fails, returns stdout.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nft(args: &str) -> String {
    run("nft", &args.split_whitespace().collect::<Vec<_>>())
}

fn ruleset() -> String {
    nft("list ruleset")
}

/// A bridge `name` with `.1` of 10.`octet`.0.0/24, up.
fn bridge(name: &str, octet: u8) -> NetworkRules {
    run("ip", &["link", "add", name, "type", "bridge"]);
    run(
        "ip",
        &["addr", "add", &format!("10.{octet}.0.1/24"), "dev", name],
    );
    run("ip", &["link", "set", name, "up"]);
    NetworkRules {
        bridge: name.to_string(),
        subnet: Subnet {
            addr: Ipv4Addr::new(10, octet, 0, 0),
            prefix: 24,
        },
        internal: false,
    }
}

fn tcp(host_ip: Option<Ipv4Addr>, host_port: u16, container_port: u16) -> Mapping {
    Mapping {
        proto: Proto::Tcp,
        host_ip,
        host_port,
        container_port,
    }
}

fn udp(host_ip: Option<Ipv4Addr>, host_port: u16, container_port: u16) -> Mapping {
    Mapping {
        proto: Proto::Udp,
        ..tcp(host_ip, host_port, container_port)
    }
}

/// The elements of one of the table's maps, as nft prints them.
fn map_elements(bridge: &str, map: &str) -> String {
    let out = nft(&format!("list map ip pier-{bridge} {map}"));
    match out.find("elements = {") {
        Some(i) => out[i..].split('}').next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

fn sysctl(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn setup_twice_is_idempotent_and_keeps_published_ports() {
    in_netns(|| {
        let n = bridge("pbr0", 31);
        firewall::setup_network(&n).unwrap();
        let ip = Ipv4Addr::new(10, 31, 0, 2);
        firewall::add_ports("pbr0", ip, &[tcp(None, 8080, 80)]).unwrap();
        let first = ruleset();
        assert!(first.contains("table ip pier-pbr0"), "{first}");
        assert!(
            first.contains("ip saddr 10.31.0.0/24 oifname != \"pbr0\" masquerade"),
            "{first}"
        );
        assert!(first.contains("tcp . 8080 : 10.31.0.2 . 80"), "{first}");

        firewall::setup_network(&n).unwrap();
        assert_eq!(ruleset(), first);

        assert_eq!(sysctl("net/ipv4/ip_forward"), "1");
        assert_eq!(sysctl("net/ipv4/conf/pbr0/route_localnet"), "1");
        assert_eq!(firewall::tables().unwrap(), vec!["pier-pbr0".to_string()]);
    });
}

#[test]
fn setup_of_an_internal_network_masquerades_and_publishes_nothing() {
    in_netns(|| {
        let mut n = bridge("pbr1", 32);
        firewall::setup_network(&n).unwrap();
        n.internal = true;
        // A second setup replaces the rules: the network is internal now.
        firewall::setup_network(&n).unwrap();
        let r = ruleset();
        assert!(!r.contains("masquerade"), "{r}");
        assert!(!r.contains("dnat"), "{r}");
        assert!(r.contains("iifname \"pbr1\" drop"), "{r}");
        assert!(r.contains("oifname \"pbr1\" drop"), "{r}");
        assert!(
            r.contains("iifname \"pbr1\" oifname \"pbr1\" accept"),
            "{r}"
        );
    });
}

#[test]
fn teardown_removes_everything_and_twice_is_fine() {
    in_netns(|| {
        let n = bridge("pbr2", 33);
        firewall::setup_network(&n).unwrap();
        firewall::add_ports("pbr2", Ipv4Addr::new(10, 33, 0, 2), &[tcp(None, 80, 80)]).unwrap();
        firewall::teardown_network("pbr2").unwrap();
        assert_eq!(ruleset().trim(), "");
        assert!(firewall::tables().unwrap().is_empty());
        firewall::teardown_network("pbr2").unwrap();
        // Withdrawing ports of a network already gone is fine too.
        firewall::remove_ports("pbr2", Ipv4Addr::new(10, 33, 0, 2), &[tcp(None, 80, 80)]).unwrap();
    });
}

#[test]
fn ports_are_added_to_and_removed_from_the_maps() {
    in_netns(|| {
        let n = bridge("pbr3", 34);
        firewall::setup_network(&n).unwrap();
        let c1 = Ipv4Addr::new(10, 34, 0, 2);
        let c2 = Ipv4Addr::new(10, 34, 0, 3);
        let c1_ports = [
            tcp(None, 8080, 80),
            udp(Some(Ipv4Addr::LOCALHOST), 5353, 53),
        ];
        firewall::add_ports("pbr3", c1, &c1_ports).unwrap();
        firewall::add_ports("pbr3", c2, &[tcp(None, 9090, 90)]).unwrap();
        // Adding the same again is fine.
        firewall::add_ports("pbr3", c1, &c1_ports).unwrap();

        let any = map_elements("pbr3", "ports");
        assert!(any.contains("tcp . 8080 : 10.34.0.2 . 80"), "{any}");
        assert!(any.contains("tcp . 9090 : 10.34.0.3 . 90"), "{any}");
        let host = map_elements("pbr3", "hostports");
        assert!(
            host.contains("127.0.0.1 . udp . 5353 : 10.34.0.2 . 53"),
            "{host}"
        );

        // Another container's address does not withdraw c1's ports.
        firewall::remove_ports("pbr3", c2, &c1_ports).unwrap();
        assert!(map_elements("pbr3", "ports").contains("8080"));

        firewall::remove_ports("pbr3", c1, &c1_ports).unwrap();
        let any = map_elements("pbr3", "ports");
        assert!(!any.contains("8080"), "{any}");
        assert!(any.contains("9090"), "{any}");
        assert_eq!(map_elements("pbr3", "hostports"), "");
        // Removing them twice is fine.
        firewall::remove_ports("pbr3", c1, &c1_ports).unwrap();
        firewall::remove_ports("pbr3", c2, &[tcp(None, 9090, 90)]).unwrap();
        assert_eq!(map_elements("pbr3", "ports"), "");
    });
}

#[test]
fn a_stale_element_for_the_same_host_port_is_replaced() {
    in_netns(|| {
        let n = bridge("pbr4", 35);
        firewall::setup_network(&n).unwrap();
        firewall::add_ports("pbr4", Ipv4Addr::new(10, 35, 0, 2), &[tcp(None, 8080, 80)]).unwrap();
        firewall::add_ports("pbr4", Ipv4Addr::new(10, 35, 0, 3), &[tcp(None, 8080, 80)]).unwrap();
        let any = map_elements("pbr4", "ports");
        assert!(any.contains("tcp . 8080 : 10.35.0.3 . 80"), "{any}");
        assert!(!any.contains("10.35.0.2"), "{any}");
    });
}

#[test]
fn dockerd_forward_drop_policy_gets_pier_accept_rules_until_teardown() {
    in_netns(|| {
        // What dockerd (iptables-nft) leaves: ip filter FORWARD, policy drop.
        run("iptables", &["-P", "FORWARD", "DROP"]);
        run(
            "iptables",
            &["-A", "FORWARD", "-i", "docker0", "-j", "ACCEPT"],
        );
        let n = bridge("pbr5", 36);
        firewall::setup_network(&n).unwrap();
        firewall::setup_network(&n).unwrap();
        // iptables still reads its table (no nft-only expressions in it).
        let s = run("iptables", &["-S", "FORWARD"]);
        let ours: Vec<&str> = s.lines().filter(|l| l.contains("pier-pbr5")).collect();
        assert_eq!(
            ours,
            [
                "-A FORWARD -o pbr5 -m comment --comment pier-pbr5 -j ACCEPT",
                "-A FORWARD -i pbr5 -m comment --comment pier-pbr5 -j ACCEPT",
            ],
            "{s}"
        );
        assert!(s.contains("-A FORWARD -i docker0 -j ACCEPT"), "{s}");

        firewall::teardown_network("pbr5").unwrap();
        let s = run("iptables", &["-S", "FORWARD"]);
        assert!(!s.contains("pbr5"), "{s}");
        assert!(s.contains("-P FORWARD DROP"), "{s}");
        assert!(s.contains("-A FORWARD -i docker0 -j ACCEPT"), "{s}");
        assert!(firewall::tables().unwrap().is_empty());
    });
}

/// `nft -j -f -` with `cmds`.
fn nft_json(cmds: serde_json::Value) {
    let mut c = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(
            serde_json::json!({ "nftables": cmds })
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert!(c.wait().unwrap().success());
}

#[test]
fn foreign_forward_chains_get_rules_only_when_they_drop() {
    in_netns(|| {
        // `fwd` is a keyword of nft's text syntax: a name only JSON takes.
        nft_json(serde_json::json!([
            {"add": {"table": {"family": "ip", "name": "other"}}},
            {"add": {"chain": {"family": "ip", "table": "other", "name": "fwd",
                "type": "filter", "hook": "forward", "prio": 10, "policy": "drop"}}},
            {"add": {"table": {"family": "inet", "name": "open"}}},
            {"add": {"chain": {"family": "inet", "table": "open", "name": "forward",
                "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}},
        ]));
        let n = bridge("pbr6", 37);
        firewall::setup_network(&n).unwrap();
        let other = nft("list table ip other");
        assert!(
            other.contains("iifname \"pbr6\" accept comment \"pier-pbr6\"")
                && other.contains("oifname \"pbr6\" accept comment \"pier-pbr6\""),
            "{other}"
        );
        let open = nft("list table inet open");
        assert!(!open.contains("pier"), "{open}");
        // tables() lists pier's tables only.
        assert_eq!(firewall::tables().unwrap(), vec!["pier-pbr6".to_string()]);

        firewall::teardown_network("pbr6").unwrap();
        let r = ruleset();
        assert!(!r.contains("pier"), "{r}");
        assert!(
            r.contains("chain fwd") && r.contains("table inet open"),
            "{r}"
        );
    });
}

#[test]
fn errors_say_what_was_being_done() {
    in_netns(|| {
        let e = firewall::add_ports("nobr", Ipv4Addr::new(10, 38, 0, 2), &[tcp(None, 80, 80)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nobr") && e.contains("not set up"), "{e}");

        // The bridge is missing: its route_localnet cannot be set.
        let n = NetworkRules {
            bridge: "nobr".into(),
            subnet: Subnet {
                addr: Ipv4Addr::new(10, 38, 0, 0),
                prefix: 24,
            },
            internal: false,
        };
        let e = firewall::setup_network(&n).unwrap_err().to_string();
        assert!(
            e.starts_with("setting up nftables for network bridge nobr: ")
                && e.contains("route_localnet")
                && e.contains("no such bridge nobr"),
            "{e}"
        );

        // nft refuses (a map of another type is in the way): its message.
        let n = bridge("pbr0", 38);
        nft("add table ip pier-pbr0");
        run(
            "nft",
            &["add map ip pier-pbr0 ports { type ipv4_addr : ipv4_addr; }"],
        );
        let e = firewall::setup_network(&n).unwrap_err().to_string();
        assert!(
            e.starts_with("setting up nftables for network bridge pbr0: ")
                && e.contains("nft: ")
                && e.contains("Error: "),
            "{e}"
        );

        let bad = NetworkRules {
            bridge: "a\"b".into(),
            ..n
        };
        let e = firewall::setup_network(&bad).unwrap_err().to_string();
        assert!(e.contains("invalid bridge name"), "{e}");
    });
}

/// A "container": a thread in a namespace of its own, joined to `bridge`
/// by a veth pair (`h<veth>` on the bridge, `c<veth>` inside with
/// 10.`octet`.0.`host`/24, default route via .1), running `f` there.
fn container<T: Send + 'static>(
    bridge: &str,
    veth: &str,
    octet: u8,
    host: u8,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let (tid_tx, tid_rx) = mpsc::channel::<i32>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let inner = format!("c{veth}");
    let outer = format!("h{veth}");
    let dev = inner.clone();
    let h = std::thread::spawn(move || {
        unshare_net();
        run("ip", &["link", "set", "lo", "up"]);
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        go_rx.recv().unwrap();
        let addr = format!("10.{octet}.0.{host}/24");
        run("ip", &["addr", "add", &addr, "dev", &dev]);
        run("ip", &["link", "set", &dev, "up"]);
        let gw = format!("10.{octet}.0.1");
        run("ip", &["route", "add", "default", "via", &gw]);
        f()
    });
    let tid = tid_rx.recv().unwrap().to_string();
    run(
        "ip",
        &[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ],
    );
    run("ip", &["link", "set", &inner, "netns", &tid]);
    run("ip", &["link", "set", &outer, "master", bridge, "up"]);
    // As docker (with its userland proxy off) and pier's link::attach: a
    // container's packets DNATed back to itself leave through the port
    // they came in on (br_netfilter DNATs them on the bridge).
    run(
        "ip",
        &[
            "link",
            "set",
            &outer,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ],
    );
    go_tx.send(()).unwrap();
    h
}

/// Connects to `addr` and returns what the server says (the address it
/// saw the connection come from).
fn ask(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut from = String::new();
    s.read_to_string(&mut from)?;
    Ok(from)
}

/// Answers `n` connections on port 80 with the peer's address.
fn serve(l: TcpListener, n: usize) {
    for _ in 0..n {
        let (mut s, peer) = l.accept().unwrap();
        s.write_all(peer.ip().to_string().as_bytes()).unwrap();
    }
}

#[test]
fn a_port_published_on_every_address_is_reachable_on_localhost() {
    in_netns(|| {
        let n = bridge("pbr7", 39);
        firewall::setup_network(&n).unwrap();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let server = container("pbr7", "v7", 39, 2, move || {
            let l = TcpListener::bind("0.0.0.0:80").unwrap();
            ready_tx.send(()).unwrap();
            serve(l, 2);
        });
        ready_rx.recv().unwrap();

        let ports = [
            tcp(None, 8080, 80),
            tcp(Some(Ipv4Addr::LOCALHOST), 8081, 80),
        ];
        firewall::add_ports("pbr7", Ipv4Addr::new(10, 39, 0, 2), &ports).unwrap();
        for port in [8080, 8081] {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let from = ask(addr).unwrap_or_else(|e| panic!("{addr}: {e}\n{}", ruleset()));
            // Masqueraded to the bridge's address.
            assert_eq!(from, "10.39.0.1", "via {addr}");
        }
        server.join().unwrap();
        firewall::remove_ports("pbr7", Ipv4Addr::new(10, 39, 0, 2), &ports).unwrap();
    });
}

#[test]
fn other_networks_reach_a_container_only_through_its_published_port() {
    in_netns(|| {
        let a = bridge("pbr8", 40);
        let b = bridge("pbr9", 41);
        firewall::setup_network(&a).unwrap();
        firewall::setup_network(&b).unwrap();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (hairpin_tx, hairpin_rx) = mpsc::channel::<String>();
        let server = container("pbr8", "v8", 40, 2, move || {
            let l = TcpListener::bind("0.0.0.0:80").unwrap();
            ready_tx.send(()).unwrap();
            // The client on the other network, once.
            serve(l.try_clone().unwrap(), 1);
            // Hairpin: the container reaches itself through the host's
            // address and its published port (the kernel completes the
            // handshake before accept).
            let addr = SocketAddr::from((Ipv4Addr::new(10, 40, 0, 1), 8080));
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
            serve(l, 1);
            let mut from = String::new();
            s.read_to_string(&mut from).unwrap();
            hairpin_tx.send(from).unwrap();
        });
        ready_rx.recv().unwrap();
        firewall::add_ports("pbr8", Ipv4Addr::new(10, 40, 0, 2), &[tcp(None, 8080, 80)]).unwrap();

        let client = container("pbr9", "v9", 41, 2, || {
            // Straight to the container: isolated (dropped).
            let direct = ask(SocketAddr::from((Ipv4Addr::new(10, 40, 0, 2), 80)));
            // Through the published port on the host's address (prerouting).
            let published = ask(SocketAddr::from((Ipv4Addr::new(10, 40, 0, 1), 8080)));
            (
                direct.map_err(|e| e.kind()),
                published.map_err(|e| e.to_string()),
            )
        });
        let (direct, published) = client.join().unwrap();
        // Dropped, not refused: nothing answers.
        assert_eq!(
            direct.map(|_| ()),
            Err(std::io::ErrorKind::TimedOut),
            "isolation: 10.40.0.2:80 from another network"
        );
        // Masqueraded on its way out of its own network.
        assert_eq!(published, Ok("10.40.0.1".to_string()), "{}", ruleset());
        assert_eq!(hairpin_rx.recv().unwrap(), "10.40.0.1");
        server.join().unwrap();
    });
}
