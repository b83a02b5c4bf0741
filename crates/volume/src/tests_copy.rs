//! copy_up: docker's copy of image content into a new, empty volume.

use crate::copy::{resolve_in_root, walk_in_root};
use crate::*;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps, CWD};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

fn set_owner_mode_time(p: &Path, uid: u32, gid: u32, mode: u32, mtime: i64) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if !std::fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_symlink()
    {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let t = Timestamps {
        last_access: Timespec {
            tv_sec: mtime - 100,
            tv_nsec: 0,
        },
        last_modification: Timespec {
            tv_sec: mtime,
            tv_nsec: 123_456_789,
        },
    };
    rustix::fs::utimensat(CWD, p, &t, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A fake rootfs with /data full of every kind of entry, /etc of its own
/// and symlinks that would lead out of it if followed on the host.
fn rootfs() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let data = r.join("data");
    std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
    std::fs::write(data.join("a"), "file a").unwrap();
    std::fs::write(data.join("sub/deeper/nested"), "nested").unwrap();
    std::fs::write(data.join("suid"), "#!/bin/sh\n").unwrap();
    std::fs::write(data.join("h1"), "linked").unwrap();
    std::fs::hard_link(data.join("h1"), data.join("h2")).unwrap();
    // Linked from a later, shallower entry: the link's first copy is nested.
    std::fs::write(data.join("sub/deeper/n1"), "nested link").unwrap();
    std::fs::hard_link(data.join("sub/deeper/n1"), data.join("zz")).unwrap();
    std::os::unix::fs::symlink("a", data.join("rel")).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd", data.join("up")).unwrap();
    rustix::fs::mknodat(
        CWD,
        data.join("fifo"),
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o620),
        0,
    )
    .unwrap();
    set_owner_mode_time(&data.join("a"), 1, 2, 0o640, 1_000_000);
    set_owner_mode_time(&data.join("suid"), 0, 0, 0o4755, 1_000_100);
    set_owner_mode_time(&data.join("sub/deeper/nested"), 33, 33, 0o600, 1_000_200);
    set_owner_mode_time(&data.join("sub/deeper"), 33, 33, 0o700, 1_000_300);
    set_owner_mode_time(&data.join("sub"), 5, 6, 0o555, 1_000_400);
    set_owner_mode_time(&data.join("rel"), 7, 8, 0, 1_000_500);
    set_owner_mode_time(&data.join("fifo"), 9, 10, 0o620, 1_000_600);
    set_owner_mode_time(&data, 1000, 1001, 0o750, 1_000_700);
    // The image's own /etc, and symlinks that point "outside".
    std::fs::create_dir(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/marker"), "image etc").unwrap();
    std::os::unix::fs::symlink("/etc", r.join("abslink")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../etc", r.join("rellink")).unwrap();
    std::os::unix::fs::symlink("/abslink/../data/sub", r.join("chain")).unwrap();
    std::fs::write(r.join("afile"), "").unwrap();
    d
}

fn assert_same(src: &Path, dst: &Path) {
    let s = std::fs::symlink_metadata(src).unwrap();
    let d = std::fs::symlink_metadata(dst).unwrap();
    assert_eq!(s.file_type(), d.file_type(), "{}", dst.display());
    assert_eq!(s.mode(), d.mode(), "mode of {}", dst.display());
    assert_eq!(
        (s.uid(), s.gid()),
        (d.uid(), d.gid()),
        "owner of {}",
        dst.display()
    );
    assert_eq!(
        (s.mtime(), s.mtime_nsec()),
        (d.mtime(), d.mtime_nsec()),
        "mtime of {}",
        dst.display()
    );
}

#[test]
fn copies_tree_with_modes_owners_times_links() {
    if !is_root() {
        eprintln!("skipped: needs root (chown)");
        return;
    }
    let r = rootfs();
    let user_xattr = xattr_set(&r.path().join("data/a"));
    let vol = tempfile::tempdir().unwrap();
    let v = vol.path().join("_data");
    std::fs::create_dir(&v).unwrap();
    assert!(copy_up(r.path(), "/data", &v).unwrap());
    let src = r.path().join("data");
    for rel in [
        "",
        "a",
        "suid",
        "sub",
        "sub/deeper",
        "sub/deeper/nested",
        "rel",
        "abs",
        "up",
        "fifo",
        "h1",
        "h2",
    ] {
        assert_same(&src.join(rel), &v.join(rel));
    }
    // The volume's own directory took the source's owner and mode.
    let top = std::fs::metadata(&v).unwrap();
    assert_eq!(top.mode() & 0o7777, 0o750);
    assert_eq!((top.uid(), top.gid()), (1000, 1001));
    assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "file a");
    assert_eq!(
        std::fs::read_to_string(v.join("sub/deeper/nested")).unwrap(),
        "nested"
    );
    // Symlinks stay symlinks, with their targets as written.
    assert_eq!(std::fs::read_link(v.join("rel")).unwrap(), Path::new("a"));
    assert_eq!(
        std::fs::read_link(v.join("abs")).unwrap(),
        Path::new("/etc")
    );
    assert!(std::fs::symlink_metadata(v.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // Hard links stay linked.
    for (a, b) in [("h1", "h2"), ("sub/deeper/n1", "zz")] {
        assert_eq!(
            std::fs::metadata(v.join(a)).unwrap().ino(),
            std::fs::metadata(v.join(b)).unwrap().ino(),
            "{a} {b}"
        );
        assert_ne!(
            std::fs::metadata(v.join(a)).unwrap().ino(),
            std::fs::metadata(src.join(a)).unwrap().ino()
        );
    }
    assert_eq!(
        std::fs::read_to_string(v.join("zz")).unwrap(),
        "nested link"
    );
    if user_xattr {
        let mut buf = [0u8; 16];
        let n = rustix::fs::lgetxattr(v.join("a"), "user.pier", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"yes");
    }
}

/// Sets `user.pier=yes` on `p`; false where the filesystem has no user
/// xattrs.
fn xattr_set(p: &Path) -> bool {
    rustix::fs::lsetxattr(p, "user.pier", b"yes", rustix::fs::XattrFlags::empty()).is_ok()
}

#[test]
fn device_nodes_are_copied() {
    if !is_root() {
        eprintln!("skipped: needs root (mknod)");
        return;
    }
    let r = tempfile::tempdir().unwrap();
    let dev = r.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    let null = dev.join("null");
    let dn = rustix::fs::makedev(1, 3);
    if rustix::fs::mknodat(
        CWD,
        &null,
        rustix::fs::FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        dn,
    )
    .is_err()
    {
        eprintln!("skipped: mknod refused here");
        return;
    }
    set_owner_mode_time(&null, 0, 0, 0o666, 1_000_000);
    let v = tempfile::tempdir().unwrap();
    assert!(copy_up(r.path(), "/dev", v.path()).unwrap());
    let m = std::fs::symlink_metadata(v.path().join("null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), dn);
    assert_same(&null, &v.path().join("null"));
}

#[test]
fn non_empty_target_or_missing_source_copies_nothing() {
    let r = rootfs();
    let v = tempfile::tempdir().unwrap();
    std::fs::write(v.path().join("existing"), "mine").unwrap();
    assert!(!copy_up(r.path(), "/data", v.path()).unwrap());
    let names: Vec<_> = std::fs::read_dir(v.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["existing"]);
    assert_eq!(
        std::fs::read_to_string(v.path().join("existing")).unwrap(),
        "mine"
    );

    let empty = tempfile::tempdir().unwrap();
    let mode = std::fs::metadata(empty.path()).unwrap().mode();
    assert!(!copy_up(r.path(), "/nonexistent", empty.path()).unwrap());
    assert!(!copy_up(r.path(), "/nonexistent/deeper", empty.path()).unwrap());
    assert!(!copy_up(r.path(), "/afile", empty.path()).unwrap());
    assert!(!copy_up(r.path(), "/data/a", empty.path()).unwrap());
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    assert_eq!(std::fs::metadata(empty.path()).unwrap().mode(), mode);
    // An empty source directory: a copy of nothing (but owner and mode).
    std::fs::create_dir(r.path().join("emptydir")).unwrap();
    assert!(copy_up(r.path(), "/emptydir", empty.path()).unwrap());
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[test]
fn symlinks_in_the_image_stay_inside_the_rootfs() {
    let r = rootfs();
    // /abslink -> /etc and /rellink -> ../../../etc: the image's /etc,
    // never the host's.
    for dest in ["/abslink", "/rellink", "abslink/", "/data/../rellink"] {
        let v = tempfile::tempdir().unwrap();
        assert!(copy_up(r.path(), dest, v.path()).unwrap(), "{dest}");
        let names: Vec<_> = std::fs::read_dir(v.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["marker"], "{dest}");
    }
    // A chain through a symlink and `..` that would leave the rootfs.
    let v = tempfile::tempdir().unwrap();
    assert!(copy_up(r.path(), "/chain", v.path()).unwrap());
    assert!(v.path().join("deeper/nested").is_file());
    // `..` above the root stays at the root.
    let v = tempfile::tempdir().unwrap();
    assert!(copy_up(r.path(), "/../../../etc", v.path()).unwrap());
    assert!(v.path().join("marker").is_file());
    assert!(!v.path().join("passwd").exists());
}

fn open_dir(p: &Path) -> OwnedFd {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

/// Both resolvers (openat2 and the fd walk for old kernels) agree.
#[test]
fn fd_walk_resolves_like_openat2() {
    let r = rootfs();
    let root = open_dir(r.path());
    let ino = |fd: Option<OwnedFd>| fd.map(|fd| rustix::fs::fstat(&fd).unwrap().st_ino);
    let etc = std::fs::metadata(r.path().join("etc")).unwrap().ino();
    let sub = std::fs::metadata(r.path().join("data/sub")).unwrap().ino();
    let rootino = std::fs::metadata(r.path()).unwrap().ino();
    for (dest, want) in [
        ("/etc", Some(etc)),
        ("/abslink", Some(etc)),
        ("/rellink", Some(etc)),
        ("/../../etc", Some(etc)),
        ("/chain", Some(sub)),
        ("/data/sub/deeper/..", Some(sub)),
        ("/", Some(rootino)),
        ("", Some(rootino)),
        ("/nonexistent", None),
        ("/afile", None),
        ("/afile/x", None),
        ("/data/up", None),
    ] {
        assert_eq!(
            ino(walk_in_root(root.as_fd(), dest).unwrap()),
            want,
            "walk {dest}"
        );
        assert_eq!(
            ino(resolve_in_root(root.as_fd(), dest).unwrap()),
            want,
            "openat2 {dest}"
        );
    }
    // A symlink loop is an error, not a hang.
    std::os::unix::fs::symlink("/loop", r.path().join("loop")).unwrap();
    assert_eq!(
        walk_in_root(root.as_fd(), "/loop")
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ELOOP)
    );
    assert!(resolve_in_root(root.as_fd(), "/loop").is_err());
}
