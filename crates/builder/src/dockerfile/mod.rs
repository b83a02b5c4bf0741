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

/// The note docker prints after empty-continuation warnings.
pub const EMPTY_CONTINUATION_NOTE: &str =
    "[WARNING]: Empty continuation lines will become errors in a future release.";
