//! Unit tests of the store (names, metadata, create/get/list/remove).
//! Mount and copy-up tests are in tests_mount.rs and tests_copy.rs.

use crate::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

pub(crate) fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("volumes")).unwrap();
    (dir, s)
}

#[test]
fn names_as_docker() {
    for ok in [
        "ab",
        "a1",
        "A-b_c.d",
        "0.",
        "my_volume-1.2",
        &"f".repeat(64),
    ] {
        validate_name(ok).unwrap_or_else(|e| panic!("{ok:?} refused: {e}"));
    }
    // Messages as docker's (`docker volume create 'a/b'`).
    assert_eq!(
        validate_name("a/b").unwrap_err().to_string(),
        "create a/b: \"a/b\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    );
    assert_eq!(
        validate_name("a").unwrap_err().to_string(),
        "create a: volume name is too short, names should be at least two alphanumeric characters"
    );
    // As docker: any single byte is "too short", even an invalid one.
    for short in ["_", "/", "."] {
        assert!(
            validate_name(short).unwrap_err().to_string().ends_with(
                "volume name is too short, names should be at least two alphanumeric characters"
            ),
            "{short:?}"
        );
    }
    for bad in [
        "", "_ab", ".ab", "-ab", "..", ".", "a b", "a/", "/abs", "ab\n", "é1", "a:b", "a\0b",
        "../x",
    ] {
        match validate_name(bad) {
            Err(Error::InvalidName(_)) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn create_get_list_remove() {
    let (_d, s) = store();
    let (v, created) = s
        .create(Some("data1"), None, map(&[]), map(&[("a", "b")]))
        .unwrap();
    assert!(created);
    assert_eq!(v.name, "data1");
    assert_eq!(v.driver, "local");
    assert_eq!(v.labels, map(&[("a", "b")]));
    assert!(!v.anonymous());
    assert_eq!(v.mountpoint, s.root.join("data1/_data"));
    assert!(pier_common::time::parse_rfc3339(&v.created_at).is_some());
    let meta = std::fs::metadata(&v.mountpoint).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert!(s.root.join("data1/volume.json").is_file());
    assert_eq!(s.get("data1").unwrap(), v);

    s.create(Some("abc"), Some("local"), map(&[]), map(&[]))
        .unwrap();
    let names: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["abc", "data1"]);

    // Data survives a re-open of the store.
    std::fs::write(v.mountpoint.join("f"), "x").unwrap();
    let s2 = Store::open(&s.root).unwrap();
    assert_eq!(s2.get("data1").unwrap(), v);

    s.remove("data1").unwrap();
    assert!(!s.root.join("data1").exists());
    match s.get("data1") {
        Err(Error::NotFound(n)) => assert_eq!(n, "data1"),
        other => panic!("{other:?}"),
    }
    // As docker (`docker volume rm nosuch`).
    assert_eq!(
        s.remove("data1").unwrap_err().to_string(),
        "get data1: no such volume"
    );
    let names: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["abc"]);
    // No work directories left behind.
    let left: Vec<_> = std::fs::read_dir(&s.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["abc"]);
}

#[test]
fn existing_name_returns_it_unchanged() {
    let (_d, s) = store();
    let (v, created) = s
        .create(Some("vol1"), None, map(&[]), map(&[("k", "1")]))
        .unwrap();
    assert!(created);
    std::fs::write(v.mountpoint.join("keep"), "data").unwrap();
    // As docker: other labels/options on a second create are ignored.
    let (again, created) = s
        .create(
            Some("vol1"),
            Some("local"),
            map(&[("type", "tmpfs"), ("device", "tmpfs")]),
            map(&[("k", "2")]),
        )
        .unwrap();
    assert!(!created);
    assert_eq!(again, v);
    assert_eq!(
        std::fs::read_to_string(v.mountpoint.join("keep")).unwrap(),
        "data"
    );
}

#[test]
fn anonymous_volumes() {
    let (_d, s) = store();
    let (a, created) = s.create(None, None, map(&[]), map(&[("x", "y")])).unwrap();
    assert!(created);
    assert!(a.anonymous());
    assert_eq!(a.labels.get(ANONYMOUS_LABEL).map(String::as_str), Some(""));
    assert_eq!(a.labels.get("x").map(String::as_str), Some("y"));
    assert_eq!(a.name.len(), 64);
    assert!(a
        .name
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    let (b, _) = s.create(None, None, map(&[]), map(&[])).unwrap();
    assert_ne!(a.name, b.name);
    assert_eq!(s.list().unwrap().len(), 2);
    assert!(s.get(&a.name).unwrap().anonymous());
}

#[test]
fn bad_driver_name_and_options() {
    let (_d, s) = store();
    let e = s
        .create(Some("x1"), Some("nosuch"), map(&[]), map(&[]))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOptions(_)), "{e:?}");
    assert!(
        e.to_string().starts_with(
            "create x1: error looking up volume plugin nosuch: plugin \"nosuch\" not found"
        ),
        "{e}"
    );
    let e = s.create(Some("x/1"), None, map(&[]), map(&[])).unwrap_err();
    assert!(matches!(e, Error::InvalidName(_)), "{e:?}");
    let e = s
        .create(Some("x1"), None, map(&[("foo", "bar")]), map(&[]))
        .unwrap_err();
    assert_eq!(e.to_string(), "create x1: invalid option: \"foo\"");
    let e = s
        .create(Some("x1"), None, map(&[("type", "tmpfs")]), map(&[]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "create x1: missing required option: \"device\""
    );
    // Nothing was created by the refused calls.
    assert!(s.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&s.root).unwrap().count(), 0);
    // Invalid names are never looked up on disk.
    assert!(matches!(s.get("../volumes"), Err(Error::NotFound(_))));
    assert!(matches!(s.remove(".."), Err(Error::NotFound(_))));
}

#[test]
fn half_created_and_malformed_entries() {
    let (_d, s) = store();
    s.create(Some("good"), None, map(&[]), map(&[])).unwrap();
    // A crash between mkdir and metadata: a directory without volume.json.
    std::fs::create_dir_all(s.root.join("half/_data")).unwrap();
    // A crash in the middle of create, in the store's work directory.
    std::fs::create_dir_all(s.root.join(".creating-0123/_data")).unwrap();
    // Malformed and mismatched metadata.
    std::fs::create_dir_all(s.root.join("broken/_data")).unwrap();
    std::fs::write(s.root.join("broken/volume.json"), "{not json").unwrap();
    std::fs::create_dir_all(s.root.join("other/_data")).unwrap();
    let g = s.get("good").unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.root.join("good/volume.json")).unwrap()).unwrap();
    json["name"] = "good".into();
    std::fs::write(s.root.join("other/volume.json"), json.to_string()).unwrap();
    std::fs::write(s.root.join("stray-file"), "").unwrap();

    let names: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["good"]);
    assert!(matches!(s.get("half"), Err(Error::NotFound(_))));
    match s.get("broken") {
        Err(Error::Io { what, source }) => {
            assert!(what.contains("broken/volume.json"), "{what}");
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.get("other"), Err(Error::Io { .. })));
    // Broken metadata does not make a volume unremovable.
    s.remove("broken").unwrap();
    assert!(!s.root.join("broken").exists());
    assert!(matches!(s.get("stray-file"), Err(Error::NotFound(_))));

    // Creating over a directory without metadata adopts it, data kept.
    std::fs::write(s.root.join("half/_data/f"), "kept").unwrap();
    let (h, created) = s.create(Some("half"), None, map(&[]), map(&[])).unwrap();
    assert!(created);
    assert_eq!(
        std::fs::read_to_string(h.mountpoint.join("f")).unwrap(),
        "kept"
    );
    assert_eq!(s.get("half").unwrap(), h);
    assert_eq!(g.name, "good");
}

#[test]
fn leftover_removals_are_finished_on_open() {
    let (_d, s) = store();
    std::fs::create_dir_all(s.root.join(".removing-00ff/_data/sub")).unwrap();
    std::fs::write(s.root.join(".removing-00ff/_data/sub/f"), "").unwrap();
    // A fresh `.creating-` may belong to a create in progress: kept.
    std::fs::create_dir_all(s.root.join(".creating-00ff/_data")).unwrap();
    let s = Store::open(&s.root).unwrap();
    assert!(!s.root.join(".removing-00ff").exists());
    assert!(s.root.join(".creating-00ff").exists());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn remove_does_not_follow_symlinks() {
    let (d, s) = store();
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious"), "x").unwrap();
    let (v, _) = s.create(Some("links"), None, map(&[]), map(&[])).unwrap();
    std::os::unix::fs::symlink(&outside, v.mountpoint.join("link")).unwrap();
    std::fs::create_dir(v.mountpoint.join("ro")).unwrap();
    std::fs::write(v.mountpoint.join("ro/f"), "x").unwrap();
    std::fs::set_permissions(
        v.mountpoint.join("ro"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    s.remove("links").unwrap();
    assert!(outside.join("precious").exists());
    assert!(!s.root.join("links").exists());
}

#[test]
fn racing_creates_make_one_volume() {
    let (_d, s) = store();
    for round in 0..10 {
        let name = format!("race{round}");
        let start = std::sync::Barrier::new(6);
        let created: Vec<bool> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let (s, start, name) = (&s, &start, &name);
                    sc.spawn(move || {
                        start.wait();
                        let label = i.to_string();
                        s.create(Some(name), None, map(&[]), map(&[("who", &label)]))
                            .unwrap()
                    })
                })
                .collect();
            let all: Vec<(Volume, bool)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            // Everyone got the one volume that was made.
            let stored = s.get(&name).unwrap();
            assert!(all.iter().all(|(v, _)| *v == stored), "{all:?}");
            all.into_iter().map(|(_, c)| c).collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    }
    assert_eq!(s.list().unwrap().len(), 10);
    // No work directories left behind.
    assert!(std::fs::read_dir(&s.root).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
}
