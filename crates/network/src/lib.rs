//! Container networking for pierd, as Docker's bridge driver does it.
//!
//! - [`ipam`]: IPv4 subnets, address allocation, default address pools,
//!   MAC addresses derived from IPs (pure logic).
//! - [`ports`]: `-p/--publish` specs and docker's API shapes for them
//!   (pure logic), and host port reservations (bound sockets).
//! - [`netns`]: persistent network namespaces bind-mounted on a file, and
//!   running code inside one.
//! - [`link`]: bridges, veth pairs, addresses and routes over rtnetlink.
//! - [`firewall`]: nftables rules per network (masquerade, isolation,
//!   `--internal`) and per published port (DNAT).
//! - [`dns`]: the embedded resolver that answers container names on a
//!   user-defined network and forwards everything else.
//!
//! Everything here except [`dns`] is blocking: pierd calls it from
//! `spawn_blocking`. Nothing here forks: netlink sockets are opened inside
//! a namespace from a short-lived thread that `setns`es into it.

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;

/// What failed, on what, and the system's reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad user input (a subnet, a port spec, ...), with docker's message.
    #[error("{0}")]
    Invalid(String),
    /// A host port that something else holds: docker's
    /// `Bind for 0.0.0.0:8080 failed: port is already allocated`.
    #[error("{0}")]
    PortInUse(String),
    /// A system call, netlink request or nft run that failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
