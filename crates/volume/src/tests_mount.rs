//! Options volumes: tmpfs and bind mounts on `_data` (root only; every
//! mount is undone by a guard even when an assertion fails).

use crate::fsutil::is_mount_point;
use crate::tests::{map, store};
use crate::*;
use rustix::mount::UnmountFlags;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Unmounts everything still mounted on its paths when dropped.
struct MountGuard(Vec<PathBuf>);

impl Drop for MountGuard {
    fn drop(&mut self) {
        for p in &self.0 {
            for _ in 0..8 {
                if !is_mount_point(p).unwrap_or(false) {
                    break;
                }
                let _ = rustix::mount::unmount(p, UnmountFlags::DETACH);
            }
        }
    }
}

/// How many mounts /proc/self/mountinfo lists on `path`.
fn mounts_on(path: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
        .count()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn tmpfs_volume_mount_unmount_idempotent() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (_d, s) = store();
    let (v, _) = s
        .create(
            Some("scratch"),
            None,
            map(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m,uid=1000,nosuid"),
            ]),
            map(&[]),
        )
        .unwrap();
    let _g = MountGuard(vec![v.mountpoint.clone()]);
    assert!(!is_mount_point(&v.mountpoint).unwrap());
    let p = s.mount(&v).unwrap();
    assert_eq!(p, v.mountpoint);
    assert!(is_mount_point(&p).unwrap());
    assert_eq!(std::fs::metadata(&p).unwrap().uid(), 1000);
    let fs = rustix::fs::statfs(&p).unwrap();
    assert_eq!(fs.f_type as i64, libc::TMPFS_MAGIC);
    // The data string reached tmpfs and the flag became a mount flag.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
        .unwrap();
    assert!(line.contains("nosuid"), "{line}");
    assert!(line.contains("size=1024k"), "{line}");
    std::fs::write(p.join("f"), "in tmpfs").unwrap();
    // Mounting again mounts nothing more and keeps the data.
    s.mount(&v).unwrap();
    assert_eq!(mounts_on(&p), 1);
    assert_eq!(std::fs::read_to_string(p.join("f")).unwrap(), "in tmpfs");
    s.unmount(&v).unwrap();
    assert!(!is_mount_point(&p).unwrap());
    assert!(!p.join("f").exists());
    s.unmount(&v).unwrap();
    // Removing a mounted tmpfs volume unmounts it first.
    s.mount(&v).unwrap();
    s.remove("scratch").unwrap();
    assert!(!s.root.join("scratch").exists());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn bind_volume_mounts_host_dir_and_remove_keeps_host_data() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (d, s) = store();
    let host = d.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("precious"), "host data").unwrap();
    let (v, _) = s
        .create(
            Some("hostbind"),
            None,
            map(&[
                ("type", "none"),
                ("o", "bind"),
                ("device", host.to_str().unwrap()),
            ]),
            map(&[]),
        )
        .unwrap();
    let _g = MountGuard(vec![v.mountpoint.clone()]);
    let p = s.mount(&v).unwrap();
    assert_eq!(
        std::fs::read_to_string(p.join("precious")).unwrap(),
        "host data"
    );
    std::fs::write(p.join("from-volume"), "v").unwrap();
    assert!(host.join("from-volume").exists());
    s.mount(&v).unwrap();
    assert_eq!(mounts_on(&p), 1);
    s.unmount(&v).unwrap();
    assert!(!p.join("precious").exists());
    // Removal while mounted: unmounted first, the host dir untouched.
    s.mount(&v).unwrap();
    s.remove("hostbind").unwrap();
    assert_eq!(
        std::fs::read_to_string(host.join("precious")).unwrap(),
        "host data"
    );
    assert!(host.join("from-volume").exists());
    assert!(!s.root.join("hostbind").exists());
}

#[test]
fn readonly_bind_volume_refuses_writes() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (d, s) = store();
    let host = d.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let (v, _) = s
        .create(
            Some("robind"),
            None,
            map(&[
                ("type", "none"),
                ("o", "bind,ro"),
                ("device", host.to_str().unwrap()),
            ]),
            map(&[]),
        )
        .unwrap();
    let _g = MountGuard(vec![v.mountpoint.clone()]);
    let p = s.mount(&v).unwrap();
    let e = std::fs::write(p.join("f"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    s.unmount(&v).unwrap();
    assert!(!is_mount_point(&p).unwrap());
}

#[test]
fn bind_volume_missing_device_fails_at_mount() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (d, s) = store();
    let missing = d.path().join("nonexistent");
    // As docker: accepted at create, refused at mount.
    let (v, _) = s
        .create(
            Some("nodev"),
            None,
            map(&[
                ("type", "none"),
                ("o", "bind"),
                ("device", missing.to_str().unwrap()),
            ]),
            map(&[]),
        )
        .unwrap();
    let _g = MountGuard(vec![v.mountpoint.clone()]);
    match s.mount(&v) {
        Err(Error::Io { what, source }) => {
            assert_eq!(
                what,
                format!(
                    "failed to mount local volume: mount {}:{}, flags: 0x1000",
                    missing.display(),
                    v.mountpoint.display()
                )
            );
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(!is_mount_point(&v.mountpoint).unwrap());
    s.remove("nodev").unwrap();
}

#[test]
fn remove_refuses_to_recurse_into_a_mount() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (d, s) = store();
    let host = d.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("precious"), "host data").unwrap();
    let (v, _) = s.create(Some("plain"), None, map(&[]), map(&[])).unwrap();
    let sub = v.mountpoint.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let _g = MountGuard(vec![sub.clone()]);
    rustix::mount::mount_bind(&host, &sub).unwrap();
    // A plain volume with a host dir bound somewhere inside it.
    let e = s.remove("plain").unwrap_err().to_string();
    assert!(e.contains("a filesystem is mounted there"), "{e}");
    assert_eq!(
        std::fs::read_to_string(host.join("precious")).unwrap(),
        "host data"
    );
    // The volume is still there, metadata and all.
    assert_eq!(s.get("plain").unwrap(), v);
    rustix::mount::unmount(&sub, UnmountFlags::DETACH).unwrap();
    s.remove("plain").unwrap();
    assert!(host.join("precious").exists());
}

#[test]
fn plain_volume_mount_is_its_data_dir() {
    let (_d, s) = store();
    let (v, _) = s.create(Some("plain"), None, map(&[]), map(&[])).unwrap();
    assert_eq!(s.mount(&v).unwrap(), v.mountpoint);
    assert!(!is_mount_point(&v.mountpoint).unwrap());
    s.unmount(&v).unwrap();
    s.remove("plain").unwrap();
    assert!(matches!(s.mount(&v), Err(Error::NotFound(_))));
}

#[test]
fn concurrent_mounts_share_one_filesystem() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (_d, s) = store();
    let (v, _) = s
        .create(
            Some("shared"),
            None,
            map(&[("type", "tmpfs"), ("device", "tmpfs")]),
            map(&[]),
        )
        .unwrap();
    let _g = MountGuard(vec![v.mountpoint.clone()]);
    for _ in 0..20 {
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    start.wait();
                    s.mount(&v).unwrap()
                });
            }
        });
        // Containers starting at once must see the same tmpfs.
        assert_eq!(mounts_on(&v.mountpoint), 1);
        s.unmount(&v).unwrap();
        assert_eq!(mounts_on(&v.mountpoint), 0);
    }
}

#[test]
fn failed_copy_up_leaves_the_volume_empty() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let r = tempfile::tempdir().unwrap();
    let src = r.path().join("data");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("a/small"), "x").unwrap();
    std::fs::write(src.join("big"), vec![7u8; 1 << 20]).unwrap();
    let (_d, s) = store();
    let (v, _) = s
        .create(
            Some("tiny"),
            None,
            map(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=64k")]),
            map(&[]),
        )
        .unwrap();
    let _g = MountGuard(vec![v.mountpoint.clone()]);
    let p = s.mount(&v).unwrap();
    let e = copy_up(r.path(), "/data", &p).unwrap_err();
    assert_eq!(e.raw_os_error(), None, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&*p.join("big").to_string_lossy()), "{msg}");
    assert!(msg.contains("No space left on device"), "{msg}");
    // Nothing half-copied is left to pass for the volume's content.
    assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0);
    s.unmount(&v).unwrap();
}

#[test]
fn overlong_names_are_errors_not_panics() {
    let (_d, s) = store();
    let long = "a".repeat(300);
    assert!(matches!(s.get(&long), Err(Error::NotFound(_))));
    match s.create(Some(&long), None, map(&[]), map(&[])) {
        Err(Error::Io { what, source }) => {
            assert!(what.contains("creating volume"), "{what}");
            assert_eq!(source.raw_os_error(), Some(libc::ENAMETOOLONG));
        }
        other => panic!("{other:?}"),
    }
    assert!(s.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&s.root).unwrap().count(), 0);
}
