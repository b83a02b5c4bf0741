//! pier-shim: one small process per container. It creates the container
//! through pier's runtime, owns its stdio (json-file log, attach clients),
//! reaps its init and records its exit status, so the container keeps
//! running while pierd is stopped, killed or upgraded.
//!
//! pierd starts `pier-shim STATE_DIR` after writing `STATE_DIR/shim.json`
//! ([`ShimConfig`]). The shim forks itself into the background (its own
//! session), creates the container, prints one [`Ready`] line on stdout and
//! lets its foreground half exit. From then on it serves the line protocol
//! of [`protocol`] on `STATE_DIR/shim.sock` and writes `STATE_DIR/exit.json`
//! ([`ExitInfo`]) when the container's init exits. The whole process is
//! single-threaded: it forks the container's init.

pub mod jsonlog;
pub mod protocol;
mod server;
pub mod trim;

pub use protocol::{ExitInfo, Ready, Request, Response, ShimConfig};

use std::path::Path;

/// File names inside a shim's state directory.
pub const CONFIG_FILE: &str = "shim.json";
pub const SOCKET_FILE: &str = "shim.sock";
pub const EXIT_FILE: &str = "exit.json";
pub const LOG_FILE: &str = "shim.log";

/// Reads the exit record a shim left behind, if the container has exited.
pub fn read_exit(state_dir: &Path) -> Option<ExitInfo> {
    let data = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Entry point of the `pier-shim` binary.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, flag] if flag == "--version" => {
            println!("pier-shim {}", env!("CARGO_PKG_VERSION"));
            0
        }
        [_, dir] => server::run(Path::new(dir)),
        _ => {
            eprintln!("usage: pier-shim STATE_DIR (started by pierd, not by hand)");
            2
        }
    }
}
