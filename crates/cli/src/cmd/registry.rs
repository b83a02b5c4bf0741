//! `pier registry serve|gc`: the OCI distribution registry of
//! pier-registry-server, run in this process (not through pierd).

use crate::error::CliError;
use clap::{Args, Subcommand};
use pier_registry_server::Config;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve an OCI distribution (Docker registry v2) API from a directory
    Serve(ServeArgs),
    /// Remove blobs no manifest references
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file (flags given here override it)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT [default: 127.0.0.1:5000]
    #[arg(long)]
    addr: Option<String>,
    /// Storage directory [default: /var/lib/pier-registry]
    #[arg(long)]
    root: Option<PathBuf>,
    /// htpasswd file with bcrypt hashes (htpasswd -B): require authentication
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// With --htpasswd, let anonymous clients pull
    #[arg(long)]
    anonymous_pull: bool,
    /// With --htpasswd, challenge with Bearer and issue tokens at /v2/token
    #[arg(long)]
    token_auth: bool,
    /// Refuse pushes and deletes
    #[arg(long)]
    read_only: bool,
    /// PEM certificate (chain) for TLS
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest manifest accepted, in bytes [default: 4194304]
    #[arg(long)]
    max_manifest_bytes: Option<u64>,
    /// Seconds after which an idle upload is deleted [default: 86400]
    #[arg(long)]
    upload_expiry: Option<u64>,
    /// Seconds a client may stay silent inside a request body [default: 60]
    #[arg(long)]
    body_timeout: Option<u64>,
    /// No JSON access log on stderr
    #[arg(long)]
    no_access_log: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Registry storage directory
    #[arg(long)]
    root: PathBuf,
    /// Only report what would be removed
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this many seconds (a push in
    /// progress has its blobs before its manifest)
    #[arg(long, default_value_t = 600)]
    grace: u64,
}

fn config_from(a: ServeArgs) -> Result<Config, CliError> {
    let mut c = match &a.config {
        Some(p) => Config::from_file(p).map_err(CliError::engine)?,
        None => Config::default(),
    };
    if let Some(v) = a.addr {
        c.addr = v;
    }
    if let Some(v) = a.root {
        c.root = v;
    }
    if let Some(v) = a.htpasswd {
        c.htpasswd = Some(v);
    }
    c.anonymous_pull |= a.anonymous_pull;
    c.token_auth |= a.token_auth;
    c.read_only |= a.read_only;
    if a.tls_cert.is_some() {
        c.tls_cert = a.tls_cert;
        c.tls_key = a.tls_key;
    }
    if let Some(v) = a.max_manifest_bytes {
        c.max_manifest_bytes = v;
    }
    if let Some(v) = a.upload_expiry {
        c.upload_expiry_secs = v;
    }
    if let Some(v) = a.body_timeout {
        c.body_idle_timeout_secs = v;
    }
    if a.no_access_log {
        c.access_log = false;
    }
    c.check().map_err(CliError::engine)?;
    Ok(c)
}

pub async fn run(cmd: RegistryCommand) -> Result<i32, CliError> {
    match cmd {
        RegistryCommand::Serve(a) => {
            let cfg = config_from(a)?;
            // The registry gets a multi-threaded runtime of its own; the
            // CLI's runtime only waits for it.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("registry".into())
                .spawn(move || {
                    let _ = tx.send(pier_registry_server::serve_blocking(cfg));
                })
                .map_err(|e| CliError::engine(format!("starting the registry thread: {e}")))?;
            match rx.await {
                Ok(Ok(())) => Ok(0),
                Ok(Err(e)) => Err(CliError::engine(format!("registry: {e}"))),
                Err(_) => Err(CliError::engine("registry: the server thread died")),
            }
        }
        RegistryCommand::Gc(a) => {
            let report =
                pier_registry_server::gc::collect(&a.root, a.dry_run, Duration::from_secs(a.grace))
                    .map_err(|e| CliError::engine(format!("registry gc: {e}")))?;
            let verb = if a.dry_run { "would remove" } else { "removed" };
            for (d, size) in &report.removed {
                println!("{verb} {d} ({size} bytes)");
            }
            println!(
                "{} blobs in use, {verb} {} blobs ({} bytes), {} unreferenced blobs younger than {} s kept",
                report.kept,
                report.removed.len(),
                report.bytes_removed(),
                report.too_young,
                a.grace
            );
            Ok(0)
        }
    }
}
