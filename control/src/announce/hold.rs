//! The anycast VIPs held on `lo`: every director behind ECMP has them, so what the
//! steering program leaves to the kernel (a ping, a port no virtual server has) is
//! answered as by any host, and never routed back towards the router. (So are the
//! host's own services listening on every address: firewall them, docs/scale-out.md.) The external
//! interface answers no ARP for them (arp_ignore=1, arp_announce=2, as on a DR real
//! server): the router reaches each director by the director's own address, and one
//! director answering for the VIP would pull the segment's traffic to itself. IPv6 needs
//! nothing: Linux answers a neighbour solicitation only for the addresses of the
//! interface it arrives on.

use std::collections::BTreeSet;
use std::net::IpAddr;

use tracing::{info, warn};
use xvs_config::Config;

use crate::sys::netlink;

/// The announced VIPs on `lo`: xvs's, whoever added them (the last xvs, before a
/// takeover or restart), so a clean stop or a reload that drops one takes it away.
#[derive(Default)]
pub struct Held {
    added: BTreeSet<IpAddr>,
}

fn host_prefix(vip: IpAddr) -> u8 {
    if vip.is_ipv4() {
        32
    } else {
        128
    }
}

fn lo() -> Option<u32> {
    crate::sys::iface::Iface::lookup("lo")
        .ok()
        .flatten()
        .map(|i| i.ifindex)
}

impl Held {
    /// `lo` holds every VIP `cfg` announces, and no longer those this process added that
    /// it does not.
    pub fn sync(&mut self, cfg: &Config) {
        let Some(lo) = lo() else {
            return warn!("announce: no lo here: the VIPs are not held");
        };
        let want: BTreeSet<IpAddr> = cfg
            .virtual_servers
            .iter()
            .filter(|v| v.announce.is_some())
            .map(|v| v.address)
            .collect();
        if want.iter().any(IpAddr::is_ipv4) {
            silence_arp(&cfg.interface.value);
            if let Some(i) = &cfg.internal_interface {
                silence_arp(&i.value);
            }
        }
        for &vip in want.difference(&self.added.clone()) {
            match netlink::add_address(lo, vip, host_prefix(vip)) {
                Ok(true) => {
                    info!("announce: holding {vip} on lo");
                    self.added.insert(vip);
                }
                Ok(false) => {
                    self.added.insert(vip);
                }
                Err(e) => warn!("announce: adding {vip} to lo: {e}; pings and closed ports of the VIP go unanswered"),
            }
        }
        let gone: Vec<IpAddr> = self.added.difference(&want).copied().collect();
        for vip in gone {
            let _ = netlink::del_address(lo, vip, host_prefix(vip));
            self.added.remove(&vip);
        }
    }

    /// A clean stop: the VIPs this process added leave `lo`.
    pub fn release(&mut self) {
        let Some(lo) = lo() else { return };
        for vip in std::mem::take(&mut self.added) {
            let _ = netlink::del_address(lo, vip, host_prefix(vip));
        }
    }
}

/// arp_ignore=1 and arp_announce=2 on `iface` (the kernel takes the larger of `all`
/// and the device's): it answers ARP only for its own addresses, never for `lo`'s VIPs.
fn silence_arp(iface: &str) {
    for (knob, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
        let path = format!("/proc/sys/net/ipv4/conf/{iface}/{knob}");
        match std::fs::read_to_string(&path) {
            // Already as strict (a larger number is stricter for both knobs).
            Ok(v) if v.trim().parse::<u8>().is_ok_and(|n| n >= value.parse().unwrap_or(0)) => {}
            Ok(v) => match std::fs::write(&path, value) {
                Ok(()) => info!("announce: net.ipv4.conf.{iface}.{knob} = {value} (was {}), so {iface} answers no ARP for the VIPs on lo", v.trim()),
                Err(e) => warn!("announce: writing {path}: {e}; {iface} may answer ARP for the VIPs"),
            },
            Err(e) => warn!("announce: reading {path}: {e}"),
        }
    }
}
