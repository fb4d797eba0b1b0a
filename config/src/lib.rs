//! xvs's configuration: the YAML schema, and validation that points at file:line:column
//! with a hint for every mistake it finds (not only the first).
//!
//! `raw` is what the YAML deserialises into (with source spans); `model` is the validated
//! configuration the daemon uses; `validate` turns one into the other.

#![forbid(unsafe_code)]

mod error;
mod import;
pub mod ipvsadm;
pub mod keepalived;
pub mod model;
mod raw;
pub mod schema;
pub mod script;
mod spanned;
mod structure;
mod validate;

pub use error::{ConfigErrors, Diagnostic};
pub use import::Import;
pub use model::*;

use std::path::Path;

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            &file,
            Diagnostic::new(0, 0, format!("cannot read the file: {e}")),
        )
    })?;
    parse(&file, &text)
}

/// Parses and validates configuration text; `file` names it in error messages.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let raw: raw::RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigErrors {
        file: file.to_string(),
        diagnostics: structural(text, error::from_yaml(&e)),
    })?;
    validate::validate(raw).map_err(|diagnostics| ConfigErrors {
        file: file.to_string(),
        diagnostics,
    })
}

/// The parser stops at its first error: walk the file against the schema for every other
/// one. The parser's own error is kept unless the walk reports that line already.
fn structural(text: &str, first: Diagnostic) -> Vec<Diagnostic> {
    let mut all = structure::check(text, &schema::json_schema());
    if !all.iter().any(|d| d.line == first.line) {
        all.push(first);
        all.sort_by_key(|d| (d.line, d.column));
    }
    all
}
