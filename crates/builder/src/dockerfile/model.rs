//! pier's model of a Dockerfile. Strings marked "raw" are as written
//! (quotes kept, variables not expanded): the builder expands them with
//! [`super::expand`] against the ARG/ENV values in scope at that step,
//! for the instructions docker expands (FROM, ADD, COPY, ENV, EXPOSE,
//! LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults).

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`# escape=` directive), `\` by default.
    pub escape: char,
    /// ARGs declared before the first FROM (usable in FROM lines, and in
    /// a stage after an `ARG NAME` without value re-declares them).
    pub args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Raw default value.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lowercased as docker does.
    pub name: Option<String>,
    /// Raw image reference (`scratch`, `busybox`, `$BASE`, another stage's name).
    pub base: String,
    /// Raw `--platform` value.
    pub platform: Option<String>,
    /// 1-based line of the FROM.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written, continuation lines joined with the
    /// escape and newline removed and comment lines inside dropped (what
    /// docker shows in `Step N/M : ...` and uses in history).
    pub original: String,
    pub kind: Kind,
}

/// A command in shell form (run with the SHELL, default `/bin/sh -c`) or
/// exec (JSON) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Raw text after the instruction and its flags.
    Shell(String),
    Exec(Vec<String>),
}

/// A heredoc body (`<<EOF`, `<<-EOF`, `<<"EOF"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, also the file name for COPY/ADD heredocs.
    pub name: String,
    /// The body, each line ending in `\n`; for `<<-` the leading tabs
    /// of each line are already removed.
    pub content: String,
    /// Variables are expanded in the body (unquoted delimiter).
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Raw sources (paths in the context or the `from` stage/image, globs,
    /// URLs for ADD, heredoc names). A source written `<<NAME` (shell form
    /// only) is given as `NAME`, and `heredocs` holds an entry of that
    /// name with its body.
    pub sources: Vec<String>,
    /// Raw destination.
    pub dest: String,
    /// Raw `--from` (stage name, stage index, image). Flag values have
    /// their quotes and backslashes removed already (docker's flag
    /// parser does that), but `$` is left for expansion.
    pub from: Option<String>,
    /// Raw `--chown`.
    pub chown: Option<String>,
    /// Raw `--chmod`.
    pub chmod: Option<String>,
    pub link: bool,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// None for `HEALTHCHECK NONE`.
    pub test: Option<Command>,
    /// Raw durations and count from the flags.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Run {
        command: Command,
        heredocs: Vec<Heredoc>,
        /// Flags (`--mount`, `--network`, `--security`) as (name, raw value),
        /// in order (`--mount` may repeat).
        flags: Vec<(String, String)>,
    },
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    /// Raw path.
    Workdir(String),
    /// (raw key, raw value) pairs; `ENV k v` is one pair.
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    /// (raw key, raw value) pairs.
    Label(Vec<(String, String)>),
    /// Raw words (`80/tcp`, `$PORT`).
    Expose(Vec<String>),
    /// Raw user[:group].
    User(String),
    /// Raw paths (JSON or space-separated form).
    Volume(Vec<String>),
    /// Raw signal.
    StopSignal(String),
    Healthcheck(Healthcheck),
    Copy(Copy),
    Add {
        copy: Copy,
        /// Raw `--checksum`.
        checksum: Option<String>,
        keep_git_dir: bool,
    },
    /// The trigger instruction's text, as stored in the image config.
    Onbuild(String),
    Maintainer(String),
}
