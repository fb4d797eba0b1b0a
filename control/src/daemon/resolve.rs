//! Neighbour and route resolution: each real server's next-hop MAC, read from the
//! kernel's tables by netlink. The calls block, so the event loop runs `resolve` on
//! tokio's blocking pool (`resolve_off_loop`), never on its own thread.

use std::collections::HashMap;
use std::net::IpAddr;

use tracing::{info, warn};
use xvs_config::{Config, Forwarding};

use super::ifaces::Ifaces;
use super::publish;
use crate::sys::iface::Iface;
use crate::sys::netlink;

/// Real server address → next-hop MAC.
pub type Macs = HashMap<IpAddr, [u8; 6]>;

/// The address whose MAC a real server's frames go to: itself for DR (it must be on the
/// segment), the kernel's next hop towards it otherwise (a TUN or FullNAT one may sit
/// behind a router). IPv6 real servers other than FullNAT's are on the segment.
fn next_hop(forwarding: Forwarding, rs: IpAddr, iface: &Iface) -> IpAddr {
    let routed = match forwarding {
        Forwarding::Dr => false,
        Forwarding::Nat | Forwarding::Tun => rs.is_ipv4(),
        Forwarding::FullNat => true,
    };
    if !routed {
        return rs;
    }
    match netlink::route_get(rs) {
        Ok(r) => {
            if r.oif != iface.ifindex {
                let m = forwarding.as_str().to_uppercase();
                warn!("{m} real server {rs} is routed out of another interface than {}; xvs sends it out of {} anyway", iface.name, iface.name);
            }
            r.gateway.unwrap_or(rs)
        }
        Err(e) => {
            let m = forwarding.as_str().to_uppercase();
            warn!("no route to {m} real server {rs}: {e}");
            rs
        }
    }
}

/// Reads the neighbour tables: each real server's next-hop MAC. Nudges and logs the ones
/// still unresolved. `known` is kept when netlink fails for a moment.
pub fn resolve(cfg: &Config, ifaces: &Ifaces, known: &Macs) -> Macs {
    let mut tables = HashMap::new();
    for i in ifaces.all() {
        match netlink::neighbours(i.ifindex) {
            Ok(m) => {
                tables.insert(i.ifindex, m);
            }
            Err(e) => {
                warn!(
                    "reading the neighbour table of {} failed: {e}; keeping the last one",
                    i.name
                );
                return known.clone();
            }
        }
    }
    let mut macs = HashMap::new();
    // A route lookup per TUN real server, not per (virtual server, real server).
    let mut hops: HashMap<(bool, IpAddr, u32), IpAddr> = HashMap::new();
    for vs in &cfg.virtual_servers {
        let iface = ifaces.towards_real_servers(vs);
        for addr in publish::next_hop_addresses(vs) {
            if macs.contains_key(&addr) {
                continue;
            }
            let hop = *hops
                .entry((vs.forwarding == Forwarding::Dr, addr, iface.ifindex))
                .or_insert_with(|| next_hop(vs.forwarding, addr, iface));
            match tables.get(&iface.ifindex).and_then(|t| t.get(&hop)) {
                Some(m) => {
                    macs.insert(addr, *m);
                }
                None => {
                    let via = if hop == addr {
                        String::new()
                    } else {
                        format!(" (next hop {hop})")
                    };
                    if known.contains_key(&addr) {
                        warn!("real server {}{via} lost its neighbour entry on {}: not scheduled until it answers ARP (or neighbour discovery)", addr, iface.name);
                    } else {
                        info!(
                            "real server {}{via}: no MAC on {} yet; not scheduled, resolving",
                            addr, iface.name
                        );
                    }
                    netlink::nudge(hop);
                }
            }
        }
    }
    macs
}

/// `resolve` on the blocking pool: the event loop (scrapes, the control socket, health
/// results) goes on meanwhile.
pub async fn resolve_off_loop(cfg: &Config, ifaces: &Ifaces, known: &Macs) -> Macs {
    let (c, i, k) = (cfg.clone(), ifaces.clone(), known.clone());
    match tokio::task::spawn_blocking(move || resolve(&c, &i, &k)).await {
        Ok(m) => m,
        Err(e) => {
            warn!("resolving the real servers' neighbours failed: {e}; keeping the last ones");
            known.clone()
        }
    }
}
