//! What a container may do: its capabilities (`--cap-add`, `--cap-drop`,
//! `--privileged`), its seccomp filter (Docker's default profile, a
//! profile of the user's, or none), `no-new-privileges`, and the device
//! nodes and device cgroup rules it gets, all as Docker sets them.

use super::spec::DEFAULT_CAPS;
use bollard_stubs::models::HostConfig;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Every capability the kernel may know, in number order.
pub const ALL_CAPS: &[&str] = pier_runtime::CAPABILITIES;

/// The capabilities pierd can give: those of [`ALL_CAPS`] in its own
/// bounding set (up to /proc/sys/kernel/cap_last_cap). Docker's "all
/// capabilities" are the kernel's, which fails to start a privileged
/// container where dockerd itself lacks one (in a restricted sandbox);
/// pier gives what it has.
pub fn host_caps() -> &'static [&'static str] {
    static CAPS: OnceLock<Vec<&'static str>> = OnceLock::new();
    CAPS.get_or_init(|| {
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(ALL_CAPS.len() - 1);
        let bounding = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("CapBnd:"))?.to_string();
                u64::from_str_radix(line["CapBnd:".len()..].trim(), 16).ok()
            })
            .unwrap_or(u64::MAX);
        ALL_CAPS
            .iter()
            .enumerate()
            .filter(|(i, _)| *i <= last && bounding & (1u64 << i) != 0)
            .map(|(_, c)| *c)
            .collect()
    })
}

/// `--cap-add`/`--cap-drop` values as Docker normalizes them: upper case,
/// `CAP_` prefixed, `ALL` kept; an unknown name is an error.
pub fn normalize_caps(list: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for c in list {
        let up = c.to_ascii_uppercase();
        let name = if up == "ALL" || up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if name != "ALL" && !ALL_CAPS.contains(&name.as_str()) {
            return Err(format!("unknown capability: {name:?}"));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The container's capability set, as Docker's TweakCapabilities.
pub fn capabilities(hc: &HostConfig) -> Vec<String> {
    let all = host_caps();
    if hc.privileged.unwrap_or(false) {
        return all.iter().map(|s| s.to_string()).collect();
    }
    let add = normalize_caps(hc.cap_add.as_deref().unwrap_or_default()).unwrap_or_default();
    let drop = normalize_caps(hc.cap_drop.as_deref().unwrap_or_default()).unwrap_or_default();
    let has = |l: &[String], c: &str| l.iter().any(|x| x == c);
    let mut caps: Vec<String> = if has(&add, "ALL") {
        all.iter()
            .filter(|c| !has(&drop, c))
            .map(|s| s.to_string())
            .collect()
    } else if has(&drop, "ALL") {
        add.clone()
    } else {
        let mut caps: Vec<String> = DEFAULT_CAPS
            .iter()
            .filter(|c| !has(&drop, c))
            .map(|s| s.to_string())
            .collect();
        caps.extend(add.iter().cloned());
        caps
    };
    let mut seen = Vec::new();
    caps.retain(|c| {
        c != "ALL" && !seen.contains(c) && {
            seen.push(c.clone());
            true
        }
    });
    caps
}

/// What the container's `SecurityOpt` asks for.
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    /// None: Docker's default profile; Some("unconfined"); or the JSON of
    /// a profile the client sent.
    pub seccomp: Option<String>,
    /// Accepted, not applied on this host (no AppArmor, no SELinux).
    pub ignored: Vec<String>,
    /// `systempaths=unconfined`: no masked or read-only /proc paths.
    pub unconfined_paths: bool,
}

/// Parses `SecurityOpt` as dockerd does, with its error texts.
pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, String> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            out.ignored.push(opt.clone());
            continue;
        }
        let (k, v) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some(kv) => kv,
            None => return Err(format!("invalid --security-opt 1: {opt:?}")),
        };
        match k {
            "label" | "apparmor" => out.ignored.push(opt.clone()),
            "systempaths" if v == "unconfined" => out.unconfined_paths = true,
            "seccomp" => {
                out.seccomp = match v {
                    "builtin" | "" => None,
                    other => Some(other.to_string()),
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges = match v {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
                }
            }
            _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
        }
    }
    Ok(out)
}

/// Docker's default seccomp profile, parsed once per pierd.
fn default_profile() -> &'static Value {
    static PROFILE: OnceLock<Value> = OnceLock::new();
    PROFILE.get_or_init(|| {
        serde_json::from_str(include_str!("docker-default-seccomp.json"))
            .expect("the embedded default seccomp profile is valid JSON")
    })
}

/// The default profile for the default capability set, converted once.
fn default_filter() -> &'static Value {
    static FILTER: OnceLock<Value> = OnceLock::new();
    FILTER.get_or_init(|| {
        pier_runtime::seccomp_profile::docker_to_oci(default_profile(), DEFAULT_CAPS)
    })
}

/// The spec's `linux.seccomp` for a container with `caps`: None when
/// privileged or unconfined, else Docker's default profile (or the
/// client's) with the rules its capabilities enable.
pub fn seccomp(hc: &HostConfig, opts: &SecurityOpts, caps: &[String]) -> Option<Value> {
    if hc.privileged.unwrap_or(false) {
        return None;
    }
    match opts.seccomp.as_deref() {
        Some("unconfined") => None,
        Some(json) => {
            // Checked at create; should it not parse, the default applies
            // rather than none.
            let profile: Value =
                serde_json::from_str(json).unwrap_or_else(|_| default_profile().clone());
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            Some(pier_runtime::seccomp_profile::docker_to_oci(
                &profile, &caps,
            ))
        }
        None => {
            if caps.len() == DEFAULT_CAPS.len()
                && caps.iter().all(|c| DEFAULT_CAPS.contains(&c.as_str()))
            {
                return Some(default_filter().clone());
            }
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            Some(pier_runtime::seccomp_profile::docker_to_oci(
                default_profile(),
                &caps,
            ))
        }
    }
}

/// The device cgroup rules of an unprivileged container: deny all, then
/// the devices every container gets (as runc adds for docker).
pub fn default_device_rules() -> Value {
    let c = |major: i64, minor: Option<i64>, access: &str| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access});
    json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        c(1, Some(3), "rwm"),   // null
        c(1, Some(8), "rwm"),   // random
        c(1, Some(7), "rwm"),   // full
        c(5, Some(0), "rwm"),   // tty
        c(1, Some(5), "rwm"),   // zero
        c(1, Some(9), "rwm"),   // urandom
        c(5, Some(1), "rwm"),   // console
        c(136, None, "rwm"),    // pts
        c(5, Some(2), "rwm"),   // ptmx
        c(10, Some(200), "rwm"), // tun
    ])
}

/// Every device node of the host's /dev, for a privileged container (as
/// Docker: sub-directories included but pts, shm, mqueue, fd; no console).
pub fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fn walk(dir: &std::path::Path, out: &mut Vec<Value>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if ft.is_dir() {
                if !matches!(
                    name.as_ref(),
                    "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
                ) {
                    walk(&path, out);
                }
                continue;
            }
            if name == "console" {
                continue;
            }
            let typ = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let rdev = meta.rdev();
            out.push(json!({
                "path": path,
                "type": typ,
                "major": libc::major(rdev),
                "minor": libc::minor(rdev),
                "fileMode": meta.mode() & 0o7777,
                "uid": meta.uid(),
                "gid": meta.gid(),
            }));
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new("/dev"), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(add: &[&str], drop: &[&str]) -> HostConfig {
        HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn capabilities_as_docker_tweaks_them() {
        let caps = capabilities(&hc(&["net_admin"], &["CAP_CHOWN", "kill"]));
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(caps.len(), DEFAULT_CAPS.len() - 1);
        assert_eq!(
            capabilities(&hc(&["SYS_ADMIN"], &["ALL"])),
            ["CAP_SYS_ADMIN"]
        );
        assert!(capabilities(&hc(&[], &["all"])).is_empty());
        let all = capabilities(&hc(&["ALL"], &["MKNOD"]));
        assert_eq!(all.len(), host_caps().len() - 1);
        let privileged = HostConfig {
            privileged: Some(true),
            ..hc(&[], &["ALL"])
        };
        assert_eq!(capabilities(&privileged).len(), host_caps().len());
        assert_eq!(
            normalize_caps(&["foo".into()]),
            Err("unknown capability: \"CAP_FOO\"".into())
        );
    }

    #[test]
    fn security_opts_as_dockerd_parses_them() {
        let o = parse_security_opts(&[
            "no-new-privileges:true".into(),
            "apparmor=unconfined".into(),
            "seccomp=unconfined".into(),
        ])
        .unwrap();
        assert!(o.no_new_privileges);
        assert_eq!(o.seccomp.as_deref(), Some("unconfined"));
        assert_eq!(o.ignored, ["apparmor=unconfined"]);
        let o = parse_security_opts(&["systempaths=unconfined".into()]).unwrap();
        assert!(o.unconfined_paths);
        assert!(parse_security_opts(&["systempaths=x".into()]).is_err());
        assert_eq!(
            parse_security_opts(&["foo".into()]),
            Err("invalid --security-opt 1: \"foo\"".into())
        );
        assert_eq!(
            parse_security_opts(&["no-new-privileges=maybe".into()]),
            Err("invalid --security-opt 2: \"no-new-privileges=maybe\"".into())
        );
    }

    #[test]
    fn default_seccomp_depends_on_capabilities() {
        let opts = SecurityOpts::default();
        let plain = HostConfig::default();
        let base = seccomp(&plain, &opts, &capabilities(&plain)).unwrap();
        assert_eq!(base["defaultAction"], "SCMP_ACT_ERRNO");
        let names = |v: &Value| -> Vec<String> {
            v["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
                .flat_map(|r| r["names"].as_array().unwrap().clone())
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        // CAP_SYS_ADMIN allows mount and unshare, as in Docker's profile.
        assert!(!names(&base).contains(&"mount".to_string()));
        let admin = hc(&["SYS_ADMIN"], &[]);
        let with = seccomp(&admin, &opts, &capabilities(&admin)).unwrap();
        assert!(names(&with).contains(&"mount".to_string()));
        let privileged = HostConfig {
            privileged: Some(true),
            ..Default::default()
        };
        assert!(seccomp(&privileged, &opts, &capabilities(&privileged)).is_none());
        let unconfined = SecurityOpts {
            seccomp: Some("unconfined".into()),
            ..Default::default()
        };
        assert!(seccomp(&plain, &unconfined, &capabilities(&plain)).is_none());
    }
}
