//! Who is asking and what they may do: htpasswd (bcrypt) Basic
//! credentials, bearer tokens this registry signed itself (docker's token
//! flow: `WWW-Authenticate: Bearer realm=".../v2/token"`), and per-repo
//! pull/push rules.

use crate::config::{AccessRule, Config};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

/// What a request needs on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    /// Authenticated with a password.
    User(String),
    /// Holds a token granting `(repo, action)` pairs.
    Token {
        user: String,
        grants: Vec<(String, Action)>,
    },
}

impl Identity {
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous => "",
            Identity::User(u) | Identity::Token { user: u, .. } => u,
        }
    }
}

/// Why credentials were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The Authorization header is malformed, or names an unknown user or
    /// a wrong password, or an invalid/expired token.
    BadCredentials(&'static str),
}

pub struct Auth {
    /// user -> bcrypt hash; None when authentication is off.
    users: Option<HashMap<String, String>>,
    anonymous_pull: bool,
    token_auth: bool,
    token_ttl: u64,
    rules: Vec<AccessRule>,
    /// Signs issued tokens; random per server start.
    token_key: [u8; 32],
    /// sha256(user ":" password) of credentials bcrypt already accepted:
    /// bcrypt costs milliseconds, and clients send credentials on every
    /// request.
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// Parses an htpasswd file: `user:$2y$...` lines; only bcrypt hashes
/// (`htpasswd -B`) are accepted.
pub fn parse_htpasswd(text: &str, origin: &str) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("{origin} line {}: expected USER:HASH", i + 1));
        };
        if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
            return Err(format!(
                "{origin} line {}: user {user:?} has no bcrypt hash; only bcrypt is accepted (make the file with `htpasswd -B`)",
                i + 1
            ));
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

/// HMAC-SHA256 (RFC 2104) with a key of at most 64 bytes.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    let n = key.len().min(64);
    k[..n].copy_from_slice(&key[..n]);
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses a token `scope` parameter: `repository:NAME:pull,push` (several
/// scopes separated by spaces).
pub fn parse_scopes(scope: &str) -> Vec<(String, Action)> {
    let mut out = Vec::new();
    for s in scope.split_whitespace() {
        let mut parts = s.splitn(2, ':');
        if parts.next() != Some("repository") {
            continue;
        }
        let Some(rest) = parts.next() else { continue };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        for a in actions.split(',') {
            match a {
                "pull" => out.push((name.to_owned(), Action::Pull)),
                "push" => out.push((name.to_owned(), Action::Push)),
                "*" => {
                    out.push((name.to_owned(), Action::Pull));
                    out.push((name.to_owned(), Action::Push));
                }
                _ => {}
            }
        }
    }
    out
}

impl Auth {
    pub fn from_config(cfg: &Config) -> Result<Auth, String> {
        let users = match &cfg.htpasswd {
            None => None,
            Some(p) => Some(load_htpasswd(p)?),
        };
        Ok(Auth {
            users,
            anonymous_pull: cfg.anonymous_pull,
            token_auth: cfg.token_auth,
            token_ttl: cfg.token_ttl_secs,
            rules: cfg.access.clone(),
            token_key: rand::random(),
            verified: Mutex::new(HashSet::new()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.users.is_some()
    }

    pub fn token_auth(&self) -> bool {
        self.token_auth
    }

    /// Identifies the sender of an `Authorization` header value.
    pub async fn identify(&self, header: Option<&str>) -> Result<Identity, AuthFailure> {
        let Some(users) = &self.users else {
            return Ok(Identity::Anonymous);
        };
        let Some(h) = header else {
            return Ok(Identity::Anonymous);
        };
        let (scheme, value) = h.trim().split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| AuthFailure::BadCredentials("Basic credentials are not base64"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| AuthFailure::BadCredentials("Basic credentials are not UTF-8"))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or(AuthFailure::BadCredentials("Basic credentials lack a ':'"))?;
            let Some(hash) = users.get(user) else {
                return Err(AuthFailure::BadCredentials(
                    "unknown user or wrong password",
                ));
            };
            let key: [u8; 32] = Sha256::digest(format!("{user}:{pass}\0{hash}")).into();
            if self.verified.lock().is_ok_and(|v| v.contains(&key)) {
                return Ok(Identity::User(user.to_owned()));
            }
            let (pass, hash) = (pass.to_owned(), hash.clone());
            let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash))
                .await
                .map(|r| r.unwrap_or(false))
                .unwrap_or(false);
            if !ok {
                return Err(AuthFailure::BadCredentials(
                    "unknown user or wrong password",
                ));
            }
            if let Ok(mut v) = self.verified.lock() {
                if v.len() > 10_000 {
                    v.clear();
                }
                v.insert(key);
            }
            Ok(Identity::User(user.to_owned()))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.verify_token(value.trim())
        } else {
            Err(AuthFailure::BadCredentials(
                "unsupported Authorization scheme (use Basic or Bearer)",
            ))
        }
    }

    /// May `who` do `action` on `repo`?
    pub fn allowed(&self, who: &Identity, repo: &str, action: Action) -> bool {
        if self.users.is_none() {
            return true;
        }
        match who {
            Identity::Anonymous => self.anonymous_pull && action == Action::Pull,
            Identity::User(u) => self.user_allowed(u, repo, action),
            // A token issued to an anonymous client: what anonymous
            // clients may do.
            Identity::Token { user, .. } if user.is_empty() => {
                self.anonymous_pull && action == Action::Pull
            }
            Identity::Token { user, grants } => {
                grants.iter().any(|(r, a)| r == repo && *a == action)
                    && self.user_allowed(user, repo, action)
            }
        }
    }

    /// May `who` see `repo` in the catalog (pull rights by its user,
    /// whatever scopes a token holds)?
    pub fn may_list(&self, who: &Identity, repo: &str) -> bool {
        if self.users.is_none() {
            return true;
        }
        match who.name() {
            "" => self.anonymous_pull,
            u => self.user_allowed(u, repo, Action::Pull),
        }
    }

    fn user_allowed(&self, user: &str, repo: &str, action: Action) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules
            .iter()
            .find(|r| r.matches(user, repo))
            .is_some_and(|r| match action {
                Action::Pull => r.pull,
                Action::Push => r.push,
            })
    }

    /// Issues a token for `who` holding those of the requested scopes it
    /// is allowed; returns the token and its lifetime.
    pub fn issue_token(&self, who: &Identity, scope: &str) -> (String, u64) {
        let user = who.name().to_owned();
        let grants: Vec<(String, Action)> = parse_scopes(scope)
            .into_iter()
            .filter(|(r, a)| match who {
                Identity::Anonymous => self.anonymous_pull && *a == Action::Pull,
                _ => self.user_allowed(&user, r, *a),
            })
            .collect();
        let claims = serde_json::json!({
            "sub": user,
            "exp": now_secs() + self.token_ttl,
            "access": grants.iter().map(|(r, a)| [r.as_str(), a.as_str()]).collect::<Vec<_>>(),
        });
        let payload = b64().encode(claims.to_string());
        let sig = b64().encode(hmac_sha256(&self.token_key, payload.as_bytes()));
        (format!("{payload}.{sig}"), self.token_ttl)
    }

    fn verify_token(&self, token: &str) -> Result<Identity, AuthFailure> {
        let bad = AuthFailure::BadCredentials("invalid or expired bearer token");
        let (payload, sig) = token.split_once('.').ok_or(bad)?;
        let sig = b64()
            .decode(sig)
            .map_err(|_| AuthFailure::BadCredentials("invalid bearer token"))?;
        let expect = hmac_sha256(&self.token_key, payload.as_bytes());
        // Compare without an early exit.
        if sig.len() != 32
            || sig
                .iter()
                .zip(expect)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return Err(AuthFailure::BadCredentials("invalid bearer token"));
        }
        let claims: serde_json::Value = b64()
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(AuthFailure::BadCredentials("invalid bearer token"))?;
        if claims["exp"].as_u64().unwrap_or(0) < now_secs() {
            return Err(AuthFailure::BadCredentials("expired bearer token"));
        }
        let user = claims["sub"].as_str().unwrap_or("").to_owned();
        let grants = claims["access"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| {
                        let r = g.get(0)?.as_str()?;
                        let a = match g.get(1)?.as_str()? {
                            "pull" => Action::Pull,
                            "push" => Action::Push,
                            _ => return None,
                        };
                        Some((r.to_owned(), a))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if user.is_empty() {
            // An anonymous token: only what anonymous clients may do.
            return Ok(Identity::Token {
                user: String::new(),
                grants: Vec::new(),
            });
        }
        Ok(Identity::Token { user, grants })
    }
}

fn load_htpasswd(p: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| format!("reading the htpasswd file {}: {e}", p.display()))?;
    parse_htpasswd(&text, &p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_with(rules: Vec<AccessRule>) -> Auth {
        let hash = bcrypt::hash("secret", 4).unwrap();
        Auth {
            users: Some(HashMap::from([("alice".to_owned(), hash)])),
            anonymous_pull: false,
            token_auth: true,
            token_ttl: 60,
            rules,
            token_key: [7; 32],
            verified: Mutex::new(HashSet::new()),
        }
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[tokio::test]
    async fn basic_credentials_are_checked_with_bcrypt() {
        let a = auth_with(vec![]);
        let ok = a.identify(Some(&basic("alice", "secret"))).await;
        assert_eq!(ok, Ok(Identity::User("alice".into())));
        // Cached the second time, same answer.
        let ok = a.identify(Some(&basic("alice", "secret"))).await;
        assert_eq!(ok, Ok(Identity::User("alice".into())));
        assert!(a.identify(Some(&basic("alice", "wrong"))).await.is_err());
        assert!(a.identify(Some(&basic("bob", "secret"))).await.is_err());
        assert!(a.identify(Some("Basic !!!")).await.is_err());
        assert!(a.identify(Some("Digest x")).await.is_err());
        assert_eq!(a.identify(None).await, Ok(Identity::Anonymous));
    }

    #[tokio::test]
    async fn tokens_carry_only_allowed_scopes() {
        let a = auth_with(vec![AccessRule {
            user: "alice".into(),
            repos: "team/*".into(),
            pull: true,
            push: false,
        }]);
        let who = Identity::User("alice".into());
        let (tok, _) = a.issue_token(&who, "repository:team/app:pull,push repository:other:pull");
        let id = a.identify(Some(&format!("Bearer {tok}"))).await.unwrap();
        assert!(a.allowed(&id, "team/app", Action::Pull));
        assert!(!a.allowed(&id, "team/app", Action::Push));
        assert!(!a.allowed(&id, "other", Action::Pull));
        let mut forged = tok.clone();
        forged.replace_range(0..1, if tok.starts_with('e') { "f" } else { "e" });
        assert!(a.identify(Some(&format!("Bearer {forged}"))).await.is_err());
    }

    #[tokio::test]
    async fn anonymous_clients_pull_only_when_allowed() {
        let mut a = auth_with(vec![]);
        let anon_token = a
            .issue_token(&Identity::Anonymous, "repository:x:pull,push")
            .0;
        let id = a
            .identify(Some(&format!("Bearer {anon_token}")))
            .await
            .unwrap();
        for who in [&Identity::Anonymous, &id] {
            assert!(!a.allowed(who, "x", Action::Pull));
            assert!(!a.allowed(who, "x", Action::Push));
        }
        a.anonymous_pull = true;
        for who in [&Identity::Anonymous, &id] {
            assert!(a.allowed(who, "x", Action::Pull));
            assert!(!a.allowed(who, "x", Action::Push));
        }
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(
            parse_scopes("repository:a/b:pull,push repository:c:* registry:catalog:*"),
            vec![
                ("a/b".to_owned(), Action::Pull),
                ("a/b".to_owned(), Action::Push),
                ("c".to_owned(), Action::Pull),
                ("c".to_owned(), Action::Push),
            ]
        );
        assert!(parse_scopes("repository:x").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn scopes_never_grant_unknown_actions(s in "\\PC{0,80}") {
            for (name, _) in parse_scopes(&s) {
                proptest::prop_assert!(s.contains(&name));
            }
        }

        #[test]
        fn htpasswd_parsing_never_panics(s in "\\PC{0,200}") {
            if let Ok(users) = parse_htpasswd(&s, "f") {
                proptest::prop_assert!(users.values().all(|h| h.starts_with("$2")));
            }
        }
    }

    #[test]
    fn htpasswd_needs_bcrypt() {
        assert!(parse_htpasswd("a:$2y$05$abc\n# c\n\n", "f").is_ok());
        let e = parse_htpasswd("a:{SHA}xyz", "f").unwrap_err();
        assert!(e.contains("htpasswd -B"), "{e}");
        assert!(parse_htpasswd("nocolon", "f").is_err());
    }

    #[test]
    fn hmac_matches_rfc4231_test_case_1() {
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
