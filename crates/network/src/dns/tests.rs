use super::wire::*;
use super::*;

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, d)
}

/// The names of a test network.
fn names() -> Names {
    Arc::new(|name: &str| match name {
        "web" | "web.mynet" => Some(vec![ip(2)]),
        "multi" => Some(vec![ip(2), ip(3), ip(4)]),
        "many" => Some((1..=200).map(ip).collect()),
        "gone" => Some(vec![]),
        _ => None,
    })
}

fn reply_of(action: Action) -> Message {
    match action {
        Action::Reply(bytes) => Message::parse(&bytes).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn ips(m: &Message) -> Vec<Ipv4Addr> {
    let mut ips: Vec<_> = m.answers.iter().map(|r| r.ipv4().unwrap()).collect();
    ips.sort();
    ips
}

#[test]
fn known_names_get_a_records_with_docker_ttl() {
    let q = build_query(0x4242, "Web.", TYPE_A).unwrap();
    let m = reply_of(answer(&q, &*names()));
    assert_eq!(m.header.id, 0x4242);
    assert!(m.header.is_response());
    assert_eq!(m.header.rcode(), RCODE_NOERROR);
    assert_ne!(m.header.flags & FLAG_RD, 0);
    assert_ne!(m.header.flags & FLAG_RA, 0);
    assert_eq!(m.header.flags & FLAG_TC, 0);
    // The question comes back as asked (case kept).
    assert_eq!(m.questions.len(), 1);
    assert_eq!(m.questions[0].name.to_string(), "Web.");
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name.to_string(), "Web.");
    assert_eq!(m.answers[0].ttl, 600);
    assert_eq!(m.answers[0].ipv4(), Some(ip(2)));
    // The engine's own dotted names are passed whole.
    let q = build_query(1, "web.MyNet", TYPE_A).unwrap();
    assert_eq!(ips(&reply_of(answer(&q, &*names()))), [ip(2)]);
    let q = build_query(1, "multi", TYPE_A).unwrap();
    assert_eq!(ips(&reply_of(answer(&q, &*names()))), [ip(2), ip(3), ip(4)]);
}

#[test]
fn other_types_of_known_names_get_no_records() {
    // as docker: AAAA of a container name is NOERROR without answers.
    for qtype in [TYPE_AAAA, 15, 16, 255] {
        let q = build_query(9, "web", qtype).unwrap();
        let m = reply_of(answer(&q, &*names()));
        assert_eq!(m.header.rcode(), RCODE_NOERROR, "type {qtype}");
        assert!(m.answers.is_empty());
        assert_eq!(m.questions[0].qtype, qtype);
    }
}

#[test]
fn names_known_to_be_absent_are_nxdomain() {
    for qtype in [TYPE_A, TYPE_AAAA] {
        let q = build_query(9, "gone", qtype).unwrap();
        let m = reply_of(answer(&q, &*names()));
        assert_eq!(m.header.rcode(), RCODE_NXDOMAIN);
        assert!(m.answers.is_empty());
    }
}

#[test]
fn unknown_names_are_forwarded() {
    let q = build_query(9, "example.org", TYPE_A).unwrap();
    assert!(matches!(answer(&q, &*names()), Action::Forward(h, _) if h.id == 9));
    // The root, names with odd bytes and other classes never reach `names`.
    let never: Names = Arc::new(|name: &str| panic!("asked about {name:?}"));
    let q = build_query(9, ".", TYPE_A).unwrap();
    assert!(matches!(answer(&q, &*never), Action::Forward(..)));
    let mut m = Message::parse(&build_query(9, "web", TYPE_A).unwrap()).unwrap();
    m.questions[0].name = Name::from_labels(&[&b"we.b"[..]]).unwrap();
    assert!(matches!(
        answer(&m.to_bytes(), &*never),
        Action::Forward(..)
    ));
    m.questions[0].name = Name::from_dotted("web").unwrap();
    m.questions[0].qclass = 3; // CHAOS
    assert!(matches!(
        answer(&m.to_bytes(), &*never),
        Action::Forward(..)
    ));
}

#[test]
fn large_answers_fit_in_512_bytes_with_tc() {
    let q = build_query(9, "many", TYPE_A).unwrap();
    let Action::Reply(bytes) = answer(&q, &*names()) else {
        panic!("no reply")
    };
    assert!(bytes.len() <= 512, "{} bytes", bytes.len());
    let m = Message::parse(&bytes).unwrap();
    assert_ne!(m.header.flags & FLAG_TC, 0);
    assert!(m.answers.len() > 20, "{} answers", m.answers.len());
}

#[test]
fn malformed_packets_are_dropped_or_formerr() {
    let n = names();
    // Shorter than a header: dropped.
    assert_eq!(answer(&[], &*n), Action::Drop);
    assert_eq!(answer(&[1, 2, 3, 4, 5], &*n), Action::Drop);
    // A response: dropped.
    let mut q = build_query(7, "web", TYPE_A).unwrap();
    q[2] |= 0x80;
    assert_eq!(answer(&q, &*n), Action::Drop);
    // A readable header, a bad question: FORMERR with the query's id.
    let q = build_query(7, "web", TYPE_A).unwrap();
    for bad in [&q[..q.len() - 1], &q[..13]] {
        let m = reply_of(answer(bad, &*n));
        assert_eq!(m.header.id, 7);
        assert_eq!(m.header.rcode(), RCODE_FORMERR);
    }
    let mut looped = q[..12].to_vec();
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(reply_of(answer(&looped, &*n)).header.rcode(), RCODE_FORMERR);
    // Two questions, or none: FORMERR.
    for count in [0u8, 2] {
        let mut q2 = q.clone();
        q2[5] = count;
        assert_eq!(reply_of(answer(&q2, &*n)).header.rcode(), RCODE_FORMERR);
    }
    // Another opcode (2, STATUS): NOTIMP.
    let mut q3 = q.clone();
    q3[2] |= 2 << 3;
    assert_eq!(reply_of(answer(&q3, &*n)).header.rcode(), RCODE_NOTIMP);
}

#[test]
fn a_panicking_lookup_is_servfail() {
    let broken: Names = Arc::new(|name: &str| panic!("lookup of {name} broke"));
    let q = build_query(5, "web", TYPE_A).unwrap();
    let m = reply_of(answer(&q, &*broken));
    assert_eq!((m.header.id, m.header.rcode()), (5, RCODE_SERVFAIL));
}

proptest::proptest! {
    #[test]
    fn answer_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        if let Action::Reply(r) = answer(&bytes, &*names()) {
            let h = parse_header(&r).unwrap();
            proptest::prop_assert!(h.header.is_response());
            proptest::prop_assert_eq!(&r[..2], &bytes[..2]);
        }
    }
}

#[test]
fn upstreams_of_reads_nameserver_lines() {
    let conf = "\
# comment nameserver 9.9.9.9
search example.org
nameserver 192.0.2.53
nameserver\t2001:db8::53   # trailing words
nameserver 127.0.0.53
nameserver 127.1.2.3
nameserver ::1
nameserver ::ffff:127.0.0.1
nameserver 0.0.0.0
nameserver not-an-address
nameserver
options ndots:2
nameserver 192.0.2.53
  nameserver 198.51.100.1
nameserver fe80::1%1
";
    assert_eq!(
        upstreams_of(conf),
        [
            "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            "198.51.100.1:53".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 1)),
        ]
    );
    assert!(upstreams_of("").is_empty());
    assert!(upstreams_of("nameserver 127.0.0.11\n").is_empty());
}

// ---- the server over real sockets on 127.0.0.1 ----

const WAIT: Duration = Duration::from_secs(10);

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Receives one datagram (failing the test rather than hanging forever).
async fn recv(sock: &UdpSocket) -> Message {
    let mut buf = vec![0; 65535];
    let n = tokio::time::timeout(WAIT, sock.recv(&mut buf))
        .await
        .expect("no reply")
        .unwrap();
    Message::parse(&buf[..n]).unwrap()
}

async fn ask(server: SocketAddr, id: u16, name: &str, qtype: u16) -> Message {
    let sock = client().await;
    sock.send_to(&build_query(id, name, qtype).unwrap(), server)
        .await
        .unwrap();
    let m = recv(&sock).await;
    assert_eq!(m.header.id, id);
    m
}

async fn local_server(upstreams: Vec<SocketAddr>) -> Server {
    Server::spawn("127.0.0.1:0".parse().unwrap(), names(), upstreams)
        .await
        .unwrap()
}

/// A fake upstream on 127.0.0.1 answering every A query with 192.0.2.1
/// and reporting each question it saw.
async fn fake_upstream() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<()>,
) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        loop {
            let (n, peer) = sock.recv_from(&mut buf).await.unwrap();
            let q = Message::parse(&buf[..n]).unwrap();
            let question = q.questions[0].clone();
            let _ = tx.send(question.name.to_string());
            let rcode = if question.name.to_string() == "fail." {
                RCODE_SERVFAIL
            } else {
                RCODE_NOERROR
            };
            let r = Message {
                header: Header {
                    id: q.header.id,
                    flags: q.header.reply_flags(rcode),
                },
                answers: vec![Record::a(
                    question.name.clone(),
                    30,
                    Ipv4Addr::new(192, 0, 2, 1),
                )],
                questions: vec![question],
                authority: vec![],
                additional: vec![],
            };
            sock.send_to(&r.to_bytes(), peer).await.unwrap();
        }
    });
    (addr, rx, task)
}

#[tokio::test]
async fn server_answers_names_over_udp() {
    let server = local_server(vec![]).await;
    let at = server.local_addr();
    assert_eq!(at.ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(at.port(), 0);

    let m = ask(at, 1, "WEB", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_NOERROR);
    assert_eq!(ips(&m), [ip(2)]);
    assert_eq!(m.answers[0].ttl, 600);

    let m = ask(at, 2, "web", TYPE_AAAA).await;
    assert_eq!(m.header.rcode(), RCODE_NOERROR);
    assert!(m.answers.is_empty());

    let m = ask(at, 3, "gone", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_NXDOMAIN);

    // Nothing to forward to: SERVFAIL.
    let m = ask(at, 4, "example.org", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_SERVFAIL);
    assert_eq!(m.questions[0].name.to_string(), "example.org.");
}

#[tokio::test]
async fn server_survives_garbage() {
    let server = local_server(vec![]).await;
    let at = server.local_addr();
    let sock = client().await;
    // Garbage and a response get no reply: the first reply this socket
    // receives is the one to the good query sent after them.
    let mut response = build_query(50, "web", TYPE_A).unwrap();
    response[2] |= 0x80;
    for junk in [&[][..], &[0xff; 5], &[0xc0; 300], &response] {
        sock.send_to(junk, at).await.unwrap();
    }
    // A bad question with a readable header: FORMERR.
    sock.send_to(&[0, 51, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12], at)
        .await
        .unwrap();
    let m = recv(&sock).await;
    assert_eq!((m.header.id, m.header.rcode()), (51, RCODE_FORMERR));
    sock.send_to(&build_query(52, "web", TYPE_A).unwrap(), at)
        .await
        .unwrap();
    let m = recv(&sock).await;
    assert_eq!(m.header.id, 52);
    assert_eq!(ips(&m), [ip(2)]);
}

#[tokio::test]
async fn server_forwards_unknown_names_to_upstreams() {
    let (up, mut seen, up_task) = fake_upstream().await;
    let server = local_server(vec![up]).await;
    let at = server.local_addr();

    let m = ask(at, 0x7777, "Example.ORG", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_NOERROR);
    assert_eq!(ips(&m), [Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(m.answers[0].ttl, 30);
    // The query went upstream as the client wrote it.
    assert_eq!(seen.recv().await.unwrap(), "Example.ORG.");
    // The network's names are not.
    let m = ask(at, 2, "web", TYPE_A).await;
    assert_eq!(ips(&m), [ip(2)]);
    let m = ask(at, 3, "other", TYPE_A).await;
    assert_eq!(ips(&m), [Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(seen.recv().await.unwrap(), "other.");
    assert!(seen.try_recv().is_err());
    up_task.abort();
}

#[tokio::test]
async fn each_client_is_forwarded_to_its_own_upstreams() {
    // A container with --dns asks its servers; the others the host's.
    let (host_up, mut host_seen, host_task) = fake_upstream().await;
    let (own_up, mut own_seen, own_task) = fake_upstream().await;
    let with_dns = client().await;
    let with_dns_addr = with_dns.local_addr().unwrap();
    let upstreams: Upstreams = Arc::new(move |client| {
        if client == with_dns_addr {
            vec![own_up]
        } else {
            vec![host_up]
        }
    });
    let names: ClientNames = Arc::new(|_, _: &str| None);
    let server = Server::spawn_for_clients("127.0.0.1:0".parse().unwrap(), names, upstreams)
        .await
        .unwrap();
    let at = server.local_addr();

    with_dns
        .send_to(&build_query(1, "mine.test", TYPE_A).unwrap(), at)
        .await
        .unwrap();
    assert_eq!(recv(&with_dns).await.header.id, 1);
    assert_eq!(own_seen.recv().await.unwrap(), "mine.test.");
    let m = ask(at, 2, "theirs.test", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_NOERROR);
    assert_eq!(host_seen.recv().await.unwrap(), "theirs.test.");
    assert!(own_seen.try_recv().is_err());
    assert!(host_seen.try_recv().is_err());
    host_task.abort();
    own_task.abort();
}

#[tokio::test]
async fn server_tries_the_next_upstream() {
    // One upstream that never answers, one with nothing bound (ICMP
    // port unreachable), one answering SERVFAIL, then the good one.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let (up, mut seen, up_task) = fake_upstream().await;
    let server = local_server(vec![silent.local_addr().unwrap(), closed, up]).await;
    let m = ask(server.local_addr(), 11, "example.org", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_NOERROR);
    assert_eq!(ips(&m), [Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(seen.recv().await.unwrap(), "example.org.");

    // Only SERVFAIL answers: the client gets one.
    let server = local_server(vec![up, closed]).await;
    let m = ask(server.local_addr(), 12, "fail", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_SERVFAIL);

    // No upstream answers at all: SERVFAIL of our own.
    let server = local_server(vec![silent.local_addr().unwrap(), closed]).await;
    let m = ask(server.local_addr(), 13, "example.org", TYPE_A).await;
    assert_eq!(m.header.rcode(), RCODE_SERVFAIL);
    assert_eq!(m.questions[0].name.to_string(), "example.org.");
    up_task.abort();
}

#[tokio::test]
async fn answers_about_another_question_are_ignored() {
    // An upstream that first answers a different question under the right
    // id (as a spoofer would), then the right one.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let up = sock.local_addr().unwrap();
    let up_task = tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        let (n, peer) = sock.recv_from(&mut buf).await.unwrap();
        let q = Message::parse(&buf[..n]).unwrap();
        for (name, last) in [("evil.example", 66), ("EXAMPLE.org", 1)] {
            let question = Question {
                name: Name::from_dotted(name).unwrap(),
                ..q.questions[0].clone()
            };
            let r = Message {
                header: Header {
                    id: q.header.id,
                    flags: q.header.reply_flags(RCODE_NOERROR),
                },
                answers: vec![Record::a(
                    question.name.clone(),
                    30,
                    Ipv4Addr::new(192, 0, 2, last),
                )],
                questions: vec![question],
                authority: vec![],
                additional: vec![],
            };
            sock.send_to(&r.to_bytes(), peer).await.unwrap();
        }
    });
    let server = local_server(vec![up]).await;
    let m = ask(server.local_addr(), 21, "example.org", TYPE_A).await;
    assert_eq!(ips(&m), [Ipv4Addr::new(192, 0, 2, 1)]);
    up_task.await.unwrap();
}

#[tokio::test]
async fn forwarding_does_not_hold_up_local_answers() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = local_server(vec![silent.local_addr().unwrap()]).await;
    let at = server.local_addr();
    let sock = client().await;
    sock.send_to(&build_query(1, "example.org", TYPE_A).unwrap(), at)
        .await
        .unwrap();
    sock.send_to(&build_query(2, "web", TYPE_A).unwrap(), at)
        .await
        .unwrap();
    // The local answer comes first, the forwarded query's SERVFAIL after
    // its upstream timed out.
    let first = recv(&sock).await;
    assert_eq!(first.header.id, 2);
    assert_eq!(ips(&first), [ip(2)]);
    let second = recv(&sock).await;
    assert_eq!(
        (second.header.id, second.header.rcode()),
        (1, RCODE_SERVFAIL)
    );
}

#[tokio::test]
async fn stopping_the_server_frees_its_port() {
    let server = local_server(vec![]).await;
    let at = server.local_addr();
    server.stop();
    // The task lets go of the socket once aborted; rebinding then works.
    let mut rebound = None;
    for _ in 0..100 {
        tokio::task::yield_now().await;
        if let Ok(s) = UdpSocket::bind(at).await {
            rebound = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rebound.is_some(), "{at} still bound after stop");
}

#[tokio::test]
async fn spawn_reports_what_it_could_not_bind() {
    let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let at = taken.local_addr().unwrap();
    let err = Server::spawn(at, names(), vec![]).await.err().unwrap();
    let text = err.to_string();
    assert!(text.contains(&at.to_string()), "{text}");
    assert!(text.contains("DNS"), "{text}");
}

/// busybox's resolver client (as in a container) against the server.
#[tokio::test]
async fn busybox_nslookup_resolves_names() {
    let busybox = std::path::Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("skipped: no /bin/busybox");
        return;
    }
    let server = local_server(vec![]).await;
    let run = |name: &'static str| {
        let at = server.local_addr();
        async move {
            let out = tokio::time::timeout(
                WAIT,
                tokio::process::Command::new("/bin/busybox")
                    .args(["nslookup", name, &at.to_string()])
                    .output(),
            )
            .await
            .expect("busybox nslookup hung")
            .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (ok, text) = run("web").await;
    eprintln!("{text}");
    assert!(ok, "{text}");
    assert!(text.contains("Address: 10.0.0.2"), "{text}");
    let (ok, text) = run("gone").await;
    eprintln!("{text}");
    assert!(!ok, "{text}");
    assert!(text.contains("NXDOMAIN"), "{text}");
}
