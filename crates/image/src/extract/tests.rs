//! Crafted tar streams against the extractor. Run as root (owners, devices,
//! trusted.* xattrs).

use super::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use tar::{EntryType, Header};

/// Builds tar streams with raw names (the tar crate's setters refuse `..`
/// and absolute paths, which is exactly what we need to test).
struct Tar(tar::Builder<Vec<u8>>);

struct E<'a> {
    path: &'a str,
    kind: EntryType,
    data: &'a [u8],
    link: &'a str,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
}

fn e(path: &str, kind: EntryType) -> E<'_> {
    E {
        path,
        kind,
        data: b"",
        link: "",
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        dev: (0, 0),
    }
}
fn file<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        data,
        ..e(path, EntryType::Regular)
    }
}
fn dir(path: &str) -> E<'_> {
    e(path, EntryType::Directory)
}
fn symlink<'a>(path: &'a str, target: &'a str) -> E<'a> {
    E {
        link: target,
        mode: 0o777,
        ..e(path, EntryType::Symlink)
    }
}
fn hardlink<'a>(path: &'a str, target: &'a str) -> E<'a> {
    E {
        link: target,
        ..e(path, EntryType::Link)
    }
}

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn add(&mut self, x: E<'_>) -> &mut Self {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            assert!(x.path.len() < old.name.len() && x.link.len() < old.linkname.len());
            old.name[..x.path.len()].copy_from_slice(x.path.as_bytes());
            old.linkname[..x.link.len()].copy_from_slice(x.link.as_bytes());
        }
        h.set_entry_type(x.kind);
        h.set_size(x.data.len() as u64);
        h.set_mode(x.mode);
        h.set_uid(x.uid);
        h.set_gid(x.gid);
        h.set_mtime(x.mtime);
        if matches!(x.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(x.dev.0).unwrap();
            h.set_device_minor(x.dev.1).unwrap();
        }
        h.set_cksum();
        self.0.append(&h, x.data).unwrap();
        self
    }
    fn pax(&mut self, kv: &[(&str, &[u8])]) -> &mut Self {
        self.0.append_pax_extensions(kv.iter().copied()).unwrap();
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A temp dir with `root/` (the unpack target) and `outside/` beside it.
struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}
fn mkenv() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    Env {
        root,
        outside,
        _tmp: tmp,
    }
}

fn unpack(t: Tar, root: &Path) -> Result<UnpackStats> {
    unpack_layer(&t.bytes()[..], root)
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
fn dotdot_and_absolute_paths_stay_inside() {
    let env = mkenv();
    let mut t = Tar::new();
    t.add(file("../../escape1", b"1"))
        .add(file("/abs", b"2"))
        .add(file("a/../../../escape2", b"3"))
        .add(file("../outside/escape3", b"4"))
        .add(file("./x/./y/../z", b"5"));
    let stats = unpack(t, &env.root).unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.bytes, 5);
    assert_eq!(names(&env.outside), Vec::<String>::new());
    assert_eq!(fs::read(env.root.join("escape1")).unwrap(), b"1");
    assert_eq!(fs::read(env.root.join("abs")).unwrap(), b"2");
    assert_eq!(fs::read(env.root.join("escape2")).unwrap(), b"3");
    assert_eq!(fs::read(env.root.join("outside/escape3")).unwrap(), b"4");
    assert_eq!(fs::read(env.root.join("x/z")).unwrap(), b"5");
}

// Escapes are aimed at `outside/`, a directory beside the root, by its
// absolute path: a regression then writes into the test's temp dir, never
// into the host's /etc.
#[test]
fn writing_through_a_symlink_never_leaves_the_root() {
    let env = mkenv();
    let outside = env.outside.to_str().unwrap().to_owned();
    // Absolute symlink to a host directory absent inside the root: refused.
    let mut t = Tar::new();
    t.add(symlink("a", &outside))
        .add(file("a/passwd", b"pwned\n"));
    let err = unpack(t, &env.root).unwrap_err();
    assert!(matches!(err, Error::InvalidLayer(_)), "{err}");
    assert_eq!(names(&env.outside), Vec::<String>::new());

    // With the same path inside the root, the write lands there.
    let env = mkenv();
    let outside = env.outside.to_str().unwrap().to_owned();
    let mut t = Tar::new();
    t.add(dir(&outside))
        .add(symlink("a", &outside))
        .add(file("a/passwd", b"inside\n"));
    unpack(t, &env.root).unwrap();
    let inside = env
        .root
        .join(outside.trim_start_matches('/'))
        .join("passwd");
    assert_eq!(fs::read(inside).unwrap(), b"inside\n");
    assert_eq!(names(&env.outside), Vec::<String>::new());

    // A relative symlink climbing to the existing sibling directory.
    let env = mkenv();
    let mut t = Tar::new();
    t.add(symlink("b", "../../../../../outside"))
        .add(file("b/x", b"x"));
    let r = unpack(t, &env.root);
    assert!(r.is_err(), "{r:?}");
    assert_eq!(names(&env.outside), Vec::<String>::new());

    // A chain of symlinks, each hop absolute.
    let env = mkenv();
    let outside = env.outside.to_str().unwrap().to_owned();
    let mut t = Tar::new();
    t.add(symlink("c1", "/c2"))
        .add(symlink("c2", &outside))
        .add(file("c1/y", b"y"));
    let _ = unpack(t, &env.root);
    assert_eq!(names(&env.outside), Vec::<String>::new());

    // Overwriting the symlink itself replaces the link, not its target.
    let env = mkenv();
    fs::write(env.outside.join("victim"), b"keep").unwrap();
    let mut t = Tar::new();
    t.add(symlink("v", env.outside.join("victim").to_str().unwrap()))
        .add(file("v", b"new"));
    unpack(t, &env.root).unwrap();
    assert_eq!(fs::read(env.outside.join("victim")).unwrap(), b"keep");
    assert_eq!(fs::read(env.root.join("v")).unwrap(), b"new");
    assert!(!env.root.join("v").symlink_metadata().unwrap().is_symlink());
}

#[test]
fn hardlinks_resolve_inside_the_root() {
    let env = mkenv();
    fs::write(env.outside.join("secret"), b"s").unwrap();
    let mut t = Tar::new();
    t.add(hardlink("p", "../../etc/passwd"));
    let err = unpack(t, &env.root).unwrap_err();
    assert!(err.to_string().contains("not in the layer"), "{err}");

    let mut t = Tar::new();
    t.add(hardlink("s", "../outside/secret"));
    assert!(unpack(t, &env.root).is_err());
    assert!(!env.root.join("s").exists());

    let env = mkenv();
    let mut t = Tar::new();
    t.add(file("etc/passwd", b"root\n"))
        .add(hardlink("p", "../../etc/passwd"))
        .add(hardlink("q", "/etc/passwd"));
    unpack(t, &env.root).unwrap();
    let ino = fs::metadata(env.root.join("etc/passwd")).unwrap().ino();
    assert_eq!(fs::metadata(env.root.join("p")).unwrap().ino(), ino);
    assert_eq!(fs::metadata(env.root.join("q")).unwrap().ino(), ino);
    assert_eq!(fs::metadata(env.root.join("p")).unwrap().nlink(), 3);

    // A hardlink to a symlink links the symlink, not what it points to.
    let env = mkenv();
    let mut t = Tar::new();
    let target = env.outside.join("secret");
    fs::write(&target, b"s").unwrap();
    t.add(symlink("l", target.to_str().unwrap()))
        .add(hardlink("h", "l"));
    unpack(t, &env.root).unwrap();
    assert!(env.root.join("h").symlink_metadata().unwrap().is_symlink());
}

#[test]
fn whiteouts_become_overlay_char_devices() {
    let env = mkenv();
    let mut t = Tar::new();
    t.add(dir("d/"))
        .add(file("d/.wh.gone", b""))
        .add(file(".wh.top", b""))
        .add(dir("o/"))
        .add(file("o/.wh..wh..opq", b""))
        .add(file("o/keep", b"k"))
        .add(file("n/.wh..wh.plnk", b""));
    unpack(t, &env.root).unwrap();
    for p in ["d/gone", "top"] {
        let m = env.root.join(p).symlink_metadata().unwrap();
        assert!(m.file_type().is_char_device(), "{p}");
        assert_eq!(m.rdev(), 0, "{p}");
    }
    assert_eq!(names(&env.root.join("d")), ["gone"]);
    assert_eq!(names(&env.root.join("o")), ["keep"]);
    assert_eq!(names(&env.root.join("n")), Vec::<String>::new());
    let v = rfs::getxattr(
        env.root.join("o").as_path(),
        OVERLAY_OPAQUE_XATTR,
        &mut [0u8; 8][..],
    );
    assert_eq!(v.unwrap(), 1);
    assert!(rfs::getxattr(
        env.root.join("d").as_path(),
        OVERLAY_OPAQUE_XATTR,
        &mut [0u8; 8][..]
    )
    .is_err());
}

#[test]
fn devices_fifos_modes_owners_and_times() {
    let env = mkenv();
    let mut t = Tar::new();
    t.add(E {
        dev: (1, 3),
        mode: 0o666,
        ..e("dev/null", EntryType::Char)
    })
    .add(E {
        dev: (7, 0),
        mode: 0o660,
        gid: 6,
        ..e("dev/loop0", EntryType::Block)
    })
    .add(E {
        mode: 0o600,
        ..e("fifo", EntryType::Fifo)
    })
    .add(E {
        mode: 0o1777,
        mtime: 1_000_000_000,
        ..dir("tmp/")
    })
    .add(E {
        mode: 0o4755,
        uid: 1000,
        gid: 1001,
        mtime: 1_234_567_890,
        ..file("tmp/suid", b"#!")
    })
    .add(E {
        uid: 5,
        gid: 6,
        mtime: 1_111_111_111,
        ..symlink("tmp/link", "suid")
    });
    unpack(t, &env.root).unwrap();
    let m = |p: &str| env.root.join(p).symlink_metadata().unwrap();
    assert!(m("dev/null").file_type().is_char_device());
    assert_eq!(m("dev/null").rdev(), rfs::makedev(1, 3));
    assert_eq!(m("dev/null").mode() & 0o7777, 0o666);
    assert!(m("dev/loop0").file_type().is_block_device());
    assert_eq!(m("dev/loop0").rdev(), rfs::makedev(7, 0));
    assert_eq!(m("dev/loop0").gid(), 6);
    assert!(m("fifo").file_type().is_fifo());
    assert_eq!(m("fifo").mode() & 0o7777, 0o600);
    assert_eq!(m("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(
        m("tmp").mtime(),
        1_000_000_000,
        "dir time set after its children"
    );
    assert_eq!(m("tmp/suid").mode() & 0o7777, 0o4755);
    assert_eq!((m("tmp/suid").uid(), m("tmp/suid").gid()), (1000, 1001));
    assert_eq!(m("tmp/suid").mtime(), 1_234_567_890);
    assert!(m("tmp/link").is_symlink());
    assert_eq!((m("tmp/link").uid(), m("tmp/link").gid()), (5, 6));
    assert_eq!(m("tmp/link").mtime(), 1_111_111_111);
    // Implicit parents get 0755.
    assert_eq!(m("dev").mode() & 0o7777, 0o755);
}

#[test]
fn pax_xattrs_times_and_big_ids() {
    let env = mkenv();
    let mut t = Tar::new();
    t.pax(&[
        ("SCHILY.xattr.trusted.pier", b"v1"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("mtime", b"1500000000.25"),
        ("uid", b"100000"),
    ])
    .add(file("f", b"data"));
    t.pax(&[("SCHILY.xattr.trusted.pier", b"d")]).add(dir("d/"));
    unpack(t, &env.root).unwrap();
    let mut buf = [0u8; 16];
    let f = env.root.join("f");
    let n = rfs::getxattr(f.as_path(), "trusted.pier", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"v1");
    assert!(rfs::getxattr(f.as_path(), "trusted.overlay.redirect", &mut buf[..]).is_err());
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 250_000_000));
    assert_eq!(m.uid(), 100_000);
    let n = rfs::getxattr(env.root.join("d").as_path(), "trusted.pier", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"d");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let env = mkenv();
    let mut t = Tar::new();
    t.add(file("f", b"one"))
        .add(file("f", b"two"))
        .add(dir("x/"))
        .add(file("x/child", b"c"))
        .add(file("x", b"now a file"))
        .add(file("y", b"file"))
        .add(dir("y/"))
        .add(dir("keep/"))
        .add(file("keep/a", b"a"))
        .add(E {
            mode: 0o700,
            ..dir("keep/")
        });
    unpack(t, &env.root).unwrap();
    assert_eq!(fs::read(env.root.join("f")).unwrap(), b"two");
    assert_eq!(fs::read(env.root.join("x")).unwrap(), b"now a file");
    assert!(env.root.join("y").is_dir());
    assert_eq!(names(&env.root.join("keep")), ["a"]);
    assert_eq!(
        fs::metadata(env.root.join("keep")).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn gzip_and_zstd_are_detected() {
    let mut t = Tar::new();
    t.add(file("hello", b"world"));
    let plain = t.bytes();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let env1 = mkenv();
    unpack_layer(&gz[..], &env1.root).unwrap();
    assert_eq!(fs::read(env1.root.join("hello")).unwrap(), b"world");

    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let env2 = mkenv();
    unpack_layer(&zst[..], &env2.root).unwrap();
    assert_eq!(fs::read(env2.root.join("hello")).unwrap(), b"world");
}

#[test]
fn truncated_or_corrupt_streams_are_errors() {
    let mut t = Tar::new();
    t.add(file("big", &[7u8; 100_000]));
    let plain = t.bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();

    for (what, data) in [
        ("truncated gzip", &gz[..gz.len() / 2]),
        ("gzip missing its trailer", &gz[..gz.len() - 4]),
        ("truncated tar", &plain[..2048]),
        ("garbage", &[0x55u8; 4096][..]),
    ] {
        let env = mkenv();
        match unpack_layer(data, &env.root) {
            Err(Error::InvalidLayer(msg)) => assert!(msg.contains("corrupt"), "{what}: {msg}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn non_directory_parent_is_an_error() {
    let env = mkenv();
    let mut t = Tar::new();
    t.add(file("f", b"x")).add(file("f/g", b"y"));
    let err = unpack(t, &env.root).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn root_entry_sets_root_metadata() {
    let env = mkenv();
    let mut t = Tar::new();
    t.add(E {
        mode: 0o750,
        mtime: 999,
        ..dir("./")
    })
    .add(file("a", b""));
    unpack(t, &env.root).unwrap();
    let m = fs::metadata(&env.root).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o750);
    assert_eq!(m.mtime(), 999);
}

#[test]
fn clean_resolves_lexically() {
    let c = |s: &str| {
        clean(s.as_bytes())
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect::<Vec<_>>()
            .join("/")
    };
    assert_eq!(c("../../a"), "a");
    assert_eq!(c("/a/./b/../c/"), "a/c");
    assert_eq!(c("./"), "");
    assert_eq!(c("a/b/../../.."), "");
}

#[test]
fn pax_time_parsing() {
    let t = parse_pax_time(b"12.5").unwrap();
    assert_eq!((t.tv_sec, t.tv_nsec), (12, 500_000_000));
    let t = parse_pax_time(b"-1.25").unwrap();
    assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
    let t = parse_pax_time(b"7").unwrap();
    assert_eq!((t.tv_sec, t.tv_nsec), (7, 0));
    assert!(parse_pax_time(b"x").is_none());
}

#[test]
fn a_parent_directory_swapped_for_a_symlink_between_entries_stays_inside() {
    let env = mkenv();
    let outside = env.outside.to_str().unwrap().to_owned();
    let mut t = Tar::new();
    t.add(dir("p/"))
        .add(file("p/a", b"a"))
        .add(symlink("p", &outside))
        .add(file("p/b", b"b"));
    let r = unpack(t, &env.root);
    assert_eq!(names(&env.outside), Vec::<String>::new(), "{r:?}");
    // Same with a relative link climbing out.
    let env = mkenv();
    let mut t = Tar::new();
    t.add(dir("q/"))
        .add(symlink("q", "../../outside"))
        .add(file("q/c", b"c"));
    let r = unpack(t, &env.root);
    assert_eq!(names(&env.outside), Vec::<String>::new(), "{r:?}");
}

#[test]
fn whiteouts_aimed_outside_remove_and_mark_nothing_there() {
    let env = mkenv();
    fs::write(env.outside.join("victim"), b"keep").unwrap();
    let outside = env.outside.to_str().unwrap().to_owned();
    let mut t = Tar::new();
    t.add(file("../outside/.wh.victim", b""))
        .add(file("x/../../../outside/.wh.victim", b""));
    let _ = unpack(t, &env.root);
    let mut t = Tar::new();
    t.add(symlink("l", &outside))
        .add(file("l/.wh.victim", b""))
        .add(file("l/.wh..wh..opq", b""));
    let _ = unpack(t, &env.root);
    assert_eq!(fs::read(env.outside.join("victim")).unwrap(), b"keep");
    assert_eq!(names(&env.outside), ["victim"]);
    assert!(rfs::getxattr(
        env.outside.as_path(),
        OVERLAY_OPAQUE_XATTR,
        &mut [0u8; 8][..]
    )
    .is_err());
}

#[test]
fn files_across_writeback_steps_unpack_byte_for_byte() {
    // Sizes around the steps writeback is started in: under one, exactly
    // one, two and a half, and exactly two (no tail).
    let step = WRITEBACK_STEP as usize;
    let sizes = [step - 1, step, 2 * step + step / 2 + 7, 2 * step];
    let datas: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|k| (k * 31 + i * 7 + k / 4096) as u8).collect())
        .collect();
    let names: Vec<String> = (0..sizes.len()).map(|i| format!("f{i}")).collect();
    let mut t = Tar::new();
    for (n, d) in names.iter().zip(&datas) {
        t.add(file(n, d));
    }
    let env = mkenv();
    let stats = unpack(t, &env.root).unwrap();
    assert_eq!(stats.bytes, sizes.iter().sum::<usize>() as u64);
    for (n, d) in names.iter().zip(&datas) {
        let got = fs::read(env.root.join(n)).unwrap();
        assert_eq!(got.len(), d.len(), "{n}");
        assert!(got == *d, "{n} differs from what the tar holds");
    }
}
