//! Conformance with the OCI distribution spec v1.1, section by section:
//! push (monolithic, single POST, chunked, streamed, status, cancel,
//! mount), pull (blobs with Range, manifests by tag and digest, OCI and
//! Docker media types), content discovery (tags/list and _catalog with
//! pagination, referrers) and content management (deletes), against a
//! real server on 127.0.0.1.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn ping_answers_200_with_the_api_version() {
    let reg = TestRegistry::start();
    let r = reg.get("/v2/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn post_then_put_pushes_a_blob_that_get_and_head_serve() {
    let reg = TestRegistry::start();
    let c = client();
    let data = b"hello registry".to_vec();
    let d = digest(&data);
    let r = c
        .post(format!("{}/v2/a/b/blobs/uploads/", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = header(&r, "location");
    assert!(loc.starts_with("/v2/a/b/blobs/uploads/"), "{loc}");
    assert!(!header(&r, "docker-upload-uuid").is_empty());
    let r = c
        .put(format!("{}?digest={d}", absolute(&reg, &loc)))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/a/b/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d);

    let r = reg.get(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = reg.head(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), data.len().to_string());
    assert!(r.bytes().await.unwrap().is_empty());
    // The upload session is over and its file gone.
    assert_eq!(reg.upload_files(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_post_with_digest_pushes_a_blob() {
    let reg = TestRegistry::start();
    let data = vec![7u8; 100_000];
    let d = digest(&data);
    let r = client()
        .post(format!("{}/v2/mono/blobs/uploads/?digest={d}", reg.url))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/mono/blobs/{d}"));
    let got = reg.get_bytes(&format!("/v2/mono/blobs/{d}")).await;
    assert_eq!(got, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_reports_ranges_and_status() {
    let reg = TestRegistry::start();
    let c = client();
    let data: Vec<u8> = (0..30u8).collect();
    let d = digest(&data);
    let r = c
        .post(format!("{}/v2/chunky/blobs/uploads/", reg.url))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut loc = absolute(&reg, &header(&r, "location"));
    for (start, end) in [(0usize, 9usize), (10, 19)] {
        let r = c
            .patch(&loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{end}"))
            .body(data[start..=end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(header(&r, "range"), format!("0-{end}"));
        loc = absolute(&reg, &header(&r, "location"));
    }
    let r = c.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-19");
    assert_eq!(absolute(&reg, &header(&r, "location")), loc);
    // The last chunk goes with the closing PUT.
    let r = put_last_chunk(&loc, &d, "20-29", &data[20..]).await;
    assert_eq!(r.status(), 201);
    let got = reg.get_bytes(&format!("/v2/chunky/blobs/{d}")).await;
    assert_eq!(got, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_upload_without_content_range() {
    let reg = TestRegistry::start();
    let c = client();
    let parts: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 300_000]).collect();
    let all: Vec<u8> = parts.concat();
    let d = digest(&all);
    let loc = reg.new_upload("stream").await;
    // Chunked transfer encoding: no Content-Length, no Content-Range.
    let stream = futures_util::stream::iter(
        parts
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p))),
    );
    let r = c
        .patch(&loc)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), format!("0-{}", all.len() - 1));
    let loc = absolute(&reg, &header(&r, "location"));
    let r = c
        .put(format!("{loc}?digest={d}"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = reg.get_bytes(&format!("/v2/stream/blobs/{d}")).await;
    assert_eq!(got.len(), all.len());
    assert!(got == all);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_upload_is_gone() {
    let reg = TestRegistry::start();
    let c = client();
    let loc = reg.new_upload("cancel").await;
    let r = patch_chunk(&loc, "0-3", b"abcd").await;
    assert_eq!(r.status(), 202);
    assert_eq!(reg.upload_files(), 1);
    let r = c.delete(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(&loc).send().await.unwrap();
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert_eq!(reg.upload_files(), 0);
    let r = c.delete(&loc).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_links_a_blob_from_another_repository() {
    let reg = TestRegistry::start();
    let c = client();
    let d = push_blob(&reg, "source", b"shared layer").await;
    let r = c
        .post(format!(
            "{}/v2/target/blobs/uploads/?mount={d}&from=source",
            reg.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/target/blobs/{d}"));
    let r = reg.get(&format!("/v2/target/blobs/{d}")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"shared layer");
    // A blob the source does not have: an upload session instead.
    let other = digest(b"nope");
    let r = c
        .post(format!(
            "{}/v2/target/blobs/uploads/?mount={other}&from=source",
            reg.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(header(&r, "location").starts_with("/v2/target/blobs/uploads/"));
    // Blobs are stored once.
    let stored = std::fs::read_dir(reg.storage().join("blobs/sha256"))
        .unwrap()
        .flat_map(|fan| std::fs::read_dir(fan.unwrap().path()).unwrap())
        .count();
    assert_eq!(stored, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_range_requests() {
    let reg = TestRegistry::start();
    let c = client();
    let data: Vec<u8> = (0..100u8).collect();
    let d = push_blob(&reg, "ranges", &data).await;
    let url = format!("{}/v2/ranges/blobs/{d}", reg.url);
    let r = c
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 10-19/100");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    let r = c
        .get(&url)
        .header("range", "bytes=95-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[95..]);
    let r = c
        .get(&url)
        .header("range", "bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[97..]);
    let r = c
        .get(&url)
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "content-range"), "bytes */100");
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_by_tag_and_digest_in_oci_and_docker_types() {
    let reg = TestRegistry::start();
    let c = client();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer bytes".to_vec();
    push_blob(&reg, "img", &config).await;
    push_blob(&reg, "img", &layer).await;
    for (tag, mt) in [("oci", OCI_MANIFEST), ("docker", DOCKER_MANIFEST)] {
        let m = image_manifest(&config, &[&layer], mt);
        let d = digest(&m);
        let r = put_manifest(&reg, "img", tag, &m, mt).await;
        assert_eq!(header(&r, "location"), format!("/v2/img/manifests/{d}"));
        assert_eq!(header(&r, "docker-content-digest"), d);
        for reference in [tag.to_owned(), d.clone()] {
            let r = c
                .get(format!("{}/v2/img/manifests/{reference}", reg.url))
                .header("accept", mt)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "content-type"), mt);
            assert_eq!(header(&r, "docker-content-digest"), d);
            // Byte for byte what was pushed.
            assert_eq!(r.bytes().await.unwrap().as_ref(), m.as_slice());
            let r = reg.head(&format!("/v2/img/manifests/{reference}")).await;
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "content-length"), m.len().to_string());
        }
    }
    // An index over both, pushed by digest with extra tags.
    let oci = image_manifest(&config, &[&layer], OCI_MANIFEST);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(&oci), "size": oci.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let di = digest(&index);
    let r = c
        .put(format!(
            "{}/v2/img/manifests/{di}?tag=multi&tag=latest",
            reg.url
        ))
        .header("content-type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "oci-tag"), "multi, latest");
    let r = reg.get("/v2/img/manifests/latest").await;
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert_eq!(r.bytes().await.unwrap().as_ref(), index.as_slice());

    let r = reg.get("/v2/img/manifests/missing").await;
    assert_error(r, 404, "MANIFEST_UNKNOWN").await;
    let r = reg.get("/v2/nobody/manifests/latest").await;
    assert_error(r, 404, "NAME_UNKNOWN").await;
    let r = reg
        .get(&format!("/v2/img/blobs/{}", digest(b"absent")))
        .await;
    assert_error(r, 404, "BLOB_UNKNOWN").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_list_paginates_with_n_last_and_link() {
    let reg = TestRegistry::start();
    let d = push_image(&reg, "paged", "t0", "x").await;
    let m = reg.get_bytes(&format!("/v2/paged/manifests/{d}")).await;
    for t in ["b", "a", "C", "d"] {
        put_manifest(&reg, "paged", t, &m, OCI_MANIFEST).await;
    }
    let all: Value = reg.get_json("/v2/paged/tags/list").await;
    assert_eq!(
        all,
        json!({"name": "paged", "tags": ["C", "a", "b", "d", "t0"]})
    );
    let r = reg.get("/v2/paged/tags/list?n=2").await;
    let link = header(&r, "link");
    assert_eq!(link, "</v2/paged/tags/list?n=2&last=a>; rel=\"next\"");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], json!(["C", "a"]));
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let r = reg.get(next).await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], json!(["b", "d"]));
    let r = reg.get("/v2/paged/tags/list?n=2&last=d").await;
    assert_eq!(header(&r, "link"), "");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], json!(["t0"]));
    let r = reg.get("/v2/paged/tags/list?n=0").await;
    assert_eq!(header(&r, "link"), "");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], json!([]));
    let r = reg.get("/v2/unknown/tags/list").await;
    assert_error(r, 404, "NAME_UNKNOWN").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_lists_repositories_with_pagination() {
    let reg = TestRegistry::start();
    for name in ["zeta", "alpha/one", "alpha/two", "mid"] {
        push_image(&reg, name, "v1", name).await;
    }
    let all: Value = reg.get_json("/v2/_catalog").await;
    assert_eq!(
        all["repositories"],
        json!(["alpha/one", "alpha/two", "mid", "zeta"])
    );
    let r = reg.get("/v2/_catalog?n=3").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=3&last=mid>; rel=\"next\""
    );
    let page: Value = r.json().await.unwrap();
    assert_eq!(
        page["repositories"],
        json!(["alpha/one", "alpha/two", "mid"])
    );
    let page: Value = reg.get_json("/v2/_catalog?n=3&last=mid").await;
    assert_eq!(page["repositories"], json!(["zeta"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_api_lists_manifests_with_a_subject() {
    let reg = TestRegistry::start();
    let subject = push_image(&reg, "art", "v1", "subject").await;
    let subject_size = reg
        .get_bytes(&format!("/v2/art/manifests/{subject}"))
        .await
        .len();
    let empty = b"{}".to_vec();
    push_blob(&reg, "art", &empty).await;
    let sbom = b"sbom contents".to_vec();
    push_blob(&reg, "art", &sbom).await;
    let artifact = |artifact_type: &str, note: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(&empty), "size": 2},
            "layers": [{"mediaType": "text/plain", "digest": digest(&sbom), "size": sbom.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": {"note": note},
        }))
        .unwrap()
    };
    let a1 = artifact("application/vnd.example.sbom", "one");
    let a2 = artifact("application/vnd.example.sig", "two");
    for a in [&a1, &a2] {
        let r = put_manifest(&reg, "art", &digest(a), a, OCI_MANIFEST).await;
        assert_eq!(header(&r, "oci-subject"), subject);
    }
    let r = reg.get(&format!("/v2/art/referrers/{subject}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let list = index["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let one = list
        .iter()
        .find(|m| m["digest"] == digest(&a1).as_str())
        .expect("a1 listed");
    assert_eq!(one["artifactType"], "application/vnd.example.sbom");
    assert_eq!(one["annotations"]["note"], "one");
    assert_eq!(one["size"], a1.len());

    let r = reg
        .get(&format!(
            "/v2/art/referrers/{subject}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], digest(&a2).as_str());

    // No referrers: an empty index, not a 404.
    let r = reg
        .get(&format!("/v2/art/referrers/{}", digest(b"x")))
        .await;
    assert_eq!(r.status(), 200);
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));
    let r = reg.get("/v2/art/referrers/sha256:nothex").await;
    assert_eq!(r.status(), 400);

    // Deleting a referrer takes it off the list.
    let r = reg
        .delete(&format!("/v2/art/manifests/{}", digest(&a1)))
        .await;
    assert_eq!(r.status(), 202);
    let index: Value = reg.get_json(&format!("/v2/art/referrers/{subject}")).await;
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_tags_manifests_and_blobs() {
    let reg = TestRegistry::start();
    let d = push_image(&reg, "del", "keep", "del").await;
    let m = reg.get_bytes(&format!("/v2/del/manifests/{d}")).await;
    put_manifest(&reg, "del", "drop", &m, OCI_MANIFEST).await;

    let r = reg.delete("/v2/del/manifests/drop").await;
    assert_eq!(r.status(), 202);
    let r = reg.get("/v2/del/manifests/drop").await;
    assert_eq!(r.status(), 404);
    let r = reg.get("/v2/del/manifests/keep").await;
    assert_eq!(r.status(), 200);

    let r = reg.delete(&format!("/v2/del/manifests/{d}")).await;
    assert_eq!(r.status(), 202);
    for reference in [d.as_str(), "keep"] {
        let r = reg.get(&format!("/v2/del/manifests/{reference}")).await;
        assert_eq!(r.status(), 404, "{reference}");
    }
    let r = reg.delete(&format!("/v2/del/manifests/{d}")).await;
    assert_error(r, 404, "MANIFEST_UNKNOWN").await;

    let layer = digest(b"layer of del");
    let r = reg.delete(&format!("/v2/del/blobs/{layer}")).await;
    assert_eq!(r.status(), 202);
    let r = reg.get(&format!("/v2/del/blobs/{layer}")).await;
    assert_eq!(r.status(), 404);
    let r = reg.delete(&format!("/v2/del/blobs/{layer}")).await;
    assert_error(r, 404, "BLOB_UNKNOWN").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_only_unreferenced_blobs() {
    let reg = TestRegistry::start();
    let keep = push_image(&reg, "gc/keep", "v1", "keep").await;
    let gone = push_image(&reg, "gc/gone", "v1", "gone").await;
    // A layer both images share stays.
    let shared = b"shared".to_vec();
    push_blob(&reg, "gc/gone", &shared).await;
    push_blob(&reg, "gc/keep", &shared).await;
    let cfg = b"{\"c\":1}".to_vec();
    push_blob(&reg, "gc/keep", &cfg).await;
    let m = image_manifest(&cfg, &[&shared], OCI_MANIFEST);
    put_manifest(&reg, "gc/keep", "shared", &m, OCI_MANIFEST).await;
    let r = reg.delete(&format!("/v2/gc/gone/manifests/{gone}")).await;
    assert_eq!(r.status(), 202);

    let storage = reg.storage();
    let dry = pier_registry_server::gc::collect(&storage, true, std::time::Duration::ZERO).unwrap();
    let mut removed: Vec<String> = dry.removed.iter().map(|(d, _)| d.to_string()).collect();
    removed.sort();
    let mut expect = vec![
        gone.clone(),
        digest(b"{\"seed\":\"gone\"}"),
        digest(b"layer of gone"),
    ];
    expect.sort();
    assert_eq!(removed, expect);
    // A dry run removes nothing.
    let r = reg
        .get(&format!("/v2/gc/gone/blobs/{}", digest(b"layer of gone")))
        .await;
    assert_eq!(r.status(), 200);

    let real =
        pier_registry_server::gc::collect(&storage, false, std::time::Duration::ZERO).unwrap();
    assert_eq!(real.removed.len(), 3);
    let r = reg
        .get(&format!("/v2/gc/gone/blobs/{}", digest(b"layer of gone")))
        .await;
    assert_eq!(r.status(), 404);
    let r = reg.get(&format!("/v2/gc/keep/manifests/{keep}")).await;
    assert_eq!(r.status(), 200);
    for d in [digest(&shared), digest(b"layer of keep")] {
        let r = reg.get(&format!("/v2/gc/keep/blobs/{d}")).await;
        assert_eq!(r.status(), 200, "{d}");
    }
    let r = reg
        .get(&format!("/v2/gc/gone/blobs/{}", digest(&shared)))
        .await;
    assert_eq!(r.status(), 200);
    // A grace period spares young unreferenced blobs.
    push_blob(&reg, "gc/keep", b"fresh").await;
    let graced =
        pier_registry_server::gc::collect(&storage, false, std::time::Duration::from_secs(3600))
            .unwrap();
    assert_eq!((graced.removed.len(), graced.too_young), (0, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_keeps_what_an_index_lists() {
    let reg = TestRegistry::start();
    let child = push_image(&reg, "multi", "child", "child").await;
    let child_len = reg
        .get_bytes(&format!("/v2/multi/manifests/{child}"))
        .await
        .len();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": child_len}],
    }))
    .unwrap();
    put_manifest(&reg, "multi", "v1", &index, OCI_INDEX).await;
    // The child loses its own link; the index still lists it.
    let r = reg.delete(&format!("/v2/multi/manifests/{child}")).await;
    assert_eq!(r.status(), 202);
    let report =
        pier_registry_server::gc::collect(&reg.storage(), false, std::time::Duration::ZERO)
            .unwrap();
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert_eq!(report.kept, 4); // index, child, its config and layer
}
