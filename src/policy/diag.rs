//! Errors in a policy file, positioned as `file:line:column` with the line quoted.

use std::fmt;
use std::ops::Range;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem has no position.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    /// The offending source line and the width of the marked part.
    snippet: Option<(String, usize)>,
}

impl Diagnostic {
    /// Positions `message` at byte range `span` of `text`.
    pub(crate) fn at(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: String,
    ) -> Diagnostic {
        let Some(span) = span else {
            return Diagnostic {
                file: file.to_string(),
                line: 0,
                column: 0,
                message,
                snippet: None,
            };
        };
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        let src_line = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            message,
            snippet: Some((src_line, width)),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some((src, width)) = &self.snippet {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            let indent: String = src
                .chars()
                .take(self.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{pad} |\n{num} | {src}\n{pad} | {indent}{}",
                "^".repeat(*width)
            )?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Every problem found, in file order.
    #[error("{}", display_all(.0))]
    Invalid(Vec<Diagnostic>),
}

impl PolicyError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) => d,
            PolicyError::Io { .. } => &[],
        }
    }
}

fn display_all(d: &[Diagnostic]) -> String {
    let mut s = String::new();
    for (i, x) in d.iter().enumerate() {
        // The first line is prefixed by whoever prints the error.
        if i > 0 {
            s.push_str("\n\nerror: ");
        }
        s.push_str(&x.to_string());
    }
    if d.len() > 1 {
        s.push_str(&format!(
            "\n\n{} errors; the policy was not loaded",
            d.len()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let start = text.find("\"x\"").unwrap();
        let d = Diagnostic::at("f.toml", text, Some(start..start + 3), "bad".into());
        assert_eq!((d.line, d.column), (2, 6));
        let shown = d.to_string();
        assert!(shown.starts_with("f.toml:2:6: bad"), "{shown}");
        assert!(shown.contains("2 | bé = \"x\""), "{shown}");
        assert!(shown.ends_with("|      ^^^"), "{shown}");
    }

    #[test]
    fn span_past_end_is_clamped() {
        let d = Diagnostic::at("f", "x", Some(5..9), "m".into());
        assert_eq!(d.line, 1);
    }
}
