//! Tests of [`super`]: see the parent module.

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
    fs::write(&path, r#"{"auths": [1]}"#).unwrap();
    let mut cfg = ConfigFile::load(&path).unwrap();
    let err = cfg
        .store(&AuthConfig {
            username: "u".into(),
            serveraddress: "r:1".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.contains("\"auths\"") && err.contains("not an object"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), r#"{"auths": [1]}"#);
    assert!(ConfigFile::load(&dir.path().join("missing.json"))
        .unwrap()
        .document()
        .is_empty());
}

/// Installs the fake `docker-credential-pier-test` (one credential per
/// server in files of its own) in `dir/helper-bin`; returns that directory.
fn fake_helper(dir: &Path) -> PathBuf {
    let bin = dir.join("helper-bin");
    fs::create_dir_all(&bin).unwrap();
    let path = bin.join("docker-credential-pier-test");
    fs::write(&path, include_str!("credentials_test_helper.sh")).unwrap();
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
