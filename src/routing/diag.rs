//! Problems found in a routes file, each pointing at the text that caused it.

use std::fmt;
use std::ops::Range;

/// One problem, located by byte span in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range of the offending text.
    pub span: Range<usize>,
    /// What is wrong, including what was expected.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `span`.
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
        }
    }
}

/// Diagnostics of one file, rendered as `file:line:col: message` with the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The file name used in messages.
    pub file: String,
    /// The file's text.
    pub source: String,
    /// Every problem found, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// 1-based line and column of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// `file:line:col` of a diagnostic.
    pub fn location(&self, d: &Diagnostic) -> String {
        let (line, col) = self.line_col(d.span.start);
        format!("{}:{line}:{col}", self.file)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            let (line, col) = self.line_col(d.span.start);
            writeln!(f, "{}:{line}:{col}: {}", self.file, d.message)?;
            if let Some(text) = self.source.lines().nth(line - 1) {
                writeln!(f, "  {line:>4} | {text}")?;
                let width = self.source[d.span.clone()]
                    .lines()
                    .next()
                    .map_or(1, |l| l.chars().count().max(1));
                writeln!(f, "       | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Report {}

/// Cut `text` to at most `max` bytes (on a character boundary), marked with `mark` when cut:
/// messages that quote what a peer sent stay bounded.
pub fn clip(text: &mut String, max: usize, mark: &str) {
    if text.len() <= max {
        return;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(mark);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_a_character_boundary_and_marks_the_cut() {
        let mut short = "abc".to_owned();
        clip(&mut short, 3, "…");
        assert_eq!(short, "abc");
        let mut long = "aéé".to_owned(); // bytes: a, é (2), é (2)
        clip(&mut long, 4, "…");
        assert_eq!(long, "aé…");
    }

    #[test]
    fn renders_file_line_col_and_a_caret_under_the_text() {
        let report = Report {
            file: "routes.toml".into(),
            source: "[server]\nping_interval = \"soon\"\n".into(),
            diagnostics: vec![Diagnostic::new(25..31, "bad duration")],
        };
        assert_eq!(report.line_col(25), (2, 17));
        assert_eq!(
            report.to_string(),
            "routes.toml:2:17: bad duration\n     2 | ping_interval = \"soon\"\n       |                 ^^^^^^\n"
        );
    }
}
