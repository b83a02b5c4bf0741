//! `Store` operations: import, list, resolve, tag, untag.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{
    Arch, Descriptor, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use crate::meta::{ImageRecord, Repositories};
use crate::reference::{is_lower_hex, Reference};
use crate::snapshots::chain_ids;
use crate::{extract, io_err, Error, Image, ImageSummary, ImportOptions, Result, Store};

/// Copies what the unpacker reads into the blob being ingested.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut crate::content::Ingest,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl Store {
    pub(crate) fn import_impl(&self, tar: impl Read, opts: &ImportOptions) -> Result<ImageSummary> {
        let _gc = self.gc_guard();
        let reference = match &opts.reference {
            Some(r) => {
                let r = Reference::parse(r)?;
                if r.digest().is_some() {
                    return Err(Error::InvalidReference(format!(
                        "{r}: refusing to create a tag with a digest reference; give name[:tag]"
                    )));
                }
                Some(r)
            }
            None => None,
        };

        // Decompress, unpack and store the uncompressed tar in one pass.
        let mut ingest = self.content.ingest()?;
        let tmp = self.snapshots.tmp()?;
        let (_, plain) = extract::decompress(tar)
            .map_err(|e| Error::InvalidLayer(format!("reading the import stream: {e}")))?;
        extract::unpack_tar(
            Tee {
                inner: plain,
                out: &mut ingest,
            },
            tmp.path(),
        )?;
        if ingest.size() == 0 {
            return Err(Error::InvalidLayer(
                "the import stream is empty; give a tar archive (plain, gzip or zstd)".into(),
            ));
        }
        let (diff_id, layer_size) = ingest.commit(None)?;
        let diff_ids = vec![diff_id.clone()];
        let chain = chain_ids(&diff_ids);
        tmp.commit(&self.snapshots, &chain[0])?;

        // Config and manifest.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let created = rfc3339(now.as_secs() as i64, now.subsec_nanos());
        let comment = opts
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "Imported from -".to_owned());
        let config = ImageConfigurationBuilder::default()
            .created(created.clone())
            .architecture(Arch::from(go_arch()))
            .os(Os::Linux)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(diff_ids)
                    .build()
                    .map_err(spec_err)?,
            )
            .history(vec![HistoryBuilder::default()
                .created(created)
                .comment(comment)
                .build()
                .map_err(spec_err)?])
            .build()
            .map_err(spec_err)?;
        let config_bytes = serde_json::to_vec(&config).map_err(|e| spec_err(e.to_string()))?;
        let (config_digest, config_size) = self.content.put(&config_bytes)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config_size,
                parse_digest(&config_digest)?,
            ))
            .layers(vec![Descriptor::new(
                MediaType::ImageLayer,
                layer_size,
                parse_digest(&diff_id)?,
            )])
            .build()
            .map_err(spec_err)?;
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| spec_err(e.to_string()))?;
        let (manifest_digest, _) = self.content.put(&manifest_bytes)?;

        let id_hex = crate::content::hex_of(&config_digest)?.to_owned();
        let record = ImageRecord {
            manifest: manifest_digest.clone(),
            created: now.as_secs() as i64,
            created_nanos: now.subsec_nanos(),
            size: layer_size,
            index: None,
        };
        self.meta.put_record(&id_hex, &record)?;
        let mut repo_tags = Vec::new();
        if let Some(r) = reference {
            let lock = self.meta.lock()?;
            let mut repos = self.meta.repositories()?;
            repos.insert(r.to_string(), manifest_digest);
            self.meta.save_repositories(&repos, &lock)?;
            repo_tags.push(r.familiar());
        }
        Ok(ImageSummary {
            id: config_digest,
            repo_tags,
            created: record.created,
            size: record.size,
        })
    }

    pub(crate) fn list_impl(&self) -> Result<Vec<ImageSummary>> {
        let records = self.meta.records()?;
        let repos = self.meta.repositories()?;
        let tags = tags_by_id(&records, &repos);
        let mut recs: Vec<(String, ImageRecord)> = records.into_iter().collect();
        recs.sort_by(|(ha, a), (hb, b)| {
            (b.created, b.created_nanos)
                .cmp(&(a.created, a.created_nanos))
                .then_with(|| ha.cmp(hb))
        });
        Ok(recs
            .into_iter()
            .map(|(hex, rec)| ImageSummary {
                repo_tags: tags.get(&hex).cloned().unwrap_or_default(),
                id: format!("sha256:{hex}"),
                created: rec.created,
                size: rec.size,
            })
            .collect())
    }

    pub(crate) fn resolve_impl(&self, name_or_id: &str) -> Result<Image> {
        let records = self.meta.records()?;
        let repos = self.meta.repositories()?;
        let hex = find_id(name_or_id, &records, &repos)?;
        let rec = &records[&hex];
        let manifest = self.manifest(&rec.manifest)?;
        let config_digest = manifest.config.digest.clone();
        let config: ImageConfiguration =
            serde_json::from_slice(&self.content.read(&config_digest)?).map_err(|e| {
                self.damaged(&hex, &format!("config {config_digest} does not parse: {e}"))
            })?;
        let mut layers = Vec::new();
        for chain in chain_ids(config.rootfs().diff_ids()) {
            let p = self.snapshots.path(&chain)?;
            if !p.is_dir() {
                return Err(
                    self.damaged(&hex, &format!("layer snapshot {} is missing", p.display()))
                );
            }
            layers.push(p);
        }
        Ok(Image {
            repo_tags: tags_by_id(&records, &repos)
                .remove(&hex)
                .unwrap_or_default(),
            id: format!("sha256:{hex}"),
            config,
            layers,
        })
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let target = Reference::parse(target)?;
        if target.digest().is_some() {
            return Err(Error::InvalidReference(format!(
                "{target}: refusing to create a tag with a digest reference"
            )));
        }
        let records = self.meta.records()?;
        let lock = self.meta.lock()?;
        let mut repos = self.meta.repositories()?;
        let hex = find_id(source, &records, &repos)?;
        repos.insert(target.to_string(), records[&hex].manifest.clone());
        self.meta.save_repositories(&repos, &lock)
    }

    /// Removes the tag `reference`; the image stays (maybe untagged).
    pub fn untag(&self, reference: &str) -> Result<()> {
        let r = Reference::parse(reference)?;
        let lock = self.meta.lock()?;
        let mut repos = self.meta.repositories()?;
        if repos.remove(&r.to_string()).is_none() {
            return Err(Error::ImageNotFound(reference.to_owned()));
        }
        self.meta.save_repositories(&repos, &lock)
    }

    /// Forgets an image and its tags. Blobs and snapshots stay (shared;
    /// garbage collection is not written yet).
    pub fn remove(&self, name_or_id: &str) -> Result<()> {
        let records = self.meta.records()?;
        let lock = self.meta.lock()?;
        let mut repos = self.meta.repositories()?;
        let hex = find_id(name_or_id, &records, &repos)?;
        let manifest = &records[&hex].manifest;
        repos.retain(|_, m| m != manifest);
        self.meta.save_repositories(&repos, &lock)?;
        self.meta.remove_record(&hex)
    }

    pub(crate) fn manifest(&self, digest: &str) -> Result<crate::manifest::Manifest> {
        match crate::manifest::parse(&self.content.read(digest)?, &format!("manifest {digest}"))? {
            crate::manifest::Parsed::Manifest(m) => Ok(m),
            crate::manifest::Parsed::Index(_) => Err(Error::InvalidImage(format!(
                "manifest {digest} is an index, not an image manifest"
            ))),
        }
    }

    fn damaged(&self, hex: &str, why: &str) -> Error {
        io_err(
            format!("image sha256:{hex} is damaged"),
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{why}; remove the image and import or pull it again"),
            ),
        )
    }

    /// Where blob `digest` is stored (for the engine's pull/push code).
    pub fn blob_path(&self, digest: &str) -> Result<std::path::PathBuf> {
        self.content.path(digest)
    }

    /// True when the blob is stored (verified).
    pub fn has_blob(&self, digest: &str) -> bool {
        self.content.exists(digest)
    }
}

/// Image id hex -> familiar tags, sorted.
fn tags_by_id(
    records: &BTreeMap<String, ImageRecord>,
    repos: &Repositories,
) -> BTreeMap<String, Vec<String>> {
    let by_manifest: BTreeMap<&str, &str> = records
        .iter()
        .map(|(hex, r)| (r.manifest.as_str(), hex.as_str()))
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, manifest) in repos {
        if let (Some(hex), Ok(r)) = (by_manifest.get(manifest.as_str()), Reference::parse(name)) {
            out.entry((*hex).to_owned()).or_default().push(r.familiar());
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Docker's lookup order: full ID, reference, then unique ID prefix.
pub(crate) fn find_id(
    name: &str,
    records: &BTreeMap<String, ImageRecord>,
    repos: &Repositories,
) -> Result<String> {
    let not_found = || Error::ImageNotFound(name.to_owned());
    let by_prefix = |prefix: &str| -> Result<String> {
        let mut hits = records.keys().filter(|k| k.starts_with(prefix));
        match (hits.next(), hits.next()) {
            (Some(h), None) => Ok(h.clone()),
            (Some(_), Some(_)) => Err(Error::AmbiguousId(name.to_owned())),
            _ => Err(not_found()),
        }
    };
    if let Some(hex) = name.strip_prefix("sha256:") {
        if !is_lower_hex(hex) || hex.len() > 64 {
            return Err(not_found());
        }
        return by_prefix(hex);
    }
    if crate::reference::is_full_hex_id(name) {
        return by_prefix(name);
    }
    let manifest_to_id = |m: &str| {
        records
            .iter()
            .find(|(_, r)| r.manifest == m || r.index.as_deref() == Some(m))
            .map(|(h, _)| h.clone())
    };
    match Reference::parse(name) {
        Ok(r) => {
            if let Some(hex) = repos.get(&r.to_string()).and_then(|m| manifest_to_id(m)) {
                return Ok(hex);
            }
            if let Some(d) = r.digest() {
                if let Some(hex) = manifest_to_id(d) {
                    return Ok(hex);
                }
            }
        }
        Err(e) if !is_lower_hex(name) => return Err(e),
        Err(_) => {}
    }
    if is_lower_hex(name) && name.len() <= 64 {
        return by_prefix(name);
    }
    Err(not_found())
}

fn spec_err(e: impl ToString) -> Error {
    io_err(
        "building the image metadata".into(),
        io::Error::other(e.to_string()),
    )
}

fn parse_digest(d: &str) -> Result<oci_spec::image::Digest> {
    d.parse().map_err(spec_err)
}

/// The host architecture as Go (and so the OCI spec) names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

pub(crate) use pier_common::time::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_arch_is_known() {
        if cfg!(target_arch = "x86_64") {
            assert_eq!(go_arch(), "amd64");
        }
        assert_ne!(Arch::from(go_arch()), Arch::Other(String::new()));
    }
}
