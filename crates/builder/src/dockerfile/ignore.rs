//! `.dockerignore`: docker's patterns (Go filepath.Match plus `**`),
//! `!` exceptions, later lines winning.

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    _private: (),
}

impl Ignore {
    /// Parses a .dockerignore file's text (comments, blank lines, leading
    /// `/` and `./` ignored, paths cleaned as docker does).
    pub fn parse(text: &str) -> Ignore {
        let _ = text;
        todo!("helper: syntax")
    }

    /// Whether `rel` (a slash-separated path relative to the context root,
    /// no leading slash) is excluded from the context.
    pub fn excluded(&self, rel: &str) -> bool {
        let _ = rel;
        todo!("helper: syntax")
    }
}
