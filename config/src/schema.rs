//! The JSON Schema of the file, generated from the same types the parser fills: editors
//! use it for completion and checks; `structure` walks a file against it to report every
//! misplaced key and wrong type at once.

use serde_json::Value;

use crate::raw::RawConfig;

/// The configuration's JSON Schema (draft 2020-12).
pub fn json_schema() -> Value {
    schemars::schema_for!(RawConfig).to_value()
}

/// The sections of the reference, in reading order: (schema definition, title).
const SECTIONS: &[(&str, &str)] = &[
    ("", "Top level"),
    ("RawTimeouts", "timeouts"),
    ("RawVirtualServer", "virtual_servers[]"),
    ("RawRealServer", "real_servers[]"),
    ("RawHealthCheck", "health_check"),
    ("RawSorryServer", "sorry_server"),
    ("RawQuorumVrrp", "quorum_vrrp"),
    ("RawVrrpInstance", "vrrp_instances[]"),
    ("RawAuth", "authentication"),
    ("RawSyncGroup", "vrrp_sync_groups[]"),
];

/// `docs/configuration.md`: every key of every section, from the schema.
pub fn reference_markdown() -> String {
    let schema = json_schema();
    let empty = serde_json::Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut s = String::from(
        "# xvs configuration reference\n\n\
         Generated from the parser's types by `XVS_BLESS=1 cargo test -p xvs-config --test schema`;\n\
         do not edit by hand. The same types give the JSON Schema `config/xvs.schema.json` \
         (`xvs schema` prints it) for editors. Examples: `config/examples/`.\n\
         Durations are seconds. \"Restart-only\" keys are read at start: a reload that \
         changes `interface` is refused, one that changes another is applied except for \
         that key, and says so in the log.\n",
    );
    for (def, title) in SECTIONS {
        let d = if def.is_empty() {
            &schema
        } else {
            match defs.get(*def) {
                Some(d) => d,
                None => continue,
            }
        };
        s.push_str(&format!("\n## {title}\n\n"));
        if let Some(desc) = d.get("description").and_then(Value::as_str) {
            s.push_str(&format!("{}\n\n", one_line(desc)));
        }
        s.push_str("| key | type | required | meaning |\n|---|---|---|---|\n");
        let required: Vec<&str> = d
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (key, p) in d
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
        {
            let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
            s.push_str(&format!(
                "| `{key}` | {} | {} | {} |\n",
                type_name(p, defs),
                if required.contains(&key.as_str()) {
                    "yes"
                } else {
                    ""
                },
                one_line(desc).replace('|', "\\|")
            ));
        }
    }
    s
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A field's type as a reader says it: `integer`, `list of IPv4 address`, `wrr | rr…`.
fn type_name(p: &Value, defs: &serde_json::Map<String, Value>) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return match defs.get(name) {
            Some(d) if d.get("properties").is_some() => "map".into(),
            Some(d) => type_name(d, defs),
            None => name.into(),
        };
    }
    if let Some(v) = p.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = v
            .iter()
            .filter_map(Value::as_str)
            .map(|s| format!("`{s}`"))
            .collect();
        return names.join(" \\| ");
    }
    if let Some(alts) = p.get("anyOf").or_else(|| p.get("oneOf")) {
        let names: Vec<String> = alts
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .map(|a| match a.get("const").and_then(Value::as_str) {
                Some(c) => format!("`{c}`"),
                None => type_name(a, defs),
            })
            .collect();
        return names.join(" \\| ");
    }
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.iter().find(|t| **t != "null").copied() {
        Some("array") => format!(
            "list of {}",
            p.get("items").map_or("any".into(), |i| type_name(i, defs))
        ),
        Some("string") if p.get("format").and_then(Value::as_str) == Some("ipv4") => {
            "IPv4 address".into()
        }
        Some("object") => "map".into(),
        Some(t) => t.into(),
        None => "any".into(),
    }
}
