//! `pier images`, `pier image import`.

use crate::client::{encode, Body, Client};
use crate::error::CliError;
use crate::format::{ago, human_size, short_id};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use tokio::io::AsyncReadExt;

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (reference=, dangling=,
    /// before=, since=, label=)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template (or "table ...", "json")
    #[arg(long)]
    format: Option<String>,
    /// Show only images matching REPOSITORY[:TAG]
    repository: Option<String>,
}

/// Docker's `filters` query value from `-f key=value` flags.
pub fn filters_query(flags: &[String]) -> Result<String, CliError> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in flags {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| CliError::engine(format!("invalid filter '{f}': give key=value")))?;
        m.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    if m.is_empty() {
        return Ok(String::new());
    }
    Ok(encode(&serde_json::to_string(&m).unwrap_or_default()))
}

/// "busybox:latest" -> ("busybox", "latest"); the tag follows the last ':'
/// after the last '/'.
fn split_tag(repo_tag: &str) -> (String, String) {
    let slash = repo_tag.rfind('/').map_or(0, |i| i + 1);
    match repo_tag[slash..].rfind(':') {
        Some(i) => (
            repo_tag[..slash + i].to_string(),
            repo_tag[slash + i + 1..].to_string(),
        ),
        None => (repo_tag.to_string(), "latest".to_string()),
    }
}

pub async fn images(client: &Client, args: ImagesArgs) -> Result<i32, CliError> {
    let mut filters = args.filter.clone();
    if let Some(r) = &args.repository {
        filters.push(format!("reference={r}"));
    }
    let mut path = "/images/json?digests=1".to_string();
    if args.all {
        path.push_str("&all=1");
    }
    let q = filters_query(&filters).map_err(super::image_ops::exit1)?;
    if !q.is_empty() {
        path.push_str(&format!("&filters={q}"));
    }
    let list: Vec<serde_json::Value> = client
        .get_json(&path)
        .await
        .map_err(super::image_ops::exit1)?;
    let id = |v: &serde_json::Value| {
        let id = v["Id"].as_str().unwrap_or_default();
        if args.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        }
    };
    if args.quiet {
        let mut seen = Vec::new();
        for img in &list {
            let i = id(img);
            if !seen.contains(&i) {
                println!("{i}");
                seen.push(i);
            }
        }
        return Ok(0);
    }
    // One row per tag (one <none> row for an untagged image), as Docker.
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for img in &list {
        let tags: Vec<String> = img["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .filter(|t| t != "<none>:<none>")
            .collect();
        let digests: Vec<String> = img["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let pairs = if tags.is_empty() {
            vec![("<none>".to_string(), "<none>".to_string())]
        } else {
            tags.iter().map(|t| split_tag(t)).collect()
        };
        let created = img["Created"].as_i64().unwrap_or(0);
        for (repo, tag) in pairs {
            let digest = digests
                .iter()
                .find(|d| d.split('@').next() == Some(repo.as_str()))
                .and_then(|d| d.split('@').nth(1))
                .unwrap_or("<none>")
                .to_string();
            rows.push(serde_json::json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id(img),
                "Digest": digest,
                "CreatedSince": ago(created),
                "CreatedAt": pier_common::time::rfc3339(created, 0),
                "Size": human_size(img["Size"].as_i64().unwrap_or(0)),
                "Containers": "N/A",
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "VirtualSize": human_size(img["Size"].as_i64().unwrap_or(0)),
            }));
        }
    }
    let default = if args.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    super::image_ops::print_formatted(
        args.format.as_deref().unwrap_or(default),
        &rows,
        image_header,
    )
    .map_err(super::image_ops::exit1)?;
    Ok(0)
}

/// Docker's column titles for `images` fields.
fn image_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "VirtualSize" => "SIZE".into(),
        "SharedSize" => "SHARED SIZE".into(),
        "UniqueSize" => "UNIQUE SIZE".into(),
        f => f.to_uppercase(),
    }
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Root filesystem tarball (plain, gzip or zstd), or - for stdin
    file: String,
    /// Name of the new image: REPOSITORY[:TAG]
    reference: Option<String>,
}

pub async fn import(client: &Client, args: ImportArgs) -> Result<i32, CliError> {
    let mut path = "/images/create?fromSrc=-".to_string();
    if let Some(r) = &args.reference {
        path.push_str(&format!("&repo={}", encode(r)));
    }
    if let Some(m) = &args.message {
        path.push_str(&format!("&message={}", encode(m)));
    }
    let body = file_body(&args.file).await?;
    let resp = client.send(Method::POST, &path, body).await?;
    let v: serde_json::Value = crate::client::read_json(resp).await?;
    println!("{}", v["status"].as_str().unwrap_or_default());
    Ok(0)
}

/// Streams a file (or stdin) as a request body, without loading it whole.
pub async fn file_body(file: &str) -> Result<Body, CliError> {
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if file == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(tokio::fs::File::open(file).await.map_err(|e| {
            CliError::engine(format!(
                "open {file}: {e}: give the path of a root filesystem tarball"
            ))
        })?)
    };
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 256 << 10];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    Ok(StreamBody::new(stream).boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("busybox:latest"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_tag("localhost:5000/a/b:v1"),
            ("localhost:5000/a/b".into(), "v1".into())
        );
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a".into(), "latest".into())
        );
    }
}
