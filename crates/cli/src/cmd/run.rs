//! `pier run`: create, attach, wait, start, stream the output, exit with
//! the container's exit code (the order the Docker CLI uses, so that no
//! output and no exit is missed).

use crate::client::Client;
use crate::error::CliError;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::json;

use super::container_flags::ContainerFlags;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    #[command(flatten)]
    flags: ContainerFlags,
    /// Image to run
    image: String,
    /// Command and arguments
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

pub async fn run(client: &Client, args: RunArgs) -> Result<i32, CliError> {
    let interactive = args.flags.interactive;
    let rm = args.flags.rm;
    let mut body = args.flags.create_body(&args.image, &args.command)?;
    body["AttachStdin"] = json!(interactive && !args.detach);
    body["AttachStdout"] = json!(!args.detach);
    body["AttachStderr"] = json!(!args.detach);
    body["StdinOnce"] = json!(interactive && !args.detach);
    let created = create_container(client, &args.flags.create_path(), &body, &args.image).await?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();

    if args.detach {
        client
            .call(Method::POST, &format!("/containers/{id}/start"))
            .await
            .map_err(CliError::with_start_code)?;
        println!("{id}");
        return Ok(0);
    }

    let stdin = if interactive { "1" } else { "0" };
    let stream = client
        .upgrade(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={stdin}"
        ))
        .await?;
    let condition = if rm { "removed" } else { "next-exit" };
    let wait = client
        .send(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            crate::client::empty(),
        )
        .await?;
    client
        .call(Method::POST, &format!("/containers/{id}/start"))
        .await
        .map_err(CliError::with_start_code)?;

    let tty = args.flags.tty;
    let resize = format!("/containers/{id}/resize");
    if crate::tty::pump(
        client,
        stream,
        interactive,
        tty,
        Some(resize),
        crate::tty::DEFAULT_DETACH_KEYS,
    )
    .await
        == crate::tty::Ended::Detached
    {
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

/// `POST /containers/create`; a missing image is reported as docker does.
pub async fn create_container(
    client: &Client,
    path: &str,
    body: &serde_json::Value,
    image: &str,
) -> Result<serde_json::Value, CliError> {
    let created: Result<serde_json::Value, CliError> = client.post_json(path, body).await;
    match created {
        Ok(v) => {
            for w in v["Warnings"].as_array().into_iter().flatten() {
                if let Some(w) = w.as_str() {
                    eprintln!("WARNING: {w}");
                }
            }
            Ok(v)
        }
        Err(e) if e.status == Some(404) && e.message.contains("No such image") => {
            eprintln!("Unable to find image '{image}' locally");
            Err(e)
        }
        Err(e) => Err(e),
    }
}
