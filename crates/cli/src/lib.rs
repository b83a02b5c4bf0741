//! `pier`: the docker-compatible command line. It keeps no state; every
//! command is a Docker Engine API call to pierd, which it starts on demand.

pub mod client;
mod cmd;
pub mod error;
pub mod format;

use clap::{Parser, Subcommand};
use client::{Client, Endpoint};
use error::CliError;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pier",
    version,
    about = "pier: a container engine that speaks Docker",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket (unix:///path); default EXEC_ROOT/pier.sock.
    #[arg(short = 'H', long, env = "PIER_HOST", global = true)]
    host: Option<String>,
    /// Data root for a pierd this command starts.
    #[arg(
        long,
        env = "PIER_DATA_ROOT",
        default_value = "/var/lib/pier",
        global = true
    )]
    data_root: PathBuf,
    /// Exec root for a pierd this command starts.
    #[arg(
        long,
        env = "PIER_EXEC_ROOT",
        default_value = "/run/pier",
        global = true
    )]
    exec_root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run(cmd::run::RunArgs),
    /// List containers
    Ps(cmd::containers::PsArgs),
    /// Remove one or more containers
    Rm(cmd::containers::RmArgs),
    /// List images
    Images(cmd::images::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd::images::ImportArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Display system-wide information
    Info,
    /// Manage pier
    #[command(subcommand)]
    System(SystemCommand),
    /// Show the pier version information
    Version,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd::images::ImportArgs),
    /// List images
    #[command(alias = "list")]
    Ls(cmd::images::ImagesArgs),
}

#[derive(Debug, Subcommand)]
enum SystemCommand {
    /// Display system-wide information
    Info,
}

/// Entry point of the `pier` binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pier: starting: {e}");
            return 125;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pier: {e}");
            e.code
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let socket = match &cli.host {
        Some(h) => client::socket_from_host(h).to_path_buf(),
        None => cli.exec_root.join("pier.sock"),
    };
    let client = Client::new(Endpoint {
        socket,
        data_root: cli.data_root.clone(),
        exec_root: cli.exec_root.clone(),
        autostart: true,
    });
    match cli.command {
        Command::Run(args) => cmd::run::run(&client, args).await,
        Command::Ps(args) => cmd::containers::ps(&client, args).await,
        Command::Rm(args) => cmd::containers::rm(&client, args).await,
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            cmd::images::images(&client, args).await
        }
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            cmd::images::import(&client, args).await
        }
        Command::Info | Command::System(SystemCommand::Info) => cmd::system::info(&client).await,
        Command::Version => cmd::system::version(&client).await,
    }
}
