//! Configuration errors as an operator reads them: `file:line:column: message`, then a hint.

use std::fmt;

/// One problem in a configuration file. Line and column start at 1; 0 means unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    pub fn single(file: &str, d: Diagnostic) -> Self {
        ConfigErrors {
            file: file.to_string(),
            diagnostics: vec![d],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, d.line, d.column, d.message
            )?;
            if let Some(h) = &d.hint {
                write!(f, "\n  hint: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A YAML or type error from the parser, with its position and a hint where one helps.
pub(crate) fn from_yaml(e: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    // The parser's message may carry its own snippet after the first line; the position
    // is ours to print.
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    let message = strip_position(first).to_string();
    let d = Diagnostic::new(line, column, message.clone());
    if message.contains("invalid i64") || message.contains("invalid u") {
        d.hint("expected a whole number")
    } else if message.contains("IPv4") {
        d.hint("expected an IPv4 address such as 10.0.0.100")
    } else if message.contains("unknown field") {
        d.hint("remove the key or fix its spelling; the valid keys are listed above")
    } else if message.contains("missing field") {
        d.hint("add the key; see config/examples/ for a complete file")
    } else if message.contains("unknown variant") {
        d.hint("use one of the values listed")
    } else {
        d
    }
}

/// Drops the parser's own "error: line N column M: " prefix: the position is printed once,
/// in front, as file:line:column.
fn strip_position(msg: &str) -> &str {
    let rest = msg.strip_prefix("error: ").unwrap_or(msg);
    match rest.strip_prefix("line ") {
        Some(r) => r.split_once(": ").map_or(rest, |(_, m)| m),
        None => rest,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_the_parsers_position() {
        assert_eq!(
            super::strip_position("error: line 3 column 4: bad thing"),
            "bad thing"
        );
        assert_eq!(super::strip_position("plain"), "plain");
    }
}
