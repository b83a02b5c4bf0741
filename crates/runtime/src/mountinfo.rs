//! The runtime's one reader of /proc/*/mountinfo: for the rootfs, which
//! mount holds a path (and whether it is shared) and which mounts sit below
//! a path; for cgroups, the filesystem type and super options of each
//! mount (which hierarchies there are).

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::Path;

/// One line of mountinfo, the fields the runtime needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: String,
    /// The mount is in a shared peer group (`shared:N` optional field).
    pub shared: bool,
    /// `cgroup`, `tmpfs`, ... (the first field after the `-`).
    pub fstype: String,
    /// The superblock's options (`rw,memory`), as the kernel writes them.
    pub super_options: String,
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for `\`).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line; None for a line that does not have the shape
/// `id parent major:minor root mount_point options [optional...] - fstype
/// [source [super_options]]`.
pub fn parse_line(line: &str) -> Option<MountEntry> {
    let mut fields = line.split(' ');
    let mount_point = fields.nth(4)?;
    let _options = fields.next()?;
    let mut shared = false;
    let mut separator = false;
    for f in fields.by_ref() {
        if f == "-" {
            separator = true;
            break;
        }
        shared |= f.starts_with("shared:");
    }
    let fstype = fields.next().filter(|t| !t.is_empty())?;
    let _source = fields.next();
    let super_options = fields.next().unwrap_or("");
    if !separator || !mount_point.starts_with('/') {
        return None;
    }
    Some(MountEntry {
        mount_point: unescape(mount_point),
        shared,
        fstype: fstype.to_owned(),
        super_options: super_options.to_owned(),
    })
}

pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

pub fn read_own() -> io::Result<Vec<MountEntry>> {
    Ok(parse(&fs::read_to_string("/proc/self/mountinfo")?))
}

/// `path` equals `dir` or lies below it, component-wise.
fn is_at_or_below(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || dir.is_empty() || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The mount that `path` lives on: the longest mount point at or above
/// it, and of several mounts on that point the last (topmost) one. A bind
/// of `path` onto itself gets this mount as its parent. `path` must be
/// absolute and canonical.
pub fn holding<'a>(entries: &'a [MountEntry], path: &str) -> Option<&'a MountEntry> {
    let path = path.trim_end_matches('/');
    let mut best: Option<&MountEntry> = None;
    for e in entries {
        let mp = e.mount_point.trim_end_matches('/');
        if !is_at_or_below(path, mp) {
            continue;
        }
        // >= : a later mount on the same point covers the earlier one.
        if best.is_none_or(|b| mp.len() >= b.mount_point.trim_end_matches('/').len()) {
            best = Some(e);
        }
    }
    best
}

/// Lazily unmounts every mount below `dir`, then the topmost mount on `dir`
/// itself: what a container without a mount namespace of its own left in
/// the caller's namespace (its rootfs bind, /proc, /dev, ...). Errors are
/// ignored: a mount may already be gone.
pub fn unmount_container_mounts(dir: &Path) {
    let Some(dir) = dir.to_str() else { return };
    let Ok(entries) = read_own() else { return };
    for mp in below(&entries, dir).into_iter().chain([dir.to_owned()]) {
        if let Ok(c) = CString::new(mp) {
            // SAFETY: umount2 with a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Mount points strictly below `dir`, deepest (longest) first, so they can
/// be unmounted in order.
pub fn below(entries: &[MountEntry], dir: &str) -> Vec<String> {
    let dir = dir.trim_end_matches('/');
    let mut out: Vec<String> = entries
        .iter()
        .map(|e| e.mount_point.clone())
        .filter(|mp| mp.trim_end_matches('/') != dir && is_at_or_below(mp, dir))
        .collect();
    out.sort_by_key(|mp| std::cmp::Reverse(mp.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
30 22 0:30 / /tmp rw,nosuid - tmpfs tmpfs rw
31 30 0:31 / /tmp/my\\040dir rw master:3 - tmpfs tmpfs rw
40 30 254:0 /b /tmp/b/rootfs rw shared:9 - ext4 /dev/vda rw
41 40 0:40 / /tmp/b/rootfs/proc rw - proc proc rw
42 40 0:41 / /tmp/b/rootfs/dev rw - tmpfs tmpfs rw
43 42 0:42 / /tmp/b/rootfs/dev/pts rw - devpts devpts rw
";

    #[test]
    fn parses_shared_and_escaped_mount_points() {
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 8);
        assert!(e[0].shared && e[1].shared && !e[2].shared);
        assert_eq!(e[3].mount_point, "/tmp/my dir");
        assert!(!e[3].shared, "master:N is not shared");
        assert_eq!(
            (e[4].fstype.as_str(), e[4].super_options.as_str()),
            ("ext4", "rw")
        );
        // Source and super options may be missing; the type may not.
        let short = parse_line("1 2 0:3 / /m rw - cgroup2").unwrap();
        assert_eq!(
            (short.fstype.as_str(), short.super_options.as_str()),
            ("cgroup2", "")
        );
    }

    #[test]
    fn holding_is_the_topmost_mount_at_or_above() {
        let e = parse(SAMPLE);
        let at = |p: &str| holding(&e, p).map(|m| m.mount_point.clone());
        assert_eq!(at("/tmp/b/rootfs").as_deref(), Some("/tmp/b/rootfs"));
        assert_eq!(at("/tmp/b/rootfs/etc").as_deref(), Some("/tmp/b/rootfs"));
        assert_eq!(at("/tmp/b").as_deref(), Some("/tmp"));
        assert_eq!(at("/tmp/bb").as_deref(), Some("/tmp"));
        assert_eq!(at("/tmpx").as_deref(), Some("/"));
        assert_eq!(at("/tmp/my dir/x").as_deref(), Some("/tmp/my dir"));
        assert_eq!(at("/").as_deref(), Some("/"));
        // Two mounts on one point: the later one is on top.
        let stacked = parse(
            "1 0 0:1 / / rw shared:1 - ext4 a rw\n\
             2 1 0:2 / /r rw shared:2 - tmpfs t rw\n\
             3 2 0:3 / /r rw - tmpfs t rw\n",
        );
        let top = holding(&stacked, "/r/x").unwrap();
        assert!(!top.shared, "{top:?}");
    }

    #[test]
    fn below_lists_deepest_first_and_excludes_the_dir() {
        let e = parse(SAMPLE);
        assert_eq!(
            below(&e, "/tmp/b/rootfs/"),
            vec![
                "/tmp/b/rootfs/dev/pts",
                "/tmp/b/rootfs/proc",
                "/tmp/b/rootfs/dev"
            ]
        );
        assert!(below(&e, "/tmp/b/root").is_empty());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for line in [
            "",
            "1 2 3",
            "1 2 3:4 / relative rw - x y z",
            "1 2 3:4 / /x rw shared:1",
            "1 2 3:4 / /x rw shared:1 -",
            "1 2 3:4 / /x rw shared:1 - ",
            "\\\\\\1",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
        assert_eq!(unescape("a\\0"), "a\\0");
        assert_eq!(unescape("\\777x"), "\\777x");
    }

    /// The kernel's escaping of a mount point (space, tab, newline, `\`).
    fn escape(path: &str) -> String {
        let mut out = String::new();
        for c in path.chars() {
            match c {
                ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC*") {
            let entries = parse(&text);
            let _ = below(&entries, "/x");
            let _ = holding(&entries, "/x/y");
        }

        #[test]
        fn escaped_mount_points_round_trip(path in "/[a-z \\\\\t\n]{0,20}", shared in proptest::bool::ANY) {
            let opt = if shared { "shared:7 " } else { "" };
            let line = format!("1 2 0:3 / {} rw {opt}- tmpfs tmpfs rw,size=4k", escape(&path));
            let e = parse_line(&line);
            proptest::prop_assert_eq!(e, Some(MountEntry {
                mount_point: path,
                shared,
                fstype: "tmpfs".into(),
                super_options: "rw,size=4k".into(),
            }));
        }
    }
}
