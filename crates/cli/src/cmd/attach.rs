//! `pier attach`: connect our stdio to a running container's, as `docker
//! attach`; exits with the container's exit code once its output ends.

use crate::client::{encode, Client};
use crate::error::CliError;
use crate::tty;
use http_body_util::BodyExt;
use hyper::Method;

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "STRING")]
    detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Proxy all received signals to the process (accepted, not done)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    sig_proxy: bool,
    /// Container name or ID
    container: String,
}

pub async fn attach(client: &Client, args: AttachArgs) -> Result<i32, CliError> {
    let _ = args.sig_proxy;
    let detach_keys = detach_keys(args.detach_keys.as_deref())?;
    let c: serde_json::Value = client
        .get_json(&format!("/containers/{}/json", encode(&args.container)))
        .await?;
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    if c["State"]["Running"] != serde_json::Value::Bool(true) {
        return Err(CliError {
            message: "You cannot attach to a stopped container, start it first".into(),
            code: 1,
            status: None,
        });
    }
    if c["State"]["Paused"] == serde_json::Value::Bool(true) {
        return Err(CliError {
            message: "You cannot attach to a paused container, unpause it first".into(),
            code: 1,
            status: None,
        });
    }
    let tty = c["Config"]["Tty"] == serde_json::Value::Bool(true);
    let stdin = !args.no_stdin && c["Config"]["OpenStdin"] == serde_json::Value::Bool(true);
    let stream = client
        .upgrade(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}",
            u8::from(stdin)
        ))
        .await?;
    let wait = client
        .send(
            Method::POST,
            &format!("/containers/{id}/wait?condition=not-running"),
            crate::client::empty(),
        )
        .await?;
    let ended = tty::pump(
        client,
        stream,
        stdin,
        tty,
        Some(format!("/containers/{id}/resize")),
        &detach_keys,
    )
    .await;
    if ended == tty::Ended::Detached {
        eprintln!("read escape sequence");
        return Ok(0);
    }
    let body = wait
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::engine(format!("waiting for the container: {e}")))?
        .to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| CliError::engine(format!("waiting for the container: {e}")))?;
    Ok(status["StatusCode"].as_i64().unwrap_or(125) as i32)
}

/// `--detach-keys` parsed (docker's default without it); a bad one is
/// refused before anything is attached, exit 1.
pub fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>, CliError> {
    tty::parse_detach_keys(flag.unwrap_or_default()).map_err(|message| CliError {
        message,
        code: 1,
        status: None,
    })
}
