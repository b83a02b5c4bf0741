//! `pier image inspect|history|tag|rm|prune|save|load`, `pier commit`,
//! `pier diff`, `pier export`, `pier system df`.

use crate::client::{empty, encode, full, Client};
use crate::error::CliError;
use crate::format::{ago, human_size, short_id, table};
use crate::template::Template;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use std::io::{IsTerminal, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Docker exits 1, not 125, when an image or container command fails.
pub fn exit1(mut e: CliError) -> CliError {
    e.code = 1;
    e
}

/// Prints `rows` with a `--format` value: "table TEMPLATE" (a header from
/// `header`, aligned columns), "json" (one JSON object a line) or a plain
/// template (one line per row).
pub fn print_formatted(
    format: &str,
    rows: &[serde_json::Value],
    header: fn(&str) -> String,
) -> Result<(), CliError> {
    let bad = |e: String| CliError::engine(e);
    if format == "json" {
        for r in rows {
            println!("{r}");
        }
        return Ok(());
    }
    if let Some(t) = format.strip_prefix("table") {
        let t = Template::parse(t.trim_start()).map_err(bad)?;
        let mut lines = vec![t
            .header(&header)
            .split('\t')
            .map(str::to_owned)
            .collect::<Vec<_>>()];
        for r in rows {
            lines.push(
                t.render(r)
                    .map_err(bad)?
                    .split('\t')
                    .map(str::to_owned)
                    .collect(),
            );
        }
        print!("{}", table(&lines));
        return Ok(());
    }
    let t = Template::parse(format).map_err(bad)?;
    let mut out = std::io::stdout().lock();
    for r in rows {
        let _ = writeln!(out, "{}", t.render(r).map_err(bad)?);
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn inspect(client: &Client, args: InspectArgs) -> Result<i32, CliError> {
    let mut found = Vec::new();
    let mut code = 0;
    for name in &args.images {
        match client
            .get_json::<serde_json::Value>(&format!("/images/{}/json", encode_path(name)))
            .await
        {
            Ok(v) => found.push(v),
            Err(e) => {
                code = 1;
                eprintln!("{}", e.message);
            }
        }
    }
    match &args.format {
        Some(f) => {
            let t = Template::parse(f).map_err(|e| exit1(CliError::engine(e)))?;
            for v in &found {
                println!("{}", t.render(v).map_err(|e| exit1(CliError::engine(e)))?);
            }
        }
        None => println!("{}", json_indent(&serde_json::Value::Array(found))),
    }
    Ok(code)
}

/// Docker's indented JSON (4 spaces).
fn json_indent(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Names go into the path as they are, slashes included; other unsafe
/// characters are escaped.
fn encode_path(name: &str) -> String {
    name.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    image: String,
}

pub async fn history(client: &Client, args: HistoryArgs) -> Result<i32, CliError> {
    let rows: Vec<serde_json::Value> = client
        .get_json(&format!("/images/{}/history", encode_path(&args.image)))
        .await
        .map_err(exit1)?;
    if args.quiet {
        for r in &rows {
            let id = r["Id"].as_str().unwrap_or_default();
            println!(
                "{}",
                if args.no_trunc || id == "<missing>" {
                    id.to_string()
                } else {
                    short_id(id)
                }
            );
        }
        return Ok(0);
    }
    let out: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let id = r["Id"].as_str().unwrap_or_default();
            let created = r["Created"].as_i64().unwrap_or(0);
            let mut by = r["CreatedBy"].as_str().unwrap_or_default().to_string();
            if !args.no_trunc && by.chars().count() > 45 {
                by = by.chars().take(44).collect::<String>() + "…";
            }
            let size = r["Size"].as_i64().unwrap_or(0);
            serde_json::json!({
                "ID": if args.no_trunc || id == "<missing>" { id.to_string() } else { short_id(id) },
                "CreatedSince": if args.human { ago(created) } else { pier_common::time::rfc3339(created, 0) },
                "CreatedAt": pier_common::time::rfc3339(created, 0),
                "CreatedBy": by,
                "Size": if args.human { human_size(size) } else { size.to_string() },
                "Comment": r["Comment"].as_str().unwrap_or_default(),
            })
        })
        .collect();
    let default = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}";
    print_formatted(
        args.format.as_deref().unwrap_or(default),
        &out,
        |f| match f {
            "ID" => "IMAGE".into(),
            "CreatedSince" => "CREATED".into(),
            "CreatedAt" => "CREATED AT".into(),
            "CreatedBy" => "CREATED BY".into(),
            f => f.to_uppercase(),
        },
    )
    .map_err(exit1)?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

pub async fn tag(client: &Client, args: TagArgs) -> Result<i32, CliError> {
    // repo and tag split after the last '/' as Docker's client does.
    let slash = args.target.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match args.target[slash..].rfind(':') {
        Some(i) => (&args.target[..slash + i], &args.target[slash + i + 1..]),
        None => (args.target.as_str(), ""),
    };
    let mut path = format!(
        "/images/{}/tag?repo={}",
        encode_path(&args.source),
        encode(repo)
    );
    if !tag.is_empty() {
        path.push_str(&format!("&tag={}", encode(tag)));
    }
    client.call(Method::POST, &path).await.map_err(exit1)?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn rmi(client: &Client, args: RmiArgs) -> Result<i32, CliError> {
    let mut code = 0;
    for name in &args.images {
        let mut path = format!("/images/{}", encode_path(name));
        if args.force {
            path.push_str("?force=1");
        }
        let r: Result<Vec<serde_json::Value>, CliError> = async {
            let resp = client.send(Method::DELETE, &path, empty()).await?;
            crate::client::read_json(resp).await
        }
        .await;
        match r {
            Ok(items) => print_deleted(&items, false),
            Err(e) => {
                eprintln!("{}", e.message);
                code = 1;
            }
        }
    }
    Ok(code)
}

fn print_deleted(items: &[serde_json::Value], lower: bool) {
    for i in items {
        if let Some(t) = i["Untagged"].as_str() {
            println!("{}: {t}", if lower { "untagged" } else { "Untagged" });
        }
        if let Some(d) = i["Deleted"].as_str() {
            println!("{}: {d}", if lower { "deleted" } else { "Deleted" });
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

pub async fn prune(client: &Client, args: PruneArgs) -> Result<i32, CliError> {
    if !args.force {
        let what = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !super::prune::ask(&format!(
            "{what}\nAre you sure you want to continue? [y/N] "
        )) {
            return Ok(0);
        }
    }
    let mut filters = args.filter.clone();
    if args.all {
        filters.push("dangling=false".into());
    }
    let q = super::images::filters_query(&filters).map_err(exit1)?;
    let v = super::prune::post(client, "images", &q).await?;
    if let Some(items) = v["ImagesDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted Images:");
        print_deleted(items, true);
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

/// Streams a response body to `-o FILE` or stdout (never a terminal).
async fn body_to_output(
    resp: hyper::Response<hyper::body::Incoming>,
    output: Option<&str>,
    what: &str,
) -> Result<(), CliError> {
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match output {
        Some(f) => Box::new(tokio::fs::File::create(f).await.map_err(|e| {
            exit1(CliError::engine(format!(
                "failed to save {what}: open {f}: {e}"
            )))
        })?),
        None => Box::new(tokio::io::stdout()),
    };
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| exit1(CliError::engine(format!("failed to save {what}: {e}"))))?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data)
                .await
                .map_err(|e| exit1(CliError::engine(format!("failed to save {what}: {e}"))))?;
        }
    }
    out.flush()
        .await
        .map_err(|e| exit1(CliError::engine(format!("failed to save {what}: {e}"))))?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<String>,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn save(client: &Client, args: SaveArgs) -> Result<i32, CliError> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(exit1(CliError::engine(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )));
    }
    let q: Vec<String> = args
        .images
        .iter()
        .map(|n| format!("names={}", encode(n)))
        .collect();
    let resp = client
        .send(
            Method::GET,
            &format!("/images/get?{}", q.join("&")),
            empty(),
        )
        .await
        .map_err(exit1)?;
    let res = body_to_output(resp, args.output.as_deref(), "image").await;
    if res.is_err() {
        if let Some(f) = &args.output {
            let _ = std::fs::remove_file(f);
        }
    }
    res.map(|()| 0)
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

pub async fn load(client: &Client, args: LoadArgs) -> Result<i32, CliError> {
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &args.input {
        Some(f) => Box::new(
            tokio::fs::File::open(f)
                .await
                .map_err(|e| exit1(CliError::engine(format!("open {f}: {e}"))))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(exit1(CliError::engine(
                    "requested load from stdin, but stdin is empty",
                )));
            }
            Box::new(tokio::io::stdin())
        }
    };
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 512 << 10];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    let path = if args.quiet {
        "/images/load?quiet=1"
    } else {
        "/images/load"
    };
    let resp = client
        .send(Method::POST, path, StreamBody::new(stream).boxed_unsync())
        .await
        .map_err(exit1)?;
    // The same streamed JSON messages as pull and push, shown the same way.
    crate::progress::display_response(resp, &crate::progress::Output::stdout(args.quiet)).await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit (accepted; pier does not pause yet)
    #[arg(short, long, default_value = "true", action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

pub async fn commit(client: &Client, args: CommitArgs) -> Result<i32, CliError> {
    let mut path = format!("/commit?container={}", encode(&args.container));
    if let Some(r) = &args.reference {
        let slash = r.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match r[slash..].rfind(':') {
            Some(i) => (&r[..slash + i], &r[slash + i + 1..]),
            None => (r.as_str(), ""),
        };
        path.push_str(&format!("&repo={}", encode(repo)));
        if !tag.is_empty() {
            path.push_str(&format!("&tag={}", encode(tag)));
        }
    }
    if let Some(a) = &args.author {
        path.push_str(&format!("&author={}", encode(a)));
    }
    if let Some(m) = &args.message {
        path.push_str(&format!("&comment={}", encode(m)));
    }
    for c in &args.change {
        path.push_str(&format!("&changes={}", encode(c)));
    }
    let _ = args.pause;
    let resp = client
        .send(Method::POST, &path, full("{}"))
        .await
        .map_err(exit1)?;
    let v: serde_json::Value = crate::client::read_json(resp).await.map_err(exit1)?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    container: String,
}

pub async fn diff(client: &Client, args: DiffArgs) -> Result<i32, CliError> {
    let list: Vec<serde_json::Value> = client
        .get_json(&format!("/containers/{}/changes", encode(&args.container)))
        .await
        .map_err(exit1)?;
    for c in list {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            _ => "D",
        };
        println!("{k} {}", c["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<String>,
    container: String,
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<i32, CliError> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(exit1(CliError::engine(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )));
    }
    let resp = client
        .send(
            Method::GET,
            &format!("/containers/{}/export", encode(&args.container)),
            empty(),
        )
        .await
        .map_err(exit1)?;
    body_to_output(resp, args.output.as_deref(), "container")
        .await
        .map(|()| 0)
}

#[derive(Debug, clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
}

pub async fn df(client: &Client, args: DfArgs) -> Result<i32, CliError> {
    let v: serde_json::Value = client.get_json("/system/df").await.map_err(exit1)?;
    let empty = Vec::new();
    let images = v["Images"].as_array().unwrap_or(&empty);
    let ctrs = v["Containers"].as_array().unwrap_or(&empty);
    let layers = v["LayersSize"].as_i64().unwrap_or(0);
    let active_imgs = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let unused: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) == 0)
        .map(|i| i["Size"].as_i64().unwrap_or(0) - i["SharedSize"].as_i64().unwrap_or(0))
        .sum();
    // As docker's `system df`: sizes with four significant digits
    // (units.HumanSize), where `images` and `ps` show three.
    let size4 = crate::progress::human_size;
    let pct = |part: i64, total: i64| {
        if total > 0 {
            format!("{} ({}%)", size4(part), part * 100 / total)
        } else {
            size4(part)
        }
    };
    let ctr_size: i64 = ctrs.iter().map(|c| c["SizeRw"].as_i64().unwrap_or(0)).sum();
    let ctr_active = ctrs.iter().filter(|c| c["State"] == "running").count();
    let ctr_reclaim: i64 = ctrs
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let vols = v["Volumes"].as_array().unwrap_or(&empty);
    let vol_size_of = |v: &serde_json::Value| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0);
    let vol_in_use = |v: &serde_json::Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0;
    let vol_size: i64 = vols.iter().map(vol_size_of).sum();
    let vol_active = vols.iter().filter(|v| vol_in_use(v)).count();
    let vol_reclaim: i64 = vols
        .iter()
        .filter(|v| !vol_in_use(v))
        .map(vol_size_of)
        .sum();
    let rows = vec![
        serde_json::json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": active_imgs.to_string(),
            "Size": size4(layers), "Reclaimable": pct(unused.min(layers), layers)}),
        serde_json::json!({"Type": "Containers", "TotalCount": ctrs.len().to_string(), "Active": ctr_active.to_string(),
            "Size": size4(ctr_size), "Reclaimable": pct(ctr_reclaim, ctr_size)}),
        serde_json::json!({"Type": "Local Volumes", "TotalCount": vols.len().to_string(), "Active": vol_active.to_string(),
            "Size": size4(vol_size), "Reclaimable": pct(vol_reclaim, vol_size)}),
        serde_json::json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ];
    let default = "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}";
    print_formatted(
        args.format.as_deref().unwrap_or(default),
        &rows,
        |f| match f {
            "TotalCount" => "TOTAL".into(),
            f => f.to_uppercase(),
        },
    )
    .map_err(exit1)?;
    if args.verbose {
        println!("\nImages space usage:\n");
        let mut t = vec![[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .map(String::from)
        .to_vec()];
        for i in images {
            let size = i["Size"].as_i64().unwrap_or(0);
            let shared = i["SharedSize"].as_i64().unwrap_or(0);
            let tags: Vec<String> = i["RepoTags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            let (repo, tag) = tags
                .first()
                .and_then(|t| t.rsplit_once(':'))
                .map(|(r, t)| (r.to_string(), t.to_string()))
                .unwrap_or(("<none>".into(), "<none>".into()));
            t.push(vec![
                repo,
                tag,
                short_id(i["Id"].as_str().unwrap_or_default()),
                ago(i["Created"].as_i64().unwrap_or(0)),
                human_size(size),
                human_size(shared),
                human_size(size - shared),
                i["Containers"].to_string(),
            ]);
        }
        print!("{}", table(&t));
        println!("\nLocal Volumes space usage:\n");
        let mut t = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
        let mut vols: Vec<&serde_json::Value> = vols.iter().collect();
        vols.sort_by_key(|v| v["Name"].as_str().unwrap_or_default().to_string());
        for v in vols {
            t.push(vec![
                v["Name"].as_str().unwrap_or_default().to_string(),
                v["UsageData"]["RefCount"].as_i64().unwrap_or(0).to_string(),
                size4(vol_size_of(v)),
            ]);
        }
        print!("{}", table(&t));
    }
    Ok(0)
}
