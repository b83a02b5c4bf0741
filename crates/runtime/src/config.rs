//! Turns a bundle's config.json into an [`InitPlan`] (parent side): every
//! path, string and flag the child needs is computed here, before clone3.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::init::InitPlan;
use crate::mounts::{self, cstring, MountKind};
use crate::process;
use crate::rootfs;
use crate::{Error, Result};

/// Namespaces and what the parent must do for them.
#[derive(Debug, Default)]
pub struct Namespaces {
    /// CLONE_NEW* flags for clone3.
    pub clone_flags: u64,
    /// Existing pid namespace to create the init in (setns in the parent).
    pub join_pid: Option<OwnedFd>,
    /// Other existing namespaces, joined by the child (fd, CLONE_NEW*).
    pub join: Vec<(OwnedFd, libc::c_int)>,
    /// A new time namespace (not a clone3 flag: see time.rs).
    pub new_time: bool,
    /// A mount namespace, new or joined. Without one the mounts happen in
    /// the caller's namespace and the init only chroots, as runc does.
    pub mount: bool,
}

fn ns_flag(t: LinuxNamespaceType) -> Result<libc::c_int> {
    Ok(match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    })
}

/// Reads config.json. serde_json's own error names the field and the
/// position (oci-spec's loader only says "serde failed").
pub fn load_spec(path: &Path) -> Result<Spec> {
    let data = std::fs::read(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    serde_json::from_slice(&data)
        .map_err(|e| Error::InvalidConfig(format!("{}: {e}", path.display())))
}

pub fn namespaces(spec: &Spec) -> Result<Namespaces> {
    let mut ns = Namespaces::default();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut seen = 0;
    for n in &list {
        let flag = ns_flag(n.typ())?;
        if seen & flag != 0 {
            return Err(Error::InvalidConfig(format!(
                "namespace {:?} listed twice",
                n.typ()
            )));
        }
        seen |= flag;
        match n.path() {
            // A new time namespace is unshared by the init itself, which
            // sets its offsets before anything runs in it (time.rs).
            None if flag == libc::CLONE_NEWTIME => ns.new_time = true,
            None => ns.clone_flags |= flag as u64,
            Some(p) => {
                let f = File::open(p).map_err(|e| Error::Io {
                    context: format!("opening namespace {}", p.display()),
                    source: e,
                })?;
                let fd = OwnedFd::from(f);
                if flag == libc::CLONE_NEWPID {
                    ns.join_pid = Some(fd);
                } else {
                    ns.join.push((fd, flag));
                }
            }
        }
    }
    ns.mount = seen & libc::CLONE_NEWNS != 0;
    Ok(ns)
}

/// Rejects what this round does not implement instead of ignoring it.
fn check_supported(spec: &Spec) -> Result<()> {
    // LSM labels: pier-runtime cannot apply them; say so rather than run
    // the container unconfined.
    if let Some(p) = spec.process() {
        if p.apparmor_profile()
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(Error::InvalidConfig(
                "process.apparmorProfile is set but pier-runtime does not support AppArmor".into(),
            ));
        }
        if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::InvalidConfig(
                "process.selinuxLabel is set but pier-runtime does not support SELinux".into(),
            ));
        }
    }
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    let userns = l
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    let maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if userns.is_some_and(|n| n.path().is_none()) && !maps {
        return Err(Error::InvalidConfig(
            "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    if userns.is_none() && maps {
        return Err(Error::InvalidConfig(
            "uid/gid mappings need a user namespace".into(),
        ));
    }
    Ok(())
}

pub struct Prepared {
    pub plan: InitPlan,
    pub ns: Namespaces,
    pub rootfs: std::path::PathBuf,
}

/// A process's args (not empty), env and cwd (absolute), for the init
/// and for `exec`.
pub fn command(process: &oci_spec::runtime::Process) -> Result<(Vec<String>, Vec<String>, String)> {
    let inv = |m: &str| Error::InvalidConfig(m.to_owned());
    let args: Vec<String> = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(inv("process.args is empty"));
    }
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let cwd = process.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(inv("process.cwd must be absolute"));
    }
    Ok((args, env, cwd))
}

/// Builds the init plan. `bundle` must be absolute.
pub fn prepare(
    spec: &Spec,
    bundle: &Path,
    fifo: &Path,
    seccomp_cache: Option<&Path>,
) -> Result<Prepared> {
    check_supported(spec)?;
    let ns = namespaces(spec)?;
    let inv = |m: &str| Error::InvalidConfig(m.to_owned());

    let root = spec.root().as_ref().ok_or_else(|| inv("root is missing"))?;
    let rootfs = bundle.join(root.path());
    let rootfs = rootfs.canonicalize().map_err(|e| Error::Io {
        context: format!("rootfs {}", rootfs.display()),
        source: e,
    })?;

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| inv("process is missing"))?;
    let (args, env, cwd) = command(process)?;

    let linux = spec.linux().as_ref();
    let configured_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => None,
        Some(p) => Some(
            mounts::propagation_flag(p)
                .ok_or_else(|| inv(&format!("unknown rootfsPropagation {p:?}")))?,
        ),
    };
    // Before pivot_root the flag goes on the whole tree, so that bind
    // mounts from the host inherit it; an unbindable tree could not even
    // bind the rootfs, so that one waits for the new root.
    let root_propagation = match configured_propagation {
        Some(p) if p & libc::MS_UNBINDABLE == 0 => p,
        _ => libc::MS_PRIVATE | libc::MS_REC,
    };

    let mut mount_plans = Vec::new();
    let mut dev_tmpfs = false;
    for m in spec.mounts().iter().flatten() {
        let p = mounts::plan_mount(m, bundle)?;
        if p.dest.trim_end_matches('/') == "/dev"
            && p.kind == MountKind::Fs
            && p.fstype.as_deref() == Some(c"tmpfs")
        {
            dev_tmpfs = true;
        }
        mount_plans.push(p);
    }
    let mut devices = if dev_tmpfs {
        rootfs::default_devices()
    } else {
        Vec::new()
    };
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            T::C | T::U => libc::S_IFCHR,
            T::B => libc::S_IFBLK,
            T::P => libc::S_IFIFO,
            T::A => return Err(inv("device type 'a' is not a device node")),
        };
        let path = d.path().to_string_lossy().into_owned();
        devices.retain(|x| x.path != path);
        devices.push(rootfs::DevicePlan {
            path,
            kind,
            major: d.major() as u32,
            minor: d.minor() as u32,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let hostname = spec
        .hostname()
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(|h| cstring(h, "hostname"))
        .transpose()?;
    let domainname = spec
        .domainname()
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(|h| cstring(h, "domainname"))
        .transpose()?;
    if (hostname.is_some() || domainname.is_some())
        && ns.clone_flags & libc::CLONE_NEWUTS as u64 == 0
        && !ns.join.iter().any(|(_, f)| *f == libc::CLONE_NEWUTS)
    {
        return Err(inv("setting the hostname needs a uts namespace"));
    }

    let mut sysctl = Vec::new();
    for (k, v) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        if k.is_empty() {
            return Err(inv("empty sysctl name"));
        }
        // Dots become slashes, so a key can never contain `..`.
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        sysctl.push((cstring(path, "sysctl")?, v.as_bytes().to_vec()));
    }
    sysctl.sort();

    let paths = |v: Option<&Vec<String>>| -> Result<Vec<_>> {
        v.into_iter()
            .flatten()
            .map(|p| cstring(p.as_str(), "path"))
            .collect()
    };
    let readonly_paths = paths(linux.and_then(|l| l.readonly_paths().as_ref()))?;
    let masked_paths = paths(linux.and_then(|l| l.masked_paths().as_ref()))?;

    let rlimits = rlimits(process)?;

    let user = process.user();
    let caps = process
        .capabilities()
        .as_ref()
        .map(process::cap_sets_from_spec)
        .transpose()?;

    let path_env = process::path_from_env(&env).to_owned();
    let plan = InitPlan {
        stdio: [None; 3],
        console_sock: None,
        userns: ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0,
        time_offsets: crate::time::offsets(ns.new_time, linux)?,
        preserve_fds: 0,
        join_ns: ns.join.iter().map(|(fd, f)| (fd.as_raw_fd(), *f)).collect(),
        root_propagation,
        // On the new root alone: its mounts keep what their own options
        // made of them (an rshared bind stays shared under rprivate).
        final_propagation: configured_propagation.map(|p| p & !libc::MS_REC),
        mount_ns: ns.mount,
        rootfs: cstring(rootfs.as_os_str().as_bytes(), "rootfs")?,
        mounts: mount_plans,
        devices,
        dev_symlinks: dev_tmpfs,
        no_pivot: false,
        fifo: cstring(fifo.as_os_str().as_bytes(), "state dir")?,
        hostname,
        domainname,
        sysctl,
        readonly_paths,
        masked_paths,
        readonly_root: root.readonly().unwrap_or(false),
        rlimits,
        oom_score_adj: process.oom_score_adj(),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        caps,
        last_cap: process::last_cap(),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp: linux
            .and_then(|l| l.seccomp().as_ref())
            .map(|s| crate::seccomp::compile_cached(s, seccomp_cache))
            .transpose()?,
        hooks_sync: {
            let h = spec.hooks().as_ref();
            [
                h.and_then(|h| h.prestart().as_ref()),
                h.and_then(|h| h.create_runtime().as_ref()),
                h.and_then(|h| h.create_container().as_ref()),
                h.and_then(|h| h.start_container().as_ref()),
            ]
            .iter()
            .any(|v| v.is_some_and(|v| !v.is_empty()))
        },
        create_container_hooks: crate::hooks::stage(spec.hooks().as_ref(), |h| {
            h.create_container()
        }),
        start_container_hooks: crate::hooks::stage(spec.hooks().as_ref(), |h| h.start_container()),
        cwd,
        args: args
            .iter()
            .map(|a| cstring(a.as_str(), "process.args"))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|a| cstring(a.as_str(), "process.env"))
            .collect::<Result<_>>()?,
        path_env,
    };
    Ok(Prepared { plan, ns, rootfs })
}

/// `process.rlimits` as (resource, soft, hard, name) for setrlimit; an
/// unknown name is a configuration error.
pub(crate) fn rlimits(
    process: &oci_spec::runtime::Process,
) -> Result<Vec<(libc::c_int, u64, u64, std::ffi::CString)>> {
    let mut out = Vec::new();
    for r in process.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let res = process::rlimit_resource(&name)
            .ok_or_else(|| Error::InvalidConfig(format!("unknown rlimit {name:?}")))?;
        out.push((res, r.soft(), r.hard(), cstring(name, "rlimit")?));
    }
    Ok(out)
}
