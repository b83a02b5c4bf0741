//! Registry errors: what failed, on what, and what to do.

/// What went wrong talking to a registry or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: no or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the credentials do not give access.
    #[error("{0}")]
    Denied(String),
    /// 404: no such repository, manifest or blob.
    #[error("{0}")]
    NotFound(String),
    /// Malformed or inconsistent data from the registry (digest mismatch,
    /// oversized manifest, unknown media type, ...).
    #[error("{0}")]
    Invalid(String),
    /// The request was wrong (bad reference, bad platform, bad auth header).
    #[error("{0}")]
    BadRequest(String),
    /// Network trouble, timeouts, 429 and 5xx answers after the retries.
    #[error("{0}")]
    Transport(String),
    /// The local image store failed.
    #[error("{0}")]
    Store(#[from] pier_image::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status dockerd answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Unauthorized(_) => 401,
            Error::Denied(_) => 403,
            Error::NotFound(_) => 404,
            Error::BadRequest(_) => 400,
            Error::Store(pier_image::Error::ImageNotFound(_)) => 404,
            Error::Store(pier_image::Error::InvalidReference(_)) => 400,
            Error::Invalid(_) | Error::Transport(_) | Error::Store(_) => 500,
        }
    }
}

/// One entry of a registry's `{"errors":[...]}` body.
#[derive(Debug, serde::Deserialize)]
struct RegistryError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, serde::Deserialize)]
struct RegistryErrors {
    #[serde(default)]
    errors: Vec<RegistryError>,
}

/// Turns a registry's error body into "code: message" text as docker
/// prints it ("manifest unknown: manifest unknown"); falls back to the HTTP
/// status text when the body says nothing useful.
pub fn registry_message(status: u16, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<RegistryErrors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| {
                let code = x.code.to_lowercase().replace('_', " ");
                match (code.is_empty(), x.message.is_empty()) {
                    (false, false) => format!("{code}: {}", x.message),
                    (false, true) => code,
                    (true, _) => x.message.clone(),
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)])
        .trim()
        .to_owned();
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if text.is_empty() || text.starts_with('<') {
        format!("{status} {reason}")
    } else {
        format!("{status} {reason}: {text}")
    }
}

/// "WORD: msg" unless msg already starts with WORD.
fn prefixed(word: &str, msg: &str) -> String {
    if msg.to_lowercase().starts_with(word) {
        msg.to_owned()
    } else {
        format!("{word}: {msg}")
    }
}

/// Maps a non-success answer to an error: `what` says what was asked for.
pub fn from_status(status: u16, body: &[u8], what: &str) -> Error {
    let msg = registry_message(status, body);
    match status {
        401 => Error::Unauthorized(format!(
            "{what}: {}; log in with `pier login` or check the credentials",
            prefixed("unauthorized", &msg)
        )),
        403 => Error::Denied(format!(
            "{what}: {}; the credentials do not give access to it",
            prefixed("denied", &msg)
        )),
        404 => Error::NotFound(format!("{what} not found: {msg}")),
        429 => Error::Transport(format!(
            "{what}: the registry is rate-limiting requests (429 Too Many Requests): {msg}; try again later"
        )),
        s if s >= 500 => Error::Transport(format!("{what}: the registry failed: {msg}")),
        _ => Error::Invalid(format!("{what}: unexpected answer from the registry: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_bodies_become_docker_style_messages() {
        let b =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_message(404, b),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(
            registry_message(500, b"<html>oops</html>"),
            "500 Internal Server Error"
        );
        assert_eq!(
            registry_message(502, b"bad gateway"),
            "502 Bad Gateway: bad gateway"
        );
        let e = from_status(401, b"{}", "manifest for x:1");
        assert_eq!(e.http_status(), 401);
        assert!(e.to_string().contains("pier login"), "{e}");
        assert_eq!(from_status(403, b"", "x").http_status(), 403);
        let b = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert_eq!(
            from_status(401, b, "manifest for a:1").to_string(),
            "manifest for a:1: unauthorized: authentication required; \
             log in with `pier login` or check the credentials"
        );
        assert!(from_status(403, b"", "x")
            .to_string()
            .starts_with("x: denied: 403 Forbidden"));
        assert_eq!(from_status(404, b"", "x").http_status(), 404);
        assert!(from_status(429, b"", "x")
            .to_string()
            .contains("rate-limiting"));
    }
}
