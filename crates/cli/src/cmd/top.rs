//! `pier top CONTAINER [ps OPTIONS]`: the container's processes as the
//! host's `ps` shows them.

use super::image_ops::exit1;
use crate::client::{encode, Client};
use crate::error::CliError;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub async fn top(client: &Client, args: TopArgs) -> Result<i32, CliError> {
    let mut path = format!("/containers/{}/top", encode(&args.container));
    if !args.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", encode(&args.ps_args.join(" "))));
    }
    let v: serde_json::Value = client.get_json(&path).await.map_err(exit1)?;
    print!("{}", render(&v));
    Ok(0)
}

/// Docker's table: Go's tabwriter with minimum width 20 and padding 3.
fn render(v: &serde_json::Value) -> String {
    let cells = |row: &serde_json::Value| -> String {
        row.as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut tw = tabwriter::TabWriter::new(Vec::new())
        .minwidth(17)
        .padding(3);
    let _ = writeln!(tw, "{}", cells(&v["Titles"]));
    for p in v["Processes"].as_array().into_iter().flatten() {
        let _ = writeln!(tw, "{}", cells(p));
    }
    let out = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim_end().to_string() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_twenty_wide() {
        let v = serde_json::json!({"Titles": ["PID", "CMD"], "Processes": [["42", "sleep 100"]]});
        assert_eq!(
            super::render(&v),
            format!("PID{}CMD\n42{}sleep 100\n", " ".repeat(17), " ".repeat(18))
        );
    }
}
