//! Links over rtnetlink: the bridge of a network, and a veth pair per
//! container attachment (host end on the bridge, the other end moved into
//! the container's namespace as `eth0`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::Error;

/// Turns an rtnetlink error into `what: reason` (the kernel's errno when it
/// sent one, e.g. `creating bridge pier0: File exists (os error 17)`).
fn nl_error(what: impl Into<String>, e: rtnetlink::Error) -> Error {
    let source = match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    };
    Error::io(what, source)
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Runs `f` with a netlink handle whose socket is opened in the calling
/// thread's network namespace, on a current-thread runtime made for it (on
/// a scoped thread, which inherits the namespace, when the caller is
/// itself inside a runtime).
pub(crate) fn with_netlink<T, F, Fut>(f: F) -> crate::Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = crate::Result<T>>,
{
    let run = move || -> crate::Result<T> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::io("starting a runtime for netlink", e))?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| Error::io("opening a netlink socket", e))?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(run)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        run()
    }
}

/// The link named `name`, or `None` when there is none.
async fn get_link(h: &Handle, name: &str) -> crate::Result<Option<LinkMessage>> {
    let got = h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await;
    match got {
        Ok(link) => Ok(link),
        Err(e) if errno_of(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_error(format!("looking up link {name}"), e)),
    }
}

async fn index_of(h: &Handle, name: &str) -> crate::Result<Option<u32>> {
    Ok(get_link(h, name).await?.map(|l| l.header.index))
}

async fn set_up(h: &Handle, name: &str, index: u32) -> crate::Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| nl_error(format!("setting {name} up"), e))
}

/// Sets the link `name` of the caller's namespace up (netns uses it for `lo`).
pub(crate) fn set_up_by_name(name: &str) -> crate::Result<()> {
    with_netlink(|h| async move {
        let index = index_of(&h, name).await?.ok_or_else(|| not_found(name))?;
        set_up(&h, name, index).await
    })
}

async fn delete_link(h: &Handle, what: &str, name: &str) -> crate::Result<()> {
    let Some(index) = index_of(h, name).await? else {
        return Ok(());
    };
    match h.link().del(index).execute().await {
        Err(e) if errno_of(&e) != Some(libc::ENODEV) => {
            Err(nl_error(format!("deleting {what} {name}"), e))
        }
        _ => Ok(()),
    }
}

fn not_found(name: &str) -> Error {
    Error::io(
        format!("looking up link {name}"),
        io::Error::new(io::ErrorKind::NotFound, "no such device"),
    )
}

fn check_name(what: &str, name: &str) -> crate::Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        return Err(Error::Invalid(format!(
            "invalid {what} name {name:?}: a device name has 1 to 15 bytes, without '/', ':' or spaces"
        )));
    }
    Ok(())
}

fn kind_of(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}

async fn ensure_bridge_in(h: &Handle, b: &Bridge) -> crate::Result<()> {
    let name = b.name.as_str();
    let index = match get_link(h, name).await? {
        Some(link) => {
            if kind_of(&link) != Some(&InfoKind::Bridge) {
                return Err(Error::io(
                    format!("using bridge {name}"),
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "a device of that name exists and is not a bridge",
                    ),
                ));
            }
            link.header.index
        }
        None => {
            let mut msg = LinkBridge::new(name);
            if let Some(mtu) = b.mtu {
                msg = msg.mtu(mtu);
            }
            match h.link().add(msg.build()).execute().await {
                // Made meanwhile by someone else: use it.
                Err(e) if errno_of(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(nl_error(format!("creating bridge {name}"), e)),
                Ok(()) => {}
            }
            index_of(h, name).await?.ok_or_else(|| not_found(name))?
        }
    };
    if let Some(mtu) = b.mtu {
        h.link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .execute()
            .await
            .map_err(|e| nl_error(format!("setting the MTU of bridge {name} to {mtu}"), e))?;
    }
    let gateway = IpAddr::V4(b.gateway);
    let held: Vec<_> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl_error(format!("listing the addresses of bridge {name}"), e))?;
    let has = held.iter().any(|m| {
        m.header.prefix_len == b.prefix
            && m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Local(ip) if *ip == gateway))
    });
    // Any other IPv4 address goes, as docker's bridge driver does: a
    // bridge re-addressed (a new --bip) must not keep routing its old
    // subnet.
    for m in held.into_iter().filter(|m| {
        m.header.family == AddressFamily::Inet
            && !(m.header.prefix_len == b.prefix
                && m.attributes
                    .iter()
                    .any(|a| matches!(a, AddressAttribute::Local(ip) if *ip == gateway)))
    }) {
        let old = m
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(format!("{ip}/{}", m.header.prefix_len)),
                _ => None,
            })
            .unwrap_or_default();
        match h.address().del(m).execute().await {
            Err(e) if errno_of(&e) != Some(libc::EADDRNOTAVAIL) => {
                return Err(nl_error(
                    format!("removing the old address {old} of bridge {name}"),
                    e,
                ))
            }
            _ => {}
        }
    }
    if !has {
        match h.address().add(index, gateway, b.prefix).execute().await {
            Err(e) if errno_of(&e) == Some(libc::EEXIST) => {}
            Err(e) => {
                return Err(nl_error(
                    format!("adding address {}/{} to bridge {name}", b.gateway, b.prefix),
                    e,
                ))
            }
            Ok(()) => {}
        }
    }
    set_up(h, name, index).await
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// Device name, at most 15 bytes: `pier0`, `pier-0123456789`.
    pub name: String,
    /// The gateway address the bridge holds, with the subnet's prefix.
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub mtu: Option<u32>,
}

/// Makes sure the bridge exists, holds the gateway address and is up
/// (idempotent: pierd calls it on every start).
pub fn ensure_bridge(bridge: &Bridge) -> crate::Result<()> {
    check_name("bridge", &bridge.name)?;
    with_netlink(|h| async move { ensure_bridge_in(&h, bridge).await })
}

/// Deletes the bridge device; a missing one is fine.
pub fn delete_bridge(name: &str) -> crate::Result<()> {
    check_name("bridge", name)?;
    with_netlink(|h| async move { delete_link(&h, "bridge", name).await })
}

/// One container's link to one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub bridge: String,
    /// The host end's name: `veth` + 7 hex digits.
    pub host_ifname: String,
    /// The container's namespace (a netns file).
    pub netns: PathBuf,
    /// The name inside: `eth0`, `eth1`, ...
    pub ifname: String,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// Default route through this gateway (the first network's only).
    pub gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
}

/// Creates the veth pair, puts the host end on the bridge (hairpin on)
/// and up, moves the peer into the namespace as `ifname` with its MAC and
/// address, up, with the default route when asked. Undoes what it did on
/// failure.
pub fn attach(a: &Attachment) -> crate::Result<()> {
    check_name("veth", &a.host_ifname)?;
    check_name("interface", &a.ifname)?;
    check_name("bridge", &a.bridge)?;
    let ns = std::fs::File::open(&a.netns).map_err(|e| {
        Error::io(
            format!("opening network namespace {}", a.netns.display()),
            e,
        )
    })?;
    let host = a.host_ifname.as_str();
    with_netlink(|h| async move { add_veth(&h, a, ns.as_raw_fd()).await })?;
    let done = configure_host_end(a).and_then(|()| {
        let inside = a.clone();
        crate::netns::run_in(&a.netns, move || configure_inside(&inside))?
    });
    if let Err(e) = done {
        // The peer goes along with the host end.
        let _ = detach(host);
        return Err(e);
    }
    Ok(())
}

/// Creates the pair: the host end on the bridge, the peer made directly
/// in the namespace `ns` as `ifname` with its MAC (and MTU).
async fn add_veth(h: &Handle, a: &Attachment, ns: std::os::fd::RawFd) -> crate::Result<()> {
    let bridge = index_of(h, &a.bridge).await?.ok_or_else(|| {
        Error::io(
            format!("attaching to bridge {}", a.bridge),
            io::Error::new(io::ErrorKind::NotFound, "no such bridge"),
        )
    })?;
    let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(a.ifname.clone())
        .address(a.mac.to_vec())
        .setns_by_fd(ns);
    let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(a.host_ifname.clone())
        .controller(bridge);
    if let Some(mtu) = a.mtu {
        peer = peer.mtu(mtu);
        host = host.mtu(mtu);
    }
    let msg = host
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
    h.link().add(msg).execute().await.map_err(|e| {
        nl_error(
            format!(
                "creating veth pair {} (on bridge {}) and {} in {}",
                a.host_ifname,
                a.bridge,
                a.ifname,
                a.netns.display()
            ),
            e,
        )
    })
}

/// Hairpin mode on the host end's bridge port, and the host end up.
fn configure_host_end(a: &Attachment) -> crate::Result<()> {
    let name = a.host_ifname.as_str();
    with_netlink(|h| async move {
        let index = index_of(&h, name).await?.ok_or_else(|| not_found(name))?;
        h.link()
            .set_port(LinkBridgePort::new(index).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| nl_error(format!("setting hairpin mode on {name}"), e))?;
        set_up(&h, name, index).await
    })
}

/// Inside the namespace: address, up, default route.
fn configure_inside(a: &Attachment) -> crate::Result<()> {
    let name = a.ifname.as_str();
    with_netlink(|h| async move {
        let index = index_of(&h, name).await?.ok_or_else(|| not_found(name))?;
        h.address()
            .add(index, IpAddr::V4(a.address), a.prefix)
            .execute()
            .await
            .map_err(|e| {
                nl_error(
                    format!("adding address {}/{} to {name}", a.address, a.prefix),
                    e,
                )
            })?;
        set_up(&h, name, index).await?;
        if let Some(gw) = a.gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            h.route()
                .add(route)
                .execute()
                .await
                .map_err(|e| nl_error(format!("adding the default route via {gw} on {name}"), e))?;
        }
        Ok(())
    })
}

/// Deletes the host end of a veth pair (which takes its peer along); a
/// missing one is fine.
pub fn detach(host_ifname: &str) -> crate::Result<()> {
    check_name("veth", host_ifname)?;
    with_netlink(|h| async move { delete_link(&h, "veth", host_ifname).await })
}

/// Whether a link of that name exists in the caller's namespace.
pub fn exists(name: &str) -> crate::Result<bool> {
    if check_name("link", name).is_err() {
        return Ok(false);
    }
    with_netlink(|h| async move { Ok(index_of(&h, name).await?.is_some()) })
}

/// A fresh host-end name: `veth` + 7 random hex digits.
pub fn host_ifname() -> String {
    format!("veth{:07x}", rand::random::<u32>() & 0x0fff_ffff)
}
