//! The pipeline over IPv6: its own flow table, the same schedulers, persistence by
//! prefix, DR's MAC rewrite (checked by etherparse), the connection dump.

use std::net::Ipv6Addr;
use std::sync::Arc;

use xvs_dataplane::fixtures::{self, DIRECTOR_MAC, VIP6, VIP_TCP_PORT};
use xvs_dataplane::flow::dump::{DumpCursor, Tuple};
use xvs_dataplane::flow::Timeouts;
use xvs_dataplane::pipeline::NodestPolicy;
use xvs_dataplane::snapshot::{Persistence, MAX_DESTS};
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_SYN};
use xvs_dataplane::*;

fn rs_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 6, i]
}

fn client(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, i, 0, 0, 0, 1)
}

fn snapshot(
    scheduler: SchedulerKind,
    weights: &[u32],
    persistence: Option<Persistence>,
) -> Snapshot {
    let dests = weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| {
            Some(Dest {
                addr: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10 + i as u16).into(),
                port: 80,
                weight,
                mac: Some(rs_mac(i as u8)),
            })
        })
        .collect();
    let mut svc = Service::new(
        "web6",
        ServiceKey {
            addr: VIP6.into(),
            port: VIP_TCP_PORT,
            proto: 6,
        },
        scheduler,
        Forwarding::Dr,
        (0..weights.len() as u32).collect(),
    );
    svc.persistence = persistence;
    Snapshot::new(1, DIRECTOR_MAC, vec![svc], dests).unwrap()
}

fn pipeline(snap: &Snapshot) -> Pipeline {
    let cfg = PipelineConfig {
        flow_capacity: 4096,
        hash_seed: 11,
        timeouts: Timeouts::default(),
        nodest: NodestPolicy::Reschedule,
    };
    let mut p = Pipeline::new(&cfg, Arc::new(WorkerCounters::new(MAX_DESTS)));
    p.prepare(snap);
    p
}

fn tcp(src: Ipv6Addr, sport: u16, flags: u8) -> Vec<u8> {
    fixtures::tcp6_frame(src, sport, VIP6, VIP_TCP_PORT, flags, b"data")
}

/// Sends `frame`; the real server it went to (the last byte of its MAC).
fn send(p: &mut Pipeline, snap: &Snapshot, now: u32, frame: Vec<u8>) -> u8 {
    let before = frame.clone();
    let mut f = frame;
    assert_eq!(p.process(snap, now, &mut f), Verdict::Tx);
    // DR: only the MACs changed, and the frame is still valid IPv6 + TCP.
    assert_eq!(f[6..12], DIRECTOR_MAC);
    assert_eq!(f[12..], before[12..]);
    let parsed = etherparse::SlicedPacket::from_ethernet(&f).expect("IPv6 + TCP");
    assert!(matches!(parsed.net, Some(etherparse::NetSlice::Ipv6(_))));
    f[5]
}

#[test]
fn the_ipv6_table_is_allocated_only_for_ipv6_services() {
    let v4_only = Snapshot::empty(DIRECTOR_MAC);
    let mut p = pipeline(&v4_only);
    assert_eq!(p.flows6().buckets(), 1);
    let snap = snapshot(SchedulerKind::Rr, &[1], None);
    p.prepare(&snap);
    assert!(p.flows6().capacity() >= 4096);
    // Four 64-byte entries per bucket: the same four cache lines as IPv4's eight.
    assert_eq!(
        p.flows6().memory_bytes() / p.flows6().buckets(),
        p.flows().memory_bytes() / p.flows().buckets()
    );
}

#[test]
fn wrr_splits_ipv6_connections_exactly_and_keeps_each_on_its_server() {
    let snap = snapshot(SchedulerKind::Wrr, &[3, 2, 1], None);
    let mut p = pipeline(&snap);
    let mut got = [0u32; 3];
    let mut first = Vec::new();
    for i in 0..600u16 {
        let rs = send(&mut p, &snap, 1, tcp(client(i), 1024 + i, FLAG_SYN));
        got[usize::from(rs)] += 1;
        first.push(rs);
    }
    assert_eq!(got, [300, 200, 100]);
    // Every connection's later packets follow it, FIN included.
    for i in 0..600u16 {
        let rs = send(&mut p, &snap, 2, tcp(client(i), 1024 + i, FLAG_ACK));
        assert_eq!(rs, first[usize::from(i)]);
    }
    let rs = send(&mut p, &snap, 3, tcp(client(7), 1031, FLAG_FIN | FLAG_ACK));
    assert_eq!(rs, first[7]);
    assert_eq!(p.flows6().count_live(3), 600);
    assert_eq!(p.flows().count_live(3), 0, "nothing in the IPv4 table");
    let active: u64 = (0..3).map(|d| p.counters().dests[d].active.get()).sum();
    assert_eq!(active, 599, "established, but the one that finished");
}

#[test]
fn a_hashing_scheduler_hashes_the_whole_ipv6_address() {
    let snap = snapshot(SchedulerKind::Sh, &[1, 1, 1, 1], None);
    let mut a = pipeline(&snap);
    let mut b = pipeline(&snap);
    let mut seen = [false; 4];
    for i in 0..64u16 {
        // Clients that differ only in their upper 64 bits still spread.
        let c = client(i);
        let x = send(&mut a, &snap, 1, tcp(c, 1000, FLAG_SYN));
        // sh: the client's address alone decides, on any director and any port.
        assert_eq!(send(&mut b, &snap, 1, tcp(c, 2000 + i, FLAG_SYN)), x);
        seen[usize::from(x)] = true;
    }
    assert_eq!(seen, [true; 4]);
}

#[test]
fn persistence_keeps_a_prefix_on_one_server() {
    let pers = Persistence {
        timeout: 300,
        netmask: u32::MAX,
        netmask6: !0u128 << 64,
    };
    let snap = snapshot(SchedulerKind::Rr, &[1, 1, 1], Some(pers));
    let mut p = pipeline(&snap);
    let a = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1);
    let same_64 = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0xffff, 0, 0, 9);
    let other_64 = Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1);
    let first = send(&mut p, &snap, 1, tcp(a, 1000, FLAG_SYN));
    for sport in 1001..1010 {
        assert_eq!(send(&mut p, &snap, 2, tcp(a, sport, FLAG_SYN)), first);
        assert_eq!(send(&mut p, &snap, 2, tcp(same_64, sport, FLAG_SYN)), first);
    }
    assert_ne!(send(&mut p, &snap, 2, tcp(other_64, 1000, FLAG_SYN)), first);
    // The template lives in the IPv6 table, beside the connections.
    let templates = p
        .flows6()
        .iter_live_buckets(0, p.flows6().buckets(), 2)
        .filter(|f| f.is_template())
        .count();
    assert_eq!(templates, 2);
}

#[test]
fn the_dump_lists_and_finds_ipv6_flows() {
    let snap = snapshot(SchedulerKind::Rr, &[1, 1], None);
    let mut p = pipeline(&snap);
    for i in 0..5u16 {
        send(&mut p, &snap, 1, tcp(client(i), 3000 + i, FLAG_SYN));
    }
    let dump = &p.counters().flow_dump;
    let mut cur = DumpCursor::default();
    let seq = dump.request(100);
    let all = p.flows().buckets() + p.flows6().buckets();
    dump.serve(&mut cur, p.flows(), p.flows6(), all, || 1);
    let a = dump.answer(seq).expect("answered");
    assert_eq!(a.live, 5);
    assert!(a.flows.iter().all(|f| f.key.saddr.is_ipv6()));
    let want = Tuple {
        saddr: client(3).into(),
        daddr: VIP6.into(),
        sport: 3003,
        dport: VIP_TCP_PORT,
        proto: 6,
    };
    let seq = dump.find(want);
    dump.serve(&mut cur, p.flows(), p.flows6(), 1, || 1);
    let found = dump.answer(seq).expect("answered");
    assert_eq!(found.flows.len(), 1);
    assert_eq!(found.flows[0].key, want);
}

#[test]
fn expired_ipv6_flows_are_swept() {
    let snap = snapshot(SchedulerKind::Rr, &[1], None);
    let mut p = pipeline(&snap);
    send(&mut p, &snap, 1, tcp(client(1), 5000, FLAG_SYN));
    assert_eq!(p.counters().dests[0].inactive.get(), 1);
    // SYN_RECV lasts 60 s; the IPv4 table's full sweep covers the IPv6 table too.
    p.sweep(100, p.flows().buckets());
    assert_eq!(p.counters().dests[0].inactive.get(), 0);
    assert_eq!(p.counters().flows_expired.get(), 1);
}
