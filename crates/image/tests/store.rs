//! Store behaviour end to end, on a temporary data root (run as root).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use pier_image::{Error, ImportOptions, Store};
use sha2::{Digest, Sha256};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    busybox_tar: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let busybox_tar = tmp.path().join("busybox.tar");
    pier_testutil::write_busybox_tar(&busybox_tar).unwrap();
    Env {
        root,
        busybox_tar,
        _tmp: tmp,
    }
}

fn opts(reference: Option<&str>, message: Option<&str>) -> ImportOptions {
    ImportOptions {
        reference: reference.map(str::to_owned),
        message: message.map(str::to_owned),
    }
}

/// A tiny one-file rootfs tar, distinct per `tag`.
fn tiny_tar(tag: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(tag.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello", tag.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[test]
fn import_busybox_then_list_and_resolve() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    let tar = fs::read(&env.busybox_tar).unwrap();
    let s = store
        .import(&tar[..], &opts(Some("busybox"), Some("first import")))
        .unwrap();
    assert!(s.id.starts_with("sha256:") && s.id.len() == 71, "{}", s.id);
    assert_eq!(s.repo_tags, ["busybox:latest"]);
    assert_eq!(s.size, tar.len() as u64);

    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, s.id);
    assert_eq!(list[0].repo_tags, ["busybox:latest"]);
    assert_eq!(list[0].size, tar.len() as u64);
    assert_eq!(list[0].created, s.created);

    let hex = &s.id[7..];
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "library/busybox",
        s.id.as_str(),
        hex,
        &hex[..12],
        &format!("sha256:{}", &hex[..8]),
    ] {
        let img = store
            .resolve(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.id, s.id, "{name}");
    }

    let img = store.resolve("busybox").unwrap();
    assert_eq!(img.repo_tags, ["busybox:latest"]);
    assert_eq!(img.layers.len(), 1);
    let layer = &img.layers[0];
    assert!(layer.starts_with(env.root.join("snapshots")));
    assert!(layer.join("bin/busybox").is_file());
    assert!(layer
        .join("bin/sh")
        .symlink_metadata()
        .unwrap()
        .is_symlink());
    assert!(fs::read_to_string(layer.join("etc/passwd"))
        .unwrap()
        .starts_with("root:x:0:0:"));

    // Config: the diff ID is the sha256 of the uncompressed tar; the image
    // ID the sha256 of the config blob.
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    assert_eq!(img.config.rootfs().diff_ids(), &vec![diff_id.clone()]);
    assert_eq!(layer.file_name().unwrap().to_str().unwrap(), &diff_id[7..]);
    assert_eq!(img.config.os(), &oci_spec::image::Os::Linux);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(img.config.architecture(), &oci_spec::image::Arch::Amd64);
    }
    let history = img.config.history().as_ref().unwrap();
    assert_eq!(history[0].comment().as_deref(), Some("first import"));
    assert!(img.config.created().as_ref().unwrap().ends_with('Z'));
    let config_blob = fs::read(env.root.join("content/blobs/sha256").join(hex)).unwrap();
    assert_eq!(sha256_hex(&config_blob), hex);
    let layer_blob = env.root.join("content/blobs/sha256").join(&diff_id[7..]);
    assert_eq!(fs::read(layer_blob).unwrap(), tar);

    // Reopening the store sees the same state.
    drop(store);
    let store = Store::open(&env.root).unwrap();
    assert_eq!(store.resolve("busybox").unwrap().id, s.id);
}

#[test]
fn unknown_names_are_not_found() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    store
        .import(&tiny_tar("x")[..], &opts(Some("x"), None))
        .unwrap();
    for name in [
        "nope",
        "nope:latest",
        "x:other",
        "sha256:ffff",
        "ffffffffffff",
    ] {
        match store.resolve(name) {
            Err(Error::ImageNotFound(n)) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(
        store.resolve("nope").unwrap_err().to_string(),
        "No such image: nope"
    );
    assert!(matches!(
        store.resolve("Bad Name"),
        Err(Error::InvalidReference(_))
    ));
}

#[test]
fn same_layer_twice_is_stored_once() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    let tar = fs::read(&env.busybox_tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();

    let a = store
        .import(&tar[..], &opts(Some("one"), Some("a")))
        .unwrap();
    let b = store
        .import(&gz[..], &opts(Some("two:v2"), Some("b")))
        .unwrap();
    assert_ne!(a.id, b.id);
    let (ia, ib) = (
        store.resolve("one").unwrap(),
        store.resolve("two:v2").unwrap(),
    );
    assert_eq!(ia.layers, ib.layers);
    assert_eq!(ia.config.rootfs().diff_ids(), ib.config.rootfs().diff_ids());

    assert_eq!(entries(&env.root.join("snapshots")).len(), 1);
    // 1 layer + 2 configs + 2 manifests.
    assert_eq!(entries(&env.root.join("content/blobs/sha256")).len(), 5);
    assert!(entries(&env.root.join("content/ingest")).is_empty());
    let mut tags: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .flat_map(|s| s.repo_tags)
        .collect();
    tags.sort();
    assert_eq!(tags, ["one:latest", "two:v2"]);
}

#[test]
fn corrupt_input_leaves_nothing_visible() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    let tar = fs::read(&env.busybox_tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let mut flipped = tar.clone();
    flipped[512 * 3 + 100] ^= 0xff; // inside some header or data

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated gzip", gz[..gz.len() / 2].to_vec()),
        ("truncated tar", tar[..tar.len() / 2 + 100].to_vec()),
        ("garbage", vec![0x42; 10_000]),
        ("empty", Vec::new()),
    ];
    for (what, data) in cases {
        let r = store.import(&data[..], &opts(Some("broken"), None));
        match r {
            Err(Error::InvalidLayer(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(store.list().unwrap().is_empty(), "{what}");
        assert!(entries(&env.root.join("snapshots")).is_empty(), "{what}");
        assert!(
            entries(&env.root.join("content/blobs/sha256")).is_empty(),
            "{what}"
        );
        assert!(
            entries(&env.root.join("content/ingest")).is_empty(),
            "{what}"
        );
        assert!(matches!(
            store.resolve("broken"),
            Err(Error::ImageNotFound(_))
        ));
    }
    // A flipped byte either breaks a header checksum (error, nothing kept) or
    // changes file content (a different but complete image): never partial.
    if store
        .import(&flipped[..], &opts(Some("flipped"), None))
        .is_err()
    {
        assert!(store.list().unwrap().is_empty());
        assert!(entries(&env.root.join("snapshots")).is_empty());
    }
}

#[test]
fn bad_references_are_refused_before_reading() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    let digest_ref = format!("x@sha256:{}", "0".repeat(64));
    for r in ["Upper", "a b", digest_ref.as_str()] {
        let e = store
            .import(&tiny_tar("x")[..], &opts(Some(r), None))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidReference(_)), "{r}: {e}");
        assert!(e.to_string().starts_with("invalid reference format"), "{e}");
    }
    assert!(store.list().unwrap().is_empty());
    assert!(entries(&env.root.join("snapshots")).is_empty());
}

#[test]
fn retagging_untags_the_older_image() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    let old = store
        .import(&tiny_tar("old")[..], &opts(Some("app:1"), None))
        .unwrap();
    let new = store
        .import(&tiny_tar("new")[..], &opts(Some("app:1"), None))
        .unwrap();
    assert_eq!(store.resolve("app:1").unwrap().id, new.id);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, new.id, "newest first");
    assert_eq!(list[0].repo_tags, ["app:1"]);
    assert_eq!(list[1].id, old.id);
    assert!(list[1].repo_tags.is_empty(), "old image is <none>:<none>");
    let old_img = store.resolve(&old.id).unwrap();
    assert!(old_img.repo_tags.is_empty());
    assert_eq!(fs::read(old_img.layers[0].join("hello")).unwrap(), b"old");

    // tag / untag / remove.
    store.tag(&old.id, "app:old").unwrap();
    assert_eq!(store.resolve("app:old").unwrap().id, old.id);
    store.untag("app:old").unwrap();
    assert!(matches!(
        store.resolve("app:old"),
        Err(Error::ImageNotFound(_))
    ));
    assert!(matches!(
        store.untag("app:old"),
        Err(Error::ImageNotFound(_))
    ));
    store.remove("app:1").unwrap();
    assert!(matches!(
        store.resolve("app:1"),
        Err(Error::ImageNotFound(_))
    ));
    assert!(matches!(
        store.resolve(&new.id),
        Err(Error::ImageNotFound(_))
    ));
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn short_ids_must_be_unique() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    // 17 images: two share a first hex digit (pigeonhole).
    let ids: Vec<String> = (0..17)
        .map(|i| {
            store
                .import(&tiny_tar(&i.to_string())[..], &opts(None, None))
                .unwrap()
                .id
        })
        .collect();
    assert!(store.list().unwrap().iter().all(|s| s.repo_tags.is_empty()));
    let firsts: Vec<char> = ids.iter().map(|id| id.as_bytes()[7] as char).collect();
    let shared = firsts
        .iter()
        .find(|c| firsts.iter().filter(|d| d == c).count() > 1)
        .unwrap();
    match store.resolve(&shared.to_string()) {
        Err(Error::AmbiguousId(p)) => assert_eq!(p, shared.to_string()),
        other => panic!("{other:?}"),
    }
    for id in &ids {
        assert_eq!(&store.resolve(&id[7..19]).unwrap().id, id);
    }
}

#[test]
fn zstd_import_matches_plain() {
    let env = env();
    let store = Store::open(&env.root).unwrap();
    let tar = tiny_tar("z");
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let s = store.import(&zst[..], &opts(Some("z"), None)).unwrap();
    let img = store.resolve("z").unwrap();
    assert_eq!(s.size, tar.len() as u64);
    assert_eq!(
        img.config.rootfs().diff_ids()[0],
        format!("sha256:{}", sha256_hex(&tar))
    );
    assert_eq!(fs::read(img.layers[0].join("hello")).unwrap(), b"z");
}
