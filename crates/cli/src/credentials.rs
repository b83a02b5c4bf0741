//! Registry credentials where the docker CLI keeps them: `config.json` in
//! `$DOCKER_CONFIG` (default `~/.docker`), with `auths` entries (base64
//! `user:password` in `auth`, or an `identitytoken`), a credential store
//! (`credsStore`) or per-registry helpers (`credHelpers`), which are
//! `docker-credential-NAME` programs speaking `get`/`store`/`erase` over
//! stdin and stdout. Writing keeps every key pier does not manage, and
//! replaces the file atomically with mode 0600.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Docker Hub's key in `auths` and in credential helpers.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// What the Engine API calls an AuthConfig: the body of `POST /auth` and,
/// base64url-encoded, the `X-Registry-Auth` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` header value: base64url of the JSON, as
    /// docker sends it (`e30=`, i.e. `{}`, without credentials).
    pub fn header_value(&self) -> String {
        URL_SAFE.encode(serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

/// The key credentials of a registry domain are stored under.
pub fn config_key(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        domain.to_string()
    }
}

/// `https://host:port/v2/` -> `host:port`; a bare `host/path` -> `host`.
pub fn convert_to_hostname(address: &str) -> String {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or(rest);
    // Drop any user info, as a URL parser would.
    host.rsplit_once('@').map_or(host, |(_, h)| h).to_string()
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_config_path() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".docker").join("config.json")),
        None => Err("cannot find the docker config: neither DOCKER_CONFIG nor HOME is set".into()),
    }
}

/// Where `store` put the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// In `config.json` itself, base64 but unencrypted.
    File,
    /// In `docker-credential-NAME`.
    Helper(String),
}

/// A docker `config.json`, kept as JSON so unknown keys survive.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    doc: Map<String, Value>,
}

impl ConfigFile {
    /// Reads `path`; a missing or empty file is an empty config.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let doc = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(format!(
                        "{} is not a JSON object; fix or remove it",
                        path.display()
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "{} is not valid JSON ({e}); fix or remove it",
                        path.display()
                    ))
                }
            }
        };
        Ok(ConfigFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Reads the config of `$DOCKER_CONFIG` or `~/.docker`.
    pub fn load_default() -> Result<Self, String> {
        Self::load(&default_config_path()?)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The helper responsible for `key`: `credHelpers[key]`, else
    /// `credsStore`.
    pub fn helper_for(&self, key: &str) -> Option<String> {
        let key = config_key(key);
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(&key))
            .and_then(Value::as_str)
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
    }

    /// The credentials for `key` (a hostname, or [`INDEX_SERVER`]), empty
    /// when there are none.
    pub fn get(&self, key: &str) -> Result<AuthConfig, String> {
        if let Some(helper) = self.helper_for(key) {
            return helper_get(&helper, key);
        }
        self.file_get(key)
    }

    fn file_get(&self, key: &str) -> Result<AuthConfig, String> {
        let Some(auths) = self.auths() else {
            return Ok(AuthConfig::default());
        };
        // Older files may key entries as URLs ("https://host/v1/").
        let found = auths.get(key).map(|e| (key, e)).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| convert_to_hostname(k) == key)
                .map(|(k, e)| (k.as_str(), e))
        });
        let Some((found_key, entry)) = found else {
            return Ok(AuthConfig::default());
        };
        let text = |f: &str| {
            entry
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut auth = AuthConfig {
            username: text("username"),
            password: text("password"),
            serveraddress: found_key.to_string(),
            identitytoken: text("identitytoken"),
            registrytoken: text("registrytoken"),
            auth: String::new(),
        };
        let encoded = text("auth");
        if !encoded.is_empty() {
            let (user, pass) = decode_auth(&encoded).map_err(|why| {
                format!(
                    "{}: the \"auth\" of {found_key} {why}; run `pier logout {found_key}` and log in again",
                    self.path.display()
                )
            })?;
            auth.username = user;
            auth.password = pass;
        }
        Ok(auth)
    }

    /// The credentials of every registry the file names (`auths` and
    /// `credHelpers` keys), as docker's CLI sends them with a build
    /// (`X-Registry-Config`); one that cannot be read is left out.
    pub fn all(&self) -> BTreeMap<String, AuthConfig> {
        let mut keys: Vec<String> = self
            .auths()
            .into_iter()
            .flat_map(|a| a.keys().cloned())
            .collect();
        if let Some(h) = self.doc.get("credHelpers").and_then(Value::as_object) {
            keys.extend(h.keys().cloned());
        }
        keys.into_iter()
            .filter_map(|k| {
                let host = convert_to_hostname(&k);
                let key = if k == INDEX_SERVER { k.clone() } else { host };
                let auth = self.get(&key).ok()?;
                (!auth.username.is_empty() || !auth.identitytoken.is_empty()).then_some((key, auth))
            })
            .collect()
    }

    /// Saves `auth` under `auth.serveraddress`, in its helper if one is
    /// configured, else in the file.
    pub fn store(&mut self, auth: &AuthConfig) -> Result<StoredIn, String> {
        let key = auth.serveraddress.clone();
        if self
            .doc
            .get("auths")
            .is_some_and(|a| !a.is_object() && !a.is_null())
        {
            return Err(format!(
                "\"auths\" in {} is not an object; fix or remove it",
                self.path.display()
            ));
        }
        let helper = self.helper_for(&key);
        if let Some(h) = &helper {
            helper_store(h, auth)?;
        }
        let mut auths = match self.doc.remove("auths") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut entry = match auths.remove(&key) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for f in [
            "auth",
            "username",
            "password",
            "serveraddress",
            "identitytoken",
            "registrytoken",
        ] {
            entry.remove(f);
        }
        if helper.is_none() {
            if !auth.username.is_empty() || !auth.password.is_empty() {
                let pair = format!("{}:{}", auth.username, auth.password);
                entry.insert("auth".into(), Value::String(STANDARD.encode(pair)));
            }
            if !auth.identitytoken.is_empty() {
                entry.insert(
                    "identitytoken".into(),
                    Value::String(auth.identitytoken.clone()),
                );
            }
        }
        if !auth.registrytoken.is_empty() {
            entry.insert(
                "registrytoken".into(),
                Value::String(auth.registrytoken.clone()),
            );
        }
        auths.insert(key, Value::Object(entry));
        self.doc.insert("auths".into(), Value::Object(auths));
        self.save()?;
        Ok(helper.map_or(StoredIn::File, StoredIn::Helper))
    }

    /// Removes the credentials of `key` from its helper and from the file.
    pub fn erase(&mut self, key: &str) -> Result<(), String> {
        if let Some(helper) = self.helper_for(key) {
            helper_erase(&helper, key)?;
        }
        let removed = self
            .doc
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .and_then(|a| a.remove(key))
            .is_some();
        if removed {
            self.save()?;
        }
        Ok(())
    }

    /// Writes the file atomically (temporary file, fsync, rename), mode
    /// 0600, through a symlink if the config is one.
    pub fn save(&self) -> Result<(), String> {
        let target = resolve_symlink(&self.path);
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        Value::Object(self.doc.clone())
            .serialize(&mut ser)
            .map_err(|e| format!("encoding {}: {e}", self.path.display()))?;
        let name = target
            .file_name()
            .map_or("config.json".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // An existing temporary file keeps its old mode: set it.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("saving {}: {e}", target.display())
        })
    }

    /// The raw document (for tests and diagnostics).
    pub fn document(&self) -> &Map<String, Value> {
        &self.doc
    }
}

/// The file a (possibly dangling) symlink points to, else `path`.
fn resolve_symlink(path: &Path) -> PathBuf {
    if let Ok(real) = fs::canonicalize(path) {
        return real;
    }
    match fs::read_link(path) {
        Ok(to) if to.is_absolute() => to,
        Ok(to) => path.parent().map_or(to.clone(), |p| p.join(&to)),
        Err(_) => path.to_path_buf(),
    }
}

/// `auth` = base64 of `user:password`.
fn decode_auth(encoded: &str) -> Result<(String, String), String> {
    let raw = STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("is not valid base64 ({e})"))?;
    let text = String::from_utf8(raw).map_err(|_| "is not UTF-8 once decoded".to_string())?;
    match text.split_once(':') {
        Some((user, pass)) if !user.is_empty() => {
            Ok((user.to_string(), pass.trim_matches('\0').to_string()))
        }
        _ => Err("is not user:password once decoded".into()),
    }
}

/// The username credential helpers use for identity tokens.
const TOKEN_USERNAME: &str = "<token>";

#[derive(Serialize, Deserialize)]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-HELPER ACTION` with `input` on stdin; returns
/// its stdout, or its failure with what it printed.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<String, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running the credential helper {program}: {e}; install it on $PATH or remove it from the docker config"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is reported below.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running the credential helper {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let said = [stdout, stderr]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        Err(format!(
            "{program} {action} failed ({}): {said}",
            out.status
        ))
    }
}

fn helper_get(helper: &str, key: &str) -> Result<AuthConfig, String> {
    let out = match run_helper(helper, "get", key.as_bytes()) {
        Ok(out) => out,
        // The protocol's "nothing stored": not an error.
        Err(e) if e.contains("credentials not found") => return Ok(AuthConfig::default()),
        Err(e) => return Err(format!("error getting credentials for {key}: {e}")),
    };
    let creds: HelperCredentials = serde_json::from_str(&out).map_err(|e| {
        format!("error getting credentials for {key}: docker-credential-{helper} answered something that is not its JSON ({e})")
    })?;
    let mut auth = AuthConfig {
        serveraddress: key.to_string(),
        ..Default::default()
    };
    if creds.username == TOKEN_USERNAME {
        auth.identitytoken = creds.secret;
    } else {
        auth.username = creds.username;
        auth.password = creds.secret;
    }
    Ok(auth)
}

fn helper_store(helper: &str, auth: &AuthConfig) -> Result<(), String> {
    let creds = if auth.identitytoken.is_empty() {
        HelperCredentials {
            server_url: auth.serveraddress.clone(),
            username: auth.username.clone(),
            secret: auth.password.clone(),
        }
    } else {
        HelperCredentials {
            server_url: auth.serveraddress.clone(),
            username: TOKEN_USERNAME.into(),
            secret: auth.identitytoken.clone(),
        }
    };
    let input = serde_json::to_vec(&creds).map_err(|e| e.to_string())?;
    run_helper(helper, "store", &input)
        .map(|_| ())
        .map_err(|e| format!("error storing credentials: {e}"))
}

fn helper_erase(helper: &str, key: &str) -> Result<(), String> {
    run_helper(helper, "erase", key.as_bytes())
        .map(|_| ())
        .map_err(|e| format!("error erasing credentials: {e}"))
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
