//! Overlay mounts of unpacked layers (run as root).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use pier_image::{extract, mount};

/// Unmounts on drop so a failing assertion does not leak a mount.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        mount::unmount(&self.0).unwrap();
    }
}

fn layer_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn three_layers_with_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s);
    let layers = [
        layer_tar(&[
            ("a", b"0"),
            ("b", b"0"),
            ("d/", b""),
            ("d/x", b"0"),
            ("keep/", b""),
            ("keep/k", b"0"),
        ]),
        layer_tar(&[("a", b"1"), ("c", b"1")]),
        layer_tar(&[
            (".wh.b", b""),
            ("d/", b""),
            ("d/.wh..wh..opq", b""),
            ("d/y", b"2"),
        ]),
    ];
    let mut lowers = Vec::new();
    for (i, t) in layers.iter().enumerate() {
        let dir = p(&format!("l{i}"));
        fs::create_dir(&dir).unwrap();
        extract::unpack_layer(&t[..], &dir).unwrap();
        lowers.push(dir);
    }
    assert!(p("l2/b")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_char_device());
    for d in ["upper", "work", "merged"] {
        fs::create_dir(p(d)).unwrap();
    }
    mount::mount_overlay(&lowers, &p("upper"), &p("work"), &p("merged")).unwrap();
    let m = Mounted(p("merged"));
    assert_eq!(names(&m.0), ["a", "c", "d", "keep"]);
    assert_eq!(fs::read(m.0.join("a")).unwrap(), b"1");
    assert_eq!(
        names(&m.0.join("d")),
        ["y"],
        "opaque dir hides lower content"
    );
    assert_eq!(names(&m.0.join("keep")), ["k"]);
    // Writes go to the upper dir; lowers stay untouched.
    fs::write(m.0.join("new"), b"n").unwrap();
    fs::remove_file(m.0.join("c")).unwrap();
    assert_eq!(fs::read(p("upper/new")).unwrap(), b"n");
    assert!(p("l1/c").exists());
    let st = fs::metadata(&m.0).unwrap();
    assert_eq!(st.mode() & 0o170000, 0o040000);
    drop(m);
    assert!(names(&p("merged")).is_empty(), "unmounted");
    mount::unmount(&p("merged")).unwrap(); // not mounted: fine
}

#[test]
fn read_only_overlay_of_one_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("l");
    let m = tmp.path().join("m");
    fs::create_dir(&l).unwrap();
    fs::create_dir(&m).unwrap();
    fs::write(l.join("f"), b"x").unwrap();
    mount::mount_overlay(std::slice::from_ref(&l), Path::new(""), Path::new(""), &m).unwrap();
    let g = Mounted(m.clone());
    assert_eq!(fs::read(g.0.join("f")).unwrap(), b"x");
    let e = fs::write(g.0.join("g"), b"y").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
}

#[test]
fn one_hundred_twenty_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp
        .path()
        .join("layers-under-a-deliberately-long-directory-name-to-overflow-a-page");
    let mut lowers = Vec::new();
    for i in 0..120 {
        let dir = base.join(format!("{i:03}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i:03}")), b"").unwrap();
        fs::write(dir.join("top"), format!("{i}")).unwrap();
        lowers.push(dir);
    }
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(
        total > 4096,
        "the old mount(2) data would hold this: {total}"
    );
    let (upper, work, merged) = (
        tmp.path().join("u"),
        tmp.path().join("w"),
        tmp.path().join("m"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    mount::mount_overlay(&lowers, &upper, &work, &merged).unwrap();
    let g = Mounted(merged.clone());
    assert_eq!(names(&g.0).len(), 121);
    assert_eq!(
        fs::read_to_string(g.0.join("top")).unwrap(),
        "119",
        "last layer is on top"
    );
    assert!(g.0.join("f000").exists() && g.0.join("f119").exists());
}

#[test]
fn imported_busybox_mounts() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("bb.tar");
    pier_testutil::write_busybox_tar(&tar).unwrap();
    let store = pier_image::Store::open(&tmp.path().join("data")).unwrap();
    store
        .import(
            fs::File::open(&tar).unwrap(),
            &pier_image::ImportOptions::default(),
        )
        .unwrap();
    let id = store.list().unwrap()[0].id.clone();
    let img = store.resolve(&id).unwrap();
    let (u, w, m) = (
        tmp.path().join("u"),
        tmp.path().join("w"),
        tmp.path().join("m"),
    );
    for d in [&u, &w, &m] {
        fs::create_dir(d).unwrap();
    }
    mount::mount_overlay(&img.layers, &u, &w, &m).unwrap();
    let g = Mounted(m.clone());
    let out = std::process::Command::new("chroot")
        .arg(&g.0)
        .args([
            "/bin/sh",
            "-c",
            "echo hi > /tmp/x && cat /tmp/x /etc/passwd | head -2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hi\nroot:x:0:0"));
    assert!(u.join("tmp/x").exists());
}
