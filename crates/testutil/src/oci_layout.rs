//! OCI image layouts for registry tests: a directory with `oci-layout`,
//! `index.json` and `blobs/sha256/...`, holding one image whose layers are
//! gzip-compressed tars built from in-memory files. `skopeo copy
//! oci:DIR:TAG docker://...` pushes it to any registry, so tests need no
//! image from the internet.

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// One file of a test layer.
pub struct LayerFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl LayerFile {
    pub fn new(path: &str, contents: impl Into<Vec<u8>>) -> Self {
        LayerFile {
            path: path.to_owned(),
            contents: contents.into(),
            mode: 0o644,
        }
    }
}

/// What [`write_oci_layout`] wrote: digests as `sha256:HEX`.
#[derive(Debug, Clone)]
pub struct LayoutImage {
    pub manifest_digest: String,
    pub config_digest: String,
    /// Compressed layer digests, bottom first.
    pub layer_digests: Vec<String>,
    /// Compressed layer sizes in bytes, bottom first.
    pub layer_sizes: Vec<u64>,
}

fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn put_blob(dir: &Path, data: &[u8]) -> io::Result<String> {
    let hex = sha256_hex(data);
    fs::write(dir.join("blobs/sha256").join(&hex), data)?;
    Ok(format!("sha256:{hex}"))
}

/// An uncompressed tar of `files` (root-owned, fixed mtime, parent
/// directories added as needed).
pub fn layer_tar(files: &[LayerFile]) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let mut parent = Path::new(&f.path).parent();
        let mut chain = Vec::new();
        while let Some(p) = parent {
            if p.as_os_str().is_empty() || !dirs.insert(p.to_path_buf()) {
                break;
            }
            chain.push(p.to_path_buf());
            parent = p.parent();
        }
        for d in chain.into_iter().rev() {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(1_700_000_000);
            b.append_data(&mut h, &d, io::empty())?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(f.mode);
        h.set_size(f.contents.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, &f.path, f.contents.as_slice())?;
    }
    b.into_inner()
}

fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data)?;
    enc.finish()
}

/// Writes an OCI layout at `dir` (created if missing; other images already
/// in it are kept in `index.json`) holding one linux/amd64 image made of
/// `layers` (bottom first), tagged `tag` (the `org.opencontainers.image.ref.name`
/// annotation skopeo's `oci:DIR:TAG` selects). The config runs `cmd`.
pub fn write_oci_layout(
    dir: &Path,
    tag: &str,
    layers: &[Vec<LayerFile>],
    cmd: &[&str],
) -> io::Result<LayoutImage> {
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    let mut layer_sizes = Vec::new();
    for files in layers {
        let tar = layer_tar(files)?;
        diff_ids.push(format!("sha256:{}", sha256_hex(&tar)));
        let gz = gzip(&tar)?;
        let digest = put_blob(dir, &gz)?;
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": gz.len(),
        }));
        layer_digests.push(digest);
        layer_sizes.push(gz.len() as u64);
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "pier-testutil"})).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config)?;
    let config_digest = put_blob(dir, &config)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layer_descs,
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_digest = put_blob(dir, &manifest)?;

    let index_path = dir.join("index.json");
    let mut manifests: Vec<serde_json::Value> = match fs::read(&index_path) {
        Ok(b) => serde_json::from_slice::<serde_json::Value>(&b)?
            .get("manifests")
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
    manifests.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    fs::write(&index_path, serde_json::to_vec(&index)?)?;
    Ok(LayoutImage {
        manifest_digest,
        config_digest,
        layer_digests,
        layer_sizes,
    })
}

/// A layer with the host's static busybox at /bin/busybox and /bin/sh
/// (two copies, no applet symlinks): enough to run `sh -c` and
/// `busybox APPLET` in a container.
pub fn busybox_layer() -> io::Result<Vec<LayerFile>> {
    let bb = fs::read(crate::busybox())?;
    Ok(vec![
        LayerFile {
            path: "bin/busybox".into(),
            contents: bb.clone(),
            mode: 0o755,
        },
        LayerFile {
            path: "bin/sh".into(),
            contents: bb,
            mode: 0o755,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_blobs_match_their_digests() {
        let dir = tempfile::tempdir().unwrap();
        let img = write_oci_layout(
            dir.path(),
            "v1",
            &[
                vec![LayerFile::new("a/b.txt", "hello")],
                vec![LayerFile::new("c", "x")],
            ],
            &["sh"],
        )
        .unwrap();
        assert_eq!(img.layer_digests.len(), 2);
        for d in img
            .layer_digests
            .iter()
            .chain([&img.config_digest, &img.manifest_digest])
        {
            let hex = d.strip_prefix("sha256:").unwrap();
            let data = fs::read(dir.path().join("blobs/sha256").join(hex)).unwrap();
            assert_eq!(sha256_hex(&data), hex);
        }
        // A second tag keeps the first in the index.
        write_oci_layout(dir.path(), "v2", &[vec![LayerFile::new("d", "y")]], &["sh"]).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    }
}
