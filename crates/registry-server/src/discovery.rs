//! `/v2/` ping, `/v2/token`, `_catalog`, `tags/list` (with `n`/`last`
//! pagination and `Link` headers) and the referrers API.

use crate::errors::{ApiError, ApiResult, Code};
use crate::http::{full, percent_encode, query_one, Resp};
use crate::manifests::OCI_INDEX;
use crate::names::Digest;
use crate::server::Ctx;
use hyper::{header, Response, StatusCode};
use serde_json::{json, Value};

fn json_response(status: StatusCode, v: &Value, content_type: &str) -> ApiResult<Resp> {
    let body = v.to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .body(full(body))
        .map_err(ApiError::internal)
}

pub fn base(ctx: &Ctx<'_>) -> Resp {
    let body = if ctx.head() { "" } else { "{}" };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("docker-distribution-api-version", "registry/2.0")
        .header(header::CONTENT_LENGTH, 2)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Issues a bearer token for the requested `scope` (docker's token flow).
pub fn token(ctx: &Ctx<'_>) -> ApiResult<Resp> {
    if !ctx.reg.auth.token_auth() {
        return Err(ApiError::new(
            Code::Unsupported,
            "token authentication is not enabled (token_auth = true)",
        )
        .status(StatusCode::NOT_FOUND));
    }
    let scope = ctx
        .query
        .get("scope")
        .map(|v| v.join(" "))
        .unwrap_or_default();
    let (tok, ttl) = ctx.reg.auth.issue_token(&ctx.who, &scope);
    json_response(
        StatusCode::OK,
        &json!({
            "token": tok,
            "access_token": tok,
            "expires_in": ttl,
            "issued_at": pier_common::time::now_rfc3339(),
        }),
        "application/json",
    )
}

/// `n` and `last` of a paginated list; `n` absent means everything.
fn page_params(ctx: &Ctx<'_>) -> ApiResult<(Option<usize>, Option<String>)> {
    let n = match query_one(&ctx.query, "n") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::new(
                Code::Unsupported,
                format!("n={v:?} is not a non-negative integer"),
            )
            .status(StatusCode::BAD_REQUEST)
        })?),
    };
    Ok((n, query_one(&ctx.query, "last").map(str::to_owned)))
}

/// One page of `all` (sorted) after `last`, and the `Link` to the next.
fn paginate(
    all: Vec<String>,
    n: Option<usize>,
    last: Option<&str>,
    path: &str,
) -> (Vec<String>, Option<String>) {
    let after: Vec<String> = match last {
        Some(l) => all.into_iter().filter(|x| x.as_str() > l).collect(),
        None => all,
    };
    match n {
        None => (after, None),
        Some(0) => (Vec::new(), None),
        Some(n) => {
            let more = after.len() > n;
            let page: Vec<String> = after.into_iter().take(n).collect();
            let link = match (more, page.last()) {
                (true, Some(l)) => Some(format!(
                    "<{path}?n={n}&last={}>; rel=\"next\"",
                    percent_encode(l)
                )),
                _ => None,
            };
            (page, link)
        }
    }
}

fn list_response(
    key: &str,
    extra: Option<(&str, &str)>,
    page: Vec<String>,
    link: Option<String>,
) -> ApiResult<Resp> {
    let mut v = json!({ key: page });
    if let Some((k, val)) = extra {
        v[k] = json!(val);
    }
    let mut resp = json_response(StatusCode::OK, &v, "application/json")?;
    if let Some(l) = link {
        if let Ok(h) = l.parse() {
            resp.headers_mut().insert(header::LINK, h);
        }
    }
    Ok(resp)
}

pub async fn catalog(ctx: &Ctx<'_>) -> ApiResult<Resp> {
    let (n, last) = page_params(ctx)?;
    let all: Vec<String> = ctx
        .reg
        .storage
        .catalog()?
        .into_iter()
        .filter(|r| ctx.reg.auth.may_list(&ctx.who, r))
        .collect();
    let (page, link) = paginate(all, n, last.as_deref(), "/v2/_catalog");
    list_response("repositories", None, page, link)
}

pub async fn tags(ctx: &Ctx<'_>, name: &str) -> ApiResult<Resp> {
    let storage = &ctx.reg.storage;
    if !storage.repo_exists(name) {
        return Err(ApiError::new(
            Code::NameUnknown,
            format!("repository {name} is not known"),
        ));
    }
    let (n, last) = page_params(ctx)?;
    let (page, link) = paginate(
        storage.tags(name)?,
        n,
        last.as_deref(),
        &format!("/v2/{name}/tags/list"),
    );
    list_response("tags", Some(("name", name)), page, link)
}

/// The descriptor of referrer `d` as the referrers API lists it.
fn referrer_descriptor(ctx: &Ctx<'_>, name: &str, d: &Digest) -> ApiResult<Option<Value>> {
    let storage = &ctx.reg.storage;
    let Some(media_type) = storage.manifest_media_type(name, d)? else {
        return Ok(None);
    };
    let Some(bytes) = storage.read_blob(d)? else {
        return Ok(None);
    };
    let Ok(m) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(None);
    };
    let mut desc = json!({
        "mediaType": media_type,
        "digest": d.to_string(),
        "size": bytes.len(),
    });
    let artifact_type = m["artifactType"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            (media_type != OCI_INDEX)
                .then(|| m["config"]["mediaType"].as_str().map(str::to_owned))
                .flatten()
        });
    if let Some(a) = artifact_type {
        desc["artifactType"] = json!(a);
    }
    if let Some(a) = m.get("annotations").filter(|a| a.is_object()) {
        desc["annotations"] = a.clone();
    }
    Ok(Some(desc))
}

pub async fn referrers(ctx: &Ctx<'_>, name: &str, digest: &str) -> ApiResult<Resp> {
    let subject = Digest::parse(&crate::http::percent_decode(digest)).ok_or_else(|| {
        ApiError::new(
            Code::DigestInvalid,
            format!("{digest:?} is not a sha256 digest"),
        )
    })?;
    let filter = query_one(&ctx.query, "artifactType");
    let mut list = Vec::new();
    for d in ctx.reg.storage.referrers(name, &subject)? {
        if let Some(desc) = referrer_descriptor(ctx, name, &d)? {
            if filter.is_none_or(|f| desc["artifactType"].as_str() == Some(f)) {
                list.push(desc);
            }
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": list,
    });
    let mut resp = json_response(StatusCode::OK, &index, OCI_INDEX)?;
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            hyper::header::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
