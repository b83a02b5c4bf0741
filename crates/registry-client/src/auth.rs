//! Registry authentication: `WWW-Authenticate` challenges (Bearer and
//! Basic, RFC 7235 syntax), credentials as Docker API clients send them
//! (`X-Registry-Auth`), and token requests.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::error::{Error, Result};

/// Credentials for one registry.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// An OAuth2 refresh token from an earlier login (docker's `identitytoken`).
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty()
    }

    /// Decodes the `X-Registry-Auth` header: base64url (padded or not) or
    /// standard base64 of `{"username","password","serveraddress"}` or
    /// `{"identitytoken"}`. An empty header means no credentials.
    pub fn from_header(value: &str) -> Result<Credentials> {
        match decode_header("X-Registry-Auth", value)? {
            None => Ok(Credentials::default()),
            Some(v) => serde_json::from_value(v).map_err(|e| {
                Error::BadRequest(format!(
                    "X-Registry-Auth does not hold valid JSON credentials: {e}"
                ))
            }),
        }
    }

    /// The credentials per registry of docker's `X-Registry-Config` header
    /// (sent with `POST /build`): base64url of a JSON object keyed by
    /// registry (`host[:port]`, or `https://index.docker.io/v1/`).
    pub fn from_config_header(value: &str) -> Result<BTreeMap<String, Credentials>> {
        match decode_header("X-Registry-Config", value)? {
            None => Ok(BTreeMap::new()),
            Some(v) => serde_json::from_value(v).map_err(|e| {
                Error::BadRequest(format!(
                    "X-Registry-Config does not hold a JSON object of credentials per registry: {e}"
                ))
            }),
        }
    }

    /// The entry of `auths` (keyed as docker's config.json) for registry
    /// `domain`; none when it has none.
    pub fn for_domain(auths: &BTreeMap<String, Credentials>, domain: &str) -> Credentials {
        let hub = domain == "docker.io" || domain == "index.docker.io";
        auths
            .iter()
            .find(|(k, _)| {
                let host = k.split_once("://").map_or(k.as_str(), |(_, r)| r);
                let host = host.split('/').next().unwrap_or(host);
                host == domain || (hub && host == "index.docker.io")
            })
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// `Authorization: Basic ...` value, when there is a username.
    pub fn basic(&self) -> Option<String> {
        (!self.username.is_empty()).then(|| {
            let raw = format!("{}:{}", self.username, self.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        })
    }
}

/// The JSON object in header `name` (base64url, padded or not; plain
/// base64 taken too); None for docker's anonymous `{}` or `null`.
fn decode_header(name: &str, value: &str) -> Result<Option<serde_json::Value>> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(v).ok())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{name} is not base64: send base64url of a JSON \
                 {{\"username\",\"password\",\"serveraddress\"}}"
            ))
        })?;
    // docker sends "{}" (or "null") for anonymous requests.
    if bytes.iter().all(u8::is_ascii_whitespace) || bytes == b"null" {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::BadRequest(format!("{name} does not hold valid JSON credentials: {e}"))
    })?;
    if !v.is_object() {
        return Err(Error::BadRequest(format!(
            "{name} does not hold valid JSON credentials: expected a JSON object"
        )));
    }
    if v.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(None);
    }
    Ok(Some(v))
}

/// One authentication challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-case scheme: "bearer", "basic".
    pub scheme: String,
    /// Parameters, keys lower-cased.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses a `WWW-Authenticate` value into its challenges, e.g.
/// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
/// Unparseable input gives an error, never a panic.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "malformed WWW-Authenticate header {header:?}: {why}"
        ))
    };
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i] == ' ' || chars[*i] == '\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && is_tchar(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    loop {
        skip_ws(&mut i);
        while i < chars.len() && chars[i] == ',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= chars.len() {
            break;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            return Err(bad("expected an auth scheme"));
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        // Parameters: key=value pairs separated by commas, until a token
        // that is not followed by '=' (the next challenge's scheme).
        loop {
            skip_ws(&mut i);
            let save = i;
            let key = token(&mut i);
            skip_ws(&mut i);
            if key.is_empty() || i >= chars.len() || chars[i] != '=' {
                i = save;
                break;
            }
            i += 1;
            skip_ws(&mut i);
            let value = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let mut v = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(bad("unterminated quoted string")),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let Some(c) = chars.get(i + 1) else {
                                return Err(bad("unterminated quoted string"));
                            };
                            v.push(*c);
                            i += 2;
                        }
                        Some(c) => {
                            v.push(*c);
                            i += 1;
                        }
                    }
                }
                v
            } else {
                // token68-ish: up to the next comma or space.
                let start = i;
                while i < chars.len() && chars[i] != ',' && chars[i] != ' ' {
                    i += 1;
                }
                chars[start..i].iter().collect()
            };
            ch.params.insert(key.to_ascii_lowercase(), value);
            skip_ws(&mut i);
            if i < chars.len() && chars[i] == ',' {
                i += 1;
            } else {
                break;
            }
        }
        out.push(ch);
        skip_ws(&mut i);
        if i < chars.len() && !is_tchar(chars[i]) && chars[i] != ',' {
            return Err(bad(&format!("unexpected character {:?}", chars[i])));
        }
    }
    Ok(out)
}

/// The token endpoint's answer (Docker's token spec; OAuth2 `access_token`).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    /// Seconds the token is valid (60 when absent, as the spec says).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn bearer(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
            .map(String::as_str)
    }
}

/// The scope that lets a client do `actions` ("pull", "pull,push") on `repo`.
pub fn repository_scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_docker_hub_bearer() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn parses_basic_escapes_and_several_challenges() {
        let c = parse_challenges(
            r#"Basic realm="Registry \"R\"", Bearer realm=x,error=insufficient_scope"#,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry \"R\""));
        assert_eq!(c[1].param("realm"), Some("x"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        assert_eq!(parse_challenges("Basic").unwrap()[0].params.len(), 0);
        assert!(parse_challenges(r#"Bearer realm="open"#).is_err());
        assert!(parse_challenges("=x").is_err());
    }

    #[test]
    fn decodes_x_registry_auth_in_every_base64_flavour() {
        let json = r#"{"username":"u","password":"p?>~","serveraddress":"h:5000"}"#;
        for e in [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
        ] {
            let c = Credentials::from_header(&e.encode(json)).unwrap();
            assert_eq!(c.username, "u");
            assert_eq!(c.password, "p?>~");
            assert_eq!(c.server_address, "h:5000");
            assert!(c.basic().unwrap().starts_with("Basic "));
        }
        let t = base64::engine::general_purpose::URL_SAFE.encode(r#"{"identitytoken":"tok"}"#);
        assert_eq!(Credentials::from_header(&t).unwrap().identity_token, "tok");
        assert!(Credentials::from_header("").unwrap().is_empty());
        assert!(Credentials::from_header("e30=").unwrap().is_empty()); // "{}"
        assert!(Credentials::from_header("!!!").is_err());
        assert!(Credentials::from_header("W10=").is_err()); // "[]"
        assert!(!format!("{:?}", Credentials::from_header(&t).unwrap()).contains("tok"));
    }

    #[test]
    fn x_registry_config_gives_each_registry_its_credentials() {
        let json = r#"{"h:5000":{"username":"u","password":"p"},
            "https://index.docker.io/v1/":{"username":"hub","password":"q"}}"#;
        let v = base64::engine::general_purpose::URL_SAFE.encode(json);
        let auths = Credentials::from_config_header(&v).unwrap();
        assert_eq!(Credentials::for_domain(&auths, "h:5000").username, "u");
        assert_eq!(Credentials::for_domain(&auths, "docker.io").username, "hub");
        assert!(Credentials::for_domain(&auths, "other:5000").is_empty());
        assert!(Credentials::from_config_header("e30=").unwrap().is_empty());
        assert!(Credentials::from_config_header("").unwrap().is_empty());
        let not_a_map = base64::engine::general_purpose::URL_SAFE.encode(r#"{"h":1}"#);
        assert!(Credentials::from_config_header(&not_a_map).is_err());
    }

    proptest! {
        #[test]
        fn challenge_parser_never_panics(s in ".{0,200}") {
            let _ = parse_challenges(&s);
        }

        #[test]
        fn generated_bearer_challenges_round_trip(
            realm in "[ -~]{0,40}",
            service in "[a-z0-9.:-]{1,20}",
            scope in "[a-z0-9/:,_-]{1,40}",
        ) {
            let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            let h = format!(r#"Bearer realm="{}", service="{}",scope="{}""#, q(&realm), q(&service), q(&scope));
            let c = parse_challenges(&h).unwrap();
            prop_assert_eq!(c.len(), 1);
            prop_assert_eq!(c[0].param("realm"), Some(realm.as_str()));
            prop_assert_eq!(c[0].param("service"), Some(service.as_str()));
            prop_assert_eq!(c[0].param("scope"), Some(scope.as_str()));
        }
    }
}
