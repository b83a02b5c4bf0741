//! The OCI runtime spec (config.json) pierd hands to the runtime for a
//! container: Docker's defaults (namespaces, mounts, capabilities, masked
//! and read-only /proc paths) plus what the container's config asks for.

use super::user::User;
use super::validate::{self, Network};
use super::{mounts, resources, security, ContainerRecord};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

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
/// (/etc/hostname, /etc/hosts, /etc/resolv.conf).
pub struct EtcFile {
    pub source: PathBuf,
    pub destination: &'static str,
}

/// Installs pier's init (once per data root) for a container started with
/// `--init`; `dir` is the container's directory, DATA_ROOT/containers/ID.
pub fn install_init(dir: &Path) -> std::io::Result<PathBuf> {
    let data_root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let path = data_root.join("pier-init");
    pier_init::install(&path)?;
    Ok(path)
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

/// Whether the container runs in the host's network namespace.
pub fn host_network(rec: &ContainerRecord) -> bool {
    validate::network(rec.host_config.network_mode.as_deref()) == Ok(Network::Host)
}

/// The /etc/hosts and /etc/resolv.conf pierd made for a container on a
/// network (or shared from the container whose network it joins).
#[derive(Debug, Clone, Default)]
pub struct NetFiles {
    pub hosts: String,
    pub resolv_conf: Option<String>,
}

/// Writes the container's /etc files into its directory `dir`: hostname,
/// hosts (and resolv.conf): `net`'s for a networked container, the host's
/// own for a host-network container, a loopback-only hosts file
/// otherwise, as Docker.
pub fn etc_files(
    dir: &Path,
    rec: &ContainerRecord,
    net: Option<&NetFiles>,
) -> std::io::Result<Vec<EtcFile>> {
    let hostname = rec.hostname();
    let mut files = Vec::new();
    let mut put = |name: &str, destination: &'static str, data: String| {
        let source = dir.join(name);
        std::fs::write(&source, data)?;
        files.push(EtcFile {
            source,
            destination,
        });
        Ok::<_, std::io::Error>(())
    };
    put("hostname", "/etc/hostname", format!("{hostname}\n"))?;
    match net {
        Some(f) => {
            put("hosts", "/etc/hosts", f.hosts.clone())?;
            if let Some(r) = &f.resolv_conf {
                put("resolv.conf", "/etc/resolv.conf", r.clone())?;
            }
        }
        None if host_network(rec) => {
            let hosts =
                std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts_file(&hostname));
            put("hosts", "/etc/hosts", hosts)?;
            if let Ok(resolv) = std::fs::read_to_string("/etc/resolv.conf") {
                put("resolv.conf", "/etc/resolv.conf", resolv)?;
            }
        }
        None => put("hosts", "/etc/hosts", hosts_file(&hostname))?,
    }
    if rec.host_config.init.unwrap_or(false) {
        files.push(EtcFile {
            source: install_init(dir)?,
            destination: INIT_PATH,
        });
    }
    Ok(files)
}

/// Where a container started with `--init` finds pier's init.
pub const INIT_PATH: &str = "/dev/init";

/// The runtime spec for `rec` with its root filesystem mounted at `rootfs`;
/// `user_mounts` are the container's binds, volumes and tmpfs mounts as
/// OCI mount entries.
pub fn build(
    rec: &ContainerRecord,
    rootfs: &Path,
    user: &User,
    etc: &[EtcFile],
    user_mounts: Vec<Value>,
) -> Value {
    let hc = &rec.host_config;
    let privileged = hc.privileged.unwrap_or(false);
    let hostname = rec.hostname();
    let cwd = rec
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let init = hc.init.unwrap_or(false);
    let mut args: Vec<&str> = Vec::new();
    if init {
        args.extend([INIT_PATH, "--"]);
    }
    args.push(rec.path.as_str());
    args.extend(rec.args.iter().map(String::as_str));
    let caps = security::capabilities(hc);
    let opts = security::parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())
        .unwrap_or_default();
    let unmasked = privileged || opts.unconfined_paths;
    let ro = |rw: bool| if rw { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", ro(privileged)]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", ro(privileged)]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    let root_propagation = root_propagation(&user_mounts);
    let mut later = user_mounts;
    for f in etc {
        // As docker, the user's own mount at /etc/hosts (...) wins.
        if later.iter().any(|m| m["destination"] == f.destination) {
            continue;
        }
        // pier's init is read-only, as Docker's.
        let options = if f.destination == INIT_PATH {
            json!(["bind", "ro", "rprivate"])
        } else {
            json!(["rbind", "rprivate"])
        };
        later.push(json!({"destination": f.destination, "type": "bind",
                          "source": f.source, "options": options}));
    }
    // Parents before children: a volume on /etc, then /etc/hosts on it.
    later.sort_by_key(|m| mounts::depth(m["destination"].as_str().unwrap_or("")));
    mounts.extend(later);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &rec.net {
        Some(n) => namespaces.push(json!({"type": "network", "path": n.netns})),
        None if host_network(rec) => {}
        None => namespaces.push(json!({"type": "network"})),
    }
    let device_rules = if privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        security::default_device_rules()
    };
    let mut linux = json!({
        "cgroupsPath": format!("/pier/{}", rec.id),
        "namespaces": namespaces,
        "resources": resources::linux_resources(hc, device_rules),
        "maskedPaths": if unmasked { &[][..] } else { MASKED_PATHS },
        "readonlyPaths": if unmasked { &[][..] } else { READONLY_PATHS },
    });
    if privileged {
        linux["devices"] = json!(security::host_devices());
    }
    if let Some(p) = root_propagation {
        linux["rootfsPropagation"] = json!(p);
    }
    if let Some(filter) = security::seccomp(hc, &opts, &caps) {
        linux["seccomp"] = filter;
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
            "rlimits": resources::rlimits(hc),
            "noNewPrivileges": opts.no_new_privileges,
        },
        "root": {"path": rootfs, "readonly": hc.readonly_rootfs.unwrap_or(false)},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {"org.opencontainers.image.ref.name": rec.image},
    })
}

/// As dockerd: a shared bind needs a shared root, a slave bind a slave
/// root (else the host's later mounts could not reach the bind).
fn root_propagation(user_mounts: &[Value]) -> Option<&'static str> {
    let has = |props: &[&str]| {
        user_mounts.iter().any(|m| {
            m["options"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o.as_str().is_some_and(|o| props.contains(&o)))
        })
    };
    if has(&["shared", "rshared"]) {
        Some("shared")
    } else if has(&["slave", "rslave"]) {
        Some("rslave")
    } else {
        None
    }
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
            mounts: Vec::new(),
            networks: Default::default(),
            net: None,
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
        let v = build(
            &rec,
            Path::new("/r"),
            &user,
            &[
                EtcFile {
                    source: "/x/hosts".into(),
                    destination: "/etc/hosts",
                },
                EtcFile {
                    source: "/x/hostname".into(),
                    destination: "/etc/hostname",
                },
            ],
            vec![
                json!({"destination": "/etc/hostname", "type": "bind", "source": "/mine"}),
                json!({"destination": "/etc", "type": "bind", "source": "/vol"}),
            ],
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
        // The user's mounts after the system's, parents first; the user's
        // /etc/hostname replaces pier's.
        let mounts: Vec<(&str, &str)> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| {
                let src = m.source().as_deref().and_then(|s| s.to_str());
                (m.destination().to_str().unwrap(), src.unwrap_or(""))
            })
            .filter(|(d, _)| d.starts_with("/etc"))
            .collect();
        assert_eq!(
            mounts,
            [
                ("/etc", "/vol"),
                ("/etc/hostname", "/mine"),
                ("/etc/hosts", "/x/hosts")
            ]
        );
    }

    #[test]
    fn propagating_binds_set_the_roots_propagation_as_dockerd() {
        let bind = |p: &str| json!({"destination": "/d", "options": ["rbind", "rw", p]});
        assert_eq!(root_propagation(&[bind("rprivate")]), None);
        assert_eq!(root_propagation(&[bind("rslave")]), Some("rslave"));
        assert_eq!(
            root_propagation(&[bind("slave"), bind("rshared")]),
            Some("shared")
        );
        assert_eq!(root_propagation(&[]), None);
    }

    #[test]
    fn host_config_shapes_the_spec() {
        let user = User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
        };
        let mut rec = record();
        let plain = build(&rec, Path::new("/r"), &user, &[], Vec::new());
        assert_eq!(plain["linux"]["cgroupsPath"], format!("/pier/{}", rec.id));
        assert_eq!(plain["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(plain["linux"]["resources"]["devices"][0]["allow"], false);
        assert!(plain["linux"].get("devices").is_none());
        assert_eq!(plain["process"]["noNewPrivileges"], false);

        rec.host_config = serde_json::from_value(json!({
            "Privileged": true, "NetworkMode": "host", "Init": true, "ReadonlyRootfs": true,
            "Memory": 64 << 20, "PidsLimit": 9,
            "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}],
            "SecurityOpt": ["no-new-privileges"],
        }))
        .unwrap();
        let init = [EtcFile {
            source: "/data/pier-init".into(),
            destination: INIT_PATH,
        }];
        let v = build(&rec, Path::new("/r"), &user, &init, Vec::new());
        let spec: oci_spec::runtime::Spec =
            serde_json::from_value(v.clone()).expect("valid OCI spec");
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none(), "privileged: no seccomp");
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
        assert!(
            !linux.devices().as_ref().unwrap().is_empty(),
            "host devices"
        );
        let ns = linux.namespaces().as_ref().unwrap();
        assert!(!ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
        let p = spec.process().as_ref().unwrap();
        assert_eq!(&p.args().as_ref().unwrap()[..3], ["/dev/init", "--", "sh"]);
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.rlimits().as_ref().unwrap().len(), 1);
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 9);
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], true);
        let init_mount = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == INIT_PATH)
            .expect("the init is mounted");
        assert_eq!(init_mount["options"], json!(["bind", "ro", "rprivate"]));
        let sys = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert!(sys["options"].as_array().unwrap().contains(&json!("rw")));
    }
}
