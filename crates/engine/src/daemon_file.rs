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
