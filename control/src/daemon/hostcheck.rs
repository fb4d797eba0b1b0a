//! What only this host can say about a valid file: whether DR real servers are on the
//! director's segment. DR rewrites the MAC alone, so a real server the kernel reaches
//! through a gateway, or on another interface, would get the gateway's frames: IPVS has
//! the same rule. Warnings, not errors: a host route can make an address on-link. And
//! whether forwarding is on where NAT needs the kernel's FIB.

use xvs_config::{Config, Forwarding};

use crate::daemon::Ifaces;
use crate::sys::netlink;

/// One line per DR real server that is not directly reachable on the interface; one if
/// the fast path would send into a veth (whose peer must run XDP to receive it); one
/// per family with NAT services and forwarding off.
pub fn warnings(cfg: &Config, ifaces: &Ifaces) -> Vec<String> {
    let mut out = Vec::new();
    // `auto` finds out by itself (daemon::xdp_tx); `xdp` insists.
    let fast = cfg.fast_path == xvs_config::FastPath::Xdp && !cfg.virtual_servers.is_empty();
    if fast && crate::sys::iface::is_veth(&ifaces.external.name) {
        out.push(format!(
            "{} looks like a veth: the fast path (and NAT replies) leave it with XDP_TX, which a veth delivers only when its peer runs an XDP program; attach one there (xvs's xvs_pass will do) or leave `fast_path` unset (auto: the director falls back when they are lost)",
            ifaces.external.name
        ));
    }
    let nat = cfg
        .virtual_servers
        .iter()
        .any(|v| v.forwarding == Forwarding::Nat);
    if let Some(int) = ifaces.internal.as_ref().filter(|_| fast && nat) {
        out.push(format!(
            "fast_path xdp on two arms: established NAT requests are redirected by XDP to {}, which must take XDP frames (a NIC whose driver has XDP; a veth whose peer runs an XDP program; not a VLAN or a macvlan): leave `fast_path` unset (auto) to keep them on the workers",
            int.name
        ));
    }
    let nat = |v6: bool| {
        cfg.virtual_servers.iter().any(|v| {
            matches!(v.forwarding, Forwarding::Nat | Forwarding::FullNat)
                && v.address.is_ipv6() == v6
        })
    };
    for (v6, knob) in [
        (false, "/proc/sys/net/ipv4/ip_forward"),
        (true, "/proc/sys/net/ipv6/conf/all/forwarding"),
    ] {
        let off = std::fs::read_to_string(knob).is_ok_and(|v| v.trim() == "0");
        if nat(v6) && off {
            out.push(format!(
                "{knob} is 0: a NAT reply to a client whose MAC the steering program has not learned from its requests (the new master's first replies after a failover) needs the kernel's FIB, which refuses to route with forwarding off (counted drop_nat_no_neigh); set it to 1, as for IPVS NAT"
            ));
        }
    }
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
