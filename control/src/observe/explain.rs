//! `xvs explain SRC:SPORT DST:DPORT PROTO`: which real server a new flow would get, and
//! why, from the live snapshot with the dataplane's own classifier and scheduler code —
//! and, for a persistent service, the client network's live template in the workers'
//! flow tables, which comes before any scheduler.

use std::fmt::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use xvs_dataplane::flow::dump::Tuple;
use xvs_dataplane::flow::{FlowKey, FlowKey6};
use xvs_dataplane::pipeline::{template_key, template_key6};
use xvs_dataplane::sched::{reachable, PickCtx, SchedState, SchedTable};
use xvs_dataplane::snapshot::{Dest, DestId, Persistence, SchedulerKind, Service};
use xvs_dataplane::{Snapshot, WorkerCounters};

use super::flows;

/// `args`: "SRC:SPORT DST:DPORT PROTO" (IPv6 as [ADDR]:PORT). `workers`: their flow tables are asked for the
/// client's persistence template; the first one's connection counts stand for the
/// least-connection schedulers'.
pub async fn explain(
    snap: &Snapshot,
    workers: &[Arc<WorkerCounters>],
    args: &str,
) -> Result<String, String> {
    let (src, dst, proto) = parse_args(args)?;
    let mut out = String::new();
    let Some(idx) = snap.lookup(dst.ip(), dst.port(), proto) else {
        let _ = writeln!(
            out,
            "no virtual service for {dst}/{}: the steering program passes it to the kernel",
            if proto == 6 { "tcp" } else { "udp" }
        );
        return Ok(out);
    };
    let svc = &snap.services[idx];
    describe_service(&mut out, snap, svc);
    if let Some(pers) = svc.persistence {
        let (tk, net) = template_of(&pers, svc, src.ip());
        match template(snap, svc, workers, tk, net, src).await? {
            Ok(pinned) => {
                out.push_str(&pinned);
                return Ok(out);
            }
            Err(note) => out.push_str(&note),
        }
    }
    let pick = new_pick(snap, idx, workers, flow_key(src, dst, proto));
    describe_pick(&mut out, svc, src, pick.and_then(|id| snap.dest(id)));
    let _ = writeln!(
        out,
        "an established flow keeps the real server it has; persistence, if any, comes first"
    );
    Ok(out)
}

/// "SRC:SPORT DST:DPORT PROTO" as source, destination and IP protocol number.
fn parse_args(args: &str) -> Result<(SocketAddr, SocketAddr, u8), String> {
    let usage =
        || "usage: explain SRC:SPORT DST:DPORT tcp|udp (IPv6: [SRC]:SPORT [DST]:DPORT)".to_string();
    let mut it = args.split_whitespace();
    let src: SocketAddr = it.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let dst: SocketAddr = it.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    if src.is_ipv6() != dst.is_ipv6() {
        return Err(format!(
            "{src} and {dst} are of two families: a flow is IPv4 or IPv6 end to end"
        ));
    }
    let proto = match it.next() {
        Some("tcp") => 6,
        Some("udp") => 17,
        _ => return Err(usage()),
    };
    Ok((src, dst, proto))
}

/// The virtual server's line, then one per real server with whether it can be picked.
fn describe_service(out: &mut String, snap: &Snapshot, svc: &Service) {
    let _ = writeln!(
        out,
        "virtual server {} ({} proto {}), scheduler {:?}, forwarding {:?}{}",
        svc.name,
        SocketAddr::new(svc.key.addr, svc.key.port),
        svc.key.proto,
        svc.scheduler,
        svc.forwarding,
        svc.persistence
            .map_or(String::new(), |p| format!(", persistence {} s", p.timeout))
    );
    if let Some(l) = &svc.local {
        let addrs: Vec<String> = l.addrs.iter().map(IpAddr::to_string).collect();
        let _ = writeln!(
            out,
            "  its requests leave from a local address and port: {} ports {}-{} (docs/fullnat.md)",
            addrs.join(", "),
            l.ports.0,
            l.ports.1
        );
    }
    for &id in &svc.dests {
        if let Some(d) = snap.dest(id) {
            let why = match (d.weight, d.mac) {
                (0, _) => "weight 0: no new connections",
                (_, None) => "no MAC yet: not scheduled",
                _ => "schedulable",
            };
            let _ = writeln!(
                out,
                "  {} weight {} — {why}",
                SocketAddr::new(d.addr, d.port),
                d.weight
            );
        }
    }
}

/// The key of the client network's persistence template, and that network's address.
fn template_of(pers: &Persistence, svc: &Service, client: IpAddr) -> (Tuple, IpAddr) {
    match client {
        IpAddr::V4(a) => {
            let k = template_key(pers, svc, u32::from(a));
            (
                Tuple::from(&k),
                IpAddr::from(std::net::Ipv4Addr::from(k.saddr)),
            )
        }
        IpAddr::V6(a) => {
            let k = template_key6(pers, svc, u128::from(a));
            (Tuple::from(&k), IpAddr::from(Ipv6Addr::from(k.saddr)))
        }
    }
}

/// The flow's key as the schedulers hash it.
fn flow_key(src: SocketAddr, dst: SocketAddr, proto: u8) -> FlowKey {
    // The schedulers hash an IPv6 address folded, as the pipeline gives it them.
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            FlowKey::new(s.into(), d.into(), src.port(), dst.port(), proto)
        }
        (s, d) => {
            let bits = |a: IpAddr| match a {
                IpAddr::V6(a) => u128::from(a),
                IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            };
            FlowKey6::new(bits(s), bits(d), src.port(), dst.port(), proto).folded()
        }
    }
}

/// The real server service `idx`'s scheduler would give a new flow of `key` now.
fn new_pick(
    snap: &Snapshot,
    idx: usize,
    workers: &[Arc<WorkerCounters>],
    key: FlowKey,
) -> Option<DestId> {
    let svc = &snap.services[idx];
    let conns = workers.first().map_or(&[][..], |w| &w.dests[..]);
    let ctx = PickCtx {
        key: &key,
        conns,
        rand: 0,
        now: 1,
    };
    match &snap.tables[idx] {
        // rr/wrr: looked at, not taken; explaining must not move the workers' turns.
        SchedTable::Turns(t) => t.peek(),
        table => SchedState::new(svc, snap).pick(svc, snap, table, &ctx),
    }
}

/// Where a new flow from `src` goes (`dest`; `None`: nowhere), and how sure that is.
fn describe_pick(out: &mut String, svc: &Service, src: SocketAddr, dest: Option<&Dest>) {
    match dest {
        Some(d) => {
            let note = pick_note(svc.scheduler);
            let _ = writeln!(
                out,
                "a new flow from {src} -> {} ({note})",
                SocketAddr::new(d.addr, d.port)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "a new flow from {src} -> no real server can take it: dropped (no_destination)"
            );
        }
    }
}

/// How long a scheduler's pick holds.
fn pick_note(scheduler: SchedulerKind) -> &'static str {
    match scheduler {
        SchedulerKind::Sh | SchedulerKind::Dh | SchedulerKind::Mh => "by hash: always this one while the pool is unchanged",
        SchedulerKind::Rr | SchedulerKind::Wrr => {
            "the first pick to come: the turns are the virtual server's, shared by every worker, and another new flow may take this one first"
        }
        SchedulerKind::Twos => "the first pick of a fresh scheduler: random, a live flow may get another",
        _ => "by this worker's connection counts now",
    }
}

/// What the workers' live template for the client network says: `Ok(Ok(line))` when it
/// pins the client to a real server that can still take it, `Ok(Err(line))` when the
/// scheduler decides (no template, or its server is gone), with the reason.
async fn template(
    snap: &Snapshot,
    svc: &Service,
    workers: &[Arc<WorkerCounters>],
    tk: Tuple,
    net: IpAddr,
    src: SocketAddr,
) -> Result<Result<String, String>, String> {
    let answers = flows::ask(workers, |d| d.find(tk)).await?;
    let found = answers
        .iter()
        .enumerate()
        .find_map(|(q, a)| a.flows.first().map(|f| (q, *f)));
    Ok(match found {
        None => Err(format!(
            "no live persistence template for client network {net} of {}: the scheduler picks, and its pick becomes the template\n",
            svc.name
        )),
        Some((q, f)) => match snap.dest(f.dest) {
            Some(d) if reachable(snap, f.dest) => Ok(format!(
                "a new flow from {src} -> {} (persistence template of client network {net} on worker {q}, expires in {} s: every new connection from that network goes there while it lives)\n",
                SocketAddr::new(d.addr, d.port), f.expires_in
            )),
            _ => Err(format!(
                "the persistence template of client network {net} names a real server that cannot take connections now: the scheduler picks anew\n"
            )),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::daemon::publish::{self, Local};
    use crate::health::HealthMap;
    use crate::ids::DestRegistry;
    use std::net::Ipv4Addr;
    use xvs_dataplane::flow::dump::DumpCursor;
    use xvs_dataplane::flow::table::FLAG_TEMPLATE;
    use xvs_dataplane::flow::{Flow, FlowTable};

    fn snapshot(yaml: &str) -> (Snapshot, DestRegistry) {
        let cfg = xvs_config::parse("t", yaml).unwrap();
        let mut macs = HashMap::new();
        macs.insert(Ipv4Addr::new(10, 0, 0, 11).into(), [2, 0, 0, 0, 0, 11]);
        macs.insert(Ipv4Addr::new(10, 0, 0, 12).into(), [2, 0, 0, 0, 0, 12]);
        macs.insert("2001:db8::11".parse().unwrap(), [2, 0, 0, 0, 6, 11]);
        macs.insert("2001:db8::12".parse().unwrap(), [2, 0, 0, 0, 6, 12]);
        let local = Local::for_tests();
        let mut registry = DestRegistry::default();
        let snap = publish::build(
            1,
            &cfg,
            local,
            &macs,
            &HealthMap::new(),
            publish::Quiet {
                drains: &Default::default(),
                overload: &Default::default(),
            },
            &mut registry,
        )
        .unwrap();
        (snap, registry)
    }

    #[tokio::test]
    async fn says_where_and_why() {
        let (snap, _) = snapshot(
            "interface: eth0\nvirtual_servers:\n  - { name: api, address: 10.0.0.100, port: 443, protocol: tcp, scheduler: mh, real_servers: [ { address: 10.0.0.11 }, { address: 10.0.0.12, weight: 0 } ] }\n",
        );
        let workers = vec![Arc::new(WorkerCounters::new(16))];
        let out = explain(&snap, &workers, "10.9.9.9:40000 10.0.0.100:443 tcp")
            .await
            .unwrap();
        assert!(out.contains("virtual server api"), "{out}");
        assert!(out.contains("10.0.0.12:443 weight 0 — weight 0"), "{out}");
        assert!(out.contains("-> 10.0.0.11:443 (by hash"), "{out}");
        let none = explain(&snap, &workers, "10.9.9.9:1 10.0.0.100:80 tcp")
            .await
            .unwrap();
        assert!(none.contains("no virtual service"), "{none}");
        assert!(explain(&snap, &workers, "garbage").await.is_err());
    }

    #[tokio::test]
    async fn explains_an_ipv6_flow() {
        let (snap, _) = snapshot(
            "interface: eth0\nvirtual_servers:\n  - { name: api6, address: \"2001:db8::100\", port: 443, protocol: tcp, scheduler: mh, real_servers: [ { address: \"2001:db8::11\" }, { address: \"2001:db8::12\", weight: 0 } ] }\n",
        );
        let workers = vec![Arc::new(WorkerCounters::new(16))];
        let out = explain(
            &snap,
            &workers,
            "[2001:db8::9]:40000 [2001:db8::100]:443 tcp",
        )
        .await
        .unwrap();
        assert!(
            out.contains("virtual server api6 ([2001:db8::100]:443"),
            "{out}"
        );
        assert!(out.contains("[2001:db8::12]:443 weight 0"), "{out}");
        assert!(out.contains("-> [2001:db8::11]:443 (by hash"), "{out}");
        let mixed = explain(&snap, &workers, "10.0.0.1:1 [2001:db8::100]:443 tcp").await;
        assert!(mixed.unwrap_err().contains("two families"));
    }

    /// A client network that a live template pins is answered with that server, found in
    /// the worker's flow table (a fresh rr would say the first server).
    #[tokio::test]
    async fn a_live_persistence_template_comes_first() {
        let (snap, registry) = snapshot(
            "interface: eth0\nvirtual_servers:\n  - { name: web, address: 10.0.0.100, port: 80, protocol: tcp, scheduler: rr, persistence_timeout: 300, persistence_granularity: 255.255.255.0, real_servers: [ { address: 10.0.0.11 }, { address: 10.0.0.12 } ] }\n",
        );
        let svc = &snap.services[0];
        let second = snap
            .dest(svc.dests[1])
            .map(|d| d.addr)
            .expect("the second real server");
        assert_eq!(second, IpAddr::from(Ipv4Addr::new(10, 0, 0, 12)));
        let now = 10;
        let mut table = FlowTable::new(1024, 1);
        let client = u32::from(Ipv4Addr::new(192, 168, 7, 9));
        let tk = template_key(&svc.persistence.unwrap(), svc, client);
        let slot = table.lookup(&tk, now).expect_err("new");
        table.insert(
            slot,
            Flow {
                key: tk,
                dest: svc.dests[1],
                expires: now + 200,
                flags: FLAG_TEMPLATE,
                ..Flow::default()
            },
        );
        drop(registry);
        let workers = vec![Arc::new(WorkerCounters::new(16))];
        let none6 = xvs_dataplane::flow::FlowTable::<FlowKey6>::new(1, 1);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (w, stop) = (Arc::clone(&workers[0]), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut cur = DumpCursor::default();
                while !stop.load(Ordering::Relaxed) {
                    w.flow_dump
                        .serve(&mut cur, &table, &none6, (64, &|_, _| None), || now);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        let pinned = explain(&snap, &workers, "192.168.7.200:5555 10.0.0.100:80 tcp").await;
        let other = explain(&snap, &workers, "192.168.8.1:5555 10.0.0.100:80 tcp").await;
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        let pinned = pinned.unwrap();
        assert!(
            pinned.contains("-> 10.0.0.12:80 (persistence template of client network 192.168.7.0 on worker 0, expires in 200 s"),
            "{pinned}"
        );
        let other = other.unwrap();
        assert!(
            other.contains("no live persistence template for client network 192.168.8.0"),
            "{other}"
        );
        assert!(other.contains("-> 10.0.0.11:80 (the first pick"), "{other}");
    }
}
