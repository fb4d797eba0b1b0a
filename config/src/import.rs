//! What an importer (`import-keepalived`, `import-ipvsadm`) hands back.

/// The converted file and what was left behind.
#[derive(Debug)]
pub struct Import {
    pub yaml: String,
    /// `line N: ...`, one per statement not converted (or converted in part).
    pub warnings: Vec<String>,
}

/// A string as YAML reads it back unchanged (a JSON string is a YAML double-quoted one).
pub(crate) fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Sorts `line N: ...` warnings into the file's order (a conversion visits by kind).
pub(crate) fn in_file_order(warnings: &mut [String]) {
    warnings.sort_by_key(|w| {
        w.strip_prefix("line ")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    });
}
