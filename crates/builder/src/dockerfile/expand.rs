//! Docker's word rules: quotes, escapes and `$V`, `${V}`, `${V:-x}`,
//! `${V:+x}` (and `${V-x}`, `${V+x}`, `${V:?msg}`) expansion.
//!
//! The rules are those of docker's builder lexer (not a full POSIX
//! shell): single quotes keep everything literally, double quotes keep
//! everything but `$` expansions and the escape character before `"`, `$`
//! and itself; outside quotes the escape character makes the next
//! character literal (and is dropped at the end of the text); unset
//! variables expand to nothing; quotes are removed.

/// Expands and unquotes one raw word. `lookup` gives the value of a
/// variable in scope (None: unset). Errors say what is wrong (an
/// unterminated quote or `${`, a `${V:?msg}` of an unset V).
pub fn word(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, String> {
    Lexer::new(raw, lookup, escape)
        .process(None)
        .map(|(word, _)| word)
        .map_err(|e| format!("failed to process {raw:?}: {e}"))
}

/// Splits raw text into words on unquoted whitespace, each expanded and
/// unquoted (for EXPOSE, VOLUME, ... in shell form).
///
/// As docker: the value of an unquoted `$V` is split on whitespace too,
/// and empty words (`""`) are dropped.
pub fn words(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, String> {
    Lexer::new(raw, lookup, escape)
        .process(None)
        .map(|(_, words)| words)
        .map_err(|e| format!("failed to process {raw:?}: {e}"))
}

/// Words being built while the text is scanned (docker's wordsStruct).
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Nesting depth of `${...}`, bounded so hostile input cannot exhaust
    /// the stack.
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl<'a> Lexer<'a> {
    fn new(raw: &str, lookup: &'a dyn Fn(&str) -> Option<String>, escape: char) -> Lexer<'a> {
        Lexer {
            chars: raw.chars().collect(),
            pos: 0,
            escape,
            lookup,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Scans up to `stop` (consumed) or the end of the text (stop None).
    fn process(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.next() {
                            // A trailing escape is dropped.
                            None => break,
                            Some(c) => {
                                words.add_raw_char(c);
                                result.push(c);
                            }
                        }
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            // Unterminated: reported by the next turn.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                name.push(c);
                return name;
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The word of a `${V<op>word}`, up to its `}`.
    fn modifier_word(&mut self) -> Result<String, String> {
        if self.depth >= MAX_DEPTH {
            return Err("syntax error: too deeply nested substitutions".into());
        }
        self.depth += 1;
        let r = self.process(Some('}'));
        self.depth -= 1;
        match r {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".into()),
            Err(e) => Err(e),
        }
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err("syntax error: missing '}'".into()),
            Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
            Some('?') => {
                let word = self.modifier_word()?;
                match self.lookup(&name) {
                    Some(v) => Ok(v),
                    None => Err(unset_message(&name, &word, "is not allowed to be unset")),
                }
            }
            Some(op @ ('-' | '+')) => {
                let word = self.modifier_word()?;
                let value = self.lookup(&name);
                Ok(match (op, value) {
                    ('-', None) => word,
                    ('-', Some(v)) => v,
                    ('+', Some(_)) => word,
                    _ => String::new(),
                })
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.modifier_word()?;
                let value = self.lookup(&name);
                match modifier {
                    Some('-') => Ok(value.filter(|v| !v.is_empty()).unwrap_or(word)),
                    Some('+') => Ok(if value.is_some_and(|v| !v.is_empty()) {
                        word
                    } else {
                        String::new()
                    }),
                    Some('?') => match value {
                        None => Err(unset_message(&name, &word, "is not allowed to be unset")),
                        Some(v) if v.is_empty() => {
                            Err(unset_message(&name, &word, "is not allowed to be empty"))
                        }
                        Some(v) => Ok(v),
                    },
                    Some(c) => Err(format!("unsupported modifier ({c}) in substitution")),
                    None => Err("syntax error: missing '}'".into()),
                }
            }
            Some(c) => Err(format!("unsupported modifier ({c}) in substitution")),
        }
    }
}

fn unset_message(name: &str, word: &str, default: &str) -> String {
    if word.is_empty() {
        format!("{name}: {default}")
    } else {
        format!("{name}: {word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("A", "a"),
            ("B", "b"),
            ("EMPTY", ""),
            ("SP", "x  y"),
            ("PATH", "/usr/bin"),
            ("_u1", "under"),
        ])
    }

    fn w(raw: &str) -> Result<String, String> {
        let env = env();
        word(raw, &|n| env.get(n).map(|v| v.to_string()), '\\')
    }

    fn ws(raw: &str) -> Result<Vec<String>, String> {
        let env = env();
        words(raw, &|n| env.get(n).map(|v| v.to_string()), '\\')
    }

    // Cases pinned against docker's builder lexer (as docker).
    #[test]
    fn word_table() {
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("plain", "plain"),
            ("$A", "a"),
            ("${A}", "a"),
            ("x$A.y", "xa.y"),
            ("$A$B", "ab"),
            ("${A}b", "ab"),
            ("$Ab", ""),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("$", "$"),
            ("a$", "a$"),
            ("$/x", "$/x"),
            ("$ x", "$ x"),
            ("$_u1", "under"),
            ("$1x", "x"),
            ("$$", ""),
            ("${A:-d}", "a"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${A-d}", "a"),
            ("${UNSET-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET:+alt}", ""),
            ("${A+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${A:?msg}", "a"),
            ("${A?msg}", "a"),
            ("${EMPTY?msg}", ""),
            ("${UNSET:-${A}}", "a"),
            ("${UNSET:-${UNSET2:-deep}}", "deep"),
            ("${UNSET:-$A-$B}", "a-b"),
            ("${UNSET:-a b}", "a b"),
            ("${UNSET:-'q}'}", "q}"),
            ("${UNSET:-\\}}", "}"),
            ("${A:+${B}}", "b"),
            ("'$A'", "$A"),
            ("'a \\ b'", "a \\ b"),
            ("\"$A\"", "a"),
            ("\"${A} x\"", "a x"),
            ("\"'$A'\"", "'a'"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\$A\"", "a$A"),
            ("\"a\\\\b\"", "a\\b"),
            ("\"a\\nb\"", "a\\nb"),
            ("\\$A", "$A"),
            ("\\\"x", "\"x"),
            ("\\'x", "'x"),
            ("a\\ b", "a b"),
            ("a\\", "a"),
            ("\\\\", "\\"),
            ("a  b", "a  b"),
            ("'a''b'", "ab"),
            ("\"\"", ""),
            ("$SP", "x  y"),
            ("${PATH}:/bin", "/usr/bin:/bin"),
            ("é$A€", "éa€"),
        ];
        for (raw, want) in table {
            assert_eq!(w(raw).as_deref(), Ok(*want), "word({raw:?})");
        }
    }

    #[test]
    fn word_errors() {
        for (raw, needle) in [
            ("'abc", "single-quote"),
            ("\"abc", "double-quote"),
            ("\"abc\\", "double-quote"),
            ("${A", "missing '}'"),
            ("${", "missing '}'"),
            ("${UNSET:-x", "missing '}'"),
            ("${}", "bad substitution"),
            ("${:x}", "bad substitution"),
            ("${{A}}", "bad substitution"),
            ("${A%x}", "unsupported modifier (%)"),
            ("${A:=x}", "unsupported modifier (=)"),
            ("${UNSET:?}", "UNSET: is not allowed to be unset"),
            ("${UNSET?}", "UNSET: is not allowed to be unset"),
            ("${UNSET:?need it}", "UNSET: need it"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("${EMPTY:?set it}", "EMPTY: set it"),
        ] {
            let err = w(raw).expect_err(raw);
            assert!(
                err.contains(needle),
                "word({raw:?}) = {err:?}, want {needle:?}"
            );
            assert!(err.contains("failed to process"), "{err}");
        }
    }

    #[test]
    fn backtick_escape() {
        let env = env();
        let l = |n: &str| env.get(n).map(|v| v.to_string());
        assert_eq!(word("`$A", &l, '`').unwrap(), "$A");
        assert_eq!(word("C:\\dir\\$A", &l, '`').unwrap(), "C:\\dir\\a");
        assert_eq!(word("\"a`\"b\"", &l, '`').unwrap(), "a\"b");
        assert_eq!(word("\"a\\b\"", &l, '`').unwrap(), "a\\b");
    }

    #[test]
    fn words_table() {
        let table: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("a b  c", &["a", "b", "c"]),
            ("  80/tcp\t443 ", &["80/tcp", "443"]),
            ("\"a b\" c", &["a b", "c"]),
            ("'a b'c d", &["a bc", "d"]),
            ("a\\ b c", &["a b", "c"]),
            ("$SP z", &["x", "y", "z"]),
            ("\"$SP\" z", &["x  y", "z"]),
            ("$UNSET a", &["a"]),
            ("\"\" a", &["a"]),
            ("${A}1 ${B}2", &["a1", "b2"]),
            ("${UNSET:-p q}", &["p", "q"]),
        ];
        for (raw, want) in table {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(ws(raw), Ok(want), "words({raw:?})");
        }
        assert!(ws("'a").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let raw = "${X:-".repeat(10_000) + &"}".repeat(10_000);
        assert!(w(&raw).is_err());
        let raw = "${X:-".repeat(10) + "ok" + &"}".repeat(10);
        assert_eq!(w(&raw).unwrap(), "ok");
    }
}
