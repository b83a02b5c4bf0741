//! `pier volume create|ls|inspect|rm|prune`: one Docker Engine API call
//! each (`/volumes...`), printed as the docker 28 CLI prints them. Errors
//! from the daemon exit 1, as docker's volume commands do; a bad flag
//! value exits 125 before anything is sent.

mod ls;

pub use ls::{natural_cmp, LsArgs};

use super::image_ops::exit1;
use crate::client::{encode, full, Client};
use crate::error::CliError;
use crate::format::human_size;
use crate::template::Template;
use hyper::Method;
use serde_json::{json, Map, Value};
use std::io::Write;

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Specify volume name
    #[arg(long = "name", value_name = "NAME")]
    name_flag: Option<String>,
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set driver specific options (KEY=VALUE)
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    opt: Vec<String>,
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Name of the volume (a random one when none is given)
    #[arg(value_name = "VOLUME")]
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template (or "json")
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

pub async fn run(client: &Client, cmd: VolumeCommand) -> Result<i32, CliError> {
    match cmd {
        VolumeCommand::Create(a) => create(client, a).await,
        VolumeCommand::Ls(a) => ls::ls(client, a).await,
        VolumeCommand::Inspect(a) => inspect(client, a).await,
        VolumeCommand::Rm(a) => rm(client, a).await,
        VolumeCommand::Prune(a) => prune(client, a).await,
    }
}

/// Docker's message for a flag value it cannot take (exit 125).
fn bad_flag(value: &str, flag: &str, why: &str) -> CliError {
    CliError::engine(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// `--label` values as the Docker CLI checks them (a name, no whitespace
/// in it) and their map.
pub fn labels(flags: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    for l in flags {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.trim().is_empty() {
            return Err(bad_flag(
                l,
                "--label",
                &format!("invalid label '{l}': empty name"),
            ));
        }
        if k.contains(char::is_whitespace) {
            return Err(bad_flag(
                l,
                "--label",
                &format!("label '{k}' contains whitespaces"),
            ));
        }
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

/// The `POST /volumes/create` body, as the docker CLI sends it: Name and
/// DriverOpts/Labels only when given.
pub fn create_body(args: &CreateArgs) -> Result<Value, CliError> {
    let name = match (&args.name, &args.name_flag) {
        (Some(_), Some(_)) => {
            return Err(exit1(CliError::engine(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            )))
        }
        (Some(n), None) | (None, Some(n)) => Some(n),
        (None, None) => None,
    };
    let mut body = Map::new();
    body.insert("Driver".into(), json!(args.driver));
    if let Some(n) = name {
        body.insert("Name".into(), json!(n));
    }
    if !args.opt.is_empty() {
        let mut opts = Map::new();
        for o in &args.opt {
            let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
            opts.insert(k.to_string(), json!(v));
        }
        body.insert("DriverOpts".into(), Value::Object(opts));
    }
    let labels = labels(&args.label)?;
    if !labels.is_empty() {
        body.insert("Labels".into(), Value::Object(labels));
    }
    Ok(Value::Object(body))
}

async fn create(client: &Client, args: CreateArgs) -> Result<i32, CliError> {
    let body = create_body(&args)?;
    let resp = client
        .send(Method::POST, "/volumes/create", full(body.to_string()))
        .await
        .map_err(exit1)?;
    let v: Value = crate::client::read_json(resp).await.map_err(exit1)?;
    println!("{}", v["Name"].as_str().unwrap_or_default());
    Ok(0)
}

/// Docker's indented JSON (4 spaces).
fn json_indent(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

async fn inspect(client: &Client, args: InspectArgs) -> Result<i32, CliError> {
    let template = match args.format.as_deref() {
        Some(f) if !f.is_empty() && f != "json" => {
            Some(Template::parse(f).map_err(|e| exit1(CliError::engine(e)))?)
        }
        _ => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.volumes {
        match client
            .get_json::<Value>(&format!("/volumes/{}", encode(name)))
            .await
        {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e.message),
        }
    }
    match (&template, args.format.as_deref()) {
        (Some(t), _) => {
            let mut out = std::io::stdout().lock();
            for v in &found {
                let line = t.render(v).map_err(|e| exit1(CliError::engine(e)))?;
                let _ = writeln!(out, "{line}");
            }
        }
        (None, Some("json")) => println!("{}", Value::Array(found)),
        (None, _) => println!("{}", json_indent(&Value::Array(found))),
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(i32::from(!errors.is_empty()))
}

async fn rm(client: &Client, args: RmArgs) -> Result<i32, CliError> {
    let mut errors = Vec::new();
    for name in &args.volumes {
        let mut path = format!("/volumes/{}", encode(name));
        if args.force {
            path.push_str("?force=1");
        }
        match client.call(Method::DELETE, &path).await {
            Ok(_) => println!("{name}"),
            Err(e) => errors.push(e.message),
        }
    }
    // As docker: the errors together, after the names that went.
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(i32::from(!errors.is_empty()))
}

/// The prompt `volume prune` shows without `-f` (docker 28's text).
pub fn prune_warning(all: bool) -> &'static str {
    if all {
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    }
}

async fn prune(client: &Client, args: PruneArgs) -> Result<i32, CliError> {
    let mut filters_list = args.filter.clone();
    if args.all {
        if filters_list
            .iter()
            .any(|f| f.split('=').next().map(str::trim) == Some("all"))
        {
            return Err(exit1(CliError::engine(
                "conflicting options: cannot specify both --all and --filter all=1",
            )));
        }
        filters_list.push("all=true".into());
    }
    let q = ls::filters(&filters_list, "--filter")?;
    if !args.force && !super::prune::ask(prune_warning(args.all)) {
        return Ok(0);
    }
    let v = super::prune::post(client, "volumes", &q).await?;
    let mut reclaimed = 0;
    if let Some(names) = v["VolumesDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted Volumes:");
        for n in names {
            println!("{}", n.as_str().unwrap_or_default());
        }
        println!();
        reclaimed = v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_args(argv: &[&str]) -> CreateArgs {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: CreateArgs,
        }
        let mut all = vec!["create"];
        all.extend_from_slice(argv);
        <P as clap::Parser>::try_parse_from(all).unwrap().a
    }

    #[test]
    fn create_body_as_the_docker_cli_sends_it() {
        assert_eq!(
            create_body(&create_args(&[])).unwrap(),
            json!({"Driver": "local"})
        );
        assert_eq!(
            create_body(&create_args(&[
                "v1",
                "--label",
                "a=b",
                "--label",
                "c",
                "-o",
                "type=tmpfs",
                "--opt",
                "o=a=b",
                "-o",
                "flag"
            ]))
            .unwrap(),
            json!({"Driver": "local", "Name": "v1", "Labels": {"a": "b", "c": ""},
                   "DriverOpts": {"type": "tmpfs", "o": "a=b", "flag": ""}})
        );
        assert_eq!(
            create_body(&create_args(&["--name", "v2", "-d", "other"])).unwrap(),
            json!({"Driver": "other", "Name": "v2"})
        );
        let e = create_body(&create_args(&["v3", "--name", "v4"])).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.code),
            (
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
                1
            )
        );
        let e = create_body(&create_args(&["--label", "a b=c"])).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.code),
            (
                "invalid argument \"a b=c\" for \"--label\" flag: label 'a b' contains whitespaces",
                125
            )
        );
        assert_eq!(
            create_body(&create_args(&["--label", "=c"]))
                .unwrap_err()
                .message,
            "invalid argument \"=c\" for \"--label\" flag: invalid label '=c': empty name"
        );
    }

    #[test]
    fn only_y_confirms_as_docker() {
        let confirmed = crate::cmd::prune::confirmed;
        assert!(confirmed("y\n") && confirmed(" Y \n"));
        assert!(!confirmed("yes\n") && !confirmed("n\n") && !confirmed(""));
    }

    #[test]
    fn prune_prompts_with_dockers_text() {
        assert_eq!(
            prune_warning(false),
            "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
        );
        assert!(prune_warning(true).starts_with(
            "WARNING! This will remove all local volumes not used by at least one container.\n"
        ));
    }
}
