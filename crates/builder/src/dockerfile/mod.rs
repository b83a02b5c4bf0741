//! Dockerfile syntax and the word rules shared by its instructions.

pub mod expand;
pub mod ignore;
pub mod model;
mod parse;
#[cfg(test)]
mod tests;

pub use model::*;

/// A syntax error, located. Displays as docker's
/// `dockerfile parse error on line LINE: MESSAGE` prefixed by the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: dockerfile parse error on line {line}: {message}")]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parses a whole Dockerfile. `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, SyntaxError> {
    parse::parse(text, file).map(|(d, _)| d)
}

/// [`parse`], plus docker's parser warnings (each a message to print as
/// `[WARNING]: {message}`; after them docker prints
/// [`EMPTY_CONTINUATION_NOTE`] once when there were any).
pub fn parse_with_warnings(
    text: &str,
    file: &str,
) -> Result<(Dockerfile, Vec<String>), SyntaxError> {
    parse::parse(text, file)
}

/// Parses one ONBUILD trigger as stored in a base image's config (e.g.
/// `RUN echo hi`) into the instruction it runs. `file` and `line` locate
/// it in errors (the FROM that brought it in). The text must be exactly
/// one instruction, not FROM, ONBUILD or MAINTAINER (as docker), so a
/// hostile image cannot smuggle extra steps or stages in.
pub fn parse_trigger(text: &str, file: &str, line: usize) -> Result<Instruction, SyntaxError> {
    let fail = |message: String| SyntaxError {
        file: file.to_string(),
        line,
        message,
    };
    let (first, _) = text
        .trim_start()
        .split_once(char::is_whitespace)
        .unwrap_or((text.trim(), ""));
    let first = first.to_uppercase();
    if matches!(first.as_str(), "FROM" | "MAINTAINER" | "ONBUILD") {
        return Err(fail(format!("{first} isn't allowed as an ONBUILD trigger")));
    }
    let df = parse(&format!("FROM scratch\n{text}\n"), file).map_err(|e| fail(e.message))?;
    let mut ins: Vec<Instruction> = df.stages.into_iter().flat_map(|s| s.instructions).collect();
    if ins.len() != 1 || !df.args.is_empty() {
        return Err(fail(format!(
            "the ONBUILD trigger {text:?} is not exactly one instruction"
        )));
    }
    let mut one = ins.remove(0);
    one.line = line;
    Ok(one)
}

/// The note docker prints after empty-continuation warnings.
pub const EMPTY_CONTINUATION_NOTE: &str =
    "[WARNING]: Empty continuation lines will become errors in a future release.";
