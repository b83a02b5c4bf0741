//! The registry client against a registry that misbehaves in every way
//! the issue lists: clear errors, nothing half-made visible, verified
//! layers kept so a retry fetches only the rest.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{add_image, digest, gz_layer, Blob, Fake};
use pier_image::reference::Reference;
use pier_image::Store;
use pier_registry_client::{pull, Client, Credentials, Error, Message, Options, Platform};

struct Env {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<Store>,
    rt: tokio::runtime::Runtime,
    client: Client,
}

fn env() -> Env {
    let dir = tempfile::Builder::new()
        .prefix("pier-test-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("data");
    let store = Arc::new(Store::open(&root).unwrap());
    Env {
        _dir: dir,
        root,
        store,
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        client: Client::new(Options {
            read_timeout: Duration::from_millis(800),
            retries: 2,
            backoff: Duration::from_millis(10),
            ..Options::default()
        }),
    }
}

impl Env {
    fn pull_with(
        &self,
        reference: &str,
        platform: &str,
        creds: Credentials,
    ) -> (Result<pull::Pulled, Error>, Vec<Message>) {
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let m2 = msgs.clone();
        let progress: pull::Progress = Arc::new(move |m| m2.lock().unwrap().push(m));
        let r = Reference::parse(reference).unwrap();
        let res = self.rt.block_on(async {
            let resolved =
                pull::resolve(&self.client, &r, &Platform::parse(platform)?, creds).await?;
            resolved.fetch(self.store.clone(), progress).await
        });
        let v = msgs.lock().unwrap().clone();
        (res, v)
    }

    fn pull(&self, reference: &str) -> (Result<pull::Pulled, Error>, Vec<Message>) {
        self.pull_with(reference, "", Credentials::default())
    }

    /// No image, no half-written blob or snapshot.
    fn assert_nothing_half_made(&self) {
        assert!(
            self.store.list().unwrap().is_empty(),
            "an image was recorded"
        );
        let ingest: Vec<_> = std::fs::read_dir(self.root.join("content/ingest"))
            .unwrap()
            .collect();
        assert!(ingest.is_empty(), "ingest files left: {ingest:?}");
        for e in std::fs::read_dir(self.root.join("snapshots")).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with("tmp-"), "temporary snapshot {n} left");
        }
    }
}

fn two_layer_image(fake: &Fake) -> (String, Vec<String>, Vec<String>) {
    let l1 = gz_layer("one", &common::noise(300_000, 1));
    let l2 = gz_layer("two", &common::noise(200_000, 2));
    let diffs = vec![l1.1.clone(), l2.1.clone()];
    let (md, _, lds) = add_image(fake, "v1", &[l1, l2]);
    (md, lds, diffs)
}

fn err_of(r: Result<pull::Pulled, Error>) -> Error {
    match r {
        Ok(p) => panic!("pull succeeded: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_good_image_is_pulled_unpacked_and_recorded() {
    let fake = Fake::start();
    let (md, lds, _) = two_layer_image(&fake);
    let e = env();
    let name = format!("{}/t/img:v1", fake.addr);
    let (r, msgs) = e.pull(&name);
    let p = r.unwrap();
    assert_eq!(p.digest, md);
    assert!(!p.up_to_date);
    let img = e.store.resolve(&name).unwrap();
    assert_eq!(img.layers.len(), 2);
    assert_eq!(
        std::fs::read(img.layers[0].join("one")).unwrap(),
        common::noise(300_000, 1)
    );
    assert!(img.layers[1].join("two").is_file());
    assert!(msgs
        .iter()
        .any(|m| m.status.as_deref() == Some("Pull complete")
            && m.id.as_deref() == Some(&lds[1][7..19])));
    let (r, msgs) = e.pull(&name);
    assert!(r.unwrap().up_to_date);
    assert_eq!(
        msgs.iter()
            .filter(|m| m.status.as_deref() == Some("Already exists"))
            .count(),
        2
    );
    // Nothing more was fetched.
    assert_eq!(
        fake.served(&lds[0]),
        std::fs::metadata(e.store.blob_path(&lds[0]).unwrap())
            .unwrap()
            .len()
    );
}

#[test]
fn a_manifest_digest_mismatch_is_refused() {
    let fake = Fake::start();
    two_layer_image(&fake);
    fake.with(|s| s.lying_digest = Some(digest(b"something else")));
    let e = env();
    let err = err_of(e.pull(&format!("{}/t/img:v1", fake.addr)).0);
    assert!(
        err.to_string().contains("manifest digest mismatch"),
        "{err}"
    );
    e.assert_nothing_half_made();

    // By digest: the bytes must hash to it, whatever the headers say.
    let fake = Fake::start();
    let (md, _, _) = two_layer_image(&fake);
    let other = fake.with(|s| s.manifests["v1"].clone());
    let mut bytes = other.1.clone();
    bytes.push(b' ');
    fake.with(|s| {
        s.manifests.insert(md.clone(), (other.0.clone(), bytes));
        s.lying_digest = Some(md.clone());
    });
    let err = err_of(e.pull(&format!("{}/t/img@{md}", fake.addr)).0);
    assert!(
        err.to_string().contains("manifest digest mismatch"),
        "{err}"
    );
    assert_eq!(err.http_status(), 500);
    e.assert_nothing_half_made();
}

#[test]
fn a_blob_digest_mismatch_keeps_what_was_verified_and_a_retry_fetches_the_rest() {
    let fake = Fake::start();
    let (_, lds, diffs) = two_layer_image(&fake);
    fake.with(|s| {
        s.blob_mode.insert(lds[1].clone(), Blob::WrongBytes);
    });
    let e = env();
    let name = format!("{}/t/img:v1", fake.addr);
    let err = err_of(e.pull(&name).0);
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(err.to_string().contains(&lds[1]), "{err}");
    e.assert_nothing_half_made();
    // The good layer is stored and unpacked; the bad one is not.
    assert!(e.store.has_blob(&lds[0]));
    assert!(e.store.has_snapshot(&diffs[0]));
    assert!(!e.store.has_blob(&lds[1]));
    let first = fake.served(&lds[0]);

    fake.with(|s| s.blob_mode.clear());
    let (r, msgs) = e.pull(&name);
    r.unwrap();
    assert_eq!(
        fake.served(&lds[0]),
        first,
        "the verified layer was fetched again"
    );
    assert!(msgs
        .iter()
        .any(|m| m.status.as_deref() == Some("Already exists")
            && m.id.as_deref() == Some(&lds[0][7..19])));
    e.store.resolve(&name).unwrap();
}

#[test]
fn a_truncated_blob_is_an_error() {
    let fake = Fake::start();
    let (_, lds, _) = two_layer_image(&fake);
    fake.with(|s| {
        s.blob_mode.insert(lds[0].clone(), Blob::Truncated(1000));
    });
    let e = env();
    let err = err_of(e.pull(&format!("{}/t/img:v1", fake.addr)).0);
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(err.to_string().contains("only 1000 of the"), "{err}");
    e.assert_nothing_half_made();
    assert!(!e.store.has_blob(&lds[0]));
}

#[test]
fn a_manifest_over_4_mib_is_refused() {
    let fake = Fake::start();
    let mut big = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"annotations":{"x":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 4 << 20));
    big.extend_from_slice(br#""}}"#);
    fake.with(|s| {
        s.manifests
            .insert("v1".into(), (common::OCI_MANIFEST.into(), big));
    });
    let e = env();
    let err = err_of(e.pull(&format!("{}/t/img:v1", fake.addr)).0);
    assert!(err.to_string().contains("limit"), "{err}");
    e.assert_nothing_half_made();
}

#[test]
fn an_unknown_media_type_is_refused() {
    let fake = Fake::start();
    two_layer_image(&fake);
    fake.with(|s| {
        let (_, b) = s.manifests["v1"].clone();
        let text = String::from_utf8(b)
            .unwrap()
            .replace(common::OCI_MANIFEST, "application/vnd.example.thing+json");
        s.manifests.insert(
            "v1".into(),
            (
                "application/vnd.example.thing+json".into(),
                text.into_bytes(),
            ),
        );
    });
    let e = env();
    let err = err_of(e.pull(&format!("{}/t/img:v1", fake.addr)).0);
    assert!(
        err.to_string()
            .contains("application/vnd.example.thing+json"),
        "{err}"
    );
    assert!(err.to_string().contains("does not support"), "{err}");
    e.assert_nothing_half_made();
}

#[test]
fn error_statuses_become_clear_errors() {
    let fake = Fake::start();
    two_layer_image(&fake);
    let e = env();
    let name = format!("{}/t/img:v1", fake.addr);
    for (code, want_status, text) in [
        (401, 401, "unauthorized"),
        (403, 403, "denied"),
        (500, 500, "the registry failed"),
        (429, 500, "rate-limiting"),
    ] {
        fake.with(|s| s.manifest_status = Some((code, usize::MAX)));
        let err = err_of(e.pull(&name).0);
        assert_eq!(err.http_status(), want_status, "{code}: {err}");
        assert!(err.to_string().contains(text), "{code}: {err}");
    }
    fake.with(|s| s.manifest_status = None);
    let err = err_of(e.pull(&format!("{}/t/img:nope", fake.addr)).0);
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("manifest unknown"), "{err}");
    e.assert_nothing_half_made();

    // 429 and 5xx that pass are retried.
    fake.with(|s| s.manifest_status = Some((429, 2)));
    let (_, lds, _) = two_layer_image(&fake);
    fake.with(|s| {
        s.blob_mode.insert(lds[0].clone(), Blob::Status(503, 2));
    });
    e.pull(&name).0.unwrap();
}

#[test]
fn a_registry_hanging_mid_blob_times_out() {
    let fake = Fake::start();
    let (_, lds, _) = two_layer_image(&fake);
    fake.with(|s| {
        s.blob_mode.insert(lds[0].clone(), Blob::HangAt(1000));
    });
    let e = env();
    let err = err_of(e.pull(&format!("{}/t/img:v1", fake.addr)).0);
    assert!(err.to_string().contains("timeout"), "{err}");
    e.assert_nothing_half_made();
    // It was asked to resume after the bytes it had sent.
    assert!(fake.with(|s| s
        .ranges
        .iter()
        .any(|(d, r)| d == &lds[0] && r == "bytes=1000-")));
}

#[test]
fn a_connection_reset_halfway_resumes_with_range() {
    let fake = Fake::start();
    let (_, lds, _) = two_layer_image(&fake);
    let size = fake.with(|s| s.blobs[&lds[0]].len());
    let half = size / 2;
    fake.with(|s| {
        s.blob_mode.insert(lds[0].clone(), Blob::ResetOnceAt(half));
    });
    let e = env();
    e.pull(&format!("{}/t/img:v1", fake.addr)).0.unwrap();
    assert_eq!(
        fake.with(|s| s.ranges.clone()),
        vec![(lds[0].clone(), format!("bytes={half}-"))]
    );
    assert_eq!(
        fake.served(&lds[0]),
        size as u64,
        "bytes were fetched twice"
    );
}

#[test]
fn bearer_tokens_are_fetched_with_credentials_and_cached() {
    let fake = Fake::start();
    let (_, lds, _) = two_layer_image(&fake);
    fake.with(|s| s.bearer = Some(("alice".into(), "pw".into())));
    let e = env();
    let name = format!("{}/t/img:v1", fake.addr);
    let err = err_of(e.pull(&name).0);
    assert_eq!(err.http_status(), 401, "{err}");
    let creds = |p: &str| Credentials {
        username: "alice".into(),
        password: p.into(),
        ..Default::default()
    };
    let err = err_of(e.pull_with(&name, "", creds("bad")).0);
    assert_eq!(err.http_status(), 401, "{err}");
    fake.with(|s| s.token_requests.clear());
    e.pull_with(&name, "", creds("pw")).0.unwrap();
    let reqs = fake.with(|s| s.token_requests.clone());
    assert_eq!(reqs.len(), 1, "one token for the whole pull: {reqs:?}");
    assert!(reqs[0].contains("service=fake"), "{reqs:?}");
    assert!(
        reqs[0].contains("scope=repository%3At%2Fimg%3Apull"),
        "{reqs:?}"
    );
    assert!(e.store.has_blob(&lds[1]));

    // Login checks the credentials with the token service.
    let reg = e.client.registry(&fake.addr, creds("bad")).unwrap();
    let err = e.rt.block_on(reg.login()).unwrap_err();
    assert!(err.to_string().contains("login attempt to"), "{err}");
    let reg = e.client.registry(&fake.addr, creds("pw")).unwrap();
    e.rt.block_on(reg.login()).unwrap();
}

#[test]
fn an_index_gives_the_wanted_platform() {
    let fake = Fake::start();
    let (md, _, _) = two_layer_image(&fake);
    let size = fake.with(|s| s.manifests["v1"].1.len());
    let other = format!("sha256:{}", "e".repeat(64));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": common::OCI_MANIFEST, "digest": other, "size": 10, "platform": {"os": "linux", "architecture": "riscv64"}},
            {"mediaType": common::OCI_MANIFEST, "digest": md, "size": size, "platform": {"os": "linux", "architecture": pier_image::manifest::host_arch()}},
        ]
    }))
    .unwrap();
    let idx_digest = digest(&index);
    fake.with(|s| {
        s.manifests.insert(
            "multi".into(),
            ("application/vnd.oci.image.index.v1+json".into(), index),
        );
    });
    let e = env();
    let name = format!("{}/t/img:multi", fake.addr);
    let err = err_of(e.pull_with(&name, "linux/s390x", Credentials::default()).0);
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("linux/riscv64"), "{err}");
    let p = e.pull(&name).0.unwrap();
    assert_eq!(p.digest, idx_digest);
    e.store.resolve(&name).unwrap();
    // The image is found by the index digest too.
    e.store
        .resolve(&format!("{}/t/img@{idx_digest}", fake.addr))
        .unwrap();
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_not_unpacked_but_its_blob_is_reused() {
    let fake = Fake::start();
    let l1 = gz_layer("one", &common::noise(100_000, 5));
    let wrong = (l1.0.clone(), format!("sha256:{}", "0".repeat(64)));
    let (_, _, lds) = add_image(&fake, "bad", &[wrong]);
    let e = env();
    let err = err_of(e.pull(&format!("{}/t/img:bad", fake.addr)).0);
    assert!(err.to_string().contains("diff ID"), "{err}");
    e.assert_nothing_half_made();
    // The blob matched the manifest, so it is kept; no snapshot was made.
    assert!(e.store.has_blob(&lds[0]));
    let served = fake.served(&lds[0]);
    // The same blob in a consistent image: unpacked from the store, not fetched.
    add_image(&fake, "good", &[l1]);
    let (r, msgs) = e.pull(&format!("{}/t/img:good", fake.addr));
    r.unwrap();
    assert_eq!(fake.served(&lds[0]), served);
    assert!(msgs
        .iter()
        .any(|m| m.status.as_deref() == Some("Extracting")));
    let img = e
        .store
        .resolve(&format!("{}/t/img:good", fake.addr))
        .unwrap();
    assert_eq!(
        std::fs::read(img.layers[0].join("one")).unwrap(),
        common::noise(100_000, 5)
    );
}
