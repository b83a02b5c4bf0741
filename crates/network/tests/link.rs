//! pier-network's netns and link modules against the real kernel, inside
//! throwaway network namespaces: a "host" namespace holding the bridges
//! (so the real host is never touched) and "container" namespaces, all
//! under a temporary directory and removed by Drop guards.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use pier_network::link::{self, Attachment, Bridge};
use pier_network::netns;
use serde_json::Value;

/// A network namespace mounted on a file in its own temporary directory;
/// unmounted and removed on drop.
struct Ns {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ns {
    fn new(name: &str) -> Ns {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        netns::create(&path).unwrap();
        Ns { path, _dir: dir }
    }

    /// Runs `f` inside; panics inside are re-raised here.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        netns::run_in(&self.path, f).unwrap()
    }

    /// `ip -j ARGS` run inside, parsed.
    fn ip(&self, args: &[&str]) -> Value {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.run(move || ip_json(&args))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = netns::remove(&self.path);
    }
}

/// `ip -j ARGS` in the caller's namespace (the child inherits the calling
/// thread's), parsed.
fn ip_json(args: &[String]) -> Value {
    let out = Command::new("ip").arg("-j").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Null; // a command that prints nothing (add, flush)
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

fn link_names(ns: &Ns) -> Vec<String> {
    ns.ip(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

/// IPv4 `address/prefix` strings on a device.
fn addresses(ns: &Ns, dev: &str) -> Vec<String> {
    let v = ns.ip(&["-4", "addr", "show", "dev", dev]);
    // `ip -4` leaves addr_info out when there is no IPv4 address.
    v[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn suffix() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}

fn bridge(name: &str, gateway: [u8; 4], prefix: u8) -> Bridge {
    Bridge {
        name: name.to_string(),
        gateway: Ipv4Addr::from(gateway),
        prefix,
        mtu: None,
    }
}

fn attachment(br: &str, ns: &Ns, address: [u8; 4], gateway: Option<[u8; 4]>) -> Attachment {
    let address = Ipv4Addr::from(address);
    let o = address.octets();
    Attachment {
        bridge: br.to_string(),
        host_ifname: link::host_ifname(),
        netns: ns.path.clone(),
        ifname: "eth0".to_string(),
        mac: [0x02, 0x42, o[0], o[1], o[2], o[3]],
        address,
        prefix: 24,
        gateway: gateway.map(Ipv4Addr::from),
        mtu: None,
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_str().unwrap();
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

#[test]
fn netns_create_gives_a_separate_namespace_with_lo_up_and_remove_unmounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns");
    netns::create(&path).unwrap();
    let ns = Ns {
        path: path.clone(),
        _dir: dir,
    };
    assert!(is_mounted(&path));
    let mine = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
    let theirs = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        mine.ino(),
        theirs.ino(),
        "a new namespace, not the caller's"
    );
    let inside = ns.run(|| std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino());
    assert_eq!(inside, theirs.ino(), "run_in joins it");
    // The caller's thread stays where it was.
    let after = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
    assert_eq!(after.ino(), mine.ino());

    assert_eq!(link_names(&ns), ["lo"]);
    let lo = ns.ip(&["link", "show", "lo"]);
    let flags: Vec<&str> = lo[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(flags.contains(&"UP"), "lo is up: {flags:?}");

    let again = netns::create(&path).unwrap_err().to_string();
    assert!(again.contains(path.to_str().unwrap()), "{again}");

    netns::remove(&path).unwrap();
    assert!(!is_mounted(&path));
    assert!(!path.exists());
    netns::remove(&path).unwrap();
    assert!(netns::run_in(&path, || ()).is_err());
}

#[test]
fn run_in_returns_the_value_and_rethrows_panics() {
    let ns = Ns::new("ns");
    assert_eq!(ns.run(|| 41 + 1), 42);
    let path = ns.path.clone();
    let caught = std::panic::catch_unwind(move || {
        let _ = netns::run_in(&path, || panic!("inside"));
    });
    assert!(caught.is_err());
}

#[test]
fn host_ifname_is_veth_and_seven_hex_digits() {
    for _ in 0..50 {
        let n = link::host_ifname();
        assert_eq!(n.len(), 11, "{n}");
        assert!(n.starts_with("veth"), "{n}");
        assert!(n[4..].chars().all(|c| c.is_ascii_hexdigit()), "{n}");
    }
    assert_ne!(link::host_ifname(), link::host_ifname());
}

#[test]
fn ensure_bridge_twice_is_fine_and_delete_bridge_of_a_missing_one_too() {
    let host = Ns::new("host");
    let name = format!("pt-{}", suffix());
    let br = bridge(&name, [10, 200, 1, 1], 24);
    let (b, n) = (br.clone(), name.clone());
    host.run(move || {
        assert!(!link::exists(&n).unwrap());
        link::ensure_bridge(&b).unwrap();
        assert!(link::exists(&n).unwrap());
        link::ensure_bridge(&b).unwrap();
    });
    assert_eq!(addresses(&host, &name), ["10.200.1.1/24"]);
    let v = host.ip(&["-d", "link", "show", &name]);
    assert_eq!(v[0]["linkinfo"]["info_kind"], "bridge");
    assert!(v[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));

    // A bridge that lost its address (or was made by hand) gets it back.
    host.run({
        let n = name.clone();
        move || {
            ip_json(&["addr".into(), "flush".into(), "dev".into(), n.clone()]);
        }
    });
    assert!(addresses(&host, &name).is_empty());
    let b = br.clone();
    host.run(move || link::ensure_bridge(&b).unwrap());
    assert_eq!(addresses(&host, &name), ["10.200.1.1/24"]);

    // Re-addressed (a new --bip): the old address goes, as docker's
    // bridge driver removes it, so the old subnet is no longer routed.
    let b = bridge(&name, [10, 201, 0, 1], 16);
    host.run(move || link::ensure_bridge(&b).unwrap());
    assert_eq!(addresses(&host, &name), ["10.201.0.1/16"]);
    let routes = host.ip(&["-4", "route", "show", "dev", &name]);
    let dsts: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["dst"].as_str())
        .collect();
    assert_eq!(dsts, ["10.201.0.0/16"]);

    let n = name.clone();
    host.run(move || {
        link::delete_bridge(&n).unwrap();
        assert!(!link::exists(&n).unwrap());
        link::delete_bridge(&n).unwrap();
    });
}

#[test]
fn ensure_bridge_sets_the_mtu() {
    let host = Ns::new("host");
    let name = format!("pt-{}", suffix());
    let mut br = bridge(&name, [10, 200, 2, 1], 24);
    br.mtu = Some(1400);
    host.run(move || link::ensure_bridge(&br).unwrap());
    let v = host.ip(&["link", "show", &name]);
    assert_eq!(v[0]["mtu"], 1400);
}

#[test]
fn ensure_bridge_refuses_a_device_that_is_not_a_bridge() {
    let host = Ns::new("host");
    let name = format!("pt-{}", suffix());
    let n = name.clone();
    let err = host.run(move || {
        ip_json(&[
            "link".into(),
            "add".into(),
            n.clone(),
            "type".into(),
            "veth".into(),
            "peer".into(),
            "name".into(),
            format!("{n}p"),
        ]);
        link::ensure_bridge(&bridge(&n, [10, 200, 3, 1], 24))
            .unwrap_err()
            .to_string()
    });
    assert!(err.contains(&name) && err.contains("not a bridge"), "{err}");
}

#[test]
fn bad_device_names_are_refused() {
    let err = link::ensure_bridge(&bridge("this-name-is-too-long", [10, 200, 4, 1], 24))
        .unwrap_err()
        .to_string();
    assert!(err.contains("this-name-is-too-long"), "{err}");
    assert!(link::ensure_bridge(&bridge("a/b", [10, 200, 4, 1], 24)).is_err());
    assert!(!link::exists("no such/device").unwrap());
}

#[test]
fn attach_puts_eth0_with_its_address_mac_and_route_in_the_container() {
    let host = Ns::new("host");
    let c = Ns::new("c");
    let br = format!("pt-{}", suffix());
    let mut a = attachment(&br, &c, [10, 200, 5, 2], Some([10, 200, 5, 1]));
    a.mtu = Some(1450);
    let (b, at) = (bridge(&br, [10, 200, 5, 1], 24), a.clone());
    host.run(move || {
        link::ensure_bridge(&b).unwrap();
        link::attach(&at).unwrap();
        assert!(link::exists(&at.host_ifname).unwrap());
        assert!(
            !link::exists("eth0").unwrap(),
            "the peer is not in the host"
        );
    });

    // Container side.
    assert_eq!(addresses(&c, "eth0"), ["10.200.5.2/24"]);
    let l = c.ip(&["link", "show", "eth0"]);
    assert_eq!(l[0]["address"], "02:42:0a:c8:05:02");
    assert_eq!(l[0]["mtu"], 1450);
    assert!(l[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let routes = c.ip(&["-4", "route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], "10.200.5.1", "{routes}");
    assert_eq!(routes[0]["dev"], "eth0");
    let mut names = link_names(&c);
    names.sort();
    assert_eq!(names, ["eth0", "lo"]);

    // Host side: on the bridge, hairpin on, up.
    let h = host.ip(&["-d", "link", "show", &a.host_ifname]);
    assert_eq!(h[0]["master"], br.as_str(), "{h}");
    assert_eq!(h[0]["mtu"], 1450);
    assert_eq!(h[0]["linkinfo"]["info_slave_data"]["hairpin"], true, "{h}");
    assert!(h[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
}

#[test]
fn attach_without_gateway_adds_no_default_route_and_a_second_network_is_eth1() {
    let host = Ns::new("host");
    let c = Ns::new("c");
    let (br1, br2) = (format!("pt-{}", suffix()), format!("pu-{}", suffix()));
    let a1 = attachment(&br1, &c, [10, 200, 6, 2], Some([10, 200, 6, 1]));
    let mut a2 = attachment(&br2, &c, [10, 200, 7, 2], None);
    a2.ifname = "eth1".into();
    let (b1, b2) = (
        bridge(&br1, [10, 200, 6, 1], 24),
        bridge(&br2, [10, 200, 7, 1], 24),
    );
    let (x1, x2) = (a1.clone(), a2.clone());
    host.run(move || {
        link::ensure_bridge(&b1).unwrap();
        link::ensure_bridge(&b2).unwrap();
        link::attach(&x1).unwrap();
        link::attach(&x2).unwrap();
    });
    assert_eq!(addresses(&c, "eth1"), ["10.200.7.2/24"]);
    let routes = c.ip(&["-4", "route", "show", "default"]);
    let routes = routes.as_array().unwrap();
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0]["dev"], "eth0");
}

#[test]
fn two_attachments_on_one_bridge_reach_each_other_and_the_gateway() {
    let host = Ns::new("host");
    let (c1, c2) = (Ns::new("c1"), Ns::new("c2"));
    let br = format!("pt-{}", suffix());
    let a1 = attachment(&br, &c1, [10, 200, 8, 2], Some([10, 200, 8, 1]));
    let a2 = attachment(&br, &c2, [10, 200, 8, 3], Some([10, 200, 8, 1]));
    let b = bridge(&br, [10, 200, 8, 1], 24);
    let (x1, x2) = (a1.clone(), a2.clone());
    host.run(move || {
        link::ensure_bridge(&b).unwrap();
        link::attach(&x1).unwrap();
        link::attach(&x2).unwrap();
    });
    let ping = |ns: &Ns, to: &'static str| {
        ns.run(move || {
            Command::new("busybox")
                .args(["ping", "-c", "1", "-W", "5", to])
                .output()
                .unwrap()
        })
    };
    let out = ping(&c1, "10.200.8.3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ping(&c2, "10.200.8.2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ping(&c2, "10.200.8.1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // After detaching c2, c1 no longer reaches it.
    let h2 = a2.host_ifname.clone();
    host.run(move || link::detach(&h2).unwrap());
    let out = ping(&c1, "10.200.8.3");
    assert!(!out.status.success());
}

#[test]
fn detach_removes_both_ends_and_a_missing_one_is_fine() {
    let host = Ns::new("host");
    let c = Ns::new("c");
    let br = format!("pt-{}", suffix());
    let a = attachment(&br, &c, [10, 200, 9, 2], Some([10, 200, 9, 1]));
    let b = bridge(&br, [10, 200, 9, 1], 24);
    let x = a.clone();
    host.run(move || {
        link::ensure_bridge(&b).unwrap();
        link::attach(&x).unwrap();
        link::detach(&x.host_ifname).unwrap();
        assert!(!link::exists(&x.host_ifname).unwrap());
        link::detach(&x.host_ifname).unwrap();
    });
    assert_eq!(link_names(&c), ["lo"]);
}

#[test]
fn attach_that_fails_inside_the_container_undoes_the_pair() {
    let host = Ns::new("host");
    let c = Ns::new("c");
    let br = format!("pt-{}", suffix());
    // A gateway outside the subnet: the default route cannot be added.
    let a = attachment(&br, &c, [10, 200, 10, 2], Some([10, 201, 0, 1]));
    let b = bridge(&br, [10, 200, 10, 1], 24);
    let x = a.clone();
    let err = host.run(move || {
        link::ensure_bridge(&b).unwrap();
        let err = link::attach(&x).unwrap_err().to_string();
        assert!(!link::exists(&x.host_ifname).unwrap(), "host end deleted");
        err
    });
    assert!(err.contains("10.201.0.1") && err.contains("eth0"), "{err}");
    assert_eq!(link_names(&c), ["lo"]);
}

#[test]
fn attach_to_a_missing_bridge_or_taken_name_fails_cleanly() {
    let host = Ns::new("host");
    let c = Ns::new("c");
    let br = format!("pt-{}", suffix());
    let a = attachment(&br, &c, [10, 200, 11, 2], None);
    let x = a.clone();
    let err = host.run(move || link::attach(&x).unwrap_err().to_string());
    assert!(err.contains(&br), "{err}");

    // eth0 already taken in the container: the second attach fails and
    // leaves no host end behind.
    let b = bridge(&br, [10, 200, 11, 1], 24);
    let first = a.clone();
    let mut second = attachment(&br, &c, [10, 200, 11, 3], None);
    second.host_ifname = link::host_ifname();
    let s = second.clone();
    let err = host.run(move || {
        link::ensure_bridge(&b).unwrap();
        link::attach(&first).unwrap();
        let err = link::attach(&s).unwrap_err().to_string();
        assert!(!link::exists(&s.host_ifname).unwrap());
        err
    });
    assert!(err.contains(&second.host_ifname), "{err}");
    assert_eq!(addresses(&c, "eth0"), ["10.200.11.2/24"]);
}

#[test]
fn works_when_called_from_inside_a_tokio_runtime() {
    let host = Ns::new("host");
    let br = format!("pt-{}", suffix());
    host.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(link::exists("lo").unwrap());
            link::ensure_bridge(&bridge(&br, [10, 200, 12, 1], 24)).unwrap();
            assert!(link::exists(&br).unwrap());
        });
    });
}

#[test]
fn netns_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("ns");
    let err = netns::create(&missing).unwrap_err().to_string();
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(!missing.exists());

    // A plain file is no namespace to join.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    let err = netns::run_in(&plain, || ()).unwrap_err().to_string();
    assert!(err.contains(plain.to_str().unwrap()), "{err}");
    // ... but create reuses it (as `ip netns add` would an empty file).
    netns::create(&plain).unwrap();
    let ns = Ns {
        path: plain.clone(),
        _dir: dir,
    };
    assert!(is_mounted(&ns.path));
}
