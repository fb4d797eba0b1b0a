//! Every structural mistake of a file at once: unknown keys (with the closest valid one),
//! wrong types, values outside an enumeration, missing keys, duplicate keys. The file's
//! YAML events are walked against the JSON Schema generated from the parser's own types,
//! so the two cannot disagree on what a key is.
//!
//! The parser stops at its first error; this walk runs only when it fails, and is lenient
//! wherever the parser's rules are subtle (number spellings, aliases): it may miss a
//! mistake the parser reports, never invent one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

use crate::error::Diagnostic;

/// A YAML node with the place it starts at (line and column from 1).
#[derive(Debug)]
enum Node {
    Scalar {
        text: String,
        /// Unquoted: only then can it be null.
        plain: bool,
        at: Pos,
    },
    Seq {
        items: Vec<Node>,
        at: Pos,
    },
    Map {
        entries: Vec<(Node, Node)>,
        at: Pos,
    },
    /// An alias (or anything the walk does not resolve): accepted as it is.
    Opaque,
}

type Pos = (u64, u64);

impl Node {
    fn at(&self) -> Pos {
        match self {
            Node::Scalar { at, .. } | Node::Seq { at, .. } | Node::Map { at, .. } => *at,
            Node::Opaque => (0, 0),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { text, plain: true, .. }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn describe(&self) -> String {
        match self {
            Node::Scalar { text, .. } if self.is_null() && text.is_empty() => "nothing".into(),
            Node::Scalar { text, .. } => format!("`{text}`"),
            Node::Seq { .. } => "a list".into(),
            Node::Map { .. } => "a map".into(),
            Node::Opaque => "an alias".into(),
        }
    }
}

/// The first document of `text` as a tree; `None` when it is not valid YAML (the
/// parser's own error says where).
fn tree(text: &str) -> Option<Node> {
    let mut stack: Vec<Node> = Vec::new();
    // A map's key waiting for its value, per open map.
    let mut keys: Vec<Option<Node>> = Vec::new();
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.ok()?;
        let at = (span.start.line() as u64, span.start.col() as u64 + 1);
        let node = match ev {
            Event::Scalar(v, style, _, _) => Node::Scalar {
                text: v.into_owned(),
                plain: style == ScalarStyle::Plain,
                at,
            },
            Event::Alias(_) => Node::Opaque,
            Event::SequenceStart(..) => {
                stack.push(Node::Seq {
                    items: Vec::new(),
                    at,
                });
                keys.push(None);
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Node::Map {
                    entries: Vec::new(),
                    at,
                });
                keys.push(None);
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                keys.pop();
                stack.pop()?
            }
            Event::DocumentEnd => break,
            _ => continue,
        };
        match stack.last_mut() {
            None => return Some(node),
            Some(Node::Seq { items, .. }) => items.push(node),
            Some(Node::Map { entries, .. }) => {
                let pending = keys.last_mut()?;
                match pending.take() {
                    None => *pending = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
            Some(_) => return None,
        }
    }
    None
}

/// Every structural problem of `text` against `schema`.
pub(crate) fn check(text: &str, schema: &Value) -> Vec<Diagnostic> {
    let Some(root) = tree(text) else {
        return Vec::new();
    };
    let mut w = Walk {
        defs: schema
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        out: Vec::new(),
    };
    w.node(&root, schema, "the file");
    w.out.sort_by_key(|d| (d.line, d.column));
    w.out
}

struct Walk {
    defs: Map<String, Value>,
    out: Vec<Diagnostic>,
}

/// What a scalar alternative of a schema takes, in words; `None` for anything else.
fn scalar_kind(alt: &Value) -> Option<&'static str> {
    let format = alt.get("format").and_then(Value::as_str);
    Some(match (alt.get("type").and_then(Value::as_str)?, format) {
        ("string", Some("ipv4")) => "an IPv4 address",
        ("string", Some("ip")) => "an IP address",
        ("integer", _) => "a whole number",
        ("number", _) => "a number",
        ("boolean", _) => "true or false",
        _ => return None,
    })
}

impl Walk {
    fn error(&mut self, at: Pos, message: String, hint: Option<String>) {
        let mut d = Diagnostic::new(at.0, at.1, message);
        d.hint = hint;
        self.out.push(d);
    }

    /// `schema` with its `$ref` followed.
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix("#/$defs/")
                .and_then(|name| self.defs.get(name))
                .unwrap_or(schema),
            None => schema,
        }
    }

    fn node(&mut self, node: &Node, schema: &Value, path: &str) {
        if matches!(node, Node::Opaque) {
            return;
        }
        let schema = self.resolve(schema).clone();
        if let Some(alts) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            return self.alternatives(node, alts, path);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return,
        };
        if node.is_null() && types.contains(&"null") {
            return;
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let allowed: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            return self.one_of(node, &allowed, path);
        }
        if types.contains(&"object") {
            self.map(node, &schema, path);
        } else if types.contains(&"array") {
            match node {
                Node::Seq { items, .. } => {
                    let item = schema.get("items").cloned().unwrap_or(Value::Bool(true));
                    for (i, n) in items.iter().enumerate() {
                        self.node(n, &item, &format!("{path}[{i}]"));
                    }
                }
                other => self.error(
                    other.at(),
                    format!("{path} must be a list, not {}", other.describe()),
                    Some("write it as `[a, b]` or as `- a` lines".into()),
                ),
            }
        } else {
            let kind = types.iter().copied().find(|t| *t != "null").unwrap_or("");
            let format = schema.get("format").and_then(Value::as_str);
            self.scalar(node, kind, format, path);
        }
    }

    /// `anyOf`/`oneOf`: an optional value, or an enumeration with a description per value.
    fn alternatives(&mut self, node: &Node, alts: &[Value], path: &str) {
        let consts: Vec<&str> = alts
            .iter()
            .filter_map(|a| a.get("const").and_then(Value::as_str))
            .collect();
        if !consts.is_empty() && consts.len() == alts.len() {
            return self.one_of(node, &consts, path);
        }
        let is_null = |a: &Value| a.get("type").and_then(Value::as_str) == Some("null");
        if node.is_null() && alts.iter().any(is_null) {
            return;
        }
        let rest: Vec<&Value> = alts.iter().filter(|a| !is_null(a)).collect();
        // Scalars of several kinds (a netmask or a prefix length): name them all.
        let kinds: Vec<&str> = rest.iter().filter_map(|a| scalar_kind(a)).collect();
        if kinds.len() > 1 && kinds.len() == rest.len() {
            let fits = rest.iter().any(|alt| {
                let mut trial = Walk {
                    defs: self.defs.clone(),
                    out: Vec::new(),
                };
                trial.node(node, alt, path);
                trial.out.is_empty()
            });
            if !fits {
                self.error(
                    node.at(),
                    format!(
                        "{path} must be {}, not {}",
                        kinds.join(" or "),
                        node.describe()
                    ),
                    None,
                );
            }
            return;
        }
        // The first alternative the node fits; else the first one's complaints.
        let mut first = None;
        for alt in &rest {
            let mut trial = Walk {
                defs: self.defs.clone(),
                out: Vec::new(),
            };
            trial.node(node, alt, path);
            if trial.out.is_empty() {
                return;
            }
            first.get_or_insert(trial.out);
        }
        self.out.extend(first.unwrap_or_default());
    }

    fn one_of(&mut self, node: &Node, allowed: &[&str], path: &str) {
        let Node::Scalar { text, at, .. } = node else {
            return self.error(
                node.at(),
                format!("{path} must be one of {}", list(allowed)),
                None,
            );
        };
        // Case is forgiven here (the parser takes `master` for `MASTER`); the parser
        // still reports a spelling it refuses.
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(text)) {
            return;
        }
        let hint = closest(text, allowed.iter().copied())
            .map(|c| format!("did you mean `{c}`?"))
            .unwrap_or_else(|| "use one of the values listed; see docs/configuration.md".into());
        self.error(
            *at,
            format!("{path}: `{text}` is not one of {}", list(allowed)),
            Some(hint),
        );
    }

    fn scalar(&mut self, node: &Node, kind: &str, format: Option<&str>, path: &str) {
        let Node::Scalar { text, at, .. } = node else {
            let what = match kind {
                "integer" => "a whole number",
                "number" => "a number",
                "boolean" => "true or false",
                _ => "a single value",
            };
            return self.error(
                node.at(),
                format!("{path} must be {what}, not {}", node.describe()),
                None,
            );
        };
        let t = text.trim();
        let (ok, what, hint) = match kind {
            "integer" => (
                int(t).is_some(),
                "a whole number",
                "digits only, without quotes or a unit",
            ),
            "number" => (
                int(t).is_some() || t.parse::<f64>().is_ok(),
                "a number",
                "seconds, such as 1 or 0.5",
            ),
            "boolean" => (
                matches!(t.to_ascii_lowercase().as_str(), "true" | "false"),
                "true or false",
                "write true or false",
            ),
            "string" if format == Some("ipv4") => (
                t.parse::<Ipv4Addr>().is_ok(),
                "an IPv4 address",
                "such as 10.0.0.100",
            ),
            "string" if format == Some("ip") => (
                t.parse::<IpAddr>().is_ok(),
                "an IP address",
                "IPv4 or IPv6, such as 10.0.0.100 or 2001:db8::100",
            ),
            _ => (true, "", ""),
        };
        if !ok {
            self.error(
                *at,
                format!("{path} must be {what}, not {}", node.describe()),
                Some(hint.into()),
            );
        }
    }

    fn map(&mut self, node: &Node, schema: &Value, path: &str) {
        let Node::Map { entries, at } = node else {
            return self.error(
                node.at(),
                format!("{path} must be a map of keys, not {}", node.describe()),
                None,
            );
        };
        let empty = Map::new();
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for (k, v) in entries {
            let Node::Scalar {
                text: key, at: kat, ..
            } = k
            else {
                self.error(k.at(), format!("{path}: a key must be a name"), None);
                continue;
            };
            if let Some(line) = seen.insert(key.as_str(), kat.0) {
                self.error(
                    *kat,
                    format!("{path}: key `{key}` is already given at line {line}"),
                    Some("give each key once; the parser refuses duplicates".into()),
                );
                continue;
            }
            self.entry(key, *kat, v, props, closed, path);
        }
        self.required(schema, props, &seen, *at, path);
    }

    /// The value of `key` (at `kat`) against its schema among `props`; a key not among
    /// them is said unknown when the map is `closed`.
    fn entry(
        &mut self,
        key: &str,
        kat: Pos,
        v: &Node,
        props: &Map<String, Value>,
        closed: bool,
        path: &str,
    ) {
        let sub = if path == "the file" {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        match props.get(key) {
            Some(p) => self.node(v, p, &sub),
            None if key == "<<" => {}
            None if closed => self.unknown_key(key, kat, props, path),
            None => {}
        }
    }

    fn unknown_key(&mut self, key: &str, kat: Pos, props: &Map<String, Value>, path: &str) {
        let hint = keepalived_name(key)
            .map(|k| format!("keepalived's `{key}` is `{k}` here"))
            .or_else(|| {
                closest(key, props.keys().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?"))
            })
            .unwrap_or_else(|| {
                let names: Vec<&str> = props.keys().map(String::as_str).collect();
                format!("valid keys here: {}", names.join(", "))
            });
        let place = if path == "the file" {
            "at the top level".to_string()
        } else {
            format!("in {path}")
        };
        self.error(kat, format!("unknown key `{key}` {place}"), Some(hint));
    }

    /// Each key `schema` requires that the map (at `at`) lacks.
    fn required(
        &mut self,
        schema: &Value,
        props: &Map<String, Value>,
        seen: &HashMap<&str, u64>,
        at: Pos,
        path: &str,
    ) {
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !seen.contains_key(req) {
                self.error(
                    at,
                    format!("{path} lacks the key `{req}`"),
                    props
                        .get(req)
                        .and_then(|p| p.get("description"))
                        .and_then(Value::as_str)
                        .map(|d| format!("{req}: {}", d.replace('\n', " "))),
                );
            }
        }
    }
}

/// A whole number as YAML writes one (decimal with sign or underscores, 0x, 0o).
fn int(t: &str) -> Option<i64> {
    let t = t.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let v = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn list(allowed: &[&str]) -> String {
    allowed
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .map(|c| (distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance (insertions, deletions, substitutions), with adjacent swaps as one.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// keepalived's spelling of a key that xvs names otherwise.
fn keepalived_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "lb_algo" => "scheduler",
        "lb_kind" => "forwarding",
        "real_server" => "real_servers",
        "virtual_server" => "virtual_servers",
        "vrrp_instance" => "vrrp_instances",
        "virtual_ipaddress" => "virtual_ipaddresses",
        "track_interface" => "track_interfaces",
        "nb_get_retry" => "retry",
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => "health_check",
        "unicast_peer" => "unicast_peers",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<Diagnostic> {
        check(text, &crate::schema::json_schema())
    }

    #[test]
    fn distance_counts_edits_and_swaps() {
        assert_eq!(distance("delay_loop", "delay_loop"), 0);
        assert_eq!(distance("dealy_loop", "delay_loop"), 1);
        assert_eq!(distance("delay_lop", "delay_loop"), 1);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(
            closest("schedular", ["scheduler", "ports"].into_iter()),
            Some("scheduler")
        );
        assert_eq!(closest("zzz", ["scheduler", "ports"].into_iter()), None);
    }

    #[test]
    fn a_valid_file_has_no_structural_error() {
        for f in ["dr.yaml", "maglev.yaml", "persistence.yaml", "vrrp-dr.yaml"] {
            let path = format!("{}/examples/{f}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(errors(&text), vec![], "{f}");
        }
    }

    #[test]
    fn integers_as_yaml_writes_them() {
        assert_eq!(int("80"), Some(80));
        assert_eq!(int("-3"), Some(-3));
        assert_eq!(int("0x1F"), Some(31));
        assert_eq!(int("1_000"), Some(1000));
        assert_eq!(int("8o"), None);
    }
}
