//! The pier CLI's network side checked against docker itself: `pier -H`
//! pointed at a private dockerd (no default bridge, no iptables), beside
//! the docker CLI on the same daemon. `pier network ...` must print what
//! `docker network ...` prints, and `pier create` with network flags must
//! leave dockerd with the configuration `docker create` leaves (what the
//! daemon got is what the CLI sent). No traffic is sent anywhere. Skipped
//! without docker. End-to-end networking against pierd is in network*.rs.

use pier_testutil::dockerd::{ensure, Dockerd};
use pier_testutil::net::TestNet;
use pier_testutil::PierEnv;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

struct Peers {
    // Dropped first: the networks' bridges go, then dockerd stops before
    // the directory goes.
    bridges: Bridges,
    dockerd: Dockerd,
    env: PierEnv,
}

/// The bridge devices dockerd made for the test's networks (br- and the
/// first 12 hex digits of the id), deleted on drop whatever happened; and
/// the subnet lock.
struct Bridges {
    ids: std::cell::RefCell<Vec<String>>,
    net: TestNet,
}

impl Drop for Bridges {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = Command::new("ip")
                .args(["link", "del", &format!("br-{}", &id[..12.min(id.len())])])
                .stderr(std::process::Stdio::null())
                .status();
        }
        self.net.remove(Path::new("/nonexistent"));
    }
}

fn peers() -> Option<Peers> {
    if !ensure(&["dockerd", "docker"], "docker.io") {
        pier_testutil::skip(
            "dockerd/docker not installed (apt-get install docker.io, or set PIER_TEST_INSTALL_DOCKER=1)",
        );
        return None;
    }
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    let dockerd = match Dockerd::start(env.dir.path()) {
        Ok(d) => d,
        Err(why) => {
            pier_testutil::skip(&format!("dockerd cannot run on this machine: {why}"));
            return None;
        }
    };
    Some(Peers {
        bridges: Bridges {
            ids: Default::default(),
            net: TestNet::pick(),
        },
        dockerd,
        env,
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Peers {
    fn pier(&self, args: &[&str]) -> Output {
        let mut cmd = self.env.pier();
        cmd.arg("-H")
            .arg(format!("unix://{}", self.dockerd.sock.display()))
            .args(args);
        cmd.output().expect("running pier")
    }

    /// A subnet of the test's own 10.N.0.0/16.
    fn subnet(&self, x: u8) -> String {
        format!("10.{}.{x}.0/24", self.bridges.net.octet)
    }

    /// Records a network id so its bridge goes at the end.
    fn made(&self, id: &str) {
        self.bridges.ids.borrow_mut().push(id.trim().to_string());
    }

    /// Runs the same command with both CLIs and checks they print the same
    /// and exit the same (stderr compared without pier's "pier: " prefix).
    fn same(&self, args: &[&str]) -> String {
        let p = self.pier(args);
        let d = self.dockerd.docker(args);
        assert_eq!(
            text(&p.stdout),
            text(&d.stdout),
            "stdout of pier {args:?} (left) and docker (right) differ; pier stderr: {}",
            text(&p.stderr)
        );
        let first = |o: &Output| {
            let e = text(&o.stderr);
            let l = e.lines().next().unwrap_or("").to_string();
            l.strip_prefix("pier: ").unwrap_or(&l).to_string()
        };
        assert_eq!(first(&p), first(&d), "stderr of pier {args:?} and docker");
        assert_eq!(
            p.status.code(),
            d.status.code(),
            "exit code of pier {args:?} and docker"
        );
        text(&p.stdout)
    }

    fn pier_ok(&self, args: &[&str]) -> String {
        let out = self.pier(args);
        assert!(
            out.status.success(),
            "pier {args:?} against dockerd failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn inspect(&self, what: &str) -> Value {
        let v: Value = serde_json::from_str(&self.dockerd.ok(&["inspect", what])).unwrap();
        v[0].clone()
    }
}

fn is_id(s: &str) -> bool {
    s.trim().len() == 64 && s.trim().bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn network_commands_print_what_docker_prints() {
    let Some(t) = peers() else { return };
    let (sa, sb) = (t.subnet(1), t.subnet(2));
    let gw = sa.replace(".0/24", ".1");
    let range = sa.replace(".0/24", ".128/25");
    let id = t.pier_ok(&[
        "network",
        "create",
        "--subnet",
        &sa,
        "--gateway",
        &gw,
        "--ip-range",
        &range,
        "--internal",
        "--attachable",
        "--label",
        "tier=db",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "cn-a",
    ]);
    t.made(&id);
    assert!(is_id(&id), "network create prints the id: {id:?}");
    let id_b = t.pier_ok(&["network", "create", "--subnet", &sb, "cn-b"]);
    t.made(&id_b);
    let id_c = t.pier_ok(&["network", "create", "-d", "bridge", "cn-10"]);
    t.made(&id_c);
    // What pier sent reached dockerd as docker's body would have.
    let a = t.inspect("cn-a");
    assert_eq!(a["Id"], id.trim());
    assert_eq!(
        a["IPAM"],
        json!({"Driver": "default", "Options": {},
               "Config": [{"Subnet": sa, "IPRange": range, "Gateway": gw}]})
    );
    assert_eq!(
        (&a["Internal"], &a["Attachable"], &a["Driver"]),
        (&json!(true), &json!(true), &json!("bridge"))
    );
    assert_eq!(a["Labels"], json!({"tier": "db"}));
    assert_eq!(
        a["Options"],
        json!({"com.docker.network.driver.mtu": "1400"})
    );

    // Listing and inspecting, byte for byte as docker (natural name order).
    let table = t.same(&["network", "ls"]);
    assert!(
        table.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{table}"
    );
    let names = t.same(&["network", "list", "--format", "{{.Name}}"]);
    let cn: Vec<&str> = names.lines().filter(|n| n.starts_with("cn-")).collect();
    // (As docker's natural order: a digit sorts before a letter.)
    assert_eq!(cn, ["cn-10", "cn-a", "cn-b"]);
    t.same(&["network", "ls", "-q"]);
    t.same(&["network", "ls", "--no-trunc"]);
    t.same(&["network", "ls", "--format", "json"]);
    t.same(&[
        "network",
        "ls",
        "--format",
        "table {{.Name}}\t{{.Labels}}\t{{.Internal}}\t{{.IPv6}}\t{{.CreatedAt}}",
    ]);
    t.same(&["network", "ls", "--format", "{{.Name}} {{.Label \"tier\"}}"]);
    assert_eq!(
        t.same(&[
            "network",
            "ls",
            "-f",
            "label=tier=db",
            "--format",
            "{{.Name}}"
        ]),
        "cn-a\n"
    );
    t.same(&["network", "ls", "-f", "name=cn-1", "-f", "driver=bridge"]);
    t.same(&["network", "ls", "-f", "type=custom", "-q", "--no-trunc"]);
    t.same(&["network", "ls", "-f", "type=builtin"]);
    t.same(&["network", "ls", "-f", &format!("id={}", &id[..12])]);
    // Bad filters: docker's flag message (125), the daemon's refusal (1).
    t.same(&["network", "ls", "-f", "badfilter"]);
    t.same(&["network", "ls", "-f", "nosuch=1"]);
    t.same(&["network", "inspect", "cn-a"]);
    t.same(&["network", "inspect", "cn-a", "cn-b"]);
    t.same(&["network", "inspect", "--format", "json", "cn-b"]);
    t.same(&[
        "network",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Internal}} {{index .Labels \"tier\"}}",
        "cn-a",
        "cn-b",
    ]);
    // A missing network: the found ones printed, docker's error, exit 1.
    let out = t.same(&["network", "inspect", "cn-b", "cn-missing"]);
    assert!(out.contains("\"cn-b\""), "{out}");
    t.same(&["network", "inspect", "cn-missing"]);

    // Refused by the CLI before anything is sent, as docker (exit 1 for
    // the IPAM checks, 125 for a bad label).
    for args in [
        &["network", "create", "--gateway", "10.1.1.1", "cn-x"][..],
        &[
            "network",
            "create",
            "--subnet",
            &sa,
            "--gateway",
            "10.250.1.1",
            "cn-x",
        ],
        &[
            "network",
            "create",
            "--subnet",
            "10.1.1.0/24",
            "--subnet",
            "10.1.0.0/16",
            "cn-x",
        ],
        &["network", "create", "--label", "a b", "cn-x"],
        // The daemon's refusal.
        &["network", "create", "--subnet", "10.1.1.0/33", "cn-x"],
    ] {
        t.same(args);
    }
    let out = t.pier(&["network", "create", "--ipv6", "cn-x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("IPv4 networks only"));
    assert!(!t.dockerd.ok(&["network", "ls"]).contains("cn-x"));

    // rm: each removed name printed, the errors as they come, docker's
    // closing line, exit 1 if any failed.
    let id_d = t.dockerd.ok(&["network", "create", "cn-d"]);
    t.made(&id_d);
    let (p, d) = (
        t.pier(&["network", "rm", "cn-missing", "cn-10"]),
        t.dockerd.docker(&["network", "rm", "cn-missing", "cn-d"]),
    );
    assert_eq!(text(&p.stdout), "cn-10\n");
    assert_eq!(text(&d.stdout), "cn-d\n");
    assert_eq!(text(&p.stderr), text(&d.stderr));
    assert_eq!(
        text(&p.stderr),
        "Error response from daemon: network cn-missing not found\nexit status 1\n"
    );
    assert_eq!((p.status.code(), d.status.code()), (Some(1), Some(1)));
    // -f: a missing network is no error and prints nothing (as docker).
    t.same(&["network", "rm", "-f", "cn-missing"]);
    assert_eq!(t.same(&["network", "remove", "-f", "cn-missing"]), "");

    // prune without -f: docker's question; anything but y keeps everything.
    let mut child = t
        .env
        .pier()
        .arg("-H")
        .arg(format!("unix://{}", t.dockerd.sock.display()))
        .args(["network", "prune"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(t.dockerd.ok(&["network", "ls"]).contains("cn-a"));
    // With a filter, only what it matches goes: docker's report.
    assert_eq!(
        t.pier_ok(&["network", "prune", "-f", "--filter", "label=tier=db"]),
        "Deleted Networks:\ncn-a\n\n"
    );
    let out = t.pier_ok(&["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\ncn-b\n\n");
    // Nothing left to prune: nothing printed, as docker.
    t.same(&["network", "prune", "-f"]);
    assert_eq!(t.pier_ok(&["network", "prune", "-f"]), "");
}

/// The parts of a container's inspect document the network flags fill.
fn network_config(t: &Peers, name: &str) -> Value {
    let v = t.inspect(name);
    let hc = &v["HostConfig"];
    let short = v["Id"].as_str().unwrap_or_default()[..12].to_string();
    let mut nets = v["NetworkSettings"]["Networks"].clone();
    for (_, ep) in nets.as_object_mut().into_iter().flatten() {
        // Per-container values: ids, and the short-id alias dockerd adds.
        for k in ["NetworkID", "EndpointID"] {
            ep.as_object_mut().map(|o| o.remove(k));
        }
        if let Some(a) = ep["Aliases"].as_array_mut() {
            a.retain(|x| x.as_str() != Some(short.as_str()));
        }
    }
    json!({
        "NetworkMode": hc["NetworkMode"],
        "PortBindings": hc["PortBindings"],
        "PublishAllPorts": hc["PublishAllPorts"],
        "Dns": hc["Dns"],
        "DnsSearch": hc["DnsSearch"],
        "DnsOptions": hc["DnsOptions"],
        "ExtraHosts": hc["ExtraHosts"],
        "ExposedPorts": v["Config"]["ExposedPorts"],
        "Networks": nets,
    })
}

#[test]
fn create_network_flags_reach_the_daemon_as_docker_sends_them() {
    let Some(t) = peers() else { return };
    let tar = t.env.dir.path().join("busybox.tar");
    pier_testutil::write_busybox_tar(&tar).unwrap();
    t.dockerd.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    let sa = t.subnet(3);
    let id = t.pier_ok(&["network", "create", "--subnet", &sa, "cf-net"]);
    t.made(&id);
    let id2 = t.pier_ok(&["network", "create", "cf-other"]);
    t.made(&id2);
    let ip = sa.replace(".0/24", ".77");
    let ip2 = sa.replace(".0/24", ".78");

    // (--mac-address is left out: the docker CLI speaks API 1.41 to this
    // dockerd and moves it to Config, pier sends it per endpoint as to
    // API 1.44 and later.)
    let flag_sets: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--network", "none"],
        vec![
            "--network",
            "cf-net",
            "--network-alias",
            "web",
            "--network-alias",
            "www",
            "--ip",
            &ip,
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1::53/udp",
            "-p",
            "9000-9001:9000-9001",
            "-P",
            "--expose",
            "7000-7001",
            "--expose",
            "443",
            "--dns",
            "10.0.0.53",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:10.1.2.3",
            "--add-host",
            "gw:host-gateway",
            "--add-host",
            "v6=[::1]",
        ],
        vec!["--net", "cf-net", "-p", "80"],
        // docker's long syntax.
        vec!["--network", "name=cf-net,alias=lx,alias=ly"],
    ];
    for (i, flags) in flag_sets.iter().enumerate() {
        let run = |cli: &str| {
            let name = format!("cf-{cli}-{i}");
            let mut args = vec!["create", "--name", &name];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["busybox", "true"]);
            let out = if cli == "pier" {
                t.pier(&args)
            } else {
                t.dockerd.docker(&args)
            };
            assert!(
                out.status.success(),
                "{cli} {args:?}: {}",
                text(&out.stderr)
            );
            network_config(&t, &name)
        };
        let (p, d) = (run("pier"), run("docker"));
        assert_eq!(
            p, d,
            "pier's (left) and docker's (right) config for {flags:?}"
        );
    }
    // And what that is, so that a change on both sides is noticed too.
    let c = network_config(&t, "cf-pier-2");
    assert_eq!(c["NetworkMode"], "cf-net");
    assert_eq!(c["Networks"]["cf-net"]["Aliases"], json!(["web", "www"]));
    assert_eq!(c["Networks"]["cf-net"]["IPAMConfig"]["IPv4Address"], ip);
    assert_eq!(
        c["PortBindings"]["80/tcp"],
        json!([{"HostIp": "", "HostPort": "8080"}])
    );
    assert_eq!(
        c["ExtraHosts"],
        json!(["db:10.1.2.3", "gw:host-gateway", "v6:::1"])
    );
    assert_eq!(c["PublishAllPorts"], true);
    assert_eq!(c["ExposedPorts"]["7001/tcp"], json!({}));
    assert_eq!(network_config(&t, "cf-pier-0")["NetworkMode"], "default");

    // Bad values fail before anything is sent: docker's message, exit 125,
    // no container.
    for (flags, want) in [
        (&["--add-host", "bad"][..], "invalid argument \"bad\" for \"--add-host\" flag: bad format for add-host: \"bad\""),
        (&["--dns", "nope"], "invalid argument \"nope\" for \"--dns\" flag: IP address is not correctly formatted: nope"),
        (&["-p", "70000:80"], "invalid hostPort: 70000"),
        (&["--expose", "1:2"], "invalid port format for --expose: 1:2"),
        (&["--mac-address", "zz"], "zz is not a valid mac address"),
        (&["--network-alias", "x"], "network-scoped aliases are only supported for user-defined networks"),
        (&["--network", "cf-net", "--network", "host"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
    ] {
        let mut args = vec!["create", "--name", "never"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let p = t.pier(&args);
        assert_eq!(p.status.code(), Some(125), "pier create {flags:?}");
        assert_eq!(text(&p.stderr), format!("pier: {want}\n"));
        let d = t.dockerd.docker(&args);
        assert_eq!(d.status.code(), Some(125), "docker create {flags:?}");
        assert!(
            text(&d.stderr).contains(want),
            "docker's message for {flags:?}: {}",
            text(&d.stderr)
        );
    }
    let out = t.dockerd.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!out.contains("never"), "a container was created: {out}");

    // connect / disconnect: the endpoint pier asks for is docker's.
    t.pier_ok(&[
        "network",
        "connect",
        "--alias",
        "a1",
        "--alias",
        "a2",
        "--ip",
        &ip2,
        "cf-net",
        "cf-pier-3",
    ]);
    t.dockerd.ok(&[
        "network",
        "connect",
        "--alias",
        "a1",
        "--alias",
        "a2",
        "--ip",
        &ip2,
        "cf-net",
        "cf-docker-3",
    ]);
    let (p, d) = (
        network_config(&t, "cf-pier-3"),
        network_config(&t, "cf-docker-3"),
    );
    assert_eq!(p, d, "after connect --alias --ip");
    t.pier_ok(&["network", "connect", "cf-other", "cf-pier-0"]);
    t.dockerd
        .ok(&["network", "connect", "cf-other", "cf-docker-0"]);
    let (p, d) = (
        network_config(&t, "cf-pier-0"),
        network_config(&t, "cf-docker-0"),
    );
    assert_eq!(p, d);
    t.same(&["network", "connect", "cf-other", "cf-missing"]);
    t.same(&["network", "connect", "cf-missing", "cf-pier-1"]);
    assert_eq!(
        t.pier_ok(&["network", "disconnect", "cf-other", "cf-pier-0"]),
        ""
    );
    assert!(network_config(&t, "cf-pier-0")["Networks"]
        .get("cf-other")
        .is_none());
    t.same(&["network", "disconnect", "cf-other", "cf-pier-0"]);
    t.same(&["network", "disconnect", "-f", "cf-other", "cf-missing"]);

    // port: nothing published on a container that never ran; docker's
    // error for one port.
    t.same(&["port", "cf-pier-2"]);
    t.same(&["port", "cf-pier-2", "80/tcp"]);
    t.same(&["port", "cf-pier-2", "81"]);
    t.same(&["port", "cf-missing"]);
    t.same(&["container", "port", "cf-pier-2", "abc"]);

    // ps: the PORTS column as docker prints it from the same list.
    t.same(&["ps", "-a", "--format", "{{.Names}}\t{{.Ports}}"]);

    for c in t
        .dockerd
        .ok(&["ps", "-aq"])
        .split_whitespace()
        .collect::<Vec<_>>()
    {
        t.dockerd.ok(&["rm", c]);
    }
    t.dockerd.ok(&["network", "rm", "cf-net", "cf-other"]);
}
