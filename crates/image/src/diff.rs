//! Diffs: a container's overlayfs upper directory as a layer tar
//! (`commit`, the builder), as a list of changes (`docker diff`), and any
//! directory tree as a tar (`docker export` of a mounted rootfs).
//!
//! In an upper directory a deletion is a 0/0 character device and an
//! opaque directory (one that hides everything below it) carries
//! `trusted.overlay.opaque=y`; in a layer tar these become `.wh.NAME` and
//! `DIR/.wh..wh..opq`. The tree is read with `lstat` and never through
//! symlinks; hard links inside the tree become tar links.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::extract::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::{io_err, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Docker's 0, "C".
    Modified,
    /// Docker's 1, "A".
    Added,
    /// Docker's 2, "D".
    Deleted,
}

impl ChangeKind {
    pub fn code(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container: "/etc/passwd".
    pub path: String,
    pub kind: ChangeKind,
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::lgetxattr(p, OVERLAY_OPAQUE_XATTR, &mut buf), Ok(n) if &buf[..n] == b"y")
}

/// Entries of `dir`, sorted by name (stable tars).
fn sorted(dir: &Path) -> io::Result<Vec<(Vec<u8>, PathBuf)>> {
    let mut v: Vec<(Vec<u8>, PathBuf)> = fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name().as_bytes().to_vec(), e.path())))
        .collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// What the engine and the runtime put into every container's upper
/// directory (Docker keeps these in its "init" layer): mount points and the
/// generated `/etc` files. `diff` and `commit` leave them out.
pub const RUNTIME_PATHS: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    ".dockerenv",
];

fn is_runtime_path(rel: &[u8]) -> bool {
    RUNTIME_PATHS.iter().any(|p| p.as_bytes() == rel)
}

/// `docker diff`: what the upper directory changes over the image's
/// layers ([`RUNTIME_PATHS`] left out, and directories that only hold them).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    /// Returns whether anything below `dir` was left out.
    fn walk(dir: &Path, rel: &str, lowers: &[PathBuf], out: &mut Vec<Change>) -> io::Result<bool> {
        let mut skipped = false;
        for (name, p) in sorted(dir)? {
            let name = String::from_utf8_lossy(&name).into_owned();
            let path = format!("{rel}/{name}");
            if is_runtime_path(&path.as_bytes()[1..]) {
                skipped = true;
                continue;
            }
            let md = fs::symlink_metadata(&p)?;
            let in_lower = lowers
                .iter()
                .any(|l| fs::symlink_metadata(l.join(&path[1..])).is_ok_and(|m| !is_whiteout(&m)));
            let kind = if is_whiteout(&md) {
                ChangeKind::Deleted
            } else if in_lower {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            let at = out.len();
            out.push(Change {
                path: path.clone(),
                kind,
            });
            if md.is_dir() && !is_whiteout(&md) {
                let below = walk(&p, &path, lowers, out)?;
                // A directory only there for left-out entries is no change.
                if below && out.len() == at + 1 {
                    out.pop();
                }
                skipped |= below;
            }
        }
        Ok(skipped)
    }
    let mut out = Vec::new();
    walk(upper, "", lowers, &mut out)
        .map_err(|e| io_err(format!("reading {}", upper.display()), e))?;
    Ok(out)
}

struct TarWriter<W: Write> {
    tar: tar::Builder<W>,
    links: HashMap<(u64, u64), Vec<u8>>,
    whiteouts: bool,
}

impl<W: Write> TarWriter<W> {
    fn header(&self, md: &fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    fn xattrs(&mut self, p: &Path) -> io::Result<()> {
        let mut names = vec![0u8; 4096];
        let n = match rustix::fs::llistxattr(p, &mut names) {
            Ok(n) => n,
            Err(_) => return Ok(()),
        };
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            if name.starts_with(b"trusted.overlay.") {
                continue;
            }
            let mut val = vec![0u8; 65536];
            if let Ok(k) = rustix::fs::lgetxattr(p, OsStr::from_bytes(name), &mut val) {
                val.truncate(k);
                pax.push((
                    format!("SCHILY.xattr.{}", String::from_utf8_lossy(name)),
                    val,
                ));
            }
        }
        if !pax.is_empty() {
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), &v[..])))?;
        }
        Ok(())
    }

    fn empty(&mut self, name: &[u8], md: &fs::Metadata) -> io::Result<()> {
        let mut h = self.header(md);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        self.tar
            .append_data(&mut h, OsStr::from_bytes(name), io::empty())
    }

    fn walk(&mut self, dir: &Path, rel: &[u8]) -> io::Result<()> {
        for (name, p) in sorted(dir)? {
            let mut path = rel.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            if self.whiteouts && is_runtime_path(&path) {
                continue;
            }
            let md = fs::symlink_metadata(&p)?;
            let ft = md.file_type();
            if self.whiteouts && is_whiteout(&md) {
                let mut wh = rel.to_vec();
                if !wh.is_empty() {
                    wh.push(b'/');
                }
                wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                wh.extend_from_slice(&name);
                self.empty(&wh, &md)?;
                continue;
            }
            let mut h = self.header(&md);
            if !ft.is_dir() && md.nlink() > 1 {
                if let Some(target) = self.links.get(&(md.dev(), md.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    let target = target.clone();
                    self.tar.append_link(
                        &mut h,
                        OsStr::from_bytes(&path),
                        OsStr::from_bytes(&target),
                    )?;
                    continue;
                }
                self.links.insert((md.dev(), md.ino()), path.clone());
            }
            self.xattrs(&p)?;
            let name_os = OsStr::from_bytes(&path);
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                let mut dname = path.clone();
                dname.push(b'/');
                self.tar
                    .append_data(&mut h, OsStr::from_bytes(&dname), io::empty())?;
                if self.whiteouts && is_opaque(&p) {
                    let mut o = path.clone();
                    o.push(b'/');
                    o.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
                    self.empty(&o, &md)?;
                }
                self.walk(&p, &path)?;
            } else if ft.is_file() {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(md.len());
                let f = fs::File::open(&p)?;
                self.tar.append_data(&mut h, name_os, f)?;
            } else if ft.is_symlink() {
                h.set_entry_type(tar::EntryType::Symlink);
                let target = fs::read_link(&p)?;
                self.tar.append_link(&mut h, name_os, &target)?;
            } else {
                h.set_entry_type(if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    continue; // sockets do not go into layers
                });
                let rdev = md.rdev();
                h.set_device_major(libc::major(rdev))?;
                h.set_device_minor(libc::minor(rdev))?;
                self.tar.append_data(&mut h, name_os, io::empty())?;
            }
        }
        Ok(())
    }
}

/// Writes the tree `dir` as a tar to `w`. With `whiteouts`, overlayfs
/// deletions and opaque directories become `.wh.` entries and
/// [`RUNTIME_PATHS`] are left out (a layer from an upper directory);
/// without, the tree is written as it is (an export).
pub fn write_tar(dir: &Path, w: impl Write, whiteouts: bool) -> Result<()> {
    let mut t = TarWriter {
        tar: tar::Builder::new(w),
        links: HashMap::new(),
        whiteouts,
    };
    t.walk(dir, b"")
        .and_then(|()| t.tar.finish())
        .map_err(|e| io_err(format!("writing a tar of {}", dir.display()), e))
}

/// What `docker commit` takes besides the container's upper directory.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    /// REPO[:TAG] for the new image.
    pub reference: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// The container's config (Docker's "Config" object) to become the
    /// image's; None keeps the base image's.
    pub config: Option<serde_json::Value>,
    /// The history's created_by line.
    pub created_by: Option<String>,
}

impl crate::Store {
    /// `docker commit`: a new image of `base`'s layers plus `upper` as one
    /// more layer.
    pub fn commit(
        &self,
        base_id: &str,
        upper: &Path,
        opts: &CommitOptions,
    ) -> Result<crate::ImageSummary> {
        use crate::manifest::{self, Descriptor, Manifest};
        let reference = match &opts.reference {
            Some(r) => Some(crate::reference::Reference::parse(r)?),
            None => None,
        };
        let _gc = self.gc_guard();
        let records = self.meta.records()?;
        let repos = self.meta.repositories()?;
        let hex = crate::store::find_id(base_id, &records, &repos)?;
        let base = self.manifest(&records[&hex].manifest)?;
        let mut config: serde_json::Value =
            serde_json::from_slice(&self.content.read(&base.config.digest)?).map_err(|e| {
                crate::Error::InvalidImage(format!("base image config does not parse: {e}"))
            })?;

        // The layer: written to the content store, then unpacked from there.
        let mut ingest = self.content.ingest()?;
        write_tar(upper, &mut ingest, true)?;
        let (diff_id, _) = ingest.commit(None)?;
        let mut diff_ids = manifest::parse_config(
            &serde_json::to_vec(&config).expect("serialises"),
            "base config",
        )?
        .rootfs
        .diff_ids;
        diff_ids.push(diff_id.clone());
        let chains = crate::snapshots::chain_ids(&diff_ids);
        let chain = chains.last().expect("one layer at least");
        let size = if self.snapshots.path(chain)?.is_dir() {
            self.layer_size(&diff_id, &diff_id)?
        } else {
            let u =
                crate::archive::unpack_blob(self.content.path(&diff_id)?, self.snapshots.tmp()?)?;
            u.tmp.commit(&self.snapshots, chain)?;
            u.size
        };

        let (secs, nanos) = pier_common::time::unix_now();
        let now = pier_common::time::rfc3339(secs, nanos);
        config["created"] = now.clone().into();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diff_ids});
        if let Some(c) = &opts.config {
            config["config"] = c.clone();
        }
        if let Some(a) = opts.author.as_ref().filter(|a| !a.is_empty()) {
            config["author"] = a.clone().into();
        }
        let mut h = serde_json::json!({"created": now});
        if let Some(c) = &opts.created_by {
            h["created_by"] = c.clone().into();
        }
        if let Some(c) = opts.comment.as_ref().filter(|c| !c.is_empty()) {
            h["comment"] = c.clone().into();
        }
        if let Some(a) = opts.author.as_ref().filter(|a| !a.is_empty()) {
            h["author"] = a.clone().into();
        }
        match config.get_mut("history").and_then(|v| v.as_array_mut()) {
            Some(hist) => hist.push(h),
            None => config["history"] = serde_json::json!([h]),
        }
        let config_bytes = serde_json::to_vec(&config).expect("serialises");
        let (config_digest, config_size) = self.content.put(&config_bytes)?;
        let docker = base.media_type() == manifest::DOCKER_MANIFEST;
        let mut layers = base.layers.clone();
        layers.push(Descriptor {
            media_type: if docker {
                manifest::DOCKER_LAYER
            } else {
                manifest::OCI_LAYER
            }
            .into(),
            digest: diff_id.clone(),
            size: std::fs::metadata(self.content.path(&diff_id)?)
                .map(|m| m.len())
                .unwrap_or(0),
            platform: None,
            annotations: None,
        });
        let m = Manifest {
            schema_version: 2,
            media_type: Some(base.media_type().to_owned()),
            config: Descriptor {
                media_type: if docker {
                    manifest::DOCKER_CONFIG
                } else {
                    manifest::OCI_CONFIG
                }
                .into(),
                digest: config_digest.clone(),
                size: config_size,
                platform: None,
                annotations: None,
            },
            layers,
        };
        let (manifest_digest, _) = self
            .content
            .put(&serde_json::to_vec(&m).expect("serialises"))?;
        let total = records[&hex].size + size;
        let tags: Vec<_> = reference.iter().cloned().collect();
        self.register(&config_digest, &manifest_digest, secs, nanos, total, &tags)?;
        Ok(crate::ImageSummary {
            id: config_digest,
            repo_tags: tags.iter().map(|t| t.familiar()).collect(),
            created: secs,
            size: total,
        })
    }
}
