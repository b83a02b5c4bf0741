//! `GET /containers/{id}/stats?stream=&one-shot=`: Docker's stats JSON,
//! from the container's cgroup (libcgroups' `Stats`, v1 or v2).

use super::{Query, State};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use libcgroups::stats::{BlkioDeviceStat, Stats};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// One reading of the cgroup plus the host's CPU time.
#[derive(Debug, Default)]
pub struct Sample {
    pub stats: Stats,
    /// Host CPU time in nanoseconds (/proc/stat), Docker's system_cpu_usage.
    pub system_cpu: u64,
    pub online_cpus: u64,
    /// RFC 3339 time of the reading.
    pub read: String,
}

/// Docker's zero time, for a reading that did not happen.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Host facts the conversion needs.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// cgroup v2 (values in microseconds) rather than v1 (nanoseconds;
    /// cpuacct.stat in USER_HZ ticks).
    pub v2: bool,
    /// Total host memory: the limit shown for an unlimited container.
    pub mem_total: u64,
}

fn cpu_json(s: Option<&Sample>, host: Host) -> Value {
    let Some(s) = s else {
        return json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
    };
    let u = &s.stats.cpu.usage;
    let t = &s.stats.cpu.throttling;
    // v1: cpuacct.usage in ns, cpuacct.stat in ticks (USER_HZ 100);
    // v2: cpu.stat in µs.
    let (total, user, kernel, throttled) = if host.v2 {
        (
            u.usage_total * 1000,
            u.usage_user * 1000,
            u.usage_kernel * 1000,
            t.throttled_time * 1000,
        )
    } else {
        (
            u.usage_total,
            u.usage_user * 10_000_000,
            u.usage_kernel * 10_000_000,
            t.throttled_time,
        )
    };
    let mut usage = json!({
        "total_usage": total, "usage_in_kernelmode": kernel, "usage_in_usermode": user,
    });
    if !host.v2 && !u.per_core_usage_total.is_empty() {
        usage["percpu_usage"] = json!(u.per_core_usage_total);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_cpu,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": t.periods, "throttled_periods": t.throttled_periods,
            "throttled_time": throttled,
        },
    })
}

fn blkio_list(list: &[BlkioDeviceStat]) -> Value {
    Value::Array(
        list.iter()
            .map(|d| {
                json!({"major": d.major, "minor": d.minor,
                    "op": d.op_type.clone().unwrap_or_default(), "value": d.value})
            })
            .collect(),
    )
}

/// Docker's stats JSON for a reading and the one before it (`precpu`).
pub fn to_docker(
    id: &str,
    name: &str,
    cur: Option<&Sample>,
    pre: Option<&Sample>,
    host: Host,
) -> Value {
    let mut v = json!({
        "id": id,
        "name": format!("/{name}"),
        "read": cur.map_or(ZERO_TIME, |s| s.read.as_str()),
        "preread": pre.map_or(ZERO_TIME, |s| s.read.as_str()),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur, host),
        "precpu_stats": cpu_json(pre, host),
    });
    let Some(s) = cur else {
        v["pids_stats"] = json!({});
        v["blkio_stats"] = json!({"io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null});
        v["memory_stats"] = json!({});
        return v;
    };
    let st = &s.stats;
    let mut pids = Map::new();
    pids.insert("current".into(), json!(st.pids.current));
    if st.pids.limit > 0 && st.pids.limit < u64::MAX {
        pids.insert("limit".into(), json!(st.pids.limit));
    }
    v["pids_stats"] = Value::Object(pids);
    let b = &st.blkio;
    v["blkio_stats"] = json!({
        "io_service_bytes_recursive": blkio_list(&b.service_bytes),
        "io_serviced_recursive": blkio_list(&b.serviced),
        "io_queue_recursive": blkio_list(&b.queued),
        "io_service_time_recursive": blkio_list(&b.service_time),
        "io_wait_time_recursive": blkio_list(&b.wait_time),
        "io_merged_recursive": blkio_list(&b.merged),
        "io_time_recursive": blkio_list(&b.time),
        "sectors_recursive": blkio_list(&b.sectors),
    });
    let m = &st.memory;
    // An unlimited cgroup reports a huge number (v1) or u64::MAX ("max",
    // v2): Docker shows the host's memory instead.
    let mut limit = m.memory.limit;
    if limit == 0 || (host.mem_total > 0 && limit > host.mem_total) {
        limit = host.mem_total;
    }
    let mut stats: Map<String, Value> =
        m.stats.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    stats.sort_keys();
    let mut mem = json!({"usage": m.memory.usage, "stats": stats, "limit": limit});
    if !host.v2 {
        mem["max_usage"] = json!(m.memory.max_usage);
        // omitempty in Docker's type.
        if m.memory.fail_count > 0 {
            mem["failcnt"] = json!(m.memory.fail_count);
        }
    }
    v["memory_stats"] = mem;
    v
}

/// Host CPU time in nanoseconds: the first seven fields of /proc/stat's
/// `cpu` line (user .. softirq), as Docker adds them.
pub fn system_cpu_ns(proc_stat: &str) -> u64 {
    let Some(line) = proc_stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn online_cpus() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as u64
}

fn mem_total() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn host() -> Host {
    Host {
        v2: std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        mem_total: mem_total(),
    }
}

/// Reads the container's cgroup now; None if it is not running.
fn sample(runtime_root: &std::path::Path, id: &str) -> Option<Sample> {
    let c = pier_runtime::Runtime::new(runtime_root).load(id).ok()?;
    let stats = c.stats().ok()?;
    Some(Sample {
        stats,
        system_cpu: system_cpu_ns(&std::fs::read_to_string("/proc/stat").unwrap_or_default()),
        online_cpus: online_cpus(),
        read: pier_common::time::now_rfc3339(),
    })
}

/// `GET /containers/{id}/stats`.
pub async fn stats(engine: State, Path(id): Path<String>, q: Query) -> Result<Response> {
    let h = engine.find(&id)?;
    let stream = q.get("stream").is_none_or(|_| super::flag(&q, "stream"));
    let one_shot = super::flag(&q, "one-shot");
    if one_shot && stream {
        return Err(Error::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let root = engine.config.runtime_root();
    let host = tokio::task::spawn_blocking(host).await?;
    let read = {
        let (root, id) = (root.clone(), h.id.clone());
        move || {
            let (root, id) = (root.clone(), id.clone());
            async move {
                if !std::path::Path::new(&root).join(&id).exists() {
                    return None;
                }
                tokio::task::spawn_blocking(move || sample(&root, &id))
                    .await
                    .ok()
                    .flatten()
            }
        }
    };
    if !stream {
        let rec = h.record();
        let mut pre = None;
        let mut cur = if rec.state.running() {
            read().await
        } else {
            None
        };
        if cur.is_some() && !one_shot {
            // A second reading a second later fills precpu_stats, so CPU %
            // can be computed from one answer (as Docker).
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(second) = read().await {
                pre = cur.replace(second);
            }
        }
        let v = to_docker(&rec.id, &rec.name, cur.as_ref(), pre.as_ref(), host);
        return Ok(axum::Json(v).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::spawn(async move {
        let mut pre: Option<Sample> = None;
        loop {
            let rec = h.record();
            let cur = if rec.state.running() {
                read().await
            } else {
                None
            };
            let v = to_docker(&rec.id, &rec.name, cur.as_ref(), pre.as_ref(), host);
            let mut line = v.to_string().into_bytes();
            line.push(b'\n');
            if tx.send(Ok(Bytes::from(line))).await.is_err() || h.removed() {
                break;
            }
            pre = cur;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => break,
            }
        }
    });
    let mut rx = rx;
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(total: u64, system: u64) -> Sample {
        let mut s = Stats::default();
        s.cpu.usage.usage_total = total;
        s.cpu.usage.usage_user = 3;
        s.cpu.usage.usage_kernel = 2;
        s.cpu.usage.per_core_usage_total = vec![total / 2, total / 2];
        s.pids.current = 2;
        s.pids.limit = 100;
        s.memory.memory.usage = 5 << 20;
        s.memory.memory.limit = u64::MAX;
        s.memory.memory.max_usage = 6 << 20;
        s.memory.stats.insert("total_inactive_file".into(), 1 << 20);
        s.blkio.service_bytes.push(BlkioDeviceStat {
            major: 8,
            minor: 0,
            op_type: Some("Read".into()),
            value: 4096,
        });
        Sample {
            stats: s,
            system_cpu: system,
            online_cpus: 2,
            read: "2026-11-30T00:00:01Z".into(),
        }
    }

    #[test]
    fn v1_stats_convert_to_docker_json() {
        let host = Host {
            v2: false,
            mem_total: 8 << 30,
        };
        let (pre, cur) = (sample(1_000, 10_000), sample(3_000, 20_000));
        let v = to_docker("abc", "c1", Some(&cur), Some(&pre), host);
        assert_eq!(v["name"], "/c1");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3_000);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1_000);
        // cpuacct.stat ticks become nanoseconds.
        assert_eq!(v["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 30_000_000);
        assert_eq!(
            v["cpu_stats"]["cpu_usage"]["percpu_usage"],
            json!([1500, 1500])
        );
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 20_000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["pids_stats"], json!({"current": 2, "limit": 100}));
        assert_eq!(v["memory_stats"]["usage"], 5 << 20);
        assert_eq!(v["memory_stats"]["max_usage"], 6 << 20);
        // Unlimited: the host's memory.
        assert_eq!(v["memory_stats"]["limit"], 8u64 << 30);
        assert_eq!(v["memory_stats"]["stats"]["total_inactive_file"], 1 << 20);
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"],
            json!([{"major": 8, "minor": 0, "op": "Read", "value": 4096}])
        );
        assert!(v.get("networks").is_none());
    }

    #[test]
    fn v2_stats_are_microseconds_and_have_no_v1_fields() {
        let host = Host {
            v2: true,
            mem_total: 8 << 30,
        };
        let mut cur = sample(3_000, 20_000);
        cur.stats.memory.memory.limit = 256 << 20;
        let v = to_docker("abc", "c1", Some(&cur), None, host);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3_000_000);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["usage_in_kernelmode"], 2_000);
        assert!(v["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert!(v["memory_stats"].get("max_usage").is_none());
        assert_eq!(v["memory_stats"]["limit"], 256 << 20);
        assert_eq!(v["preread"], ZERO_TIME);
    }

    #[test]
    fn a_stopped_container_has_zero_stats() {
        let host = Host {
            v2: false,
            mem_total: 1,
        };
        let v = to_docker("abc", "c1", None, None, host);
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(v["memory_stats"], json!({}));
    }

    #[test]
    fn system_cpu_adds_seven_fields_in_ns() {
        let s = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1\n";
        assert_eq!(system_cpu_ns(s), 28 * 10_000_000);
        assert_eq!(system_cpu_ns(""), 0);
    }
}
