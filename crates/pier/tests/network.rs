//! Networking end to end (issue 10): the default bridge, user networks,
//! published ports, name resolution between containers, `--network
//! none|host|container:ID`, the `pier network` and `pier port` commands, the
//! bad inputs of the issue, a pierd restart and the cleanup, through the
//! pier CLI and real containers. Expected messages and formats are docker's
//! (dockerd 20.10, docker CLI 28): "as docker" marks where a test pins them.
//!
//! Every test has its own `PierEnv::networked` (own pierd, own default
//! bridge on 10.N.255.1/24, own pool 10.N.0.0/16): subnets given here are
//! always 10.N.X.0/24-ish with X < 255. Traffic only goes to loopback and to
//! addresses on networks pier made for the test.

use pier_testutil::PierEnv;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct T {
    env: PierEnv,
}

/// A networked pier environment with busybox imported (which starts its
/// pierd).
fn setup() -> T {
    let env = PierEnv::networked(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    T { env }
}

impl Drop for T {
    fn drop(&mut self) {
        // Through the API first, so that pierd detaches links and withdraws
        // rules; PierEnv's drop then kills whatever is left and deletes the
        // environment's bridges and tables.
        let out = self.env.run(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.env.run(&["rm", "-f", id]);
        }
        let out = self.env.run(&["network", "ls", "-q", "--no-trunc"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.env.run(&["network", "rm", id]);
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A TCP port of 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `busybox wget` from the host (no `-T`: it segfaults in Debian's build).
fn host_wget(url: &str) -> Output {
    Command::new("timeout")
        .args(["10", "busybox", "wget", "-q", "-O-", url])
        .output()
        .expect("running busybox wget")
}

/// The body at `url`, retried while the server in the container starts
/// (up to 30 s); panics with the last error.
fn host_get(url: &str) -> String {
    let t = Instant::now();
    loop {
        let out = host_wget(url);
        if out.status.success() {
            return stdout(&out);
        }
        if t.elapsed() > Duration::from_secs(30) {
            panic!(
                "wget {url} from the host failed for 30 s ({}): {}",
                out.status,
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The shell script of a web container: a file at /www/file holding
/// `body`, served by busybox httpd on port 80.
fn httpd_script(body: &str) -> String {
    format!("mkdir -p /www && echo {body} > /www/file && exec httpd -f -p 80 -h /www")
}

/// A client script: `wget URL` retried for up to 20 s (the server or its
/// name may take a moment), exit 1 if it never answered.
fn client_get(url: &str) -> String {
    format!("for i in $(seq 40); do timeout 5 wget -q -O- {url} && exit 0; sleep 0.5; done; exit 1")
}

impl T {
    fn run(&self, args: &[&str]) -> Output {
        self.env.run(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.env.ok(args)
    }

    /// `pier ARGS` must exit `code` with `msg` in its stderr; its stderr.
    fn fails(&self, args: &[&str], code: i32, msg: &str) -> String {
        let out = self.run(args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "pier {args:?}: expected exit {code}, got {}\nstdout: {}\nstderr: {err}",
            out.status,
            stdout(&out)
        );
        assert!(
            err.contains(msg),
            "pier {args:?}: stderr lacks {msg:?}:\n{err}"
        );
        err
    }

    fn octet(&self) -> u8 {
        self.env.net.as_ref().unwrap().octet
    }

    /// `10.N.x.0/24`, a subnet of this test's own.
    fn subnet(&self, x: u8) -> String {
        format!("10.{}.{x}.0/24", self.octet())
    }

    fn default_bridge(&self) -> String {
        self.env.net.as_ref().unwrap().bridge.clone()
    }

    fn inspect(&self, what: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, what]).trim().to_string()
    }

    fn json(&self, what: &str, format: &str) -> Value {
        let text = self.inspect(what, format);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("inspect {format} of {what} is not JSON ({e}): {text}"))
    }

    /// `network inspect NAME` (one element).
    fn network(&self, name: &str) -> Value {
        let out = self.ok(&["network", "inspect", name]);
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("network inspect {name} is not JSON ({e}): {out}"));
        assert_eq!(
            v.as_array().map(Vec::len),
            Some(1),
            "network inspect {name} is not a one-element array: {out}"
        );
        v[0].clone()
    }

    fn network_names(&self) -> BTreeSet<String> {
        self.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The IPv4 address of `container` on `net` (inspect's
    /// NetworkSettings.Networks).
    fn ip_on(&self, container: &str, net: &str) -> String {
        let nets = self.json(container, "{{json .NetworkSettings.Networks}}");
        let ip = nets[net]["IPAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("{container} has no IPAddress on {net}: {nets}"));
        assert!(
            ip.parse::<Ipv4Addr>().is_ok(),
            "{container}'s address on {net} is {ip:?}"
        );
        ip.to_string()
    }

    /// Starts a detached web container `name` serving `/file` (= `name`)
    /// with extra `run` flags.
    fn web(&self, name: &str, flags: &[&str]) -> String {
        let script = httpd_script(name);
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", &script]);
        self.ok(&args).trim().to_string()
    }

    /// Starts a detached `sleep SECS` container `name` with extra `run`
    /// flags; returns its id.
    fn sleeper(&self, name: &str, flags: &[&str], secs: &str) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sleep", secs]);
        self.ok(&args).trim().to_string()
    }

    /// `pier run --rm FLAGS busybox sh -c SCRIPT`: its output.
    /// The script's last command is not exec'd as pid 1 (`; exit $?`):
    /// pid 1 ignores the SIGTERM of a `timeout` in it.
    fn sh(&self, flags: &[&str], script: &str) -> Output {
        let script = format!("{script}\nexit $?");
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", &script]);
        self.run(&args)
    }

    fn sh_ok(&self, flags: &[&str], script: &str) -> String {
        let out = self.sh(flags, script);
        assert!(
            out.status.success(),
            "run {flags:?} sh -c {script:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// The host port `pier port CONTAINER PORT` prints for `host_ip`.
    fn host_port(&self, container: &str, port: &str, host_ip: &str) -> u16 {
        let out = self.ok(&["port", container, port]);
        let prefix = format!("{host_ip}:");
        out.lines()
            .find_map(|l| l.trim().strip_prefix(&prefix))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("pier port {container} {port}: no {host_ip} line:\n{out}"))
    }
}

/// Names of the links of the host's namespace.
fn host_links() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("running ip link");
    stdout(&out)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

/// The links whose master is `bridge` (the host ends of its veth pairs).
/// Only this environment's bridges are looked at: tests run side by side.
fn links_on(bridge: &str) -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("running ip link");
    stdout(&out)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

/// Waits (at most 10 s) until `left()` is empty, and returns what is
/// left then: pierd deletes an exited container's veths on a thread of
/// its own, after the exit or rm has been answered.
fn once_gone<T: Default + PartialEq + std::fmt::Debug>(left: impl Fn() -> T) -> T {
    let t0 = Instant::now();
    loop {
        let now = left();
        if now == T::default() || t0.elapsed() > Duration::from_secs(10) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The host's nftables tables (`family name` lines).
fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("running nft");
    stdout(&out)
}

fn nft_has_table(name: &str) -> bool {
    nft_tables()
        .lines()
        .any(|l| l.split_whitespace().last() == Some(name))
}

/// Mounts at or under `root` whose type is nsfs (network namespaces pier
/// bind-mounted).
fn netns_mounts_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - nsfs "))
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&root))
        .collect()
}

/// The bridge device of user network `id` from pierd's record.
fn bridge_of(env: &PierEnv, id: &str) -> String {
    let path = env.data_root.join("networks").join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["bridge"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no bridge: {text}", path.display()))
        .to_string()
}

// ---------------------------------------------------------------------
// Must show: published ports

#[test]
fn published_port_with_a_random_host_port_answers_wget_from_the_host() {
    let t = setup();
    t.web("web", &["-p", "127.0.0.1::80"]);
    let port = t.host_port("web", "80", "127.0.0.1");
    assert_ne!(port, 0);
    assert_eq!(host_get(&format!("http://127.0.0.1:{port}/file")), "web\n");
    // `pier port web` lists every mapping (docker CLI: `80/tcp -> IP:PORT`).
    let all = t.ok(&["port", "web"]);
    assert!(
        all.lines()
            .any(|l| l.trim() == format!("80/tcp -> 127.0.0.1:{port}")),
        "pier port web:\n{all}"
    );
    // inspect: NetworkSettings.Ports as docker's.
    let ports = t.json("web", "{{json .NetworkSettings.Ports}}");
    assert_eq!(ports["80/tcp"][0]["HostIp"], "127.0.0.1", "{ports}");
    assert_eq!(ports["80/tcp"][0]["HostPort"], port.to_string(), "{ports}");
    // ps PORTS column, as docker.
    let ps = t.ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=web"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "ps PORTS: {ps}"
    );
    // A port that is not published: docker's message and exit 1.
    t.fails(
        &["port", "web", "81"],
        1,
        "No public port '81' published for web",
    );
}

#[test]
fn published_port_with_a_fixed_host_port_answers_wget_from_the_host() {
    let t = setup();
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    t.web("web", &["-p", &spec]);
    assert_eq!(t.host_port("web", "80/tcp", "127.0.0.1"), port);
    assert_eq!(host_get(&format!("http://127.0.0.1:{port}/file")), "web\n");
    // Once the container stops, the port is free again (nothing holds it).
    t.ok(&["rm", "-f", "web"]);
    TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} still held after rm -f: {e}"));
}

/// Answers each datagram to `port` with `echo:` + its bytes, from a
/// thread that has joined the network namespace of process `pid` (busybox
/// has no UDP server), until `n` datagrams were answered.
fn udp_echo_in_netns_of(pid: i32, port: u16, n: usize) -> std::thread::JoinHandle<()> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        // SAFETY: setns on this thread only, with a namespace fd we opened.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let sock = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 1500];
        for _ in 0..n {
            let (len, from) = sock.recv_from(&mut buf).expect("no datagram came");
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&buf[..len]);
            sock.send_to(&answer, from).unwrap();
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the UDP server did not start");
    server
}

#[test]
fn a_published_udp_port_carries_datagrams_both_ways() {
    let t = setup();
    t.sleeper("udp", &["-p", "127.0.0.1::5353/udp"], "120");
    let udp = t.host_port("udp", "5353/udp", "127.0.0.1");
    let ps = t.ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=udp"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{udp}->5353/udp")),
        "ps PORTS: {ps}"
    );
    // The host port is held for UDP: nobody else binds it.
    assert!(std::net::UdpSocket::bind(("127.0.0.1", udp)).is_err());
    let pid: i32 = t.inspect("udp", "{{.State.Pid}}").parse().unwrap();
    let server = udp_echo_in_netns_of(pid, 5353, 2);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 64];
    for msg in [&b"one"[..], b"two"] {
        // Datagrams may be lost: send again until answered.
        let t0 = Instant::now();
        let len = loop {
            client.send_to(msg, ("127.0.0.1", udp)).unwrap();
            match client.recv_from(&mut buf) {
                Ok((len, _)) => break len,
                Err(e) => assert!(t0.elapsed() < Duration::from_secs(10), "no answer: {e}"),
            }
        };
        assert_eq!(&buf[..len], [&b"echo:"[..], msg].concat().as_slice());
    }
    server.join().unwrap();
    t.ok(&["rm", "-f", "udp"]);
    std::net::UdpSocket::bind(("127.0.0.1", udp))
        .unwrap_or_else(|e| panic!("udp port {udp} still held after rm -f: {e}"));
}

#[test]
fn a_port_published_on_every_address_answers_on_the_hosts_addresses_and_to_containers() {
    let t = setup();
    let o = t.octet();
    t.web("web", &["-p", "80"]);
    // as docker: `-p CTR` is every address, a random port.
    let port = t.host_port("web", "80", "0.0.0.0");
    // The host's own addresses: loopback and the default bridge's gateway
    // (an address of the host that pier made).
    let gw = format!("10.{o}.255.1");
    for addr in ["127.0.0.1", gw.as_str()] {
        assert_eq!(
            host_get(&format!("http://{addr}:{port}/file")),
            "web\n",
            "from the host to {addr}:{port}"
        );
    }
    // Another container reaches it through the host's address...
    let url = format!("http://{gw}:{port}/file");
    assert_eq!(t.sh_ok(&[], &client_get(&url)), "web\n");
    // ...and so does a container on a user network (it leaves its network
    // for a host address, as any outbound connection).
    t.ok(&["network", "create", "--subnet", &t.subnet(5), "elsewhere"]);
    assert_eq!(
        t.sh_ok(&["--network", "elsewhere"], &client_get(&url)),
        "web\n"
    );
    // Hairpin: the container reaches its own published port.
    let out = t.ok(&["exec", "web", "sh", "-c", &client_get(&url)]);
    assert_eq!(out, "web\n");
}

#[test]
fn stop_releases_a_published_port_and_start_and_restart_take_it_back() {
    let t = setup();
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    t.web("web", &["-p", &spec]);
    let url = format!("http://127.0.0.1:{port}/file");
    assert_eq!(host_get(&url), "web\n");
    t.ok(&["stop", "-t", "1", "web"]);
    // as docker: a stopped container holds no port, and `port` lists none.
    let l = TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} still held after stop: {e}"));
    drop(l);
    assert_eq!(t.ok(&["port", "web"]).trim(), "");
    t.ok(&["start", "web"]);
    assert_eq!(host_get(&url), "web\n");
    t.ok(&["restart", "-t", "1", "web"]);
    assert_eq!(host_get(&url), "web\n");
    assert_eq!(t.host_port("web", "80", "127.0.0.1"), port);
}

#[test]
fn publish_all_maps_the_image_exposed_ports_and_port_lists_them() {
    let t = setup();
    // An image with EXPOSE 80 (commit --change, as `docker commit`).
    t.ok(&["create", "--name", "base", "busybox", "true"]);
    t.ok(&["commit", "--change", "EXPOSE 80", "base", "webimg"]);
    let exposed = t.inspect("webimg", "{{json .Config.ExposedPorts}}");
    assert!(exposed.contains("80/tcp"), "{exposed}");
    let script = httpd_script("exposed");
    t.ok(&[
        "run", "-d", "--name", "web", "-P", "webimg", "sh", "-c", &script,
    ]);
    // -P publishes on every address (0.0.0.0), as docker.
    let port = t.host_port("web", "80", "0.0.0.0");
    let listed = t.ok(&["port", "web"]);
    assert!(
        listed
            .lines()
            .any(|l| l.trim() == format!("80/tcp -> 0.0.0.0:{port}")),
        "pier port web:\n{listed}"
    );
    // Reachable from the host on 127.0.0.1 too.
    assert_eq!(
        host_get(&format!("http://127.0.0.1:{port}/file")),
        "exposed\n"
    );
}

#[test]
fn publishing_the_same_host_port_twice_fails_clearly() {
    let t = setup();
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    t.web("web1", &["-p", &spec]);
    // as docker: `Bind for 127.0.0.1:PORT failed: port is already allocated`.
    let script = httpd_script("web2");
    t.fails(
        &[
            "run", "-d", "--name", "web2", "-p", &spec, "busybox", "sh", "-c", &script,
        ],
        125,
        &format!("Bind for 127.0.0.1:{port} failed: port is already allocated"),
    );
    assert_eq!(t.inspect("web2", "{{.State.Running}}"), "false");
    // The first one still answers.
    assert_eq!(host_get(&format!("http://127.0.0.1:{port}/file")), "web1\n");
}

// ---------------------------------------------------------------------
// Must show: names on a user network, isolation between networks

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_alias() {
    let t = setup();
    t.ok(&["network", "create", "front"]);
    t.web("web", &["--network", "front", "--network-alias", "www"]);
    let out = t.sh_ok(&["--network", "front"], &client_get("http://web/file"));
    assert_eq!(out, "web\n");
    let out = t.sh_ok(&["--network", "front"], &client_get("http://www/file"));
    assert_eq!(out, "web\n");
    // And by address.
    let ip = t.ip_on("web", "front");
    let out = t.sh_ok(
        &["--network", "front"],
        &client_get(&format!("http://{ip}/file")),
    );
    assert_eq!(out, "web\n");
    // The name resolves to the container's address on that network.
    let out = t.sh_ok(&["--network", "front"], "nslookup -type=a web");
    assert!(out.contains(&ip), "nslookup web on front:\n{out}");
    // The alias shows in inspect (as docker: Aliases holds it).
    let nets = t.json("web", "{{json .NetworkSettings.Networks}}");
    let aliases = nets["front"]["Aliases"].to_string();
    assert!(aliases.contains("\"www\""), "{nets}");
}

#[test]
fn a_container_on_another_network_cannot_reach_it_by_name_or_address() {
    let t = setup();
    t.ok(&["network", "create", "front"]);
    t.ok(&["network", "create", "other"]);
    t.web("web", &["--network", "front"]);
    let ip = t.ip_on("web", "front");
    // Control: it answers on its own network.
    assert_eq!(
        t.sh_ok(&["--network", "front"], &client_get("http://web/file")),
        "web\n"
    );
    // The name does not resolve on `other` (the lookup goes to other's
    // resolver on its gateway, which does not know it).
    let out = t.sh(&["--network", "other"], "timeout 10 nslookup -type=a web");
    assert!(
        !out.status.success() || !stdout(&out).contains(&ip),
        "web resolved on another network:\n{}",
        stdout(&out)
    );
    let out = t.sh(
        &["--network", "other"],
        "timeout 10 wget -q -O- http://web/file",
    );
    assert!(
        !out.status.success(),
        "reached web by name from another network"
    );
    // The address is not reachable either.
    let out = t.sh(
        &["--network", "other"],
        &format!("timeout 5 wget -q -O- http://{ip}/file"),
    );
    assert!(
        !out.status.success(),
        "reached {ip} from another network: {}",
        stdout(&out)
    );
    // Nor from the default bridge.
    let out = t.sh(&[], &format!("timeout 5 wget -q -O- http://{ip}/file"));
    assert!(
        !out.status.success(),
        "reached {ip} from the default bridge: {}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------
// The default bridge and the per-container files

#[test]
fn default_bridge_gives_an_address_a_route_and_the_etc_files() {
    let t = setup();
    let bip_prefix = format!("10.{}.255.", t.octet());
    let gateway = format!("10.{}.255.1", t.octet());
    // Inspected while it runs: docker clears a stopped container's
    // addresses.
    t.sleeper("c1", &[], "300");
    let out = t.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; echo ==route; ip route; echo ==resolv; cat /etc/resolv.conf; \
         echo ==hosts; cat /etc/hosts; echo ==hostname; hostname; cat /etc/hostname; \
         echo ==link; ip -o link show eth0",
    ]);
    let section = |name: &str| -> String {
        out.split(&format!("=={name}\n"))
            .nth(1)
            .map(|s| s.split("\n==").next().unwrap().to_string())
            .unwrap_or_default()
    };
    let addr_line = out.lines().next().unwrap();
    let ip = addr_line
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no inet on eth0: {addr_line}"));
    assert!(
        ip.starts_with(&bip_prefix) && ip.ends_with("/24"),
        "eth0 {ip} not in the bip's subnet {bip_prefix}0/24"
    );
    let ip = ip.trim_end_matches("/24");
    assert_ne!(ip, gateway);
    assert!(
        section("route").contains(&format!("default via {gateway}")),
        "routes:\n{}",
        section("route")
    );
    assert!(
        section("resolv").contains("nameserver"),
        "resolv.conf:\n{}",
        section("resolv")
    );
    // The default bridge has no embedded DNS (as docker): the gateway is not
    // the nameserver there.
    assert!(
        !section("resolv").contains(&format!("nameserver {gateway}")),
        "resolv.conf:\n{}",
        section("resolv")
    );
    let id = t.inspect("c1", "{{.Id}}");
    let short = &id[..12];
    let hosts = section("hosts");
    assert!(
        hosts.contains("127.0.0.1\tlocalhost"),
        "/etc/hosts:\n{hosts}"
    );
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [ip, short]),
        "/etc/hosts lacks `{ip}\\t{short}`:\n{hosts}"
    );
    assert_eq!(
        section("hostname").lines().collect::<Vec<_>>(),
        [short, short],
        "hostname, /etc/hostname"
    );
    // The MAC is docker's 02:42 + the address bytes.
    let o: Vec<u8> = ip.split('.').map(|b| b.parse().unwrap()).collect();
    let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    assert!(
        section("link").contains(&mac),
        "eth0 has not MAC {mac}: {}",
        section("link")
    );
    // inspect agrees.
    let nets = t.json("c1", "{{json .NetworkSettings.Networks}}");
    assert_eq!(nets["bridge"]["Gateway"], gateway.as_str(), "{nets}");
    assert_eq!(nets["bridge"]["IPPrefixLen"], 24, "{nets}");
    assert_eq!(nets["bridge"]["MacAddress"], mac.as_str(), "{nets}");
}

#[test]
fn hostname_add_host_and_dns_flags_write_the_files() {
    let t = setup();
    let out = t.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "--add-host",
        "peer.example:10.11.12.13",
        "--add-host",
        "other:10.11.12.14",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        "busybox",
        "sh",
        "-c",
        "hostname; echo ==; cat /etc/hosts; echo ==; cat /etc/resolv.conf",
    ]);
    let parts: Vec<&str> = out.split("==\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert_eq!(parts[0].trim(), "box1");
    let hosts = parts[1];
    let line_of = |addr: &str| -> Vec<String> {
        hosts
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(addr))
            .flat_map(|l| l.split_whitespace().skip(1).map(str::to_string))
            .collect()
    };
    assert!(
        line_of("10.11.12.13").contains(&"peer.example".into()),
        "{hosts}"
    );
    assert!(line_of("10.11.12.14").contains(&"other".into()), "{hosts}");
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("box1")
                && l.starts_with(&format!("10.{}.255.", t.octet()))),
        "no `IP box1` line:\n{hosts}"
    );
    // --dns and --dns-search replace the host's (content only: nothing is
    // asked of 192.0.2.53).
    let resolv = parts[2];
    let ns: Vec<&str> = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .collect();
    assert_eq!(ns, ["192.0.2.53"], "resolv.conf:\n{resolv}");
    assert!(
        resolv.lines().any(|l| l.trim() == "search example.test"),
        "resolv.conf:\n{resolv}"
    );
}

#[test]
fn user_network_containers_use_the_embedded_resolver() {
    let t = setup();
    t.ok(&["network", "create", "--subnet", &t.subnet(3), "front"]);
    let gw = format!("10.{}.3.1", t.octet());
    let out = t.sh_ok(
        &["--network", "front", "--name", "c1"],
        "cat /etc/resolv.conf; echo ==; ip route",
    );
    // As docker (which uses 127.0.0.11 inside): one nameserver, pier's.
    let ns: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .collect();
    assert_eq!(ns, [gw.as_str()], "{out}");
    assert!(out.contains(&format!("default via {gw}")), "{out}");
}

/// A DNS server on `at`:53 answering every A query with 192.0.2.77 (and
/// other types with no records), reporting each name asked, until the
/// socket has been idle for 20 s.
fn fake_dns_at(at: &str) -> std::sync::mpsc::Receiver<String> {
    let sock = std::net::UdpSocket::bind((at, 53)).unwrap_or_else(|e| panic!("{at}:53: {e}"));
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            // The question: labels up to the root, then type and class.
            let (mut i, mut name) = (12, Vec::new());
            while i < n && q[i] != 0 {
                let len = q[i] as usize;
                name.push(String::from_utf8_lossy(&q[i + 1..(i + 1 + len).min(n)]).into_owned());
                i += 1 + len;
            }
            let end = i + 5;
            if end > n {
                continue;
            }
            let is_a = q[i + 1..i + 3] == [0, 1];
            let mut r = q[..2].to_vec();
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, is_a as u8, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            if is_a {
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77]);
            }
            let _ = tx.send(name.join("."));
            let _ = sock.send_to(&r, from);
        }
    });
    rx
}

#[test]
fn dns_servers_given_at_run_answer_through_the_embedded_resolver() {
    let t = setup();
    t.ok(&["network", "create", "--subnet", &t.subnet(4), "front"]);
    // A server on the host (the default bridge's gateway address).
    let server = format!("10.{}.255.1", t.octet());
    let asked = fake_dns_at(&server);
    // as docker: resolv.conf names only the embedded resolver, which
    // forwards to the container's --dns servers what is not a container.
    let out = t.sh_ok(
        &["--network", "front", "--dns", &server, "--name", "c1"],
        "grep nameserver /etc/resolv.conf; nslookup outside.test; nslookup c1",
    );
    assert!(
        out.contains(&format!("nameserver 10.{}.4.1", t.octet())),
        "{out}"
    );
    assert!(out.contains("192.0.2.77"), "{out}");
    assert!(out.contains(&format!("10.{}.4.2", t.octet())), "{out}");
    let names: Vec<String> = asked.try_iter().collect();
    assert!(names.iter().any(|n| n == "outside.test"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("c1")), "{names:?}");
    // A container without --dns is not forwarded there.
    let _ = t.sh(&["--network", "front"], "nslookup elsewhere.test");
    let names: Vec<String> = asked.try_iter().collect();
    assert!(!names.iter().any(|n| n == "elsewhere.test"), "{names:?}");
}

#[test]
fn ip_and_mac_address_are_set_on_a_user_network() {
    let t = setup();
    let o = t.octet();
    t.ok(&["network", "create", "--subnet", &t.subnet(7), "fixed"]);
    let want_ip = format!("10.{o}.7.50");
    t.sleeper(
        "c1",
        &[
            "--network",
            "fixed",
            "--ip",
            &want_ip,
            "--mac-address",
            "02:42:aa:bb:cc:dd",
        ],
        "300",
    );
    let out = t.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip -o link show eth0",
    ]);
    assert!(out.contains(&format!("inet {want_ip}/24")), "{out}");
    assert!(out.contains("link/ether 02:42:aa:bb:cc:dd"), "{out}");
    assert_eq!(t.ip_on("c1", "fixed"), want_ip);
    let nets = t.json("c1", "{{json .NetworkSettings.Networks}}");
    assert_eq!(nets["fixed"]["MacAddress"], "02:42:aa:bb:cc:dd", "{nets}");
    assert_eq!(
        nets["fixed"]["IPAMConfig"]["IPv4Address"],
        want_ip.as_str(),
        "{nets}"
    );
    // The address is taken while c1 runs.
    // as docker: `Address already in use`.
    t.fails(
        &[
            "run",
            "--rm",
            "--network",
            "fixed",
            "--ip",
            &want_ip,
            "busybox",
            "true",
        ],
        125,
        "Address already in use",
    );
    // --ip on the default bridge, as docker: refused.
    t.fails(
        &[
            "run",
            "--rm",
            "--ip",
            &format!("10.{o}.255.9"),
            "busybox",
            "true",
        ],
        125,
        "user specified IP address is supported on user defined networks only",
    );
    // Right after c1 is gone (its veth is deleted after rm answers),
    // the address is given to the next one that asks for it, restarts
    // included.
    t.ok(&["rm", "-f", "c1"]);
    for name in ["c2", "c3"] {
        t.sleeper(name, &["--network", "fixed", "--ip", &want_ip], "300");
        t.ok(&["restart", "-t", "0", name]);
        assert_eq!(t.ip_on(name, "fixed"), want_ip);
        t.ok(&["rm", "-f", name]);
    }
}

#[test]
fn network_container_shares_the_other_containers_namespace() {
    let t = setup();
    t.sleeper("ctr-a", &[], "120");
    let ns_a = t
        .ok(&["exec", "ctr-a", "readlink", "/proc/self/ns/net"])
        .trim()
        .to_string();
    let ip_a = t.ip_on("ctr-a", "bridge");
    let out = t.sh_ok(
        &["--network", "container:ctr-a"],
        "readlink /proc/self/ns/net; ip -4 -o addr show eth0",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(ns_a.as_str()), "{out}");
    assert!(lines.next().unwrap_or("").contains(&ip_a), "{out}");
    // By id too.
    let id = t.inspect("ctr-a", "{{.Id}}");
    let out = t.sh_ok(
        &["--network", &format!("container:{id}")],
        "readlink /proc/self/ns/net",
    );
    assert_eq!(out.trim(), ns_a);
    // Not with a container that does not run, nor with ports (as docker).
    t.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:nosuch",
            "busybox",
            "true",
        ],
        125,
        "No such container: nosuch",
    );
    t.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:ctr-a",
            "-p",
            "80",
            "busybox",
            "true",
        ],
        125,
        "conflicting options: port publishing and the container type network mode",
    );
}

#[test]
fn network_none_has_only_loopback() {
    let t = setup();
    let out = t.sh_ok(&["--network", "none"], "cat /proc/net/dev; ip route");
    let names: BTreeSet<String> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .filter(|n| !n.is_empty() && !n.contains(' '))
        .collect();
    assert_eq!(names, BTreeSet::from(["lo".to_string()]), "{out}");
    assert!(
        !out.contains("default"),
        "a route with --network none: {out}"
    );
}

#[test]
fn network_host_uses_the_hosts_namespace() {
    let t = setup();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = t.sh_ok(&["--network", "host"], "readlink /proc/self/ns/net");
    assert_eq!(out.trim(), host_ns.to_string_lossy());
    // Nothing of the container's is in the host's links.
    let out = t.sh_ok(&["--network", "host"], "cat /proc/net/dev");
    assert!(out.contains(&t.default_bridge()), "{out}");
}

// ---------------------------------------------------------------------
// pier network ...

#[test]
fn network_create_ls_inspect_and_rm() {
    let t = setup();
    let o = t.octet();
    let subnet = t.subnet(20);
    let gw = format!("10.{o}.20.254");
    let id = t
        .ok(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--gateway",
            &gw,
            "--label",
            "k=v",
            "alpha",
        ])
        .trim()
        .to_string();
    assert!(is_hex64(&id), "network create printed {id:?}");
    // ls: the predefined ones and ours (as docker: bridge, host, none).
    let names = t.network_names();
    for n in ["alpha", "bridge", "host", "none"] {
        assert!(names.contains(n), "network ls lacks {n}: {names:?}");
    }
    let ls = t.ok(&["network", "ls"]);
    let header: Vec<&str> = ls.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"], "{ls}");
    let row = ls
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("alpha"))
        .unwrap_or_else(|| panic!("no alpha row:\n{ls}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [&id[..12], "alpha", "bridge", "local"]
    );
    assert!(t
        .ok(&["network", "ls", "-q"])
        .lines()
        .any(|l| l == &id[..12]));
    let filtered = t.ok(&[
        "network",
        "ls",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(filtered.trim(), "alpha");

    let n = t.network("alpha");
    assert_eq!(n["Name"], "alpha");
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Internal"], false);
    assert_eq!(n["EnableIPv6"], false);
    assert_eq!(n["IPAM"]["Driver"], "default");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], subnet.as_str(), "{n}");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], gw.as_str(), "{n}");
    assert_eq!(n["Labels"]["k"], "v");
    assert_eq!(n["Containers"], serde_json::json!({}));
    // By id and id prefix too.
    assert_eq!(t.network(&id)["Name"], "alpha");
    assert_eq!(t.network(&id[..12])["Name"], "alpha");

    // A container on it shows in Containers.
    let cid = t
        .ok(&[
            "run",
            "-d",
            "--name",
            "c1",
            "--network",
            "alpha",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let n = t.network("alpha");
    let ep = &n["Containers"][&cid];
    assert_eq!(ep["Name"], "c1", "{n}");
    let ip = ep["IPv4Address"].as_str().unwrap_or_default();
    assert!(
        ip.starts_with(&format!("10.{o}.20.")) && ip.ends_with("/24") && !ip.contains(&gw),
        "{n}"
    );
    assert!(
        ep["MacAddress"]
            .as_str()
            .unwrap_or("")
            .starts_with("02:42:"),
        "{n}"
    );
    t.ok(&["rm", "-f", "c1"]);
    assert_eq!(t.network("alpha")["Containers"], serde_json::json!({}));

    // Without --subnet: the next free subnet of the pool, gateway .1.
    t.ok(&["network", "create", "beta"]);
    let b = t.network("beta");
    let sub = b["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sub.starts_with(&format!("10.{o}.")) && sub.ends_with(".0/24"),
        "{b}"
    );
    assert_eq!(
        b["IPAM"]["Config"][0]["Gateway"],
        sub.replace(".0/24", ".1").as_str(),
        "{b}"
    );

    // as docker: messages and exit 1.
    t.fails(
        &["network", "create", "alpha"],
        1,
        "network with name alpha already exists",
    );
    t.fails(
        &[
            "network",
            "create",
            "--subnet",
            &t.subnet(21),
            "--gateway",
            &format!("10.{o}.22.1"),
            "gamma",
        ],
        1,
        &format!("no matching subnet for gateway 10.{o}.22.1"),
    );
    t.fails(
        &["network", "inspect", "nosuch"],
        1,
        "network nosuch not found",
    );
    t.fails(&["network", "rm", "nosuch"], 1, "network nosuch not found");
    t.fails(
        &["network", "rm", "host"],
        1,
        "host is a pre-defined network and cannot be removed",
    );
    t.fails(
        &["network", "rm", "bridge"],
        1,
        "bridge is a pre-defined network and cannot be removed",
    );
    assert_eq!(t.ok(&["network", "rm", "alpha", "beta"]), "alpha\nbeta\n");
    let names = t.network_names();
    assert!(
        !names.contains("alpha") && !names.contains("beta"),
        "{names:?}"
    );
    assert!(!names.contains("gamma"), "{names:?}");
}

#[test]
fn network_prune_removes_only_unused_networks() {
    let t = setup();
    t.ok(&["network", "create", "used"]);
    t.ok(&["network", "create", "unused1"]);
    t.ok(&["network", "create", "unused2"]);
    t.sleeper("c1", &["--network", "used"], "60");
    let out = t.ok(&["network", "prune", "-f"]);
    // as docker: "Deleted Networks:" then the names.
    let mut lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.first(), Some(&"Deleted Networks:"), "{out}");
    lines.remove(0);
    lines.sort();
    assert_eq!(lines, ["unused1", "unused2"], "{out}");
    let names = t.network_names();
    for n in ["used", "bridge", "host", "none"] {
        assert!(names.contains(n), "prune removed {n}: {names:?}");
    }
    // Nothing left to prune: no output at all (as docker).
    t.ok(&["rm", "-f", "c1"]);
    let out = t.ok(&["network", "prune", "-f"]);
    assert!(out.contains("used"), "{out}");
    assert_eq!(t.ok(&["network", "prune", "-f"]).trim(), "");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let t = setup();
    let o = t.octet();
    t.ok(&["network", "create", "--subnet", &t.subnet(30), "n1"]);
    t.ok(&["network", "create", "--subnet", &t.subnet(31), "n2"]);
    t.sleeper("c1", &["--network", "n1"], "300");
    t.web("web2", &["--network", "n2"]);
    // Not on n2 yet: web2 is not reachable by name.
    let out = t.run(&[
        "exec",
        "c1",
        "timeout",
        "5",
        "wget",
        "-q",
        "-O-",
        "http://web2/file",
    ]);
    assert!(!out.status.success(), "c1 reached web2 before connect");

    t.ok(&["network", "connect", "--alias", "c1alias", "n2", "c1"]);
    let links = t.ok(&["exec", "c1", "ip", "-4", "-o", "addr", "show", "eth1"]);
    let ip2 = t.ip_on("c1", "n2");
    assert!(ip2.starts_with(&format!("10.{o}.31.")), "{ip2}");
    assert!(links.contains(&format!("inet {ip2}/24")), "{links}");
    let out = t.ok(&["exec", "c1", "sh", "-c", &client_get("http://web2/file")]);
    assert_eq!(out, "web2\n");
    // web2 finds c1 by name and alias on n2.
    let out = t.ok(&["exec", "web2", "nslookup", "-type=a", "c1alias"]);
    assert!(out.contains(&ip2), "{out}");
    assert!(t.network("n2")["Containers"]
        .as_object()
        .unwrap()
        .values()
        .any(|e| e["Name"] == "c1"));
    // as docker: connecting twice is refused.
    t.fails(
        &["network", "connect", "n2", "c1"],
        1,
        "endpoint with name c1 already exists in network n2",
    );

    t.ok(&["network", "disconnect", "n2", "c1"]);
    let out = t.run(&["exec", "c1", "ip", "link", "show", "eth1"]);
    assert!(!out.status.success(), "eth1 still there: {}", stdout(&out));
    let nets = t.json("c1", "{{json .NetworkSettings.Networks}}");
    assert!(
        nets.get("n2").is_none() && nets.get("n1").is_some(),
        "{nets}"
    );
    assert_eq!(t.network("n2")["Containers"].as_object().unwrap().len(), 1);
    // eth0 on n1 is untouched.
    let out = t.ok(&["exec", "c1", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(out.contains(&format!("10.{o}.30.")), "{out}");
    // as docker: a container that is not connected.
    t.fails(
        &["network", "disconnect", "n2", "c1"],
        1,
        "is not connected to network n2",
    );
}

#[test]
fn an_internal_network_has_no_way_out() {
    let t = setup();
    let o = t.octet();
    t.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &t.subnet(40),
        "inner",
    ]);
    assert_eq!(t.network("inner")["Internal"], true);
    // Something of the host's on the default bridge's address (pier made
    // it): reachable from the default bridge, not from the internal one.
    let gw = format!("10.{o}.255.1");
    // It takes each connection and closes it, so a client that reached it
    // ends with status 0.
    let listener = TcpListener::bind((gw.as_str(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            drop(c);
        }
    });
    let probe = format!("timeout 5 nc {gw} {port} </dev/null");
    let out = t.sh(&[], &probe);
    assert!(
        out.status.success(),
        "control: the default bridge cannot reach {gw}:{port}: {}",
        stderr(&out)
    );
    let out = t.sh(&["--network", "inner"], &format!("ip route; {probe}"));
    assert!(
        !out.status.success(),
        "an internal network reached {gw}:{port}"
    );
    assert!(
        !stdout(&out).contains("default"),
        "a default route on an internal network: {}",
        stdout(&out)
    );
    // Neighbours on the internal network still find each other.
    t.web("web", &["--network", "inner"]);
    assert_eq!(
        t.sh_ok(&["--network", "inner"], &client_get("http://web/file")),
        "web\n"
    );
}

// ---------------------------------------------------------------------
// Bad input

#[test]
fn overlapping_subnets_are_refused() {
    let t = setup();
    let o = t.octet();
    t.ok(&["network", "create", "--subnet", &t.subnet(50), "first"]);
    for sub in [
        t.subnet(50),
        format!("10.{o}.50.128/25"),
        format!("10.{o}.48.0/22"),
    ] {
        // as docker.
        t.fails(
            &["network", "create", "--subnet", &sub, "second"],
            1,
            "Pool overlaps with other one on this address space",
        );
    }
    // The default bridge's subnet is taken as well.
    t.fails(
        &["network", "create", "--subnet", &t.subnet(255), "second"],
        1,
        "Pool overlaps with other one on this address space",
    );
    assert!(!t.network_names().contains("second"));
    // Neighbouring subnets are fine.
    t.ok(&["network", "create", "--subnet", &t.subnet(51), "third"]);
}

#[test]
fn invalid_subnets_and_addresses_are_refused() {
    let t = setup();
    t.fails(
        &["network", "create", "--subnet", "10.1.2.3/99", "bad"],
        1,
        "invalid CIDR address: 10.1.2.3/99",
    );
    t.fails(
        &["network", "create", "--subnet", "nonsense", "bad"],
        1,
        "invalid CIDR address: nonsense",
    );
    // CLI-side checks, as docker CLI (exit 125 there).
    t.fails(
        &["run", "--rm", "--mac-address", "zz", "busybox", "true"],
        125,
        "zz is not a valid mac address",
    );
    t.fails(
        &["run", "--rm", "--add-host", "foo", "busybox", "true"],
        125,
        "bad format for add-host: \"foo\"",
    );
    t.fails(
        &["run", "--rm", "--dns", "bad", "busybox", "true"],
        125,
        "IP address is not correctly formatted: bad",
    );
    // as docker CLI 28 (its own check, before the daemon's).
    t.fails(
        &["run", "--rm", "--network-alias", "x", "busybox", "true"],
        125,
        "network-scoped aliases are only supported for user-defined networks",
    );
    t.fails(
        &["run", "--rm", "--network", "nosuch", "busybox", "true"],
        125,
        "network nosuch not found",
    );
    assert!(!t.network_names().contains("bad"));
    assert_eq!(t.ok(&["ps", "-aq"]).trim(), "", "containers were left");
}

#[test]
fn a_host_port_in_use_is_a_clear_error_and_leaves_nothing() {
    let t = setup();
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let spec = format!("127.0.0.1:{port}:80");
    let script = httpd_script("busy");
    let out = t.run(&[
        "run", "-d", "--name", "busy", "-p", &spec, "busybox", "sh", "-c", &script,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    // docker: `... 127.0.0.1:PORT: bind: address already in use` (a
    // foreign listener) or `port is already allocated` (its own).
    assert!(
        err.contains(&format!("127.0.0.1:{port}"))
            && (err.contains("address already in use") || err.contains("already allocated")),
        "stderr: {err}"
    );
    assert_eq!(t.inspect("busy", "{{.State.Running}}"), "false");
    assert_eq!(t.ok(&["ps", "-q"]).trim(), "", "a container runs");
    // Nothing left: no new link, no rule for the port, no namespace.
    let left = once_gone(|| links_on(&t.default_bridge()));
    assert!(left.is_empty(), "links left on the bridge: {left:?}");
    let table = format!("pier-{}", t.default_bridge());
    let rules = Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .unwrap();
    assert!(
        !stdout(&rules).contains(&port.to_string()),
        "a rule for {port} is left:\n{}",
        stdout(&rules)
    );
    assert_eq!(netns_mounts_under(&t.env.exec_root), Vec::<String>::new());
    // The holder still holds its port and gets connections.
    holder.set_nonblocking(false).unwrap();
    let c = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(c.is_ok(), "the holder's port does not take connections");
    drop(c);
    // Once it is free, the same container starts and answers.
    drop(holder);
    t.ok(&["start", "busy"]);
    assert_eq!(host_get(&format!("http://127.0.0.1:{port}/file")), "busy\n");
}

#[test]
fn invalid_port_specs_are_refused_with_dockers_messages() {
    let t = setup();
    // as docker CLI 28: exit 125, nothing created.
    let cases: &[(&str, &str)] = &[
        ("80:abc", "invalid containerPort: abc"),
        ("abc:80", "invalid hostPort: abc"),
        ("70000:80", "invalid hostPort: 70000"),
        ("80/xyz", "invalid proto: xyz"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("127.0.0.1:80:80:80", "invalid IP address: 127.0.0.1:80"),
        (
            "80-81:90-92",
            "invalid ranges specified for container and host Ports: 90-92 and 80-81",
        ),
        ("", "no port specified: <empty>"),
    ];
    for (spec, msg) in cases {
        t.fails(&["run", "--rm", "-p", spec, "busybox", "true"], 125, msg);
        t.fails(&["create", "-p", spec, "busybox", "true"], 125, msg);
    }
    t.fails(
        &["run", "--rm", "--expose", "abc", "busybox", "true"],
        125,
        "invalid range format for --expose: abc",
    );
    assert_eq!(t.ok(&["ps", "-aq"]).trim(), "", "containers were created");
}

#[test]
fn an_ipv6_host_address_is_refused_not_ignored() {
    let t = setup();
    // pier publishes on IPv4 only (pier_network::ports::Binding::ipv4): an
    // IPv6 host address must fail clearly rather than publish nothing.
    let out = t.run(&[
        "run",
        "-d",
        "--name",
        "v6",
        "-p",
        "[::1]::80",
        "busybox",
        "sleep",
        "30",
    ]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("IPv4"),
        "-p [::1]::80: {} {}\n{err}",
        out.status,
        stdout(&out)
    );
    assert_eq!(t.ok(&["ps", "-q"]).trim(), "", "a container runs");
}

#[test]
fn removing_a_network_in_use_fails() {
    let t = setup();
    let id = t.ok(&["network", "create", "busy"]).trim().to_string();
    t.sleeper("c1", &["--network", "busy"], "60");
    // as docker.
    t.fails(
        &["network", "rm", "busy"],
        1,
        &format!("error while removing network: network busy id {id} has active endpoints"),
    );
    assert!(t.network_names().contains("busy"));
    // The container keeps its network.
    let out = t.ok(&["exec", "c1", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(out.contains("inet "), "{out}");
    t.ok(&["rm", "-f", "c1"]);
    t.ok(&["network", "rm", "busy"]);
}

#[test]
fn more_containers_than_the_subnet_has_addresses_fail() {
    let t = setup();
    let o = t.octet();
    // A /30: network, gateway, one address, broadcast.
    let subnet = format!("10.{o}.60.0/30");
    t.ok(&["network", "create", "--subnet", &subnet, "tiny"]);
    t.sleeper("c1", &["--network", "tiny"], "60");
    assert_eq!(t.ip_on("c1", "tiny"), format!("10.{o}.60.2"));
    // as docker.
    t.fails(
        &[
            "run",
            "-d",
            "--name",
            "c2",
            "--network",
            "tiny",
            "busybox",
            "sleep",
            "60",
        ],
        125,
        "no available IPv4 addresses on this network's address pools",
    );
    assert_eq!(t.inspect("c2", "{{.State.Running}}"), "false");
    // Connecting a running container fails the same way.
    t.sleeper("c3", &[], "60");
    t.fails(
        &["network", "connect", "tiny", "c3"],
        1,
        "no available IPv4 addresses on this network's address pools",
    );
    // The address comes back when c1 goes.
    t.ok(&["rm", "-f", "c1"]);
    t.ok(&["start", "c2"]);
    assert_eq!(t.ip_on("c2", "tiny"), format!("10.{o}.60.2"));
}

// ---------------------------------------------------------------------
// pierd restart and cleanup

#[test]
fn network_state_survives_a_pierd_restart() {
    let t = setup();
    t.ok(&["network", "create", "--subnet", &t.subnet(70), "front"]);
    t.web("web", &["--network", "front", "-p", "127.0.0.1::80"]);
    let port = t.host_port("web", "80", "127.0.0.1");
    let url = format!("http://127.0.0.1:{port}/file");
    assert_eq!(host_get(&url), "web\n");
    let web_ip = t.ip_on("web", "front");

    t.env.kill_daemon();
    // The next command starts a new pierd, which takes up its state.
    assert!(t.ok(&["ps"]).contains("web"));
    assert_eq!(host_get(&url), "web\n");
    assert_eq!(t.host_port("web", "80", "127.0.0.1"), port);
    // Name resolution still works, and a new container gets another address.
    let out = t.sh_ok(&["--network", "front"], &client_get("http://web/file"));
    assert_eq!(out, "web\n");
    t.sleeper("c2", &["--network", "front"], "60");
    let c2_ip = t.ip_on("c2", "front");
    assert_ne!(c2_ip, web_ip, "an address was handed out twice");
    // The port is still held: publishing it again fails.
    let spec = format!("127.0.0.1:{port}:80");
    let out = t.run(&["run", "-d", "-p", &spec, "busybox", "sleep", "60"]);
    assert!(
        !out.status.success(),
        "port {port} published twice after a restart"
    );
    // The network is still there with its containers.
    let n = t.network("front");
    assert_eq!(n["Containers"].as_object().unwrap().len(), 2, "{n}");
}

#[test]
fn a_container_that_ends_while_pierd_is_down_is_cleaned_up_by_the_next_pierd() {
    let t = setup();
    let o = t.octet();
    let id = t
        .ok(&["network", "create", "--subnet", &t.subnet(75), "front"])
        .trim()
        .to_string();
    let bridge = bridge_of(&t.env, &id);
    let ip = format!("10.{o}.75.20");
    t.sleeper(
        "gone",
        &["--network", "front", "--ip", &ip, "-p", "127.0.0.1::80"],
        "300",
    );
    let port = t.host_port("gone", "80", "127.0.0.1");
    let pid: i32 = t.inspect("gone", "{{.State.Pid}}").parse().unwrap();
    assert_eq!(links_on(&bridge).len(), 1);
    t.env.kill_daemon();
    // SAFETY: killing the container's init, a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let t0 = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next pierd finds it exited and releases what it held.
    let t0 = Instant::now();
    while t.inspect("gone", "{{.State.Running}}") != "false" {
        assert!(t0.elapsed() < Duration::from_secs(30), "gone still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    while !links_on(&bridge).is_empty() || !netns_mounts_under(&t.env.exec_root).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "left behind: links {:?}, netns {:?}",
            links_on(&bridge),
            netns_mounts_under(&t.env.exec_root)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its address and its port are free again.
    t.sleeper("next", &["--network", "front", "--ip", &ip], "60");
    TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} still held: {e}"));
}

#[test]
fn removing_containers_and_networks_leaves_nothing_behind() {
    let t = setup();
    let id = t
        .ok(&["network", "create", "--subnet", &t.subnet(80), "gone"])
        .trim()
        .to_string();
    let bridge = bridge_of(&t.env, &id);
    assert!(host_links().contains(&bridge), "no bridge {bridge}");
    assert!(nft_has_table(&format!("pier-{bridge}")), "{}", nft_tables());
    t.web("web", &["--network", "gone", "-p", "127.0.0.1::80"]);
    t.sleeper("c2", &[], "60");
    t.ok(&["network", "connect", "gone", "c2"]);
    assert!(!netns_mounts_under(&t.env.exec_root).is_empty());
    // web on gone, c2 on the default bridge and on gone.
    let mut veths = links_on(&bridge);
    veths.extend(links_on(&t.default_bridge()));
    assert_eq!(veths.len(), 3, "{veths:?}");
    // A --rm container leaves nothing either.
    t.sh_ok(&["--network", "gone"], "true");

    t.ok(&["rm", "-f", "web", "c2"]);
    t.ok(&["network", "rm", "gone"]);
    let left = once_gone(|| {
        let after = host_links();
        veths.intersection(&after).cloned().collect::<Vec<_>>()
    });
    assert!(left.is_empty(), "links left behind: {left:?}");
    let after = host_links();
    assert!(links_on(&t.default_bridge()).is_empty());
    assert!(!after.contains(&bridge));
    assert!(
        !nft_has_table(&format!("pier-{bridge}")),
        "table pier-{bridge} left:\n{}",
        nft_tables()
    );
    assert_eq!(netns_mounts_under(&t.env.exec_root), Vec::<String>::new());
    assert!(!t
        .env
        .data_root
        .join("networks")
        .join(format!("{id}.json"))
        .exists());
}

// ---------------------------------------------------------------------
// Differential: network inspect's shape against docker's

/// Keys of a JSON object, recursively as `a.b` paths (arrays: their first
/// element's keys under `a[]`).
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                // Containers and Labels are keyed by data.
                if k != "Containers" && k != "Labels" && k != "Options" {
                    key_paths(v, &p, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                key_paths(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn network_inspect_has_dockers_shape() {
    use pier_testutil::dockerd::{ensure, Dockerd};
    if !ensure(&["dockerd", "docker"], "docker.io") {
        pier_testutil::skip("dockerd/docker are not installed");
        return;
    }
    let t = setup();
    let dir = t.env.dir.path().join("dockerd");
    std::fs::create_dir_all(&dir).unwrap();
    let d = match Dockerd::start(&dir) {
        Ok(d) => d,
        Err(e) => {
            pier_testutil::skip(&format!("dockerd does not start here: {e}"));
            return;
        }
    };
    // Docker's networks are only created (no containers are started there).
    let o = t.octet();
    for (name, args) in [
        ("shape1", vec![]),
        (
            "shape2",
            vec!["--subnet".to_string(), t.subnet(90), "--internal".into()],
        ),
    ] {
        let mut pa = vec!["network", "create", "--label", "a=b"];
        pa.extend(args.iter().map(String::as_str));
        pa.push(name);
        t.ok(&pa);
        // Docker gets a subnet of the test's own too.
        let mut da = vec![
            "network".to_string(),
            "create".into(),
            "--label".into(),
            "a=b".into(),
        ];
        if args.is_empty() {
            da.extend(["--subnet".into(), format!("10.{o}.91.0/24")]);
        } else {
            da.extend([
                "--subnet".into(),
                format!("10.{o}.92.0/24"),
                "--internal".into(),
            ]);
        }
        da.push(name.to_string());
        d.ok(&da.iter().map(String::as_str).collect::<Vec<_>>());
        let pv = t.network(name);
        let dtext = d.ok(&["network", "inspect", name]);
        // Removed before any assertion: dockerd leaves the bridges of
        // networks it still has when it stops.
        d.ok(&["network", "rm", name]);
        let dv: Value = serde_json::from_str(&dtext).unwrap();
        let (mut pk, mut dk) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&pv, "", &mut pk);
        key_paths(&dv[0], "", &mut dk);
        // Docker 20.10 leaves Gateway out when --subnet is given without it;
        // pier always says it.
        pk.remove("IPAM.Config[].Gateway");
        dk.remove("IPAM.Config[].Gateway");
        // EnableIPv4 came with API 1.47 (docker 28); dockerd 20.10 lacks it.
        pk.remove("EnableIPv4");
        assert_eq!(pk, dk, "network inspect keys: pier vs docker");
        for k in [
            "Driver",
            "Scope",
            "Internal",
            "EnableIPv6",
            "Attachable",
            "Ingress",
            "Labels",
        ] {
            assert_eq!(pv[k], dv[0][k], "{k} of {name}");
        }
        assert_eq!(pv["IPAM"]["Driver"], dv[0]["IPAM"]["Driver"]);
    }
    // ls --format '{{json .}}': the same fields (on `none`, which both have).
    let pl = t.ok(&[
        "network",
        "ls",
        "--filter",
        "name=none",
        "--format",
        "{{json .}}",
    ]);
    let dl = d.ok(&[
        "network",
        "ls",
        "--filter",
        "name=none",
        "--format",
        "{{json .}}",
    ]);
    let keys = |s: &str| -> BTreeSet<String> {
        let v: Value =
            serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("ls json ({e}): {s}"));
        v.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&pl), keys(&dl), "network ls json keys");
}

// ---------------------------------------------------------------------
// Docker's own CLI against pierd's network endpoints

#[test]
fn docker_cli_drives_networks_and_ports_through_pierds_api() {
    if !pier_testutil::dockerd::ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let t = setup();
    let docker = |args: &[&str]| -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", t.env.exec_root.join("pier.sock").display()),
            )
            .env("DOCKER_CONFIG", t.env.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .expect("running docker")
    };
    let ok = |args: &[&str]| -> String {
        let out = docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} against pierd failed ({}):\n{}\n{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };
    let subnet = t.subnet(100);
    let id = ok(&["network", "create", "--subnet", &subnet, "dnet"])
        .trim()
        .to_string();
    assert!(is_hex64(&id), "{id}");
    assert!(ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .any(|l| l == "dnet"));
    assert_eq!(
        ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            "dnet"
        ])
        .trim(),
        subnet
    );
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    let script = httpd_script("dweb");
    ok(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dnet",
        "--network-alias",
        "dw",
        "-p",
        &spec,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        ok(&["port", "dweb", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(host_get(&format!("http://127.0.0.1:{port}/file")), "dweb\n");
    let script = client_get("http://dw/file");
    assert_eq!(
        ok(&[
            "run",
            "--rm",
            "--network",
            "dnet",
            "busybox",
            "sh",
            "-c",
            &script
        ]),
        "dweb\n"
    );
    ok(&["run", "-d", "--name", "dc", "busybox", "sleep", "60"]);
    ok(&["network", "connect", "dnet", "dc"]);
    assert!(ok(&["network", "inspect", "-f", "{{json .Containers}}", "dnet"]).contains("\"dc\""));
    ok(&["network", "disconnect", "dnet", "dc"]);
    let out = docker(&["network", "rm", "dnet"]);
    assert!(
        !out.status.success() && stderr(&out).contains("has active endpoints"),
        "{}",
        stderr(&out)
    );
    ok(&["rm", "-f", "dweb", "dc"]);
    assert_eq!(ok(&["network", "rm", "dnet"]).trim(), "dnet");
}

// ---------------------------------------------------------------------
// More of docker's options

#[test]
fn two_networks_at_run_give_two_interfaces_with_names_on_both() {
    let t = setup();
    let o = t.octet();
    t.ok(&["network", "create", "--subnet", &t.subnet(110), "na"]);
    t.ok(&["network", "create", "--subnet", &t.subnet(111), "nb"]);
    t.web("wa", &["--network", "na"]);
    t.web("wb", &["--network", "nb"]);
    // as docker CLI 28 (API >= 1.44): --network twice joins both.
    t.sleeper("both", &["--network", "na", "--network", "nb"], "120");
    let out = t.ok(&["exec", "both", "ip", "-4", "-o", "addr", "show"]);
    assert!(out.contains(&format!("inet 10.{o}.110.")), "{out}");
    assert!(out.contains(&format!("inet 10.{o}.111.")), "{out}");
    for name in ["wa", "wb"] {
        let got = t.ok(&[
            "exec",
            "both",
            "sh",
            "-c",
            &client_get(&format!("http://{name}/file")),
        ]);
        assert_eq!(got, format!("{name}\n"));
    }
    let nets = t.json("both", "{{json .NetworkSettings.Networks}}");
    assert!(
        nets.get("na").is_some() && nets.get("nb").is_some(),
        "{nets}"
    );
}

#[test]
fn bridge_name_option_dns_options_and_the_default_networks_inspect() {
    let t = setup();
    let o = t.octet();
    let br = format!("ptn{o}x{:04x}", std::process::id() & 0xffff);
    let opt = format!("com.docker.network.bridge.name={br}");
    t.ok(&[
        "network",
        "create",
        "--subnet",
        &t.subnet(120),
        "-o",
        &opt,
        "named",
    ]);
    assert!(host_links().contains(&br), "no bridge {br}");
    assert_eq!(
        t.network("named")["Options"]["com.docker.network.bridge.name"],
        br.as_str()
    );
    t.ok(&["network", "rm", "named"]);
    assert!(!host_links().contains(&br), "bridge {br} left");
    assert!(
        !nft_has_table(&format!("pier-{br}")),
        "table pier-{br} left"
    );

    // --dns-option: resolv.conf's options line, as docker.
    let out = t.sh_ok(
        &["--dns", "192.0.2.1", "--dns-option", "ndots:2"],
        "cat /etc/resolv.conf",
    );
    assert!(out.lines().any(|l| l.trim() == "options ndots:2"), "{out}");

    // The default network as docker shows it.
    t.sleeper("c1", &[], "60");
    let n = t.network("bridge");
    assert_eq!(n["Name"], "bridge");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(
        n["IPAM"]["Config"][0]["Subnet"],
        format!("10.{o}.255.0/24").as_str(),
        "{n}"
    );
    assert_eq!(
        n["IPAM"]["Config"][0]["Gateway"],
        format!("10.{o}.255.1").as_str(),
        "{n}"
    );
    let cid = t.inspect("c1", "{{.Id}}");
    assert_eq!(n["Containers"][&cid]["Name"], "c1", "{n}");
}

#[test]
fn ls_filters_and_connect_with_an_ip() {
    let t = setup();
    let o = t.octet();
    t.ok(&["network", "create", "--subnet", &t.subnet(130), "f1"]);
    t.ok(&[
        "network",
        "create",
        "--subnet",
        &t.subnet(131),
        "--label",
        "team=x",
        "f2",
    ]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["network", "ls", "--format", "{{.Name}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = t.ok(&a).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    // as docker.
    assert_eq!(names(&["--filter", "type=custom"]), ["f1", "f2"]);
    assert_eq!(
        names(&["--filter", "type=builtin"]),
        ["bridge", "host", "none"]
    );
    assert_eq!(names(&["--filter", "label=team"]), ["f2"]);
    assert_eq!(names(&["--filter", "name=f1"]), ["f1"]);
    assert_eq!(names(&["--filter", "driver=null"]), ["none"]);

    t.sleeper("c1", &["--network", "f1"], "60");
    t.sleeper("c2", &[], "60");
    let want = format!("10.{o}.131.77");
    t.ok(&["network", "connect", "--ip", &want, "f2", "c1"]);
    assert_eq!(t.ip_on("c1", "f2"), want);
    let out = t.ok(&["exec", "c1", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(out.contains(&format!("inet {want}/24")), "{out}");
}

#[test]
fn ps_filters_and_shows_networks() {
    let t = setup();
    t.ok(&["network", "create", "--subnet", &t.subnet(132), "f1"]);
    t.ok(&["network", "create", "--subnet", &t.subnet(133), "f2"]);
    t.sleeper("c1", &["--network", "f1"], "60");
    t.sleeper("c2", &[], "60");
    t.ok(&["network", "connect", "f2", "c1"]);
    // ps --filter network=NAME, as docker.
    let ps = t.ok(&["ps", "--filter", "network=f2", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "c1");
    let ps = t.ok(&["ps", "--filter", "network=bridge", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "c2");
    // ps --format {{.Networks}}: the names, comma-separated.
    let nets = t.ok(&["ps", "--filter", "name=c1", "--format", "{{.Networks}}"]);
    let mut got: Vec<&str> = nets.trim().split(',').collect();
    got.sort();
    assert_eq!(got, ["f1", "f2"], "{nets}");
}

/// A pierd killed between making a container's namespace and saving its
/// record leaves a netns file no record holds: the next pierd removes it.
#[test]
fn a_namespace_no_container_holds_is_removed_when_pierd_starts() {
    let t = setup();
    t.sleeper("keep", &[], "60");
    t.env.kill_daemon();
    let dir = t.env.exec_root.join("netns");
    let stray = dir.join("0123456789abcdef");
    std::fs::write(&stray, b"").unwrap();
    let made = Command::new("unshare")
        .arg(format!("--net={}", stray.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(made.success(), "unshare --net");
    assert!(netns_mounts_under(&dir)
        .iter()
        .any(|m| m.ends_with("0123456789abcdef")));
    // The next command starts a new pierd.
    assert!(t.ok(&["ps"]).contains("keep"));
    let left = netns_mounts_under(&dir);
    assert!(
        !left.iter().any(|m| m.ends_with("0123456789abcdef")),
        "{left:?}"
    );
    assert!(!stray.exists());
    // The running container's own namespace stays.
    assert_eq!(left.len(), 1, "{left:?}");
    t.ok(&["exec", "keep", "true"]);
}
