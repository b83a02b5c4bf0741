//! Response bodies and small HTTP helpers shared by the handlers.

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use std::collections::HashMap;
use std::io;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Every response body: small JSON, nothing, or a streamed file.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;
pub type Resp = Response<Body>;

/// Read size when streaming a blob to a client.
const FILE_CHUNK: usize = 256 * 1024;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// Streams `len` bytes of `file` from `offset`, reading FILE_CHUNK at a
/// time: a blob is never held in memory.
pub async fn file_body(mut file: tokio::fs::File, offset: u64, len: u64) -> io::Result<Body> {
    if offset > 0 {
        file.seek(io::SeekFrom::Start(offset)).await?;
    }
    let reader = file.take(len);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, FILE_CHUNK);
    Ok(StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync())
}

/// Query parameters, decoded; a repeated key keeps every value.
pub fn parse_query(q: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode(k))
            .or_default()
            .push(percent_decode(v));
    }
    out
}

/// First value of query parameter `k`.
pub fn query_one<'a>(q: &'a HashMap<String, Vec<String>>, k: &str) -> Option<&'a str> {
    q.get(k).and_then(|v| v.first()).map(String::as_str)
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept
/// as they are. Invalid UTF-8 becomes U+FFFD, which no name or digest
/// accepts.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query value (tags, names, digests are mostly safe already).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
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
    fn query_strings_decode() {
        let q = parse_query(Some("digest=sha256%3Aab&tag=a&tag=b&x&n=10"));
        assert_eq!(query_one(&q, "digest"), Some("sha256:ab"));
        assert_eq!(q["tag"], vec!["a", "b"]);
        assert_eq!(query_one(&q, "x"), Some(""));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_encode("a b/c"), "a%20b/c");
    }

    proptest::proptest! {
        #[test]
        fn percent_encoding_round_trips(s in "\\PC{0,40}") {
            proptest::prop_assert_eq!(percent_decode(&percent_encode(&s)), s);
        }

        #[test]
        fn any_query_string_parses(q in "\\PC{0,80}") {
            let parsed = parse_query(Some(&q));
            proptest::prop_assert!(parsed.values().all(|v| !v.is_empty()));
        }
    }
}
