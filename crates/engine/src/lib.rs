//! pierd: the daemon. It serves the Docker Engine API on a unix socket,
//! keeps images (through pier-image) and container metadata under the data
//! root, and runs each container under its own pier-shim, so containers
//! outlive the daemon.

pub mod api;
pub mod build;
pub mod config;
pub mod container;
pub mod daemon;
pub mod daemon_file;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod host;
pub mod network;
pub mod shim;

pub use config::Config;
pub use engine::Engine;

/// The Docker Engine API version pierd speaks.
pub const API_VERSION: &str = "1.56";
/// The oldest API version clients may negotiate down to.
pub const MIN_API_VERSION: &str = "1.24";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
