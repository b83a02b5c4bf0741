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
