//! `pier container prune`: removes all stopped containers, as docker.

use crate::client::{empty, Client};
use crate::error::CliError;
use crate::format::human_size;
use hyper::Method;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// Prints docker's prompt (`WARNING! ...\nAre you sure you want to
/// continue? [y/N] `) and whether the answer is yes: y or Y, blanks around
/// it ignored; anything else, "yes" included, is a no (as docker).
pub fn ask(prompt: &str) -> bool {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    confirmed(&line)
}

pub fn confirmed(answer: &str) -> bool {
    matches!(answer.trim(), "y" | "Y")
}

/// `POST /RESOURCE/prune` with the encoded filters `q`; the daemon's report.
pub async fn post(client: &Client, resource: &str, q: &str) -> Result<serde_json::Value, CliError> {
    let exit1 = super::image_ops::exit1;
    let path = if q.is_empty() {
        format!("/{resource}/prune")
    } else {
        format!("/{resource}/prune?filters={q}")
    };
    let resp = client
        .send(Method::POST, &path, empty())
        .await
        .map_err(exit1)?;
    crate::client::read_json(resp).await.map_err(exit1)
}

pub async fn prune(client: &Client, args: PruneArgs) -> Result<i32, CliError> {
    let exit1 = super::image_ops::exit1;
    if !args.force && !ask("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ") {
        return Ok(0);
    }
    let q = super::images::filters_query(&args.filter).map_err(exit1)?;
    let v = post(client, "containers", &q).await?;
    if let Some(ids) = v["ContainersDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted Containers:");
        for id in ids {
            println!("{}", id.as_str().unwrap_or_default());
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}
