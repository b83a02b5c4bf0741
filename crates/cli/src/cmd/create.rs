//! `pier create`: creates a container from the flags `run` takes, prints
//! its ID, and starts nothing.

use super::container_flags::ContainerFlags;
use super::run::create_container;
use crate::client::Client;
use crate::error::CliError;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    flags: ContainerFlags,
    /// Image to create the container from
    image: String,
    /// Command and arguments
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

pub async fn create(client: &Client, args: CreateArgs) -> Result<i32, CliError> {
    let mut body = args.flags.create_body(&args.image, &args.command)?;
    // As `docker create` without -a: attached to stdout and stderr once
    // started with `start -a`, and to stdin with -i.
    body["AttachStdin"] = serde_json::json!(args.flags.interactive);
    body["AttachStdout"] = serde_json::json!(true);
    body["AttachStderr"] = serde_json::json!(true);
    body["StdinOnce"] = serde_json::json!(args.flags.interactive);
    let created = create_container(client, &args.flags.create_path(), &body, &args.image).await?;
    println!("{}", created["Id"].as_str().unwrap_or_default());
    Ok(0)
}
