//! `pier ps` / `pier container ls`: docker's columns, filters, `--format`
//! (Go templates over docker's field names, `table ...`, `json`) and sizes.

use crate::client::Client;
use crate::error::CliError;
use crate::format::{ago, human_size, short_id};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template (or "table ...", "json")
    #[arg(long)]
    format: Option<String>,
}

pub async fn ps(client: &Client, args: PsArgs) -> Result<i32, CliError> {
    let exit1 = super::image_ops::exit1;
    let mut path = "/containers/json?".to_string();
    if args.all {
        path.push_str("all=1&");
    }
    let limit = if args.latest { 1 } else { args.last };
    if limit > 0 {
        path.push_str(&format!("limit={limit}&"));
    }
    // Sizes cost a walk of every writable layer: only when shown.
    let wants_size = args.size
        || args
            .format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f == "json");
    if wants_size && !args.quiet {
        path.push_str("size=1&");
    }
    let q = super::images::filters_query(&args.filter).map_err(exit1)?;
    if !q.is_empty() {
        path.push_str(&format!("filters={q}"));
    }
    let path = path.trim_end_matches(['&', '?']).to_string();
    let list: Vec<Value> = client.get_json(&path).await.map_err(exit1)?;
    let trunc = !args.no_trunc;
    if args.quiet {
        for c in &list {
            let id = c["Id"].as_str().unwrap_or_default();
            println!("{}", if trunc { short_id(id) } else { id.to_string() });
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().map(|c| context(c, trunc)).collect();
    let default = if args.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => default.to_string(),
        Some(f) => f.to_string(),
    };
    super::image_ops::print_formatted(&format, &rows, header).map_err(exit1)?;
    Ok(0)
}

/// Docker's column header for a `--format` field.
fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "Ports" => "PORTS",
        "State" => "STATE",
        "Status" => "STATUS",
        "Size" => "SIZE",
        "Names" => "NAMES",
        "Labels" => "LABELS",
        "Mounts" => "MOUNTS",
        "Networks" => "NETWORKS",
        "LocalVolumes" => "LOCAL VOLUMES",
        "Platform" => "PLATFORM",
        other => return other.to_uppercase(),
    }
    .to_string()
}

/// One container as docker's `--format` sees it: strings by field name.
fn context(c: &Value, trunc: bool) -> Value {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    let id = s("Id");
    let mut command = s("Command");
    if trunc {
        command = ellipsis(&command, 20);
    }
    let mut image = s("Image");
    if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    }
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/'))
        // Link names (a/b) only without truncation, as docker.
        .filter(|n| !trunc || !n.contains('/'))
        .map(str::to_string)
        .collect();
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let created = c["Created"].as_i64().unwrap_or(0);
    let size = match (c["SizeRw"].as_i64(), c["SizeRootFs"].as_i64()) {
        (rw, Some(root)) if root > 0 => format!(
            "{} (virtual {})",
            human_size(rw.unwrap_or(0)),
            human_size(root)
        ),
        (rw, _) => human_size(rw.unwrap_or(0)),
    };
    let networks: Vec<&str> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Image": image,
        "Command": go_quote(&command),
        "CreatedAt": created_at(created),
        "RunningFor": ago(created),
        "Ports": super::port::display_ports(&c["Ports"]),
        "State": s("State"),
        "Status": s("Status"),
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "LabelMap": c["Labels"],
        "Mounts": "",
        "Networks": networks.join(","),
        "LocalVolumes": "0",
        "Platform": null,
    })
}

/// Go's time.String() of a unix time in UTC: "2026-11-30 15:07:29 +0000 UTC".
fn created_at(unix: i64) -> String {
    let t = pier_common::time::rfc3339(unix, 0);
    format!("{} {} +0000 UTC", &t[..10], t[11..].trim_end_matches('Z'))
}

/// Docker's Ellipsis: at most `max` characters, the last one "…" when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// Go's strconv.Quote: double quotes, backslash escapes for quotes,
/// backslashes and control characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_show_as_docker_ps_shows_them() {
        // As docker: `sh -c 'echo out; echo err >&2; echo two'` truncated.
        assert_eq!(
            go_quote(&ellipsis("sh -c 'echo out; echo err >&2; echo two'", 20)),
            "\"sh -c 'echo out; ec…\""
        );
        assert_eq!(
            go_quote("echo 'a b' x\"y it's  a$b plain a\\b"),
            "\"echo 'a b' x\\\"y it's  a$b plain a\\\\b\""
        );
        assert_eq!(go_quote("sleep 1000"), "\"sleep 1000\"");
        assert_eq!(created_at(1_796_051_249), "2026-11-30 15:07:29 +0000 UTC");
    }
}
