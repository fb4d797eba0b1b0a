//! The real servers of one virtual server: port, weight, address, thresholds, check and
//! scripts; and, for NAT, that each serves one virtual server.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::*;
use crate::raw::*;
use crate::validate::checker::{at, Checker};
use crate::validate::health::health_check;

/// Each real server of `vs`, which forwards by `forwarding` on `ports`.
pub(super) fn check(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    forwarding: Forwarding,
    ports: &[u16],
) -> Vec<RealServer> {
    let mut seen_rs: HashMap<(IpAddr, u16), u64> = HashMap::new();
    vs.real_servers
        .iter()
        .map(|rs| real_server(ck, vs, rs, forwarding, ports, &mut seen_rs))
        .collect()
}

/// `seen_rs`: the virtual server's real servers so far (address, port), each listed once.
fn real_server(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    rs: &RawRealServer,
    forwarding: Forwarding,
    ports: &[u16],
    seen_rs: &mut HashMap<(IpAddr, u16), u64>,
) -> RealServer {
    let rport = port(ck, rs, forwarding, ports);
    let weight = rs.weight.as_ref().map_or(1, |w| {
        ck.range(
            w,
            "weight",
            0,
            MAX_WEIGHT,
            "0 takes no new connections (quiescent); higher gets more",
        ) as u32
    });
    address(ck, vs, rs, forwarding);
    if let Some(first) = seen_rs.insert((rs.address.value, rport), at(&rs.address).0) {
        ck.error(
            &rs.address,
            format!(
                "real server {}:{rport} is already listed at line {first}",
                rs.address.value
            ),
            "list each real server once per virtual server; use weight for a bigger share",
        );
    }
    let thresholds = thresholds(ck, rs);
    let hc = rs
        .health_check
        .as_ref()
        .or(vs.health_check.as_ref())
        .and_then(|h| health_check(ck, h));
    RealServer {
        address: rs.address.value,
        port: rport,
        weight,
        health_check: hc,
        inhibit_on_failure: rs
            .inhibit_on_failure
            .or(vs.inhibit_on_failure)
            .unwrap_or(false),
        thresholds,
        notify_up: ck.script(&rs.notify_up, "notify_up"),
        notify_down: ck.script(&rs.notify_down, "notify_down"),
    }
}

/// Its port: the virtual server's unless given; none in a multi-port service, whose
/// packets keep their port; and only NAT can change it.
fn port(ck: &mut Checker, rs: &RawRealServer, forwarding: Forwarding, ports: &[u16]) -> u16 {
    let multi = ports.len() > 1;
    let rport = match &rs.port {
        Some(p) if multi => {
            ck.error(
                p,
                "a real server of a multi-port service takes no port".into(),
                "packets keep their destination port; remove `port`",
            );
            0
        }
        Some(p) => ck.range(
            p,
            "real server port",
            0,
            65535,
            "omit it to use the virtual server's port",
        ) as u16,
        None if multi => 0,
        None => ports[0],
    };
    let maps_ports = matches!(forwarding, Forwarding::Nat | Forwarding::FullNat);
    if !maps_ports && !multi && rport != ports[0] {
        let p = rs.port.as_ref().expect("differs only when given");
        let m = forwarding.as_str().to_uppercase();
        ck.error(
                p,
                format!("real server port {rport} differs from the virtual server's port {}, which {m} cannot do", ports[0]),
                "DR and TUN deliver the client's packet unchanged: use the same port, or omit it",
            );
    }
    rport
}

/// Its address: a host's, of the virtual server's family, and not the VIP itself.
fn address(ck: &mut Checker, vs: &RawVirtualServer, rs: &RawRealServer, forwarding: Forwarding) {
    ck.unicast(&rs.address, "a real server's address");
    ck.same_family(&rs.address, vs.address.value, "a real server");
    if rs.address.value == vs.address.value {
        ck.error(
            &rs.address,
            format!(
                "real server {} is the virtual server's own address",
                rs.address.value
            ),
            match forwarding {
                Forwarding::Nat | Forwarding::FullNat => {
                    "NAT real servers have addresses of their own, behind the director"
                }
                _ => "real servers hold the VIP on lo, but are reached by their own address (RIP)",
            },
        );
    }
}

/// `uthreshold`, and `lthreshold` at most it, where an overloaded real server recovers.
fn thresholds(ck: &mut Checker, rs: &RawRealServer) -> Option<Thresholds> {
    let upper = rs.uthreshold.as_ref().map(|u| {
        ck.range(
            u,
            "uthreshold",
            1,
            MAX_THRESHOLD,
            "the connections at which it takes no new ones; omit it for no limit",
        ) as u32
    });
    let lower = rs.lthreshold.as_ref().map(|l| {
        let v = ck.range(
            l,
            "lthreshold",
            0,
            MAX_THRESHOLD,
            "the connections below which it takes new ones again",
        ) as u32;
        match upper {
            None => ck.error(
                l,
                "lthreshold without uthreshold".into(),
                "give `uthreshold` too: lthreshold is where an overloaded real server recovers",
            ),
            Some(u) if v > u => ck.error(
                l,
                format!("lthreshold {v} is above uthreshold {u}"),
                "an overloaded real server recovers below lthreshold: make it at most uthreshold",
            ),
            Some(_) => {}
        }
        v
    });
    upper.map(|u| Thresholds::new(u, lower.unwrap_or(0)))
}

/// A NAT real server (address, port, protocol) answers for one virtual server: the replies
/// of two could not be told apart.
pub(super) fn unique_nat(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    real_servers: &[RealServer],
    ports: &[u16],
    nat: &mut HashMap<(IpAddr, u16, Protocol), u64>,
) {
    for (rs, raw_rs) in real_servers.iter().zip(&vs.real_servers) {
        let rports: Vec<u16> = if rs.port == 0 {
            ports.to_vec()
        } else {
            vec![rs.port]
        };
        for rp in rports {
            if let Some(first) =
                nat.insert((rs.address, rp, vs.protocol.value), at(&raw_rs.address).0)
            {
                ck.error(
                    &raw_rs.address,
                    format!(
                        "NAT real server {}:{rp} already serves the virtual server at line {first}",
                        rs.address
                    ),
                    "its replies could not be told apart: give it another port in one of them",
                );
            }
        }
    }
}
