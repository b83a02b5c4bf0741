//! The /etc/hosts and /etc/resolv.conf pierd writes for a container on a
//! bridge network, as docker writes them.

use std::net::Ipv4Addr;

const LOCAL: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                     fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
                     ff02::2\tip6-allrouters\n";

/// `extra` are `--add-host` entries already resolved to (name, address);
/// the container's own address names its hostname.
pub fn hosts(hostname: &str, own: Option<Ipv4Addr>, extra: &[(String, String)]) -> String {
    let mut s = String::from(LOCAL);
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    match own {
        Some(ip) => s.push_str(&format!("{ip}\t{hostname}\n")),
        None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    s
}

/// What a container's resolv.conf says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Resolv {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The host's resolv.conf, taken apart.
pub fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => r.nameservers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => r.search = words.map(str::to_string).collect(),
            Some("options") => r.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    r
}

/// A container's resolv.conf. `embedded`: the network's resolver (user
/// networks), which then is the only nameserver; otherwise `--dns`, else
/// the host's non-loopback nameservers, else Google's (as docker).
/// `--dns-search`/`--dns-option` replace the host's search and options.
pub fn resolv_conf(
    host: &Resolv,
    embedded: Option<Ipv4Addr>,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let nameservers: Vec<String> = match embedded {
        Some(gw) => vec![gw.to_string()],
        None if !dns.is_empty() => dns.to_vec(),
        None => {
            let usable: Vec<String> = host
                .nameservers
                .iter()
                .filter(|n| !is_loopback(n))
                .cloned()
                .collect();
            if usable.is_empty() {
                vec!["8.8.8.8".into(), "8.8.4.4".into()]
            } else {
                usable
            }
        }
    };
    let search = if search.is_empty() {
        &host.search
    } else {
        search
    };
    let options = if options.is_empty() {
        &host.options
    } else {
        options
    };
    let mut s = String::new();
    for n in nameservers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<std::net::IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_the_container_by_its_address() {
        let h = hosts(
            "web",
            Some(Ipv4Addr::new(10, 1, 0, 2)),
            &[("db".into(), "10.9.9.9".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.9.9.9\tdb\n"));
        assert!(h.ends_with("10.1.0.2\tweb\n"), "{h}");
    }

    #[test]
    fn resolv_conf_as_docker() {
        let host = parse_resolv("# x\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch a.example b\noptions ndots:2\n");
        assert_eq!(host.nameservers, ["127.0.0.53", "10.0.0.1"]);
        // Loopback resolvers are unreachable from the container.
        assert_eq!(
            resolv_conf(&host, None, &[], &[], &[]),
            "nameserver 10.0.0.1\nsearch a.example b\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf(
                &host,
                Some(Ipv4Addr::new(10, 1, 0, 1)),
                &["1.1.1.1".into()],
                &["x".into()],
                &[]
            ),
            "nameserver 10.1.0.1\nsearch x\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf(&host, None, &["9.9.9.9".into()], &[], &["ndots:1".into()]),
            "nameserver 9.9.9.9\nsearch a.example b\noptions ndots:1\n"
        );
        let only_local = parse_resolv("nameserver 127.0.0.1\n");
        assert_eq!(
            resolv_conf(&only_local, None, &[], &[], &[]),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
