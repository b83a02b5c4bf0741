//! `pier build` / `pier image build`: sends the context as a tar to
//! `POST /build` (honouring .dockerignore, as docker's CLI) and prints the
//! daemon's progress as it comes.
//!
//! pierd is local (its unix socket): a context directory holding its
//! Dockerfile is not sent but named (`pier-context-path`, pier's own query
//! parameter) and pierd reads it in place, with the same .dockerignore
//! rules and hashing only what changed since the last build.
//! `PIER_BUILD_CONTEXT=tar` sends the tar anyway.

use crate::client::{encode, Body, Client};
use crate::error::CliError;
use crate::progress::{JsonMessage, MessageParser};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use pier_builder::dockerfile::ignore::Ignore;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from STDIN)
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Networking mode for the RUN instructions during build (default, host or none)
    #[arg(long, default_value = "default")]
    network: String,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Set metadata for an image
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Remove intermediate containers after a successful build (accepted;
    /// pier's build steps leave no containers)
    #[arg(long, default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    rm: bool,
    /// Always remove intermediate containers (accepted)
    #[arg(long = "force-rm")]
    force_rm: bool,
    /// PATH | URL | -
    context: String,
}

/// Errors of the build command: docker's CLI exits 1.
fn fail(message: impl Into<String>) -> CliError {
    CliError {
        message: message.into(),
        code: 1,
        status: None,
    }
}

/// `K=V`, or `K` alone: the value of K in the environment, else null (the
/// daemon then uses the ARG's default), as docker.
fn build_args(args: &[String]) -> BTreeMap<String, Option<String>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), std::env::var(a).ok()),
        })
        .collect()
}

fn labels(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (a.clone(), String::new()),
        })
        .collect()
}

/// A name for a Dockerfile sent from outside the context, as docker's
/// `.dockerfile.` + 20 hex digits.
fn generated_name() -> String {
    let mut b = [0u8; 10];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(".dockerfile.{hex}")
}

fn header(kind: tar::EntryType, mode: u32, mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_mtime(mtime);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A one-file tar: `name` with `data` (a Dockerfile from stdin).
fn append_file(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut h = header(tar::EntryType::Regular, 0o600, now, data.len() as u64);
    b.append_data(&mut h, name, data)
}

/// docker CLI's message for a context entry it cannot read (as the
/// docker CLI 28 here words it).
fn check_err(p: &Path, e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "error checking context: no permission to read from '{}'",
            p.display()
        )
    } else {
        format!("error checking context: can't stat '{}': {e}", p.display())
    }
}

/// Checks that every entry of the context can be read (docker's CLI does
/// so before it sends anything).
fn check_context(root: &Path, entries: &[PathBuf]) -> Result<(), String> {
    for rel in entries {
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| check_err(&path, e))?;
        if meta.is_file() {
            std::fs::File::open(&path).map_err(|e| check_err(&path, e))?;
        }
    }
    Ok(())
}

/// Writes the context entries `entries` of `root` as a tar to `w`.
/// `extra` files (a Dockerfile from elsewhere) are added at the end;
/// `ignore_suffix` is appended to the .dockerignore sent.
fn write_context(
    root: &Path,
    entries: &[PathBuf],
    extra: &[(String, Vec<u8>)],
    ignore_suffix: &str,
    w: impl Write,
) -> Result<(), String> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let werr = |e: std::io::Error| format!("writing the build context: {e}");
    let mut ignore_sent = false;
    for rel in entries {
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| check_err(&path, e))?;
        let ft = meta.file_type();
        let mtime = meta.mtime().max(0) as u64;
        if ft.is_dir() {
            let mut h = header(tar::EntryType::Directory, meta.mode(), mtime, 0);
            let mut name = rel.as_os_str().to_owned();
            name.push("/");
            b.append_data(&mut h, name, std::io::empty())
                .map_err(werr)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| check_err(&path, e))?;
            let mut h = header(tar::EntryType::Symlink, meta.mode(), mtime, 0);
            b.append_link(&mut h, rel, &target).map_err(werr)?;
        } else if ft.is_file() {
            if rel.as_os_str() == ".dockerignore" && !ignore_suffix.is_empty() {
                let mut data = std::fs::read(&path).map_err(|e| check_err(&path, e))?;
                data.extend_from_slice(ignore_suffix.as_bytes());
                let mut h = header(
                    tar::EntryType::Regular,
                    meta.mode(),
                    mtime,
                    data.len() as u64,
                );
                b.append_data(&mut h, rel, &data[..]).map_err(werr)?;
                ignore_sent = true;
                continue;
            }
            let f = std::fs::File::open(&path).map_err(|e| check_err(&path, e))?;
            let mut h = header(tar::EntryType::Regular, meta.mode(), mtime, meta.len());
            b.append_data(&mut h, rel, f.take(meta.len()))
                .map_err(werr)?;
        }
        // Sockets, fifos and devices are left out, as docker.
    }
    if !ignore_suffix.is_empty() && !ignore_sent {
        append_file(&mut b, ".dockerignore", ignore_suffix.as_bytes()).map_err(werr)?;
    }
    for (name, data) in extra {
        append_file(&mut b, name, data).map_err(werr)?;
    }
    b.finish().map_err(werr)
}

/// A blocking writer that sends 512 KiB chunks to the request body.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 512 << 10 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the daemon stopped reading")
        })
    }
}

/// A request body produced by `f` in a thread; an error of `f` ends the
/// body with that error (and is returned by the join handle).
fn body_from(
    f: impl FnOnce(&mut ChunkWriter) -> Result<(), String> + Send + 'static,
) -> (Body, std::thread::JoinHandle<Result<(), String>>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let handle = std::thread::spawn(move || {
        let mut w = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let r = f(&mut w).and_then(|()| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = &r {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.clone())));
        }
        r
    });
    use futures_util::StreamExt;
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|r| r.map(Frame::data));
    (StreamBody::new(stream).boxed_unsync(), handle)
}

/// The context and the Dockerfile's name in it.
struct Prepared {
    body: Body,
    producer: Option<std::thread::JoinHandle<Result<(), String>>>,
    dockerfile: String,
    /// The context directory for pierd to read in place (the body is
    /// then empty), with its device and inode.
    in_place: Option<(PathBuf, u64, u64)>,
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| fail(format!("reading the build context from STDIN: {e}")))?;
    Ok(data)
}

/// The context to send; with `in_place`, a directory holding its
/// Dockerfile is only named.
fn prepare(args: &BuildArgs, in_place: bool) -> Result<Prepared, CliError> {
    if args.context == "-" {
        if args.file.as_deref() == Some("-") {
            return Err(fail(
                "invalid argument: can't use stdin for both build context and dockerfile",
            ));
        }
        let data = read_stdin()?;
        if pier_builder::context::looks_like_archive(&data) {
            return Ok(Prepared {
                body: crate::client::full(data),
                producer: None,
                dockerfile: args.file.clone().unwrap_or_else(|| "Dockerfile".into()),
                in_place: None,
            });
        }
        // A bare Dockerfile: a context of that one file, as docker.
        let mut b = tar::Builder::new(Vec::new());
        append_file(&mut b, "Dockerfile", &data)
            .and_then(|()| b.finish())
            .map_err(|e| fail(format!("writing the build context: {e}")))?;
        let tar = b.into_inner().map_err(|e| fail(e.to_string()))?;
        return Ok(Prepared {
            body: crate::client::full(tar),
            producer: None,
            dockerfile: "Dockerfile".into(),
            in_place: None,
        });
    }
    if args.context.contains("://") || args.context.starts_with("git@") {
        return Err(fail(format!(
            "unable to prepare context: remote contexts are not supported by pier ({}): \
             clone or download it and build the directory",
            args.context
        )));
    }
    let root = PathBuf::from(&args.context);
    match std::fs::metadata(&root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(fail(format!(
                "unable to prepare context: context must be a directory: {}",
                root.display()
            )))
        }
        Err(_) => {
            return Err(fail(format!(
                "unable to prepare context: path {:?} not found",
                args.context
            )))
        }
    }
    let root = std::fs::canonicalize(&root).map_err(|e| {
        fail(format!(
            "unable to prepare context: {}: {e}",
            root.display()
        ))
    })?;
    // The Dockerfile: -f relative to the current directory, else
    // CONTEXT/Dockerfile; one outside the context is sent under a
    // generated name.
    let mut extra = Vec::new();
    let mut ignore_suffix = String::new();
    let dockerfile = match args.file.as_deref() {
        Some("-") => {
            let data = read_stdin()?;
            let name = generated_name();
            extra.push((name.clone(), data));
            ignore_suffix = format!("\n{name}\n");
            name
        }
        file => {
            let path = match file {
                Some(f) => std::path::absolute(f)
                    .map_err(|e| fail(format!("unable to prepare context: {f}: {e}")))?,
                None => {
                    let p = root.join("Dockerfile");
                    let lower = root.join("dockerfile");
                    if !p.exists() && lower.exists() {
                        lower
                    } else {
                        p
                    }
                }
            };
            let missing = || {
                fail(format!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: \
                     lstat {}: no such file or directory",
                    path.display()
                ))
            };
            let real = std::fs::canonicalize(&path).map_err(|_| missing())?;
            match real.strip_prefix(&root) {
                Ok(rel) => rel.to_string_lossy().into_owned(),
                Err(_) => {
                    let data = std::fs::read(&real).map_err(|e| {
                        fail(format!(
                            "unable to prepare context: {}: {e}",
                            real.display()
                        ))
                    })?;
                    let name = generated_name();
                    extra.push((name.clone(), data));
                    ignore_suffix = format!("\n{name}\n");
                    name
                }
            }
        }
    };
    let ignore_text = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(fail(format!(
                "error checking context: no permission to read from '{}': {e}",
                root.join(".dockerignore").display()
            )))
        }
    };
    let ignore = ignore_text
        .as_deref()
        .map(Ignore::parse)
        .unwrap_or_default()
        .keeping_build_files(&dockerfile);
    let entries = pier_builder::dockerfile::ignore::walk(&root, &ignore)
        .map_err(|e| fail(format!("error checking context: {e}")))?;
    // Unreadable files fail before anything is sent, as docker's CLI
    // checks the context first.
    check_context(&root, &entries).map_err(fail)?;
    // (A path that is not UTF-8 cannot go in the query: such a context is
    // sent.)
    if in_place
        && extra.is_empty()
        && root.to_str().is_some()
        && std::env::var("PIER_BUILD_CONTEXT").as_deref() != Ok("tar")
    {
        let md = std::fs::metadata(&root).map_err(|e| {
            fail(format!(
                "unable to prepare context: {}: {e}",
                root.display()
            ))
        })?;
        return Ok(Prepared {
            body: crate::client::full(Vec::new()),
            producer: None,
            dockerfile,
            in_place: Some((root, md.dev(), md.ino())),
        });
    }
    let (body, producer) =
        body_from(move |w| write_context(&root, &entries, &extra, &ignore_suffix, w));
    Ok(Prepared {
        body,
        producer: Some(producer),
        dockerfile,
        in_place: None,
    })
}

pub async fn build(client: &Client, args: BuildArgs) -> Result<i32, CliError> {
    for t in &args.tags {
        if let Err(e) = pier_image::reference::Reference::parse(t) {
            return Err(CliError::engine(format!(
                "invalid argument {t:?} for \"-t, --tag\" flag: {e}"
            )));
        }
    }
    if let Some(f) = &args.iidfile {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(format!("Removing image ID file: {e}"))),
        }
    }
    // Only pierd reads a context directory where it is; any other daemon
    // (dockerd) gets the tar.
    let in_place = match client
        .send(Method::GET, "/_ping", crate::client::empty())
        .await
    {
        Ok(r) => r.headers().contains_key("pier-context-in-place"),
        Err(_) => false,
    };
    let mut prepared = prepare(&args, in_place)?;
    let mut path = String::from("/build?");
    for t in &args.tags {
        path.push_str(&format!("t={}&", encode(t)));
    }
    path.push_str(&format!("dockerfile={}", encode(&prepared.dockerfile)));
    let ba = build_args(&args.build_args);
    if !ba.is_empty() {
        let json = serde_json::to_string(&ba).unwrap_or_default();
        path.push_str(&format!("&buildargs={}", encode(&json)));
    }
    let lb = labels(&args.labels);
    if !lb.is_empty() {
        let json = serde_json::to_string(&lb).unwrap_or_default();
        path.push_str(&format!("&labels={}", encode(&json)));
    }
    if args.network != "default" {
        path.push_str(&format!("&networkmode={}", encode(&args.network)));
    }
    if let Some(t) = &args.target {
        path.push_str(&format!("&target={}", encode(t)));
    }
    for (flag, on) in [
        ("nocache", args.no_cache),
        ("pull", args.pull),
        ("q", args.quiet),
        ("rm", args.rm),
        ("forcerm", args.force_rm),
    ] {
        if on {
            path.push_str(&format!("&{flag}=1"));
        }
    }
    // As docker's CLI: every registry's credentials, for the base
    // images the daemon pulls.
    let auths = registry_config();
    let headers = [("X-Registry-Config", auths.as_str())];
    let resp = match prepared.in_place.take() {
        Some((dir, dev, ino)) => {
            let named = format!(
                "{path}&pier-context-path={}&pier-context-id={dev}:{ino}",
                encode(&dir.to_string_lossy())
            );
            let body = std::mem::replace(&mut prepared.body, crate::client::full(Vec::new()));
            match client
                .send_with_headers(Method::POST, &named, &headers, body)
                .await
            {
                // pierd cannot take the directory where it is (it sees
                // another one there: the CLI runs in another mount
                // namespace): send it, as to any daemon.
                Err(e) if e.status == Some(400) && e.message.contains("pier-context-path") => {
                    prepared = prepare(&args, false)?;
                    client
                        .send_with_headers(Method::POST, &path, &headers, prepared.body)
                        .await
                }
                r => r,
            }
        }
        None => {
            client
                .send_with_headers(Method::POST, &path, &headers, prepared.body)
                .await
        }
    }
    .map_err(|mut e| {
        e.code = 1;
        e
    })?;
    let shown = show(resp, args.quiet).await;
    if let Some(p) = prepared.producer {
        if let Ok(Err(e)) = p.join() {
            if shown.is_ok() {
                return Err(fail(e));
            }
        }
    }
    let id = shown?;
    if args.quiet {
        println!("{id}");
    }
    if let Some(f) = &args.iidfile {
        std::fs::write(f, &id).map_err(|e| fail(format!("Writing image ID file: {e}")))?;
    }
    Ok(0)
}

/// Prints the daemon's messages as they come (with -q, keeps them and
/// prints them to stderr only if the build fails); returns the image id.
async fn show(
    resp: hyper::Response<hyper::body::Incoming>,
    quiet: bool,
) -> Result<String, CliError> {
    let mut parser = MessageParser::new();
    let mut body = resp.into_body();
    let mut held = String::new();
    let mut id = String::new();
    let mut stdout = std::io::stdout();
    let mut handle = |m: JsonMessage, held: &mut String| -> Result<(), CliError> {
        if let Some(msg) = m.error_message() {
            if quiet {
                eprint!("{held}");
            }
            let code = m.error_detail.as_ref().map_or(0, |d| d.code).clamp(0, 255) as i32;
            return Err(CliError {
                message: msg,
                code: if code == 0 { 1 } else { code },
                status: None,
            });
        }
        if let Some(aux) = &m.aux {
            if let Some(i) = aux.get("ID").and_then(|i| i.as_str()) {
                id = i.to_string();
            }
            return Ok(());
        }
        let text = if m.stream.is_empty() {
            if m.status.is_empty() {
                return Ok(());
            }
            format!("{}\n", m.status)
        } else {
            m.stream
        };
        if quiet {
            held.push_str(&text);
        } else {
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
        Ok(())
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(format!("reading the build's progress: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for m in parser.push(&data).map_err(fail)? {
            handle(m, &mut held)?;
        }
    }
    parser.finish().map_err(fail)?;
    if id.is_empty() {
        return Err(fail("the daemon ended the build without an image ID"));
    }
    Ok(id)
}

/// The `X-Registry-Config` value: base64url of the JSON of every
/// registry's credentials from config.json (an unreadable file: none).
fn registry_config() -> String {
    use base64::Engine as _;
    let all = crate::credentials::ConfigFile::load_default()
        .map(|c| c.all())
        .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE
        .encode(serde_json::to_vec(&all).unwrap_or_else(|_| b"{}".to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<String> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_context_is_sent_as_docker_sends_it() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("d/e")).unwrap();
        std::fs::write(r.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(r.join("d/e/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("l")).unwrap();
        let entries = pier_builder::dockerfile::ignore::walk(r, &Ignore::parse("")).unwrap();
        let mut out = Vec::new();
        write_context(
            r,
            &entries,
            &[(".dockerfile.x".into(), b"FROM a".to_vec())],
            "\n.dockerfile.x\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            names(&out),
            [
                "Dockerfile",
                "d/",
                "d/e/",
                "d/e/f",
                "l",
                ".dockerignore",
                ".dockerfile.x"
            ]
        );
        let mut a = tar::Archive::new(&out[..]);
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            if e.path().unwrap().to_str() == Some("l") {
                assert_eq!(
                    e.link_name().unwrap().unwrap().to_str(),
                    Some("/etc/passwd")
                );
            }
        }
        assert!(pier_builder::context::looks_like_archive(&out));
        assert!(!pier_builder::context::looks_like_archive(
            b"FROM busybox\n"
        ));
    }

    #[test]
    fn build_args_without_a_value_come_from_the_environment() {
        let a = build_args(&["A=1".into(), "PATH".into(), "PIER_SURELY_UNSET_X".into()]);
        assert_eq!(a["A"].as_deref(), Some("1"));
        assert!(a["PATH"].is_some());
        assert_eq!(a["PIER_SURELY_UNSET_X"], None);
        assert_eq!(labels(&["k".into()])["k"], "");
    }
}
