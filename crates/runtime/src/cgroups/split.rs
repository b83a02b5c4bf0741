//! Splitting `linux.resources` by v1 controller, for a container whose
//! cgroup is at different paths in different hierarchies: libcgroups' v1
//! manager takes one path for every controller, so each distinct path
//! gets its own manager, given only the resources of its controllers.

use oci_spec::runtime::{LinuxCpu, LinuxResources};

/// The v1 controllers libcgroups' manager writes to.
pub const KNOWN: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// The resources that `controllers` enforce, and nothing else.
pub fn only(res: &LinuxResources, controllers: &[String]) -> LinuxResources {
    let has = |c: &str| controllers.iter().any(|x| x == c);
    let mut out = LinuxResources::default();
    if has("memory") {
        out.set_memory(*res.memory());
    }
    if has("pids") {
        out.set_pids(*res.pids());
    }
    if has("blkio") {
        out.set_block_io(res.block_io().clone());
    }
    if has("devices") {
        out.set_devices(res.devices().clone());
    }
    if has("hugetlb") {
        out.set_hugepage_limits(res.hugepage_limits().clone());
    }
    if has("net_cls") || has("net_prio") {
        out.set_network(res.network().clone());
    }
    out.set_cpu(cpu_part(res.cpu().as_ref(), has("cpu"), has("cpuset")));
    out
}

/// The resources left once `controllers` are taken out.
pub fn without(res: &LinuxResources, controllers: &[String]) -> LinuxResources {
    let rest: Vec<String> = KNOWN
        .iter()
        .filter(|c| !controllers.iter().any(|x| x == *c))
        .map(|c| (*c).to_owned())
        .collect();
    let mut out = only(res, &rest);
    // Keys no v1 controller owns stay with the rest.
    out.set_unified(res.unified().clone());
    out.set_rdma(res.rdma().clone());
    out
}

/// `linux.resources.cpu` is two controllers on v1: cpu (shares, quota,
/// period, realtime, idle) and cpuset (cpus, mems).
fn cpu_part(cpu: Option<&LinuxCpu>, sched: bool, cpuset: bool) -> Option<LinuxCpu> {
    let cpu = cpu?;
    match (sched, cpuset) {
        (true, true) => Some(cpu.clone()),
        (false, false) => None,
        (true, false) => {
            let mut c = cpu.clone();
            c.set_cpus(None);
            c.set_mems(None);
            Some(c)
        }
        (false, true) => {
            let mut c = LinuxCpu::default();
            c.set_cpus(cpu.cpus().clone());
            c.set_mems(cpu.mems().clone());
            Some(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> LinuxResources {
        serde_json::from_str(
            r#"{"memory": {"limit": 1048576},
                "cpu": {"shares": 512, "quota": 1000, "cpus": "0", "mems": "0"},
                "pids": {"limit": 9},
                "devices": [{"allow": false, "access": "rwm"}],
                "unified": {"memory.high": "1"}}"#,
        )
        .unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn memory_alone_and_the_rest() {
        let r = res();
        let mem = only(&r, &names(&["memory"]));
        assert_eq!(mem.memory().as_ref().unwrap().limit(), Some(1048576));
        assert!(mem.cpu().is_none() && mem.pids().is_none() && mem.devices().is_none());
        assert!(mem.unified().is_none());

        let rest = without(&r, &names(&["memory"]));
        assert!(rest.memory().is_none());
        assert_eq!(rest.pids().as_ref().unwrap().limit(), 9);
        assert_eq!(rest.devices().as_ref().unwrap().len(), 1);
        assert_eq!(rest.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(rest.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        assert!(rest.unified().is_some());
    }

    #[test]
    fn cpu_and_cpuset_are_separate_controllers() {
        let r = res();
        let sched = only(&r, &names(&["cpu", "cpuacct"]));
        let c = sched.cpu().as_ref().unwrap();
        assert_eq!((c.shares(), c.quota()), (Some(512), Some(1000)));
        assert!(c.cpus().is_none() && c.mems().is_none());

        let set = only(&r, &names(&["cpuset"]));
        let c = set.cpu().as_ref().unwrap();
        assert!(c.shares().is_none() && c.quota().is_none());
        assert_eq!(c.cpus().as_deref(), Some("0"));

        let rest = without(&r, &names(&["cpuset"]));
        let c = rest.cpu().as_ref().unwrap();
        assert_eq!(c.shares(), Some(512));
        assert!(c.cpus().is_none());
        // Nothing about cpu at all: no cpu section.
        assert!(only(&r, &names(&["pids"])).cpu().is_none());
    }
}
