//! `pier registry serve`: an OCI distribution spec v1.1 (and Docker
//! registry v2) server on the filesystem, and `pier registry gc`.
//!
//! Blobs are content-addressed and shared by all repositories; uploads
//! stream to disk with a running sha256 and become visible only once
//! verified (see `storage` for the layout). Authentication is htpasswd
//! (bcrypt) Basic or self-issued bearer tokens, with per-repository
//! pull/push rules; TLS comes from a PEM certificate and key.
//! Design notes: docs/registry.md.

mod auth;
mod blobs;
pub mod config;
mod discovery;
mod errors;
pub mod gc;
mod http;
mod manifests;
pub mod names;
mod routes;
mod server;
mod storage;
mod tls;
mod uploads;

pub use config::{AccessRule, Config};
pub use server::{serve_blocking, Server};
