//! Facts about the host that `info` reports and the engine depends on.

/// How the host's cgroup hierarchies are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 controllers only.
    Legacy,
    /// v1 controllers plus an (empty) cgroup2 tree, as on this project's CI.
    Hybrid,
    /// cgroup2 at /sys/fs/cgroup: the unified hierarchy.
    Unified,
}

impl CgroupMode {
    /// Docker's "Cgroup Version" ("1" or "2").
    pub fn version(self) -> &'static str {
        match self {
            CgroupMode::Unified => "2",
            _ => "1",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CgroupMode::Legacy => "legacy",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::Unified => "unified",
        }
    }
}

/// The host's cgroup mode, read from /proc/self/mountinfo.
pub fn cgroup_mode() -> CgroupMode {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    cgroup_mode_from_mountinfo(&info)
}

/// Classifies a mountinfo text: cgroup2 mounted at /sys/fs/cgroup is
/// unified; v1 controllers with a cgroup2 elsewhere is hybrid.
pub fn cgroup_mode_from_mountinfo(mountinfo: &str) -> CgroupMode {
    let mut v1 = false;
    let mut v2_elsewhere = false;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount_point), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
            continue;
        };
        match *fstype {
            "cgroup2" if *mount_point == "/sys/fs/cgroup" => return CgroupMode::Unified,
            "cgroup2" => v2_elsewhere = true,
            "cgroup" => v1 = true,
            _ => {}
        }
    }
    if v1 && v2_elsewhere {
        CgroupMode::Hybrid
    } else {
        CgroupMode::Legacy
    }
}

/// The architecture in Go's (and OCI's) naming.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub fn kernel_version() -> String {
    let u = rustix::system::uname();
    u.release().to_string_lossy().into_owned()
}

/// PRETTY_NAME from /etc/os-release.
pub fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

pub fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
";
    const UNIFIED: &str = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
";
    const LEGACY: &str = "\
30 23 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
33 30 0:29 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory
";

    #[test]
    fn classifies_cgroup_layouts() {
        assert_eq!(cgroup_mode_from_mountinfo(HYBRID), CgroupMode::Hybrid);
        assert_eq!(cgroup_mode_from_mountinfo(UNIFIED), CgroupMode::Unified);
        assert_eq!(cgroup_mode_from_mountinfo(LEGACY), CgroupMode::Legacy);
        assert_eq!(CgroupMode::Unified.version(), "2");
        assert_eq!(CgroupMode::Hybrid.version(), "1");
    }
}
