//! `pier inspect` (containers, then images, then volumes, by name or id) and
//! `pier container inspect`: docker's JSON array, or one `--format`
//! template rendering per object.

use crate::client::{encode, Client};
use crate::error::CliError;
use crate::template::Template;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    size: bool,
    /// Return JSON for specified type (container, image or volume)
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

impl From<ContainerInspectArgs> for InspectArgs {
    fn from(a: ContainerInspectArgs) -> Self {
        InspectArgs {
            format: a.format,
            size: a.size,
            kind: Some("container".into()),
            names: a.containers,
        }
    }
}

pub async fn inspect(client: &Client, args: InspectArgs) -> Result<i32, CliError> {
    let exit1 = super::image_ops::exit1;
    let kind = args.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "container" | "image" | "volume") {
        return Err(exit1(CliError::engine(format!(
            "\"{kind}\" is not a valid value for --type: give container, image or volume"
        ))));
    }
    let template = match args.format.as_deref() {
        Some(f) if !f.is_empty() && f != "json" => {
            Some(Template::parse(f).map_err(|e| exit1(CliError::engine(e)))?)
        }
        _ => None,
    };
    let size = if args.size { "?size=1" } else { "" };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        // As docker: without --type, the first kind that has the name.
        let candidates = [
            (
                "container",
                format!("/containers/{}/json{size}", encode(name)),
            ),
            ("image", format!("/images/{}/json", encode_path(name))),
            ("volume", format!("/volumes/{}", encode(name))),
        ];
        let mut got = Err(format!("Error: No such object: {name}"));
        for (_, path) in candidates
            .iter()
            .filter(|(k, _)| kind.is_empty() || *k == kind)
        {
            match client.get_json::<serde_json::Value>(path).await {
                Ok(v) => {
                    got = Ok(v);
                    break;
                }
                Err(e) if e.status == Some(404) && kind.is_empty() => continue,
                Err(e) => {
                    got = Err(e.message);
                    break;
                }
            }
        }
        match got {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                let line = t.render(v).map_err(|e| exit1(CliError::engine(e)))?;
                println!("{line}");
            }
        }
        None => println!("{}", json_indent(&serde_json::Value::Array(found))),
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(i32::from(!errors.is_empty()))
}

/// Docker's indented JSON (4 spaces).
fn json_indent(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Image names go into the path with their slashes.
fn encode_path(name: &str) -> String {
    name.split('/').map(encode).collect::<Vec<_>>().join("/")
}
