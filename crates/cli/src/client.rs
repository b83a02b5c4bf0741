//! pier's client for pierd's Docker Engine API over a unix socket. It
//! starts pierd when nothing listens there yet, so that the first command on
//! a fresh machine just works.

use crate::error::CliError;
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::UnixStream;

pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Where pierd is, and how to start it if it is not running.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// Start pierd when the socket has no listener.
    pub autostart: bool,
}

pub struct Client {
    endpoint: Endpoint,
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        Client { endpoint }
    }

    async fn connect(&self) -> Result<UnixStream, CliError> {
        match UnixStream::connect(&self.endpoint.socket).await {
            Ok(s) => Ok(s),
            Err(e) if self.endpoint.autostart && is_not_listening(&e) => self.start_daemon().await,
            Err(e) => Err(CliError::engine(format!(
                "Cannot connect to the pier daemon at unix://{}: {e}. Is pierd running?",
                self.endpoint.socket.display()
            ))),
        }
    }

    /// Starts pierd in its own session and waits for its socket.
    async fn start_daemon(&self) -> Result<UnixStream, CliError> {
        let ep = &self.endpoint;
        let pierd = sibling_binary("pierd");
        std::fs::create_dir_all(&ep.exec_root)
            .map_err(|e| CliError::engine(format!("creating {}: {e}", ep.exec_root.display())))?;
        let log_path = ep.exec_root.join("pierd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| CliError::engine(format!("opening {}: {e}", log_path.display())))?;
        let mut cmd = std::process::Command::new(&pierd);
        cmd.arg("--data-root")
            .arg(&ep.data_root)
            .arg("--exec-root")
            .arg(&ep.exec_root)
            .arg("--host")
            .arg(&ep.socket)
            .stdin(std::process::Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| CliError::engine(e.to_string()))?,
            )
            .stderr(log);
        // SAFETY: setsid is async-signal-safe; pierd gets its own session so
        // it survives this command and the terminal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            CliError::engine(format!(
                "starting the pier daemon ({}): {e}; install pierd next to pier or on $PATH",
                pierd.display()
            ))
        })?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(s) = UnixStream::connect(&ep.socket).await {
                return Ok(s);
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Another pier may have started pierd at the same time.
                if let Ok(s) = UnixStream::connect(&ep.socket).await {
                    return Ok(s);
                }
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let last = log.lines().last().unwrap_or("").to_string();
                return Err(CliError::engine(format!(
                    "the pier daemon exited ({status}) before listening on {}: {last} (log: {})",
                    ep.socket.display(),
                    log_path.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(CliError::engine(format!(
                    "the pier daemon did not listen on {} within 15s (log: {})",
                    ep.socket.display(),
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn handshake(&self) -> Result<hyper::client::conn::http1::SendRequest<Body>, CliError> {
        let stream = self.connect().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CliError::engine(format!("talking to the pier daemon: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// Sends a request; a non-2xx answer becomes an error with the
    /// daemon's message.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response<Incoming>, CliError> {
        self.send_with_headers(method, path, &[], body).await
    }

    /// [`send`](Self::send) with extra headers (e.g. `X-Registry-Auth`).
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<Response<Incoming>, CliError> {
        let mut sender = self.handshake().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "pier")
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body)
            .map_err(|e| CliError::engine(format!("bad request {path}: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CliError::engine(format!("talking to the pier daemon: {e}")))?;
        check(resp).await
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, CliError> {
        let resp = self.send(Method::GET, path, empty()).await?;
        read_json(resp).await
    }

    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, CliError> {
        let data = serde_json::to_vec(body).map_err(|e| CliError::engine(e.to_string()))?;
        let resp = self.send(Method::POST, path, full(data)).await?;
        read_json(resp).await
    }

    /// A request whose answer body is ignored.
    pub async fn call(&self, method: Method, path: &str) -> Result<StatusCode, CliError> {
        let resp = self.send(method, path, empty()).await?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        Ok(status)
    }

    /// `POST path` with `Upgrade: tcp`; returns the raw connection.
    pub async fn upgrade(&self, path: &str) -> Result<TokioIo<hyper::upgrade::Upgraded>, CliError> {
        let mut sender = self.handshake().await?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("Host", "pier")
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp")
            .body(empty())
            .map_err(|e| CliError::engine(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CliError::engine(format!("talking to the pier daemon: {e}")))?;
        let resp = check(resp).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(CliError::engine(format!(
                "attach: the daemon answered {}",
                resp.status()
            )));
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| CliError::engine(format!("attach: {e}")))?;
        Ok(TokioIo::new(upgraded))
    }
}

fn is_not_listening(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>, CliError> {
    let status = resp.status();
    if status.is_success() || status.is_informational() || status == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    Err(CliError::daemon(status.as_u16(), message))
}

pub async fn read_json<T: serde::de::DeserializeOwned>(
    resp: Response<Incoming>,
) -> Result<T, CliError> {
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::engine(format!("reading the daemon's answer: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| CliError::engine(format!("unexpected answer from the daemon: {e}")))
}

/// `name` next to the running executable if it is there, else `name` for
/// a $PATH lookup.
pub fn sibling_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn socket_from_host(host: &str) -> &Path {
    Path::new(host.strip_prefix("unix://").unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(encode("web-1"), "web-1");
    }

    #[test]
    fn host_urls_name_sockets() {
        assert_eq!(
            socket_from_host("unix:///run/x.sock"),
            Path::new("/run/x.sock")
        );
        assert_eq!(socket_from_host("/tmp/y.sock"), Path::new("/tmp/y.sock"));
    }
}
