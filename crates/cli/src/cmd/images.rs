//! `pier images`, `pier image import`.

use crate::client::{encode, Body, Client};
use crate::error::CliError;
use crate::format::{ago, human_size, short_id, table};
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
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
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
    let list: Vec<serde_json::Value> = client.get_json("/images/json").await?;
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
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
    for img in &list {
        let tags: Vec<String> = img["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .filter(|t| t != "<none>:<none>")
            .collect();
        let created = ago(img["Created"].as_i64().unwrap_or(0));
        let size = human_size(img["Size"].as_i64().unwrap_or(0));
        let pairs = if tags.is_empty() {
            vec![("<none>".to_string(), "<none>".to_string())]
        } else {
            tags.iter().map(|t| split_tag(t)).collect()
        };
        for (repo, tag) in pairs {
            rows.push(vec![repo, tag, id(img), created.clone(), size.clone()]);
        }
    }
    print!("{}", table(&rows));
    Ok(0)
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
async fn file_body(file: &str) -> Result<Body, CliError> {
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
