//! The Dockerfile parser: docker's line rules (parser directives, line
//! continuations, comment lines, heredocs) then each instruction's
//! arguments as docker splits them.
//!
//! parse-dockerfile 0.1.9 was the starting point, but its results differ
//! from docker's where pier must match docker: a heredoc is only found
//! right after `RUN` (`RUN python3 <<EOF` loses its body), one heredoc per
//! RUN, no text of the instruction as docker prints it, `RUN ["a"] x`
//! read as shell form where docker takes the JSON array (Go's decoder
//! stops after the first value), its own error messages (pier gives
//! dockerd's). So the lines are read here with docker's rules, and
//! parse-dockerfile is kept as a cross-check in the tests.

use super::model::*;
use super::SyntaxError;

/// A parse failure before its location is attached.
struct Fail {
    line: usize,
    message: String,
}

fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        line,
        message: message.into(),
    })
}

/// docker's `[\t\v\f\r ]`.
fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits off the first word (docker's `reWhitespace.Split(s, 2)`).
fn split_first_word(s: &str) -> (&str, &str) {
    match s.find(is_ws) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_ws)),
        None => (s, ""),
    }
}

/// docker's parseStringsWhitespaceDelimited.
fn split_ws(s: &str) -> Vec<String> {
    s.split(is_ws)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parser directives at the top of the file: the escape character.
fn directives(lines: &[&str]) -> Result<char, Fail> {
    let mut escape = '\\';
    let mut seen: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim_start();
        let Some(body) = l.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        let key = key.trim_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_key || value.is_empty() {
            break;
        }
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        if seen.contains(&key) {
            return fail(
                i + 1,
                format!("only one {key} parser directive can be used"),
            );
        }
        if key == "escape" {
            escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return fail(
                        i + 1,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    )
                }
            };
        }
        seen.push(key);
    }
    Ok(escape)
}

/// Removes a trailing escape (and blanks after it): (text, ends the instruction).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        // As docker: an escaped escape at the end is no continuation.
        Some(rest) if !rest.ends_with(escape) => (rest, false),
        _ => (line, true),
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// docker's extractBuilderFlags: leading `--name[=value]` words (quotes
/// and backslashes removed) and the rest of the line.
fn extract_flags(line: &str) -> (Vec<String>, &str) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return (words, "");
        }
        let starts_flag = chars[i].1 == '-' && chars.get(i + 1).is_some_and(|c| c.1 == '-');
        if !starts_flag {
            return (words, &line[chars[i].0..]);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i].1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if i + 1 < chars.len() {
                        i += 1;
                        word.push(chars[i].1);
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if word == "--" {
            let rest = chars.get(i).map_or("", |c| &line[c.0..]);
            return (words, rest);
        }
        words.push(word);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlagKind {
    Str,
    /// A string flag that may be given several times.
    Multi,
    Bool,
}

/// docker's BFlags: checks names and values, booleans as "true"/"false".
fn parse_flags(
    words: &[String],
    allowed: &[(&str, FlagKind)],
    line: usize,
) -> Result<Vec<(String, String)>, Fail> {
    let mut out: Vec<(String, String)> = Vec::new();
    for w in words {
        let arg = w.strip_prefix("--").unwrap_or(w);
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
            return fail(line, format!("Unknown flag: {name}"));
        };
        if kind != FlagKind::Multi && out.iter().any(|(n, _)| n == name) {
            return fail(line, format!("Duplicate flag specified: {name}"));
        }
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(v)) => match v {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => "true".into(),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => "false".into(),
                _ => {
                    return fail(
                        line,
                        format!("expecting boolean value for flag {name}, not: {v}"),
                    )
                }
            },
            (_, None) => return fail(line, format!("Missing a value on flag: {name}")),
            (_, Some(v)) => v.to_string(),
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn flag(flags: &[(String, String)], name: &str) -> Option<String> {
    flags
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// docker's parseWords: words on unquoted whitespace, quotes and escapes
/// kept as written.
pub(crate) fn raw_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = rest.chars().peekable();
    while let Some(c) = it.next() {
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    match it.next() {
                        None => continue,
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    match it.next() {
                        None => {
                            quote = None;
                            continue;
                        }
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// docker's parseJSON: Some(strings) when the text is a JSON array of
/// strings (text after the array is ignored, as Go's decoder does), None
/// when it is not JSON, an error for an array of other things.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(
                    "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_string(),
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

fn command(rest: &str, line: usize) -> Result<Command, Fail> {
    match parse_json(rest) {
        Ok(Some(v)) => Ok(Command::Exec(v)),
        Ok(None) => Ok(Command::Shell(rest.to_string())),
        Err(e) => fail(line, e),
    }
}

/// docker's parseMaybeJSONToList.
fn json_or_words(rest: &str, line: usize) -> Result<(Vec<String>, bool), Fail> {
    match parse_json(rest) {
        Ok(Some(v)) => Ok((v, true)),
        Ok(None) => Ok((split_ws(rest), false)),
        Err(e) => fail(line, e),
    }
}

/// docker's parseNameVal for ENV and LABEL.
fn name_vals(
    rest: &str,
    cmd: &str,
    escape: char,
    line: usize,
) -> Result<Vec<(String, String)>, Fail> {
    let words = raw_words(rest, escape);
    if words.is_empty() {
        return fail(line, format!("{cmd} requires at least one argument"));
    }
    if !words[0].contains('=') {
        let (k, v) = split_first_word(rest);
        if v.is_empty() {
            return fail(line, format!("{cmd} must have two arguments"));
        }
        return Ok(vec![(k.to_string(), v.to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return fail(
                line,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            );
        };
        if k.is_empty() {
            return fail(line, format!("{cmd} names can not be blank"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// A heredoc named on an instruction's line, before its body is read.
struct HeredocHead {
    name: String,
    expand: bool,
    chomp: bool,
}

/// docker's `^(\d*)<<(-?)([^<]*)$` on one raw word.
fn heredoc_head(word: &str) -> Option<HeredocHead> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let w = w.strip_prefix("<<")?;
    let (chomp, rest) = match w.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, w),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let quoted = rest.contains(['\'', '"']);
    let name: String = if quoted {
        let mut name = String::new();
        let mut quote = None;
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (Some('"') | None, '\\') => {
                    if let Some(n) = chars.next() {
                        name.push(n)
                    }
                }
                (_, c) => name.push(c),
            }
        }
        name
    } else {
        rest.replace('\\', "")
    };
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return None;
    }
    Some(HeredocHead {
        name,
        expand: !quoted,
        chomp,
    })
}

fn heredoc_heads(text: &str) -> Vec<HeredocHead> {
    if !text.contains("<<") {
        return Vec::new();
    }
    raw_words(text, '\\')
        .iter()
        .filter_map(|w| heredoc_head(w))
        .collect()
}

struct Lines<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Lines<'a> {
    /// The next line (and its 1-based number).
    fn take(&mut self) -> Option<(usize, &'a str)> {
        let l = self.lines.get(self.next).copied()?;
        self.next += 1;
        Some((self.next, l))
    }

    /// Reads heredoc bodies after an instruction's line.
    fn heredocs(&mut self, heads: Vec<HeredocHead>, start: usize) -> Result<Vec<Heredoc>, Fail> {
        let mut out = Vec::new();
        for h in heads {
            let mut content = String::new();
            let mut terminated = false;
            while let Some((_, l)) = self.take() {
                let candidate = if h.chomp {
                    l.trim_start_matches('\t')
                } else {
                    l
                };
                if candidate == h.name {
                    terminated = true;
                    break;
                }
                content.push_str(if h.chomp { candidate } else { l });
                content.push('\n');
            }
            if !terminated {
                return fail(start, format!("unterminated heredoc {}", h.name));
            }
            out.push(Heredoc {
                name: h.name,
                content,
                expand: h.expand,
            });
        }
        Ok(out)
    }
}

const COPY_FLAGS: &[(&str, FlagKind)] = &[
    ("from", FlagKind::Str),
    ("chown", FlagKind::Str),
    ("chmod", FlagKind::Str),
    ("link", FlagKind::Bool),
];
const ADD_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", FlagKind::Str),
    ("chmod", FlagKind::Str),
    ("link", FlagKind::Bool),
    ("checksum", FlagKind::Str),
    ("keep-git-dir", FlagKind::Bool),
];
const RUN_FLAGS: &[(&str, FlagKind)] = &[
    ("mount", FlagKind::Multi),
    ("network", FlagKind::Str),
    ("security", FlagKind::Str),
];
const HEALTH_FLAGS: &[(&str, FlagKind)] = &[
    ("interval", FlagKind::Str),
    ("timeout", FlagKind::Str),
    ("start-period", FlagKind::Str),
    ("start-interval", FlagKind::Str),
    ("retries", FlagKind::Str),
];

/// One instruction: its lowercase name, flags, arguments (trimmed).
struct Node<'a> {
    cmd: String,
    flags: Vec<String>,
    args: &'a str,
}

fn split_command(line: &str) -> Node<'_> {
    let (cmd, rest) = split_first_word(line.trim_matches(is_ws));
    let (flags, args) = extract_flags(rest);
    Node {
        cmd: cmd.to_lowercase(),
        flags,
        args: args.trim(),
    }
}

fn exactly_one(args: &str, cmd: &str, line: usize) -> Result<String, Fail> {
    if args.is_empty() {
        return fail(line, format!("{cmd} requires exactly one argument"));
    }
    Ok(args.to_string())
}

fn copy_args(
    cmd: &str,
    args: &str,
    flags: &[(String, String)],
    heredocs: Vec<Heredoc>,
    line: usize,
) -> Result<Copy, Fail> {
    let (mut list, json) = json_or_words(args, line)?;
    if list.len() < 2 {
        return fail(
            line,
            format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"),
        );
    }
    let dest = list.pop().unwrap_or_default();
    let mut sources = Vec::with_capacity(list.len());
    if !json {
        if heredoc_head(&dest).is_some() {
            return fail(
                line,
                format!("{cmd} cannot accept a heredoc as a destination"),
            );
        }
        for s in list {
            match heredoc_head(&s) {
                Some(h) => sources.push(h.name),
                None => sources.push(s),
            }
        }
    } else {
        sources = list;
    }
    Ok(Copy {
        sources,
        dest,
        from: flag(flags, "from"),
        chown: flag(flags, "chown"),
        chmod: flag(flags, "chmod"),
        link: flag(flags, "link").is_some_and(|v| v == "true"),
        heredocs,
    })
}

/// Builds one instruction from its joined line (and heredoc bodies).
fn instruction(
    node: &Node,
    escape: char,
    heredocs: Vec<Heredoc>,
    line: usize,
) -> Result<Kind, Fail> {
    let args = node.args;
    let up = node.cmd.to_uppercase();
    // As docker: the arguments are checked before the flags.
    let allowed: &[(&str, FlagKind)] = match node.cmd.as_str() {
        "run" => RUN_FLAGS,
        "copy" => COPY_FLAGS,
        "add" => ADD_FLAGS,
        "healthcheck" => HEALTH_FLAGS,
        _ => &[],
    };
    let checked = parse_flags(&node.flags, allowed, line);
    let flags: &[(String, String)] = checked.as_deref().unwrap_or(&[]);
    let kind = match node.cmd.as_str() {
        "run" => {
            let flags = flags.to_vec();
            Kind::Run {
                command: command(args, line)?,
                heredocs,
                flags,
            }
        }
        "cmd" => Kind::Cmd(command(args, line)?),
        "entrypoint" => Kind::Entrypoint(command(args, line)?),
        "shell" => match parse_json(args) {
            Ok(Some(v)) if v.is_empty() => {
                return fail(line, "SHELL requires at least one argument")
            }
            Ok(Some(v)) => Kind::Shell(v),
            Ok(None) => return fail(line, "SHELL requires the arguments to be in JSON form"),
            Err(e) => return fail(line, e),
        },
        "workdir" | "user" | "stopsignal" | "maintainer" => {
            let v = exactly_one(args, &up, line)?;
            match node.cmd.as_str() {
                "workdir" => Kind::Workdir(v),
                "user" => Kind::User(v),
                "stopsignal" => Kind::StopSignal(v),
                _ => Kind::Maintainer(v),
            }
        }
        "env" => Kind::Env(name_vals(args, "ENV", escape, line)?),
        "label" => Kind::Label(name_vals(args, "LABEL", escape, line)?),
        "arg" => {
            let words = raw_words(args, escape);
            if words.is_empty() {
                return fail(line, "ARG requires at least one argument");
            }
            let mut decls = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return fail(line, "ARG names can not be blank");
                }
                decls.push(ArgDecl { name, default });
            }
            Kind::Arg(decls)
        }
        "expose" => {
            let ports = split_ws(args);
            if ports.is_empty() {
                return fail(line, "EXPOSE requires at least one argument");
            }
            Kind::Expose(ports)
        }
        "volume" => {
            let (list, _) = json_or_words(args, line)?;
            if list.is_empty() {
                return fail(line, "VOLUME requires at least one argument");
            }
            if list.iter().any(|v| v.trim().is_empty()) {
                return fail(line, "VOLUME specified can not be an empty string");
            }
            Kind::Volume(list)
        }
        "copy" => Kind::Copy(copy_args("COPY", args, flags, heredocs, line)?),
        "add" => {
            let copy = copy_args("ADD", args, flags, heredocs, line)?;
            Kind::Add {
                copy,
                checksum: flag(flags, "checksum"),
                keep_git_dir: flag(flags, "keep-git-dir").is_some_and(|v| v == "true"),
            }
        }
        "healthcheck" => {
            let (typ, rest) = split_first_word(args);
            if typ.is_empty() {
                return fail(line, "HEALTHCHECK requires at least one argument");
            }
            let typ = typ.to_uppercase();
            let mut hc = Healthcheck {
                test: None,
                interval: flag(flags, "interval"),
                timeout: flag(flags, "timeout"),
                start_period: flag(flags, "start-period"),
                start_interval: flag(flags, "start-interval"),
                retries: flag(flags, "retries"),
            };
            match typ.as_str() {
                "NONE" => {
                    if !rest.is_empty() {
                        return fail(line, "HEALTHCHECK NONE takes no arguments");
                    }
                }
                "CMD" => {
                    let cmd = command(rest, line)?;
                    let empty = match &cmd {
                        Command::Exec(v) => v.is_empty(),
                        Command::Shell(s) => s.is_empty(),
                    };
                    if empty {
                        return fail(line, "Missing command after HEALTHCHECK CMD");
                    }
                    hc.test = Some(cmd);
                }
                _ => {
                    return fail(
                        line,
                        format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"),
                    )
                }
            }
            Kind::Healthcheck(hc)
        }
        "onbuild" => {
            let (trigger, _) = split_first_word(args);
            if trigger.is_empty() {
                return fail(line, "ONBUILD requires at least one argument");
            }
            let trigger = trigger.to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return fail(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                }
                "FROM" | "MAINTAINER" => {
                    return fail(
                        line,
                        format!("{trigger} isn't allowed as an ONBUILD trigger"),
                    )
                }
                _ => {}
            }
            Kind::Onbuild(args.to_string())
        }
        _ => return fail(line, format!("unknown instruction: {up}")),
    };
    checked?;
    Ok(kind)
}

/// Whether heredocs are read after this instruction's line: RUN, COPY,
/// ADD (also as an ONBUILD trigger) in shell form.
fn heredoc_text<'a>(node: &Node<'a>) -> Option<&'a str> {
    let args = match node.cmd.as_str() {
        "run" | "copy" | "add" => node.args,
        "onbuild" => {
            let inner = split_command(node.args);
            if !matches!(inner.cmd.as_str(), "run" | "copy" | "add") {
                return None;
            }
            inner.args
        }
        _ => return None,
    };
    match parse_json(args) {
        Ok(Some(_)) => None,
        _ => Some(args),
    }
}

fn from_stage(node: &Node, line: usize) -> Result<Stage, Fail> {
    let checked = parse_flags(&node.flags, &[("platform", FlagKind::Str)], line);
    let args = split_ws(node.args);
    let name = match args.len() {
        1 => None,
        3 if args[1].eq_ignore_ascii_case("as") => {
            let name = args[2].to_lowercase();
            let mut chars = name.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if !ok {
                return fail(
                    line,
                    format!(
                        "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                        args[2]
                    ),
                );
            }
            Some(name)
        }
        _ => return fail(line, "FROM requires either one or three arguments"),
    };
    let flags = checked?;
    Ok(Stage {
        name,
        base: args[0].clone(),
        platform: flag(&flags, "platform"),
        line,
        instructions: Vec::new(),
    })
}

pub(super) fn parse(text: &str, file: &str) -> Result<(Dockerfile, Vec<String>), SyntaxError> {
    let mut warnings = Vec::new();
    parse_inner(text, file, &mut warnings)
        .map(|d| (d, warnings))
        .map_err(|f| SyntaxError {
            file: file.to_string(),
            line: f.line,
            message: f.message,
        })
}

fn parse_inner(text: &str, file: &str, warnings: &mut Vec<String>) -> Result<Dockerfile, Fail> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let escape = directives(&lines)?;
    let mut lines = Lines { lines, next: 0 };

    let mut df = Dockerfile {
        escape,
        args: Vec::new(),
        stages: Vec::new(),
    };
    let mut any = false;
    while let Some((start, first)) = lines.take() {
        let first = first.trim_start();
        let first = if first.starts_with('#') { "" } else { first };
        let (mut joined, mut end) = trim_continuation(first, escape);
        if end && joined.is_empty() {
            continue;
        }
        let mut line = joined.to_string();
        let mut empty_continuation = false;
        while !end {
            let Some((_, l)) = lines.take() else { break };
            if is_comment(l) {
                continue;
            }
            if l.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            (joined, end) = trim_continuation(l, escape);
            line.push_str(joined);
        }
        if empty_continuation {
            warnings.push(format!("Empty continuation line found in:\n    {line}"));
        }
        any = true;
        let node = split_command(&line);
        let heredocs = match heredoc_text(&node) {
            Some(t) => {
                let heads = heredoc_heads(t);
                lines.heredocs(heads, start)?
            }
            None => Vec::new(),
        };
        let original = line.trim().to_string();
        if node.cmd == "from" {
            let stage = from_stage(&node, start)?;
            if let Some(name) = &stage.name {
                if df.stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                    return fail(start, format!("{name} stage name already used"));
                }
            }
            df.stages.push(stage);
            continue;
        }
        let trigger_docs = if node.cmd == "onbuild" {
            heredocs.clone()
        } else {
            Vec::new()
        };
        let mut kind = instruction(&node, escape, heredocs, start)?;
        if let Kind::Onbuild(expr) = &mut kind {
            // The trigger as written after ONBUILD (trailing blanks
            // kept), as docker stores it; heredoc bodies follow it so
            // that the trigger parses alone.
            let o = line.trim_start();
            let rest = o.get(node.cmd.len()..).unwrap_or("").trim_start();
            *expr = rest.to_string();
            for h in trigger_docs {
                expr.push('\n');
                expr.push_str(&h.content);
                expr.push_str(&h.name);
            }
        }
        match df.stages.last_mut() {
            Some(stage) => stage.instructions.push(Instruction { line: start, original, kind }),
            None => match kind {
                Kind::Arg(decls) => df.args.extend(decls),
                _ => {
                    return fail(
                        start,
                        format!(
                            "no build stage in current context: {} comes before the first FROM (only ARG may)",
                            node.cmd.to_uppercase()
                        ),
                    )
                }
            },
        }
    }
    if !any {
        return fail(1, format!("the Dockerfile ({file}) cannot be empty"));
    }
    if df.stages.is_empty() {
        return fail(
            lines.lines.len().max(1),
            "dockerfile contains no stages to build: add a FROM",
        );
    }
    Ok(df)
}
