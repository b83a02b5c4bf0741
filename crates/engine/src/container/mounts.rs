//! A container's mounts as docker takes them: `HostConfig.Binds` (`-v`),
//! `HostConfig.Mounts` (`--mount`), `HostConfig.Tmpfs` (`--tmpfs`) and
//! anonymous volumes (`-v /dst`, the image's VOLUME entries), parsed at
//! create into the mount points pierd keeps in the container record.
//! Messages are dockerd's (20.10, the peer on the test machines).

use bollard_stubs::models::{Mount, MountBindOptionsPropagationEnum, MountType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Bind,
    Volume,
    Tmpfs,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Volume => "volume",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, kept in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: Kind,
    /// Bind: the host path. Volume: the volume's name (empty for an
    /// anonymous volume until create makes it). Tmpfs: empty.
    pub source: String,
    /// Absolute and lexically clean (`..` cannot climb above `/`).
    pub destination: String,
    pub rw: bool,
    /// Docker's `Mode`: the options as the user gave them ("z" for a
    /// volume given without any).
    pub mode: String,
    /// Bind propagation ("rprivate" unless asked otherwise); empty for
    /// volumes and tmpfs, as docker reports them.
    pub propagation: String,
    /// Do not fill a new empty volume with the image's content.
    #[serde(default)]
    pub nocopy: bool,
    /// A `-v` bind whose missing host directory is created at start
    /// (`--mount` refuses a missing source instead).
    #[serde(default)]
    pub create_source: bool,
    /// A bind of only the source mount, not the mounts below it.
    #[serde(default)]
    pub non_recursive: bool,
    /// Tmpfs mount options (`size=...`, `mode=...`).
    #[serde(default)]
    pub options: Vec<String>,
    /// A `--tmpfs` mount: as docker, not listed in the container's Mounts.
    #[serde(default)]
    pub unlisted: bool,
    /// `volume-subpath`: a directory inside the volume to mount instead
    /// of the whole volume (relative, no `..`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    /// For a volume `--mount` creates: its driver options and labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_labels: BTreeMap<String, String>,
}

impl MountPoint {
    fn new(kind: Kind, source: &str, destination: String) -> MountPoint {
        MountPoint {
            kind,
            source: source.to_string(),
            destination,
            rw: true,
            mode: String::new(),
            propagation: if kind == Kind::Bind {
                "rprivate".into()
            } else {
                String::new()
            },
            nocopy: false,
            create_source: false,
            non_recursive: false,
            options: Vec::new(),
            unlisted: false,
            subpath: String::new(),
            volume_options: BTreeMap::new(),
            volume_labels: BTreeMap::new(),
        }
    }

    /// An anonymous volume at `destination` (`-v /dst`, an image VOLUME).
    pub fn anonymous(destination: &str) -> Result<MountPoint, String> {
        let dst = destination_path(destination)?;
        Ok(MountPoint::new(Kind::Volume, "", dst))
    }
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Lexically cleans an absolute container path: `/a/../../b/.` is `/b`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A destination docker accepts: absolute, not `/` once cleaned.
fn destination_path(dst: &str) -> Result<String, String> {
    if !dst.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{dst}' mount path must be absolute"
        ));
    }
    let dst = clean(dst);
    if dst == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(dst)
}

/// Whether every comma-separated option in `mode` is one docker knows,
/// with at most one of rw/ro, one propagation and one of z/Z.
fn valid_mode(mode: &str) -> bool {
    let (mut rw, mut prop, mut label, mut copy) = (0, 0, 0, 0);
    for o in mode.split(',') {
        match o {
            "rw" | "ro" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            "consistent" | "cached" | "delegated" => {}
            o if PROPAGATIONS.contains(&o) => prop += 1,
            _ => return false,
        }
    }
    rw <= 1 && prop <= 1 && label <= 1 && copy <= 1
}

/// One `-v` / `HostConfig.Binds` entry: `SRC:DST[:MODE]` (SRC an absolute
/// host path for a bind, else a volume name) or `DST[:MODE]` for an
/// anonymous volume.
pub fn parse_bind(spec: &str) -> Result<MountPoint, String> {
    let invalid = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    let (source, dst, mode) = match parts[..] {
        [dst] => ("", dst, ""),
        [a, b] if valid_mode(b) && !b.starts_with('/') => ("", a, b),
        [src, dst] => (src, dst, ""),
        [src, dst, mode] => (src, dst, mode),
        _ => return Err(invalid()),
    };
    if !mode.is_empty() && !valid_mode(mode) {
        return Err(format!("invalid mode: {mode}"));
    }
    let kind = if source.starts_with('/') {
        Kind::Bind
    } else {
        Kind::Volume
    };
    let wrap = |e: String| {
        format!(
            "{}: invalid mount config for type \"{}\": {e}",
            invalid(),
            kind.as_str()
        )
    };
    let destination = destination_path(dst).map_err(wrap)?;
    let opts: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
    let propagation = opts.iter().find(|o| PROPAGATIONS.contains(o));
    let nocopy = opts.contains(&"nocopy");
    match kind {
        Kind::Bind if nocopy => {
            return Err(wrap("field VolumeOptions must not be specified".into()))
        }
        Kind::Volume if propagation.is_some() => {
            return Err(wrap("field BindOptions must not be specified".into()))
        }
        _ => {}
    }
    let source = if kind == Kind::Bind {
        clean(source)
    } else {
        source.to_string()
    };
    let mut m = MountPoint::new(kind, &source, destination);
    m.rw = !opts.contains(&"ro");
    m.nocopy = nocopy;
    m.create_source = true;
    m.mode = match (kind, mode) {
        (Kind::Volume, "") if !m.source.is_empty() => "z".into(),
        _ => mode.to_string(),
    };
    if let Some(p) = propagation {
        m.propagation = p.to_string();
    }
    Ok(m)
}

/// One `HostConfig.Mounts` entry (`--mount`).
pub fn from_mount(spec: &Mount) -> Result<MountPoint, String> {
    let kind = match spec.typ {
        Some(MountType::BIND) | None => Kind::Bind,
        Some(MountType::VOLUME) => Kind::Volume,
        Some(MountType::TMPFS) => Kind::Tmpfs,
        Some(other) => return Err(format!("mount type \"{other}\" is not supported by pier")),
    };
    let wrap = |e: String| format!("invalid mount config for type \"{}\": {e}", kind.as_str());
    let target = spec.target.as_deref().unwrap_or("");
    if target.is_empty() {
        return Err(wrap("field Target must not be empty".into()));
    }
    let destination = destination_path(target).map_err(wrap)?;
    let source = spec.source.as_deref().unwrap_or("");
    let forbid = |set: bool, field: &str| -> Result<(), String> {
        match set {
            true => Err(wrap(format!("field {field} must not be specified"))),
            false => Ok(()),
        }
    };
    let mut m = MountPoint::new(kind, "", destination);
    m.rw = !spec.read_only.unwrap_or(false);
    match kind {
        Kind::Bind => {
            forbid(spec.volume_options.is_some(), "VolumeOptions")?;
            forbid(spec.tmpfs_options.is_some(), "TmpfsOptions")?;
            if source.is_empty() {
                return Err(wrap("field Source must not be empty".into()));
            }
            if !source.starts_with('/') {
                return Err(wrap(format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            m.source = clean(source);
            if let Some(b) = &spec.bind_options {
                if let Some(p) = b.propagation {
                    if p != MountBindOptionsPropagationEnum::EMPTY {
                        m.propagation = p.to_string();
                    }
                }
                m.non_recursive = b.non_recursive.unwrap_or(false);
                m.create_source = b.create_mountpoint.unwrap_or(false);
            }
        }
        Kind::Volume => {
            forbid(spec.bind_options.is_some(), "BindOptions")?;
            forbid(spec.tmpfs_options.is_some(), "TmpfsOptions")?;
            m.source = source.to_string();
            m.mode = "z".into();
            if let Some(v) = &spec.volume_options {
                m.nocopy = v.no_copy.unwrap_or(false);
                if let Some(sub) = v.subpath.as_deref().filter(|s| !s.is_empty()) {
                    let escapes = sub.starts_with('/') || sub.split('/').any(|c| c == "..");
                    if escapes {
                        return Err(wrap(format!(
                            "subpath must be a relative path within the volume: {sub}"
                        )));
                    }
                    m.subpath = sub.to_string();
                }
                if let Some(d) = &v.driver_config {
                    if let Some(name) = d.name.as_deref().filter(|n| !n.is_empty() && *n != "local")
                    {
                        return Err(format!(
                            "error looking up volume plugin {name}: plugin \"{name}\" not found"
                        ));
                    }
                    m.volume_options = d.options.clone().unwrap_or_default().into_iter().collect();
                }
                m.volume_labels = v.labels.clone().unwrap_or_default().into_iter().collect();
            }
        }
        Kind::Tmpfs => {
            forbid(spec.bind_options.is_some(), "BindOptions")?;
            forbid(spec.volume_options.is_some(), "VolumeOptions")?;
            if !source.is_empty() {
                return Err(wrap("field Source must not be specified".into()));
            }
            if let Some(t) = &spec.tmpfs_options {
                if let Some(size) = t.size_bytes.filter(|s| *s > 0) {
                    m.options.push(format!("size={size}"));
                }
                if let Some(mode) = t.mode.filter(|m| *m != 0) {
                    m.options.push(format!("mode={mode:o}"));
                }
                for o in t.options.iter().flatten() {
                    match &o[..] {
                        [flag] => m.options.push(flag.clone()),
                        [k, v] => m.options.push(format!("{k}={v}")),
                        _ => return Err(wrap(format!("invalid tmpfs option {o:?}"))),
                    }
                }
            }
        }
    }
    Ok(m)
}

/// One `HostConfig.Tmpfs` entry (`--tmpfs DST[:OPTS]`).
pub fn from_tmpfs(dst: &str, opts: &str) -> Result<MountPoint, String> {
    let destination = destination_path(dst)?;
    let mut m = MountPoint::new(Kind::Tmpfs, "", destination);
    m.unlisted = true;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.rw = false,
            "rw" => m.rw = true,
            o => m.options.push(o.to_string()),
        }
    }
    Ok(m)
}

/// The OCI mount options of a tmpfs: docker's defaults (noexec, nosuid,
/// nodev), which the user's own options override (`exec`, `suid`, `dev`).
pub fn tmpfs_options(m: &MountPoint) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let given = |flag: &str| m.options.iter().any(|o| o == flag);
    for (default, opposite) in [("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")] {
        if !given(opposite) {
            out.push(default.into());
        }
    }
    for o in &m.options {
        if !out.contains(o) {
            out.push(o.clone());
        }
    }
    out.push(if m.rw { "rw" } else { "ro" }.into());
    out
}

/// The error for two mounts at one destination.
pub fn check_duplicates(mounts: &[MountPoint]) -> Result<(), String> {
    for (i, m) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|o| o.destination == m.destination) {
            return Err(format!("Duplicate mount point: {}", m.destination));
        }
    }
    Ok(())
}

/// How far below `/` a destination is, to mount parents before children.
pub fn depth(destination: &str) -> usize {
    destination.split('/').filter(|c| !c.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{MountBindOptions, MountTmpfsOptions, MountVolumeOptions};

    #[test]
    fn binds_parse_as_dockerd_parses_them() {
        let m = parse_bind("/srv/h:/h").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.destination.as_str(), m.rw),
            (Kind::Bind, "/srv/h", "/h", true)
        );
        assert_eq!((m.mode.as_str(), m.propagation.as_str()), ("", "rprivate"));
        assert!(m.create_source);

        let m = parse_bind("/srv/h:/h2:ro,rshared").unwrap();
        assert!(!m.rw);
        assert_eq!(
            (m.mode.as_str(), m.propagation.as_str()),
            ("ro,rshared", "rshared")
        );

        // as docker: a volume given without a mode reports "z".
        let m = parse_bind("nv:/nv").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.mode.as_str()),
            (Kind::Volume, "nv", "z")
        );
        assert_eq!(m.propagation, "");
        let m = parse_bind("nv2:/nv2:ro,nocopy").unwrap();
        assert!(!m.rw && m.nocopy);
        assert_eq!(m.mode, "ro,nocopy");

        let m = parse_bind("/anon").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.mode.as_str()),
            (Kind::Volume, "", "")
        );
        let m = parse_bind("/anon:ro").unwrap();
        assert_eq!((m.destination.as_str(), m.rw), ("/anon", false));

        // `..` cannot climb out of the container's root.
        assert_eq!(parse_bind("v:/../../x/./y/..").unwrap().destination, "/x");
        assert_eq!(parse_bind("/a/../b:/d").unwrap().source, "/b");
    }

    #[test]
    fn bad_binds_fail_with_dockerds_messages() {
        let err = |s: &str| parse_bind(s).unwrap_err();
        assert_eq!(
            err("/h:rel"),
            "invalid volume specification: '/h:rel': invalid mount config for type \"bind\": \
             invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            err("/h:/"),
            "invalid volume specification: '/h:/': invalid mount config for type \"bind\": \
             invalid specification: destination can't be '/'"
        );
        assert_eq!(err("/h:/d:foo"), "invalid mode: foo");
        assert_eq!(err("/h:/d:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(err("/h:/d:shared,slave"), "invalid mode: shared,slave");
        assert_eq!(err("a:b:c:d"), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(err("a::/d"), "invalid volume specification: 'a::/d'");
        assert_eq!(
            err("/h:/d:nocopy"),
            "invalid volume specification: '/h:/d:nocopy': invalid mount config for type \"bind\": \
             field VolumeOptions must not be specified"
        );
        assert_eq!(
            err("v:/d:rshared"),
            "invalid volume specification: 'v:/d:rshared': invalid mount config for type \"volume\": \
             field BindOptions must not be specified"
        );
    }

    #[test]
    fn mounts_parse_and_check_their_fields() {
        let bind = Mount {
            typ: Some(MountType::BIND),
            source: Some("/h".into()),
            target: Some("/mb".into()),
            read_only: Some(true),
            ..Default::default()
        };
        let m = from_mount(&bind).unwrap();
        assert_eq!((m.kind, m.rw, m.mode.as_str()), (Kind::Bind, false, ""));
        assert!(!m.create_source, "--mount does not create a missing source");
        let m = from_mount(&Mount {
            bind_options: Some(MountBindOptions {
                propagation: Some(MountBindOptionsPropagationEnum::RSLAVE),
                create_mountpoint: Some(true),
                ..Default::default()
            }),
            ..bind.clone()
        })
        .unwrap();
        assert_eq!(m.propagation, "rslave");
        assert!(m.create_source);

        let vol = Mount {
            typ: Some(MountType::VOLUME),
            source: Some("mv".into()),
            target: Some("/mv".into()),
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                labels: Some([("a".to_string(), "b".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = from_mount(&vol).unwrap();
        assert_eq!(
            (m.kind, m.mode.as_str(), m.nocopy),
            (Kind::Volume, "z", true)
        );
        assert_eq!(m.volume_labels.get("a").map(String::as_str), Some("b"));

        let tmpfs = Mount {
            typ: Some(MountType::TMPFS),
            target: Some("/mt".into()),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(1 << 20),
                mode: Some(0o1777),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = from_mount(&tmpfs).unwrap();
        assert_eq!(m.options, ["size=1048576", "mode=1777"]);
        assert_eq!(
            tmpfs_options(&m),
            [
                "noexec",
                "nosuid",
                "nodev",
                "size=1048576",
                "mode=1777",
                "rw"
            ]
        );

        let sub = |s: &str| {
            from_mount(&Mount {
                volume_options: Some(MountVolumeOptions {
                    subpath: Some(s.into()),
                    ..Default::default()
                }),
                ..vol.clone()
            })
        };
        assert_eq!(sub("a/b").unwrap().subpath, "a/b");
        for bad in ["../x", "a/../../b", "/abs"] {
            assert!(sub(bad)
                .unwrap_err()
                .contains("subpath must be a relative path"));
        }
        let e = from_mount(&Mount {
            source: Some("/h".into()),
            ..tmpfs.clone()
        })
        .unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        let e = from_mount(&Mount {
            source: Some("rel".into()),
            ..bind.clone()
        })
        .unwrap_err();
        assert!(e.contains("'rel' mount path must be absolute"), "{e}");
        let e = from_mount(&Mount {
            target: None,
            ..bind
        })
        .unwrap_err();
        assert!(e.contains("field Target must not be empty"), "{e}");
    }

    #[test]
    fn tmpfs_flags_and_defaults() {
        let m = from_tmpfs("/t2", "size=2m,exec,ro").unwrap();
        assert!(!m.rw);
        assert_eq!(
            tmpfs_options(&m),
            ["nosuid", "nodev", "size=2m", "exec", "ro"]
        );
        assert_eq!(
            from_tmpfs("rel", "").unwrap_err(),
            "invalid mount path: 'rel' mount path must be absolute"
        );
    }

    #[test]
    fn duplicates_and_depth() {
        let a = parse_bind("x1:/d").unwrap();
        let b = parse_bind("/h:/d/").unwrap();
        assert_eq!(
            check_duplicates(&[a.clone(), b]).unwrap_err(),
            "Duplicate mount point: /d"
        );
        assert!(check_duplicates(&[a, parse_bind("/h:/d/e").unwrap()]).is_ok());
        assert_eq!(depth("/a/b"), 2);
        assert_eq!(clean("/a/./b//../c/"), "/a/c");
    }
}
