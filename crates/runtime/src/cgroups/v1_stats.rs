//! cgroup v1 stats read from each controller's own directory, for a
//! container whose cgroup is at different paths in different hierarchies
//! (libcgroups' v1 stats take one path for every controller and fail on
//! the first directory that is not there). Files a kernel does not have
//! (no swap accounting, no kmem) read as zero.

use std::fs;
use std::path::Path;

use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};

use super::CgroupState;

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single number; "max" (no limit) reads as 0, as libcgroups does.
fn number(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// "key value" lines.
fn keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

fn memory_data(dir: &Path, prefix: &str) -> MemoryData {
    MemoryData {
        usage: number(dir, &format!("{prefix}usage_in_bytes")),
        max_usage: number(dir, &format!("{prefix}max_usage_in_bytes")),
        fail_count: number(dir, &format!("{prefix}failcnt")),
        limit: number(dir, &format!("{prefix}limit_in_bytes")),
    }
}

/// cpuacct.usage_all ("cpu user system" header, then one line per CPU):
/// the user and system times per CPU.
pub fn per_core(text: &str) -> (Vec<u64>, Vec<u64>) {
    let mut user = Vec::new();
    let mut system = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, u, s] = f[..] {
            if let (Ok(u), Ok(s)) = (u.parse(), s.parse()) {
                user.push(u);
                system.push(s);
            }
        }
    }
    (user, system)
}

/// "maj:min Op value" lines of a blkio file ("Total n" lines skipped).
pub fn blkio_lines(text: &str) -> Vec<BlkioDeviceStat> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (maj, min) = f.next()?.split_once(':')?;
            let op = f.next()?;
            let value = f.next()?.parse().ok()?;
            Some(BlkioDeviceStat {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op_type: Some(op.to_owned()),
                value,
            })
        })
        .collect()
}

/// The stats of a v1 container's cgroup, each controller from its own
/// directory. Hugetlb is not read here.
pub fn read_stats(st: &CgroupState) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = super::dir(st, "memory") {
        let m = &mut s.memory;
        m.memory = memory_data(&d, "memory.");
        m.memswap = memory_data(&d, "memory.memsw.");
        m.kernel = memory_data(&d, "memory.kmem.");
        m.kernel_tcp = memory_data(&d, "memory.kmem.tcp.");
        m.hierarchy = number(&d, "memory.use_hierarchy") == 1;
        let stat = read(&d, "memory.stat").unwrap_or_default();
        m.stats = keyed(&stat).map(|(k, v)| (k.to_owned(), v)).collect();
        m.cache = m.stats.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = super::dir(st, "cpuacct") {
        // The same files and units as libcgroups' reader: cpuacct.stat
        // (user, system), cpuacct.usage, usage_all and usage_percpu.
        let u = &mut s.cpu.usage;
        u.usage_total = number(&d, "cpuacct.usage");
        for (k, v) in keyed(&read(&d, "cpuacct.stat").unwrap_or_default()) {
            match k {
                "user" => u.usage_user = v,
                "system" => u.usage_kernel = v,
                _ => {}
            }
        }
        let all = read(&d, "cpuacct.usage_all").unwrap_or_default();
        (u.per_core_usage_user, u.per_core_usage_kernel) = per_core(&all);
        u.per_core_usage_total = read(&d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    if let Some(d) = super::dir(st, "cpu") {
        let stat = read(&d, "cpu.stat").unwrap_or_default();
        for (k, v) in keyed(&stat) {
            match k {
                "nr_periods" => s.cpu.throttling.periods = v,
                "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                "throttled_time" => s.cpu.throttling.throttled_time = v,
                _ => {}
            }
        }
    }
    if let Some(d) = super::dir(st, "pids") {
        s.pids.current = number(&d, "pids.current");
        s.pids.limit = number(&d, "pids.max");
    }
    if let Some(d) = super::dir(st, "blkio") {
        let b = &mut s.blkio;
        let lines = |f: &str| blkio_lines(&read(&d, f).unwrap_or_default());
        b.service_bytes = lines("blkio.throttle.io_service_bytes_recursive");
        b.serviced = lines("blkio.throttle.io_serviced_recursive");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_parse_and_skip_totals() {
        let text = "254:0 Read 4096\n254:0 Write 0\nTotal 4096\ngarbage\n";
        let v = blkio_lines(text);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].major, v[0].minor, v[0].value), (254, 0, 4096));
        assert_eq!(v[0].op_type.as_deref(), Some("Read"));
    }

    #[test]
    fn per_core_times() {
        let all = "cpu user system\n0 10 20\n1 30 40\nbad line\n";
        assert_eq!(per_core(all), (vec![10, 30], vec![20, 40]));
        assert_eq!(per_core(""), (vec![], vec![]));
    }

    #[test]
    fn numbers_and_missing_files() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("pids.current"), "3\n").unwrap();
        fs::write(t.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(number(t.path(), "pids.current"), 3);
        assert_eq!(number(t.path(), "pids.max"), 0);
        assert_eq!(number(t.path(), "memory.memsw.usage_in_bytes"), 0);
        let m = memory_data(t.path(), "memory.");
        assert_eq!((m.usage, m.limit), (0, 0));
        let kv: Vec<_> = keyed("cache 5\nrss 7\nbad\n").collect();
        assert_eq!(kv, [("cache", 5), ("rss", 7)]);
    }

    proptest::proptest! {
        #[test]
        fn any_blkio_text_parses(text in "[0-9a-zA-Z: \n]{0,120}") {
            for stat in blkio_lines(&text) {
                proptest::prop_assert!(stat.op_type.is_some());
            }
        }
    }
}
