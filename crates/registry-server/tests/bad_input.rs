//! Clients that send wrong things: each case gets the spec's error and
//! leaves nothing half-made visible.

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn digest_mismatch_is_refused_and_nothing_is_stored() {
    let reg = TestRegistry::start();
    let c = client();
    let claimed = digest(b"what I claim");
    // Single POST.
    let r = c
        .post(format!("{}/v2/mm/blobs/uploads/?digest={claimed}", reg.url))
        .body(b"what I send".to_vec())
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "DIGEST_INVALID").await;
    // POST then PUT.
    let loc = reg.new_upload("mm").await;
    let r = c
        .put(format!("{loc}?digest={claimed}"))
        .body(b"what I send".to_vec())
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "DIGEST_INVALID").await;
    for d in [claimed, digest(b"what I send")] {
        assert_eq!(reg.blob_status("mm", &d).await, 404);
    }
    assert_eq!(reg.upload_files(), 0);
    // A malformed digest.
    let loc = reg.new_upload("mm").await;
    let r = c
        .put(format!("{loc}?digest=md5:abc"))
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "DIGEST_INVALID").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn content_length_that_does_not_match_is_refused() {
    let reg = TestRegistry::start();
    let c = client();
    let loc = reg.new_upload("cl").await;
    // Content-Range says 10 bytes, Content-Length says 4.
    let r = patch_chunk(&loc, "0-9", b"abcd").await;
    assert_error(r, 400, "SIZE_INVALID").await;
    let r = c.get(&loc).send().await.unwrap();
    assert_eq!(header(&r, "range"), "0-0");

    // Content-Length larger than the body, then the client goes away
    // after the server wrote part of the chunk to disk.
    let path = loc.strip_prefix(&reg.url).unwrap().to_owned();
    let upload_file_len = || {
        std::fs::read_dir(reg.storage().join("uploads"))
            .unwrap()
            .map(|f| f.unwrap().metadata().unwrap().len())
            .sum::<u64>()
    };
    let mut s = TcpStream::connect(reg.addr).unwrap();
    write!(
        s,
        "PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
        3 << 20
    )
    .unwrap();
    s.write_all(&vec![b'y'; 3 << 19]).unwrap();
    assert!(
        eventually(|| upload_file_len() >= 1 << 20),
        "the chunk never reached the disk"
    );
    drop(s);
    // The partial chunk is cut off again: the session holds 0 bytes.
    assert!(
        eventually(|| upload_file_len() == 0),
        "the partial chunk stayed"
    );
    let r = c.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-0");
    // The session goes on with a correct chunk.
    let r = put_last_chunk(&loc, &digest(b"fine"), "0-3", b"fine").await;
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_and_overlapping_chunks_get_416() {
    let reg = TestRegistry::start();
    let c = client();
    let loc = reg.new_upload("order").await;
    let r = patch_chunk(&loc, "0-9", &[1u8; 10]).await;
    assert_eq!(r.status(), 202);
    for range in ["20-29", "5-14", "0-9"] {
        let r = patch_chunk(&loc, range, &[2u8; 10]).await;
        assert_eq!(r.status(), 416, "{range}");
        assert_eq!(header(&r, "range"), "0-9", "{range}");
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID");
    }
    // A final chunk out of order in the PUT too.
    let r = put_last_chunk(&loc, &digest(&[1u8; 20]), "11-20", &[1u8; 10]).await;
    assert_eq!(r.status(), 416);
    let r = c.get(&loc).send().await.unwrap();
    assert_eq!(header(&r, "range"), "0-9");
    let r = put_last_chunk(&loc, &digest(&[1u8; 20]), "10-19", &[1u8; 10]).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_referencing_missing_blobs_are_refused() {
    let reg = TestRegistry::start();
    let config = b"{}".to_vec();
    push_blob(&reg, "refs", &config).await;
    let m = image_manifest(&config, &[b"never pushed"], OCI_MANIFEST);
    let r = send_manifest(&reg, "refs", "v1", m, OCI_MANIFEST).await;
    assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;
    // A blob of another repository does not count.
    push_blob(&reg, "elsewhere", b"layer").await;
    let m = image_manifest(&config, &[b"layer"], OCI_MANIFEST);
    let r = send_manifest(&reg, "refs", "v1", m, OCI_MANIFEST).await;
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // An index over a manifest the repository lacks.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(b"no manifest"), "size": 11}],
    }))
    .unwrap();
    let r = send_manifest(&reg, "refs", "idx", index, OCI_INDEX).await;
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // Not JSON, wrong schema, wrong digest in the URL.
    for (reference, body) in [
        ("v1".to_owned(), b"not json".to_vec()),
        ("v1".to_owned(), br#"{"schemaVersion":1}"#.to_vec()),
    ] {
        let r = send_manifest(&reg, "refs", &reference, body, OCI_MANIFEST).await;
        assert_error(r, 400, "MANIFEST_INVALID").await;
    }
    let m = image_manifest(&config, &[], OCI_MANIFEST);
    let r = send_manifest(&reg, "refs", &digest(b"other"), m, OCI_MANIFEST).await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // Nothing was tagged.
    let r = reg.get("/v2/refs/manifests/v1").await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_names_and_tags_are_refused() {
    let reg = TestRegistry::start();
    let c = client();
    for name in ["UPPER", "a__-b", "-lead", "trail-", "a/_blobs", "a..b"] {
        let r = reg.get(&format!("/v2/{name}/tags/list")).await;
        assert_eq!(r.status(), 400, "{name}");
        assert_eq!(error_code(r).await, "NAME_INVALID", "{name}");
    }
    let long = "a".repeat(256);
    let r = c
        .post(format!("{}/v2/{long}/blobs/uploads/", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "NAME_INVALID");
    let config = b"{}".to_vec();
    push_blob(&reg, "tags", &config).await;
    let m = image_manifest(&config, &[], OCI_MANIFEST);
    for tag in [".hidden", "-dash", &"t".repeat(129)] {
        let r = send_manifest(&reg, "tags", tag, m.clone(), OCI_MANIFEST).await;
        assert_eq!(r.status(), 400, "{tag}");
        assert_eq!(error_code(r).await, "MANIFEST_INVALID", "{tag}");
    }
    assert!(reg
        .get("/v2/tags/tags/list")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["tags"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn path_traversal_in_names_never_leaves_the_root() {
    let reg = TestRegistry::start();
    let outside = reg.root.path().join("escaped");
    let paths = [
        "/v2/../../escaped/blobs/uploads/".to_owned(),
        "/v2/a/../../../escaped/blobs/uploads/".to_owned(),
        "/v2/..%2f..%2fescaped/blobs/uploads/".to_owned(),
        "/v2/%2e%2e/%2e%2e/escaped/blobs/uploads/".to_owned(),
        "/v2/a%00b/blobs/uploads/".to_owned(),
        "/v2/../tags/manifests/..%2f..%2f..%2fescaped".to_owned(),
    ];
    for p in &paths {
        let method = if p.contains("manifests") {
            "PUT"
        } else {
            "POST"
        };
        let resp = raw_request(
            reg.addr,
            format!("{method} {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
                .as_bytes(),
        );
        assert!(resp.starts_with("HTTP/1.1 400"), "{p}: {resp}");
        assert!(resp.contains("NAME_INVALID"), "{p}: {resp}");
    }
    assert!(!outside.exists());
    // And no repository was made inside either.
    assert_eq!(
        std::fs::read_dir(reg.storage().join("repos"))
            .unwrap()
            .count(),
        0
    );
    // A digest with a path in it is not a digest.
    let r = reg.get("/v2/ok/blobs/sha256:..%2f..%2fetc").await;
    assert_error(r, 400, "DIGEST_INVALID").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_manifests_get_413() {
    let reg = TestRegistry::with(|c| c.max_manifest_bytes = 1024);
    let config = b"{}".to_vec();
    push_blob(&reg, "big", &config).await;
    let big = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": 2},
        "layers": [],
        "annotations": {"pad": "x".repeat(2000)},
    }))
    .unwrap();
    let r = send_manifest(&reg, "big", "v1", big.clone(), OCI_MANIFEST).await;
    assert_error(r, 413, "SIZE_INVALID").await;
    // Without a Content-Length (chunked), the limit still holds.
    let stream = futures_util::stream::iter(
        big.chunks(100)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = send_manifest(
        &reg,
        "big",
        "v1",
        reqwest::Body::wrap_stream(stream),
        OCI_MANIFEST,
    )
    .await;
    assert_eq!(r.status(), 413);
    let r = reg.get("/v2/big/manifests/v1").await;
    assert_eq!(r.status(), 404);
}

fn htpasswd_file(dir: &std::path::Path, users: &[(&str, &str)]) -> Option<std::path::PathBuf> {
    let path = dir.join("htpasswd");
    for (i, (u, p)) in users.iter().enumerate() {
        let mut cmd = std::process::Command::new("htpasswd");
        cmd.arg("-bB");
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd.arg(&path).arg(u).arg(p).output().ok()?;
        assert!(out.status.success(), "htpasswd: {out:?}");
    }
    Some(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_get_401_and_rights_are_per_repository() {
    let dir = tempfile::Builder::new()
        .prefix("pier-test-auth-")
        .tempdir()
        .unwrap();
    let Some(htpasswd) = htpasswd_file(dir.path(), &[("alice", "s3cret"), ("bob", "hunter2")])
    else {
        pier_testutil::skip("htpasswd is not installed (apt-get install apache2-utils)");
        return;
    };
    let reg = TestRegistry::with(|c| {
        c.htpasswd = Some(htpasswd);
        c.access = vec![
            pier_registry_server::AccessRule {
                user: "alice".into(),
                repos: "*".into(),
                pull: true,
                push: true,
            },
            pier_registry_server::AccessRule {
                user: "bob".into(),
                repos: "*".into(),
                pull: true,
                push: false,
            },
        ];
    });
    let c = client();
    let r = reg.get("/v2/").await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "www-authenticate"),
        "Basic realm=\"pier-registry\""
    );
    assert_eq!(error_code(r).await, "UNAUTHORIZED");
    for (u, p) in [("alice", "wrong"), ("mallory", "s3cret"), ("alice", "")] {
        let r = c
            .get(format!("{}/v2/", reg.url))
            .basic_auth(u, Some(p))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{u}:{p}");
    }
    let r = c
        .get(format!("{}/v2/", reg.url))
        .header("authorization", "Basic !!notbase64")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{}/v2/", reg.url))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // alice pushes, bob may pull but not push, anonymous may do nothing.
    let r = c
        .post(format!(
            "{}/v2/team/app/blobs/uploads/?digest={}",
            reg.url,
            digest(b"x")
        ))
        .basic_auth("alice", Some("s3cret"))
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{}/v2/team/app/blobs/uploads/", reg.url))
        .basic_auth("bob", Some("hunter2"))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "DENIED").await;
    let r = c
        .get(format!("{}/v2/team/app/blobs/{}", reg.url, digest(b"x")))
        .basic_auth("bob", Some("hunter2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reg
        .get(&format!("/v2/team/app/blobs/{}", digest(b"x")))
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_tokens_carry_scopes_and_forged_ones_fail() {
    let dir = tempfile::Builder::new()
        .prefix("pier-test-auth-")
        .tempdir()
        .unwrap();
    let Some(htpasswd) = htpasswd_file(dir.path(), &[("alice", "s3cret")]) else {
        pier_testutil::skip("htpasswd is not installed (apt-get install apache2-utils)");
        return;
    };
    let reg = TestRegistry::with(|c| {
        c.htpasswd = Some(htpasswd);
        c.token_auth = true;
    });
    let c = client();
    let r = c
        .post(format!("{}/v2/tok/blobs/uploads/", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = header(&r, "www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=\"http://"),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"repository:tok:pull,push\""),
        "{challenge}"
    );
    let r = c
        .get(format!(
            "{}/v2/token?service=pier-registry&scope=repository:tok:pull,push",
            reg.url
        ))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let tok: serde_json::Value = c
        .get(format!(
            "{}/v2/token?service=pier-registry&scope=repository:tok:pull,push",
            reg.url
        ))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["token"].as_str().unwrap().to_owned();
    let r = c
        .post(format!("{}/v2/tok/blobs/uploads/", reg.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The token holds no scope on another repository.
    let r = c
        .post(format!("{}/v2/other/blobs/uploads/", reg.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let mut forged = token.clone();
    forged.push('A');
    let r = c
        .post(format!("{}/v2/tok/blobs/uploads/", reg.url))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

fn start_upload_raw(reg: &TestRegistry, d: &str, len: usize, first: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(reg.addr).unwrap();
    write!(
        s,
        "POST /v2/cut/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    s.write_all(first).unwrap();
    s
}

async fn assert_nothing_visible(reg: &TestRegistry, d: &str) {
    assert_eq!(reg.blob_status("cut", d).await, 404);
    let blobs = std::fs::read_dir(reg.storage().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    let tmp = std::fs::read_dir(reg.storage().join("tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_visible() {
    let reg = TestRegistry::start();
    let data = vec![9u8; 1 << 20];
    let d = digest(&data);
    // Cut off after 300 KB: the connection drops while the session exists.
    let s = start_upload_raw(&reg, &d, data.len(), &data[..300_000]);
    assert!(eventually(|| reg.upload_files() == 1), "no session started");
    drop(s);
    assert!(
        eventually(|| reg.upload_files() == 0),
        "an upload file stayed behind"
    );
    assert_nothing_visible(&reg, &d).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_silent_mid_upload_is_cut_off() {
    let reg = TestRegistry::with(|c| c.body_idle_timeout_secs = 1);
    let data = vec![9u8; 1 << 20];
    let d = digest(&data);
    // Silent without closing: the body idle timeout ends it.
    let silent = start_upload_raw(&reg, &d, data.len(), &data[..1000]);
    assert!(eventually(|| reg.upload_files() == 1), "no session started");
    assert!(
        eventually(|| reg.upload_files() == 0),
        "an upload file stayed behind"
    );
    assert_nothing_visible(&reg, &d).await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uploads_of_one_blob_are_safe() {
    let reg = TestRegistry::start();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let d = digest(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (url, data, d) = (reg.url.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            client()
                .post(format!("{url}/v2/same{}/blobs/uploads/?digest={d}", i % 2))
                .body(data)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    for repo in ["same0", "same1"] {
        let got = reg.get_bytes(&format!("/v2/{repo}/blobs/{d}")).await;
        assert!(got == data, "{repo}: blob differs");
    }
    assert_eq!(reg.upload_files(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_mode_refuses_writes() {
    let reg = TestRegistry::with(|c| c.read_only = true);
    let c = client();
    let r = c
        .post(format!("{}/v2/ro/blobs/uploads/", reg.url))
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "UNSUPPORTED").await;
    let r = reg.delete("/v2/ro/manifests/v1").await;
    assert_eq!(r.status(), 405);
    let r = reg.get("/v2/ro/tags/list").await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_uploads_expire() {
    let reg = TestRegistry::with(|c| c.upload_expiry_secs = 1);
    let loc = reg.new_upload("expire").await;
    let r = patch_chunk(&loc, "0-2", b"abc").await;
    assert_eq!(r.status(), 202);
    assert_eq!(reg.upload_files(), 1);
    assert!(
        eventually(|| reg.upload_files() == 0),
        "the abandoned upload was never swept"
    );
    let r = client().get(&loc).send().await.unwrap();
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_sends_headers_is_disconnected() {
    let reg = TestRegistry::with(|c| c.header_timeout_secs = 1);
    let mut s = TcpStream::connect(reg.addr).unwrap();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (EOF) rather than wait forever.
    let n = std::io::Read::read_to_end(&mut s, &mut buf);
    assert!(n.is_ok(), "the connection stayed open: {n:?}");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
}
