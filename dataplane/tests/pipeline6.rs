//! The pipeline over IPv6: its own flow table, the same schedulers, persistence by
//! prefix, DR's MAC rewrite (checked by etherparse), the connection dump.

use std::net::Ipv6Addr;
use std::sync::Arc;

use xvs_dataplane::fixtures::{self, DIRECTOR_MAC, VIP6, VIP_TCP_PORT};
use xvs_dataplane::flow::dump::{DumpCursor, Tuple};
use xvs_dataplane::flow::Timeouts;
use xvs_dataplane::pipeline::{NodestPolicy, Prefetched};
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
        ..PipelineConfig::default()
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
    dump.serve(&mut cur, p.flows(), p.flows6(), (all, &|_, _| None), || 1);
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
    dump.serve(&mut cur, p.flows(), p.flows6(), (1, &|_, _| None), || 1);
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

/// TUN over IPv6: the client's packet inside IPv6 from the director's IPv6 address; too
/// big for the tunnel, a Packet Too Big back to the client instead.
#[test]
fn tun_over_ipv6_encapsulates_or_answers_packet_too_big() {
    let mut snap = snapshot(SchedulerKind::Rr, &[1], None);
    let mut svc = snap.services[0].clone();
    svc.forwarding = Forwarding::Tun;
    let dests = snap.dests.clone();
    snap = Snapshot::new(2, DIRECTOR_MAC, vec![svc], dests).unwrap();
    let run = |p: &mut Pipeline, snap: &Snapshot, frame: &[u8]| {
        let mut buf = vec![0u8; 256 + frame.len() + 256];
        buf[256..256 + frame.len()].copy_from_slice(frame);
        let mut pkt = xvs_dataplane::packet::Packet::new(&mut buf, 256, frame.len()).unwrap();
        let v = p.process_packet(snap, 1, &mut pkt, Prefetched::NONE);
        (v, pkt.data().to_vec())
    };
    // Without an IPv6 address of the director's, no tunnel: dropped, counted.
    let mut p = pipeline(&snap);
    let syn = tcp(client(1), 1000, FLAG_SYN);
    assert_eq!(
        run(&mut p, &snap, &syn).0,
        Verdict::Drop(DropReason::NoDestination)
    );
    let director6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    snap.local_addr6 = Some(director6);
    let (v, out) = run(&mut p, &snap, &syn);
    assert_eq!(v, Verdict::Tx);
    let outer = etherparse::Ipv6HeaderSlice::from_slice(&out[14..]).unwrap();
    assert_eq!(outer.source_addr(), director6);
    assert_eq!(
        outer.destination_addr(),
        "fd00::10".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(outer.next_header().0, 41);
    assert_eq!(&out[54..], &syn[14..], "the client's packet inside");
    assert!(p.fast_ops().is_empty(), "IPv6 tunnels stay on the worker");
    // A full-size segment: Packet Too Big to the client, MTU 1460.
    snap.mtu = 1500;
    let big = fixtures::tcp6_frame(client(1), 1000, VIP6, VIP_TCP_PORT, FLAG_ACK, &[1u8; 1440]);
    let (v, out) = run(&mut p, &snap, &big);
    assert_eq!(v, Verdict::Tx);
    let parsed = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = parsed.transport else {
        panic!("no ICMPv6: {:?}", parsed.transport)
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv6Type::PacketTooBig { mtu: 1460 }
    );
    assert_eq!(&out[..6], &fixtures::CLIENT_MAC, "back where it came from");
    assert_eq!(p.counters().icmp_frag_needed.get(), 1);
}

/// NAT66: [VIP]:80 becomes [RIP]:8080, the TCP checksum valid (etherparse).
#[test]
fn nat66_translates_the_destination_and_its_port() {
    let snap0 = snapshot(SchedulerKind::Rr, &[1], None);
    let mut svc = snap0.services[0].clone();
    svc.forwarding = Forwarding::Nat;
    let mut dests = snap0.dests.clone();
    if let Some(d) = dests[0].as_mut() {
        d.port = 8080;
    }
    let snap = Snapshot::new(2, DIRECTOR_MAC, vec![svc], dests).unwrap();
    let mut p = pipeline(&snap);
    let mut f = tcp(client(1), 1000, FLAG_SYN);
    assert_eq!(p.process(&snap, 1, &mut f), Verdict::Tx);
    let parsed = etherparse::PacketHeaders::from_ethernet_slice(&f).unwrap();
    let (Some(etherparse::NetHeaders::Ipv6(ip, _)), Some(etherparse::TransportHeader::Tcp(t))) =
        (&parsed.net, &parsed.transport)
    else {
        panic!("not IPv6 + TCP")
    };
    assert_eq!(
        Ipv6Addr::from(ip.destination),
        "fd00::10".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(Ipv6Addr::from(ip.source), client(1), "the client is kept");
    assert_eq!(t.destination_port, 8080);
    assert_eq!(
        t.checksum,
        t.calc_checksum_ipv6(ip, parsed.payload.slice()).unwrap()
    );
}

/// The worker's way, prefetch then decide: an IPv6 frame is parsed again (its parse is
/// not kept) and decided as `process` decides it.
#[test]
fn a_prefetched_ipv6_frame_is_decided_as_any_other() {
    // A snapshot each: wrr's turns are shared by the workers of one.
    let sa = snapshot(SchedulerKind::Wrr, &[3, 2, 1], None);
    let sb = snapshot(SchedulerKind::Wrr, &[3, 2, 1], None);
    let mut a = pipeline(&sa);
    let mut b = pipeline(&sb);
    for i in 0..60u16 {
        let frame = tcp(client(i), 2000 + i, FLAG_SYN);
        let (mut fa, mut fb) = (frame.clone(), frame);
        let pre = a.prefetch(&fa);
        let va = a.process_packet(
            &sa,
            1,
            &mut xvs_dataplane::packet::Packet::whole(&mut fa),
            pre,
        );
        let vb = b.process(&sb, 1, &mut fb);
        assert_eq!((va, &fa), (vb, &fb));
        assert_eq!(va, Verdict::Tx);
    }
    assert_eq!(a.flows6().count_live(1), 60);
}
