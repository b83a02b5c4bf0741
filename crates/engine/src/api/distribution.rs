//! Registry endpoints: pull (`POST /images/create?fromImage=`), push
//! (`POST /images/{name}/push`) and login (`POST /auth`), with docker's
//! streamed JSON progress. Errors found before anything is streamed get
//! an HTTP status; later ones end the stream with an `errorDetail` line.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pier_image::reference::Reference;
use pier_registry_client::{pull, push, Credentials, Message, Platform};

use crate::error::{Error, Result};
use crate::Engine;

fn client_err(e: pier_registry_client::Error) -> Error {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Error::new(status, e.to_string())
}

fn credentials(headers: &HeaderMap) -> Result<Credentials> {
    match headers.get("x-registry-auth") {
        None => Ok(Credentials::default()),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| Error::bad_request("X-Registry-Auth is not ASCII base64"))?;
            Credentials::from_header(v).map_err(client_err)
        }
    }
}

/// The reference `fromImage` and `tag` name together: `tag` (a tag or a
/// `sha256:` digest) replaces what `fromImage` carries.
pub fn pull_reference(from_image: &str, tag: &str) -> Result<Reference> {
    let base = Reference::parse(from_image)?;
    let full = if tag.is_empty() {
        return Ok(base);
    } else if tag.starts_with("sha256:") {
        format!("{}@{tag}", base.repository())
    } else {
        format!("{}:{tag}", base.repository())
    };
    Ok(Reference::parse(&full)?)
}

/// A streamed JSON-lines response fed by a progress callback.
fn progress_stream() -> (pull::Progress, Response) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let progress: pull::Progress = Arc::new(move |m: Message| {
        let _ = tx.send(Bytes::from(m.to_line()));
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, std::io::Error>))
    });
    let resp = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response();
    (progress, resp)
}

/// Whether `name` carries a tag or digest ("a:1", "h:5000/a@sha256:..").
fn names_tag_or_digest(name: &str) -> bool {
    name.contains('@')
        || name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

/// `POST /images/create?fromImage=NAME&tag=TAG&platform=P`; no tag at all
/// pulls every tag of the repository, as dockerd does.
pub async fn pull(
    engine: Arc<Engine>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response> {
    let from = q.get("fromImage").map(String::as_str).unwrap_or("");
    let tag = q.get("tag").map(String::as_str).unwrap_or("");
    let reference = pull_reference(from, tag)?;
    let platform =
        Platform::parse(q.get("platform").map(String::as_str).unwrap_or("")).map_err(client_err)?;
    let creds = credentials(headers)?;
    if tag.is_empty() && !names_tag_or_digest(from) {
        return pull_all_tags(engine, reference, platform, creds).await;
    }
    let resolved = pull::resolve(&engine.registry, &reference, &platform, creds)
        .await
        .map_err(client_err)?;
    let (progress, resp) = progress_stream();
    let store = engine.images.clone();
    tokio::spawn(async move {
        if let Err(e) = resolved.fetch(store, progress.clone()).await {
            progress(Message::error(e.to_string()));
        }
    });
    Ok(resp)
}

async fn pull_all_tags(
    engine: Arc<Engine>,
    reference: Reference,
    platform: Platform,
    creds: Credentials,
) -> Result<Response> {
    let reg = engine
        .registry
        .registry(reference.domain(), creds.clone())
        .map_err(client_err)?;
    let tags = pier_registry_client::fetch::tags(&reg, reference.path())
        .await
        .map_err(client_err)?;
    if tags.is_empty() {
        return Err(Error::not_found(format!(
            "{} has no tags to pull",
            reference.familiar_name()
        )));
    }
    let (progress, resp) = progress_stream();
    tokio::spawn(async move {
        let mut all_up_to_date = true;
        for t in tags {
            let one = async {
                let r = Reference::parse(&format!("{}:{t}", reference.repository()))?;
                pull::resolve(&engine.registry, &r, &platform, creds.clone())
                    .await?
                    .fetch_with(engine.images.clone(), progress.clone(), false)
                    .await
            };
            match one.await {
                Ok(p) => all_up_to_date &= p.up_to_date,
                Err(e) => {
                    progress(Message::error(e.to_string()));
                    return;
                }
            }
        }
        let name = reference.familiar_name();
        progress(Message::status(if all_up_to_date {
            format!("Status: Image is up to date for {name}")
        } else {
            format!("Status: Downloaded newer image for {name}")
        }));
    });
    Ok(resp)
}

/// `POST /images/{name}/push?tag=TAG`; without a tag (and none in the
/// name) every local tag of the repository is pushed, as dockerd does.
pub async fn push(
    engine: Arc<Engine>,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response> {
    let creds = credentials(headers)?;
    let tag = q.get("tag").map(String::as_str).filter(|t| !t.is_empty());
    let all = if tag.is_none() && !names_tag_or_digest(name) {
        push::prepare_all(&engine.registry, engine.images.clone(), name, creds).await
    } else {
        push::prepare(&engine.registry, engine.images.clone(), name, tag, creds)
            .await
            .map(|p| vec![p])
    }
    .map_err(client_err)?;
    let (progress, resp) = progress_stream();
    let store = engine.images.clone();
    tokio::spawn(async move {
        for prepared in all {
            if let Err(e) = prepared.send(store.clone(), progress.clone()).await {
                progress(Message::error(e.to_string()));
                return;
            }
        }
    });
    Ok(resp)
}

/// The registry host `docker login` names: "https://index.docker.io/v1/",
/// "localhost:5000", "http://h:5000/v2/" -> "docker.io", "localhost:5000", "h:5000".
pub fn login_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_owned(),
    }
}

#[derive(serde::Deserialize)]
struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "serveraddress")]
    server_address: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

/// `POST /auth`: checks credentials against the registry.
pub async fn auth(
    axum::extract::State(engine): crate::api::State,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>> {
    let b: AuthBody = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request(format!("invalid auth configuration: {e}")))?;
    let host = login_host(&b.server_address);
    let creds = Credentials {
        username: b.username,
        password: b.password,
        identity_token: b.identity_token,
        server_address: b.server_address,
    };
    let reg = engine.registry.registry(&host, creds).map_err(client_err)?;
    reg.login().await.map_err(client_err)?;
    Ok(axum::Json(serde_json::json!({
        "Status": "Login Succeeded",
        "IdentityToken": ""
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_combine_like_dockerd() {
        let r = |a: &str, b: &str| pull_reference(a, b).unwrap().to_string();
        assert_eq!(r("busybox", "latest"), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox", ""), "docker.io/library/busybox:latest");
        assert_eq!(r("h:5000/a/b", "v1"), "h:5000/a/b:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(r("h:5000/a", &d), format!("h:5000/a@{d}"));
        assert_eq!(r(&format!("h:5000/a@{d}"), ""), format!("h:5000/a@{d}"));
        assert!(pull_reference("Bad Name", "").is_err());
        assert!(pull_reference("a", "bad tag").is_err());
    }

    #[test]
    fn tags_and_digests_are_told_from_ports() {
        assert!(names_tag_or_digest("a:1"));
        assert!(names_tag_or_digest("h:5000/a:1"));
        assert!(names_tag_or_digest("h:5000/a@sha256:x"));
        assert!(!names_tag_or_digest("h:5000/a"));
        assert!(!names_tag_or_digest("busybox"));
    }

    #[test]
    fn login_hosts_normalise() {
        assert_eq!(login_host(""), "docker.io");
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_host("localhost:5000"), "localhost:5000");
        assert_eq!(login_host("http://h:5000/v2/"), "h:5000");
    }
}
