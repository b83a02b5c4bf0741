//! `pier cp [-a] [-L] SRC DST`: files between a container and the host,
//! with docker's rules (a trailing `/.` copies a directory's content, a
//! directory goes into an existing directory or becomes the new name, `-`
//! is a tar on stdin or stdout). Container paths are resolved by pierd
//! inside the container's root; host extraction goes through pier-image's
//! safe extractor, so entries of a hostile archive stay in the target.

use super::image_ops::exit1;
use crate::client::{empty, encode, Client};
use crate::error::CliError;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Method;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar on stdin)
    src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar on stdout)
    dst: String,
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
/// Devices and irregular files (Go's ModeDevice, ModeIrregular).
const GO_NOT_FILE: u32 = 1 << 26 | 1 << 19;

/// Docker's split of a cp argument: `CONTAINER:PATH`, unless absolute or
/// an explicit relative path (`./a:b`).
fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

fn err(msg: impl Into<String>) -> CliError {
    exit1(CliError::engine(msg))
}

pub async fn cp(client: &Client, args: CpArgs) -> Result<i32, CliError> {
    match (split_arg(&args.src), split_arg(&args.dst)) {
        ((Some(_), _), (Some(_), _)) => Err(err("copying between containers is not supported")),
        ((None, _), (None, _)) => Err(err("must specify at least one container source")),
        ((Some(c), p), (None, dst)) => from_container(client, &args, c, p, dst).await,
        ((None, src), (Some(c), p)) => to_container(client, &args, src, c, p).await,
    }
}

/// Docker's stat of a container path.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct PathStat {
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & GO_DIR != 0
    }
}

fn decode_stat(resp: &hyper::Response<Incoming>) -> Result<PathStat, CliError> {
    let raw = resp
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .ok_or_else(|| err("the daemon sent no stat of the path"))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|e| err(format!("unreadable path stat from the daemon: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| err(format!("unreadable path stat: {e}")))
}

async fn stat(client: &Client, ctr: &str, path: &str) -> Result<PathStat, CliError> {
    let resp = client
        .send(
            Method::HEAD,
            &format!("/containers/{}/archive?path={}", encode(ctr), encode(path)),
            empty(),
        )
        .await?;
    decode_stat(&resp)
}

/// Go's `filepath.Base` of a path, with docker's `/.` kept as `.`.
fn base(path: &str) -> String {
    if path == "." || path.ends_with("/.") {
        return ".".into();
    }
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// The directory part of a path (docker's `SplitPathDirEntry`).
fn parent(path: &str) -> String {
    // "/a/b/." names the content of /a/b: its directory is /a/b.
    if let Some(dir) = path.strip_suffix("/.") {
        return if dir.is_empty() {
            "/".into()
        } else {
            dir.to_string()
        };
    }
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

fn trailing(path: &str) -> bool {
    path.ends_with('/') || path == "." || path.ends_with("/.")
}

/// Renames the archive's top entry `from` (`.` for a directory's content)
/// to `to` on the way, and sets the owner unless `keep_owner`.
struct Rewrite {
    from: String,
    to: Option<String>,
    keep_owner: bool,
}

impl Rewrite {
    fn name(&self, name: &[u8]) -> Vec<u8> {
        let Some(to) = &self.to else {
            return name.to_vec();
        };
        let s = String::from_utf8_lossy(name).into_owned();
        let mut s = s.trim_start_matches("./");
        if self.from == "/" {
            // Docker names the entries of `/` absolutely ("/bin/sh").
            s = s.trim_start_matches('/');
        }
        if self.from == "." || self.from == "/" {
            // Content entries: "./" is the directory itself.
            if s.is_empty() || s == "." {
                return format!("{to}/").into_bytes();
            }
            return format!("{to}/{s}").into_bytes();
        }
        if s == self.from || s == format!("{}/", self.from) {
            return if s.ends_with('/') {
                format!("{to}/").into_bytes()
            } else {
                to.clone().into_bytes()
            };
        }
        match s.strip_prefix(&format!("{}/", self.from)) {
            Some(rest) => format!("{to}/{rest}").into_bytes(),
            None => s.as_bytes().to_vec(),
        }
    }
}

/// Whether the last component of a tar name starts with `.wh.`.
fn is_whiteout(name: &[u8]) -> bool {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let base = trimmed.rsplit(|&c| c == b'/').next().unwrap_or(trimmed);
    base.starts_with(b".wh.")
}

/// Copies a tar from `r` to `w` entry by entry through `rw`.
fn rewrite_tar(r: impl Read, w: impl Write, rw: &Rewrite) -> io::Result<()> {
    let mut a = tar::Archive::new(r);
    let mut b = tar::Builder::new(w);
    let (uid, gid) = (rustix::process::geteuid(), rustix::process::getegid());
    for entry in a.entries()? {
        let mut entry = entry?;
        let mut h = entry.header().clone();
        let name = rw.name(&entry.path_bytes());
        if is_whiteout(&name) {
            // pier-image's extractor reads these as layer deletions: it
            // would remove the file they name instead of writing them.
            eprintln!(
                "pier: skipping {}: names starting with .wh. mark deletions in image layers",
                String::from_utf8_lossy(&name)
            );
            continue;
        }
        if !rw.keep_owner {
            h.set_uid(u64::from(uid.as_raw()));
            h.set_gid(u64::from(gid.as_raw()));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&name).into_owned());
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let mut target = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                if h.entry_type() == tar::EntryType::Link {
                    target = rw.name(&target);
                }
                let target = PathBuf::from(String::from_utf8_lossy(&target).into_owned());
                b.append_link(&mut h, &path, &target)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                let size = h.size()?;
                b.append_data(&mut h, &path, (&mut entry).take(size))?;
            }
        }
    }
    b.into_inner()?.flush()
}

/// A blocking reader of a response body (for a blocking thread).
struct BodyRead {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    count: Arc<AtomicU64>,
}

impl Read for BodyRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => {
                    self.count.fetch_add(b.len() as u64, Ordering::Relaxed);
                    self.cur = b
                }
                Some(Err(e)) => return Err(e),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

fn body_reader(mut body: Incoming, count: Arc<AtomicU64>) -> BodyRead {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let item = frame.map_err(|e| io::Error::other(format!("reading the archive: {e}")));
            let stop = item.is_err();
            match item {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        if tx.send(Ok(d)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
            if stop {
                return;
            }
        }
    });
    BodyRead {
        rx,
        cur: Bytes::new(),
        count,
    }
}

/// Extracts the tar `r` into the existing directory `dir`, rewritten by
/// `rw`, with pier-image's extractor (nothing lands outside `dir`).
fn extract_host(r: impl Read + Send + 'static, dir: &Path, rw: Rewrite) -> Result<(), String> {
    let (pr, pw) = rustix::pipe::pipe().map_err(|e| format!("making a pipe: {e}"))?;
    let writer = std::thread::spawn(move || rewrite_tar(r, std::fs::File::from(pw), &rw));
    let unpacked = pier_image::extract::unpack_tar(std::fs::File::from(pr), dir);
    let written = writer
        .join()
        .map_err(|_| "the archive thread panicked".to_string())?;
    written.map_err(|e| format!("reading the archive: {e}"))?;
    unpacked.map(|_| ()).map_err(|e| e.to_string())
}

/// Where a host destination stands (docker's `CopyInfoDestinationPath`).
struct HostDst {
    path: PathBuf,
    exists: bool,
    is_dir: bool,
}

fn host_dst(dst: &str) -> Result<HostDst, CliError> {
    let p = PathBuf::from(dst);
    match std::fs::metadata(&p) {
        Ok(m) => Ok(HostDst {
            path: p,
            exists: true,
            is_dir: m.is_dir(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let par = parent(dst);
            match std::fs::metadata(&par) {
                Ok(m) if m.is_dir() => Ok(HostDst {
                    path: p,
                    exists: false,
                    is_dir: false,
                }),
                Ok(_) => Err(err(format!("{par}: not a directory"))),
                Err(e) => Err(err(format!("stat {par}: {}", io_msg(&e)))),
            }
        }
        Err(e) => Err(err(format!("stat {dst}: {}", io_msg(&e)))),
    }
}

fn io_msg(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

async fn from_container(
    client: &Client,
    args: &CpArgs,
    ctr: &str,
    src: &str,
    dst: &str,
) -> Result<i32, CliError> {
    let mut src = if src.is_empty() {
        "/".to_string()
    } else {
        src.to_string()
    };
    let mut rebase: Option<String> = None;
    // With -L a symlink is copied as what it points to, under its own
    // name (a trailing / or /. already follows it in the daemon).
    if args.follow_link && !trailing(&src) {
        let st = stat(client, ctr, &src).await.map_err(exit1)?;
        if st.mode & GO_SYMLINK != 0 && !st.link_target.is_empty() {
            let original = base(&src);
            if base(&st.link_target) != original {
                rebase = Some(original);
            }
            src = st.link_target;
        }
    }
    let resp = client
        .send(
            Method::GET,
            &format!("/containers/{}/archive?path={}", encode(ctr), encode(&src)),
            empty(),
        )
        .await
        .map_err(exit1)?;
    let st = decode_stat(&resp)?;
    if dst == "-" {
        let mut body = resp.into_body();
        let mut out = tokio::io::stdout();
        use tokio::io::AsyncWriteExt;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| err(format!("copying from the container: {e}")))?;
            if let Ok(d) = frame.into_data() {
                out.write_all(&d)
                    .await
                    .map_err(|e| err(format!("writing to stdout: {e}")))?;
            }
        }
        out.flush()
            .await
            .map_err(|e| err(format!("writing to stdout: {e}")))?;
        return Ok(0);
    }
    let d = host_dst(dst)?;
    let tar_base = base(&src);
    let src_base = rebase.clone().unwrap_or_else(|| tar_base.clone());
    let (dir, to): (PathBuf, Option<String>) = if d.exists && d.is_dir {
        let to = (rebase.is_some()).then(|| src_base.clone());
        (d.path.clone(), to)
    } else if d.exists && st.is_dir() {
        return Err(err("cannot copy directory"));
    } else if !d.exists && !st.is_dir() && trailing(dst) {
        return Err(err("no such directory"));
    } else {
        (PathBuf::from(parent(dst)), Some(base(dst)))
    };
    let rw = Rewrite {
        from: tar_base,
        to,
        // As docker: files copied out belong to the caller, even with -a.
        keep_owner: false,
    };
    let count = Arc::new(AtomicU64::new(0));
    let reader = body_reader(resp.into_body(), count.clone());
    tokio::task::spawn_blocking(move || extract_host(reader, &dir, rw))
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(err)?;
    report(args, &count, dst);
    Ok(0)
}

/// Writes a tar of the host path `src` with its top entry named `name`
/// (None: the directory's content, its own entry `./`).
fn host_tar(src: &Path, name: Option<&str>, w: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let md = std::fs::symlink_metadata(src)?;
    match name {
        Some(n) if !md.is_dir() => b.append_path_with_name(src, n)?,
        Some(n) => b.append_dir_all(n, src)?,
        None => b.append_dir_all(".", src)?,
    }
    b.into_inner()?.flush()
}

/// A `Write` feeding a request body from a blocking thread.
struct ChanWrite {
    tx: tokio::sync::mpsc::Sender<io::Result<Frame<Bytes>>>,
    count: Arc<AtomicU64>,
}

impl Write for ChanWrite {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Frame::data(Bytes::copy_from_slice(b))))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading"))?;
        self.count.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn to_container(
    client: &Client,
    args: &CpArgs,
    src: &str,
    ctr: &str,
    dst: &str,
) -> Result<i32, CliError> {
    let dst = if dst.is_empty() { "/" } else { dst };
    let mut dst_path = dst.to_string();
    let mut st = stat(client, ctr, dst).await;
    if let Ok(s) = &st {
        if s.mode & GO_SYMLINK != 0 && !s.link_target.is_empty() {
            dst_path = s.link_target.clone();
            st = stat(client, ctr, &dst_path).await;
        }
    }
    if let Ok(s) = &st {
        if s.mode & GO_NOT_FILE != 0 {
            return Err(err(format!(
                "destination \"{ctr}:{dst}\" must be a directory or a regular file"
            )));
        }
    }
    let (exists, is_dir) = match &st {
        Ok(s) => (true, s.is_dir()),
        // As docker: any error means "not there"; extracting into the
        // parent then fails with the daemon's reason if that is wrong too.
        Err(_) => (false, false),
    };
    let copy_uid_gid = if args.archive { "&copyUIDGID=true" } else { "" };
    let count = Arc::new(AtomicU64::new(0));
    let body;
    let target;
    if src == "-" {
        if !is_dir {
            return Err(err(format!(
                "destination \"{ctr}:{dst}\" must be a directory"
            )));
        }
        target = dst_path.clone();
        let stream = futures_util::stream::unfold(tokio::io::stdin(), |mut r| async move {
            use tokio::io::AsyncReadExt;
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
        body = StreamBody::new(stream).boxed_unsync();
    } else {
        let follow = args.follow_link || trailing(src);
        let src_path = PathBuf::from(src);
        let resolved = if follow {
            std::fs::canonicalize(&src_path)
        } else {
            std::fs::canonicalize(parent(src)).map(|p| p.join(base(src)))
        }
        .map_err(|e| err(format!("lstat {src}: {}", io_msg(&e))))?;
        let md = std::fs::symlink_metadata(&resolved)
            .map_err(|e| err(format!("lstat {}: {}", resolved.display(), io_msg(&e))))?;
        let src_is_dir = md.is_dir();
        let contents = base(src) == ".";
        let src_name = if contents {
            None
        } else {
            Some(
                resolved
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| ".".into()),
            )
        };
        // Docker's PrepareArchiveCopy: where to extract, under which name.
        let (dir, name): (String, Option<String>) = if exists && is_dir {
            (dst_path.clone(), src_name)
        } else if exists && src_is_dir {
            return Err(err("cannot copy directory"));
        } else if !exists && !src_is_dir && trailing(&dst_path) {
            return Err(err("no such directory"));
        } else {
            (parent(&dst_path), Some(base(&dst_path)))
        };
        target = dir;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Frame<Bytes>>>(8);
        let count = count.clone();
        tokio::task::spawn_blocking(move || {
            let w = ChanWrite {
                tx: tx.clone(),
                count,
            };
            let w = io::BufWriter::with_capacity(256 << 10, w);
            if let Err(e) = host_tar(&resolved, name.as_deref(), w) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let mut rx = rx;
        body = StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
            .boxed_unsync();
    }
    client
        .send(
            Method::PUT,
            &format!(
                "/containers/{}/archive?path={}&noOverwriteDirNonDir=true{copy_uid_gid}",
                encode(ctr),
                encode(&target)
            ),
            body,
        )
        .await
        .map_err(exit1)?;
    report(args, &count, &format!("{ctr}:{dst}"));
    Ok(0)
}

/// Docker's closing line, on a terminal only.
fn report(args: &CpArgs, count: &AtomicU64, dst: &str) {
    use std::io::IsTerminal;
    if !args.quiet && io::stderr().is_terminal() {
        let n = count.load(Ordering::Relaxed) as i64;
        eprintln!(
            "Successfully copied {} to {dst}",
            crate::format::human_size(n)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split_arg("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_arg("file"), (None, "file"));
    }

    #[test]
    fn bases_and_parents() {
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/a/b/."), ".");
        assert_eq!(base("/"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a/b/"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("b"), ".");
        assert_eq!(parent("/a/b/."), "/a/b");
    }

    #[test]
    fn whiteout_names_are_recognised() {
        assert!(is_whiteout(b"a/.wh.b"));
        assert!(is_whiteout(b".wh..wh..opq"));
        assert!(!is_whiteout(b"a.wh.b/c"));
    }

    #[test]
    fn entries_are_renamed() {
        let rw = Rewrite {
            from: "etc".into(),
            to: Some("conf".into()),
            keep_owner: true,
        };
        assert_eq!(rw.name(b"etc/"), b"conf/");
        assert_eq!(rw.name(b"etc/a/b"), b"conf/a/b");
        let rw = Rewrite {
            from: ".".into(),
            to: Some("new".into()),
            keep_owner: true,
        };
        assert_eq!(rw.name(b"./"), b"new/");
        assert_eq!(rw.name(b"a.txt"), b"new/a.txt");
        // `/` comes with absolute names (as docker), `/.` with "./" ones.
        let rw = Rewrite {
            from: "/".into(),
            to: Some("rootcopy".into()),
            keep_owner: true,
        };
        assert_eq!(rw.name(b"/"), b"rootcopy/");
        assert_eq!(rw.name(b"/bin/sh"), b"rootcopy/bin/sh");
        let rw = Rewrite {
            from: ".".into(),
            to: Some("new".into()),
            keep_owner: true,
        };
        assert_eq!(rw.name(b"./sub/b"), b"new/sub/b");
    }
}
