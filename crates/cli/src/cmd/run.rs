//! `pier run`: create, attach, wait, start, stream the output, exit with
//! the container's exit code (the order the Docker CLI uses, so that no
//! output and no exit is missed).

use crate::client::{encode, Client};
use crate::error::CliError;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass the local value)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Container host name
    #[arg(long)]
    hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Image to run
    image: String,
    /// Command and arguments
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `-e KEY` takes KEY's value from the local environment, as Docker does.
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

pub async fn run(client: &Client, args: RunArgs) -> Result<i32, CliError> {
    let body = json!({
        "Image": args.image,
        "Cmd": if args.command.is_empty() { None } else { Some(&args.command) },
        "Entrypoint": args.entrypoint.as_ref().map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] }),
        "Env": env_list(&args.env),
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "User": args.user.clone().unwrap_or_default(),
        "Hostname": args.hostname.clone().unwrap_or_default(),
        "AttachStdin": args.interactive && !args.detach,
        "AttachStdout": !args.detach,
        "AttachStderr": !args.detach,
        "OpenStdin": args.interactive,
        "StdinOnce": args.interactive && !args.detach,
        "Tty": false,
        "HostConfig": { "AutoRemove": args.rm, "NetworkMode": "none" },
    });
    let path = match &args.name {
        Some(n) => format!("/containers/create?name={}", encode(n)),
        None => "/containers/create".to_string(),
    };
    let created: serde_json::Value = match client.post_json(&path, &body).await {
        Ok(v) => v,
        Err(e) if e.status == Some(404) && e.message.contains("No such image") => {
            eprintln!("Unable to find image '{}' locally", args.image);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let id = created["Id"].as_str().unwrap_or_default().to_string();

    if args.detach {
        client
            .call(Method::POST, &format!("/containers/{id}/start"))
            .await
            .map_err(CliError::with_start_code)?;
        println!("{id}");
        return Ok(0);
    }

    let stdin = if args.interactive { "1" } else { "0" };
    let stream = client
        .upgrade(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={stdin}"
        ))
        .await?;
    let condition = if args.rm { "removed" } else { "next-exit" };
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
    let input = args.interactive.then(|| {
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
