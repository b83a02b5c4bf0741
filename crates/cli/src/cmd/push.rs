//! `pier push` / `pier image push`: `POST /images/{name}/push` with the
//! registry's credentials, the daemon's progress shown as docker shows it
//! (ending with `TAG: digest: sha256:... size: N`).

use super::pull::{post_with_progress, transfer_error, transfer_reference};
use crate::client::{encode, Client};
use crate::error::CliError;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Push only this platform's manifest of a multi-platform image
    /// ('os[/arch[/variant]]')
    #[arg(long)]
    platform: Option<String>,
    /// NAME[:TAG]
    name: String,
}

/// `os[/arch[/variant]]` as the JSON object the push endpoint expects.
fn platform_json(p: &str) -> Result<String, String> {
    let parts: Vec<&str> = p.split('/').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "invalid platform {p:?}: expected os[/arch[/variant]], e.g. linux/amd64"
        ));
    }
    let mut v = serde_json::json!({"os": parts[0].to_lowercase()});
    if let Some(arch) = parts.get(1) {
        v["architecture"] = arch.to_lowercase().into();
    }
    if let Some(variant) = parts.get(2) {
        v["variant"] = variant.to_lowercase().into();
    }
    Ok(v.to_string())
}

pub async fn push(client: &Client, args: PushArgs) -> Result<i32, CliError> {
    let reference = transfer_reference(&args.name, args.all_tags, args.quiet)?;
    if reference.digest.is_some() {
        return Err(transfer_error("cannot push a digest reference".into()));
    }
    let mut query = Vec::new();
    if !args.all_tags {
        if let Some(t) = &reference.tag {
            query.push(format!("tag={}", encode(t)));
        }
    }
    if let Some(p) = args.platform.as_deref().filter(|p| !p.is_empty()) {
        query.push(format!(
            "platform={}",
            encode(&platform_json(p).map_err(transfer_error)?)
        ));
    }
    let mut path = format!("/images/{}/push", reference.name());
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    post_with_progress(client, &path, &reference, args.quiet).await?;
    if args.quiet {
        println!("{reference}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_become_the_json_the_api_wants() {
        assert_eq!(platform_json("linux").unwrap(), r#"{"os":"linux"}"#);
        let v: serde_json::Value =
            serde_json::from_str(&platform_json("linux/ARM64/v8").unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        );
        assert!(platform_json("linux//x").is_err());
        assert!(platform_json("a/b/c/d").is_err());
    }
}
