//! One virtual server and its real servers: addresses, ports, scheduler, forwarding,
//! persistence, checks, quorum, and what must be unique across the file.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::raw::Granularity;

use super::checker::{at, is_prime, Checker};
use super::health::health_check;
use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;

/// What must be unique over the whole file, with the line it was first seen on.
#[derive(Default)]
pub(super) struct Seen {
    /// Virtual server and VRRP instance names.
    pub names: HashMap<String, u64>,
    pub services: HashMap<(IpAddr, u16, Protocol), u64>,
    /// NAT real servers (address, port, protocol): each answers for one service.
    pub nat: HashMap<(IpAddr, u16, Protocol), u64>,
}

/// `instances`: the file's VRRP instances, which `quorum_vrrp` may name.
pub(super) fn check(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    seen: &mut Seen,
    instances: &[RawVrrpInstance],
) -> VirtualServer {
    if let Some(first) = seen.names.insert(vs.name.value.clone(), at(&vs.name).0) {
        ck.error(
            &vs.name,
            format!(
                "virtual server name {:?} is already used at line {first}",
                vs.name.value
            ),
            "give each virtual server its own name: metrics and `xvs status` use it",
        );
    }
    let port_hint = "0 stands for every port of the address";
    let ports: Vec<u16> = match (&vs.port, &vs.ports) {
        (Some(p), None) => vec![ck.range(p, "port", 0, 65535, port_hint) as u16],
        (None, Some(list)) if !list.is_empty() => list
            .iter()
            .map(|p| ck.range(p, "port", 1, 65535, "list the ports one by one"))
            .map(|p| p as u16)
            .collect(),
        (None, Some(_)) => {
            ck.error(
                &vs.name,
                format!(
                    "virtual server {:?} has an empty `ports` list",
                    vs.name.value
                ),
                "list at least one port",
            );
            vec![0]
        }
        (Some(p), Some(_)) => {
            ck.error(
                p,
                "give either `port` or `ports`, not both".into(),
                "`ports: [80, 443]` serves several ports as one service",
            );
            vec![0]
        }
        (None, None) => {
            ck.error(
                &vs.name,
                format!("virtual server {:?} has no `port`", vs.name.value),
                "add `port: 80` (0: every port) or `ports: [80, 443]`",
            );
            vec![0]
        }
    };
    for (i, &port) in ports.iter().enumerate() {
        let key = (vs.address.value, port, vs.protocol.value);
        let span = vs
            .ports
            .as_ref()
            .and_then(|l| l.get(i))
            .map_or_else(|| at(&vs.address), at);
        if let Some(first) = seen.services.insert(key, span.0) {
            ck.out.push(
                Diagnostic::new(
                    span.0,
                    span.1,
                    format!(
                        "virtual server {}:{port}/{} is already defined at line {first}",
                        vs.address.value,
                        vs.protocol.value.as_str()
                    ),
                )
                .hint("each address, port and protocol may have one virtual server; merge the two"),
            );
        }
    }
    let scheduler = vs.scheduler.as_ref().map_or(Scheduler::Wrr, |s| s.value);
    let mut flags = SchedFlags::default();
    for f in &vs.scheduler_flags {
        let (fits, port) = match f.value {
            SchedFlag::ShPort => (scheduler == Scheduler::Sh, true),
            SchedFlag::ShFallback => (scheduler == Scheduler::Sh, false),
            SchedFlag::MhPort => (scheduler == Scheduler::Mh, true),
            SchedFlag::MhFallback => (scheduler == Scheduler::Mh, false),
        };
        if !fits {
            ck.error(
                f,
                format!(
                    "this flag does not apply to scheduler {}",
                    scheduler.as_str()
                ),
                "sh-* flags go with sh, mh-* flags with mh",
            );
        }
        if port {
            flags.port = true;
        } else {
            flags.fallback = true;
        }
    }
    let mh_table_size = match &vs.mh_table_size {
        None => MH_DEFAULT_TABLE_SIZE,
        Some(m) => {
            let v = ck.range(
                m,
                "mh_table_size",
                2,
                MH_MAX_TABLE_SIZE,
                "a prime such as 65537 (the default) or 251",
            );
            if scheduler != Scheduler::Mh {
                ck.error(
                    m,
                    "mh_table_size applies to scheduler mh only".into(),
                    "remove it, or use `scheduler: mh`",
                );
            } else if v >= 2 && !is_prime(v as u64) {
                ck.error(m, format!("mh_table_size {v} is not a prime"), "Maglev needs a prime table size: 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071");
            }
            v as u32
        }
    };
    let persistence = match (&vs.persistence_timeout, &vs.persistence_granularity) {
        (None, None) => None,
        (None, Some(g)) => {
            ck.error(
                g,
                "persistence_granularity without persistence_timeout".into(),
                "add `persistence_timeout: 300` (seconds)",
            );
            None
        }
        (Some(t), g) => {
            let timeout = ck.range(
                t,
                "persistence_timeout",
                1,
                86400 * 31,
                "seconds a client keeps its real server",
            ) as u32;
            let v6 = vs.address.value.is_ipv6();
            let (mut granularity, mut prefix6) = (Ipv4Addr::BROADCAST, 128u8);
            match g.as_ref().map(|g| (g, g.value)) {
                None => {}
                Some((g, Granularity::Netmask(m))) if v6 => ck.error(
                    g,
                    format!("{m} is an IPv4 netmask, and {} is an IPv6 virtual server", vs.address.value),
                    "give an IPv6 virtual server a prefix length, as ipvsadm -6 -M does: `persistence_granularity: 64`",
                ),
                Some((g, Granularity::Netmask(m))) => {
                    let bits = u32::from(m);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        ck.error(
                            g,
                            format!("{m} is not a netmask"),
                            "a contiguous netmask, such as 255.255.255.0",
                        );
                    }
                    granularity = m;
                }
                Some((g, Granularity::Prefix(len))) => {
                    let max = if v6 { 128 } else { 32 };
                    if !(0..=max).contains(&len) {
                        ck.error(
                            g,
                            format!("prefix length {len} is out of 0 to {max}"),
                            if v6 {
                                "an IPv6 prefix length, such as 64"
                            } else {
                                "an IPv4 prefix length, such as 24, or a netmask such as 255.255.255.0"
                            },
                        );
                    } else if v6 {
                        prefix6 = len as u8;
                    } else {
                        granularity = Ipv4Addr::from(u32::MAX.checked_shl(32 - len as u32).unwrap_or(0));
                    }
                }
            }
            Some(Persistence {
                timeout,
                granularity,
                prefix6,
            })
        }
    };
    let ops = vs.ops.as_ref().is_some_and(|o| o.value);
    if let Some(o) = vs
        .ops
        .as_ref()
        .filter(|o| o.value && vs.protocol.value != Protocol::Udp)
    {
        ck.error(
            o,
            "ops (one-packet scheduling) applies to UDP only".into(),
            "remove it, or use `protocol: udp`",
        );
    }
    let forwarding = vs.forwarding.as_ref().map_or(Forwarding::Dr, |f| f.value);
    ck.unicast(&vs.address, "a virtual server's address");
    let multi = ports.len() > 1;
    if forwarding == Forwarding::Nat && ports.contains(&0) {
        let span = vs.port.as_ref().map_or_else(|| at(&vs.address), at);
        ck.out.push(
            Diagnostic::new(
                span.0,
                span.1,
                "a NAT virtual server cannot serve every port (port 0)".to_string(),
            )
            .hint("list the ports: NAT must know which port each reply came from"),
        );
    }
    let mut seen_rs: HashMap<(IpAddr, u16), u64> = HashMap::new();
    let mut real_servers = Vec::new();
    for rs in &vs.real_servers {
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
        if forwarding != Forwarding::Nat && !multi && rport != ports[0] {
            let p = rs.port.as_ref().expect("differs only when given");
            let m = forwarding.as_str().to_uppercase();
            ck.error(
                    p,
                    format!("real server port {rport} differs from the virtual server's port {}, which {m} cannot do", ports[0]),
                    "DR and TUN deliver the client's packet unchanged: use the same port, or omit it",
                );
        }
        let weight = rs.weight.as_ref().map_or(1, |w| {
            ck.range(
                w,
                "weight",
                0,
                MAX_WEIGHT,
                "0 takes no new connections (quiescent); higher gets more",
            ) as u32
        });
        ck.unicast(&rs.address, "a real server's address");
        ck.same_family(&rs.address, vs.address.value, "a real server");
        if rs.address.value == vs.address.value {
            ck.error(
                    &rs.address,
                    format!("real server {} is the virtual server's own address", rs.address.value),
                    match forwarding {
                        Forwarding::Nat => "NAT real servers have addresses of their own, behind the director",
                        _ => "real servers hold the VIP on lo, but are reached by their own address (RIP)",
                    },
                );
        }
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
        let thresholds = upper.map(|u| Thresholds::new(u, lower.unwrap_or(0)));
        let hc = rs
            .health_check
            .as_ref()
            .or(vs.health_check.as_ref())
            .and_then(|h| health_check(ck, h));
        real_servers.push(RealServer {
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
        });
    }
    if forwarding == Forwarding::Nat {
        for (rs, raw_rs) in real_servers.iter().zip(&vs.real_servers) {
            let rports: Vec<u16> = if rs.port == 0 {
                ports.clone()
            } else {
                vec![rs.port]
            };
            for rp in rports {
                if let Some(first) = seen
                    .nat
                    .insert((rs.address, rp, vs.protocol.value), at(&raw_rs.address).0)
                {
                    ck.error(
                            &raw_rs.address,
                            format!("NAT real server {}:{rp} already serves the virtual server at line {first}", rs.address),
                            "its replies could not be told apart: give it another port in one of them",
                        );
                }
            }
        }
    }
    let first_port = ports[0];
    VirtualServer {
        name: vs.name.value.clone(),
        address: vs.address.value,
        ports,
        protocol: vs.protocol.value,
        scheduler,
        scheduler_flags: flags,
        mh_table_size,
        persistence,
        ops,
        forwarding,
        real_servers,
        quorum: vs.quorum.as_ref().map_or(1, |q| {
            ck.range(
                q,
                "quorum",
                0,
                1 << 24,
                "least total weight of live real servers",
            ) as u32
        }),
        hysteresis: vs.hysteresis.as_ref().map_or(0, |q| {
            ck.range(
                q,
                "hysteresis",
                0,
                1 << 24,
                "weight tolerance around the quorum",
            ) as u32
        }),
        quorum_up: ck.script(&vs.quorum_up, "quorum_up"),
        quorum_down: ck.script(&vs.quorum_down, "quorum_down"),
        quorum_vrrp: vs.quorum_vrrp.as_ref().map(|q| {
            let p = ck.range(
                &q.priority,
                "quorum_vrrp priority",
                1,
                254,
                "the priority to advertise while below quorum",
            ) as u8;
            if !instances.iter().any(|v| v.name.value == q.instance.value) {
                ck.error(
                    &q.instance,
                    format!("no VRRP instance {:?}", q.instance.value),
                    "name one of vrrp_instances",
                );
            }
            (q.instance.value.clone(), p)
        }),
        sorry_server: vs.sorry_server.as_ref().map(|s| {
            ck.unicast(&s.address, "a sorry server's address");
            ck.same_family(&s.address, vs.address.value, "a sorry server");
            let p = s.port.as_ref().map_or(first_port, |p| {
                ck.range(
                    p,
                    "sorry_server port",
                    0,
                    65535,
                    "omit it to use the virtual server's port",
                ) as u16
            });
            (s.address.value, p)
        }),
    }
}
