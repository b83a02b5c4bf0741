//! Manifest endpoints: GET/HEAD/PUT/DELETE `/v2/NAME/manifests/REF`, for
//! OCI and Docker schema2 manifests and indexes. A manifest is stored
//! byte for byte as a blob; the repository links it with its media type.

use crate::errors::{ApiError, ApiResult, Code};
use crate::http::{empty, full, Resp};
use crate::names::{Digest, Reference, ReferenceError};
use crate::server::Ctx;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{header, Response, StatusCode};
use serde_json::Value;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn parse_reference(r: &str) -> ApiResult<Reference> {
    let r = crate::http::percent_decode(r);
    Reference::parse(&r).map_err(|e| match e {
        ReferenceError::BadDigest => ApiError::new(
            Code::DigestInvalid,
            format!("{r:?} is not a sha256 digest (sha256:<64 lowercase hex>)"),
        ),
        ReferenceError::BadTag => ApiError::new(
            Code::ManifestInvalid,
            format!("{r:?} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"),
        ),
    })
}

fn manifest_unknown(name: &str, r: &str) -> ApiError {
    ApiError::new(
        Code::ManifestUnknown,
        format!("manifest {r} is not in {name}"),
    )
}

/// The digest a reference names in `name`, or MANIFEST_UNKNOWN.
fn resolve(ctx: &Ctx<'_>, name: &str, r: &Reference) -> ApiResult<Digest> {
    match r {
        Reference::Digest(d) => Ok(d.clone()),
        Reference::Tag(t) => ctx
            .reg
            .storage
            .resolve_tag(name, t)?
            .ok_or_else(|| manifest_unknown(name, t)),
    }
}

pub async fn get(ctx: &Ctx<'_>, name: &str, reference: &str) -> ApiResult<Resp> {
    let r = parse_reference(reference)?;
    let storage = &ctx.reg.storage;
    if !storage.repo_exists(name) {
        return Err(ApiError::new(
            Code::NameUnknown,
            format!("repository {name} is not known"),
        ));
    }
    let d = resolve(ctx, name, &r)?;
    let media_type = storage
        .manifest_media_type(name, &d)?
        .ok_or_else(|| manifest_unknown(name, reference))?;
    let bytes = storage
        .read_blob(&d)?
        .ok_or_else(|| manifest_unknown(name, reference))?;
    let b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("docker-content-digest", d.to_string())
        .header(header::ETAG, format!("\"{d}\""));
    let body = if ctx.head() { empty() } else { full(bytes) };
    b.body(body).map_err(ApiError::internal)
}

/// Bytes of an oversized body read and thrown away before answering 413,
/// so that ordinary clients, still sending, see the answer rather than a
/// reset connection. Past it the connection is simply closed.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads at most `limit` bytes of body; 413 above.
async fn read_limited(ctx: &Ctx<'_>, mut body: Incoming, limit: u64) -> ApiResult<Vec<u8>> {
    let too_big = || {
        ApiError::new(
            Code::SizeInvalid,
            format!("manifest larger than the registry's limit of {limit} bytes"),
        )
        .status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let announced = ctx
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    let mut seen: u64 = 0;
    loop {
        let frame = tokio::time::timeout(ctx.idle_timeout(), body.frame())
            .await
            .map_err(|_| ApiError::new(Code::ManifestInvalid, "manifest body timed out"))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            ApiError::new(Code::ManifestInvalid, format!("reading the manifest: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                return Err(too_big());
            }
            if seen <= limit {
                out.extend_from_slice(&data);
            }
        }
    }
    if seen > limit {
        return Err(too_big());
    }
    Ok(out)
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid, msg)
}

/// A descriptor's digest and size.
fn descriptor(v: &Value, what: &str) -> ApiResult<(Digest, u64)> {
    let d = v["digest"]
        .as_str()
        .and_then(Digest::parse)
        .ok_or_else(|| invalid(format!("{what}: missing or non-sha256 digest")))?;
    let size = v["size"]
        .as_u64()
        .ok_or_else(|| invalid(format!("{what}: missing or negative size")))?;
    Ok((d, size))
}

/// Checks what the manifest references exists in `name`.
fn check_references(ctx: &Ctx<'_>, name: &str, m: &Value, media_type: &str) -> ApiResult<()> {
    let storage = &ctx.reg.storage;
    let missing = |d: &Digest, what: &str| {
        ApiError::new(
            Code::ManifestBlobUnknown,
            format!("the manifest references {what} {d}, which is not in {name}: push it first"),
        )
    };
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_LIST
        || (m.get("manifests").is_some() && m.get("layers").is_none());
    if is_index {
        let list = m["manifests"]
            .as_array()
            .ok_or_else(|| invalid("an index needs a \"manifests\" array"))?;
        for (i, child) in list.iter().enumerate() {
            let (d, _) = descriptor(child, &format!("manifests[{i}]"))?;
            if storage.manifest_media_type(name, &d)?.is_none() {
                return Err(missing(&d, "manifest"));
            }
        }
        return Ok(());
    }
    let mut blobs = Vec::new();
    if let Some(c) = m.get("config") {
        blobs.push((c, "config".to_owned()));
    } else if media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST {
        return Err(invalid("an image manifest needs a \"config\" descriptor"));
    }
    for key in ["layers", "blobs"] {
        if let Some(list) = m.get(key) {
            let list = list
                .as_array()
                .ok_or_else(|| invalid(format!("\"{key}\" must be an array")))?;
            for (i, l) in list.iter().enumerate() {
                blobs.push((l, format!("{key}[{i}]")));
            }
        }
    }
    for (desc, what) in blobs {
        // Foreign layers (with urls) live elsewhere.
        if desc.get("urls").is_some_and(|u| u.is_array()) {
            continue;
        }
        let (d, size) = descriptor(desc, &what)?;
        match storage.repo_has_blob(name, &d)? {
            None => return Err(missing(&d, "blob")),
            Some(s) if s != size => {
                return Err(invalid(format!(
                    "{what}: descriptor says {size} bytes but blob {d} has {s}"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub async fn put(ctx: &Ctx<'_>, name: &str, reference: &str, body: Incoming) -> ApiResult<Resp> {
    let r = parse_reference(reference)?;
    let bytes = read_limited(ctx, body, ctx.reg.cfg.max_manifest_bytes).await?;
    let m: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    if !m.is_object() {
        return Err(invalid("the manifest is not a JSON object"));
    }
    if m["schemaVersion"].as_u64() != Some(2) {
        return Err(invalid(
            "only schemaVersion 2 manifests are accepted (OCI or Docker schema2)",
        ));
    }
    let content_type = ctx
        .header(header::CONTENT_TYPE)
        .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|c| !c.is_empty());
    let body_type = m["mediaType"].as_str().map(str::to_owned);
    if let (Some(c), Some(b)) = (&content_type, &body_type) {
        if c != b {
            return Err(invalid(format!(
                "Content-Type {c} differs from the manifest's mediaType {b}"
            )));
        }
    }
    let media_type = body_type
        .or(content_type)
        .ok_or_else(|| invalid("neither a mediaType field nor a Content-Type header"))?;
    let d = Digest::of(&bytes);
    if let Reference::Digest(want) = &r {
        if want != &d {
            return Err(ApiError::new(
                Code::DigestInvalid,
                format!("the manifest's digest is {d}, not {want}"),
            ));
        }
    }
    check_references(ctx, name, &m, &media_type)?;
    let subject = match m.get("subject") {
        None | Some(Value::Null) => None,
        Some(s) => Some(descriptor(s, "subject")?.0),
    };
    let mut tags: Vec<String> = match &r {
        Reference::Tag(t) => vec![t.clone()],
        Reference::Digest(_) => Vec::new(),
    };
    for t in ctx.query.get("tag").into_iter().flatten() {
        if !crate::names::valid_tag(t) {
            return Err(invalid(format!("{t:?} is not a valid tag")));
        }
        tags.push(t.clone());
    }
    let storage = ctx.reg.storage.clone();
    let (name2, d2, subject2, tags2) = (name.to_owned(), d.clone(), subject.clone(), tags.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        storage.put_blob_bytes(&bytes)?;
        storage.link_manifest(&name2, &d2, &media_type)?;
        if let Some(s) = &subject2 {
            storage.add_referrer(&name2, s, &d2)?;
        }
        for t in &tags2 {
            storage.set_tag(&name2, t, &d2)?;
        }
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    let mut b = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{d}"))
        .header("docker-content-digest", d.to_string())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(s) = subject {
        b = b.header("oci-subject", s.to_string());
    }
    if matches!(r, Reference::Digest(_)) && !tags.is_empty() {
        b = b.header("oci-tag", tags.join(", "));
    }
    b.body(empty()).map_err(ApiError::internal)
}

pub async fn delete(ctx: &Ctx<'_>, name: &str, reference: &str) -> ApiResult<Resp> {
    let r = parse_reference(reference)?;
    let storage = &ctx.reg.storage;
    match &r {
        Reference::Tag(t) => {
            if !storage.remove_tag(name, t)? {
                return Err(manifest_unknown(name, t));
            }
        }
        Reference::Digest(d) => {
            if storage.manifest_media_type(name, d)?.is_none() {
                return Err(manifest_unknown(name, reference));
            }
            let subject = storage
                .read_blob(d)?
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|m| m["subject"]["digest"].as_str().and_then(Digest::parse));
            storage.unlink_manifest(name, d)?;
            storage.remove_tags_of(name, d)?;
            if let Some(s) = subject {
                storage.remove_referrer(name, &s, d)?;
            }
        }
    }
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .map_err(ApiError::internal)
}
