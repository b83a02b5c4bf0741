//! Parsers for what clients put in URLs and headers: repository names,
//! tags, digests and byte ranges. Everything here is untrusted input; a
//! value that passes these checks is safe to use as a path component.

use std::fmt;

use pier_image::reference;

/// Longest repository name accepted (the spec advises clients to stay
/// under 255 characters including the host name).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag the spec allows: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub const MAX_TAG_LEN: usize = 128;

/// A repository name as the distribution spec defines it:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
/// Every component starts with `[a-z0-9]`, so no component is `.` or `..`
/// and none collides with the storage's `_blobs`/`_manifests`/`_tags`.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN && reference::valid_repository_path(name)
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (at most [`MAX_TAG_LEN`]).
pub fn valid_tag(tag: &str) -> bool {
    reference::valid_tag(tag)
}

/// A sha256 digest (the only algorithm this registry stores).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; `None` for anything else
    /// (other algorithms included: the caller answers DIGEST_INVALID or
    /// UNSUPPORTED).
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        // 64 lower-case hex digits, as an image ID.
        reference::is_full_hex_id(hex).then(|| Digest {
            hex: hex.to_owned(),
        })
    }

    /// The digest of already-computed sha256 bytes.
    pub fn from_sha256(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(bytes),
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Self::from_sha256(&sha2::Sha256::digest(data))
    }

    /// The 64 hex characters: safe as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// True if `s` looks like `algorithm:encoded` per the spec's digest
/// grammar, whatever the algorithm: such a reference is a digest, never a
/// tag (tags cannot contain `:`).
pub fn looks_like_digest(s: &str) -> bool {
    s.contains(':')
}

/// A manifest reference from a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// Why a reference was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceError {
    /// Has a `:` but is not a sha256 digest we can verify.
    BadDigest,
    /// Not a valid tag.
    BadTag,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if looks_like_digest(s) {
            Digest::parse(s)
                .map(Reference::Digest)
                .ok_or(ReferenceError::BadDigest)
        } else if valid_tag(s) {
            Ok(Reference::Tag(s.to_owned()))
        } else {
            Err(ReferenceError::BadTag)
        }
    }
}

/// A byte range of a blob, inclusive at both ends, already checked
/// against the blob's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a `Range: bytes=...` request header asks of a blob of `size`
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Not a single bytes range we understand: serve the whole blob (RFC
    /// 9110 lets a server ignore Range).
    Whole,
    /// One satisfiable range.
    Part(ByteRange),
    /// A well-formed range that lies outside the blob: 416.
    Unsatisfiable,
}

/// Parses a `Range` request header for a blob of `size` bytes: `bytes=A-B`,
/// `bytes=A-` or `bytes=-N` (suffix). Multiple ranges are served whole.
pub fn parse_range_header(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeRequest::Whole,
        (true, false) => match num(b) {
            None => RangeRequest::Whole,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeRequest::Whole;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) => e,
                    None => return RangeRequest::Whole,
                }
            };
            if end < start {
                return RangeRequest::Whole;
            }
            if start >= size {
                return RangeRequest::Unsatisfiable;
            }
            RangeRequest::Part(ByteRange {
                start,
                end: end.min(size - 1),
            })
        }
    }
}

/// Parses a chunk's `Content-Range` on PATCH: `START-END` (inclusive),
/// optionally prefixed by `bytes ` or `bytes=` as some clients send it,
/// and optionally followed by `/TOTAL`.
pub fn parse_content_range(value: &str) -> Option<ByteRange> {
    let v = value.trim();
    let v = v
        .strip_prefix("bytes ")
        .or_else(|| v.strip_prefix("bytes="))
        .unwrap_or(v);
    let v = v.split_once('/').map_or(v, |(r, _)| r);
    let (a, b) = v.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (start, end) = (num(a)?, num(b)?);
    (end >= start).then_some(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g-h/i---j",
            "0/1/2",
            "x1.y2",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a//b",
            "/a",
            "a/",
            "..",
            "a/../b",
            "a/./b",
            "_blobs",
            "a/_manifests",
            "a___b",
            "a.-b",
            "a-",
            "a%2f..",
            "a\\b",
            "a b",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(!valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for ok in ["latest", "v1.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "..", &"a".repeat(129), "é"] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn references_are_tags_or_sha256_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            Reference::parse(&format!("sha256:{hex}")),
            Ok(Reference::Digest(
                Digest::parse(&format!("sha256:{hex}")).unwrap()
            ))
        );
        assert_eq!(
            Reference::parse("sha512:abc"),
            Err(ReferenceError::BadDigest)
        );
        assert_eq!(
            Reference::parse(&format!("sha256:{}", "A".repeat(64))),
            Err(ReferenceError::BadDigest)
        );
        assert_eq!(Reference::parse("../x"), Err(ReferenceError::BadTag));
        assert_eq!(Reference::parse("v1"), Ok(Reference::Tag("v1".into())));
    }

    #[test]
    fn range_headers() {
        let p = |s| parse_range_header(s, 100);
        let part = |start, end| RangeRequest::Part(ByteRange { start, end });
        assert_eq!(p("bytes=0-9"), part(0, 9));
        assert_eq!(p("bytes=90-"), part(90, 99));
        assert_eq!(p("bytes=90-1000"), part(90, 99));
        assert_eq!(p("bytes=-10"), part(90, 99));
        assert_eq!(p("bytes=-1000"), part(0, 99));
        assert_eq!(p("bytes=100-"), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=-0"), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=5-1"), RangeRequest::Whole);
        assert_eq!(p("bytes=0-1,3-4"), RangeRequest::Whole);
        assert_eq!(p("items=0-1"), RangeRequest::Whole);
        assert_eq!(p("bytes=x-1"), RangeRequest::Whole);
        assert_eq!(
            parse_range_header("bytes=0-", 0),
            RangeRequest::Unsatisfiable
        );
    }

    #[test]
    fn content_ranges() {
        let r = |start, end| Some(ByteRange { start, end });
        assert_eq!(parse_content_range("0-99"), r(0, 99));
        assert_eq!(parse_content_range("bytes 10-19/100"), r(10, 19));
        assert_eq!(parse_content_range("bytes=10-19"), r(10, 19));
        assert_eq!(parse_content_range("5-4"), None);
        assert_eq!(parse_content_range("-4"), None);
        assert_eq!(parse_content_range("1-"), None);
        assert_eq!(parse_content_range("+1-2"), None);
    }

    proptest! {
        #[test]
        fn valid_names_are_safe_path_components(s in "\\PC{0,80}") {
            if valid_name(&s) {
                for c in s.split('/') {
                    prop_assert!(c != "." && c != ".." && !c.is_empty());
                    prop_assert!(!c.starts_with('_'));
                    prop_assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
                }
            }
        }

        #[test]
        fn generated_names_are_valid(parts in proptest::collection::vec("[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}", 1..5)) {
            let name = parts.join("/");
            prop_assume!(name.len() <= MAX_NAME_LEN);
            prop_assert!(valid_name(&name), "{}", name);
        }

        #[test]
        fn tags_never_hold_separators(s in "\\PC{0,140}") {
            if valid_tag(&s) {
                prop_assert!(!s.contains('/') && !s.contains(':') && !s.starts_with('.'));
                prop_assert!(s.len() <= MAX_TAG_LEN);
            }
        }

        #[test]
        fn digests_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64), junk in "\\PC{0,80}") {
            let d = Digest::of(&bytes);
            prop_assert_eq!(Digest::parse(&d.to_string()), Some(d.clone()));
            if let Some(p) = Digest::parse(&junk) {
                prop_assert_eq!(p.to_string(), junk);
            }
        }

        #[test]
        fn ranges_stay_inside_the_blob(s in "bytes=[0-9]{0,4}-[0-9]{0,4}", any_s in "\\PC{0,30}", size in 0u64..5000) {
            for v in [&s, &any_s] {
                if let RangeRequest::Part(r) = parse_range_header(v, size) {
                    prop_assert!(r.start <= r.end && r.end < size);
                }
            }
        }

        #[test]
        fn content_ranges_are_ordered(s in "\\PC{0,30}", a in 0u64..1_000_000, len in 0u64..1_000_000) {
            if let Some(r) = parse_content_range(&s) {
                prop_assert!(r.start <= r.end);
            }
            prop_assert_eq!(parse_content_range(&format!("{}-{}", a, a + len)), Some(ByteRange { start: a, end: a + len }));
        }
    }
}
