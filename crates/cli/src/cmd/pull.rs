//! `pier pull` / `pier image pull`, and image references normalised as the
//! docker CLI does before it talks to the daemon (`busybox` ->
//! `docker.io/library/busybox:latest`).

use super::image_ops::exit1;
use crate::client::{empty, encode, Client};
use crate::credentials::{self, AuthConfig, ConfigFile};
use crate::error::CliError;
use crate::progress::{display_response, Output};
use hyper::Method;
use pier_image::reference;

/// A parsed image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `s` with docker's normalisation: no domain means docker.io,
    /// and a one-component docker.io path gets `library/`.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if reference::is_full_hex_id(s) {
            return Err(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            ));
        }
        let invalid = || "invalid reference format".to_string();
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let (domain, path) = reference::split_domain(name);
        let (domain, path) = reference::normalize_domain_path(domain, path);
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            ));
        }
        if !reference::valid_domain(&domain) || !reference::valid_repository_path(&path) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(
                "invalid reference format: repository name must not be more than 255 characters"
                    .into(),
            );
        }
        if let Some(t) = tag {
            if !reference::valid_tag(t) {
                return Err(invalid());
            }
        }
        if let Some(d) = digest {
            if !valid_digest(d) {
                return Err("invalid reference format".into());
            }
        }
        Ok(ImageRef {
            domain,
            path,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Adds `:latest` to a bare name.
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// What the Engine API wants in `tag`: the digest, else the tag.
    pub fn api_tag(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_default()
    }

    /// The key of this registry's credentials in config.json.
    pub fn auth_key(&self) -> String {
        credentials::config_key(&self.domain)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `algorithm:hex`, the hex part at least 32 digits.
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && c.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The `X-Registry-Auth` value for `reference`'s registry. An unreadable
/// config.json is a warning (as in docker); a failing helper an error.
pub fn registry_auth(reference: &ImageRef) -> Result<String, CliError> {
    let config = match ConfigFile::load_default() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("WARNING: Error loading config file: {e}");
            return Ok(AuthConfig::default().header_value());
        }
    };
    let auth = config
        .get(&reference.auth_key())
        .map_err(|e| exit1(CliError::engine(e)))?;
    Ok(auth.header_value())
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

/// A failed pull or push: exit status 1 with `message`, as docker's.
pub(super) fn transfer_error(message: String) -> CliError {
    exit1(CliError::engine(message))
}

/// Parses the NAME of `pull` or `push` as docker does: with `--all-tags`
/// it must be a bare name; without, a bare name gets `:latest`, which is
/// said on stdout unless `quiet`.
pub(super) fn transfer_reference(
    name: &str,
    all_tags: bool,
    quiet: bool,
) -> Result<ImageRef, CliError> {
    let reference = ImageRef::parse(name).map_err(transfer_error)?;
    if all_tags && !reference.is_name_only() {
        return Err(transfer_error(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    if !all_tags && reference.is_name_only() {
        if !quiet {
            println!("Using default tag: latest");
        }
        return Ok(reference.with_default_tag());
    }
    Ok(reference)
}

/// POSTs `path` (a pull or push) to the daemon with the credentials of
/// `reference`'s registry and shows the daemon's progress stream.
pub(super) async fn post_with_progress(
    client: &Client,
    path: &str,
    reference: &ImageRef,
    quiet: bool,
) -> Result<(), CliError> {
    let auth = registry_auth(reference)?;
    let resp = client
        .send_with_headers(Method::POST, path, &[("X-Registry-Auth", &auth)], empty())
        .await
        .map_err(exit1)?;
    display_response(resp, &Output::stdout(quiet)).await?;
    Ok(())
}

pub async fn pull(client: &Client, args: PullArgs) -> Result<i32, CliError> {
    let reference = transfer_reference(&args.name, args.all_tags, args.quiet)?;
    let mut path = format!("/images/create?fromImage={}", encode(&reference.name()));
    if !args.all_tags {
        path.push_str(&format!("&tag={}", encode(&reference.api_tag())));
    }
    if let Some(p) = args.platform.as_deref().filter(|p| !p.is_empty()) {
        path.push_str(&format!("&platform={}", encode(&p.to_lowercase())));
    }
    post_with_progress(client, &path, &reference, args.quiet).await?;
    println!("{reference}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn names_normalise_as_docker_does() {
        assert_eq!(parsed("busybox"), "docker.io/library/busybox");
        assert_eq!(parsed("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(parsed("user/app"), "docker.io/user/app");
        assert_eq!(
            parsed("index.docker.io/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(parsed("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(
            parsed("127.0.0.1:5000/test/img:v1"),
            "127.0.0.1:5000/test/img:v1"
        );
        assert_eq!(parsed("[::1]:5000/img"), "[::1]:5000/img");
        let d = "sha256:e3e35777ba427a06778b516f041b0286659bdce81d629b1a78deeec1909973cf";
        let r = ImageRef::parse(&format!("localhost:5000/x@{d}")).unwrap();
        assert_eq!(r.api_tag(), d);
        assert_eq!(r.name(), "localhost:5000/x");
        assert!(!r.is_name_only());
        let r = ImageRef::parse("busybox").unwrap().with_default_tag();
        assert_eq!(
            (r.name(), r.api_tag()),
            ("docker.io/library/busybox".into(), "latest".into())
        );
        assert_eq!(r.auth_key(), credentials::INDEX_SERVER);
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/a").unwrap().auth_key(),
            "127.0.0.1:5000"
        );
        // An uppercase first component is a domain, as in docker.
        assert_eq!(parsed("Reg/app"), "Reg/app");
    }

    #[test]
    fn bad_references_are_refused_as_docker_does() {
        assert_eq!(
            ImageRef::parse("Busybox").unwrap_err(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        for bad in [
            "",
            "a//b",
            "a:",
            "-a",
            "a-",
            "a@sha256:12",
            "a:-x",
            "a..b",
            "host:port/x",
            "a@md5",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
        let hex = "a".repeat(64);
        assert!(ImageRef::parse(&hex)
            .unwrap_err()
            .contains("64-byte hexadecimal"));
        assert!(ImageRef::parse(&"a".repeat(300)).is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(s in "\\PC{0,60}") {
            if let Ok(r) = ImageRef::parse(&s) {
                let again = ImageRef::parse(&r.to_string()).unwrap();
                prop_assert_eq!(again, r);
            }
        }

        #[test]
        fn valid_names_parse(repo in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", tag in "[a-z0-9_][a-z0-9_.-]{0,10}") {
            let r = ImageRef::parse(&format!("{repo}:{tag}")).unwrap();
            prop_assert_eq!(r.tag.as_deref(), Some(tag.as_str()));
        }
    }
}
