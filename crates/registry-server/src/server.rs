//! The listener: plain TCP or TLS, one HTTP/1.1 connection per task with a
//! header timeout, then routing, authentication and the access log around
//! the handlers.

use crate::auth::{Action, Auth, AuthFailure, Identity};
use crate::config::Config;
use crate::errors::{ApiError, ApiResult, Code};
use crate::http::{parse_query, Resp};
use crate::routes::Route;
use crate::storage::Storage;
use crate::uploads::Uploads;
use crate::{blobs, discovery, manifests, names};
use hyper::body::Incoming;
use hyper::{header, HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Everything a handler needs, shared by all connections.
pub struct Registry {
    pub cfg: Config,
    pub storage: Storage,
    pub uploads: Uploads,
    pub auth: Auth,
}

/// One request's context.
pub struct Ctx<'a> {
    pub reg: &'a Registry,
    pub who: Identity,
    pub method: Method,
    pub headers: &'a HeaderMap,
    pub query: HashMap<String, Vec<String>>,
}

impl Ctx<'_> {
    pub fn head(&self) -> bool {
        self.method == Method::HEAD
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.reg.cfg.body_idle_timeout_secs.max(1))
    }
}

fn method_not_allowed(m: &Method) -> ApiError {
    ApiError::new(Code::Unsupported, format!("method {m} is not allowed here"))
}

impl Registry {
    pub fn open(cfg: Config) -> Result<Registry, String> {
        cfg.check()?;
        // Credentials first: a bad htpasswd file creates nothing.
        let auth = Auth::from_config(&cfg)?;
        let storage = Storage::open(&cfg.root)
            .map_err(|e| format!("opening the registry root {}: {e}", cfg.root.display()))?;
        let uploads = Uploads::open(&storage)
            .map_err(|e| format!("opening {}: {e}", storage.uploads_dir().display()))?;
        Ok(Registry {
            cfg,
            storage,
            uploads,
            auth,
        })
    }

    fn challenge(&self, headers: &HeaderMap, tls: bool, scope: Option<String>) -> String {
        if self.auth.token_auth() {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(&self.cfg.addr);
            let scheme = if tls { "https" } else { "http" };
            let mut c =
                format!("Bearer realm=\"{scheme}://{host}/v2/token\",service=\"pier-registry\"");
            if let Some(s) = scope {
                c.push_str(&format!(",scope=\"{s}\""));
            }
            c
        } else {
            "Basic realm=\"pier-registry\"".into()
        }
    }

    async fn handle(&self, req: Request<Incoming>, tls: bool) -> (Resp, String) {
        let (parts, body) = req.into_parts();
        let head = parts.method == Method::HEAD;
        let auth_header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let who = match self.auth.identify(auth_header).await {
            Ok(w) => w,
            Err(AuthFailure::BadCredentials(why)) => {
                let e = ApiError::new(Code::Unauthorized, format!("authentication failed: {why}"))
                    .header(
                        header::WWW_AUTHENTICATE,
                        self.challenge(&parts.headers, tls, None),
                    );
                return (e.into_response(head), String::new());
            }
        };
        let user = who.name().to_owned();
        let ctx = Ctx {
            reg: self,
            who,
            method: parts.method.clone(),
            headers: &parts.headers,
            query: parse_query(parts.uri.query()),
        };
        let result = match Route::parse(parts.uri.path()) {
            None => Err(ApiError::new(
                Code::NameUnknown,
                format!("{} is not a registry API path", parts.uri.path()),
            )
            .status(StatusCode::NOT_FOUND)),
            Some(route) => self.authorize_and_dispatch(&ctx, route, body, tls).await,
        };
        let resp = result.unwrap_or_else(|e| e.into_response(head));
        (resp, user)
    }

    async fn authorize_and_dispatch(
        &self,
        ctx: &Ctx<'_>,
        route: Route,
        body: Incoming,
        tls: bool,
    ) -> ApiResult<Resp> {
        let unauthorized = |msg: String, scope: Option<String>| {
            ApiError::new(Code::Unauthorized, msg).header(
                header::WWW_AUTHENTICATE,
                self.challenge(ctx.headers, tls, scope),
            )
        };
        let anonymous_refused = self.auth.enabled() && ctx.who == Identity::Anonymous;
        if anonymous_refused && matches!(route, Route::Base | Route::Catalog) {
            let scope = (route == Route::Catalog).then(|| "registry:catalog:*".to_owned());
            return Err(unauthorized("authentication required".into(), scope));
        }
        if let Some(repo) = route.repo() {
            if !names::valid_name(repo) {
                return Err(ApiError::new(
                    Code::NameInvalid,
                    format!(
                        "invalid repository name {repo:?}: lowercase letters, digits and separators (. _ __ -) in /-separated components"
                    ),
                ));
            }
            let action = route.action(&ctx.method);
            let (r, a) = (repo, action);
            if !self.auth.allowed(&ctx.who, r, a) {
                let scope = Some(format!("repository:{r}:{}", scope_actions(a)));
                return Err(match &ctx.who {
                    Identity::User(u) => {
                        ApiError::new(Code::Denied, format!("user {u} may not {} {r}", a.as_str()))
                    }
                    Identity::Anonymous => unauthorized(
                        format!("authentication required to {} {r}", a.as_str()),
                        scope,
                    ),
                    Identity::Token { .. } => unauthorized(
                        format!("the token does not grant {} on {r}", a.as_str()),
                        scope,
                    ),
                });
            }
            if action == Action::Push && self.cfg.read_only {
                return Err(
                    ApiError::new(Code::Unsupported, "the registry is in read-only mode")
                        .status(StatusCode::METHOD_NOT_ALLOWED),
                );
            }
        }
        let m = ctx.method.clone();
        match route {
            Route::Base => match m {
                Method::GET | Method::HEAD => Ok(discovery::base(ctx)),
                _ => Err(method_not_allowed(&m)),
            },
            Route::Token => match m {
                Method::GET => discovery::token(ctx),
                _ => Err(method_not_allowed(&m)),
            },
            Route::Catalog => match m {
                Method::GET => discovery::catalog(ctx).await,
                _ => Err(method_not_allowed(&m)),
            },
            Route::Tags(name) => match m {
                Method::GET => discovery::tags(ctx, &name).await,
                _ => Err(method_not_allowed(&m)),
            },
            Route::Referrers(name, d) => match m {
                Method::GET => discovery::referrers(ctx, &name, &d).await,
                _ => Err(method_not_allowed(&m)),
            },
            Route::Manifest(name, r) => match m {
                Method::GET | Method::HEAD => manifests::get(ctx, &name, &r).await,
                Method::PUT => manifests::put(ctx, &name, &r, body).await,
                Method::DELETE => manifests::delete(ctx, &name, &r).await,
                _ => Err(method_not_allowed(&m)),
            },
            Route::Blob(name, d) => match m {
                Method::GET | Method::HEAD => blobs::get(ctx, &name, &d).await,
                Method::DELETE => blobs::delete(ctx, &name, &d).await,
                _ => Err(method_not_allowed(&m)),
            },
            Route::Uploads(name) => match m {
                Method::POST => blobs::start_upload(ctx, &name, body).await,
                _ => Err(method_not_allowed(&m)),
            },
            Route::Upload(name, id) => match m {
                Method::GET => blobs::upload_status(ctx, &name, &id).await,
                Method::PATCH => blobs::patch_upload(ctx, &name, &id, body).await,
                Method::PUT => blobs::put_upload(ctx, &name, &id, body).await,
                Method::DELETE => blobs::cancel_upload(ctx, &name, &id).await,
                _ => Err(method_not_allowed(&m)),
            },
        }
    }
}

fn scope_actions(a: Action) -> &'static str {
    match a {
        Action::Pull => "pull",
        Action::Push => "pull,push",
    }
}

/// One access-log line.
fn log_line(
    remote: &SocketAddr,
    method: &Method,
    uri: &str,
    status: u16,
    resp: &Resp,
    user: &str,
    started: Instant,
) {
    let len = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let line = serde_json::json!({
        "time": pier_common::time::now_rfc3339(),
        "remote": remote.to_string(),
        "method": method.as_str(),
        "uri": uri,
        "status": status,
        "length": len,
        "user": user,
        "ms": started.elapsed().as_secs_f64() * 1000.0,
    });
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// A bound registry, ready to serve.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    reg: Arc<Registry>,
}

impl Server {
    /// Opens the storage, reads the htpasswd and TLS files and binds the
    /// address.
    pub async fn bind(cfg: Config) -> Result<Server, String> {
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(c), Some(k)) => Some(crate::tls::acceptor(c, k)?),
            _ => None,
        };
        let addr = cfg.addr.clone();
        let reg = Arc::new(Registry::open(cfg)?);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("listening on {addr}: {e}"))?;
        Ok(Server { listener, tls, reg })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes (tests, embedding).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        tokio::select! {
            r = self.run() => r,
            _ = stop => Ok(()),
        }
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<(), String> {
        let Server { listener, tls, reg } = self;
        let sweeper = reg.clone();
        tokio::spawn(async move {
            let expiry = Duration::from_secs(sweeper.cfg.upload_expiry_secs.max(1));
            let period = (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
            loop {
                tokio::time::sleep(period).await;
                sweeper.uploads.sweep(expiry);
            }
        });
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    eprintln!("pier registry: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let reg = reg.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let header_timeout = Duration::from_secs(reg.cfg.header_timeout_secs.max(1));
                let is_tls = tls.is_some();
                let svc_reg = reg.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let reg = svc_reg.clone();
                    async move {
                        let started = Instant::now();
                        let method = req.method().clone();
                        let uri = req.uri().to_string();
                        let (resp, user) = reg.handle(req, is_tls).await;
                        if reg.cfg.access_log {
                            log_line(
                                &remote,
                                &method,
                                &uri,
                                resp.status().as_u16(),
                                &resp,
                                &user,
                                started,
                            );
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .keep_alive(true);
                match tls {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                    Some(acc) => {
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(header_timeout, acc.accept(tcp)).await
                        {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                }
            });
        }
    }
}

/// Runs a registry with `cfg` on a runtime of its own until the process
/// ends, printing the address once it listens.
pub fn serve_blocking(cfg: Config) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the registry's runtime: {e}"))?;
    rt.block_on(async move {
        let tls = cfg.tls_cert.is_some();
        let server = Server::bind(cfg).await?;
        let addr = server
            .local_addr()
            .map_err(|e| format!("reading the bound address: {e}"))?;
        eprintln!(
            "pier registry: listening on {}://{addr}",
            if tls { "https" } else { "http" }
        );
        server.run().await
    })
}
