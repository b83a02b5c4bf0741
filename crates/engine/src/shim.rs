//! Talking to pier-shim: starting one for a container, and the line
//! protocol on its socket (see pier_shim::protocol).

use pier_shim::{Ready, Request, Response, SOCKET_FILE};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Runs `pier-shim STATE_DIR` and returns the line it prints once the
/// container is created (or failed to be).
pub async fn spawn(binary: &Path, state_dir: &Path) -> io::Result<Ready> {
    let out = tokio::process::Command::new(binary)
        .arg(state_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("running {}: {e}", binary.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|_| {
        io::Error::other(format!(
            "{} exited with {} without a ready line: {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })
}

/// A connection to a shim after its response line: what remains to read
/// is the attach stream, if any.
pub type ShimStream = BufReader<UnixStream>;

/// Connects to the shim's socket through an fd of its directory, since
/// the full path may exceed the 108 bytes a socket address holds.
async fn connect(state_dir: &Path) -> io::Result<UnixStream> {
    let dir = std::fs::File::open(state_dir)?;
    let path = format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd());
    let stream = UnixStream::connect(&path).await;
    drop(dir);
    stream
}

/// Sends one request and reads the response line.
pub async fn call(state_dir: &Path, req: &Request) -> io::Result<(Response, ShimStream)> {
    let mut stream = connect(state_dir).await?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut reader = BufReader::new(stream);
    let mut resp = String::new();
    if reader.read_line(&mut resp).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the shim closed the connection without answering",
        ));
    }
    let resp: Response = serde_json::from_str(resp.trim())
        .map_err(|e| io::Error::other(format!("bad answer from the shim: {e}")))?;
    Ok((resp, reader))
}

/// Sends one request; a refusal from the shim becomes an error.
pub async fn request(state_dir: &Path, req: &Request) -> io::Result<Response> {
    let (resp, _) = call(state_dir, req).await?;
    if resp.ok {
        Ok(resp)
    } else {
        Err(io::Error::other(
            resp.error.unwrap_or_else(|| "the shim refused".into()),
        ))
    }
}

/// Opens an attach stream: multiplexed output to read, stdin to write.
pub async fn attach(
    state_dir: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> io::Result<ShimStream> {
    let (resp, stream) = call(
        state_dir,
        &Request::Attach {
            stdin,
            stdout,
            stderr,
        },
    )
    .await?;
    if resp.ok {
        Ok(stream)
    } else {
        Err(io::Error::other(resp.error.unwrap_or_default()))
    }
}

/// Sets the window size of the container's terminal (`exec`: of that exec's).
pub async fn resize(
    state_dir: &Path,
    exec: Option<&str>,
    height: u16,
    width: u16,
) -> io::Result<()> {
    request(
        state_dir,
        &Request::Resize {
            exec: exec.map(str::to_owned),
            height,
            width,
        },
    )
    .await
    .map(drop)
}

/// Starts `process` in the container through its shim. Ok(Err(response))
/// when the shim refused (the response carries the message and docker's
/// exit code); else the pid and the exec stream (multiplexed frames ending
/// with one `EXIT_STREAM` frame).
pub async fn exec(
    state_dir: &Path,
    id: &str,
    process: oci_spec::runtime::Process,
    stdin: bool,
) -> io::Result<Result<(i32, ShimStream), Response>> {
    let (resp, stream) = call(
        state_dir,
        &Request::Exec {
            id: id.to_owned(),
            process: serde_json::to_value(&process)?,
            stdin,
        },
    )
    .await?;
    Ok(if resp.ok {
        Ok((resp.pid, stream))
    } else {
        Err(resp)
    })
}
