//! `pier network ls`: `GET /networks` with docker's filters (checked by the
//! daemon: driver, id, label, name, scope, type, dangling), sorted by name
//! and printed as the docker 28 CLI does (`NETWORK ID   NAME   DRIVER
//! SCOPE`, `-q`, `--no-trunc`, `--format` templates, `json`, `table ...`).

use crate::client::Client;
use crate::cmd::image_ops::{exit1, print_formatted};
use crate::cmd::volume::natural_cmp;
use crate::error::CliError;
use crate::format::short_id;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output using a Go template (or "table ...", "json")
    #[arg(long)]
    format: Option<String>,
}

/// Docker's `filters` query value for `key=value` flags, with the docker
/// CLI's message for one without `=` (exit 125).
pub(super) fn filters(flags: &[String], flag: &str) -> Result<String, CliError> {
    for f in flags {
        if !f.contains('=') {
            return Err(CliError::engine(format!(
                "invalid argument \"{f}\" for \"{flag}\" flag: bad format of filter (expected name=value)"
            )));
        }
    }
    crate::cmd::images::filters_query(flags)
}

/// Go's time.String() of an RFC 3339 UTC time, as docker's CreatedAt:
/// `2026-11-30T20:40:43.467112101Z` -> `2026-11-30 20:40:43.467112101
/// +0000 UTC` (trailing zeros of the fraction dropped).
pub fn created_at(rfc3339: &str) -> String {
    let Some((date, time)) = rfc3339.split_once('T') else {
        return rfc3339.to_string();
    };
    let time = time.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{date} {hms} +0000 UTC")
    } else {
        format!("{date} {hms}.{frac} +0000 UTC")
    }
}

/// The fields `network ls --format` knows, in docker's spelling, for one
/// API Network (keys in the order docker's `json` output has them).
pub fn ls_row(n: &Value, trunc: bool) -> Value {
    let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
    let b = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let id = s("Id");
    json!({
        "CreatedAt": created_at(&s("Created")),
        "Driver": s("Driver"),
        "ID": if trunc { short_id(&id) } else { id },
        "IPv4": b("EnableIPv4"),
        "IPv6": b("EnableIPv6"),
        "Internal": b("Internal"),
        "LabelMap": n["Labels"],
        "Labels": labels.join(","),
        "Name": s("Name"),
        "Scope": s("Scope"),
    })
}

/// Docker's column titles for `network ls` fields.
fn ls_header(field: &str) -> String {
    match field {
        "ID" => "NETWORK ID".into(),
        "CreatedAt" => "CREATED AT".into(),
        f => f.to_uppercase(),
    }
}

pub(super) async fn ls(client: &Client, args: LsArgs) -> Result<i32, CliError> {
    let q = filters(&args.filter, "-f, --filter")?;
    let path = if q.is_empty() {
        "/networks".to_string()
    } else {
        format!("/networks?filters={q}")
    };
    let list: Vec<Value> = client.get_json(&path).await.map_err(exit1)?;
    let mut list: Vec<&Value> = list.iter().collect();
    list.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or_default(),
            b["Name"].as_str().unwrap_or_default(),
        )
    });
    let rows: Vec<Value> = list
        .into_iter()
        .map(|n| ls_row(n, !args.no_trunc))
        .collect();
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") if args.quiet => "{{.ID}}",
        None | Some("") | Some("table") => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        Some(f) => f,
    };
    if format == "json" || format.trim() == "{{json .}}" {
        // Docker's json rows have no LabelMap (only the template method).
        for r in &rows {
            let mut r = r.clone();
            if let Some(o) = r.as_object_mut() {
                o.remove("LabelMap");
            }
            println!("{r}");
        }
        return Ok(0);
    }
    print_formatted(format, &rows, ls_header).map_err(exit1)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_as_go_prints_it() {
        assert_eq!(
            created_at("2026-11-30T20:40:43.467112101Z"),
            "2026-11-30 20:40:43.467112101 +0000 UTC"
        );
        assert_eq!(
            created_at("2026-11-30T20:40:43.4671Z"),
            "2026-11-30 20:40:43.4671 +0000 UTC"
        );
        assert_eq!(
            created_at("2026-11-30T20:40:43.000Z"),
            "2026-11-30 20:40:43 +0000 UTC"
        );
        assert_eq!(
            created_at("2026-11-30T20:40:43Z"),
            "2026-11-30 20:40:43 +0000 UTC"
        );
    }

    #[test]
    fn ls_rows_have_dockers_fields() {
        let n = json!({"Name": "nA", "Id": "f69f46de77ca4ca3e2c7b8d8ba0b17ea5bade935783c2a1ae2b04d0e17b8d5d7",
            "Created": "2026-11-30T20:40:43.467112101Z", "Scope": "local", "Driver": "bridge",
            "EnableIPv6": false, "Internal": true, "Labels": {"z": "1", "a": "b"}});
        let r = ls_row(&n, true);
        // As docker 28's `network ls --format json` for the same network.
        assert_eq!(
            r,
            json!({"CreatedAt": "2026-11-30 20:40:43.467112101 +0000 UTC", "Driver": "bridge",
                   "ID": "f69f46de77ca", "IPv4": "false", "IPv6": "false", "Internal": "true",
                   "LabelMap": {"z": "1", "a": "b"}, "Labels": "a=b,z=1", "Name": "nA", "Scope": "local"})
        );
        assert_eq!(ls_row(&n, false)["ID"].as_str().unwrap().len(), 64);
        assert_eq!(ls_header("ID"), "NETWORK ID");
        assert_eq!(ls_header("CreatedAt"), "CREATED AT");
        assert_eq!(ls_header("Driver"), "DRIVER");
    }

    #[test]
    fn filters_need_a_name_and_value_as_docker() {
        assert_eq!(
            filters(&["bad".into()], "-f, --filter")
                .unwrap_err()
                .message,
            "invalid argument \"bad\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
        );
        assert_eq!(filters(&[], "-f, --filter").unwrap(), "");
        assert!(!filters(&["type=custom".into()], "-f, --filter")
            .unwrap()
            .is_empty());
    }
}
