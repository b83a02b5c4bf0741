//! The Docker Engine API over pierd's unix socket: routes, the version
//! prefix (`/v1.45/...`), query helpers.

mod archive;
mod build;
mod commit;
mod containers;
mod distribution;
mod events;
mod exec;
mod images;
mod inspect;
mod lifecycle;
mod list;
mod logs;
mod networks;
mod stats;
mod system;
mod top;
mod volumes;

use crate::error::Error;
use crate::Engine;
use axum::extract::Request;
use axum::routing::{delete, get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;

pub type Query = axum::extract::Query<HashMap<String, String>>;
pub type State = axum::extract::State<Arc<Engine>>;

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/auth", post(distribution::auth))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/get", get(images::save_many))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_by_path)
                .post(images::post_by_path)
                .delete(images::delete_by_path),
        )
        .route("/build", post(build::build))
        .route("/commit", post(commit::commit))
        .route("/system/df", get(commit::system_df))
        .route("/containers/{id}/changes", get(commit::changes))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/containers/{id}/top", get(top::top))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/export", get(commit::export))
        .route("/containers/json", get(list::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/{id}/json", get(inspect::inspect))
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/prune", post(list::prune))
        .route("/containers/{id}/start", post(lifecycle::start))
        .route("/containers/{id}/stop", post(lifecycle::stop))
        .route("/containers/{id}/restart", post(lifecycle::restart))
        .route("/containers/{id}/kill", post(lifecycle::kill))
        .route("/containers/{id}/pause", post(lifecycle::pause))
        .route("/containers/{id}/unpause", post(lifecycle::unpause))
        .route("/containers/{id}/rename", post(lifecycle::rename))
        .route("/containers/{id}/wait", post(lifecycle::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/containers/{id}/resize", post(exec::container_resize))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/containers/{id}", delete(lifecycle::remove))
        .route("/events", get(events::events))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .fallback(|req: Request| async move {
            Error::not_found(format!(
                "page not found: {} {}",
                req.method(),
                req.uri().path()
            ))
        })
        .with_state(engine)
}

/// Strips Docker's `/vX.Y` prefix so routes match every API version;
/// versions above ours are refused as Docker does.
pub fn strip_version(mut req: Request) -> Result<Request, Error> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        req.extensions_mut()
            .insert(ApiVersion(crate::API_VERSION.to_string()));
        return Ok(req);
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        req.extensions_mut()
            .insert(ApiVersion(crate::API_VERSION.to_string()));
        return Ok(req);
    }
    if version_gt(version, crate::API_VERSION) {
        return Err(Error::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {}",
            crate::API_VERSION
        )));
    }
    if version_gt(crate::MIN_API_VERSION, version) {
        return Err(Error::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is {}, \
             please upgrade your client to a newer version",
            crate::MIN_API_VERSION
        )));
    }
    let asked = ApiVersion(version.to_string());
    let new_path = rest[end..].to_string();
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    if let Ok(uri) = pq.parse() {
        *req.uri_mut() = uri;
    }
    req.extensions_mut().insert(asked);
    Ok(req)
}

/// The API version a request asked for (its `/vX.Y` prefix; the newest
/// without one), a request extension for answers that differ between
/// versions: `axum::Extension<ApiVersion>` in a handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiVersion(pub String);

impl ApiVersion {
    /// Whether the client asked for a version older than `v` ("1.52").
    pub fn before(&self, v: &str) -> bool {
        version_gt(v, &self.0)
    }
}

fn version_gt(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) > parse(b)
}

/// Docker's boolean query values: `1`, `true`, `True`.
pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_after(uri: &str) -> Result<String, Error> {
        let req = Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        strip_version(req).map(|r| r.uri().to_string())
    }

    #[test]
    fn version_prefix_is_stripped() {
        assert_eq!(
            path_after("/v1.43/containers/json?all=1").unwrap(),
            "/containers/json?all=1"
        );
        assert_eq!(path_after("/_ping").unwrap(), "/_ping");
        assert_eq!(path_after("/volumes").unwrap(), "/volumes");
        assert!(path_after("/v9.99/info")
            .unwrap_err()
            .message
            .contains("too new"));
    }

    #[test]
    fn versions_below_the_minimum_are_refused_as_docker_does() {
        let e = path_after("/v1.12/version").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.12 is too old. Minimum supported API version is 1.24, \
             please upgrade your client to a newer version"
        );
        assert!(path_after("/v1.24/version").is_ok());
    }

    #[test]
    fn the_asked_version_is_kept_for_handlers() {
        let asked = |uri: &str| {
            let req = Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap();
            strip_version(req)
                .unwrap()
                .extensions()
                .get::<ApiVersion>()
                .cloned()
                .unwrap()
        };
        assert_eq!(asked("/v1.29/events"), ApiVersion("1.29".into()));
        assert!(asked("/v1.29/events").before("1.52"));
        assert!(!asked("/v1.52/events").before("1.52"));
        assert!(!asked("/events").before("1.52"));
        assert_eq!(asked("/events"), ApiVersion(crate::API_VERSION.into()));
    }

    #[test]
    fn flags_accept_docker_spellings() {
        let q: HashMap<String, String> = [("a", "1"), ("b", "true"), ("c", "0")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(flag(&q, "a") && flag(&q, "b") && !flag(&q, "c") && !flag(&q, "d"));
    }
}
