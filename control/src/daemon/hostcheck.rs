//! What only this host can say about a valid file: whether DR real servers are on the
//! director's segment. DR rewrites the MAC alone, so a real server the kernel reaches
//! through a gateway, or on another interface, would get the gateway's frames: IPVS has
//! the same rule. Warnings, not errors: a host route can make an address on-link.

use xvs_config::{Config, Forwarding};

use crate::daemon::Ifaces;
use crate::sys::netlink;

/// One line per DR real server that is not directly reachable on the interface.
pub fn warnings(cfg: &Config, ifaces: &Ifaces) -> Vec<String> {
    let mut out = Vec::new();
    for vs in cfg
        .virtual_servers
        .iter()
        .filter(|v| v.forwarding == Forwarding::Dr)
    {
        for rs in &vs.real_servers {
            let iface = &ifaces.external;
            match netlink::route_get(rs.address) {
                Ok(r) if r.gateway.is_none() && r.oif == iface.ifindex => {}
                Ok(r) => out.push(format!(
                    "DR real server {} of {:?} is reached {} on ifindex {}, not directly on {}: DR needs real servers on the director's segment (`forwarding: tun` routes)",
                    rs.address,
                    vs.name,
                    r.gateway.map_or("directly".into(), |g| format!("through {g}")),
                    r.oif,
                    iface.name
                )),
                Err(e) => out.push(format!(
                    "DR real server {} of {:?}: no route ({e})",
                    rs.address, vs.name
                )),
            }
        }
    }
    out
}
