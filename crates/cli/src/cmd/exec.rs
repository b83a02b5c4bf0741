//! `pier exec`: run a command in a running container, as `docker exec`:
//! create the exec instance, start it (attached or `-d`), carry its stdio,
//! exit with its exit code.

use crate::client::{encode, full, Client};
use crate::error::CliError;
use crate::tty;
use hyper::Method;
use serde_json::json;
use std::io::IsTerminal;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "STRING")]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// Container name or ID
    container: String,
    /// Command and arguments
    #[arg(required = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `-e KEY` takes KEY's value from the local environment, as docker does.
fn env_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

/// As the docker CLI: a refusal from the daemon exits 1, not 125.
pub async fn exec(client: &Client, args: ExecArgs) -> Result<i32, CliError> {
    run(client, args).await.map_err(|mut e| {
        if e.status.is_some() {
            e.code = 1;
        }
        e
    })
}

async fn run(client: &Client, args: ExecArgs) -> Result<i32, CliError> {
    if args.interactive && args.tty && !args.detach && !std::io::stdin().is_terminal() {
        return Err(CliError {
            message: "the input device is not a TTY".into(),
            code: 1,
            status: None,
        });
    }
    let attach = !args.detach;
    let mut body = json!({
        "User": args.user.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "Tty": args.tty,
        "AttachStdin": args.interactive && attach,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Env": env_list(&args.env),
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Cmd": args.command,
    });
    let detach_keys = super::attach::detach_keys(args.detach_keys.as_deref())?;
    if let Some(k) = &args.detach_keys {
        body["DetachKeys"] = json!(k);
    }
    if args.tty {
        if let Some((h, w)) = tty::size() {
            body["ConsoleSize"] = json!([h, w]);
        }
    }
    let created: serde_json::Value = client
        .post_json(
            &format!("/containers/{}/exec", encode(&args.container)),
            &body,
        )
        .await?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();

    if args.detach {
        let start = json!({ "Detach": true, "Tty": args.tty });
        let data = serde_json::to_vec(&start).map_err(|e| CliError::engine(e.to_string()))?;
        client
            .send(Method::POST, &format!("/exec/{id}/start"), full(data))
            .await?;
        return Ok(0);
    }
    let stream = client.upgrade(&format!("/exec/{id}/start")).await?;
    let ended = tty::pump(
        client,
        stream,
        args.interactive,
        args.tty,
        Some(format!("/exec/{id}/resize")),
        &detach_keys,
    )
    .await;
    if ended == tty::Ended::Detached {
        return Ok(0);
    }
    let inspect: serde_json::Value = client.get_json(&format!("/exec/{id}/json")).await?;
    Ok(inspect["ExitCode"].as_i64().unwrap_or(125) as i32)
}
