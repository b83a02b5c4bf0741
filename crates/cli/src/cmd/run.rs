//! `pier run`: create, attach, wait, start, stream the output, exit with
//! the container's exit code (the order the Docker CLI uses, so that no
//! output and no exit is missed).

use crate::client::Client;
use crate::error::CliError;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::json;

use super::container_flags::ContainerFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    let (mut rd, mut wr) = tokio::io::split(stream);
    let input = interactive.then(|| {
        tokio::spawn(async move {
            let mut local = tokio::io::stdin();
            let _ = tokio::io::copy(&mut local, &mut wr).await;
            let _ = wr.shutdown().await;
        })
    });
    demux(&mut rd).await;
    if let Some(input) = input {
        input.abort();
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

/// Splits Docker's multiplexed stream onto our stdout and stderr.
pub async fn demux<R: tokio::io::AsyncRead + Unpin>(rd: &mut R) {
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 << 10];
    loop {
        if rd.read_exact(&mut header).await.is_err() {
            break;
        }
        let mut len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while len > 0 {
            let n = len.min(buf.len());
            if rd.read_exact(&mut buf[..n]).await.is_err() {
                return;
            }
            let _ = match header[0] {
                2 => err.write_all(&buf[..n]).await,
                _ => out.write_all(&buf[..n]).await,
            };
            len -= n;
        }
        let _ = out.flush().await;
        let _ = err.flush().await;
    }
}
