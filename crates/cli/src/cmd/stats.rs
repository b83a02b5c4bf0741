//! `pier stats [--no-stream] [-a] [--format] [CONTAINER...]`: docker's
//! columns and formulas (CPU % from the change against precpu_stats, memory
//! without the inactive page cache).

use super::image_ops::{exit1, print_formatted};
use crate::client::{encode, Client};
use crate::error::CliError;
use crate::format::{human_size, short_id};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a Go template (or "table ...", "json")
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        other => return other.to_uppercase(),
    }
    .to_string()
}

/// Docker's CPU %: the container's CPU time over the host's, times the
/// CPUs, between this reading and the previous one.
pub fn cpu_percent(cur: &Value, pre: &Value) -> f64 {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu_delta = f(&cur["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = f(&cur["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let mut cpus = f(&cur["online_cpus"]);
    if cpus == 0.0 {
        cpus = cur["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, |a| a.len()) as f64;
    }
    if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// Memory used without the inactive file cache (v1 total_inactive_file,
/// v2 inactive_file), as docker.
pub fn mem_usage(mem: &Value) -> f64 {
    let usage = mem["usage"].as_u64().unwrap_or(0);
    if let Some(v) = mem["stats"]["total_inactive_file"].as_u64() {
        if v < usage {
            return (usage - v) as f64;
        }
    }
    if let Some(v) = mem["stats"]["inactive_file"].as_u64() {
        if v < usage {
            return (usage - v) as f64;
        }
    }
    usage as f64
}

/// Go's `%.4g`.
fn g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let e = v.abs().log10().floor() as i32;
    let decimals = (3 - e).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker's `units.BytesSize`: binary units, 4 significant digits.
pub fn binary_size(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", g4(v), units[i])
}

/// The row `--format` sees for one reading.
pub fn row(id: &str, given: &str, s: &Value, pre_cpu: Option<&Value>, trunc: bool) -> Value {
    let name = s["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let pre = pre_cpu.unwrap_or(&s["precpu_stats"]);
    let cpu = cpu_percent(&s["cpu_stats"], pre);
    let mem = mem_usage(&s["memory_stats"]);
    let limit = s["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rd, mut wr) = (0u64, 0u64);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let v = e["value"].as_u64().unwrap_or(0);
        match e["op"].as_str().unwrap_or_default().to_lowercase().as_str() {
            "read" => rd += v,
            "write" => wr += v,
            _ => {}
        }
    }
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in s["networks"].as_object().into_iter().flatten() {
        rx += n.1["rx_bytes"].as_u64().unwrap_or(0);
        tx += n.1["tx_bytes"].as_u64().unwrap_or(0);
    }
    let dec = |v: u64| human_size(v as i64);
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Container": given,
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", binary_size(mem), binary_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", dec(rx), dec(tx)),
        "BlockIO": format!("{} / {}", dec(rd), dec(wr)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

/// The containers to show: those named (each must exist), else the
/// running ones (all with -a).
async fn targets(client: &Client, args: &StatsArgs) -> Result<Vec<(String, String)>, CliError> {
    if !args.containers.is_empty() {
        let mut out = Vec::new();
        for c in &args.containers {
            let v: Value = client
                .get_json(&format!("/containers/{}/json", encode(c)))
                .await
                .map_err(exit1)?;
            out.push((v["Id"].as_str().unwrap_or(c).to_string(), c.clone()));
        }
        return Ok(out);
    }
    let path = if args.all {
        "/containers/json?all=1"
    } else {
        "/containers/json"
    };
    let list: Vec<Value> = client.get_json(path).await.map_err(exit1)?;
    Ok(list
        .iter()
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default().to_string();
            (id.clone(), id)
        })
        .collect())
}

async fn read_all(client: &Client, ids: &[(String, String)], one_shot: bool) -> Vec<Value> {
    let q = if one_shot {
        "stream=false&one-shot=true"
    } else {
        "stream=false"
    };
    let reads = ids.iter().map(|(id, _)| {
        let path = format!("/containers/{}/stats?{q}", encode(id));
        async move { client.get_json::<Value>(&path).await.unwrap_or(Value::Null) }
    });
    futures_util::future::join_all(reads).await
}

pub async fn stats(client: &Client, args: StatsArgs) -> Result<i32, CliError> {
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => DEFAULT.to_string(),
        Some(f) => f.to_string(),
    };
    let trunc = !args.no_trunc;
    if args.no_stream {
        let ids = targets(client, &args).await?;
        let all = read_all(client, &ids, false).await;
        let rows: Vec<Value> = ids
            .iter()
            .zip(&all)
            .map(|((id, given), s)| row(id, given, s, None, trunc))
            .collect();
        print_formatted(&format, &rows, header).map_err(exit1)?;
        return Ok(0);
    }
    // Streaming: one reading a second, CPU % against the previous one.
    let mut previous: std::collections::HashMap<String, Value> = Default::default();
    loop {
        let ids = targets(client, &args).await?;
        let all = read_all(client, &ids, true).await;
        let rows: Vec<Value> = ids
            .iter()
            .zip(&all)
            .map(|((id, given), s)| row(id, given, s, previous.get(id), trunc))
            .collect();
        previous = ids
            .iter()
            .zip(all)
            .map(|((id, _), s)| (id.clone(), s["cpu_stats"].clone()))
            .collect();
        print!("\x1b[2J\x1b[H");
        print_formatted(&format, &rows, header).map_err(exit1)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker() {
        assert_eq!(binary_size(0.0), "0B");
        assert_eq!(binary_size(471_040.0), "460KiB");
        assert_eq!(binary_size(8_348_000_000.0), "7.775GiB");
        assert_eq!(binary_size(1_572_864.0), "1.5MiB");
    }

    #[test]
    fn cpu_and_memory_as_docker() {
        let s = json!({
            "name": "/c1",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3_145_728u64, "limit": 10_485_760u64,
                "stats": {"total_inactive_file": 1_048_576u64}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "Read", "value": 4096}, {"op": "Write", "value": 1000}, {"op": "Total", "value": 5096}]},
            "pids_stats": {"current": 3},
        });
        let r = row("0123456789abcdef", "c1", &s, None, true);
        // (200 / 1000) * 2 CPUs.
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 10MiB");
        assert_eq!(r["MemPerc"], "20.00%");
        assert_eq!(r["BlockIO"], "4.1kB / 1kB");
        assert_eq!(r["NetIO"], "0B / 0B");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "c1");
    }
}
