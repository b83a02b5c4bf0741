//! The cgroup-backed commands of the CLI: `ps` and `events`, and the
//! runc-shaped JSON of cgroup stats.

use std::time::Duration;

use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use serde_json::{json, Map, Value};

use crate::{Container, Error, Result, Status};

/// `ps`: `-f json` prints the pids as a JSON array; the table runs ps(1)
/// with the given options (default `-ef`) and keeps its header and the
/// lines of the container's processes, as runc does.
pub fn ps(c: &Container, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = c.pids()?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(0)
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(Error::io("running ps"))?;
            if !out.status.success() {
                return Err(Error::Init(format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{}", filter_ps(&text, &pids)?);
            Ok(0)
        }
        other => Err(Error::InvalidConfig(format!(
            "invalid format {other:?}: table or json"
        ))),
    }
}

/// Keeps ps(1)'s header and the lines whose PID column is in `pids`.
pub fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::InvalidConfig("ps output has no PID column".into()))?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Parses a Go-style duration as runc's `--interval` takes it ("5s",
/// "500ms", "1m30s", "2h").
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * mult;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// `events`: with `--stats` one stats event; else a stats event every
/// interval and an `oom` event for each new OOM kill, until the container
/// stops.
pub fn events(c: &Container, stats_once: bool, interval: &str) -> Result<i32> {
    let status = c.status();
    if status == Status::Stopped {
        return Err(Error::BadState {
            id: c.id().to_owned(),
            status: status.to_string(),
            what: "no events".into(),
        });
    }
    if stats_once {
        println!("{}", stats_event(c)?);
        return Ok(0);
    }
    let every = parse_duration(interval)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::InvalidConfig(format!("invalid interval {interval:?}")))?;
    let mut ooms = c.oom_kills();
    // Check for OOM kills more often than stats are printed.
    let tick = every.min(Duration::from_millis(200));
    let mut since = every;
    loop {
        // OOM kills first: one may have just ended the container.
        let now = c.oom_kills();
        if now > ooms {
            ooms = now;
            println!("{}", json!({"type": "oom", "id": c.id()}));
        }
        if c.status() == Status::Stopped {
            return Ok(0);
        }
        if since >= every {
            since = Duration::ZERO;
            match stats_event(c) {
                Ok(ev) => println!("{ev}"),
                Err(_) if c.status() == Status::Stopped => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        std::thread::sleep(tick);
        since += tick;
    }
}

fn stats_event(c: &Container) -> Result<Value> {
    let stats = c.stats()?;
    Ok(json!({"type": "stats", "id": c.id(), "data": runc_stats(&stats)}))
}

fn mem(d: &MemoryData) -> Value {
    json!({"limit": d.limit, "usage": d.usage, "max": d.max_usage, "failcnt": d.fail_count})
}

fn blkio_list(v: &[BlkioDeviceStat]) -> Value {
    Value::Array(
        v.iter()
            .map(|d| {
                let mut m = Map::new();
                m.insert("major".into(), d.major.into());
                m.insert("minor".into(), d.minor.into());
                if let Some(op) = &d.op_type {
                    m.insert("op".into(), op.clone().into());
                }
                m.insert("value".into(), d.value.into());
                Value::Object(m)
            })
            .collect(),
    )
}

/// libcgroups' stats in the shape of runc's `events --stats` data
/// (runc's types.Stats), so tools that parse runc's output read ours.
pub fn runc_stats(s: &Stats) -> Value {
    let u = &s.cpu.usage;
    let t = &s.cpu.throttling;
    let m = &s.memory;
    let b = &s.blkio;
    let mut raw: Vec<_> = m.stats.iter().collect();
    raw.sort();
    let raw: Map<String, Value> = raw
        .into_iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect();
    let hugetlb: Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(k, h)| {
            (
                k.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": u.usage_total,
                "percpu": u.per_core_usage_total,
                "percpu_kernel": u.per_core_usage_kernel,
                "percpu_user": u.per_core_usage_user,
                "kernel": u.usage_kernel,
                "user": u.usage_user,
            },
            "throttling": {
                "periods": t.periods,
                "throttled_periods": t.throttled_periods,
                "throttled_time": t.throttled_time,
            },
        },
        "memory": {
            "cache": m.cache,
            "usage": mem(&m.memory),
            "swap": mem(&m.memswap),
            "kernel": mem(&m.kernel),
            "kernelTCP": mem(&m.kernel_tcp),
            "raw": raw,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio_list(&b.service_bytes),
            "ioServicedRecursive": blkio_list(&b.serviced),
            "ioQueuedRecursive": blkio_list(&b.queued),
            "ioServiceTimeRecursive": blkio_list(&b.service_time),
            "ioWaitTimeRecursive": blkio_list(&b.wait_time),
            "ioMergedRecursive": blkio_list(&b.merged),
            "ioTimeRecursive": blkio_list(&b.time),
            "sectorsRecursive": blkio_list(&b.sectors),
        },
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
    }

    #[test]
    fn ps_filter() {
        let text = "UID        PID  PPID  C STIME TTY          TIME CMD\n\
                    root         1     0  0 10:00 ?        00:00:01 /sbin/init\n\
                    root      4242     1  0 10:00 ?        00:00:00 sleep 100\n\
                    root      4243  4242  0 10:00 ?        00:00:00 sh -c x\n";
        let out = filter_ps(text, &[4242, 4243]).unwrap();
        assert_eq!(out.lines().count(), 3);
        assert!(out.starts_with("UID"));
        assert!(!out.contains("/sbin/init"));
        assert!(filter_ps("A B\n1 2\n", &[1]).is_err());
    }

    #[test]
    fn stats_shape() {
        let mut s = Stats::default();
        s.memory.memory.usage = 4096;
        s.pids.current = 3;
        let v = runc_stats(&s);
        assert_eq!(v["memory"]["usage"]["usage"], 4096);
        assert_eq!(v["pids"]["current"], 3);
        assert!(v["cpu"]["usage"]["percpu"].is_array());
        assert!(v["network_interfaces"].is_null());
    }
}
