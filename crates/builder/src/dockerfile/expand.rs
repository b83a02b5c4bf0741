//! Docker's word rules: quotes, escapes and `$V`, `${V}`, `${V:-x}`,
//! `${V:+x}` (and `${V-x}`, `${V+x}`, `${V:?msg}`) expansion.

/// Expands and unquotes one raw word. `lookup` gives the value of a
/// variable in scope (None: unset). Errors say what is wrong (an
/// unterminated quote or `${`, a `${V:?msg}` of an unset V).
pub fn word(raw: &str, lookup: &dyn Fn(&str) -> Option<String>, escape: char) -> Result<String, String> {
    let _ = (raw, lookup, escape);
    todo!("helper: syntax")
}

/// Splits raw text into words on unquoted whitespace, each expanded and
/// unquoted (for EXPOSE, VOLUME, ... in shell form).
pub fn words(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, String> {
    let _ = (raw, lookup, escape);
    todo!("helper: syntax")
}
