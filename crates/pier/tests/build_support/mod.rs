//! Shared by the `pier build` tests (build.rs, build_docker.rs): build
//! contexts written from a file list, images read back through `save`
//! (config, history, layers) and `export` of a created container (files),
//! for pier's CLI and docker's alike.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Both streams, for messages and for progress that goes to either.
pub fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// Writes a context: `(path, contents)`; a path ending in `/` is a
/// directory, contents starting with `->` make a symlink to the rest.
pub fn write_context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (path, contents) in files {
        let p = dir.join(path.trim_end_matches('/'));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        if path.ends_with('/') {
            std::fs::create_dir_all(&p).unwrap();
        } else if let Some(target) = contents.strip_prefix("->") {
            std::os::unix::fs::symlink(target, &p).unwrap();
        } else {
            std::fs::write(&p, contents).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    dir.to_path_buf()
}

/// A file of an exported filesystem or a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 'f' file, 'd' directory, 'l' symlink, 'h' hard link, 'c'/'b'/'p' special.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// File contents, or a link's target.
    pub data: Vec<u8>,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let data = if self.data.len() > 80 {
            format!("<{} bytes>", self.data.len())
        } else {
            format!("{:?}", String::from_utf8_lossy(&self.data))
        };
        write!(
            f,
            "{} {:o} {}:{} {}",
            self.kind, self.mode, self.uid, self.gid, data
        )
    }
}

/// Entries of a tar stream by normalised path ("/a/b"), without the root.
pub fn tar_entries(bytes: &[u8]) -> BTreeMap<String, Entry> {
    let mut map = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().expect("reading a tar") {
        let mut e = e.expect("reading a tar entry");
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let path = format!(
            "/{}",
            path.trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/')
        );
        if path == "/" || path == "/." {
            continue;
        }
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            _ => '?',
        };
        let data = match kind {
            'l' | 'h' => e
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default(),
            _ => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                v
            }
        };
        map.insert(
            path,
            Entry {
                kind,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                data,
            },
        );
    }
    map
}

/// An image as `save` writes it: its config and its layers (tar bytes, in
/// order).
pub struct Saved {
    pub config: serde_json::Value,
    pub layers: Vec<Vec<u8>>,
}

impl Saved {
    /// Parses a `docker save` / `pier save` archive of one image.
    pub fn parse(archive: &[u8]) -> Saved {
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut ar = tar::Archive::new(archive);
        for e in ar.entries().expect("reading the saved archive") {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            files.insert(path.trim_start_matches("./").to_string(), v);
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(files.get("manifest.json").expect("manifest.json in save"))
                .expect("manifest.json is JSON");
        let m = &manifest[0];
        let config = serde_json::from_slice(&files[m["Config"].as_str().unwrap()]).unwrap();
        let layers = m["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| decompress(&files[l.as_str().unwrap()]))
            .collect();
        Saved { config, layers }
    }

    /// The config's history entries: (created_by, empty_layer).
    pub fn history(&self) -> Vec<(String, bool)> {
        self.config["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|e| {
                        (
                            e["created_by"].as_str().unwrap_or("").to_string(),
                            e["empty_layer"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn diff_ids(&self) -> usize {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .map_or(0, |a| a.len())
    }
}

/// Layers may be stored gzip-compressed in an OCI layout: gunzip them with
/// the host's gzip (no gzip crate among the test dependencies).
fn decompress(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Write;
        let mut child = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = child.stdin.take().unwrap();
        let data = bytes.to_vec();
        let t = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().unwrap();
        t.join().unwrap().unwrap();
        out.stdout
    } else {
        bytes.to_vec()
    }
}

/// Paths that a container's export holds whatever the image: the runtime's
/// mount points and files, docker's marker.
pub fn runtime_path(path: &str) -> bool {
    matches!(
        path,
        "/.dockerenv"
            | "/etc/hostname"
            | "/etc/hosts"
            | "/etc/resolv.conf"
            | "/etc/mtab"
            | "/dev"
            | "/proc"
            | "/sys"
            | "/dev/console"
            | "/dev/pts"
            | "/dev/shm"
    ) || path.starts_with("/dev/")
        || path.starts_with("/proc/")
        || path.starts_with("/sys/")
}

/// The filesystem an image's layers make, applied in order with their
/// whiteouts (`.wh.NAME`, `.wh..wh..opq`); hard links become copies of
/// their targets.
pub fn merged(layers: &[Vec<u8>]) -> BTreeMap<String, Entry> {
    let mut fs: BTreeMap<String, Entry> = BTreeMap::new();
    fn remove_under(fs: &mut BTreeMap<String, Entry>, dir: &str) {
        let prefix = format!("{dir}/");
        fs.retain(|k, _| !k.starts_with(&prefix));
    }
    for layer in layers {
        let entries = tar_entries(layer);
        // Opaque markers and whiteouts first: they hide what lies below.
        for path in entries.keys() {
            let (dir, name) = path.rsplit_once('/').unwrap();
            if name == ".wh..wh..opq" {
                remove_under(&mut fs, dir);
            } else if let Some(hidden) = name.strip_prefix(".wh.") {
                let target = format!("{dir}/{hidden}");
                fs.remove(&target);
                remove_under(&mut fs, &target);
            }
        }
        for (path, mut e) in entries {
            let name = path.rsplit_once('/').unwrap().1;
            if name.starts_with(".wh.") {
                continue;
            }
            if e.kind == 'h' {
                let target = format!(
                    "/{}",
                    String::from_utf8_lossy(&e.data)
                        .trim_start_matches("./")
                        .trim_start_matches('/')
                );
                if let Some(t) = fs.get(&target) {
                    e = t.clone();
                }
            }
            if e.kind != 'd' {
                remove_under(&mut fs, &path);
            }
            fs.insert(path, e);
        }
    }
    fs
}

/// Differences between two filesystems, one line each.
pub fn fs_diff(
    a_name: &str,
    a: &BTreeMap<String, Entry>,
    b_name: &str,
    b: &BTreeMap<String, Entry>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        if runtime_path(k) {
            continue;
        }
        match b.get(k) {
            None => out.push(format!("{k}: only in {a_name} ({v})")),
            Some(w) if w != v => out.push(format!("{k}: {a_name} {v} | {b_name} {w}")),
            _ => {}
        }
    }
    for (k, w) in b {
        if !runtime_path(k) && !a.contains_key(k) {
            out.push(format!("{k}: only in {b_name} ({w})"));
        }
    }
    out
}
