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

/// One key of a section of the reference.
struct Row {
    key: String,
    /// In markdown: `code` spans, `\|` between alternatives.
    kind: String,
    required: bool,
    meaning: String,
}

struct Section {
    title: &'static str,
    description: Option<String>,
    rows: Vec<Row>,
}

/// Every key of every section, from the schema: what both renderings show.
fn sections() -> Vec<Section> {
    let schema = json_schema();
    let empty = serde_json::Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for (def, title) in SECTIONS {
        let d = if def.is_empty() {
            &schema
        } else {
            match defs.get(*def) {
                Some(d) => d,
                None => continue,
            }
        };
        let required: Vec<&str> = d
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let rows = d
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .iter()
            .map(|(key, p)| Row {
                key: key.clone(),
                kind: type_name(p, defs),
                required: required.contains(&key.as_str()),
                meaning: one_line(p.get("description").and_then(Value::as_str).unwrap_or("")),
            })
            .collect();
        out.push(Section {
            title,
            description: d.get("description").and_then(Value::as_str).map(one_line),
            rows,
        });
    }
    out
}

/// The reference's preamble, in markdown.
const PREAMBLE: &str = "Durations are seconds. \"Restart-only\" keys are read at start: a reload \
     that changes `interface` is refused, one that changes another is applied except for \
     that key, and says so in the log.";

/// `docs/configuration.md`: every key of every section, from the schema.
pub fn reference_markdown() -> String {
    let mut s = format!(
        "# xvs configuration reference\n\n\
         Generated from the parser's types by `XVS_BLESS=1 cargo test -p xvs-config --test schema`;\n\
         do not edit by hand. The same types give the JSON Schema `config/xvs.schema.json` \
         (`xvs schema` prints it) for editors. Examples: `config/examples/`.\n{PREAMBLE}\n"
    );
    for sec in sections() {
        s.push_str(&format!("\n## {}\n\n", sec.title));
        if let Some(desc) = &sec.description {
            s.push_str(&format!("{desc}\n\n"));
        }
        s.push_str("| key | type | required | meaning |\n|---|---|---|---|\n");
        for r in &sec.rows {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                r.key,
                r.kind,
                if r.required { "yes" } else { "" },
                r.meaning.replace('|', "\\|")
            ));
        }
    }
    s
}

/// Markdown text as roff: `code` in bold, roff's escapes escaped, no line starting with
/// a control character.
fn roff_text(md: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for c in md.replace("\\|", "|").chars() {
        match c {
            '`' => {
                out.push_str(if code { "\\fR" } else { "\\fB" });
                code = !code;
            }
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            c => out.push(c),
        }
    }
    if code {
        out.push_str("\\fR");
    }
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// `xvs.yaml(5)`: the same reference as a manual page.
pub fn reference_man(version: &str) -> String {
    let mut s = format!(
        ".TH XVS.YAML 5 \"\" \"xvs {version}\" \"File Formats Manual\"\n\
         .SH NAME\nxvs.yaml \\- configuration of xvs, the XDP Virtual Server\n\
         .SH SYNOPSIS\n/etc/xvs/xvs.yaml\n\
         .SH DESCRIPTION\n\
         The YAML file \\fBxvs run \\-c\\fR reads: the interface it serves, its virtual servers \
         (keepalived's \\fBvirtual_server\\fR blocks, \\fBipvsadm \\-A\\fR) and VRRP instances. \
         \\fBxvs check \\-c\\fR validates it and names every mistake with its line and column; \
         \\fBxvs schema\\fR prints its JSON Schema for editors; \\fBxvs import\\-keepalived\\fR and \
         \\fBxvs import\\-ipvsadm\\fR write one from existing setups.\n.PP\n{}\n",
        roff_text(PREAMBLE)
    );
    for sec in sections() {
        s.push_str(&format!(".SH {}\n", roff_text(&sec.title.to_uppercase())));
        if let Some(desc) = &sec.description {
            s.push_str(&format!("{}\n", roff_text(desc)));
        }
        for r in &sec.rows {
            s.push_str(&format!(
                ".TP\n\\fB{}\\fR ({}{})\n{}\n",
                roff_text(&r.key),
                roff_text(&r.kind),
                if r.required { ", required" } else { "" },
                roff_text(&r.meaning)
            ));
        }
    }
    s.push_str(".SH SEE ALSO\n\\fBxvs\\fR(8), \\fBkeepalived.conf\\fR(5), \\fBipvsadm\\fR(8)\n");
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
        Some("string") if p.get("format").and_then(Value::as_str) == Some("ip") => {
            "IP address".into()
        }
        Some("object") => "map".into(),
        Some(t) => t.into(),
        None => "any".into(),
    }
}
