//! `.dockerignore`: docker's patterns (Go filepath.Match plus `**`),
//! `!` exceptions, later lines winning.
//!
//! The rules, as docker's:
//! - a line starting with `#` is a comment; blank lines are skipped;
//!   lines are trimmed; `!` starts an exception (re-include);
//! - patterns are cleaned like Go's `filepath.Clean` and a leading `/`
//!   is dropped (`/a/../b/` is `b`);
//! - `*` matches any run of characters but `/`, `?` one character but
//!   `/`, `[...]` a class (`[^...]` negated, ranges; `!` is literal there,
//!   as in docker's matcher), `\` escapes
//!   the next character; `**` matches any number of directories (`**/x`
//!   is `x` at any depth, a trailing `**` everything below);
//! - a path is excluded if it or one of its parent directories matches
//!   the last pattern that matches it and that pattern is not an exception;
//! - as docker's context walk skips an excluded directory unless an
//!   exception's pattern starts with that directory's path, everything
//!   below such a directory is excluded (`d` then `!**/keep` keeps no
//!   `d/keep`; `d` then `!d/keep` keeps it).
//!
//! What docker sends and shows: the docker CLI sends the Dockerfile and
//! `.dockerignore` even when they are ignored (so the daemon can read the
//! Dockerfile) and the daemon then removes them from the context when they
//! are ignored, so COPY/ADD never see an ignored file, those two included.
//! [`walk`] gives what COPY/ADD may see (the Dockerfile is read apart);
//! [`Ignore::keeping_build_files`] gives the list of what a client must
//! send to a docker daemon.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    /// The cleaned pattern text (without `!`).
    text: String,
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Char(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `**` followed by more pattern: empty or anything ending in `/`.
    DirStar,
    /// `**` at the end: anything.
    Rest,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
    /// An unterminated `[`: never matches (Go reports a bad pattern).
    Bad,
}

/// Go's `filepath.Clean` on a slash-separated path.
fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

fn compile(p: &str) -> Vec<Tok> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                out.push(if i >= chars.len() {
                    Tok::Rest
                } else {
                    Tok::DirStar
                });
            }
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    i += 1;
                    out.push(Tok::Char(n));
                }
                None => out.push(Tok::Char('\\')),
            },
            '[' => {
                let mut j = i;
                // As docker (a Go regexp class): only `^` negates.
                let negated = chars.get(j) == Some(&'^');
                if negated {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while j < chars.len() {
                    let mut lo = chars[j];
                    if lo == ']' && !first {
                        closed = true;
                        j += 1;
                        break;
                    }
                    first = false;
                    j += 1;
                    if lo == '\\' {
                        match chars.get(j) {
                            Some(&n) => {
                                lo = n;
                                j += 1;
                            }
                            None => break,
                        }
                    }
                    let mut hi = lo;
                    if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|c| *c != ']') {
                        hi = chars[j + 1];
                        j += 2;
                        if hi == '\\' {
                            match chars.get(j) {
                                Some(&n) => {
                                    hi = n;
                                    j += 1;
                                }
                                None => break,
                            }
                        }
                    }
                    ranges.push((lo, hi));
                }
                if closed {
                    out.push(Tok::Class(negated, ranges));
                    i = j;
                } else {
                    out.push(Tok::Bad);
                    i = chars.len();
                }
            }
            c => out.push(Tok::Char(c)),
        }
    }
    out
}

/// Whether `toks` match all of `s`. Iterative over the pattern with
/// backtracking; bounded by memoizing (token, position) failures.
fn matches(toks: &[Tok], s: &[char]) -> bool {
    let mut failed = vec![false; (toks.len() + 1) * (s.len() + 1)];
    fn go(toks: &[Tok], ti: usize, s: &[char], si: usize, failed: &mut [bool]) -> bool {
        let key = ti * (s.len() + 1) + si;
        if failed[key] {
            return false;
        }
        let ok = match toks.get(ti) {
            None => si == s.len(),
            Some(Tok::Char(c)) => s.get(si) == Some(c) && go(toks, ti + 1, s, si + 1, failed),
            Some(Tok::Any) => {
                s.get(si).is_some_and(|c| *c != '/') && go(toks, ti + 1, s, si + 1, failed)
            }
            Some(Tok::Class(neg, ranges)) => {
                s.get(si).is_some_and(|c| {
                    *c != '/' && (ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *neg)
                }) && go(toks, ti + 1, s, si + 1, failed)
            }
            Some(Tok::Star) => {
                let mut j = si;
                loop {
                    if go(toks, ti + 1, s, j, failed) {
                        break true;
                    }
                    if j >= s.len() || s[j] == '/' {
                        break false;
                    }
                    j += 1;
                }
            }
            Some(Tok::DirStar) => {
                // empty, or up to and including any later '/'
                go(toks, ti + 1, s, si, failed)
                    || (si..s.len()).any(|j| s[j] == '/' && go(toks, ti + 1, s, j + 1, failed))
            }
            Some(Tok::Rest) => true,
            Some(Tok::Bad) => false,
        };
        if !ok {
            failed[key] = true;
        }
        ok
    }
    // Recursion depth is bounded by the pattern's length; keep patterns sane.
    if toks.len() > 1024 {
        return false;
    }
    go(toks, 0, s, 0, &mut failed)
}

impl Pattern {
    fn new(line: &str) -> Option<Pattern> {
        let (exception, p) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        if p.is_empty() {
            // docker: `!` alone is an illegal exclusion pattern; ignored here
            return None;
        }
        let mut text = clean(p);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
        let tokens = compile(&text);
        Some(Pattern {
            exception,
            text,
            tokens,
        })
    }

    fn is_match(&self, path: &[char]) -> bool {
        matches(&self.tokens, path)
    }
}

impl Ignore {
    /// Parses a .dockerignore file's text (comments, blank lines, leading
    /// `/` and `./` ignored, paths cleaned as docker does).
    pub fn parse(text: &str) -> Ignore {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(p) = Pattern::new(line) {
                patterns.push(p);
            }
        }
        Ignore { patterns }
    }

    /// Whether there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel` (a slash-separated path relative to the context root,
    /// no leading slash) is excluded from the context.
    pub fn excluded(&self, rel: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let rel = clean(rel.trim_start_matches('/'));
        if rel == "." {
            return false;
        }
        let full: Vec<char> = rel.chars().collect();
        // Parent directories: each prefix ending before a '/'.
        let parents: Vec<usize> = full
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        // As docker's context walk: below an excluded directory that no
        // exception names a path in, everything is left out.
        for (k, &end) in parents.iter().enumerate() {
            if self.matched(&full[..end], &parents[..k]) {
                let dir: String = full[..end].iter().collect();
                if !self.may_reinclude_below(&dir) {
                    return true;
                }
            }
        }
        self.matched(&full, &parents)
    }

    /// Whether the last pattern matching `path` or one of its parents
    /// (ending at the `/` positions `parents`) excludes it.
    fn matched(&self, path: &[char], parents: &[usize]) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could change the answer needs a look.
            if p.exception != excluded {
                continue;
            }
            let hit = p.is_match(path) || parents.iter().any(|&end| p.is_match(&path[..end]));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether an exception pattern could re-include something below the
    /// excluded directory `dir` (so a walk must look inside it).
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.text).starts_with(&prefix))
    }

    /// These rules plus the exceptions the docker CLI adds so that the
    /// Dockerfile (`dockerfile`, relative to the context) and
    /// `.dockerignore` are sent to the daemon even when ignored.
    pub fn keeping_build_files(&self, dockerfile: &str) -> Ignore {
        let mut out = self.clone();
        for keep in [".dockerignore", dockerfile] {
            if out.excluded(keep) {
                if let Some(p) = Pattern::new(&format!("!{keep}")) {
                    out.patterns.push(p);
                }
            }
        }
        out
    }
}

/// The context entries (files, directories, symlinks; not followed) that
/// `ignore` keeps, relative to `root`, in walk order (a directory before
/// its contents, names sorted). A directory that is excluded is left out
/// with everything below it, unless an exception may re-include something
/// inside: then it is entered but itself left out, as docker's tar of the
/// context does.
pub fn walk(root: &Path, ignore: &Ignore) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk_dir(root, Path::new(""), ignore, &mut out)?;
    Ok(out)
}

fn walk_dir(root: &Path, rel: &Path, ignore: &Ignore, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", dir.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", dir.display())))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let child = rel.join(e.file_name());
        // Patterns are text: a name that is not UTF-8 is matched lossily
        // (and still listed, as docker sends it).
        let rel_lossy = child.to_string_lossy();
        let rel_str: &str = &rel_lossy;
        let is_dir = e
            .file_type()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("reading {}: {err}", root.join(&child).display()),
                )
            })?
            .is_dir();
        if ignore.excluded(rel_str) {
            if is_dir && ignore.may_reinclude_below(rel_str) {
                walk_dir(root, &child, ignore, out)?;
            }
            continue;
        }
        out.push(child.clone());
        if is_dir {
            walk_dir(root, &child, ignore, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(rules: &str, path: &str) -> bool {
        Ignore::parse(rules).excluded(path)
    }

    #[test]
    fn clean_like_go() {
        for (i, o) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a", "a"),
            ("a//b/./c/..", "a/b"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("/", "/"),
            ("a/..", "."),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    // Pinned against docker's pattern matcher (as docker).
    #[test]
    fn pattern_table() {
        let table: &[(&str, &str, bool)] = &[
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("*/*.md", "docs/README.md", true),
            ("**/*.md", "docs/a/README.md", true),
            ("**/*.md", "README.md", true),
            ("docs", "docs/a/b.txt", true),
            ("docs", "docsx", false),
            ("docs/", "docs/x", true),
            ("/docs", "docs/x", true),
            ("./docs", "docs/x", true),
            ("docs/../src", "src/main.rs", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("a[bc]d", "acd", true),
            ("a[^bc]d", "acd", false),
            // checked against docker: `!` is no negation in a class
            ("a[!bc]d", "axd", false),
            ("a[!bc]d", "a!d", true),
            ("q[!1]", "q1", true),
            ("q[!1]", "qa", false),
            ("a**b", "ab", true),
            ("a**b", "ax/b", true),
            ("a**b", "axb", false),
            ("a\\[b", "a[b", true),
            ("a[a-c]d", "abd", true),
            ("a[a-c]d", "add", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("**", "anything/at/all", true),
            ("a/**", "a/b/c", true),
            ("a/**", "b/c", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("**/node_modules", "x/y/node_modules/z/file", true),
            ("target", "target", true),
            ("*", "a/b", true),
            (".git", ".git/HEAD", true),
            ("*.log", "a.log.txt", false),
            ("[", "[", false),
            ("a.b", "axb", false),
            // checked against docker: regex characters are literal
            ("a+b", "a+b", true),
            ("a+b", "aab", false),
            ("/x/*.log", "x/y.log", true),
            ("/x/*.log", "x/y/z.log", false),
        ];
        for (rule, path, want) in table {
            assert_eq!(ex(rule, path), *want, "pattern {rule:?} on {path:?}");
        }
    }

    #[test]
    fn exceptions_and_order() {
        let rules = "# comment\n\n*.md\n!README.md\n";
        assert!(ex(rules, "CHANGES.md"));
        assert!(!ex(rules, "README.md"));
        assert!(!ex(rules, "main.rs"));
        // last matching line wins
        assert!(ex("!README.md\n*.md\n", "README.md"));
        // an exception re-includes below an excluded directory
        let rules = "docs\n!docs/keep\n";
        assert!(ex(rules, "docs/x"));
        assert!(!ex(rules, "docs/keep"));
        assert!(!ex(rules, "docs/keep/deep/file"));
        // spaces trimmed, and "! pattern"
        assert!(!ex("  a  \n! a\n", "a"));
        // '#' only at the start of a line is a comment
        assert!(ex(" #x\n", "#x"));
        assert!(!ex("#x\n", "#x"));
        // empty rules exclude nothing, the root is never excluded
        assert!(!ex("", "a"));
        assert!(!ex("*", ""));
        assert!(!ex("!\n", "a"));
    }

    #[test]
    fn exceptions_need_the_directory_prefix() {
        // checked against docker: an exception that does not name a path
        // in the excluded directory does not reach inside it
        let rules = "d1\n!**/keep.txt\n";
        assert!(ex(rules, "d1/keep.txt"));
        assert!(ex(rules, "d1/sub/keep.txt"));
        assert!(!ex(rules, "other/keep.txt"));
        assert!(!ex(rules, "keep.txt"));
        let rules = "e\n!e/f/k.txt\n";
        assert!(!ex(rules, "e/f/k.txt"));
        assert!(ex(rules, "e/f/other"));
        assert!(ex(rules, "e/g"));
    }

    #[test]
    fn build_files_are_kept_for_sending() {
        let ig = Ignore::parse("*\n");
        assert!(ig.excluded("Dockerfile"));
        let keep = ig.keeping_build_files("Dockerfile");
        assert!(!keep.excluded("Dockerfile"));
        assert!(!keep.excluded(".dockerignore"));
        assert!(keep.excluded("other"));
    }

    #[test]
    fn walk_honours_rules() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "a.txt",
            "b.md",
            "README.md",
            "docs/x.md",
            "docs/keep/k.txt",
            "node_modules/m/i.js",
            "src/lib.rs",
        ] {
            let p = r.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", r.join("link")).unwrap();
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = std::ffi::OsStr::from_bytes(b"src/odd\xff.md");
            std::fs::write(r.join(odd), "x").unwrap();
            let odd2 = std::ffi::OsStr::from_bytes(b"src/odd\xff.rs");
            std::fs::write(r.join(odd2), "x").unwrap();
        }
        let ig = Ignore::parse("*.md\n!README.md\ndocs\n!docs/keep\n**/node_modules\nsrc/*.md\n");
        let got: Vec<String> = walk(r, &ig)
            .unwrap()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "README.md",
                "a.txt",
                "docs/keep",
                "docs/keep/k.txt",
                "link",
                "src",
                "src/lib.rs",
                "src/odd\u{fffd}.rs"
            ]
        );
        let all = walk(r, &Ignore::default()).unwrap();
        assert_eq!(all.len(), 15);
    }
}
