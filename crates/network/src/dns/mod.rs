//! The embedded DNS resolver of a user-defined network: pierd listens on
//! the network's gateway address, port 53 (UDP), answers A queries for
//! the names it knows (container names, aliases, short ids) and forwards
//! every other query to the host's resolvers, as Docker's 127.0.0.11 does.
//! Queries are untrusted input: malformed ones are dropped, never panic.

pub mod wire;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use wire::{Header, Message, Question, RawHeader, Record};

/// Resolves a name (lower case, without the trailing dot) on one network:
/// `Some(addresses)` if the name is the network's, `None` to forward.
pub type Names = Arc<dyn Fn(&str) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// As [`Names`], knowing who asks: the client's address tells which
/// container asks, so a container on several networks resolves the names
/// of all of them (docker's resolver is per container).
pub type ClientNames = Arc<dyn Fn(SocketAddr, &str) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// Where the queries of a client (by its address) are forwarded: a
/// container's own `--dns` servers, or the host's.
pub type Upstreams = Arc<dyn Fn(SocketAddr) -> Vec<SocketAddr> + Send + Sync>;

/// The TTL of the answers for the network's names, as docker's resolver.
pub const TTL: u32 = 600;
/// How long one upstream has to answer before the next one is asked.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded queries in flight at once; more get SERVFAIL straight away.
pub const MAX_FORWARDS: usize = 256;
/// The largest datagram read (a query or an upstream's answer).
const MAX_DATAGRAM: usize = 65535;

/// A running resolver; dropping it (or [`Server::stop`]) stops it.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
    local: SocketAddr,
}

impl Server {
    /// Binds `listen` (UDP) and serves from a tokio task. `upstreams`
    /// receive what `names` does not know (nothing is forwarded when it is
    /// empty: SERVFAIL).
    pub async fn spawn(
        listen: SocketAddr,
        names: Names,
        upstreams: Vec<SocketAddr>,
    ) -> crate::Result<Server> {
        let names: ClientNames = Arc::new(move |_, name: &str| names(name));
        let upstreams: Upstreams = Arc::new(move |_| upstreams.clone());
        Server::spawn_for_clients(listen, names, upstreams).await
    }

    /// As [`Server::spawn`], with lookups and upstreams that depend on the
    /// client's address.
    pub async fn spawn_for_clients(
        listen: SocketAddr,
        names: ClientNames,
        upstreams: Upstreams,
    ) -> crate::Result<Server> {
        let socket = UdpSocket::bind(listen).await.map_err(|e| {
            crate::Error::io(
                format!(
                    "binding the embedded DNS resolver on {listen}/udp (is the address on a \
                     bridge and the port free?)"
                ),
                e,
            )
        })?;
        let local = socket.local_addr().map_err(|e| {
            crate::Error::io(format!("reading the DNS resolver's address ({listen})"), e)
        })?;
        let task = tokio::spawn(serve(Arc::new(socket), names, upstreams));
        Ok(Server { task, local })
    }

    /// The address it listens on (the port chosen when `listen` had 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The nameservers of a resolv.conf's text, loopback ones left out (they
/// are unreachable from a container's namespace), port 53.
pub fn upstreams_of(resolv_conf: &str) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for line in resolv_conf.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next().and_then(nameserver_addr) else {
            continue;
        };
        let ip = addr.ip().to_canonical();
        if ip.is_loopback() || ip.is_unspecified() || out.contains(&addr) {
            continue;
        }
        out.push(addr);
    }
    out
}

/// `192.0.2.1`, `2001:db8::1` or `fe80::1%eth0` (a zone by name or index).
fn nameserver_addr(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (ip, zone) = text.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let scope = match zone.parse::<u32>() {
        Ok(index) => index,
        Err(_) => {
            let name = std::ffi::CString::new(zone).ok()?;
            // SAFETY: `name` is a valid NUL-terminated string.
            match unsafe { libc::if_nametoindex(name.as_ptr()) } {
                0 => return None,
                index => index,
            }
        }
    };
    Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope)))
}

/// What to do with one datagram.
#[derive(Debug, PartialEq)]
enum Action {
    /// Not a query whose sender can be told anything.
    Drop,
    Reply(Vec<u8>),
    /// Not the network's name: ask the upstreams.
    Forward(Header, Question),
}

async fn serve(socket: Arc<UdpSocket>, names: ClientNames, upstreams: Upstreams) {
    // Dropped with this task (Server::stop or drop): aborts the forwards.
    let mut forwards = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(_) => {
                // A transient error (e.g. a queued ICMP error): do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while forwards.try_join_next().is_some() {}
        let query = &buf[..n];
        match answer(query, &|name: &str| names(client, name)) {
            Action::Drop => {}
            Action::Reply(reply) => {
                let _ = socket.send_to(&reply, client).await;
            }
            Action::Forward(header, question) => {
                let upstreams = upstreams(client);
                if upstreams.is_empty() || forwards.len() >= MAX_FORWARDS {
                    let reply = reply(&header, &question, wire::RCODE_SERVFAIL, vec![]);
                    let _ = socket.send_to(&reply, client).await;
                } else {
                    forwards.spawn(forward(
                        query.to_vec(),
                        header,
                        question,
                        client,
                        socket.clone(),
                        upstreams,
                    ));
                }
            }
        }
    }
}

/// The answer to one datagram, from the network's names alone.
fn answer(packet: &[u8], names: &dyn Fn(&str) -> Option<Vec<Ipv4Addr>>) -> Action {
    let Some(RawHeader {
        header, qdcount, ..
    }) = wire::parse_header(packet)
    else {
        return Action::Drop;
    };
    if header.is_response() {
        // Never answer an answer: two resolvers could bounce forever.
        return Action::Drop;
    }
    if header.opcode() != 0 {
        return Action::Reply(wire::header_only_reply(&header, wire::RCODE_NOTIMP));
    }
    if qdcount != 1 {
        return Action::Reply(wire::header_only_reply(&header, wire::RCODE_FORMERR));
    }
    let Ok((question, _)) = wire::read_question(packet, wire::HEADER_LEN) else {
        return Action::Reply(wire::header_only_reply(&header, wire::RCODE_FORMERR));
    };
    let known = match question.name.lookup_key() {
        Some(key) if question.qclass == wire::CLASS_IN && !key.is_empty() => {
            // A panicking lookup must not take the network's resolver down.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| names(&key))) {
                Ok(known) => known,
                Err(_) => {
                    return Action::Reply(reply(&header, &question, wire::RCODE_SERVFAIL, vec![]))
                }
            }
        }
        _ => None,
    };
    match known {
        None => Action::Forward(header, question),
        Some(ips) if ips.is_empty() => {
            Action::Reply(reply(&header, &question, wire::RCODE_NXDOMAIN, vec![]))
        }
        // AAAA and every other type of a known name: no records, no error
        // (the name exists), as docker.
        Some(_) if question.qtype != wire::TYPE_A => {
            Action::Reply(reply(&header, &question, wire::RCODE_NOERROR, vec![]))
        }
        Some(mut ips) => {
            // Round robin between containers sharing an alias, as docker.
            use rand::seq::SliceRandom;
            ips.shuffle(&mut rand::rng());
            Action::Reply(reply(&header, &question, wire::RCODE_NOERROR, ips))
        }
    }
}

/// A reply to `header`'s query with its question and these A records, as
/// many as fit in 512 bytes (TC set when some were left out).
fn reply(header: &Header, question: &Question, rcode: u8, ips: Vec<Ipv4Addr>) -> Vec<u8> {
    const A_RECORD_LEN: usize = 16; // pointer, type, class, TTL, length, address
    let used = wire::HEADER_LEN + question.name.wire().len() + 4;
    let room = wire::UDP_MAX.saturating_sub(used) / A_RECORD_LEN;
    let mut flags = header.reply_flags(rcode);
    if ips.len() > room {
        flags |= wire::FLAG_TC;
    }
    Message {
        header: Header {
            id: header.id,
            flags,
        },
        questions: vec![question.clone()],
        answers: ips
            .into_iter()
            .take(room)
            .map(|ip| Record::a(question.name.clone(), TTL, ip))
            .collect(),
        authority: vec![],
        additional: vec![],
    }
    .to_bytes()
}

/// Asks each upstream in turn and relays the first answer (one that is
/// not SERVFAIL or REFUSED if any is) under the client's id; SERVFAIL when
/// none answers.
async fn forward(
    query: Vec<u8>,
    header: Header,
    question: Question,
    client: SocketAddr,
    socket: Arc<UdpSocket>,
    upstreams: Vec<SocketAddr>,
) {
    let mut fallback = None;
    for &upstream in upstreams.iter() {
        let Some(mut answer) = exchange(&query, &question, upstream).await else {
            continue;
        };
        answer[..2].copy_from_slice(&header.id.to_be_bytes());
        let rcode = answer[3] & 0x0f;
        if rcode == wire::RCODE_SERVFAIL || rcode == wire::RCODE_REFUSED {
            fallback.get_or_insert(answer);
            continue;
        }
        let _ = socket.send_to(&answer, client).await;
        return;
    }
    let answer =
        fallback.unwrap_or_else(|| reply(&header, &question, wire::RCODE_SERVFAIL, vec![]));
    let _ = socket.send_to(&answer, client).await;
}

/// Sends `query` to `upstream` under a random id from a fresh socket and
/// waits [`FORWARD_TIMEOUT`] for the answer with that id and `question`
/// (or no question, as a header-only error); `None` when there is none
/// (timeout, ICMP unreachable, ...). The answer is at least a header long.
async fn exchange(query: &[u8], question: &Question, upstream: SocketAddr) -> Option<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    // Connected: the kernel drops datagrams from anyone but the upstream.
    socket.connect(upstream).await.ok()?;
    let id: u16 = rand::random();
    let mut sent = query.to_vec();
    sent.get_mut(..2)?.copy_from_slice(&id.to_be_bytes());
    socket.send(&sent).await.ok()?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let deadline = tokio::time::Instant::now() + FORWARD_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        let Some(raw) = wire::parse_header(&buf[..n]) else {
            continue;
        };
        if raw.header.id == id && raw.header.is_response() && answers(&buf[..n], raw, question) {
            buf.truncate(n);
            return Some(buf);
        }
    }
}

/// Whether an upstream's answer is about `question` (names compared
/// without regard to ASCII case), or carries no question at all.
fn answers(answer: &[u8], raw: RawHeader, question: &Question) -> bool {
    match raw.qdcount {
        0 => true,
        1 => match wire::read_question(answer, wire::HEADER_LEN) {
            Ok((q, _)) => {
                q.qtype == question.qtype
                    && q.qclass == question.qclass
                    && q.name.wire().eq_ignore_ascii_case(question.name.wire())
            }
            Err(_) => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests;
