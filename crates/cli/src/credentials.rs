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

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(m) => m,
            _ => unreachable!("just made an object"),
        }
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

    /// Saves `auth` under `auth.serveraddress`, in its helper if one is
    /// configured, else in the file.
    pub fn store(&mut self, auth: &AuthConfig) -> Result<StoredIn, String> {
        let key = auth.serveraddress.clone();
        let helper = self.helper_for(&key);
        if let Some(h) = &helper {
            helper_store(h, auth)?;
        }
        let auths = self.auths_mut();
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
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn header_is_base64url_json_as_docker_sends_it() {
        assert_eq!(AuthConfig::default().header_value(), "e30=");
        // Recorded from docker 28 for {"https://index.docker.io/v1/": {"auth": "dTpw"}}.
        let a = AuthConfig {
            username: "u".into(),
            password: "p".into(),
            serveraddress: INDEX_SERVER.into(),
            ..Default::default()
        };
        assert_eq!(
            a.header_value(),
            "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJzZXJ2ZXJhZGRyZXNzIjoiaHR0cHM6Ly9pbmRleC5kb2NrZXIuaW8vdjEvIn0="
        );
    }

    #[test]
    fn hostnames_and_keys() {
        assert_eq!(
            convert_to_hostname("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(convert_to_hostname("https://u@reg.example"), "reg.example");
        assert_eq!(convert_to_hostname("reg.example:443/x"), "reg.example:443");
        assert_eq!(config_key("docker.io"), INDEX_SERVER);
        assert_eq!(config_key("index.docker.io"), INDEX_SERVER);
        assert_eq!(config_key("localhost:5000"), "localhost:5000");
    }

    fn temp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("pier-test-creds-")
            .tempdir()
            .unwrap()
    }

    #[test]
    fn store_keeps_unknown_keys_and_writes_0600_atomically() {
        let dir = temp();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"psFormat":"{{.ID}}","auths":{"other:1":{"auth":"YTpi","email":"x@y"}},"plugins":{"k":{"v":"1"}}}"#,
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut cfg = ConfigFile::load(&path).unwrap();
        let stored = cfg
            .store(&AuthConfig {
                username: "user".into(),
                password: "pa:ss".into(),
                serveraddress: "127.0.0.1:5000".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(stored, StoredIn::File);
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "{{.ID}}");
        assert_eq!(v["plugins"]["k"]["v"], "1");
        assert_eq!(v["auths"]["other:1"]["email"], "x@y");
        assert_eq!(
            v["auths"]["127.0.0.1:5000"],
            serde_json::json!({"auth": "dXNlcjpwYTpzcw=="})
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing left behind but the file itself.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
        // And it reads back.
        let again = ConfigFile::load(&path)
            .unwrap()
            .get("127.0.0.1:5000")
            .unwrap();
        assert_eq!(
            (again.username.as_str(), again.password.as_str()),
            ("user", "pa:ss")
        );
        assert_eq!(again.serveraddress, "127.0.0.1:5000");
    }

    #[test]
    fn reads_tokens_legacy_url_keys_and_reports_bad_entries() {
        let dir = temp();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"https://legacy.example/v1/":{"auth":"bGVnOnB3"},"tok:1":{"auth":"dTo=","identitytoken":"abc"},"bad:1":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let cfg = ConfigFile::load(&path).unwrap();
        let legacy = cfg.get("legacy.example").unwrap();
        assert_eq!(
            (legacy.username.as_str(), legacy.password.as_str()),
            ("leg", "pw")
        );
        assert_eq!(cfg.get("tok:1").unwrap().identitytoken, "abc");
        assert_eq!(cfg.get("none:1").unwrap(), AuthConfig::default());
        let err = cfg.get("bad:1").unwrap_err();
        assert!(err.contains("bad:1") && err.contains("base64"), "{err}");
    }

    #[test]
    fn erase_removes_only_that_entry_and_follows_symlinks() {
        let dir = temp();
        let real = dir.path().join("real.json");
        fs::write(
            &real,
            r#"{"auths":{"a:1":{"auth":"YTpi"},"b:1":{"auth":"YTpi"}},"x":1}"#,
        )
        .unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        let mut cfg = ConfigFile::load(&link).unwrap();
        cfg.erase("a:1").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let v: Value = serde_json::from_str(&fs::read_to_string(&real).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"auths": {"b:1": {"auth": "YTpi"}}, "x": 1})
        );
    }

    #[test]
    fn malformed_files_are_refused_with_the_path() {
        let dir = temp();
        let path = dir.path().join("config.json");
        fs::write(&path, "{not json").unwrap();
        let err = ConfigFile::load(&path).unwrap_err();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("not valid JSON"),
            "{err}"
        );
        fs::write(&path, "[]").unwrap();
        assert!(ConfigFile::load(&path)
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(ConfigFile::load(&dir.path().join("missing.json"))
            .unwrap()
            .document()
            .is_empty());
    }

    /// A fake `docker-credential-pier-test` keeping one credential per
    /// server in files under its own directory, as real helpers do.
    fn fake_helper(dir: &Path) -> PathBuf {
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let store = dir.join("store");
        fs::create_dir_all(&store).unwrap();
        let script = format!(
            r#"#!/bin/sh
store={store}
read -r input || true
case "$1" in
store) key=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' | tr '/:' '__')
       printf '%s' "$input" > "$store/$key" ;;
get)   key=$(printf '%s' "$input" | tr '/:' '__')
       if [ -f "$store/$key" ]; then cat "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) key=$(printf '%s' "$input" | tr '/:' '__'); rm -f "$store/$key" ;;
*) echo "unknown action $1"; exit 1 ;;
esac
"#,
            store = store.display()
        );
        let path = bin.join("docker-credential-pier-test");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    /// PATH is process-wide: the helper tests run one at a time.
    static PATH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn with_helper_on_path<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
        let _guard = PATH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let bin = fake_helper(dir);
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&old));
        // SAFETY: serialised by PATH_LOCK; the other tests of this crate do
        // not read PATH.
        unsafe { std::env::set_var("PATH", std::env::join_paths(paths).unwrap()) };
        let r = f();
        unsafe { std::env::set_var("PATH", old) };
        r
    }

    #[test]
    fn credential_helpers_store_get_and_erase() {
        let dir = temp();
        let path = dir.path().join("config.json");
        fs::write(&path, r#"{"credsStore":"pier-test","auths":{}}"#).unwrap();
        with_helper_on_path(dir.path(), || {
            let mut cfg = ConfigFile::load(&path).unwrap();
            assert_eq!(cfg.get("reg:1").unwrap(), AuthConfig::default());
            let auth = AuthConfig {
                username: "user".into(),
                password: "secret".into(),
                serveraddress: "reg:1".into(),
                ..Default::default()
            };
            assert_eq!(
                cfg.store(&auth).unwrap(),
                StoredIn::Helper("pier-test".into())
            );
            // The file keeps an empty entry, as docker writes it; no secret.
            let text = fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("secret") && !text.contains("auth\""),
                "{text}"
            );
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["auths"]["reg:1"], serde_json::json!({}));
            assert_eq!(ConfigFile::load(&path).unwrap().get("reg:1").unwrap(), auth);
            // Identity tokens travel as the "<token>" user.
            let tok = AuthConfig {
                username: "user".into(),
                identitytoken: "tkn".into(),
                serveraddress: "tok:1".into(),
                ..Default::default()
            };
            cfg.store(&tok).unwrap();
            assert_eq!(cfg.get("tok:1").unwrap().identitytoken, "tkn");
            cfg.erase("reg:1").unwrap();
            assert_eq!(cfg.get("reg:1").unwrap(), AuthConfig::default());
            let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            assert!(v["auths"].get("reg:1").is_none());
        });
    }

    #[test]
    fn per_registry_helpers_win_and_missing_helpers_are_clear_errors() {
        let dir = temp();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"credsStore":"pier-test-missing","credHelpers":{"reg:1":"pier-test"}}"#,
        )
        .unwrap();
        with_helper_on_path(dir.path(), || {
            let cfg = ConfigFile::load(&path).unwrap();
            assert_eq!(cfg.helper_for("reg:1").as_deref(), Some("pier-test"));
            assert_eq!(cfg.get("reg:1").unwrap(), AuthConfig::default());
            let err = cfg.get("other:1").unwrap_err();
            assert!(err.contains("docker-credential-pier-test-missing"), "{err}");
        });
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_auth_strings_never_panic(s in "\\PC{0,40}") {
            let _ = decode_auth(&s);
        }

        #[test]
        fn user_password_pairs_round_trip(user in "[^:\\x00]{1,20}", pass in "[^\\x00]{0,20}") {
            let enc = STANDARD.encode(format!("{user}:{pass}"));
            proptest::prop_assert_eq!(decode_auth(&enc).unwrap(), (user, pass));
        }
    }
}
