//! `pier volume ls`: `GET /volumes` with docker's filters, sorted and
//! printed as the docker 28 CLI does (`DRIVER    VOLUME NAME`, `-q`,
//! `--format` templates, `json`, `table ...`).

use crate::client::Client;
use crate::cmd::image_ops::{exit1, print_formatted};
use crate::error::CliError;
use crate::format::human_size;
use serde_json::{json, Value};
use std::cmp::Ordering;

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (e.g. 'dangling=true', 'driver=local', 'label=k=v', 'name=x')
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output using a Go template (or "table ...", "json")
    #[arg(long)]
    format: Option<String>,
}

/// Docker's `filters` query value for `-f key=value` flags, with the docker
/// CLI's message for one without `=` (exit 125).
pub(super) fn filters(flags: &[String], flag: &str) -> Result<String, CliError> {
    for f in flags {
        if !f.contains('=') {
            return Err(super::bad_flag(
                f,
                flag,
                "bad format of filter (expected name=value)",
            ));
        }
    }
    crate::cmd::images::filters_query(flags)
}

/// Names compared as the docker CLI sorts them (sortorder.NaturalLess):
/// digit runs by their value, the rest byte by byte.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let run = |s: &[u8], mut k: usize| {
                let start = k;
                while k < s.len() && s[k].is_ascii_digit() {
                    k += 1;
                }
                (start, k)
            };
            let ((sa, ea), (sb, eb)) = (run(a, i), run(b, j));
            let trim = |s: &[u8], st: usize, en: usize| {
                let mut st = st;
                while st + 1 < en && s[st] == b'0' {
                    st += 1;
                }
                st
            };
            let (ta, tb) = (trim(a, sa, ea), trim(b, sb, eb));
            let by_value = (ea - ta)
                .cmp(&(eb - tb))
                .then_with(|| a[ta..ea].cmp(&b[tb..eb]))
                .then_with(|| (ea - sa).cmp(&(eb - sb)));
            if by_value != Ordering::Equal {
                return by_value;
            }
            (i, j) = (ea, eb);
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// The fields `volume ls --format` knows, in docker's spelling, for one
/// API Volume (keys in the order docker's `json` output has them).
pub fn ls_row(v: &Value) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut labels: Vec<String> = v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let usage = |k: &str| match v["UsageData"][k].as_i64() {
        Some(n) if n >= 0 => Some(n),
        _ => None,
    };
    let links = usage("RefCount").map_or("N/A".to_string(), |n| n.to_string());
    let size = usage("Size").map_or("N/A".to_string(), human_size);
    json!({
        "Availability": "N/A",
        "Driver": s("Driver"),
        "Group": "N/A",
        "Labels": labels.join(","),
        "Links": links,
        "Mountpoint": s("Mountpoint"),
        "Name": s("Name"),
        "Scope": s("Scope"),
        "Size": size,
        "Status": "N/A",
    })
}

/// Docker's column titles for `volume ls` fields.
fn ls_header(field: &str) -> String {
    match field {
        "Name" => "VOLUME NAME".into(),
        f => f.to_uppercase(),
    }
}

pub(super) async fn ls(client: &Client, args: LsArgs) -> Result<i32, CliError> {
    let q = filters(&args.filter, "-f, --filter")?;
    let path = if q.is_empty() {
        "/volumes".to_string()
    } else {
        format!("/volumes?filters={q}")
    };
    let v: Value = client.get_json(&path).await.map_err(exit1)?;
    let mut list: Vec<&Value> = v["Volumes"].as_array().into_iter().flatten().collect();
    list.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or_default(),
            b["Name"].as_str().unwrap_or_default(),
        )
    });
    let rows: Vec<Value> = list.into_iter().map(ls_row).collect();
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") if args.quiet => "{{.Name}}",
        None | Some("") | Some("table") => "table {{.Driver}}\t{{.Name}}",
        Some(f) => f,
    };
    print_formatted(format, &rows, ls_header).map_err(exit1)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::encode;

    #[test]
    fn filters_need_a_name_and_value_as_docker() {
        assert_eq!(
            filters(&["badfilter".into()], "-f, --filter")
                .unwrap_err()
                .message,
            "invalid argument \"badfilter\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
        );
        let q = filters(&["dangling=true".into(), "label=a=b".into()], "--filter").unwrap();
        assert_eq!(
            q,
            encode(r#"{"dangling":["true"],"label":["a=b"]}"#),
            "the query is docker's filters JSON"
        );
        assert_eq!(filters(&[], "--filter").unwrap(), "");
    }

    #[test]
    fn names_sort_naturally_as_docker() {
        let mut v = vec!["v10", "v2", "a", "046", "6b", "0f", "v1", "b"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["0f", "6b", "046", "a", "b", "v1", "v2", "v10"]);
    }

    #[test]
    fn ls_rows_have_dockers_fields() {
        let r = ls_row(&json!({"Name": "v1", "Driver": "local", "Scope": "local",
            "Mountpoint": "/m", "Labels": {"z": "1", "a": "b"}, "Options": null}));
        assert_eq!(
            r,
            json!({"Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "a=b,z=1",
                   "Links": "N/A", "Mountpoint": "/m", "Name": "v1", "Scope": "local",
                   "Size": "N/A", "Status": "N/A"})
        );
        let r = ls_row(&json!({"Name": "v", "UsageData": {"RefCount": 2, "Size": 2000}}));
        assert_eq!(
            (r["Links"].as_str(), r["Size"].as_str()),
            (Some("2"), Some("2kB"))
        );
        let r = ls_row(&json!({"Name": "v", "UsageData": {"RefCount": -1, "Size": -1}}));
        assert_eq!(
            (r["Links"].as_str(), r["Size"].as_str()),
            (Some("N/A"), Some("N/A"))
        );
        assert_eq!(ls_header("Name"), "VOLUME NAME");
        assert_eq!(ls_header("Mountpoint"), "MOUNTPOINT");
    }
}
