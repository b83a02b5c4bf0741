//! save/load, multi-layer images, garbage collection, diff and commit, on a
//! temporary data root (run as root). Every hostile input aims only at
//! paths inside the test's own temporary directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use pier_image::{CommitOptions, Deleted, Store};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A layer tar with `files` (path, content); names are written raw, so
/// hostile ones (`..`) can be made.
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, c.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05.123Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| serde_json::json!({"created_by": "x"})).collect::<Vec<_>>()
    }))
    .unwrap()
}

/// An old-style docker archive: `<n>/layer.tar`, `<cfg>.json`, manifest.json.
/// `layers` are stored as given (maybe gzipped); `diff` are their plain forms.
fn docker_archive(layers: &[Vec<u8>], plain: &[Vec<u8>], tags: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = plain.iter().map(|l| sha(l)).collect();
    let cfg = config(&diff_ids);
    let cfg_name = format!("{}.json", &sha(&cfg)[7..]);
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        add(&mut b, &p, l);
        paths.push(p);
    }
    add(&mut b, &cfg_name, &cfg);
    let m = serde_json::json!([{"Config": cfg_name, "RepoTags": tags, "Layers": paths}]);
    add(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    b.into_inner().unwrap()
}

fn three_layers() -> Vec<Vec<u8>> {
    vec![
        layer(&[("etc/base", "base"), ("bin/tool", "v1")]),
        layer(&[("bin/tool", "v2"), ("srv/data", "data")]),
        layer(&[("srv/.wh.data", ""), ("srv/new", "new")]),
    ]
}

fn tmpstore() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(&tmp.path().join("data")).unwrap();
    (tmp, s)
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn multi_layer_docker_archive_loads_saves_and_loads_again() {
    let (_t, s) = tmpstore();
    let plain = three_layers();
    let stored = vec![plain[0].clone(), gzip(&plain[1]), plain[2].clone()];
    let loaded = s
        .load(&docker_archive(&stored, &plain, &["app:v1"])[..])
        .unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, ["app:v1"]);
    let img = s.resolve("app:v1").unwrap();
    assert_eq!(img.layers.len(), 3);
    assert_eq!(
        fs::read_to_string(img.layers[1].join("bin/tool")).unwrap(),
        "v2"
    );
    // The whiteout is in overlayfs form.
    let wh = fs::symlink_metadata(img.layers[2].join("srv/data")).unwrap();
    assert_eq!(wh.rdev(), 0);
    let info = s.inspect("app:v1").unwrap();
    assert_eq!(
        info.manifest_media_type,
        pier_image::manifest::DOCKER_MANIFEST
    );
    assert_eq!(info.config["config"]["Labels"]["a"], "b");

    // Save, then load into a fresh store: same ID, same manifest digest.
    let mut out = Vec::new();
    s.save(&["app:v1".to_owned()], &mut out).unwrap();
    let (_t2, s2) = tmpstore();
    let again = s2.load(&out[..]).unwrap();
    assert_eq!(again[0].id, img.id);
    assert_eq!(again[0].tags, ["app:v1"]);
    assert_eq!(s2.inspect("app").err().map(|_| ()), Some(()));
    assert_eq!(
        s2.inspect("app:v1").unwrap().manifest_digest,
        info.manifest_digest
    );
    // The saved tar is an OCI layout too.
    let mut names = Vec::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    for want in ["index.json", "oci-layout", "manifest.json", "repositories"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

#[test]
fn oci_layout_with_an_index_loads() {
    let (_t, s) = tmpstore();
    let plain = three_layers();
    let diff_ids: Vec<String> = plain.iter().map(|l| sha(l)).collect();
    let blobs: Vec<Vec<u8>> = plain.iter().map(|l| gzip(l)).collect();
    let cfg = config(&diff_ids);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len()},
        "layers": blobs.iter().map(|b| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(b), "size": b.len()})).collect::<Vec<_>>()
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest),
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "example.com/x/y:2"}}]
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: String, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json".into(), &index);
    for blob in blobs.iter().chain([&cfg, &manifest]) {
        add(format!("blobs/sha256/{}", &sha(blob)[7..]), blob);
    }
    let tar = b.into_inner().unwrap();
    let loaded = s.load(&tar[..]).unwrap();
    assert_eq!(loaded[0].tags, ["example.com/x/y:2"]);
    let info = s.inspect("example.com/x/y:2").unwrap();
    assert_eq!(
        info.manifest_digest,
        sha(&manifest),
        "the manifest is kept byte for byte"
    );
    assert_eq!(info.layers.len(), 3);
}

fn load_err(s: &Store, tar: &[u8]) -> String {
    let e = s.load(tar).unwrap_err().to_string();
    // Nothing visible: no image, no snapshot, no temp left.
    assert!(s.list().unwrap().is_empty(), "{e}");
    e
}

#[test]
fn hostile_archives_are_refused_and_leave_no_image() {
    let (t, s) = tmpstore();
    let plain = three_layers();
    // manifest.json pointing outside the archive (at a file beside the store).
    fs::write(t.path().join("outside.tar"), &plain[0]).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let m = br#"[{"Config":"../outside.json","RepoTags":["x:1"],"Layers":["../outside.tar"]}]"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(m.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &m[..]).unwrap();
    let e = load_err(&s, &b.into_inner().unwrap());
    assert!(e.contains("not in the archive"), "{e}");

    // A layer that does not match the config's diff ID.
    let mut wrong = plain.clone();
    wrong[1] = layer(&[("evil", "x")]);
    let tar = docker_archive(&wrong, &plain, &["x:1"]);
    let e = load_err(&s, &tar);
    assert!(e.contains("diff ID"), "{e}");

    // A blob whose name is not its digest.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(
        &mut h,
        format!("blobs/sha256/{}", "a".repeat(64)),
        &b"abc"[..],
    )
    .unwrap();
    let e = load_err(&s, &b.into_inner().unwrap());
    assert!(e.contains("digest mismatch"), "{e}");

    // Corrupt gzip layer.
    let mut gz = gzip(&plain[0]);
    let n = gz.len();
    gz[n / 2] ^= 0xff;
    gz.truncate(n - 4);
    let e = load_err(&s, &docker_archive(&[gz], &plain[..1], &["x:1"]));
    assert!(!e.is_empty());

    // Config not JSON; manifest.json not JSON; neither index nor manifest.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("c.json", &b"{nope"[..]),
        (
            "manifest.json",
            &br#"[{"Config":"c.json","Layers":[]}]"#[..],
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let e = load_err(&s, &b.into_inner().unwrap());
    assert!(e.contains("not a valid image config"), "{e}");
    let e = load_err(&s, &layer(&[("hello", "x")]));
    assert!(e.contains("neither manifest.json nor index.json"), "{e}");

    // A layer entry escaping through `..` stays inside its snapshot.
    let evil = layer(&[("../../../escaped", "x")]);
    let loaded = s
        .load(
            &docker_archive(
                std::slice::from_ref(&evil),
                std::slice::from_ref(&evil),
                &["esc:1"],
            )[..],
        )
        .unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(!t.path().join("escaped").exists());
    assert!(!t.path().join("data/escaped").exists());
    assert!(s.resolve("esc:1").unwrap().layers[0]
        .join("escaped")
        .exists());
    assert_eq!(count(&t.path().join("data/content/ingest")), 0);
    let snaps: Vec<String> = fs::read_dir(t.path().join("data/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(snaps.iter().all(|n| !n.starts_with("tmp-")), "{snaps:?}");
}

#[test]
fn schema1_and_huge_manifests_are_refused() {
    let (_t, s) = tmpstore();
    let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}"#;
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion":2,"manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":sha(schema1),"size":schema1.len()}]}))
    .unwrap();
    let huge = vec![b' '; 5 << 20];
    for (i, extra) in [&schema1[..], &huge[..]].into_iter().enumerate() {
        let idx = if i == 0 {
            index.clone()
        } else {
            serde_json::to_vec(&serde_json::json!({"schemaVersion":2,"manifests":[
                {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":sha(extra),"size":extra.len()}]}))
            .unwrap()
        };
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            (format!("blobs/sha256/{}", &sha(extra)[7..]), extra),
            ("index.json".to_owned(), &idx[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        let e = load_err(&s, &b.into_inner().unwrap());
        assert!(e.contains(if i == 0 { "schema 1" } else { "limit" }), "{e}");
    }
}

#[test]
fn shared_base_layer_is_stored_and_unpacked_once_and_gc_frees_the_rest() {
    let (t, s) = tmpstore();
    let base = layer(&[("big", &"x".repeat(1 << 20))]);
    let a = vec![base.clone(), layer(&[("a", "a")])];
    let b = vec![base.clone(), layer(&[("b", "b")])];
    s.load(&docker_archive(&a, &a, &["a:1"])[..]).unwrap();
    let snaps = t.path().join("data/snapshots");
    let du1 = pier_image::du(&snaps);
    s.load(&docker_archive(&b, &b, &["b:1"])[..]).unwrap();
    let du2 = pier_image::du(&snaps);
    assert_eq!(count(&snaps), 3, "base + two tops");
    assert!(
        du2 - du1 < 200 << 10,
        "second image added {} bytes",
        du2 - du1
    );
    let ia = s.resolve("a:1").unwrap();
    let ib = s.resolve("b:1").unwrap();
    assert_eq!(ia.layers[0], ib.layers[0]);

    let none = |_: &str| None;
    let d = s.delete("a:1", false, &none).unwrap();
    assert_eq!(
        d,
        [
            Deleted::Untagged("a:1".into()),
            Deleted::Deleted(ia.id.clone())
        ]
    );
    assert_eq!(count(&snaps), 2);
    assert!(ib.layers[0].is_dir());
    // In use: refused unless forced; forced only untags.
    let used = |id: &str| (id == ib.id).then(|| ("c0ffee".repeat(10), false));
    let e = s.delete("b:1", false, &used).unwrap_err().to_string();
    assert!(e.contains("must force"), "{e}");
    let e = s.delete(&ib.id, false, &used).unwrap_err().to_string();
    assert!(e.contains("stopped container"), "{e}");
    assert_eq!(
        s.delete("b:1", true, &used).unwrap(),
        [Deleted::Untagged("b:1".into())]
    );
    assert!(s.resolve(&ib.id).is_ok());
    // Prune: dangling but used stays; unused goes with its layers.
    let (gone, _) = s.prune(false, &|id| id == ib.id, &|_| false).unwrap();
    assert!(gone.is_empty());
    let (gone, freed) = s.prune(false, &|_| false, &|_| false).unwrap();
    assert_eq!(gone, [Deleted::Deleted(ib.id.clone())]);
    assert!(freed > 1 << 20);
    assert_eq!(count(&snaps), 0);
    assert_eq!(count(&t.path().join("data/content/blobs/sha256")), 0);
}

#[test]
fn open_cleans_what_a_crash_left() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    drop(Store::open(&root).unwrap());
    fs::write(root.join("content/ingest/deadbeef"), b"half").unwrap();
    fs::create_dir_all(root.join("snapshots/tmp-1234/usr")).unwrap();
    let _s = Store::open(&root).unwrap();
    assert_eq!(count(&root.join("content/ingest")), 0);
    assert!(!root.join("snapshots/tmp-1234").exists());
}

fn mknod_whiteout(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(
        unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) },
        0
    );
}

#[test]
fn commit_turns_an_upper_dir_into_a_layer_with_whiteouts() {
    let (t, s) = tmpstore();
    let plain = three_layers();
    let loaded = s
        .load(&docker_archive(&plain, &plain, &["app:v1"])[..])
        .unwrap();
    let upper: PathBuf = t.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::create_dir_all(upper.join("srv")).unwrap();
    fs::write(upper.join("etc/added"), "hi").unwrap();
    fs::hard_link(upper.join("etc/added"), upper.join("etc/link")).unwrap();
    mknod_whiteout(&upper.join("etc/base"));
    rustix::fs::setxattr(
        upper.join("srv"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();

    let changes = pier_image::changes(&upper, &s.resolve("app:v1").unwrap().layers).unwrap();
    let got: Vec<(String, u8)> = changes
        .iter()
        .map(|c| (c.path.clone(), c.kind.code()))
        .collect();
    assert!(got.contains(&("/etc/added".into(), 1)), "{got:?}");
    assert!(got.contains(&("/etc/base".into(), 2)), "{got:?}");
    assert!(got.contains(&("/etc".into(), 0)), "{got:?}");

    let mut tarb = Vec::new();
    pier_image::write_tar(&upper, &mut tarb, true).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&tarb[..]).entries().unwrap() {
        let e = e.unwrap();
        names.push((
            e.path().unwrap().to_string_lossy().into_owned(),
            e.header().entry_type(),
        ));
    }
    assert!(
        names.contains(&("etc/.wh.base".into(), tar::EntryType::Regular)),
        "{names:?}"
    );
    assert!(
        names.contains(&("srv/.wh..wh..opq".into(), tar::EntryType::Regular)),
        "{names:?}"
    );
    assert!(
        names.contains(&("etc/link".into(), tar::EntryType::Link)),
        "{names:?}"
    );

    let img = s
        .commit(
            &loaded[0].id,
            &upper,
            &CommitOptions {
                reference: Some("app:v2".into()),
                comment: Some("c".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let r = s.resolve("app:v2").unwrap();
    assert_eq!(r.id, img.id);
    assert_eq!(r.layers.len(), 4);
    let top = &r.layers[3];
    assert_eq!(fs::read_to_string(top.join("etc/added")).unwrap(), "hi");
    assert_eq!(
        fs::symlink_metadata(top.join("etc/base")).unwrap().rdev(),
        0
    );
    let mut v = [0u8; 4];
    let n = rustix::fs::getxattr(top.join("srv"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    let info = s.inspect("app:v2").unwrap();
    assert_eq!(info.config["history"].as_array().unwrap().len(), 4);
}

#[test]
fn a_manifest_list_is_kept_and_saved_back_with_its_media_type() {
    let (_t, s) = tmpstore();
    let host = pier_image::manifest::DOCKER_MANIFEST;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut manifests = Vec::new();
    for (arch, file) in [("amd64", "host"), ("arm64", "other")] {
        let l = layer(&[(file, arch)]);
        let cfg = serde_json::to_vec(&serde_json::json!({
            "architecture": if arch == "amd64" { pier_image_arch() } else { arch.to_string() },
            "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(&l)]}
        }))
        .unwrap();
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": host,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha(&cfg), "size": cfg.len()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "digest": sha(&l), "size": l.len()}]
        }))
        .unwrap();
        manifests.push(serde_json::json!({"mediaType": host, "digest": sha(&m), "size": m.len(),
            "platform": {"architecture": if arch == "amd64" { pier_image_arch() } else { arch.to_string() }, "os": "linux"}}));
        blobs.extend([l, cfg, m]);
    }
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": pier_image::manifest::DOCKER_MANIFEST_LIST, "manifests": manifests
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": pier_image::manifest::DOCKER_MANIFEST_LIST, "digest": sha(&list), "size": list.len(),
         "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"}}]}))
    .unwrap();
    blobs.push(list.clone());
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: String, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("index.json".into(), &index);
    for blob in &blobs {
        add(format!("blobs/sha256/{}", &sha(blob)[7..]), blob);
    }
    let loaded = s.load(&b.into_inner().unwrap()[..]).unwrap();
    assert_eq!(loaded[0].tags, ["multi:1"]);
    let img = s.resolve("multi:1").unwrap();
    assert!(img.layers[0].join("host").exists());
    s.gc().unwrap(); // the other platform's blobs are kept with the list

    let mut out = Vec::new();
    s.save(&["multi:1".to_owned()], &mut out).unwrap();
    let mut names = Vec::new();
    let mut saved_index = Vec::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().into_owned();
        if n == "index.json" {
            std::io::Read::read_to_end(&mut e, &mut saved_index).unwrap();
        }
        names.push(n);
    }
    for blob in &blobs {
        assert!(
            names.contains(&format!("blobs/sha256/{}", &sha(blob)[7..])),
            "{names:?}"
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&saved_index).unwrap();
    assert_eq!(
        v["manifests"][0]["mediaType"],
        pier_image::manifest::DOCKER_MANIFEST_LIST
    );
    assert_eq!(v["manifests"][0]["digest"], sha(&list));
    let (_t2, s2) = tmpstore();
    assert_eq!(s2.load(&out[..]).unwrap()[0].id, img.id);
}

fn pier_image_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}
