//! The registry's settings: a TOML file (`--config`) whose every key has a
//! default, then command-line flags on top.
//!
//! ```toml
//! addr = "127.0.0.1:5000"
//! root = "/var/lib/pier-registry"
//! read_only = false
//! htpasswd = "/etc/pier/registry.htpasswd"   # bcrypt (htpasswd -B)
//! anonymous_pull = false
//! token_auth = false                          # issue bearer tokens at /v2/token
//! tls_cert = "cert.pem"
//! tls_key = "key.pem"
//! max_manifest_bytes = 4194304
//! upload_expiry_secs = 86400
//! header_timeout_secs = 30
//! body_idle_timeout_secs = 60
//! access_log = true
//!
//! [[access]]          # first matching rule decides; none: users may pull and push all
//! user = "ci"         # "*" is any authenticated user
//! repos = "team/*"    # "*", "prefix/*" or an exact name
//! pull = true
//! push = true
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`HOST:PORT`; port 0 picks a free one).
    pub addr: String,
    /// Storage root directory.
    pub root: PathBuf,
    /// Refuse every write (push, delete) with 405 UNSUPPORTED.
    pub read_only: bool,
    /// htpasswd file with bcrypt hashes; enables authentication.
    pub htpasswd: Option<PathBuf>,
    /// With authentication on, let anonymous clients pull.
    pub anonymous_pull: bool,
    /// Challenge with `Bearer` and issue signed tokens at `/v2/token`
    /// (docker's token flow); Basic credentials keep working.
    pub token_auth: bool,
    /// Lifetime of an issued token.
    pub token_ttl_secs: u64,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Largest manifest accepted (413 above it).
    pub max_manifest_bytes: u64,
    /// An upload untouched for this long is deleted.
    pub upload_expiry_secs: u64,
    /// Time a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Longest silence allowed inside a request body.
    pub body_idle_timeout_secs: u64,
    /// One JSON line per request on stderr.
    pub access_log: bool,
    pub access: Vec<AccessRule>,
}

/// Who may pull and push which repositories.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// A user name from the htpasswd file, or `*` for any authenticated user.
    pub user: String,
    /// `*`, `prefix/*` or an exact repository name.
    pub repos: String,
    #[serde(default)]
    pub pull: bool,
    #[serde(default)]
    pub push: bool,
}

impl AccessRule {
    pub fn matches(&self, user: &str, repo: &str) -> bool {
        (self.user == "*" || self.user == user) && repo_pattern_matches(&self.repos, repo)
    }
}

/// `*` matches everything, `p/*` matches names under `p/`, else exact.
pub fn repo_pattern_matches(pattern: &str, repo: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => repo
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/')),
        None => pattern == repo,
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:5000".into(),
            root: PathBuf::from("/var/lib/pier-registry"),
            read_only: false,
            htpasswd: None,
            anonymous_pull: false,
            token_auth: false,
            token_ttl_secs: 300,
            tls_cert: None,
            tls_key: None,
            max_manifest_bytes: 4 * 1024 * 1024,
            upload_expiry_secs: 24 * 3600,
            header_timeout_secs: 30,
            body_idle_timeout_secs: 60,
            access_log: true,
            access: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the registry config {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text)
            .map_err(|e| format!("invalid registry config (TOML, see docs/registry.md): {e}"))?;
        c.check()?;
        Ok(c)
    }

    /// Checks settings that only make sense together.
    pub fn check(&self) -> Result<(), String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("TLS needs both a certificate and a key (tls_cert and tls_key)".into());
        }
        if self.token_auth && self.htpasswd.is_none() {
            return Err("token_auth issues tokens to htpasswd users: set htpasswd too".into());
        }
        if self.max_manifest_bytes == 0 {
            return Err("max_manifest_bytes must be above 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let c = Config::from_toml(
            "addr = \"0.0.0.0:5001\"\nread_only = true\n[[access]]\nuser = \"ci\"\nrepos = \"team/*\"\npush = true\n",
        )
        .unwrap();
        assert_eq!(c.addr, "0.0.0.0:5001");
        assert!(c.read_only);
        assert_eq!(c.max_manifest_bytes, 4 * 1024 * 1024);
        assert!(c.access[0].matches("ci", "team/app"));
        assert!(!c.access[0].matches("ci", "team"));
        assert!(!c.access[0].matches("ci", "teamx/app"));
        assert!(!c.access[0].matches("bob", "team/app"));
        assert!(!c.access[0].pull);
    }

    #[test]
    fn bad_configs_say_why() {
        let e = Config::from_toml("adr = 1").unwrap_err();
        assert!(e.contains("adr"), "{e}");
        let e = Config::from_toml("tls_cert = \"c.pem\"").unwrap_err();
        assert!(e.contains("tls_key"), "{e}");
    }
}
