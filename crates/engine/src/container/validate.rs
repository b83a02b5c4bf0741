//! The create request's HostConfig checked (with dockerd's error texts)
//! and completed as dockerd does, before anything of the container exists:
//! a bad value creates nothing.

use super::resources::parse_cpuset;
use super::security::{normalize_caps, parse_security_opts};
use bollard_stubs::models::{ContainerCreateBody, RestartPolicyNameEnum};

/// dockerd's minimum memory limit (6 MiB).
const MIN_MEMORY: i64 = 6 << 20;

/// How the container is networked, as its NetworkMode says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// No mode given (`default`): the default bridge when pierd has one,
    /// else none.
    Default,
    /// Its own network namespace with only a loopback device.
    None,
    /// The host's network namespace.
    Host,
    /// `container:NAME|ID`: another container's namespace.
    Container(String),
    /// A bridge network by name or id (`bridge` is the default one).
    Named(String),
}

/// The network a NetworkMode asks for.
pub fn network(mode: Option<&str>) -> Result<Network, String> {
    match mode.unwrap_or("") {
        "" | "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        m if m.starts_with("container:") => match &m["container:".len()..] {
            "" => Err("invalid container format container:<name|id>".into()),
            c => Ok(Network::Container(c.to_string())),
        },
        other => Ok(Network::Named(other.to_string())),
    }
}

/// Whether `s` names a signal (`SIGTERM`, `TERM`, `15`, `SIGRTMIN+1`).
pub fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
        "RTMIN", "RTMAX",
    ];
    if NAMES.contains(&name) {
        return true;
    }
    for base in ["RTMIN+", "RTMAX-"] {
        if let Some(n) = name.strip_prefix(base) {
            return n.parse::<u8>().is_ok_and(|n| (1..=15).contains(&n));
        }
    }
    false
}

fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpuset(s.trim()))
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

/// Whether the memory cgroup limits swap (cgroup v1's memsw files, or v2).
fn swap_limit_supported() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Checks `body` and fills in what dockerd fills in; returns the warnings
/// for the create response.
pub fn create_body(body: &mut ContainerCreateBody) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let mut hc = body.host_config.take().unwrap_or_default();
    let net = network(hc.network_mode.as_deref())?;
    if net == Network::Host && body.hostname.as_deref().unwrap_or("").is_empty() {
        // As dockerd: a host-network container takes the host's name.
        let h = rustix::system::uname();
        body.hostname = Some(h.nodename().to_string_lossy().into_owned());
    }

    if let Some(m) = hc.memory.filter(|m| *m != 0) {
        if m < MIN_MEMORY {
            return Err("Minimum memory limit allowed is 6MB".into());
        }
    }
    let memory = hc.memory.unwrap_or(0);
    let swap = hc.memory_swap.unwrap_or(0);
    if swap > 0 && memory == 0 {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if swap > 0 && swap < memory {
        return Err(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if memory > 0 {
        if !swap_limit_supported() {
            warnings.push(
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".to_string(),
            );
            hc.memory_swap = Some(-1);
        } else if swap == 0 {
            hc.memory_swap = Some(memory * 2);
        }
    }

    let nano = hc.nano_cpus.unwrap_or(0);
    if nano != 0 {
        if hc.cpu_period.unwrap_or(0) > 0 {
            return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
        }
        if hc.cpu_quota.unwrap_or(0) > 0 {
            return Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
        }
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if nano < 0 || nano > n * 1_000_000_000 {
            return Err(format!(
                "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
            ));
        }
    }
    if hc.cpu_shares.unwrap_or(0) < 0 {
        return Err("invalid CPU shares: shares must be a positive number".into());
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        let Some(want) = parse_cpuset(c) else {
            return Err(format!("Invalid value {c} for cpuset cpus"));
        };
        let online = online_cpus();
        if want.iter().any(|c| !online.contains(c)) {
            let avail =
                std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
            return Err(format!(
                "Requested CPUs are not available - requested {c}, available: {}",
                avail.trim()
            ));
        }
    }
    if let Some(m) = hc.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        if parse_cpuset(m).is_none() {
            return Err(format!("Invalid value {m} for cpuset mems"));
        }
    }
    if hc.pids_limit.is_some_and(|p| p <= 0) {
        // As dockerd: zero and negative values mean unlimited.
        hc.pids_limit = Some(0);
    }
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.as_deref().unwrap_or("");
        const KNOWN: &[&str] = pier_common::ULIMIT_NAMES;
        if !KNOWN.contains(&name) {
            return Err(format!("invalid ulimit type: {name}"));
        }
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    normalize_caps(hc.cap_add.as_deref().unwrap_or_default())
        .map_err(|e| format!("invalid CapAdd: {e}"))?;
    normalize_caps(hc.cap_drop.as_deref().unwrap_or_default())
        .map_err(|e| format!("invalid CapDrop: {e}"))?;
    let opts = parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())?;
    if let Some(profile) = opts.seccomp.as_deref().filter(|p| *p != "unconfined") {
        if hc.privileged.unwrap_or(false) {
            // dockerd ignores a profile for a privileged container.
        } else if let Err(e) = serde_json::from_str::<serde_json::Value>(profile) {
            return Err(format!("decoding seccomp profile failed: {e}"));
        }
    }
    for o in &opts.ignored {
        warnings.push(format!(
            "security option {o:?} ignored: this host has no AppArmor or SELinux"
        ));
    }
    if let Some(s) = body.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        if !valid_signal(s) {
            return Err(format!("Invalid signal: {s}"));
        }
    }
    if let Some(t) = body.stop_timeout {
        if t < -1 {
            return Err(format!("invalid stop timeout: {t}: use -1 for no timeout"));
        }
    }
    if let Some(p) = &hc.restart_policy {
        use RestartPolicyNameEnum as R;
        let count = p.maximum_retry_count.unwrap_or(0);
        match p.name {
            None | Some(R::EMPTY) | Some(R::NO) | Some(R::ALWAYS) | Some(R::UNLESS_STOPPED)
                if count != 0 =>
            {
                return Err(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                        .into(),
                );
            }
            Some(R::ON_FAILURE) if count < 0 => {
                return Err(
                    "invalid restart policy: maximum retry count cannot be negative".into(),
                );
            }
            _ => {}
        }
        let restarts = matches!(
            p.name,
            Some(R::ALWAYS) | Some(R::UNLESS_STOPPED) | Some(R::ON_FAILURE)
        );
        if restarts && hc.auto_remove.unwrap_or(false) {
            return Err("can't create 'AutoRemove' container with restart policy".into());
        }
    }
    body.host_config = Some(hc);
    Ok(warnings)
}

/// The warnings [`create_body`] gives for `body` (none if it is refused).
pub fn warnings(body: &ContainerCreateBody) -> Vec<String> {
    create_body(&mut body.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::HostConfig;

    fn with(hc: HostConfig) -> Result<ContainerCreateBody, String> {
        let mut b = ContainerCreateBody {
            host_config: Some(hc),
            ..Default::default()
        };
        create_body(&mut b).map(|_| b)
    }

    #[test]
    fn bad_values_are_refused_with_dockerds_texts() {
        let e = with(HostConfig {
            memory: Some(1024),
            ..Default::default()
        });
        assert_eq!(e.unwrap_err(), "Minimum memory limit allowed is 6MB");
        let e = with(HostConfig {
            nano_cpus: Some(-1),
            ..Default::default()
        });
        assert!(e.unwrap_err().starts_with("Range of CPUs is from 0.01 to"));
        let e = with(HostConfig {
            cpuset_cpus: Some("abc".into()),
            ..Default::default()
        });
        assert_eq!(e.unwrap_err(), "Invalid value abc for cpuset cpus");
        let e = with(HostConfig {
            cap_add: Some(vec!["FOO".into()]),
            ..Default::default()
        });
        assert_eq!(
            e.unwrap_err(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        let e = with(HostConfig {
            network_mode: Some("container:".into()),
            ..Default::default()
        });
        assert_eq!(
            e.unwrap_err(),
            "invalid container format container:<name|id>"
        );
        assert_eq!(
            network(Some("container:web")),
            Ok(Network::Container("web".into()))
        );
        assert_eq!(network(Some("mynet")), Ok(Network::Named("mynet".into())));
        assert_eq!(network(Some("default")), Ok(Network::Default));
        let e = with(HostConfig {
            security_opt: Some(vec!["seccomp={".into()]),
            ..Default::default()
        });
        assert!(e
            .unwrap_err()
            .starts_with("decoding seccomp profile failed"));
    }

    #[test]
    fn memory_swap_defaults_to_twice_the_memory() {
        let b = with(HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        })
        .unwrap();
        let swap = b.host_config.unwrap().memory_swap.unwrap();
        assert!(swap == 128 << 20 || swap == -1, "{swap}");
    }

    #[test]
    fn host_network_takes_the_host_name() {
        let b = with(HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(!b.hostname.unwrap().is_empty());
        assert!(valid_signal("SIGTERM") && valid_signal("kill") && valid_signal("9"));
        assert!(!valid_signal("FOO") && !valid_signal("0"));
    }
}
