//! Which endpoint a URL path names. Repository names contain `/`, so the
//! path is read from the right: `.../tags/list`, `.../blobs/uploads/`,
//! then `NAME/KIND/LAST`.

use crate::auth::Action;
use hyper::Method;

/// What a URL path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Token,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Uploads(String),
    Upload(String, String),
    Referrers(String, String),
}

impl Route {
    pub fn parse(path: &str) -> Option<Route> {
        let rest = match path {
            "/v2" | "/v2/" => return Some(Route::Base),
            "/v2/_catalog" => return Some(Route::Catalog),
            "/v2/token" => return Some(Route::Token),
            p => p.strip_prefix("/v2/")?,
        };
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Route::Tags(name.into()));
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Some(Route::Uploads(name.into()));
        }
        let mut it = rest.rsplitn(3, '/');
        let (last, kind, prefix) = (it.next()?, it.next()?, it.next()?);
        if last.is_empty() {
            return None;
        }
        match kind {
            "manifests" => Some(Route::Manifest(prefix.into(), last.into())),
            "blobs" => Some(Route::Blob(prefix.into(), last.into())),
            "referrers" => Some(Route::Referrers(prefix.into(), last.into())),
            "uploads" => prefix
                .strip_suffix("/blobs")
                .map(|n| Route::Upload(n.into(), last.into())),
            _ => None,
        }
    }

    pub fn repo(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog | Route::Token => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::Uploads(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }

    /// What `method` on this route needs.
    pub fn action(&self, method: &Method) -> Action {
        match (self, method) {
            (_, &Method::GET | &Method::HEAD) => match self {
                Route::Upload(..) => Action::Push,
                _ => Action::Pull,
            },
            _ => Action::Push,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn routes() {
        let r = |p| Route::parse(p);
        assert_eq!(r("/v2/"), Some(Route::Base));
        assert_eq!(r("/v2/a/b/tags/list"), Some(Route::Tags("a/b".into())));
        assert_eq!(
            r("/v2/a/manifests/latest"),
            Some(Route::Manifest("a".into(), "latest".into()))
        );
        assert_eq!(
            r("/v2/a/b/blobs/sha256:x"),
            Some(Route::Blob("a/b".into(), "sha256:x".into()))
        );
        assert_eq!(r("/v2/a/blobs/uploads/"), Some(Route::Uploads("a".into())));
        assert_eq!(
            r("/v2/a/blobs/uploads/123"),
            Some(Route::Upload("a".into(), "123".into()))
        );
        assert_eq!(
            r("/v2/x/referrers/sha256:1"),
            Some(Route::Referrers("x".into(), "sha256:1".into()))
        );
        assert_eq!(r("/v2/a/other/x"), None);
        assert_eq!(r("/v3/a/manifests/x"), None);
        assert_eq!(r("/v2/manifests/x"), None);
        assert_eq!(
            r("/v2/../../etc/manifests/x"),
            Some(Route::Manifest("../../etc".into(), "x".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn generated_paths_route_back_to_their_parts(
            parts in proptest::collection::vec("[a-z0-9]{1,6}((\\.|_|__|-)[a-z0-9]{1,4})?", 1..5),
            tag in "[A-Za-z0-9_][A-Za-z0-9._-]{0,20}",
            id in "[0-9a-f]{32}",
        ) {
            let name = parts.join("/");
            proptest::prop_assert!(crate::names::valid_name(&name));
            let r = |p: String| Route::parse(&p);
            proptest::prop_assert_eq!(r(format!("/v2/{name}/manifests/{tag}")), Some(Route::Manifest(name.clone(), tag.clone())));
            proptest::prop_assert_eq!(r(format!("/v2/{name}/tags/list")), Some(Route::Tags(name.clone())));
            proptest::prop_assert_eq!(r(format!("/v2/{name}/blobs/uploads/")), Some(Route::Uploads(name.clone())));
            proptest::prop_assert_eq!(r(format!("/v2/{name}/blobs/uploads/{id}")), Some(Route::Upload(name.clone(), id.clone())));
            proptest::prop_assert_eq!(r(format!("/v2/{name}/blobs/sha256:{id}")), Some(Route::Blob(name.clone(), format!("sha256:{id}"))));
        }

        #[test]
        fn any_path_parses_without_panicking(p in "\\PC{0,60}") {
            let _ = Route::parse(&p);
            let _ = Route::parse(&format!("/v2/{p}"));
        }
    }
}
