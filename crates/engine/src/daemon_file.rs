//! pierd's configuration file, in the format of Docker's daemon.json:
//! `insecure-registries`, `max-concurrent-downloads`,
//! `max-concurrent-uploads`, `data-root`, `exec-root`. As dockerd does, an
//! unknown key or a setting given both as a flag and in the file is an
//! error; the file fills in only what the command line left out.

use crate::Config;
use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where pierd looks when `--config-file` is not given (a missing file
/// there is fine).
pub const DEFAULT_PATH: &str = "/etc/pier/daemon.json";

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonFile {
    pub insecure_registries: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<u16>,
    pub max_concurrent_uploads: Option<u16>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    /// The default bridge's device, or `none`.
    pub bridge: Option<String>,
    /// The default bridge's address, `10.1.0.1/24`.
    pub bip: Option<String>,
    /// `[{"base": "10.64.0.0/16", "size": 24}]`.
    pub default_address_pools: Option<Vec<PoolEntry>>,
}

/// One of `default-address-pools`, as dockerd's daemon.json writes it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolEntry {
    pub base: String,
    pub size: u8,
}

impl DaemonFile {
    /// Parses the file's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<DaemonFile, String> {
        let f: DaemonFile = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "reading the configuration file {}: {e}; fix it or point --config-file elsewhere",
                path.display()
            )
        })?;
        for (key, v) in [
            ("max-concurrent-downloads", f.max_concurrent_downloads),
            ("max-concurrent-uploads", f.max_concurrent_uploads),
        ] {
            if v == Some(0) {
                return Err(format!("{key} in {} must be at least 1", path.display()));
            }
        }
        Ok(f)
    }

    /// Reads `explicit`, or `default` when it exists.
    pub fn read(explicit: Option<&Path>, default: &Path) -> Result<DaemonFile, String> {
        let path = explicit.unwrap_or(default);
        match std::fs::read(path) {
            Ok(bytes) => DaemonFile::parse(&bytes, path),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(DaemonFile::default())
            }
            Err(e) => Err(format!(
                "reading the configuration file {}: {e}",
                path.display()
            )),
        }
    }

    /// Fills in `config` from the file where the command line (or its
    /// environment variables) said nothing; a setting given in both is an
    /// error naming both values, as dockerd reports it.
    pub fn apply(self, config: &mut Config, given: &dyn Fn(&str) -> bool) -> Result<(), String> {
        let mut conflicts = Vec::new();
        let mut take = |key: &str, field: &str, from_file: Option<String>| -> bool {
            match from_file {
                None => false,
                Some(v) if given(field) => {
                    conflicts.push(format!("{key}: (from flag and from file: {v})"));
                    false
                }
                Some(_) => true,
            }
        };
        if take(
            "insecure-registries",
            "insecure_registries",
            self.insecure_registries.as_ref().map(|v| v.join(", ")),
        ) {
            config.insecure_registries = self.insecure_registries.unwrap_or_default();
        }
        if take(
            "max-concurrent-downloads",
            "max_concurrent_downloads",
            self.max_concurrent_downloads.map(|n| n.to_string()),
        ) {
            config.max_concurrent_downloads = self.max_concurrent_downloads.unwrap_or(3);
        }
        if take(
            "max-concurrent-uploads",
            "max_concurrent_uploads",
            self.max_concurrent_uploads.map(|n| n.to_string()),
        ) {
            config.max_concurrent_uploads = self.max_concurrent_uploads.unwrap_or(5);
        }
        if take(
            "data-root",
            "data_root",
            self.data_root.as_ref().map(|p| p.display().to_string()),
        ) {
            config.data_root = self.data_root.unwrap_or_default();
        }
        if take(
            "exec-root",
            "exec_root",
            self.exec_root.as_ref().map(|p| p.display().to_string()),
        ) {
            config.exec_root = self.exec_root.unwrap_or_default();
        }
        if take("bridge", "bridge", self.bridge.clone()) {
            config.bridge = self.bridge.unwrap_or_default();
        }
        if take("bip", "bip", self.bip.clone()) {
            let bip = self.bip.unwrap_or_default();
            config.bip = Some(
                crate::network::parse_bip(&bip)
                    .map_err(|e| format!("bip in the configuration file: {e}"))?,
            );
        }
        let pools = self.default_address_pools.as_ref().map(|v| {
            v.iter()
                .map(|p| format!("base={},size={}", p.base, p.size))
                .collect::<Vec<_>>()
        });
        if take(
            "default-address-pools",
            "default_address_pools",
            pools.as_ref().map(|p| p.join("; ")),
        ) {
            config.default_address_pools = pools
                .unwrap_or_default()
                .iter()
                .map(|p| crate::network::parse_pool(p))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("default-address-pools in the configuration file: {e}"))?;
        }
        if conflicts.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the following directives are specified both as a flag and in the configuration file: {}",
                conflicts.join(", ")
            ))
        }
    }
}

/// pierd's settings from its parsed command line and environment,
/// completed by its configuration file (`default` when no `--config-file`).
pub fn config_from_matches(matches: &ArgMatches, default: &Path) -> Result<Config, String> {
    let mut config = Config::from_arg_matches(matches).map_err(|e| e.to_string())?;
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    DaemonFile::read(config.config_file.as_deref(), default)?.apply(&mut config, &given)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn from_args(argv: Vec<std::ffi::OsString>, default: &Path) -> Result<Config, String> {
        let matches = Config::command().try_get_matches_from(argv).unwrap();
        config_from_matches(&matches, default)
    }

    fn parse(args: &[&str], file: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<std::ffi::OsString> = vec!["pierd".into(), "--config-file".into()];
        argv.push(path.clone().into());
        argv.extend(args.iter().map(Into::into));
        from_args(argv, Path::new("/nonexistent/default.json"))
    }

    #[test]
    fn the_file_fills_in_what_the_flags_left_out() {
        let c = parse(
            &["--max-concurrent-uploads", "2"],
            r#"{"insecure-registries": ["reg.example:5000"], "max-concurrent-downloads": 6,
                "data-root": "/srv/pier"}"#,
        )
        .unwrap();
        assert_eq!(c.insecure_registries, ["reg.example:5000"]);
        assert_eq!(c.max_concurrent_downloads, 6);
        assert_eq!(c.max_concurrent_uploads, 2);
        assert_eq!(c.data_root, PathBuf::from("/srv/pier"));
    }

    #[test]
    fn network_settings_come_from_the_file_as_dockerd_writes_them() {
        // Tests run with PIER_BRIDGE etc. in their environment: clear them.
        for k in ["PIER_BRIDGE", "PIER_BIP", "PIER_DEFAULT_ADDRESS_POOL"] {
            std::env::remove_var(k);
        }
        let c = parse(
            &[],
            r#"{"bridge": "br9", "bip": "10.9.0.1/24",
                "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}"#,
        )
        .unwrap();
        assert_eq!(c.bridge, "br9");
        assert_eq!(c.bip, Some((std::net::Ipv4Addr::new(10, 9, 0, 1), 24)));
        assert_eq!(c.default_address_pools.len(), 1);
        assert_eq!(c.default_address_pools[0].size, 24);
        assert_eq!(c.net_config().bridge.as_deref(), Some("br9"));
        let none = parse(&[], r#"{"bridge": "none"}"#).unwrap();
        assert_eq!(none.net_config().bridge, None);
        let e = parse(&[], r#"{"bip": "10.9.0.1"}"#).unwrap_err();
        assert!(e.contains("bip in the configuration file"), "{e}");
        let e = parse(&["--bridge", "x"], r#"{"bridge": "y"}"#).unwrap_err();
        assert!(e.contains("bridge: (from flag and from file: y)"), "{e}");
    }

    #[test]
    fn a_setting_in_both_places_is_refused_like_dockerd() {
        let e = parse(
            &["--insecure-registry", "a:1"],
            r#"{"insecure-registries": ["b:2"]}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("specified both as a flag and in the configuration file"),
            "{e}"
        );
        assert!(e.contains("insecure-registries"), "{e}");
    }

    #[test]
    fn unknown_keys_bad_json_and_zero_limits_are_refused_naming_the_file() {
        for (file, want) in [
            (
                r#"{"insecure-registry": []}"#,
                "unknown field `insecure-registry`",
            ),
            ("{", "EOF"),
            (r#"{"max-concurrent-downloads": 0}"#, "must be at least 1"),
            (r#"{"max-concurrent-uploads": -1}"#, "invalid value"),
        ] {
            let e = parse(&[], file).unwrap_err();
            assert!(e.contains(want), "{file}: {e}");
            assert!(e.contains("daemon.json"), "{file}: {e}");
        }
    }

    #[test]
    fn an_explicit_file_must_exist_the_default_may_not() {
        let missing = Path::new("/nonexistent/pier-daemon.json");
        let e = from_args(
            ["pierd", "--config-file", "/nonexistent/pier.json"]
                .map(Into::into)
                .to_vec(),
            missing,
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent/pier.json"), "{e}");
        let c = from_args(vec!["pierd".into()], missing).unwrap();
        assert_eq!(c.max_concurrent_downloads, 3);
        assert!(c.insecure_registries.is_empty());
    }
}
