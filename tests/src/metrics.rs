//! A `/metrics` scrape as a map, for tests that compare counters before and after.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::Lab;

/// `name{labels}` → value, for every sample of a text exposition.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Scrapes xvs's `/metrics` at 127.0.0.1:9147 in namespace `host`.
pub fn scrape(lab: &Lab, host: &str) -> Result<BTreeMap<String, f64>> {
    let text = lab
        .sh(host, "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .context("scraping /metrics")?;
    Ok(parse(&text))
}

/// How much every sample whose key starts with `prefix` grew from `a` to `b`, by key.
pub fn deltas(
    a: &BTreeMap<String, f64>,
    b: &BTreeMap<String, f64>,
    prefix: &str,
) -> BTreeMap<String, f64> {
    b.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v - a.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}
