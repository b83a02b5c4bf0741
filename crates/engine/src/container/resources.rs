//! What a container is limited to: `linux.resources` (memory, CPU, cpuset,
//! pids, device rules) and `process.rlimits`, from its HostConfig as Docker
//! translates them.

use bollard_stubs::models::HostConfig;
use serde_json::{json, Map, Value};

/// The CFS period Docker uses with `--cpus`.
pub const CPU_PERIOD: i64 = 100_000;

/// `linux.resources` for `hc`; `devices` are the device cgroup rules.
pub fn linux_resources(hc: &HostConfig, devices: Value) -> Value {
    let mut r = Map::new();
    let mut mem = Map::new();
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        mem.insert("limit".into(), json!(m));
    }
    if let Some(s) = hc.memory_swap.filter(|s| *s != 0) {
        mem.insert("swap".into(), json!(s));
    }
    if let Some(m) = hc.memory_reservation.filter(|m| *m > 0) {
        mem.insert("reservation".into(), json!(m));
    }
    if let Some(s) = hc.memory_swappiness.filter(|s| *s >= 0) {
        mem.insert("swappiness".into(), json!(s));
    }
    if hc.oom_kill_disable == Some(true) {
        mem.insert("disableOOMKiller".into(), json!(true));
    }
    if !mem.is_empty() {
        r.insert("memory".into(), Value::Object(mem));
    }
    let mut cpu = Map::new();
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(CPU_PERIOD));
        cpu.insert("quota".into(), json!(n * CPU_PERIOD / 1_000_000_000));
    } else {
        if let Some(p) = hc.cpu_period.filter(|p| *p > 0) {
            cpu.insert("period".into(), json!(p));
        }
        if let Some(q) = hc.cpu_quota.filter(|q| *q != 0) {
            cpu.insert("quota".into(), json!(q));
        }
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = hc.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p > 0) {
        r.insert("pids".into(), json!({ "limit": p }));
    }
    r.insert("devices".into(), devices);
    Value::Object(r)
}

/// A ulimit value as an rlimit: negative is unlimited (RLIM_INFINITY).
fn rlim(v: Option<i64>) -> u64 {
    match v.unwrap_or(0) {
        v if v < 0 => u64::MAX,
        v => v as u64,
    }
}

/// `process.rlimits` from `--ulimit` (`nofile` -> `RLIMIT_NOFILE`).
pub fn rlimits(hc: &HostConfig) -> Vec<Value> {
    hc.ulimits
        .iter()
        .flatten()
        .filter_map(|u| {
            let name = u.name.as_deref()?;
            Some(json!({
                "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
                "soft": rlim(u.soft),
                "hard": rlim(u.hard),
            }))
        })
        .collect()
}

/// The CPUs a cpuset list names ("0-3,5"), or None if it is malformed.
pub fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::ResourcesUlimits;

    #[test]
    fn resources_as_docker_translates_them() {
        let hc = HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            nano_cpus: Some(1_500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(20),
            ..Default::default()
        };
        let r = linux_resources(&hc, json!([]));
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 128 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["pids"]["limit"], 20);
        let none = linux_resources(&HostConfig::default(), json!([]));
        assert!(none.get("memory").is_none() && none.get("pids").is_none());
        // The spec with resources must be a valid OCI resources object.
        let _: oci_spec::runtime::LinuxResources = serde_json::from_value(r).unwrap();
    }

    #[test]
    fn ulimits_become_rlimits() {
        let hc = HostConfig {
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(100),
                hard: Some(200),
            }]),
            ..Default::default()
        };
        assert_eq!(
            rlimits(&hc),
            [json!({"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200})]
        );
        let hc = HostConfig {
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("core".into()),
                soft: Some(-1),
                hard: Some(-1),
            }]),
            ..Default::default()
        };
        assert_eq!(rlimits(&hc)[0]["hard"], u64::MAX);
    }

    #[test]
    fn cpusets() {
        assert_eq!(parse_cpuset("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpuset("abc"), None);
        assert_eq!(parse_cpuset("3-1"), None);
        assert_eq!(parse_cpuset(""), None);
    }
}
