//! `pier start`, `stop`, `kill`, `restart`, `pause`, `unpause`, `rename`,
//! `wait`, `rm`: one API call per container; names echoed on success and
//! errors reported per container, as the Docker CLI does (exit 1 if any
//! container failed).

use crate::client::{encode, Client};
use crate::error::CliError;
use http_body_util::BodyExt;
use hyper::Method;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        allow_hyphen_values = true
    )]
    timeout: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    /// Remove the specified link
    #[arg(short, long)]
    link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Runs `call` for each container: its name on stdout when it worked, the
/// daemon's error on stderr when not; 1 if any failed.
async fn each<F, Fut>(containers: &[String], call: F) -> i32
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let mut code = 0;
    for name in containers {
        match call(name.clone()).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    code
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

async fn post(client: &Client, path: String) -> Result<(), CliError> {
    client.call(Method::POST, &path).await.map(|_| ())
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<i32, CliError> {
    let q = query(&[
        ("t", args.timeout.map(|t| t.to_string())),
        ("signal", args.signal.clone()),
    ]);
    Ok(each(&args.containers, |c| {
        post(client, format!("/containers/{}/stop{q}", encode(&c)))
    })
    .await)
}

pub async fn restart(client: &Client, args: StopArgs) -> Result<i32, CliError> {
    let q = query(&[
        ("t", args.timeout.map(|t| t.to_string())),
        ("signal", args.signal.clone()),
    ]);
    Ok(each(&args.containers, |c| {
        post(client, format!("/containers/{}/restart{q}", encode(&c)))
    })
    .await)
}

pub async fn kill(client: &Client, args: KillArgs) -> Result<i32, CliError> {
    let q = query(&[("signal", args.signal.clone())]);
    Ok(each(&args.containers, |c| {
        post(client, format!("/containers/{}/kill{q}", encode(&c)))
    })
    .await)
}

pub async fn pause(client: &Client, args: ContainersArgs) -> Result<i32, CliError> {
    Ok(each(&args.containers, |c| {
        post(client, format!("/containers/{}/pause", encode(&c)))
    })
    .await)
}

pub async fn unpause(client: &Client, args: ContainersArgs) -> Result<i32, CliError> {
    Ok(each(&args.containers, |c| {
        post(client, format!("/containers/{}/unpause", encode(&c)))
    })
    .await)
}

pub async fn rename(client: &Client, args: RenameArgs) -> Result<i32, CliError> {
    let new = args.new_name.trim();
    if new.is_empty() {
        return Err(CliError {
            message: "Error: Neither old nor new names may be empty".into(),
            code: 1,
            status: None,
        });
    }
    let renamed = post(
        client,
        format!(
            "/containers/{}/rename?name={}",
            encode(&args.container),
            encode(new)
        ),
    )
    .await;
    match renamed {
        Ok(()) => Ok(0),
        Err(e) => {
            // As docker: the daemon's error, then which rename failed.
            eprintln!("{e}");
            eprintln!("Error: failed to rename container named {}", args.container);
            Ok(1)
        }
    }
}

pub async fn rm(client: &Client, args: RmArgs) -> Result<i32, CliError> {
    let q = format!(
        "?force={}&v={}&link={}",
        u8::from(args.force),
        u8::from(args.volumes),
        u8::from(args.link)
    );
    let mut code = 0;
    for name in &args.containers {
        let path = format!("/containers/{}{q}", encode(name));
        match client.call(Method::DELETE, &path).await {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                // As docker: with --force, a container that does not exist
                // is reported but is no failure.
                if !(args.force && e.status == Some(404)) {
                    code = 1;
                }
            }
        }
    }
    Ok(code)
}

/// Sends `POST /containers/{id}/wait`: the daemon answers the headers at
/// once and the body when the condition holds.
async fn wait_request(
    client: &Client,
    id: &str,
    condition: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, CliError> {
    client
        .send(
            Method::POST,
            &format!("/containers/{}/wait?condition={condition}", encode(id)),
            crate::client::empty(),
        )
        .await
}

/// The exit code a wait answered.
async fn wait_result(
    resp: hyper::Response<hyper::body::Incoming>,
    id: &str,
) -> Result<i64, CliError> {
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::engine(format!("waiting for container {id}: {e}")))?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| CliError::engine(format!("waiting for container {id}: {e}")))?;
    if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(CliError::engine(msg.to_string()));
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(-1))
}

async fn wait_code(client: &Client, id: &str, condition: &str) -> Result<i64, CliError> {
    let resp = wait_request(client, id, condition).await?;
    wait_result(resp, id).await
}

/// `pier wait`: each container's exit code, one per line.
pub async fn wait(client: &Client, args: ContainersArgs) -> Result<i32, CliError> {
    let mut code = 0;
    for name in &args.containers {
        match wait_code(client, name, "not-running").await {
            Ok(c) => println!("{c}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `pier start`: starts each container and echoes its name; with `-a`
/// (one container only) attaches first and exits with its exit code.
pub async fn start(client: &Client, args: StartArgs) -> Result<i32, CliError> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            return Err(CliError::engine(
                "you cannot start and attach multiple containers at once",
            ));
        }
        return start_attached(client, &args.containers[0], args.interactive).await;
    }
    let mut failed = Vec::new();
    for name in &args.containers {
        match post(client, format!("/containers/{}/start", encode(name))).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(name.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
        Ok(1)
    }
}

async fn start_attached(client: &Client, name: &str, stdin: bool) -> Result<i32, CliError> {
    let info: serde_json::Value = client
        .get_json(&format!("/containers/{}/json", encode(name)))
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let stream = client
        .upgrade(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}",
            u8::from(stdin)
        ))
        .await?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let waiter = wait_request(client, &id, condition).await?;
    post(client, format!("/containers/{id}/start"))
        .await
        .map_err(CliError::with_start_code)?;
    let resize = format!("/containers/{id}/resize");
    if crate::tty::pump(
        client,
        stream,
        stdin,
        tty,
        Some(resize),
        crate::tty::DEFAULT_DETACH_KEYS,
    )
    .await
        == crate::tty::Ended::Detached
    {
        return Ok(0);
    }
    wait_result(waiter, &id).await.map(|c| c as i32)
}
