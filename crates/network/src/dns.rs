//! The embedded DNS resolver of a user-defined network: pierd listens on
//! the network's gateway address, port 53 (UDP), answers A queries for
//! the names it knows (container names, aliases, short ids) and forwards
//! every other query to the host's resolvers, as Docker's 127.0.0.11 does.
//! Queries are untrusted input: malformed ones are dropped, never panic.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Resolves a name (lower case, without the trailing dot) on one network:
/// `Some(addresses)` if the name is the network's, `None` to forward.
pub type Names = Arc<dyn Fn(&str) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// A running resolver; dropping it (or [`Server::stop`]) stops it.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
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
        let _ = (listen, names, upstreams);
        todo!()
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
    todo!("{resolv_conf}")
}
