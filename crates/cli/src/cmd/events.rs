//! `pier events`: the daemon's event stream, one line per event as the
//! Docker CLI prints it, or through `--format`.

use crate::client::{encode, Client};
use crate::error::CliError;
use crate::template::Template;
use http_body_util::BodyExt;
use hyper::Method;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template: 'json' or a Go template
    #[arg(long)]
    format: Option<String>,
}

/// A Go duration (`10m`, `1h30m`, `1.5s`) in nanoseconds.
fn go_duration(s: &str) -> Option<i128> {
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * unit;
    }
    Some(total as i128)
}

/// Docker's `--since`/`--until` values: a unix timestamp (as is), an
/// RFC 3339 time, or a duration before now (`10m`).
fn timestamp(flag: &str, v: &str) -> Result<String, CliError> {
    if v.split_once('.')
        .map_or(v, |(a, _)| a)
        .chars()
        .all(|c| c.is_ascii_digit())
        && !v.is_empty()
        && v.parse::<f64>().is_ok()
    {
        return Ok(v.to_string());
    }
    let (now_s, now_n) = pier_common::time::unix_now();
    let now = i128::from(now_s) * 1_000_000_000 + i128::from(now_n);
    if let Some(d) = go_duration(v) {
        let t = now - d;
        return Ok(format!(
            "{}.{:09}",
            t.div_euclid(1_000_000_000),
            t.rem_euclid(1_000_000_000)
        ));
    }
    if let Some(secs) = pier_common::time::parse_rfc3339(v) {
        return Ok(secs.to_string());
    }
    Err(CliError::engine(format!(
        "invalid value for --{flag}: {v:?}: give a unix timestamp, an RFC 3339 time or a duration like 10m"
    )))
}

/// `key=value` filters as the API's JSON.
fn filters(list: &[String]) -> Result<String, CliError> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in list {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::engine(format!(
                "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            ))
        })?;
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(serde_json::to_string(&map).unwrap_or_default())
}

/// Docker's line: `TIME TYPE ACTION ID (k=v, ...)`.
fn plain(ev: &serde_json::Value) -> String {
    let nano = ev["timeNano"].as_i64().unwrap_or(0);
    let time = pier_common::time::rfc3339(nano.div_euclid(1_000_000_000), 0);
    let time = format!(
        "{}.{:09}Z",
        time.trim_end_matches('Z'),
        nano.rem_euclid(1_000_000_000)
    );
    let mut line = format!(
        "{time} {} {} {}",
        ev["Type"].as_str().unwrap_or(""),
        ev["Action"].as_str().unwrap_or(""),
        ev["Actor"]["ID"].as_str().unwrap_or("")
    );
    if let Some(attrs) = ev["Actor"]["Attributes"].as_object() {
        let mut kv: Vec<(&String, &serde_json::Value)> = attrs.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        if !kv.is_empty() {
            let parts: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    line
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<i32, CliError> {
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}").map_err(CliError::engine)?),
        Some(f) => Some(
            Template::parse(f)
                .map_err(|e| CliError::engine(format!("template parsing error: {e}")))?,
        ),
    };
    let mut q = Vec::new();
    if let Some(s) = &args.since {
        q.push(format!("since={}", encode(&timestamp("since", s)?)));
    }
    if let Some(u) = &args.until {
        q.push(format!("until={}", encode(&timestamp("until", u)?)));
    }
    if !args.filter.is_empty() {
        q.push(format!("filters={}", encode(&filters(&args.filter)?)));
    }
    let path = if q.is_empty() {
        "/events".to_string()
    } else {
        format!("/events?{}", q.join("&"))
    };
    let resp = client
        .send(Method::GET, &path, crate::client::empty())
        .await?;
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let stdout = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CliError::engine(format!("reading events: {e}")))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let Ok(ev) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            let out = match &template {
                Some(t) => t.render(&ev).map_err(CliError::engine)?,
                None => plain(&ev),
            };
            let mut lock = stdout.lock();
            if writeln!(lock, "{out}").and_then(|_| lock.flush()).is_err() {
                return Ok(0);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("x"), None);
        assert_eq!(timestamp("since", "1700000000").unwrap(), "1700000000");
        assert_eq!(
            timestamp("since", "2023-11-14T22:13:20Z").unwrap(),
            "1700000000"
        );
        assert!(timestamp("since", "yesterday").is_err());
    }

    #[test]
    fn lines_as_docker_prints_them() {
        let ev = serde_json::json!({"Type":"container","Action":"start",
            "Actor":{"ID":"abc","Attributes":{"name":"x","image":"busybox"}},
            "time":1700000000,"timeNano":1700000000000000005i64});
        assert_eq!(
            plain(&ev),
            "2023-11-14T22:13:20.000000005Z container start abc (image=busybox, name=x)"
        );
    }
}
