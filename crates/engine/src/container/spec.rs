//! The OCI runtime spec (config.json) pierd hands to the runtime for a
//! container: Docker's defaults (namespaces, mounts, capabilities, masked
//! and read-only /proc paths) plus what the container's config asks for.

use super::user::User;
use super::ContainerRecord;
use serde_json::{json, Value};
use std::path::Path;

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A file pierd manages for the container and bind-mounts into it
/// (/etc/hostname, /etc/hosts).
pub struct EtcFile<'a> {
    pub source: &'a Path,
    pub destination: &'a str,
}

/// The process environment: the container's Env (image env merged at
/// create), PATH when missing, HOSTNAME as Docker sets it.
pub fn process_env(rec: &ContainerRecord, hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    };
    set(DEFAULT_PATH.to_string());
    set(format!("HOSTNAME={hostname}"));
    for kv in rec.config.env.iter().flatten() {
        set(kv.clone());
    }
    env
}

/// The runtime spec for `rec` with its root filesystem mounted at `rootfs`.
pub fn build(rec: &ContainerRecord, rootfs: &Path, user: &User, etc: &[EtcFile]) -> Value {
    let hostname = rec.hostname();
    let cwd = rec
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let args: Vec<&str> = std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect();
    let caps = DEFAULT_CAPS;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    for f in etc {
        mounts.push(json!({"destination": f.destination, "type": "bind",
                           "source": f.source, "options": ["rbind", "rprivate"]}));
    }
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": rec.config.tty.unwrap_or(false),
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
            "args": args,
            "env": process_env(rec, &hostname),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false,
        },
        "root": {"path": rootfs, "readonly": rec.host_config.readonly_rootfs.unwrap_or(false)},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
        "annotations": {"org.opencontainers.image.ref.name": rec.image},
    })
}

/// The contents of the container's /etc/hosts.
pub fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::record::State;

    fn record() -> ContainerRecord {
        ContainerRecord {
            id: "0123456789abcdef0123456789abcdef".into(),
            name: "t".into(),
            created: String::new(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            path: "sh".into(),
            args: vec!["-c".into(), "exit 3".into()],
            config: bollard_stubs::models::ContainerConfig {
                env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
                working_dir: Some("/work".into()),
                ..Default::default()
            },
            host_config: Default::default(),
            state: State::default(),
        }
    }

    #[test]
    fn spec_is_a_valid_oci_spec_with_docker_defaults() {
        let rec = record();
        let user = User {
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
        };
        let hosts = Path::new("/x/hosts");
        let v = build(
            &rec,
            Path::new("/r"),
            &user,
            &[EtcFile {
                source: hosts,
                destination: "/etc/hosts",
            }],
        );
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).expect("valid OCI spec");
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["sh", "-c", "exit 3"]);
        assert_eq!(p.cwd().to_str(), Some("/work"));
        assert_eq!(p.user().uid(), 1);
        let env = p.env().as_ref().unwrap();
        assert!(env.contains(&"PATH=/bin".to_string()), "{env:?}");
        assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        let ns: Vec<String> = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| format!("{:?}", n.typ()).to_lowercase())
            .collect();
        for want in ["pid", "ipc", "uts", "mount", "network"] {
            assert!(ns.iter().any(|n| n.contains(want)), "{want} in {ns:?}");
        }
        let mounts = spec.mounts().as_ref().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m.destination().to_str() == Some("/etc/hosts")));
    }
}
