//! `xvs explain SRC:SPORT DST:DPORT PROTO`: which real server a new flow would get, and
//! why, from the live snapshot with the dataplane's own classifier and scheduler code.

use std::fmt::Write;
use std::net::SocketAddrV4;

use xvs_dataplane::counters::DestCounters;
use xvs_dataplane::flow::FlowKey;
use xvs_dataplane::sched::{PickCtx, SchedState};
use xvs_dataplane::snapshot::SchedulerKind;
use xvs_dataplane::Snapshot;

/// `args`: "SRC:SPORT DST:DPORT PROTO". `conns`: a worker's per-real-server counters (the
/// least-connection schedulers read them).
pub fn explain(snap: &Snapshot, conns: &[DestCounters], args: &str) -> Result<String, String> {
    let usage = || "usage: explain SRC:SPORT DST:DPORT tcp|udp".to_string();
    let mut it = args.split_whitespace();
    let src: SocketAddrV4 = it.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let dst: SocketAddrV4 = it.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let proto = match it.next() {
        Some("tcp") => 6,
        Some("udp") => 17,
        _ => return Err(usage()),
    };
    let mut out = String::new();
    let Some(idx) = snap.lookup(*dst.ip(), dst.port(), proto) else {
        let _ = writeln!(
            out,
            "no virtual service for {dst}/{}: the steering program passes it to the kernel",
            if proto == 6 { "tcp" } else { "udp" }
        );
        return Ok(out);
    };
    let svc = &snap.services[idx];
    let _ = writeln!(
        out,
        "virtual server {} ({}:{} proto {}), scheduler {:?}, forwarding {:?}{}",
        svc.name,
        svc.key.addr,
        svc.key.port,
        svc.key.proto,
        svc.scheduler,
        svc.forwarding,
        svc.persistence
            .map_or(String::new(), |p| format!(", persistence {} s", p.timeout))
    );
    for &id in &svc.dests {
        if let Some(d) = snap.dest(id) {
            let why = match (d.weight, d.mac) {
                (0, _) => "weight 0: no new connections",
                (_, None) => "no MAC yet: not scheduled",
                _ => "schedulable",
            };
            let _ = writeln!(out, "  {}:{} weight {} — {why}", d.addr, d.port, d.weight);
        }
    }
    let key = FlowKey::new(
        u32::from(*src.ip()),
        u32::from(*dst.ip()),
        src.port(),
        dst.port(),
        proto,
    );
    let ctx = PickCtx {
        key: &key,
        conns,
        rand: 0,
        now: 1,
    };
    let pick = SchedState::new(svc, snap).pick(svc, snap, &snap.tables[idx], &ctx);
    match pick.and_then(|id| snap.dest(id)) {
        Some(d) => {
            let note = match svc.scheduler {
                SchedulerKind::Sh | SchedulerKind::Dh | SchedulerKind::Mh => "by hash: always this one while the pool is unchanged",
                SchedulerKind::Rr | SchedulerKind::Wrr | SchedulerKind::Twos => {
                    "the first pick of a fresh scheduler: each worker keeps its own turn, so a live flow may get the next one"
                }
                _ => "by this worker's connection counts now",
            };
            let _ = writeln!(
                out,
                "a new flow from {src} -> {}:{} ({note})",
                d.addr, d.port
            );
        }
        None => {
            let _ = writeln!(
                out,
                "a new flow from {src} -> no real server can take it: dropped (no_destination)"
            );
        }
    }
    let _ = writeln!(
        out,
        "an established flow keeps the real server it has; persistence, if any, comes first"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::health::HealthMap;
    use crate::publish::{self, DestRegistry, Local};

    #[test]
    fn says_where_and_why() {
        let cfg = xvs_config::parse(
            "t",
            "interface: eth0\nvirtual_servers:\n  - { name: api, address: 10.0.0.100, port: 443, protocol: tcp, scheduler: mh, real_servers: [ { address: 10.0.0.11 }, { address: 10.0.0.12, weight: 0 } ] }\n",
        )
        .unwrap();
        let mut macs = HashMap::new();
        macs.insert(Ipv4Addr::new(10, 0, 0, 11), [2, 0, 0, 0, 0, 11]);
        let local = Local {
            mac: [1; 6],
            addr: Ipv4Addr::new(10, 0, 0, 2),
            mtu: 1500,
            internal_mac: None,
        };
        let snap = publish::build(
            1,
            &cfg,
            local,
            &macs,
            &HealthMap::new(),
            &mut DestRegistry::default(),
        )
        .unwrap();
        let counters = xvs_dataplane::WorkerCounters::new(16);
        let out = explain(&snap, &counters.dests, "10.9.9.9:40000 10.0.0.100:443 tcp").unwrap();
        assert!(out.contains("virtual server api"), "{out}");
        assert!(out.contains("10.0.0.12:443 weight 0 — weight 0"), "{out}");
        assert!(out.contains("-> 10.0.0.11:443 (by hash"), "{out}");
        let none = explain(&snap, &counters.dests, "10.9.9.9:1 10.0.0.100:80 tcp").unwrap();
        assert!(none.contains("no virtual service"), "{none}");
        assert!(explain(&snap, &counters.dests, "garbage").is_err());
    }
}
