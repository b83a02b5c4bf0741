//! One registry: base URL, authentication (Bearer tokens cached per scope,
//! Basic), retries with backoff on 429/5xx/connection errors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::auth::{parse_challenges, Challenge, Credentials, TokenResponse};
use crate::error::{from_status, Error, Result};
use crate::tls;

/// Settings shared by every registry a client talks to.
#[derive(Debug, Clone)]
pub struct Options {
    /// Registries (`host[:port]` or `host`) reached over plain http.
    pub insecure_registries: Vec<String>,
    /// Per-registry CA certificates: `certs_dir/HOST[:PORT]/*.crt`.
    pub certs_dir: PathBuf,
    /// Layers downloaded at once by one pull.
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once by one push.
    pub max_concurrent_uploads: usize,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
    /// Retries of a failed request or interrupted download.
    pub retries: u32,
    /// First retry delay; doubled each time.
    pub backoff: Duration,
    /// Blobs larger than this are uploaded in chunks.
    pub chunk_threshold: u64,
    /// Size of one upload chunk.
    pub chunk_size: u64,
    /// Host names pinned to addresses (like curl's `--resolve`), checked
    /// before DNS.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            read_timeout: Duration::from_secs(60),
            retries: 5,
            backoff: Duration::from_millis(500),
            chunk_threshold: 128 << 20,
            chunk_size: 64 << 20,
            resolve: Vec::new(),
        }
    }
}

/// Entry point: hands out [`Registry`] handles, sharing HTTP connections.
pub struct Client {
    pub options: Arc<Options>,
    http: Mutex<HashMap<String, reqwest::Client>>,
}

impl Client {
    pub fn new(options: Options) -> Client {
        Client {
            options: Arc::new(options),
            http: Mutex::new(HashMap::new()),
        }
    }

    /// A handle on registry `host` (as a reference names it: "docker.io",
    /// "localhost:5000") with `creds` (empty: anonymous).
    pub fn registry(&self, host: &str, creds: Credentials) -> Result<Registry> {
        let http = {
            let mut map = self.http.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(host) {
                Some(c) => c.clone(),
                None => {
                    let c = tls::http_client(host, &self.options)?;
                    map.insert(host.to_owned(), c.clone());
                    c
                }
            }
        };
        let endpoint = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let scheme = if tls::is_insecure(host, &self.options.insecure_registries) {
            "http"
        } else {
            "https"
        };
        Ok(Registry {
            http,
            base: format!("{scheme}://{endpoint}"),
            host: host.to_owned(),
            creds,
            options: self.options.clone(),
            auth: tokio::sync::Mutex::new(AuthState::default()),
        })
    }
}

#[derive(Default)]
struct AuthState {
    pinged: bool,
    challenge: Option<Challenge>,
    /// Bearer tokens by scope set.
    tokens: HashMap<String, String>,
}

/// One registry, with its credentials and cached tokens.
pub struct Registry {
    http: reqwest::Client,
    base: String,
    host: String,
    creds: Credentials,
    pub(crate) options: Arc<Options>,
    auth: tokio::sync::Mutex<AuthState>,
}

fn transport(what: &str, e: &reqwest::Error) -> Error {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    let hint = if e.is_timeout() {
        "; the registry stopped answering (timeout)"
    } else if e.is_connect() {
        "; is the registry running and reachable?"
    } else {
        ""
    };
    Error::Transport(format!("{what}: {msg}{hint}"))
}

impl Registry {
    /// "http://127.0.0.1:5000" or "https://host".
    pub fn base(&self) -> &str {
        &self.base
    }
    /// The registry as references name it.
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves a `Location` header against the registry's base.
    pub fn location(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_owned()
        } else if loc.starts_with('/') {
            self.url(loc)
        } else {
            format!("{}/{loc}", self.base)
        }
    }

    pub(crate) async fn backoff(&self, attempt: u32) {
        let d = self.options.backoff.saturating_mul(1 << attempt.min(6));
        tokio::time::sleep(d).await;
    }

    /// GET /v2/ without credentials, remembering the challenge.
    async fn ping(&self, st: &mut AuthState) -> Result<()> {
        let url = self.url("/v2/");
        // Fewer retries than for data: an unreachable registry is said so quickly.
        let retries = self.options.retries.min(2);
        let mut attempt = 0;
        let resp = loop {
            match self.http.get(&url).send().await {
                Ok(r) if r.status().is_server_error() && attempt < retries => {}
                Ok(r) => break r,
                Err(e)
                    if attempt >= retries
                        || !(e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    return Err(transport(&format!("reaching {url}"), &e))
                }
                Err(_) => {}
            }
            self.backoff(attempt).await;
            attempt += 1;
        };
        st.pinged = true;
        st.challenge = None;
        if resp.status() == StatusCode::UNAUTHORIZED {
            st.challenge = challenge_of(&resp)?;
        } else if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(from_status(
                status,
                &body,
                &format!("registry {}", self.host),
            ));
        }
        Ok(())
    }

    async fn token(&self, ch: &Challenge, scopes: &[String]) -> Result<String> {
        let realm = ch.param("realm").ok_or_else(|| {
            Error::Invalid(format!(
                "registry {} asks for a bearer token but names no realm to get it from",
                self.host
            ))
        })?;
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = ch.param("service") {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s));
        }
        let req = if !self.creds.identity_token.is_empty() {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", self.creds.identity_token.as_str()),
                ("client_id", "pier"),
            ];
            form.extend(query.iter().copied());
            let body: String = form
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            self.http
                .post(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
        } else {
            let qs: String = query
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let sep = if realm.contains('?') { '&' } else { '?' };
            let url = if qs.is_empty() {
                realm.to_owned()
            } else {
                format!("{realm}{sep}{qs}")
            };
            let mut r = self.http.get(url);
            if let Some(b) = self.creds.basic() {
                r = r.header(AUTHORIZATION, b);
            }
            r
        };
        let resp = req
            .send()
            .await
            .map_err(|e| transport(&format!("getting a token from {realm}"), &e))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport(&format!("getting a token from {realm}"), &e))?;
        if status == 401 || status == 403 {
            return Err(Error::Unauthorized(format!(
                "login to {} failed: the token service {realm} answered {status}: {}",
                self.host,
                crate::error::registry_message(status, &body)
            )));
        }
        if !(200..300).contains(&status) {
            return Err(from_status(status, &body, &format!("token from {realm}")));
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            Error::Invalid(format!(
                "the token service {realm} sent an invalid answer: {e}"
            ))
        })?;
        t.bearer()
            .map(str::to_owned)
            .ok_or_else(|| Error::Invalid(format!("the token service {realm} sent no token")))
    }

    /// The `Authorization` value for requests needing `scopes`.
    async fn authorization(&self, scopes: &[String], refresh: bool) -> Result<Option<String>> {
        let mut st = self.auth.lock().await;
        if !st.pinged {
            self.ping(&mut st).await?;
        }
        let Some(ch) = st.challenge.clone() else {
            return Ok(None);
        };
        match ch.scheme.as_str() {
            "basic" => Ok(self.creds.basic()),
            "bearer" => {
                let key = scopes.join(" ");
                if !refresh {
                    if let Some(t) = st.tokens.get(&key) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let t = self.token(&ch, scopes).await?;
                st.tokens.insert(key, t.clone());
                Ok(Some(format!("Bearer {t}")))
            }
            other => Err(Error::Invalid(format!(
                "registry {} asks for authentication scheme {other:?}, which pier does not support",
                self.host
            ))),
        }
    }

    /// Sends the request `make` builds, with authorization for `scopes`;
    /// retries connection errors, 429 and 5xx with backoff (when
    /// `idempotent`), and a 401 once with fresh credentials. Any other
    /// answer is returned as is.
    pub async fn send(
        &self,
        what: &str,
        scopes: &[String],
        idempotent: bool,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            let auth = self.authorization(scopes, false).await?;
            let mut req = make(&self.http).build().map_err(|e| transport(what, &e))?;
            // Credentials go to the registry only, never to another host a
            // Location header points at (blob storage, an upload service).
            if let Some(a) = &auth {
                if self.same_origin(req.url()) {
                    if let Ok(v) = HeaderValue::from_str(a) {
                        req.headers_mut().insert(AUTHORIZATION, v);
                    }
                }
            }
            let retry_left = idempotent && attempt < self.options.retries;
            match self.http.execute(req).await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !refreshed => {
                    refreshed = true;
                    // The registry may want another scheme or scope now.
                    if let Ok(Some(ch)) = challenge_of(&r) {
                        let mut st = self.auth.lock().await;
                        st.challenge = Some(ch);
                        st.tokens.remove(&scopes.join(" "));
                    }
                    if auth.is_none() && self.creds.is_empty() {
                        // Anonymous and still refused: try once with a token.
                        let mut st = self.auth.lock().await;
                        st.tokens.remove(&scopes.join(" "));
                    }
                    self.authorization(scopes, true).await?;
                    continue;
                }
                Ok(r)
                    if (r.status() == StatusCode::TOO_MANY_REQUESTS
                        || r.status().is_server_error())
                        && retry_left => {}
                Ok(r) => return Ok(r),
                Err(e) if !retry_left => return Err(transport(what, &e)),
                Err(_) => {}
            }
            self.backoff(attempt).await;
            attempt += 1;
        }
    }

    /// Whether `url` is on the registry itself (scheme, host and port).
    fn same_origin(&self, url: &reqwest::Url) -> bool {
        reqwest::Url::parse(&self.base).is_ok_and(|b| {
            b.scheme() == url.scheme()
                && b.host_str() == url.host_str()
                && b.port_or_known_default() == url.port_or_known_default()
        })
    }

    /// Checks `/v2/` with the credentials, as `docker login` does.
    pub async fn login(&self) -> Result<()> {
        let url = self.url("/v2/");
        let failed = |status: u16| {
            Error::Unauthorized(format!(
                "login attempt to {url} failed with status: {status} {}",
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
            ))
        };
        let mut st = self.auth.lock().await;
        self.ping(&mut st).await?;
        let Some(ch) = st.challenge.clone() else {
            return Ok(());
        };
        drop(st);
        if self.creds.is_empty() {
            return Err(failed(401));
        }
        match ch.scheme.as_str() {
            "basic" => {
                let mut r = self.http.get(&url);
                if let Some(b) = self.creds.basic() {
                    r = r.header(AUTHORIZATION, b);
                }
                let resp = r
                    .send()
                    .await
                    .map_err(|e| transport(&format!("reaching {url}"), &e))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(failed(resp.status().as_u16()))
                }
            }
            _ => match self.token(&ch, &[]).await {
                Ok(_) => Ok(()),
                Err(Error::Unauthorized(_)) => Err(failed(401)),
                Err(e) => Err(e),
            },
        }
    }
}

fn challenge_of(resp: &Response) -> Result<Option<Challenge>> {
    let Some(h) = resp.headers().get(WWW_AUTHENTICATE) else {
        return Ok(None);
    };
    let h = h.to_str().map_err(|_| {
        Error::Invalid("the registry sent a WWW-Authenticate header that is not text".into())
    })?;
    let all = parse_challenges(h)?;
    Ok(all
        .iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| all.iter().find(|c| c.scheme == "basic"))
        .or(all.first())
        .cloned())
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_escapes_reserved() {
        assert_eq!(
            urlencode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(urlencode("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn registries_get_the_right_scheme() {
        let c = Client::new(Options {
            insecure_registries: vec!["my.reg:5000".into()],
            ..Options::default()
        });
        let r = |h: &str| {
            c.registry(h, Credentials::default())
                .unwrap()
                .base()
                .to_owned()
        };
        assert_eq!(r("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(r("my.reg:5000"), "http://my.reg:5000");
        assert_eq!(r("quay.io"), "https://quay.io");
        assert_eq!(r("docker.io"), "https://registry-1.docker.io");
        let reg = c.registry("localhost:1", Credentials::default()).unwrap();
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(reg.same_origin(&url("http://localhost:1/v2/x/blobs/uploads/9")));
        assert!(!reg.same_origin(&url("http://localhost:2/v2/")));
        assert!(!reg.same_origin(&url("https://localhost:1/v2/")));
        assert!(!reg.same_origin(&url("http://storage.example/upload")));
        assert_eq!(
            reg.location("/v2/x/blobs/uploads/1"),
            "http://localhost:1/v2/x/blobs/uploads/1"
        );
        assert_eq!(reg.location("http://o/x"), "http://o/x");
    }
}
