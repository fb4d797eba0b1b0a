//! The exposition formats: the Prometheus text format (0.0.4) as it is written, and the
//! same text as OpenMetrics 1.0 for a scraper that asks for it.

use std::fmt::Write;

/// How one metric is read from a counters struct.
pub type Read<T> = fn(&T) -> u64;
/// A metric family: name, type, help, and how to read it.
pub type Family<T> = (&'static str, &'static str, &'static str, Read<T>);

/// The exposition being written.
pub struct Out(pub String);

impl Out {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.sample_text(name, labels, &value.to_string());
    }

    pub fn sample_text(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
        }
    }
}

/// A label value as the exposition formats require: backslash, double quote and line
/// feed escaped (a name with a newline would otherwise end the sample mid-line).
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The text format as OpenMetrics 1.0: a counter family is named without its `_total`
/// (its samples keep it), and the exposition ends with `# EOF`.
pub fn to_openmetrics(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = match name.strip_suffix("_total") {
                    Some(base) if counters.contains(name) => base,
                    _ => name,
                };
                let _ = writeln!(out, "{p}{name} {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_in_label_values_are_escaped() {
        let mut o = Out(String::new());
        o.sample("x", &[("virtual_server", "a\nb 1\nc\\\"")], 2);
        assert_eq!(o.0, "x{virtual_server=\"a\\nb 1\\nc\\\\\\\"\"} 2\n");
        assert_eq!(o.0.lines().count(), 1);
    }

    #[test]
    fn labels_are_escaped_and_openmetrics_drops_total_from_counter_families() {
        let mut o = Out(String::new());
        o.family("x_total", "counter", "X.");
        o.sample("x_total", &[("a", "q\"uote\\")], 3);
        o.family("g", "gauge", "G.");
        o.sample("g", &[], 1);
        assert_eq!(
            o.0,
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"q\\\"uote\\\\\"} 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
        let om = to_openmetrics(&o.0);
        assert!(
            om.starts_with("# HELP x X.\n# TYPE x counter\nx_total{"),
            "{om}"
        );
        assert!(om.contains("# TYPE g gauge\n"));
        assert!(om.ends_with("# EOF\n"));
    }
}
