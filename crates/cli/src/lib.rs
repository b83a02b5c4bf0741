//! `pier`: the docker-compatible command line. It keeps no state; every
//! command is a Docker Engine API call to pierd, which it starts on demand.

pub mod client;
mod cmd;
pub mod credentials;
pub mod error;
pub mod format;
pub mod progress;
pub mod template;
pub mod tty;

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
    /// Build an image from a Dockerfile
    Build(cmd::build::BuildArgs),
    /// Create a new container
    Create(cmd::create::CreateArgs),
    /// Execute a command in a running container
    Exec(cmd::exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(cmd::attach::AttachArgs),
    /// List containers
    Ps(cmd::ps::PsArgs),
    /// Fetch the logs of a container
    Logs(cmd::logs::LogsArgs),
    /// Return low-level information on Docker objects
    Inspect(cmd::inspect::InspectArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Remove one or more containers
    Rm(cmd::lifecycle::RmArgs),
    /// Start one or more stopped containers
    Start(cmd::lifecycle::StartArgs),
    /// Stop one or more running containers
    Stop(cmd::lifecycle::StopArgs),
    /// Restart one or more containers
    Restart(cmd::lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(cmd::lifecycle::KillArgs),
    /// Pause all processes within one or more containers
    Pause(cmd::lifecycle::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(cmd::lifecycle::ContainersArgs),
    /// Rename a container
    Rename(cmd::lifecycle::RenameArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(cmd::lifecycle::ContainersArgs),
    /// Get real time events from the server
    Events(cmd::events::EventsArgs),
    /// List images
    Images(cmd::images::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd::images::ImportArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show the history of an image
    History(cmd::image_ops::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd::image_ops::TagArgs),
    /// Remove one or more images
    Rmi(cmd::image_ops::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(cmd::image_ops::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(cmd::image_ops::LoadArgs),
    /// Create a new image from a container's changes
    Commit(cmd::image_ops::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(cmd::image_ops::DiffArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cmd::cp::CpArgs),
    /// Display the running processes of a container
    Top(cmd::top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(cmd::stats::StatsArgs),
    /// Export a container's filesystem as a tar archive
    Export(cmd::image_ops::ExportArgs),
    /// Download an image from a registry
    Pull(cmd::pull::PullArgs),
    /// Upload an image to a registry
    Push(cmd::push::PushArgs),
    /// Authenticate to a registry
    Login(cmd::login::LoginArgs),
    /// Log out from a registry
    Logout(cmd::login::LogoutArgs),
    /// Display system-wide information
    Info,
    /// Run an image registry (OCI distribution) or collect its garbage
    #[command(subcommand)]
    Registry(cmd::registry::RegistryCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(cmd::volume::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(cmd::network::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(cmd::port::PortArgs),
    /// Manage pier
    #[command(subcommand)]
    System(SystemCommand),
    /// Show the pier version information
    Version,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(cmd::build::BuildArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd::images::ImportArgs),
    /// List images
    #[command(alias = "list")]
    Ls(cmd::images::ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(cmd::image_ops::InspectArgs),
    /// Show the history of an image
    History(cmd::image_ops::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd::image_ops::TagArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(cmd::image_ops::RmiArgs),
    /// Remove unused images
    Prune(cmd::image_ops::PruneArgs),
    /// Save one or more images to a tar archive
    Save(cmd::image_ops::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(cmd::image_ops::LoadArgs),
    /// Download an image from a registry
    Pull(cmd::pull::PullArgs),
    /// Upload an image to a registry
    Push(cmd::push::PushArgs),
}

#[derive(Debug, Subcommand)]
enum ContainerCommand {
    /// Create and run a new container from an image
    Run(cmd::run::RunArgs),
    /// Create a new container
    Create(cmd::create::CreateArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(cmd::lifecycle::RmArgs),
    /// Start one or more stopped containers
    Start(cmd::lifecycle::StartArgs),
    /// Stop one or more running containers
    Stop(cmd::lifecycle::StopArgs),
    /// Restart one or more containers
    Restart(cmd::lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(cmd::lifecycle::KillArgs),
    /// Pause all processes within one or more containers
    Pause(cmd::lifecycle::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(cmd::lifecycle::ContainersArgs),
    /// Rename a container
    Rename(cmd::lifecycle::RenameArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(cmd::lifecycle::ContainersArgs),
    /// List containers
    #[command(aliases = ["ps", "list"])]
    Ls(cmd::ps::PsArgs),
    /// Fetch the logs of a container
    Logs(cmd::logs::LogsArgs),
    /// Display detailed information on one or more containers
    Inspect(cmd::inspect::ContainerInspectArgs),
    /// Remove all stopped containers
    Prune(cmd::prune::PruneArgs),
    /// List port mappings or a specific mapping for the container
    Port(cmd::port::PortArgs),
}

#[derive(Debug, Subcommand)]
enum SystemCommand {
    /// Get real time events from the server
    Events(cmd::events::EventsArgs),
    /// Display system-wide information
    Info,
    /// Show docker disk usage
    Df(cmd::image_ops::DfArgs),
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
        Command::Run(args) | Command::Container(ContainerCommand::Run(args)) => {
            cmd::run::run(&client, args).await
        }
        Command::Create(args) | Command::Container(ContainerCommand::Create(args)) => {
            cmd::create::create(&client, args).await
        }
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => {
            cmd::build::build(&client, a).await
        }
        Command::Exec(args) => cmd::exec::exec(&client, args).await,
        Command::Attach(args) => cmd::attach::attach(&client, args).await,
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => {
            cmd::ps::ps(&client, args).await
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            cmd::logs::logs(&client, a).await
        }
        Command::Inspect(a) => cmd::inspect::inspect(&client, a).await,
        Command::Container(ContainerCommand::Inspect(a)) => {
            cmd::inspect::inspect(&client, a.into()).await
        }
        Command::Container(ContainerCommand::Prune(a)) => cmd::prune::prune(&client, a).await,
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            cmd::lifecycle::rm(&client, a).await
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            cmd::lifecycle::start(&client, a).await
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            cmd::lifecycle::stop(&client, a).await
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            cmd::lifecycle::restart(&client, a).await
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            cmd::lifecycle::kill(&client, a).await
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            cmd::lifecycle::pause(&client, a).await
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            cmd::lifecycle::unpause(&client, a).await
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            cmd::lifecycle::rename(&client, a).await
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            cmd::lifecycle::wait(&client, a).await
        }
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            cmd::events::events(&client, a).await
        }
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            cmd::images::images(&client, args).await
        }
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            cmd::images::import(&client, args).await
        }
        Command::Image(ImageCommand::Inspect(a)) => cmd::image_ops::inspect(&client, a).await,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            cmd::image_ops::history(&client, a).await
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => {
            cmd::image_ops::tag(&client, a).await
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            cmd::image_ops::rmi(&client, a).await
        }
        Command::Image(ImageCommand::Prune(a)) => cmd::image_ops::prune(&client, a).await,
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            cmd::image_ops::save(&client, a).await
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            cmd::image_ops::load(&client, a).await
        }
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            cmd::pull::pull(&client, a).await
        }
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => {
            cmd::push::push(&client, a).await
        }
        Command::Login(a) => cmd::login::login(&client, a).await,
        Command::Logout(a) => cmd::login::logout(a).await,
        Command::Commit(a) => cmd::image_ops::commit(&client, a).await,
        Command::Diff(a) => cmd::image_ops::diff(&client, a).await,
        Command::Cp(a) => cmd::cp::cp(&client, a).await,
        Command::Top(a) => cmd::top::top(&client, a).await,
        Command::Stats(a) => cmd::stats::stats(&client, a).await,
        Command::Export(a) => cmd::image_ops::export(&client, a).await,
        Command::Registry(c) => cmd::registry::run(c).await,
        Command::Volume(c) => cmd::volume::run(&client, c).await,
        Command::Network(c) => cmd::network::run(&client, c).await,
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            cmd::port::port(&client, a).await
        }
        Command::System(SystemCommand::Df(a)) => cmd::image_ops::df(&client, a).await,
        Command::Info | Command::System(SystemCommand::Info) => cmd::system::info(&client).await,
        Command::Version => cmd::system::version(&client).await,
    }
}

#[cfg(test)]
mod cli_tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
