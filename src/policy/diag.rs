//! Errors in a policy, each at its [`Origin`]: `file:line:column` with the
//! line quoted for a TOML file, `file:$.json.path` for an imported one.

use std::fmt;

use super::model::Origin;

/// One problem in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: Origin,
    /// The origin's 1-based line in a TOML file; 0 when it has none.
    pub line: usize,
    /// The origin's 1-based column in a TOML file, in characters; 0 when it
    /// has none.
    pub column: usize,
    pub message: String,
    /// The source line a TOML origin points into, quoted under the message.
    quoted: Option<String>,
}

impl Diagnostic {
    pub fn new(origin: Origin, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            line: origin.line() as usize,
            column: origin.column() as usize,
            origin,
            message: message.into(),
            quoted: None,
        }
    }

    /// The file, when the origin names one.
    pub fn file(&self) -> Option<&str> {
        self.origin.file()
    }

    /// Quotes the line of `text` (the TOML file the origin names) that the
    /// problem is on.
    pub(crate) fn quoting(mut self, text: &str) -> Diagnostic {
        if let Some(l) = self.line.checked_sub(1) {
            self.quoted = text
                .split('\n')
                .nth(l)
                .map(|s| s.trim_end_matches('\r').to_string());
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin == Origin::None {
            return f.write_str(&self.message);
        }
        write!(f, "{}: {}", self.origin, self.message)?;
        if let (Some(src), Origin::Toml { column, width, .. }) = (&self.quoted, &self.origin) {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            let indent: String = src
                .chars()
                .take(*column as usize - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{pad} |\n{num} | {src}\n{pad} | {indent}{}",
                "^".repeat(*width as usize)
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

    /// Quotes the source lines of the TOML file `text` under its problems.
    pub(crate) fn quoting(self, text: &str) -> PolicyError {
        match self {
            PolicyError::Invalid(d) => {
                PolicyError::Invalid(d.into_iter().map(|d| d.quoting(text)).collect())
            }
            io => io,
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
    fn json_origins_name_the_file_and_path() {
        let d = Diagnostic::new(
            Origin::json("sgs.json", "$.SecurityGroups[3].IpPermissions[0]"),
            "bad",
        );
        assert_eq!(
            d.to_string(),
            "sgs.json:$.SecurityGroups[3].IpPermissions[0]: bad"
        );
        assert_eq!((d.line, d.column, d.file()), (0, 0, Some("sgs.json")));
        assert_eq!(Diagnostic::new(Origin::None, "m").to_string(), "m");
    }
}
