//! The container process: capability and rlimit name tables, executable
//! lookup along PATH, and the child-side credential switch.

use std::ffi::{CStr, CString};
use std::io;

use crate::init::{InitError, InitResult};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capability names in kernel numbering order (CAP_CHOWN = 0 ...).
pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Kernel number of a capability name ("CAP_KILL" or "kill").
pub fn cap_number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPS.iter().position(|c| *c == full).map(|i| i as u32)
}

/// Name of a capability by kernel number.
pub fn cap_name(n: u32) -> Option<&'static str> {
    CAPS.get(n as usize).copied()
}

/// Highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAPS.len() as u32 - 1)
}

/// The five capability sets as bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Converts a set of OCI capability names into a mask. Capabilities the
/// kernel does not know are skipped (runc warns and skips too).
pub fn cap_mask<'a>(names: impl IntoIterator<Item = &'a str>, last: u32) -> crate::Result<u64> {
    let mut mask = 0u64;
    for n in names {
        let bit = cap_number(n)
            .ok_or_else(|| crate::Error::InvalidConfig(format!("unknown capability {n:?}")))?;
        if bit <= last {
            mask |= 1 << bit;
        }
    }
    Ok(mask)
}

pub fn cap_sets_from_spec(c: &oci_spec::runtime::LinuxCapabilities) -> crate::Result<CapSets> {
    let last = last_cap();
    let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        set.iter()
            .flatten()
            .map(|cap| {
                serde_json::to_value(cap)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect()
    };
    let mask = |set| -> crate::Result<u64> {
        let n = names(set);
        cap_mask(n.iter().map(String::as_str), last)
    };
    Ok(CapSets {
        bounding: mask(c.bounding())?,
        effective: mask(c.effective())?,
        permitted: mask(c.permitted())?,
        inheritable: mask(c.inheritable())?,
        ambient: mask(c.ambient())?,
    })
}

/// rlimit resource for an OCI name ("RLIMIT_NOFILE").
pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    };
    Some(r as libc::c_int)
}

/// What a path lookup found at one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Missing,
    /// Exists but is a directory or lacks execute permission.
    NotExecutable,
    Executable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    NotFound,
    Permission,
}

/// Resolves `name` like execvp/Go's LookPath: a name with a slash is used
/// as is; otherwise the first executable along `path` wins. Empty PATH
/// entries mean the current directory.
pub fn lookup_path(
    name: &str,
    path: &str,
    mut probe: impl FnMut(&str) -> Probe,
) -> Result<String, LookupError> {
    if name.is_empty() {
        return Err(LookupError::NotFound);
    }
    if name.contains('/') {
        return match probe(name) {
            Probe::Executable => Ok(name.to_owned()),
            Probe::Missing => Err(LookupError::NotFound),
            Probe::NotExecutable => Err(LookupError::Permission),
        };
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{}/{}", dir.trim_end_matches('/'), name);
        if probe(&candidate) == Probe::Executable {
            return Ok(candidate);
        }
    }
    Err(LookupError::NotFound)
}

/// Probes a path in the current root with the current credentials.
pub fn probe_fs(path: &str) -> Probe {
    let Ok(c) = CString::new(path) else {
        return Probe::Missing;
    };
    // SAFETY: stat into a zeroed buffer; access with a valid C string.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c.as_ptr(), &mut st) != 0 {
            return Probe::Missing;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Probe::NotExecutable;
        }
        if libc::access(c.as_ptr(), libc::X_OK) != 0 {
            return Probe::NotExecutable;
        }
    }
    Probe::Executable
}

/// PATH from an environment list, or the default.
pub fn path_from_env(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    crate::sys::cvt(unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) })
        .map(drop)
}

/// Drops every capability not in `bounding` from the bounding set.
pub fn drop_bounding(bounding: u64, last: u32) -> InitResult<()> {
    for cap in 0..=last {
        if bounding & (1 << cap) == 0 {
            prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0)
                .map_err(|e| InitError::io("dropping a bounding capability", e))?;
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable in one capset, then raises
/// the ambient set.
pub fn apply_caps(c: &CapSets) -> InitResult<()> {
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: c.effective as u32,
            permitted: c.permitted as u32,
            inheritable: c.inheritable as u32,
        },
        CapData {
            effective: (c.effective >> 32) as u32,
            permitted: (c.permitted >> 32) as u32,
            inheritable: (c.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as capset(2) requires for v3.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if ret < 0 {
        return Err(InitError::io("capset", io::Error::last_os_error()));
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map_err(|e| InitError::io("clearing ambient capabilities", e))?;
    for cap in 0..64u32 {
        if c.ambient & (1 << cap) != 0 {
            // Raising fails unless the cap is permitted and inheritable;
            // runc ignores that failure too, so do we.
            let _ = prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
            );
        }
    }
    Ok(())
}

/// Switches to the container user, keeping capabilities across setuid so
/// `apply_caps` can set exactly the configured sets afterwards.
pub fn switch_user(uid: u32, gid: u32, groups: &[libc::gid_t]) -> InitResult<()> {
    prctl(libc::PR_SET_KEEPCAPS, 1, 0).map_err(|e| InitError::io("PR_SET_KEEPCAPS", e))?;
    // SAFETY: plain credential syscalls; the slice outlives the call.
    unsafe {
        crate::sys::cvt(libc::setgroups(groups.len(), groups.as_ptr()))
            .map_err(|e| InitError::io("setgroups", e))?;
        // Raw syscalls: glibc's setgid/setuid broadcast to all threads,
        // which is unnecessary here (one thread) but harmless either way.
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) < 0 {
            return Err(InitError::io("setgid", io::Error::last_os_error()));
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, uid) < 0 {
            return Err(InitError::io("setuid", io::Error::last_os_error()));
        }
    }
    prctl(libc::PR_SET_KEEPCAPS, 0, 0).map_err(|e| InitError::io("PR_SET_KEEPCAPS", e))?;
    Ok(())
}

pub fn set_rlimit(resource: libc::c_int, soft: u64, hard: u64, name: &CStr) -> InitResult<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: valid rlimit struct.
    if unsafe { libc::setrlimit(resource as _, &lim) } != 0 {
        let e = io::Error::last_os_error();
        return Err(InitError::io(
            &format!(
                "setting rlimit {} to soft={soft} hard={hard} (raising a hard limit needs CAP_SYS_RESOURCE)",
                name.to_string_lossy()
            ),
            e,
        ));
    }
    Ok(())
}

pub fn no_new_privs() -> InitResult<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(|e| InitError::io("PR_SET_NO_NEW_PRIVS", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_names() {
        assert_eq!(cap_number("CAP_CHOWN"), Some(0));
        assert_eq!(cap_number("CAP_KILL"), Some(5));
        assert_eq!(cap_number("net_bind_service"), Some(10));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_number("CAP_NOPE"), None);
        assert_eq!(cap_mask(["CAP_KILL", "CAP_CHOWN"], 40).unwrap(), 0b100001);
        // Unknown to this kernel: skipped.
        assert_eq!(cap_mask(["CAP_BPF"], 38).unwrap(), 0);
        assert!(cap_mask(["CAP_BOGUS"], 40).is_err());
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as i32)
        );
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }

    fn fake(
        exec: &'static [&'static str],
        noexec: &'static [&'static str],
    ) -> impl FnMut(&str) -> Probe {
        move |p| {
            if exec.contains(&p) {
                Probe::Executable
            } else if noexec.contains(&p) {
                Probe::NotExecutable
            } else {
                Probe::Missing
            }
        }
    }

    #[test]
    fn lookup_walks_path_in_order() {
        let probe = fake(&["/usr/bin/sh", "/bin/sh"], &["/sbin/sh"]);
        assert_eq!(
            lookup_path("sh", "/sbin:/usr/bin:/bin", probe).unwrap(),
            "/usr/bin/sh"
        );
    }

    #[test]
    fn lookup_skips_non_executables_and_reports_not_found() {
        let probe = fake(&[], &["/bin/data"]);
        assert_eq!(
            lookup_path("data", "/bin", probe),
            Err(LookupError::NotFound)
        );
    }

    #[test]
    fn lookup_with_slash_is_direct() {
        assert_eq!(
            lookup_path("/etc/passwd", "/bin", fake(&[], &["/etc/passwd"])),
            Err(LookupError::Permission)
        );
        assert_eq!(
            lookup_path("/nope", "/bin", fake(&[], &[])),
            Err(LookupError::NotFound)
        );
        assert_eq!(
            lookup_path("./run", "/bin", fake(&["./run"], &[])).unwrap(),
            "./run"
        );
        assert_eq!(lookup_path("x", "::", fake(&["./x"], &[])).unwrap(), "./x");
    }

    #[test]
    fn path_env() {
        assert_eq!(path_from_env(&[]), DEFAULT_PATH);
        assert_eq!(path_from_env(&["A=1".into(), "PATH=/x:/y".into()]), "/x:/y");
    }

    #[test]
    fn probe_real_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert_eq!(probe_fs(f.to_str().unwrap()), Probe::NotExecutable);
        assert_eq!(probe_fs(dir.path().to_str().unwrap()), Probe::NotExecutable);
        assert_eq!(probe_fs("/bin/sh"), Probe::Executable);
        assert_eq!(probe_fs("/definitely/missing"), Probe::Missing);
    }
}
