//! `xvs import-keepalived`: a keepalived.conf (global_defs, vrrp_instance,
//! vrrp_sync_group, virtual_server, real_server and their checkers) as xvs YAML, with
//! a line-numbered note for everything that could not be converted.

mod convert;
mod tree;

/// The converted file and what was left behind.
#[derive(Debug)]
pub struct Import {
    pub yaml: String,
    /// `line N: ...`, one per statement not converted (or converted in part).
    pub warnings: Vec<String>,
}

/// Converts keepalived.conf text. `interface` names the director's interface when the
/// file's VRRP instances do not (IPVS needs none; xvs attaches to one).
pub fn import(text: &str, interface: Option<&str>) -> Import {
    let (stmts, stray) = tree::parse(text);
    let (yaml, mut warnings) = convert::convert(&stmts, interface);
    for line in stray {
        warnings.push(format!("line {line}: `}}` closes no block: ignored"));
    }
    // In the file's order (the conversion visits sections by kind).
    warnings.sort_by_key(|w| {
        w.strip_prefix("line ")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    });
    Import { yaml, warnings }
}
