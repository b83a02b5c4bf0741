//! Manifest media types, content negotiation and platform selection.

use pier_image::manifest::{self, Descriptor, Index, Parsed};

use crate::error::{Error, Result};

/// The `Accept` header of a manifest request: every manifest and index type
/// pier can use, so the registry never down-converts to schema 1.
pub const MANIFEST_ACCEPT: &str = concat!(
    "application/vnd.oci.image.index.v1+json, ",
    "application/vnd.oci.image.manifest.v1+json, ",
    "application/vnd.docker.distribution.manifest.list.v2+json, ",
    "application/vnd.docker.distribution.manifest.v2+json"
);

/// What a manifest request returned, checked.
pub fn parse_manifest(bytes: &[u8], content_type: &str, what: &str) -> Result<Parsed> {
    let known = [
        manifest::OCI_INDEX,
        manifest::OCI_MANIFEST,
        manifest::DOCKER_MANIFEST_LIST,
        manifest::DOCKER_MANIFEST,
    ];
    let body_type = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let effective = if body_type.is_empty() { ct } else { &body_type };
    if !effective.is_empty()
        && !known.contains(&effective)
        && effective != "application/json"
        && effective != "text/plain"
    {
        return Err(Error::Invalid(format!(
            "{what} has media type {effective:?}, which pier does not support; \
             supported: OCI image index and manifest, Docker manifest list and schema 2"
        )));
    }
    manifest::parse(bytes, what).map_err(|e| Error::Invalid(e.to_string()))
}

/// A platform as `--platform` gives it: `os[/arch[/variant]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The host's: linux and the architecture Go names it by.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: pier_image::manifest::host_arch().into(),
            variant: None,
        }
    }

    /// Parses `linux`, `linux/amd64`, `linux/arm/v7`; an empty string is the host's.
    pub fn parse(s: &str) -> Result<Platform> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Platform::host());
        }
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if parts.len() > 3 || !parts.iter().all(|p| ok(p)) {
            return Err(Error::BadRequest(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]], e.g. linux/amd64"
            )));
        }
        let host = Platform::host();
        Ok(Platform {
            os: parts[0].to_lowercase(),
            architecture: parts
                .get(1)
                .map(|a| normalize_arch(&a.to_lowercase()))
                .unwrap_or(host.architecture),
            variant: parts.get(2).map(|v| v.to_lowercase()),
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
    .to_owned()
}

/// Picks the manifest for `want` from an index: os and architecture must
/// match; a wanted variant must match too, else an entry without variant
/// (or the first one) is taken. Attestation manifests (platform
/// unknown/unknown) are never picked.
pub fn pick<'a>(idx: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = idx
        .manifests
        .iter()
        .filter(|d| {
            d.media_type.is_empty()
                || d.media_type == manifest::OCI_MANIFEST
                || d.media_type == manifest::DOCKER_MANIFEST
        })
        .filter(|d| match &d.platform {
            Some(p) => p.os == want.os && normalize_arch(&p.architecture) == want.architecture,
            None => false,
        })
        .collect();
    match &want.variant {
        Some(v) => candidates
            .into_iter()
            .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == Some(v)),
        None => candidates
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| p.variant.is_none()))
            .or(candidates.first())
            .copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn desc(os: &str, arch: &str, variant: Option<&str>, n: char) -> Descriptor {
        Descriptor {
            media_type: manifest::OCI_MANIFEST.into(),
            digest: format!("sha256:{}", n.to_string().repeat(64)),
            size: 1,
            platform: Some(manifest::Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
        }
    }

    #[test]
    fn platforms_parse_like_docker() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "arm"));
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().architecture,
            "amd64"
        );
        assert_eq!(Platform::parse("").unwrap(), Platform::host());
        assert_eq!(
            Platform::parse("linux").unwrap().architecture,
            Platform::host().architecture
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in ["linux/", "a/b/c/d", "linux/am d64", "/amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn picks_the_wanted_platform() {
        let idx = Index {
            schema_version: 2,
            media_type: Some(manifest::OCI_INDEX.into()),
            manifests: vec![
                desc("unknown", "unknown", None, 'f'),
                desc("linux", "arm", Some("v6"), 'a'),
                desc("linux", "arm", Some("v7"), 'b'),
                desc("linux", "amd64", None, 'c'),
                desc("windows", "amd64", None, 'd'),
            ],
        };
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(pick(&idx, &p("linux/amd64"))
            .unwrap()
            .digest
            .contains("ccc"));
        assert!(pick(&idx, &p("linux/arm/v7"))
            .unwrap()
            .digest
            .contains("bbb"));
        assert!(pick(&idx, &p("linux/arm")).unwrap().digest.contains("aaa"));
        assert!(pick(&idx, &p("windows/amd64"))
            .unwrap()
            .digest
            .contains("ddd"));
        assert!(pick(&idx, &p("linux/s390x")).is_none());
        assert!(pick(&idx, &p("linux/arm/v8")).is_none());
    }

    #[test]
    fn media_types_are_negotiated_and_checked() {
        let d = format!("sha256:{}", "a".repeat(64));
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"x","size":1,"digest":"{d}"}},"layers":[]}}"#,
            manifest::DOCKER_MANIFEST
        );
        assert!(matches!(
            parse_manifest(m.as_bytes(), "", "m"),
            Ok(Parsed::Manifest(_))
        ));
        let odd = m.replace(manifest::DOCKER_MANIFEST, "application/vnd.example+json");
        let e = parse_manifest(odd.as_bytes(), "", "m").unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
        let no_type = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","size":1,"digest":"{d}"}},"layers":[]}}"#
        );
        assert!(parse_manifest(no_type.as_bytes(), manifest::OCI_MANIFEST, "m").is_ok());
        assert!(parse_manifest(no_type.as_bytes(), "application/x-weird", "m").is_err());
        let huge = vec![b' '; (manifest::MAX_JSON + 1) as usize];
        assert!(parse_manifest(&huge, manifest::OCI_MANIFEST, "m")
            .unwrap_err()
            .to_string()
            .contains("limit"));
        assert!(MANIFEST_ACCEPT.contains(manifest::DOCKER_MANIFEST_LIST));
    }

    proptest! {
        #[test]
        fn manifest_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), ct in "[a-z/.+]{0,30}") {
            let _ = parse_manifest(&bytes, &ct, "m");
        }

        #[test]
        fn manifest_parser_survives_json_shapes(layers in 0usize..4, media in prop_oneof![
            Just(manifest::OCI_MANIFEST), Just(manifest::DOCKER_MANIFEST), Just(manifest::OCI_INDEX), Just("x/y")],
            digest in "(sha256:[0-9a-f]{64}|sha256:[a-z./]{1,10}|[a-z]{0,5})") {
            let l: Vec<String> = (0..layers).map(|_| format!(r#"{{"mediaType":"m","size":1,"digest":"{digest}"}}"#)).collect();
            let body = format!(r#"{{"schemaVersion":2,"mediaType":"{media}","config":{{"size":1,"digest":"{digest}"}},"layers":[{}],"manifests":[{}]}}"#, l.join(","), l.join(","));
            let r = parse_manifest(body.as_bytes(), "", "m");
            let bad_digest = !digest.starts_with("sha256:") || digest.len() != 71;
            if bad_digest && (layers > 0 || media != manifest::OCI_INDEX) {
                prop_assert!(r.is_err());
            }
        }
    }
}
