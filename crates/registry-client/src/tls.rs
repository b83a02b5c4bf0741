//! HTTP clients per registry: plain http for loopback and insecure
//! registries, TLS with the system roots plus the registry's own CA
//! certificates (`CERTS_DIR/HOST[:PORT]/*.crt`, docker's layout) otherwise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// Whether `host` (`name[:port]`) is reached over plain http.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let name = host_name(host);
    if name == "localhost"
        || name == "::1"
        || name.starts_with("127.") && name.parse::<std::net::Ipv4Addr>().is_ok()
    {
        return true;
    }
    insecure.iter().any(|i| i == host || i == name)
}

/// "h:5000" -> "h", "[::1]:5000" -> "::1".
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

/// The system's root certificates, read once per process.
fn system_roots() -> &'static [rustls_pki_types::CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// A rustls configuration with the system roots (unless `plain`: a
/// registry reached over http needs none) and `ca_dir/*.crt`.
fn tls_config(ca_dir: &Path, plain: bool) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if !plain {
        roots.add_parsable_certificates(system_roots().iter().cloned());
    }
    if let Ok(rd) = std::fs::read_dir(ca_dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                use rustls_pki_types::pem::PemObject as _;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(&p).map_err(|e| {
                    Error::BadRequest(format!("reading CA certificate {}: {e}", p.display()))
                })?;
                for c in certs {
                    let c = c.map_err(|e| {
                        Error::BadRequest(format!("reading CA certificate {}: {e}", p.display()))
                    })?;
                    roots.add(c).map_err(|e| {
                        Error::BadRequest(format!("using CA certificate {}: {e}", p.display()))
                    })?;
                }
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::BadRequest(format!("setting up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The HTTP client for one registry host.
pub fn http_client(host: &str, options: &crate::client::Options) -> Result<reqwest::Client> {
    let (certs_dir, read_timeout) = (&options.certs_dir, options.read_timeout);
    let b = reqwest::Client::builder()
        .user_agent(concat!("pier/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(read_timeout)
        .pool_max_idle_per_host(16)
        .tls_backend_preconfigured(tls_config(
            &certs_dir.join(host),
            is_insecure(host, &options.insecure_registries),
        )?);
    let b = options
        .resolve
        .iter()
        .fold(b, |b, (name, addr)| b.resolve(name, *addr));
    b.build()
        .map_err(|e| Error::Transport(format!("setting up the HTTP client for {host}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_plain_http() {
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("127.1.2.3", &[]));
        assert!(is_insecure("[::1]:5000", &[]));
        assert!(!is_insecure("127.example.com", &[]));
        assert!(!is_insecure("registry.example.com:5000", &[]));
        assert!(is_insecure("r.example:5000", &["r.example:5000".into()]));
        assert!(is_insecure("r.example:5000", &["r.example".into()]));
        assert_eq!(host_name("[::1]:5000"), "::1");
        assert_eq!(host_name("a.b"), "a.b");
    }

    #[test]
    fn a_bad_ca_file_is_reported() {
        let d = tempfile::Builder::new()
            .prefix("pier-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(d.path().join("h:1")).unwrap();
        let o = crate::client::Options {
            certs_dir: d.path().to_path_buf(),
            read_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(http_client("h:1", &o).is_ok());
        std::fs::write(
            d.path().join("h:1/ca.crt"),
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = http_client("h:1", &o).unwrap_err();
        assert!(e.to_string().contains("ca.crt"), "{e}");
    }
}
