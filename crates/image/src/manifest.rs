//! Manifests and indexes: OCI image manifest and index, Docker schema2
//! manifest and manifest list. The store keeps the bytes it was given (so
//! digests and media types survive a round trip); these types read only
//! the fields the store needs. Docker schema1 is refused.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Largest config, manifest or index accepted (Docker and containerd use
/// 4 MiB for manifests too).
pub const MAX_JSON: u64 = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest-or-index blob.
#[derive(Debug, Clone)]
pub enum Parsed {
    Manifest(Manifest),
    Index(Index),
}

impl Manifest {
    /// The media type the manifest declares (OCI when it declares none).
    pub fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(OCI_MANIFEST)
    }
}

/// Parses a manifest, a manifest list or an index, checking size, JSON and
/// schema. Schema1 gets a message saying what to do.
pub fn parse(bytes: &[u8], what: &str) -> Result<Parsed> {
    if bytes.len() as u64 > MAX_JSON {
        return Err(Error::InvalidImage(format!(
            "{what} is {} bytes, more than the {MAX_JSON}-byte limit for manifests",
            bytes.len()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidImage(format!("{what} is not valid JSON: {e}")))?;
    let media = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    let schema = v.get("schemaVersion").and_then(|s| s.as_u64());
    if schema == Some(1) || media == DOCKER_SCHEMA1 || media == DOCKER_SCHEMA1_SIGNED {
        return Err(Error::InvalidImage(format!(
            "{what} is a Docker image manifest schema 1, which is deprecated and not supported; \
             rebuild or re-push the image with a current Docker or Buildah (schema 2 or OCI)"
        )));
    }
    if schema != Some(2) {
        return Err(Error::InvalidImage(format!(
            "{what} has schemaVersion {}: only 2 is supported",
            v.get("schemaVersion").unwrap_or(&serde_json::Value::Null)
        )));
    }
    let is_index = media == OCI_INDEX
        || media == DOCKER_MANIFEST_LIST
        || (media.is_empty() && v.get("manifests").is_some());
    let bad = |e: serde_json::Error| Error::InvalidImage(format!("{what} is malformed: {e}"));
    if is_index {
        let idx: Index = serde_json::from_value(v).map_err(bad)?;
        for d in &idx.manifests {
            crate::content::hex_of(&d.digest)?;
        }
        Ok(Parsed::Index(idx))
    } else {
        if !(media.is_empty() || media == OCI_MANIFEST || media == DOCKER_MANIFEST) {
            return Err(Error::InvalidImage(format!(
                "{what} has media type {media:?}, not an image manifest"
            )));
        }
        let m: Manifest = serde_json::from_value(v).map_err(bad)?;
        crate::content::hex_of(&m.config.digest)?;
        for d in &m.layers {
            crate::content::hex_of(&d.digest)?;
        }
        Ok(Parsed::Manifest(m))
    }
}

/// The minimal config fields the store itself relies on.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigHead {
    pub rootfs: RootFs,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub typ: String,
    pub diff_ids: Vec<String>,
}

/// Checks a config blob (size, JSON, rootfs).
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ConfigHead> {
    if bytes.len() as u64 > MAX_JSON {
        return Err(Error::InvalidImage(format!(
            "{what} is {} bytes, more than the {MAX_JSON}-byte limit for image configs",
            bytes.len()
        )));
    }
    let c: ConfigHead = serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidImage(format!("{what} is not a valid image config: {e}")))?;
    if c.rootfs.typ != "layers" {
        return Err(Error::InvalidImage(format!(
            "{what}: rootfs type {:?} is not \"layers\"",
            c.rootfs.typ
        )));
    }
    for d in &c.rootfs.diff_ids {
        crate::content::hex_of(d)?;
    }
    Ok(c)
}

/// Whether a layer media type is one the store can unpack.
pub fn is_layer(media_type: &str) -> bool {
    media_type.contains(".layer.") || media_type.contains(".rootfs.diff.")
}

/// The host architecture as Go (and so the OCI spec) names it: "amd64".
pub fn host_arch() -> &'static str {
    crate::store::go_arch()
}

/// Picks the host's manifest from an index.
pub fn pick_platform(idx: &Index) -> Option<&Descriptor> {
    let arch = crate::store::go_arch();
    let ok = |d: &&Descriptor| match &d.platform {
        Some(p) => p.architecture == arch && p.os == "linux",
        None => true,
    };
    idx.manifests
        .iter()
        .filter(|d| {
            d.media_type.is_empty()
                || d.media_type == OCI_MANIFEST
                || d.media_type == DOCKER_MANIFEST
        })
        .find(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema1_is_refused_clearly() {
        let e = parse(
            br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#,
            "manifest",
        )
        .unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        let e = parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#,
            "manifest",
        )
        .unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
    }

    #[test]
    fn bad_json_and_huge_blobs_are_refused() {
        assert!(parse(b"{not json", "m")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        let huge = vec![b' '; MAX_JSON as usize + 1];
        assert!(parse(&huge, "m").unwrap_err().to_string().contains("limit"));
        assert!(parse_config(&huge, "c")
            .unwrap_err()
            .to_string()
            .contains("limit"));
        assert!(parse_config(b"[]", "c").is_err());
    }

    #[test]
    fn docker_and_oci_types_parse() {
        let d = format!("sha256:{}", "a".repeat(64));
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":1,"digest":"{d}"}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":2,"digest":"{d}"}}]}}"#
        );
        match parse(m.as_bytes(), "m").unwrap() {
            Parsed::Manifest(m) => assert_eq!(m.media_type(), DOCKER_MANIFEST),
            _ => panic!(),
        }
        let l = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":1,"digest":"{d}","platform":{{"architecture":"{}","os":"linux"}}}}]}}"#,
            crate::store::go_arch()
        );
        match parse(l.as_bytes(), "l").unwrap() {
            Parsed::Index(i) => assert!(pick_platform(&i).is_some()),
            _ => panic!(),
        }
        let bad =
            br#"{"schemaVersion":2,"config":{"size":1,"digest":"sha256:../../x"},"layers":[]}"#;
        assert!(parse(bad, "m").is_err());
    }
}
