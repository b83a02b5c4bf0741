//! Filesystem work of COPY/ADD/WORKDIR: paths resolved inside a root
//! (symlinks followed as if the root were `/`, never out of it), globs,
//! copying trees (symlinks kept as symlinks), content hashes for the
//! cache, user and group names from the image's /etc files.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::hashcache::{hash_file, HashCache};
use crate::dockerfile::ignore::Ignore;

/// Cleans a slash path lexically, as Go's path.Clean of `/` + path, and
/// returns it without the leading slash ("" for the root). With `strict`,
/// a path that climbs above the root is None (docker's "forbidden path
/// outside the build context"); otherwise `..` stops at the root.
pub fn clean_rel(path: &str, strict: bool) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() && strict && !path.starts_with('/') {
                    return None;
                }
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// Resolves `path` inside `root` as the kernel would with `root` as `/`:
/// symlinks are followed (absolute targets from `root`, `..` never above
/// it), the last component only with `follow_last`. Missing components
/// are kept as they are. The result is a host path under `root`.
pub fn resolve_in(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut todo: Vec<OsString> = components(path.as_bytes());
    todo.reverse(); // a stack: next component last
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        let b = c.as_bytes();
        if b.is_empty() || b == b"." {
            continue;
        }
        if b == b".." {
            done.pop();
            continue;
        }
        let mut p = root.to_path_buf();
        p.extend(&done);
        p.push(&c);
        let is_last = todo.iter().all(|t| t.is_empty() || t.as_bytes() == b".");
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {path}"
                    )));
                }
                let target = fs::read_link(&p)?;
                let tb = target.as_os_str().as_bytes();
                if tb.starts_with(b"/") {
                    done.clear();
                }
                let mut more = components(tb);
                more.reverse();
                todo.extend(more);
            }
            _ => done.push(c),
        }
    }
    let mut p = root.to_path_buf();
    p.extend(&done);
    Ok(p)
}

fn components(b: &[u8]) -> Vec<OsString> {
    b.split(|c| *c == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| std::ffi::OsStr::from_bytes(c).to_owned())
        .collect()
}

/// `path` relative to `root` as a slash string ("" for root itself).
pub fn rel_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Go's filepath.Match on one path component: `*`, `?`, `[...]` with
/// ranges and `^` negation, `\` escapes. A malformed pattern matches
/// nothing.
pub fn glob_match(pat: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> Option<bool> {
        if p.is_empty() {
            return Some(n.is_empty());
        }
        match p[0] {
            '*' => {
                for i in 0..=n.len() {
                    if m(&p[1..], &n[i..])? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            '?' => Some(!n.is_empty() && m(&p[1..], &n[1..])?),
            '[' => {
                let mut i = 1;
                let neg = p.get(1) == Some(&'^');
                if neg {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                loop {
                    let c = *p.get(i)?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let (lo, next) = if c == '\\' {
                        (*p.get(i + 1)?, i + 2)
                    } else {
                        (c, i + 1)
                    };
                    i = next;
                    let mut hi = lo;
                    if p.get(i) == Some(&'-') && p.get(i + 1) != Some(&']') {
                        hi = *p.get(i + 1)?;
                        if hi == '\\' {
                            hi = *p.get(i + 2)?;
                            i += 1;
                        }
                        i += 2;
                    }
                    if let Some(&ch) = n.first() {
                        if lo <= ch && ch <= hi {
                            hit = true;
                        }
                    }
                }
                if n.is_empty() || hit == neg {
                    return Some(false);
                }
                m(&p[i + 1..], &n[1..])
            }
            '\\' => {
                let c = *p.get(1)?;
                Some(n.first() == Some(&c) && m(&p[2..], &n[1..])?)
            }
            c => Some(n.first() == Some(&c) && m(&p[1..], &n[1..])?),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n).unwrap_or(false)
}

pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The entries of `root` matching the cleaned relative glob `rel`,
/// sorted, as paths relative to `root`. Entries `ignore` excludes are
/// left out.
pub fn glob(root: &Path, rel: &str, ignore: Option<&Ignore>) -> io::Result<Vec<String>> {
    let mut cur: Vec<String> = vec![String::new()];
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for base in &cur {
            let dir = if base.is_empty() {
                root.to_path_buf()
            } else {
                root.join(base)
            };
            let join = |n: &str| {
                if base.is_empty() {
                    n.to_owned()
                } else {
                    format!("{base}/{n}")
                }
            };
            if has_glob(part) {
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if glob_match(part, &n) {
                        let p = join(&n);
                        let is_dir = fs::symlink_metadata(root.join(&p)).is_ok_and(|m| m.is_dir());
                        if (last || is_dir) && !ignore.is_some_and(|ig| ig.excluded(&p) && !is_dir)
                        {
                            next.push(p);
                        }
                    }
                }
            } else {
                let p = join(part);
                if fs::symlink_metadata(root.join(&p)).is_ok() {
                    next.push(p);
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

/// Whether the context entry `rel` (a directory when `is_dir`) is left
/// out of hashes and copies: an excluded file, or an excluded directory
/// below which no exception can bring anything back (as the CLI leaves it
/// out of the tar it sends).
pub fn left_out(ignore: Option<&Ignore>, rel: &str, is_dir: bool) -> bool {
    ignore.is_some_and(|ig| ig.excluded(rel) && (!is_dir || !ig.may_reinclude_below(rel)))
}

/// What hashing saw of a context read in place: each entry (host path)
/// and, for files, the digest of its content. The copy checks what it
/// copies against it, so a file changed between the two (the step's key
/// says one content, the layer would hold another) fails the step
/// instead of poisoning the cache.
#[derive(Debug, Default)]
pub struct Seen {
    entries: HashMap<PathBuf, SeenEntry>,
    copied: std::sync::Mutex<HashSet<PathBuf>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SeenEntry {
    File([u8; 32]),
    Link(OsString),
    Dir,
}

fn changed(p: &Path) -> io::Error {
    io::Error::other(format!(
        "{} changed while the build was reading it (the step's cache key was made \
         from what was there before): build again",
        p.display()
    ))
}

impl Seen {
    fn check(&self, p: &Path, now: &SeenEntry) -> io::Result<()> {
        if self.entries.get(p) != Some(now) {
            return Err(changed(p));
        }
        self.copied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.to_path_buf());
        Ok(())
    }

    /// A file's content was read (an archive ADD extracts): its digest.
    pub fn check_file(&self, p: &Path, digest: [u8; 32]) -> io::Result<()> {
        self.check(p, &SeenEntry::File(digest))
    }

    /// After the copy: everything hashed was copied (nothing went away).
    pub fn all_copied(&self) -> io::Result<()> {
        let copied = self.copied.lock().unwrap_or_else(|e| e.into_inner());
        match self.entries.keys().find(|p| !copied.contains(*p)) {
            Some(p) => Err(changed(p)),
            None => Ok(()),
        }
    }
}

/// Hashes a source tree for the cache: relative paths, types, modes,
/// owners, sizes, contents (as their SHA-256) and link targets; never
/// times. The metadata of a directory given as the source itself is left
/// out, as COPY copies only what is in it. With `cache`, file digests
/// come from it when the file is unchanged; with `seen`, what was hashed
/// is noted for the copy to check. With `context`, owners are hashed as
/// root's: the tar a client sends has them so (as docker's CLI), and
/// COPY makes files root's (or --chown's) anyway, so a context read in
/// place keys as the same context sent, and a chown is no change (as
/// docker).
pub fn hash_tree(
    h: &mut Sha256,
    path: &Path,
    rel: &str,
    ignore: Option<&Ignore>,
    context: bool,
    cache: Option<&HashCache>,
    seen: Option<&mut Seen>,
) -> io::Result<()> {
    let mut seen = seen;
    let how = How {
        ignore,
        context,
        cache,
    };
    hash_entry(h, path, rel, &how, &mut seen, true)
}

struct How<'a> {
    ignore: Option<&'a Ignore>,
    context: bool,
    cache: Option<&'a HashCache>,
}

fn hash_entry(
    h: &mut Sha256,
    path: &Path,
    rel: &str,
    how: &How,
    seen: &mut Option<&mut Seen>,
    top: bool,
) -> io::Result<()> {
    let ignore = how.ignore;
    let md = fs::symlink_metadata(path)?;
    let ft = md.file_type();
    if how.context && !top && !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
        // Sockets, fifos and devices in a context are never copied (and
        // never in the tar a client sends).
        return Ok(());
    }
    h.update(rel.as_bytes());
    h.update([0]);
    if top && ft.is_dir() {
        h.update(b"top ");
    } else {
        let (uid, gid) = if how.context {
            (0, 0)
        } else {
            (md.uid(), md.gid())
        };
        h.update(format!("{:o} {uid} {gid} ", md.mode()).as_bytes());
    }
    let note = |seen: &mut Option<&mut Seen>, e: SeenEntry| {
        if let Some(s) = seen.as_deref_mut() {
            s.entries.insert(path.to_path_buf(), e);
        }
    };
    if ft.is_dir() {
        h.update(b"d\0");
        if !top {
            note(seen, SeenEntry::Dir);
        }
        for (name, p) in sorted(path)? {
            let r = child_rel(rel, &name);
            if left_out(
                ignore,
                &r,
                fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()),
            ) {
                continue;
            }
            hash_entry(h, &p, &r, how, seen, false)?;
        }
    } else if ft.is_symlink() {
        h.update(b"l\0");
        let target = fs::read_link(path)?;
        h.update(target.as_os_str().as_bytes());
        h.update([0]);
        note(seen, SeenEntry::Link(target.into_os_string()));
    } else if ft.is_file() {
        let (key, digest) = match how.cache {
            Some(c) => c.digest(path, &md)?,
            None => hash_file(path)?,
        };
        h.update(format!("f {}\0", key.size).as_bytes());
        h.update(digest);
        note(seen, SeenEntry::File(digest));
    } else {
        h.update(format!("o {}\0", md.rdev()).as_bytes());
    }
    Ok(())
}

fn child_rel(rel: &str, name: &std::ffi::OsStr) -> String {
    let n = name.to_string_lossy();
    if rel.is_empty() {
        n.into_owned()
    } else {
        format!("{rel}/{n}")
    }
}

fn sorted(dir: &Path) -> io::Result<Vec<(OsString, PathBuf)>> {
    let mut v: Vec<(OsString, PathBuf)> = fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name(), e.path())))
        .collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// How copied files end up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    /// `--chown` (uid, gid); root otherwise.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
}

impl Owner {
    fn ids(&self) -> (u32, u32) {
        self.chown.unwrap_or((0, 0))
    }
}

/// Creates `dir` (a host path under a root, resolved already) and its
/// missing parents, 0755, owned as `owner` says.
pub fn mkdir_all(dir: &Path, owner: &Owner) -> io::Result<()> {
    if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir_all(parent, owner)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let md = fs::symlink_metadata(dir)?;
            if md.is_dir() {
                return Ok(());
            }
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a directory", dir.display()),
            ));
        }
        Err(e) => return Err(e),
    }
    let (u, g) = owner.ids();
    std::os::unix::fs::lchown(dir, Some(u), Some(g))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
}

/// Removes whatever is at `p` (not following a symlink there) unless it
/// is a directory and `keep_dir`.
fn clear(p: &Path, keep_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => {
            if keep_dir {
                Ok(())
            } else {
                fs::remove_dir_all(p)
            }
        }
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Copies `src` (file, symlink or tree) to `dst` (a host path whose
/// parent exists): files keep their mode (or take `--chmod`) and mtime
/// and become root's (or `--chown`'s); symlinks are copied as symlinks;
/// a directory onto an existing directory merges. `rel` is `src`'s path
/// relative to the context for `.dockerignore`.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &str,
    ignore: Option<&Ignore>,
    owner: &Owner,
    seen: Option<&Seen>,
) -> io::Result<()> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    let (u, g) = owner.ids();
    let mtime = fs::FileTimes::new().set_modified(md.modified()?);
    if ft.is_dir() {
        if let Some(s) = seen {
            s.check(src, &SeenEntry::Dir)?;
        }
        let existed = fs::symlink_metadata(dst).is_ok_and(|m| m.is_dir());
        if !existed {
            clear(dst, false)?;
            fs::create_dir(dst)?;
            std::os::unix::fs::lchown(dst, Some(u), Some(g))?;
            let mode = owner.chmod.unwrap_or(md.mode() & 0o7777);
            fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
        }
        for (name, p) in sorted(src)? {
            let r = child_rel(rel, &name);
            let excluded = ignore.is_some_and(|ig| ig.excluded(&r));
            let child_is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
            if left_out(ignore, &r, child_is_dir) {
                continue;
            }
            let d = dst.join(&name);
            copy_tree(&p, &d, &r, ignore, owner, seen)?;
            if excluded && child_is_dir && fs::read_dir(&d).is_ok_and(|mut e| e.next().is_none()) {
                // An ignored directory only there for exceptions inside it.
                let _ = fs::remove_dir(&d);
            }
        }
        if !existed {
            fs::File::open(dst)?.set_times(mtime)?;
        }
    } else if ft.is_symlink() {
        clear(dst, false)?;
        let target = fs::read_link(src)?;
        if let Some(s) = seen {
            s.check(src, &SeenEntry::Link(target.clone().into_os_string()))?;
        }
        std::os::unix::fs::symlink(&target, dst)?;
        std::os::unix::fs::lchown(dst, Some(u), Some(g))?;
        set_link_mtime(dst, &md);
    } else if ft.is_file() {
        clear(dst, false)?;
        let mut from = fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(src)?;
        let mut to = fs::File::options().write(true).create_new(true).open(dst)?;
        match seen {
            None => {
                io::copy(&mut from, &mut to)?;
            }
            Some(s) => {
                // What is copied is what the key was made from.
                let mut w = HashingWriter {
                    inner: &mut to,
                    h: Sha256::new(),
                };
                io::copy(&mut from, &mut w)?;
                s.check(src, &SeenEntry::File(w.h.finalize().into()))?;
            }
        }
        std::os::unix::fs::fchown(&to, Some(u), Some(g))?;
        let mode = owner.chmod.unwrap_or(md.mode() & 0o7777);
        to.set_permissions(fs::Permissions::from_mode(mode))?;
        to.set_times(mtime)?;
    }
    // Sockets, fifos and devices in a context are not copied.
    Ok(())
}

/// A writer that hashes what it writes.
pub struct HashingWriter<W> {
    pub inner: W,
    pub h: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.h.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn set_link_mtime(p: &Path, md: &fs::Metadata) {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return;
    };
    let ts = [
        libc::timespec {
            tv_sec: md.atime() as libc::time_t,
            tv_nsec: md.atime_nsec() as _,
        },
        libc::timespec {
            tv_sec: md.mtime() as libc::time_t,
            tv_nsec: md.mtime_nsec() as _,
        },
    ];
    // SAFETY: a valid C string and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}

/// Writes `data` as a new file at `dst`, 0644 (or `--chmod`), owned as
/// `owner` says.
pub fn write_file(dst: &Path, data: &[u8], owner: &Owner) -> io::Result<()> {
    use std::io::Write;
    clear(dst, false)?;
    let mut f = fs::File::options().write(true).create_new(true).open(dst)?;
    f.write_all(data)?;
    let (u, g) = owner.ids();
    std::os::unix::fs::fchown(&f, Some(u), Some(g))?;
    f.set_permissions(fs::Permissions::from_mode(owner.chmod.unwrap_or(0o644)))
}

/// Looks `name` up in an /etc/passwd or /etc/group style file of the
/// rootfs: its id (third field) and, for passwd, its group (fourth).
pub fn lookup_id(root: &Path, file: &str, name: &str) -> Option<(u32, Option<u32>)> {
    let p = resolve_in(root, file, true).ok()?;
    let text = fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            Some((f[2].parse().ok()?, f.get(3).and_then(|g| g.parse().ok())))
        } else {
            None
        }
    })
}

/// `--chown=user[:group]` to ids, names looked up in the rootfs.
pub fn parse_chown(root: Option<&Path>, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let find = |file: &str, n: &str, what: &str| -> Result<u32, String> {
        if let Ok(id) = n.parse::<u32>() {
            return Ok(id);
        }
        root.and_then(|r| lookup_id(r, file, n))
            .map(|(id, _)| id)
            .ok_or_else(|| {
                format!(
                    "unable to find {what} {n}: no matching entries in {} file",
                    if what == "user" { "passwd" } else { "group" }
                )
            })
    };
    if user.is_empty() {
        return Err(format!("invalid --chown value {spec:?}: no user given"));
    }
    let uid = find("/etc/passwd", user, "user")?;
    let gid = match group {
        Some(g) if !g.is_empty() => find("/etc/group", g, "group")?,
        // As BuildKit: a user name alone takes its passwd group, a bare
        // uid is also the gid.
        _ => match user.parse::<u32>() {
            Ok(_) => uid,
            Err(_) => root
                .and_then(|r| lookup_id(r, "/etc/passwd", user))
                .and_then(|(_, g)| g)
                .unwrap_or(uid),
        },
    };
    Ok((uid, gid))
}

/// A USER value (`name|uid[:group|gid]`, empty for root) to ids, as the
/// runtime resolves it: names from the rootfs' /etc/passwd and
/// /etc/group, a user's group from its passwd entry (0 when a numeric
/// uid has none).
pub fn resolve_user(root: &Path, spec: &str) -> Result<(u32, u32), String> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => {
            let gid = resolve_in(root, "/etc/passwd", true)
                .ok()
                .and_then(|p| fs::read_to_string(p).ok())
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 4 && f[2].parse() == Ok(uid))
                            .then(|| f[3].parse().ok())
                            .flatten()
                    })
                });
            (uid, gid.unwrap_or(0))
        }
        Err(_) => match lookup_id(root, "/etc/passwd", user) {
            Some((uid, gid)) => (uid, gid.unwrap_or(0)),
            None => {
                return Err(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                ))
            }
        },
    };
    let gid = match group.filter(|g| !g.is_empty()) {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup_id(root, "/etc/group", g)
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
    };
    Ok((uid, gid))
}

/// Whether the file starts like an archive ADD extracts: a tar, plain
/// or gzip/zstd-compressed (bzip2 and xz are named so the caller can say
/// they are not supported).
pub fn archive_kind(p: &Path) -> io::Result<Option<&'static str>> {
    let mut f = fs::File::open(p)?;
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Some("gzip"));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Some("zstd"));
    }
    if head.starts_with(b"BZh") {
        return Ok(Some("bzip2"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(Some("xz"));
    }
    let mut f = fs::File::open(p)?;
    let mut block = vec![0u8; 512];
    let mut n = 0;
    while n < 512 {
        let k = f.read(&mut block[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    if n == 512 && &block[257..262] == b"ustar" {
        return Ok(Some("tar"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_and_resolve_stay_in_the_root() {
        assert_eq!(clean_rel("a/./b/../c", true).as_deref(), Some("a/c"));
        assert_eq!(clean_rel("../x", true), None);
        assert_eq!(clean_rel("/../x", true).as_deref(), Some("x"));
        assert_eq!(clean_rel("../x", false).as_deref(), Some("x"));
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("out")).unwrap();
        std::os::unix::fs::symlink("../../../../real", r.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_in(r, "out/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in(r, "up/sub", true).unwrap(), r.join("real/sub"));
        assert_eq!(resolve_in(r, "out", false).unwrap(), r.join("out"));
        assert!(resolve_in(r, "loop", true).is_err());
    }

    #[test]
    fn globs_match_as_go() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txz"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("[", "["));
    }
}
