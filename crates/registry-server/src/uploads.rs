//! Blob upload sessions: the bytes go to `uploads/ID` as they arrive, with
//! a running sha256; a chunk that fails (client gone, wrong length, idle
//! too long) is cut back off, so a session only ever holds whole chunks.
//! A finished upload is verified, fsynced and renamed into the blob store;
//! until then nothing of it is visible. Sessions live in memory: after a
//! restart, leftover files are removed and clients start over.

use crate::errors::{ApiError, ApiResult, Code};
use crate::names::Digest;
use crate::storage::Storage;
use bytes::Buf;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes gathered before each write to disk.
const WRITE_BATCH: usize = 1024 * 1024;

pub struct Session {
    pub repo: String,
    path: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    /// Bytes received so far (the next chunk must start here).
    pub offset: u64,
    touched: Instant,
}

pub type SessionRef = Arc<tokio::sync::Mutex<Session>>;

pub struct Uploads {
    dir: PathBuf,
    sessions: Mutex<HashMap<String, SessionRef>>,
}

impl Uploads {
    /// Opens the uploads directory, removing what an earlier run left.
    pub fn open(storage: &Storage) -> std::io::Result<Uploads> {
        let dir = storage.uploads_dir();
        for e in fs::read_dir(&dir)?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        Ok(Uploads {
            dir,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionRef>> {
        // A panic while holding this lock cannot leave the map half-changed.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `repo`; returns its id.
    pub fn start(&self, repo: &str) -> ApiResult<String> {
        let id = new_uuid();
        let path = self.dir.join(&id);
        let file = File::create(&path)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", path.display())))?;
        let s = Session {
            repo: repo.to_owned(),
            path,
            file: Some(file),
            hasher: Sha256::new(),
            offset: 0,
            touched: Instant::now(),
        };
        self.map()
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(s)));
        Ok(id)
    }

    /// The session `id` of `repo`, or BLOB_UPLOAD_UNKNOWN.
    pub async fn get(&self, repo: &str, id: &str) -> ApiResult<SessionRef> {
        let s = self.map().get(id).cloned();
        let unknown = || {
            ApiError::new(
                Code::BlobUploadUnknown,
                format!("no upload {id} in progress for {repo} (finished, cancelled or expired)"),
            )
        };
        let s = s.ok_or_else(unknown)?;
        if s.lock().await.repo != repo {
            return Err(unknown());
        }
        Ok(s)
    }

    /// Ends session `id`, deleting its file if it is still there.
    pub fn remove(&self, id: &str) {
        if let Some(s) = self.map().remove(id) {
            if let Ok(s) = s.try_lock() {
                let _ = fs::remove_file(&s.path);
            } else {
                // Busy: the handler holding it finishes or fails; either
                // way the file goes with the expiry sweep.
                let path = self.dir.join(id);
                let _ = fs::remove_file(path);
            }
        }
    }

    /// Deletes sessions untouched for `expiry`.
    pub fn sweep(&self, expiry: Duration) -> usize {
        let expired: Vec<String> = self
            .map()
            .iter()
            .filter_map(|(id, s)| {
                let s = s.try_lock().ok()?;
                (s.touched.elapsed() > expiry).then(|| id.clone())
            })
            .collect();
        for id in &expired {
            self.remove(id);
        }
        expired.len()
    }
}

/// A random (version 4) UUID, the form clients expect in
/// `Docker-Upload-UUID`.
fn new_uuid() -> String {
    let b = (rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Writes `buf` to the session's file and hash off the async threads.
async fn flush(s: &mut Session, buf: Vec<u8>) -> ApiResult<Vec<u8>> {
    let mut file = s
        .file
        .take()
        .ok_or_else(|| ApiError::internal("upload file is closed"))?;
    let mut hasher = std::mem::take(&mut s.hasher);
    let (file, hasher, result, mut buf) = tokio::task::spawn_blocking(move || {
        hasher.update(&buf);
        let r = file.write_all(&buf);
        (file, hasher, r, buf)
    })
    .await
    .map_err(ApiError::internal)?;
    s.file = Some(file);
    s.hasher = hasher;
    result.map_err(|e| ApiError::internal(format!("writing {}: {e}", s.path.display())))?;
    s.offset += buf.len() as u64;
    buf.clear();
    Ok(buf)
}

/// Appends a request body to the session. `expected` is the length the
/// client announced (Content-Length or Content-Range); a body of another
/// length, a body error or `idle` without data fails the chunk and
/// leaves the session as it was before it.
pub async fn append(
    s: &mut Session,
    mut body: Incoming,
    expected: Option<u64>,
    idle: Duration,
) -> ApiResult<u64> {
    s.touched = Instant::now();
    let start_offset = s.offset;
    let start_hasher = s.hasher.clone();
    let result: ApiResult<u64> = async {
        let mut buf = Vec::with_capacity(WRITE_BATCH);
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    return Err(ApiError::new(
                        Code::BlobUploadInvalid,
                        format!("no data for {} s: chunk dropped", idle.as_secs()),
                    ))
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(ApiError::new(
                        Code::BlobUploadInvalid,
                        format!("reading the request body: {e}: chunk dropped"),
                    ))
                }
                Ok(Some(Ok(f))) => f,
            };
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            while data.has_remaining() {
                let chunk = data.chunk();
                let take = (WRITE_BATCH - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk[..take]);
                data.advance(take);
                if buf.len() >= WRITE_BATCH {
                    buf = flush(s, buf).await?;
                }
            }
            if let Some(n) = expected {
                if s.offset + buf.len() as u64 - start_offset > n {
                    return Err(ApiError::new(
                        Code::SizeInvalid,
                        format!("the body is longer than the announced {n} bytes"),
                    ));
                }
            }
        }
        if !buf.is_empty() {
            flush(s, buf).await?;
        }
        let got = s.offset - start_offset;
        if let Some(n) = expected {
            if got != n {
                return Err(ApiError::new(
                    Code::SizeInvalid,
                    format!("received {got} bytes but {n} were announced"),
                ));
            }
        }
        Ok(got)
    }
    .await;
    if result.is_err() {
        rollback(s, start_offset, start_hasher);
    }
    s.touched = Instant::now();
    result
}

fn rollback(s: &mut Session, offset: u64, hasher: Sha256) {
    s.offset = offset;
    s.hasher = hasher;
    if let Some(f) = &mut s.file {
        use std::io::Seek;
        let _ = f.set_len(offset);
        let _ = f.seek(std::io::SeekFrom::Start(offset));
    }
}

/// Checks the session's bytes against `digest`; on success syncs the
/// file, moves it into the blob store and links it into the repository.
/// Either way the session is over.
pub async fn finish(storage: &Storage, s: &mut Session, digest: &Digest) -> ApiResult<u64> {
    let got = Digest::from_sha256(&s.hasher.clone().finalize());
    if &got != digest {
        return Err(ApiError::new(
            Code::DigestInvalid,
            format!("the upload's content has digest {got}, not {digest}: upload discarded"),
        ));
    }
    let file = s
        .file
        .take()
        .ok_or_else(|| ApiError::internal("upload file is closed"))?;
    let (storage, path, digest2, repo) = (
        storage.clone(),
        s.path.clone(),
        digest.clone(),
        s.repo.clone(),
    );
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        file.sync_all()?;
        drop(file);
        storage.commit_blob(&path, &digest2)?;
        storage.link_blob(&repo, &digest2)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(s.offset)
}

#[cfg(test)]
mod tests {
    #[test]
    fn upload_ids_are_version_4_uuids() {
        for _ in 0..100 {
            let id = super::new_uuid();
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{id}");
            assert!("89ab".contains(&parts[3][..1]), "{id}");
        }
    }
}
