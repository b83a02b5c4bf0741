//! Image references, parsed and normalised as Docker does.
//!
//! `busybox` is `docker.io/library/busybox:latest`, `user/x` is
//! `docker.io/user/x:latest`, `localhost:5000/a/b:v1` keeps its registry, and
//! `name@sha256:<64 hex>` pins a digest. The first path component is a
//! registry when it contains `.` or `:`, is `localhost`, or has upper case
//! letters (repository names themselves must be lower case).
//!
//! Grammar (from the distribution reference package):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain "/"] path-component ("/" path-component)*
//! domain     := host [":" port]
//! path-comp  := [a-z0-9]+ (([._] | "__" | "-"+) [a-z0-9]+)*
//! tag        := [\w][\w.-]{0,127}
//! digest     := algorithm ":" hex     (sha256: exactly 64 lower-case hex)
//! ```

use std::fmt;

use crate::{Error, Result};

/// The registry that names without a domain belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_PREFIX: &str = "library/";
/// The tag of a name given without tag or digest.
pub const DEFAULT_TAG: &str = "latest";

const NAME_TOTAL_MAX: usize = 255;

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises `s` as `docker pull` would, adding `:latest`
    /// when neither tag nor digest is given.
    pub fn parse(s: &str) -> Result<Reference> {
        let invalid = |why: &str| Error::InvalidReference(format!("{s:?}: {why}"));
        if s.is_empty() {
            return Err(invalid(
                "empty name; expected [registry/]name[:tag][@sha256:digest]",
            ));
        }
        if is_full_hex_id(s) {
            return Err(Error::InvalidReference(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                check_digest(d).map_err(|why| invalid(&why))?;
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        // A tag follows the last ':' when no '/' comes after it (else the ':'
        // belongs to a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(
                    "a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', \
                     not starting with '.' or '-'",
                ));
            }
        }
        if name.is_empty() {
            return Err(invalid("missing repository name"));
        }
        if name.len() > NAME_TOTAL_MAX {
            return Err(invalid(
                "repository name must not be longer than 255 characters",
            ));
        }
        let (domain, path) = split_domain(name);
        if let Some(d) = domain {
            if !valid_domain(d) {
                return Err(invalid("registry host is not a valid host[:port]"));
            }
        }
        if path.to_lowercase() != path {
            return Err(Error::InvalidReference(format!(
                "repository name ({path}) must be lowercase"
            )));
        }
        if !valid_repository_path(path) {
            return Err(invalid(
                "repository name components are lower-case letters and digits, \
                 separated by '.', '_', '__' or '-'",
            ));
        }
        let (domain, path) = normalize_domain_path(domain, path);
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Registry host, e.g. "docker.io" or "localhost:5000".
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Repository path inside the registry, e.g. "library/busybox".
    pub fn path(&self) -> &str {
        &self.path
    }
    /// "docker.io/library/busybox".
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The repository as Docker shows it: "busybox", "user/x", "localhost:5000/a/b".
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(p) if !p.contains('/') => p.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// The reference as Docker shows it: "busybox:latest", "user/x:tag".
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }
}

/// The fully qualified form: "docker.io/library/busybox:latest".
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

/// True for 64 lower-case hex characters (an image ID without "sha256:"),
/// which Docker refuses as a repository name.
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

pub(crate) fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a name (no tag, no digest) into its registry host, if it names
/// one, and the repository path, as Docker does: the first component is a
/// host when it contains `.` or `:`, is `localhost`, or has upper case
/// letters. Nothing is validated.
pub fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Docker's normalisation of a split name: no host (or `index.docker.io`)
/// means `docker.io`, and a one-component path there gets `library/`.
/// Nothing is validated.
pub fn normalize_domain_path(domain: Option<&str>, path: &str) -> (String, String) {
    let domain = match domain {
        None | Some("index.docker.io") => DEFAULT_DOMAIN,
        Some(d) => d,
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path.to_owned()
    };
    (domain.to_owned(), path)
}

/// A repository path (`a/b/c`, no host): one or more components joined by
/// `/`, each valid for [`valid_path_component`]. No length limit is applied.
pub fn valid_repository_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(valid_path_component)
}

fn check_digest(d: &str) -> std::result::Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err("a digest is algorithm:hex, e.g. sha256:<64 hex digits>".into());
    };
    match alg {
        "sha256" if hex.len() == 64 && is_lower_hex(hex) => Ok(()),
        "sha256" => Err("a sha256 digest has exactly 64 lower-case hex digits".into()),
        "sha512" if hex.len() == 128 && is_lower_hex(hex) => Ok(()),
        _ => Err(format!("unsupported digest algorithm {alg:?}; use sha256")),
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A tag: `[\w][\w.-]{0,127}` (ASCII letters, digits and `_`, then also
/// `.` and `-`; at most 128 characters).
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// One component of a repository path: `[a-z0-9]+` runs joined by `.`, `_`,
/// `__` or one or more `-`. Such a component is never empty, `.` or `..`,
/// and never starts with `_`.
pub fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: DNS labels or a bracketed IPv6 address, with an
/// optional numeric port (`localhost:5000`, `[::1]:5000`, `quay.io`).
pub fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [ipv6]:port
        let Some((h, after)) = rest.split_once(']') else {
            return false;
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => return !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            None => return after.is_empty(),
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }
    fn fam(s: &str) -> String {
        Reference::parse(s).unwrap().familiar()
    }
    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/x"), "docker.io/user/x:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(full("localhost/a"), "localhost/a:latest");
        assert_eq!(full("quay.io/a/b/c"), "quay.io/a/b/c:latest");
        assert_eq!(
            full(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            full(&format!("busybox:v@{D}")),
            format!("docker.io/library/busybox:v@{D}")
        );
        assert_eq!(
            full("a_b.c-d__e---f"),
            "docker.io/library/a_b.c-d__e---f:latest"
        );
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
    }

    #[test]
    fn familiar_like_docker() {
        assert_eq!(fam("busybox"), "busybox:latest");
        assert_eq!(fam("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(fam("user/x:tag"), "user/x:tag");
        assert_eq!(fam("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(fam("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(fam(&format!("busybox@{D}")), format!("busybox@{D}"));
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.repository(), "docker.io/library/busybox");
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "user/Foo",
            "a b",
            "busybox:",
            "busybox:.x",
            "busybox:-x",
            ":tag",
            "a//b",
            "/a",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "localhost:port/a",
            "bad_host.com:5000/a",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            match Reference::parse(bad) {
                Err(Error::InvalidReference(_)) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let long_tag = format!("a:{}", "x".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
        assert!(Reference::parse(&format!("a:{}", "x".repeat(128))).is_ok());
        let msg = Reference::parse("Busybox").unwrap_err().to_string();
        assert!(msg.starts_with("invalid reference format"), "{msg}");
        assert!(msg.contains("must be lowercase"), "{msg}");
    }

    #[test]
    fn shared_validators_follow_the_grammar() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "0x1"] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", ".", "..", "_a", "a_", "a___b", "a.-b", "A", "a b", "é"] {
            assert!(!valid_path_component(bad), "{bad:?}");
        }
        assert!(valid_repository_path("library/busybox"));
        for bad in ["", "a//b", "/a", "a/", "a/../b", "a/_blobs"] {
            assert!(!valid_repository_path(bad), "{bad:?}");
        }
        for ok in ["latest", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129), "é"] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
        for ok in [
            "localhost",
            "localhost:5000",
            "quay.io",
            "[::1]",
            "[::1]:5000",
            "a-b.c",
        ] {
            assert!(valid_domain(ok), "{ok}");
        }
        for bad in [
            "",
            ":5000",
            "host:",
            "host:port",
            "-a.b",
            "a..b",
            "[::1",
            "[::1]x",
            "a_b",
        ] {
            assert!(!valid_domain(bad), "{bad:?}");
        }
        assert!(is_full_hex_id(&"a".repeat(64)));
        assert!(!is_full_hex_id(&"A".repeat(64)));
        assert!(!is_full_hex_id(&"a".repeat(63)));
    }

    #[test]
    fn names_split_and_normalise_like_docker() {
        assert_eq!(split_domain("busybox"), (None, "busybox"));
        assert_eq!(split_domain("user/x"), (None, "user/x"));
        assert_eq!(split_domain("localhost/x"), (Some("localhost"), "x"));
        assert_eq!(split_domain("a.b/c/d"), (Some("a.b"), "c/d"));
        assert_eq!(split_domain("h:5000/x"), (Some("h:5000"), "x"));
        assert_eq!(split_domain("Reg/x"), (Some("Reg"), "x"));
        let norm = |d, p| normalize_domain_path(d, p);
        let pair = |d: &str, p: &str| (d.to_owned(), p.to_owned());
        assert_eq!(norm(None, "busybox"), pair("docker.io", "library/busybox"));
        assert_eq!(norm(None, "user/x"), pair("docker.io", "user/x"));
        assert_eq!(
            norm(Some("index.docker.io"), "busybox"),
            pair("docker.io", "library/busybox")
        );
        assert_eq!(norm(Some("docker.io"), "a/b"), pair("docker.io", "a/b"));
        assert_eq!(norm(Some("localhost"), "x"), pair("localhost", "x"));
    }

    #[test]
    fn uppercase_first_component_is_a_domain() {
        // As Docker: "Foo/bar" names the registry host "Foo".
        assert_eq!(full("Foo/bar"), "Foo/bar:latest");
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "busybox",
            "user/x:1",
            "localhost:5000/a/b:v1",
            "quay.io/x/y:z",
        ] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        }
    }
}
