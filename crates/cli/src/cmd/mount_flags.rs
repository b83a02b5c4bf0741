//! `-v/--volume`, `--mount`, `--tmpfs` and `--volumes-from` of `run` and
//! `create`, turned into the `POST /containers/create` body the way the
//! Docker CLI (28) builds it:
//!
//! - `-v SRC:DST[:OPTS]` goes to `HostConfig.Binds` as written, except that
//!   a host path starting with `.` is made absolute first; a bare `-v DST`
//!   (an anonymous volume) goes to `Config.Volumes` as `{"DST": {}}`.
//! - `--mount` (CSV `key=value` fields) becomes one `HostConfig.Mounts`
//!   entry (the API's Mount object); a bad field fails here, before
//!   anything is sent, with Docker's message.
//! - `--tmpfs DST[:OPTS]` fills the `HostConfig.Tmpfs` map and
//!   `--volumes-from` the `HostConfig.VolumesFrom` list, both unchecked:
//!   the daemon judges them, as with Docker.

use crate::error::CliError;
use serde_json::{json, Map, Value};
use std::path::{Component, Path, PathBuf};

/// Where one `-v` value goes in the create body.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeSpec {
    /// A `HostConfig.Binds` entry (host path or named volume).
    Bind(String),
    /// A `Config.Volumes` key (an anonymous volume at this path).
    Anonymous(String),
}

/// Go's `filepath.Clean` for a slash path: `.` and empty parts dropped,
/// `..` resolved lexically, no trailing slash.
fn clean(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Go's `filepath.Abs`: `p` joined to `cwd` (when relative) and cleaned.
pub fn abs_path(cwd: &Path, p: &str) -> String {
    clean(&cwd.join(p)).to_string_lossy().into_owned()
}

/// A `C:`-style drive letter: kept in the source part of a `-v` value.
fn windows_drive(buf: &str, c: char) -> bool {
    let mut it = buf.chars();
    c == ':' && matches!((it.next(), it.next()), (Some(l), None) if l.is_alphabetic())
}

/// Whether a `-v` source names a host path (`.`, `/`, `~`, a drive)
/// rather than a volume, as the Docker CLI decides it.
fn is_file_path(source: &str) -> bool {
    let mut it = source.chars();
    match it.next() {
        None => false,
        Some('.' | '/' | '~') => true,
        Some(_) if source.starts_with("\\\\") => true,
        Some(first) => windows_drive(&first.to_string(), it.next().unwrap_or(' ')),
    }
}

/// One `-v` value, checked and split as the Docker CLI does: empty
/// sections and a fourth part are refused; a relative host path (one
/// starting with `.`) becomes absolute against `cwd`.
pub fn volume_spec(spec: &str, cwd: &Path) -> Result<VolumeSpec, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    // One or two characters are a target, whatever they are.
    if spec.len() <= 2 {
        return Ok(VolumeSpec::Anonymous(spec.into()));
    }
    let (mut source, mut target) = (None::<String>, false);
    let mut buf = String::new();
    let mut chars = spec.chars().map(Some).chain([None]);
    for c in &mut chars {
        match c {
            Some(c) if windows_drive(&buf, c) => buf.push(c),
            Some(c) if c != ':' => buf.push(c),
            _ => {
                let part = std::mem::take(&mut buf);
                if part.is_empty() {
                    return Err(format!(
                        "invalid spec: {spec}: empty section between colons"
                    ));
                }
                if source.is_none() && c.is_none() {
                    return Ok(VolumeSpec::Anonymous(spec.into()));
                } else if source.is_none() {
                    source = Some(part);
                } else if !target {
                    target = true;
                } else if c == Some(':') {
                    return Err(format!("invalid spec: {spec}: too many colons"));
                }
                // A third part holds the options; the daemon checks them.
            }
        }
    }
    let source = source.unwrap_or_default();
    if is_file_path(&source) && source.starts_with('.') {
        // The first colon ends the source: a `.` path has no drive letter.
        let rest = spec.split_once(':').map_or("", |(_, r)| r);
        return Ok(VolumeSpec::Bind(format!(
            "{}:{rest}",
            abs_path(cwd, &source)
        )));
    }
    Ok(VolumeSpec::Bind(spec.into()))
}

/// The first record of a CSV line as Go's `encoding/csv` reads it (quoted
/// fields, `""` for a quote), with its error messages.
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    // A newline ends the record, except inside quotes.
    let line = s;
    if line.is_empty() {
        return Err("EOF".into());
    }
    let err = |col: usize, what: &str| format!("parse error on line 1, column {col}: {what}");
    let b = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut field = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        return Err(err(b.len() + 1, "extraneous or missing \" in quoted-field"))
                    }
                    Some(b'"') => match b.get(i + 1) {
                        Some(b'"') => {
                            field.push(b'"');
                            i += 2;
                        }
                        Some(b',') => {
                            i += 2;
                            fields.push(String::from_utf8_lossy(&field).into_owned());
                            break;
                        }
                        None | Some(b'\n') => {
                            fields.push(String::from_utf8_lossy(&field).into_owned());
                            return Ok(fields);
                        }
                        Some(_) => {
                            return Err(err(i + 1, "extraneous or missing \" in quoted-field"))
                        }
                    },
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            let start = i;
            while let Some(&c) = b.get(i) {
                match c {
                    b',' | b'\n' => break,
                    b'"' => return Err(err(i + 1, "bare \" in non-quoted-field")),
                    _ => i += 1,
                }
            }
            let mut field = &line[start..i];
            if b.get(i) != Some(&b',') {
                field = field.strip_suffix('\r').unwrap_or(field);
                fields.push(field.to_string());
                return Ok(fields);
            }
            fields.push(field.to_string());
            i += 1;
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn object<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("just made an object")
}

/// `k=v` into a map; an empty key is ignored, as the Docker CLI does.
fn set_pair(m: &mut Map<String, Value>, kv: &str) {
    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
    if !k.is_empty() {
        m.insert(k.to_string(), json!(v));
    }
}

/// One `--mount` value as the API's Mount object, or Docker's reason why
/// not (without the `invalid argument ... for "--mount" flag: ` prefix).
pub fn parse_mount(value: &str, cwd: &Path) -> Result<Value, String> {
    let fields = csv_fields(value)?;
    let mut m = Map::new();
    m.insert("Type".into(), json!("volume"));
    let mut volume: Option<Map<String, Value>> = None;
    let mut bind: Option<Map<String, Value>> = None;
    let mut tmpfs: Option<Map<String, Value>> = None;
    let mut image: Option<Map<String, Value>> = None;
    fn volume_opts(v: &mut Option<Map<String, Value>>) -> &mut Map<String, Value> {
        let v = v.get_or_insert_with(Map::new);
        v.entry("DriverConfig").or_insert_with(|| json!({}));
        v
    }
    let invalid = |k: &str, v: &str| format!("invalid value for {k}: {v}");
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v),
            None => {
                match field.to_lowercase().as_str() {
                    "readonly" | "ro" => {
                        m.insert("ReadOnly".into(), json!(true));
                    }
                    "volume-nocopy" => {
                        volume_opts(&mut volume).insert("NoCopy".into(), json!(true));
                    }
                    "bind-nonrecursive" => {
                        bind.get_or_insert_with(Map::new)
                            .insert("NonRecursive".into(), json!(true));
                    }
                    _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
                }
                continue;
            }
        };
        match key.as_str() {
            "type" => {
                m.insert("Type".into(), json!(val.to_lowercase()));
            }
            "source" | "src" => {
                let src = if val.starts_with('.') {
                    abs_path(cwd, val)
                } else {
                    val.to_string()
                };
                m.insert("Source".into(), json!(src));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val));
            }
            "readonly" | "ro" => {
                let ro = parse_bool(val).ok_or_else(|| invalid(&key, val))?;
                m.insert("ReadOnly".into(), json!(ro));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(val.to_lowercase()));
            }
            "bind-propagation" => {
                bind.get_or_insert_with(Map::new)
                    .insert("Propagation".into(), json!(val.to_lowercase()));
            }
            "bind-nonrecursive" => {
                let b = parse_bool(val).ok_or_else(|| invalid(&key, val))?;
                eprintln!(
                    "WARNING: bind-nonrecursive is deprecated, use bind-recursive=disabled instead"
                );
                let o = bind.get_or_insert_with(Map::new);
                if b {
                    o.insert("NonRecursive".into(), json!(true));
                }
            }
            "bind-recursive" => {
                let field = match val {
                    "enabled" => None,
                    "disabled" => Some("NonRecursive"),
                    "writable" => Some("ReadOnlyNonRecursive"),
                    "readonly" => Some("ReadOnlyForceRecursive"),
                    _ => {
                        return Err(format!(
                            "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                        ))
                    }
                };
                if let Some(f) = field {
                    bind.get_or_insert_with(Map::new)
                        .insert(f.into(), json!(true));
                }
            }
            "volume-nocopy" => {
                let b = parse_bool(val).ok_or_else(|| invalid(&key, val))?;
                let o = volume_opts(&mut volume);
                if b {
                    o.insert("NoCopy".into(), json!(true));
                } else {
                    o.remove("NoCopy");
                }
            }
            "volume-label" => set_pair(object(volume_opts(&mut volume), "Labels"), val),
            "volume-driver" => {
                let dc = object(volume_opts(&mut volume), "DriverConfig");
                if val.is_empty() {
                    dc.remove("Name");
                } else {
                    dc.insert("Name".into(), json!(val));
                }
            }
            "volume-opt" => {
                let dc = object(volume_opts(&mut volume), "DriverConfig");
                set_pair(object(dc, "Options"), val);
            }
            "volume-subpath" => {
                volume_opts(&mut volume).insert("Subpath".into(), json!(val));
            }
            "image-subpath" => {
                image
                    .get_or_insert_with(Map::new)
                    .insert("Subpath".into(), json!(val));
            }
            "tmpfs-size" => {
                let n =
                    super::container_flags::ram_in_bytes(val).map_err(|_| invalid(&key, val))?;
                let o = tmpfs.get_or_insert_with(Map::new);
                if n != 0 {
                    o.insert("SizeBytes".into(), json!(n));
                }
            }
            "tmpfs-mode" => {
                let ok = !val.is_empty() && val.bytes().all(|c| (b'0'..=b'7').contains(&c));
                let mode = u32::from_str_radix(val, 8)
                    .ok()
                    .filter(|_| ok)
                    .ok_or_else(|| invalid(&key, val))?;
                let o = tmpfs.get_or_insert_with(Map::new);
                if mode != 0 {
                    o.insert("Mode".into(), json!(mode));
                }
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let ty = m["Type"].as_str().unwrap_or_default().to_string();
    if ty.is_empty() {
        return Err("type is required".into());
    }
    if m.get("Target")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        return Err("target is required".into());
    }
    for (opts, kind, want) in [
        (&volume, "volume", "volume"),
        (&bind, "bind", "bind"),
        (&tmpfs, "tmpfs", "tmpfs"),
        (&image, "image", "image"),
    ] {
        if opts.is_some() && ty != want {
            return Err(format!(
                "cannot mix '{kind}-*' options with mount type '{ty}'"
            ));
        }
    }
    let read_only = m.get("ReadOnly") == Some(&json!(true));
    if let Some(b) = &bind {
        if b.contains_key("ReadOnlyNonRecursive") && !read_only {
            return Err(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
                    .into(),
            );
        }
        if b.contains_key("ReadOnlyForceRecursive") {
            if !read_only {
                return Err("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction".into());
            }
            if b.get("Propagation").and_then(Value::as_str) != Some("rprivate") {
                return Err("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".into());
            }
        }
    }
    // What Go leaves out of the JSON (`omitempty`): false, "", and empty
    // Labels/Options maps; option objects stay even when empty.
    fn prune(m: &mut Map<String, Value>, top: bool) {
        m.retain(|k, v| match v {
            Value::Object(o) if !top && (k == "Labels" || k == "Options") => !o.is_empty(),
            Value::Object(o) => {
                prune(o, false);
                true
            }
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            _ => true,
        });
    }
    for (key, opts) in [
        ("VolumeOptions", volume),
        ("BindOptions", bind),
        ("TmpfsOptions", tmpfs),
        ("ImageOptions", image),
    ] {
        if let Some(o) = opts {
            m.insert(key.into(), Value::Object(o));
        }
    }
    prune(&mut m, true);
    Ok(Value::Object(m))
}

/// Docker's message for a bad `--mount` value.
fn bad_mount(value: &str, why: &str) -> CliError {
    CliError::engine(format!(
        "invalid argument \"{}\" for \"--mount\" flag: {why}",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The mount flags of `run`/`create`, as given on the command line.
pub struct MountFlags<'a> {
    pub volume: &'a [String],
    pub mount: &'a [String],
    pub tmpfs: &'a [String],
    pub volumes_from: &'a [String],
}

impl MountFlags<'_> {
    /// Adds Binds, Mounts, Tmpfs and VolumesFrom to the host config and
    /// returns `Config.Volumes` (anonymous `-v` volumes), each only when
    /// given.
    pub fn apply(&self, hc: &mut Map<String, Value>) -> Result<Option<Value>, CliError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let mut binds = Vec::new();
        let mut anonymous = Map::new();
        for v in self.volume {
            match volume_spec(v, &cwd).map_err(CliError::engine)? {
                VolumeSpec::Bind(b) => binds.push(json!(b)),
                VolumeSpec::Anonymous(d) => {
                    anonymous.insert(d, json!({}));
                }
            }
        }
        let mut mounts = Vec::new();
        for m in self.mount {
            mounts.push(parse_mount(m, &cwd).map_err(|e| bad_mount(m, &e))?);
        }
        if !binds.is_empty() {
            hc.insert("Binds".into(), Value::Array(binds));
        }
        if !mounts.is_empty() {
            hc.insert("Mounts".into(), Value::Array(mounts));
        }
        if !self.tmpfs.is_empty() {
            let mut t = Map::new();
            for s in self.tmpfs {
                let (dst, opts) = s.split_once(':').unwrap_or((s.as_str(), ""));
                t.insert(dst.to_string(), json!(opts));
            }
            hc.insert("Tmpfs".into(), Value::Object(t));
        }
        if !self.volumes_from.is_empty() {
            hc.insert("VolumesFrom".into(), json!(self.volumes_from));
        }
        Ok((!anonymous.is_empty()).then_some(Value::Object(anonymous)))
    }
}

#[cfg(test)]
#[path = "mount_flags_tests.rs"]
mod tests;
