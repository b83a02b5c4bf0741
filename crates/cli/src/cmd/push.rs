//! `pier push` / `pier image push`: `POST /images/{name}/push` with the
//! registry's credentials, the daemon's progress shown as docker shows it
//! (ending with `TAG: digest: sha256:... size: N`).

use super::image_ops::exit1;
use super::pull::{registry_auth, ImageRef};
use crate::client::{empty, encode, Client};
use crate::error::CliError;
use crate::progress::{display_response, Output};
use hyper::Method;

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
    let fail = |m: String| exit1(CliError::engine(m));
    let mut reference = ImageRef::parse(&args.name).map_err(fail)?;
    if args.all_tags && !reference.is_name_only() {
        return Err(fail("tag can't be used with --all-tags/-a".into()));
    }
    if !args.all_tags && reference.is_name_only() {
        reference = reference.with_default_tag();
        if !args.quiet {
            println!("Using default tag: latest");
        }
    }
    if reference.digest.is_some() {
        return Err(fail("cannot push a digest reference".into()));
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
            encode(&platform_json(p).map_err(fail)?)
        ));
    }
    let mut path = format!("/images/{}/push", reference.name());
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    let auth = registry_auth(&reference)?;
    let resp = client
        .send_with_headers(Method::POST, &path, &[("X-Registry-Auth", &auth)], empty())
        .await
        .map_err(exit1)?;
    display_response(resp, &Output::stdout(args.quiet)).await?;
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
