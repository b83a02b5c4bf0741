//! `pier ps`.

use crate::client::Client;
use crate::error::CliError;
use crate::format::{ago, short_id, table};

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
}

pub async fn ps(client: &Client, args: PsArgs) -> Result<i32, CliError> {
    let path = if args.all {
        "/containers/json?all=1"
    } else {
        "/containers/json"
    };
    let list: Vec<serde_json::Value> = client.get_json(path).await?;
    let id = |c: &serde_json::Value| {
        let id = c["Id"].as_str().unwrap_or_default();
        if args.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        }
    };
    if args.quiet {
        for c in &list {
            println!("{}", id(c));
        }
        return Ok(0);
    }
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in &list {
        let mut command = c["Command"].as_str().unwrap_or_default().to_string();
        if !args.no_trunc && command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        let names: Vec<String> = c["Names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(|n| n.trim_start_matches('/').to_string()))
            .collect();
        rows.push(vec![
            id(c),
            c["Image"].as_str().unwrap_or_default().to_string(),
            format!("\"{command}\""),
            ago(c["Created"].as_i64().unwrap_or(0)),
            c["Status"].as_str().unwrap_or_default().to_string(),
            String::new(),
            names.join(","),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}
