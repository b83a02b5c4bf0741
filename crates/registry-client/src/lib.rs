//! pier's registry client: OCI distribution / Docker registry v2.
//!
//! - [`client`]: one registry's base URL, authentication (Bearer tokens
//!   cached per scope, Basic) and retries;
//! - [`pull`]: resolve a reference for a platform, then fetch the missing
//!   layers in parallel, each stored and unpacked while it downloads;
//! - [`push`]: send the blobs a registry lacks (HEAD first, cross-repository
//!   mounts, monolithic or chunked uploads), then the manifest;
//! - [`progress`]: Docker's JSON progress messages.

pub mod auth;
pub mod client;
pub mod error;
pub mod fetch;
pub mod media;
pub mod progress;
pub mod pull;
pub mod push;
pub mod tls;

pub use auth::Credentials;
pub use client::{Client, Options, Registry};
pub use error::{Error, Result};
pub use media::Platform;
pub use progress::Message;
