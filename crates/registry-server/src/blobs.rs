//! Blob endpoints: GET/HEAD (with Range) and DELETE of
//! `/v2/NAME/blobs/DIGEST`, and the upload protocol under
//! `/v2/NAME/blobs/uploads/`: POST (session, monolithic `?digest=`, or
//! `?mount=&from=`), PATCH (chunked with Content-Range, or streamed),
//! PUT `?digest=` (close), GET (status), DELETE (cancel).

use crate::auth::Action;
use crate::errors::{ApiError, ApiResult, Code};
use crate::http::{empty, file_body, query_one, Resp};
use crate::names::{self, Digest, RangeRequest};
use crate::server::Ctx;
use crate::uploads::{self, Session};
use hyper::body::Incoming;
use hyper::{header, Response, StatusCode};

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
const DOCKER_UPLOAD_UUID: &str = "docker-upload-uuid";

fn parse_digest(s: &str) -> ApiResult<Digest> {
    Digest::parse(&crate::http::percent_decode(s)).ok_or_else(|| {
        ApiError::new(
            Code::DigestInvalid,
            format!("{s:?} is not a sha256 digest (sha256:<64 lowercase hex>)"),
        )
    })
}

fn blob_unknown(name: &str, d: &Digest) -> ApiError {
    ApiError::new(Code::BlobUnknown, format!("blob {d} is not in {name}"))
}

fn build(b: hyper::http::response::Builder, body: crate::http::Body) -> ApiResult<Resp> {
    b.body(body).map_err(ApiError::internal)
}

pub async fn get(ctx: &Ctx<'_>, name: &str, digest: &str) -> ApiResult<Resp> {
    let d = parse_digest(digest)?;
    let storage = &ctx.reg.storage;
    let size = storage
        .repo_has_blob(name, &d)?
        .ok_or_else(|| blob_unknown(name, &d))?;
    let range = match ctx.header(header::RANGE) {
        Some(v) => names::parse_range_header(v, size),
        None => RangeRequest::Whole,
    };
    let b = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(DOCKER_CONTENT_DIGEST, d.to_string())
        .header(header::ETAG, format!("\"{d}\""))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "max-age=31536000");
    let (b, start, len) = match range {
        RangeRequest::Whole => (b.status(StatusCode::OK), 0, size),
        RangeRequest::Part(r) => (
            b.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end),
            ),
            r.start,
            r.len(),
        ),
        RangeRequest::Unsatisfiable => {
            return build(
                b.status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_LENGTH, 0),
                empty(),
            );
        }
    };
    let b = b.header(header::CONTENT_LENGTH, len);
    if ctx.head() {
        return build(b, empty());
    }
    let path = storage.blob_path(&d);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        // Removed by gc between the check and the open.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(blob_unknown(name, &d)),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "opening {}: {e}",
                path.display()
            )))
        }
    };
    build(b, file_body(file, start, len).await?)
}

pub async fn delete(ctx: &Ctx<'_>, name: &str, digest: &str) -> ApiResult<Resp> {
    let d = parse_digest(digest)?;
    if !ctx.reg.storage.unlink_blob(name, &d)? {
        return Err(blob_unknown(name, &d));
    }
    build(
        Response::builder()
            .status(StatusCode::ACCEPTED)
            .header(header::CONTENT_LENGTH, 0),
        empty(),
    )
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// The `Range` header of a session: the inclusive range received so far
/// (`0-0` for an empty one, as distribution answers).
fn range_value(s: &Session) -> String {
    format!("0-{}", s.offset.saturating_sub(1))
}

fn session_response(status: StatusCode, name: &str, id: &str, s: &Session) -> ApiResult<Resp> {
    build(
        Response::builder()
            .status(status)
            .header(header::LOCATION, upload_location(name, id))
            .header(header::RANGE, range_value(s))
            .header(DOCKER_UPLOAD_UUID, id)
            .header(header::CONTENT_LENGTH, 0),
        empty(),
    )
}

fn created_blob(name: &str, d: &Digest) -> ApiResult<Resp> {
    build(
        Response::builder()
            .status(StatusCode::CREATED)
            .header(header::LOCATION, format!("/v2/{name}/blobs/{d}"))
            .header(DOCKER_CONTENT_DIGEST, d.to_string())
            .header(header::CONTENT_LENGTH, 0),
        empty(),
    )
}

fn content_length(ctx: &Ctx<'_>) -> ApiResult<Option<u64>> {
    match ctx.header(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| {
                ApiError::new(Code::SizeInvalid, format!("invalid Content-Length {v:?}"))
            })
        }
    }
}

/// Checks a chunk's Content-Range against the session and returns the
/// chunk's announced length: 416 when it does not start where the
/// session ends.
fn chunk_length(ctx: &Ctx<'_>, name: &str, id: &str, s: &Session) -> ApiResult<Option<u64>> {
    let cl = content_length(ctx)?;
    let Some(cr) = ctx.header(header::CONTENT_RANGE) else {
        return Ok(cl);
    };
    let Some(r) = names::parse_content_range(cr) else {
        return Err(ApiError::new(
            Code::BlobUploadInvalid,
            format!("invalid Content-Range {cr:?} (expected START-END)"),
        )
        .status(StatusCode::RANGE_NOT_SATISFIABLE)
        .header(header::LOCATION, upload_location(name, id))
        .header(header::RANGE, range_value(s)));
    };
    if r.start != s.offset {
        return Err(ApiError::new(
            Code::BlobUploadInvalid,
            format!(
                "chunk {}-{} is out of order: the upload has {} bytes, so the next chunk starts at {}",
                r.start, r.end, s.offset, s.offset
            ),
        )
        .status(StatusCode::RANGE_NOT_SATISFIABLE)
        .header(header::LOCATION, upload_location(name, id))
        .header(header::RANGE, range_value(s)));
    }
    if let Some(n) = cl {
        if n != r.len() {
            return Err(ApiError::new(
                Code::SizeInvalid,
                format!(
                    "Content-Length {n} does not match Content-Range {}-{} ({} bytes)",
                    r.start,
                    r.end,
                    r.len()
                ),
            ));
        }
    }
    Ok(Some(r.len()))
}

pub async fn start_upload(ctx: &Ctx<'_>, name: &str, body: Incoming) -> ApiResult<Resp> {
    let reg = ctx.reg;
    if let (Some(mount), Some(from)) = (
        query_one(&ctx.query, "mount"),
        query_one(&ctx.query, "from"),
    ) {
        let d = parse_digest(mount)?;
        if names::valid_name(from)
            && reg.auth.allowed(&ctx.who, from, Action::Pull)
            && reg.storage.repo_has_blob(from, &d)?.is_some()
        {
            reg.storage.link_blob(name, &d)?;
            return created_blob(name, &d);
        }
        // Not mountable: a plain upload session instead (spec: 202).
    }
    let id = reg.uploads.start(name)?;
    let session = reg.uploads.get(name, &id).await?;
    let mut s = session.lock().await;
    if let Some(digest) = query_one(&ctx.query, "digest") {
        let result: ApiResult<Digest> = async {
            let d = parse_digest(digest)?;
            let expected = content_length(ctx)?;
            uploads::append(&mut s, body, expected, ctx.idle_timeout()).await?;
            uploads::finish(&reg.storage, &mut s, &d).await?;
            Ok(d)
        }
        .await;
        drop(s);
        reg.uploads.remove(&id);
        return created_blob(name, &result?);
    }
    session_response(StatusCode::ACCEPTED, name, &id, &s)
}

pub async fn upload_status(ctx: &Ctx<'_>, name: &str, id: &str) -> ApiResult<Resp> {
    let session = ctx.reg.uploads.get(name, id).await?;
    let s = session.lock().await;
    session_response(StatusCode::NO_CONTENT, name, id, &s)
}

pub async fn patch_upload(ctx: &Ctx<'_>, name: &str, id: &str, body: Incoming) -> ApiResult<Resp> {
    let session = ctx.reg.uploads.get(name, id).await?;
    let mut s = session.lock().await;
    let expected = chunk_length(ctx, name, id, &s)?;
    uploads::append(&mut s, body, expected, ctx.idle_timeout()).await?;
    session_response(StatusCode::ACCEPTED, name, id, &s)
}

pub async fn put_upload(ctx: &Ctx<'_>, name: &str, id: &str, body: Incoming) -> ApiResult<Resp> {
    let reg = ctx.reg;
    let session = reg.uploads.get(name, id).await?;
    let mut s = session.lock().await;
    let d = match query_one(&ctx.query, "digest") {
        Some(v) => parse_digest(v)?,
        None => {
            return Err(ApiError::new(
                Code::DigestInvalid,
                "closing an upload needs ?digest=sha256:... of the whole blob",
            ))
        }
    };
    let expected = chunk_length(ctx, name, id, &s)?;
    // A failed final chunk leaves the session as it was: the client may
    // retry it.
    uploads::append(&mut s, body, expected, ctx.idle_timeout()).await?;
    let result = uploads::finish(&reg.storage, &mut s, &d).await;
    drop(s);
    reg.uploads.remove(id);
    result?;
    created_blob(name, &d)
}

pub async fn cancel_upload(ctx: &Ctx<'_>, name: &str, id: &str) -> ApiResult<Resp> {
    // Check it exists (and belongs to this repo) first.
    drop(ctx.reg.uploads.get(name, id).await?);
    ctx.reg.uploads.remove(id);
    build(
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(header::CONTENT_LENGTH, 0),
        empty(),
    )
}
