//! pierd's settings: where state lives and how to reach it.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pierd",
    version,
    about = "pier's daemon: serves the Docker Engine API on a unix socket"
)]
pub struct Config {
    /// Persistent state: images, layers, containers.
    #[arg(long, env = "PIER_DATA_ROOT", default_value = "/var/lib/pier")]
    pub data_root: PathBuf,
    /// Runtime state: the API socket, shim sockets, pid files.
    #[arg(long, env = "PIER_EXEC_ROOT", default_value = "/run/pier")]
    pub exec_root: PathBuf,
    /// Socket to listen on (unix:///path or a path); default EXEC_ROOT/pier.sock.
    #[arg(short = 'H', long, env = "PIER_HOST")]
    pub host: Option<String>,
    /// The pier-shim binary; default: next to pierd, then $PATH.
    #[arg(long, env = "PIER_SHIM_BINARY")]
    pub shim_binary: Option<PathBuf>,
    /// Registry (HOST[:PORT]) to reach over plain http; repeatable.
    /// localhost, 127.0.0.0/8 and ::1 always are.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Per-registry CA certificates: DIR/HOST[:PORT]/*.crt.
    #[arg(long, env = "PIER_CERTS_DIR", default_value = "/etc/docker/certs.d")]
    pub certs_dir: PathBuf,
    /// Layers one pull downloads at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_downloads: u16,
    /// Layers one push uploads at once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_uploads: u16,
    /// Settings file in daemon.json's format [default: /etc/pier/daemon.json if it exists].
    #[arg(long, env = "PIER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// The default bridge network's device, made if missing; `none`: no
    /// default bridge (containers then default to no network).
    #[arg(short = 'b', long, env = "PIER_BRIDGE", default_value = "pier0")]
    pub bridge: String,
    /// The default bridge's address and prefix, e.g. 10.1.0.1/24
    /// [default: the first free subnet of the address pools].
    #[arg(long, env = "PIER_BIP", value_parser = crate::network::parse_bip)]
    pub bip: Option<(std::net::Ipv4Addr, u8)>,
    /// Where networks without --subnet get theirs: base=CIDR,size=N;
    /// repeatable [default: docker's, 172.17-31.0.0/16 then 192.168.0.0/16 in /20s].
    #[arg(long = "default-address-pool", env = "PIER_DEFAULT_ADDRESS_POOL",
          value_parser = crate::network::parse_pool, value_delimiter = ';')]
    pub default_address_pools: Vec<pier_network::ipam::Pool>,
}

impl Config {
    /// Settings for a daemon rooted in two directories (tests, tools).
    pub fn with_roots(data_root: PathBuf, exec_root: PathBuf) -> Self {
        Config {
            data_root,
            exec_root,
            host: None,
            shim_binary: None,
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            config_file: None,
            // No default bridge: these daemons run side by side.
            bridge: "none".into(),
            bip: None,
            default_address_pools: Vec::new(),
        }
    }

    /// The registry client's settings.
    pub fn registry_options(&self) -> pier_registry_client::Options {
        pier_registry_client::Options {
            insecure_registries: self.insecure_registries.clone(),
            certs_dir: self.certs_dir.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads.into(),
            max_concurrent_uploads: self.max_concurrent_uploads.into(),
            ..Default::default()
        }
    }

    pub fn socket_path(&self) -> PathBuf {
        match &self.host {
            Some(h) => PathBuf::from(h.strip_prefix("unix://").unwrap_or(h)),
            None => self.exec_root.join("pier.sock"),
        }
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }

    /// Per-container directory of runtime state (shim socket, exit record).
    pub fn container_exec_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }

    /// The network settings: the default bridge, the pools, where
    /// records and namespaces live.
    pub fn net_config(&self) -> crate::network::NetConfig {
        crate::network::NetConfig {
            bridge: (self.bridge != "none" && !self.bridge.is_empty()).then(|| self.bridge.clone()),
            bip: self.bip,
            pools: if self.default_address_pools.is_empty() {
                pier_network::ipam::default_pools()
            } else {
                self.default_address_pools.clone()
            },
            dir: crate::network::store::dir(&self.data_root),
            netns_dir: self.exec_root.join("netns"),
        }
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }

    pub fn shim_binary(&self) -> PathBuf {
        if let Some(p) = &self.shim_binary {
            return p.clone();
        }
        sibling_binary("pier-shim")
    }

    /// The pier-runtime binary (build steps run it): next to the shim.
    pub fn runtime_binary(&self) -> PathBuf {
        let shim = self.shim_binary();
        match shim.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && dir.join("pier-runtime").exists() => {
                dir.join("pier-runtime")
            }
            _ => sibling_binary("pier-runtime"),
        }
    }
}

/// `name` next to the running executable if it is there, else `name` for a
/// $PATH lookup.
pub fn sibling_binary(name: &str) -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let candidate = dir.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_defaults_to_exec_root() {
        let mut c = Config::with_roots("/d".into(), "/e".into());
        assert_eq!(c.socket_path(), PathBuf::from("/e/pier.sock"));
        c.host = Some("unix:///tmp/x.sock".into());
        assert_eq!(c.socket_path(), PathBuf::from("/tmp/x.sock"));
    }

    #[test]
    fn registry_flags_parse() {
        use clap::Parser;
        let c = Config::try_parse_from([
            "pierd",
            "--insecure-registry",
            "a:5000",
            "--insecure-registry=b",
            "--max-concurrent-downloads",
            "7",
        ])
        .unwrap();
        assert_eq!(c.insecure_registries, ["a:5000", "b"]);
        let o = c.registry_options();
        assert_eq!(o.max_concurrent_downloads, 7);
        assert_eq!(o.max_concurrent_uploads, 5);
        assert!(Config::try_parse_from(["pierd", "--max-concurrent-uploads", "0"]).is_err());
    }
}
