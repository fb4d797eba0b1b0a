//! `xvs import-keepalived`: a keepalived.conf (global_defs, vrrp_instance,
//! vrrp_sync_group, virtual_server, real_server and their checkers) as xvs YAML, with
//! a line-numbered note for everything that could not be converted.

mod convert;
mod email;
mod tree;

pub use crate::import::Import;

/// Converts keepalived.conf text. `interface` names the director's interface when the
/// file's VRRP instances do not (IPVS needs none; xvs attaches to one).
pub fn import(text: &str, interface: Option<&str>) -> Import {
    let (stmts, stray) = tree::parse(text);
    let (yaml, mut warnings) = convert::convert(&stmts, interface);
    for line in stray {
        warnings.push(format!("line {line}: `}}` closes no block: ignored"));
    }
    crate::import::in_file_order(&mut warnings);
    Import { yaml, warnings }
}
