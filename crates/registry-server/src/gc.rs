//! `pier registry gc`: mark every blob a linked manifest needs (its own
//! bytes, config, layers, index children), then remove the other blobs
//! and the repository links to them. Blobs younger than the grace period
//! are kept: an image being pushed has its blobs before its manifest.
//! Run it with the server stopped or `--read-only` for a watertight sweep.

use crate::names::Digest;
use crate::storage::Storage;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Debug, Default)]
pub struct GcReport {
    /// Blobs in use.
    pub kept: usize,
    /// Blobs removed (or that would be, in a dry run), with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Unreferenced blobs spared because they are younger than the grace.
    pub too_young: usize,
}

impl GcReport {
    pub fn bytes_removed(&self) -> u64 {
        self.removed.iter().map(|(_, s)| s).sum()
    }
}

fn mark_descriptor(v: &Value, marked: &mut HashSet<Digest>) {
    if let Some(d) = v["digest"].as_str().and_then(Digest::parse) {
        marked.insert(d);
    }
}

/// Marks manifest `d` and everything it references; index children are
/// followed even when no repository links them any more, so an index
/// never loses the layers of a child it lists.
fn mark_manifest(
    storage: &Storage,
    d: &Digest,
    marked: &mut HashSet<Digest>,
) -> Result<(), String> {
    let mut todo = vec![d.clone()];
    while let Some(d) = todo.pop() {
        if !marked.insert(d.clone()) {
            continue;
        }
        let bytes = storage
            .read_blob(&d)
            .map_err(|e| format!("reading manifest {d}: {e}"))?;
        let Some(m) = bytes.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
            continue;
        };
        mark_descriptor(&m["config"], marked);
        for key in ["layers", "blobs"] {
            for desc in m[key].as_array().into_iter().flatten() {
                mark_descriptor(desc, marked);
            }
        }
        for child in m["manifests"].as_array().into_iter().flatten() {
            if let Some(c) = child["digest"].as_str().and_then(Digest::parse) {
                todo.push(c);
            }
        }
    }
    Ok(())
}

/// Runs a collection on the registry at `root`.
pub fn collect(root: &Path, dry_run: bool, grace: Duration) -> Result<GcReport, String> {
    if !root.join("blobs").is_dir() {
        return Err(format!(
            "{} is not a registry root (no blobs/ directory)",
            root.display()
        ));
    }
    let storage =
        Storage::open(root).map_err(|e| format!("opening the registry {}: {e}", root.display()))?;
    let repos = storage
        .catalog()
        .map_err(|e| format!("listing repositories: {e}"))?;
    let mut marked = HashSet::new();
    for repo in &repos {
        let manifests = storage
            .manifests(repo)
            .map_err(|e| format!("listing manifests of {repo}: {e}"))?;
        for d in manifests {
            mark_manifest(&storage, &d, &mut marked)?;
        }
    }
    let mut report = GcReport::default();
    let now = SystemTime::now();
    let all = storage
        .all_blobs()
        .map_err(|e| format!("listing blobs: {e}"))?;
    for d in all {
        if marked.contains(&d) {
            report.kept += 1;
            continue;
        }
        let path = storage.blob_path(&d);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < grace {
            report.too_young += 1;
            continue;
        }
        if !dry_run {
            storage
                .remove_blob(&d)
                .map_err(|e| format!("removing {}: {e}", path.display()))?;
        }
        report.removed.push((d, meta.len()));
    }
    if !dry_run {
        let removed: HashSet<&Digest> = report.removed.iter().map(|(d, _)| d).collect();
        for repo in &repos {
            for d in storage.blob_links(repo).unwrap_or_default() {
                if removed.contains(&d) {
                    let _ = storage.unlink_blob(repo, &d);
                }
            }
        }
    }
    Ok(report)
}
