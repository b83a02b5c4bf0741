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
}

impl Config {
    /// Settings for a daemon rooted in two directories (tests, tools).
    pub fn with_roots(data_root: PathBuf, exec_root: PathBuf) -> Self {
        Config {
            data_root,
            exec_root,
            host: None,
            shim_binary: None,
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
}
