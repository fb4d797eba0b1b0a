//! The pipeline against the golden packets, and against arbitrary bytes.

#[allow(dead_code)]
mod common;

use std::net::Ipv4Addr;

use common::{pipeline, pipeline_with};
use proptest::prelude::*;
use xvs_dataplane::fixtures::{
    self, PipelineExpect, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT, VIP_UDP_PORT,
};
use xvs_dataplane::pipeline::{NodestPolicy, Prefetched};
use xvs_dataplane::snapshot::Persistence;
use xvs_dataplane::wire::ipv4::Ipv4Packet;
use xvs_dataplane::wire::tcp::{TcpPacket, FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use xvs_dataplane::*;

fn rs_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i]
}

fn dest(i: u8, weight: u32) -> Option<Dest> {
    Some(Dest {
        addr: Ipv4Addr::new(10, 0, 0, 10 + i).into(),
        port: 80,
        weight,
        mac: Some(rs_mac(i)),
    })
}

fn service(port: u16, proto: u8, scheduler: SchedulerKind, dests: Vec<DestId>) -> Service {
    let mut s = Service::new(
        format!("svc{port}"),
        ServiceKey {
            addr: VIP.into(),
            port,
            proto,
        },
        scheduler,
        Forwarding::Dr,
        dests,
    );
    // Each test service counts in its own slot: its port.
    s.stats_id = u32::from(port);
    s
}

/// IPv6 real server `i`: id `V6_BASE + i`.
const V6_BASE: u8 = 10;

fn dest6(i: u8, weight: u32) -> Option<Dest> {
    Some(Dest {
        addr: std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10 + u16::from(i)).into(),
        port: 80,
        weight,
        mac: Some(rs_mac(V6_BASE + i)),
    })
}

fn service6(port: u16, proto: u8, scheduler: SchedulerKind, dests: Vec<DestId>) -> Service {
    let mut s = service(port, proto, scheduler, dests);
    s.key.addr = fixtures::VIP6.into();
    s.name.push_str("v6");
    s.stats_id += 1000;
    s
}

/// VIP:80/tcp (wrr) and VIP:53/udp (rr) over real servers 0.. with `weights`, and the
/// same on the VIP's IPv6 address over IPv6 real servers `V6_BASE`...
fn world(weights: &[u32]) -> Snapshot {
    let ids: Vec<DestId> = (0..weights.len() as u32).collect();
    let ids6: Vec<DestId> = ids.iter().map(|i| i + u32::from(V6_BASE)).collect();
    let mut dests: Vec<Option<Dest>> = vec![None; usize::from(V6_BASE) + weights.len()];
    for (i, &w) in weights.iter().enumerate() {
        dests[i] = dest(i as u8, w);
        dests[usize::from(V6_BASE) + i] = dest6(i as u8, w);
    }
    Snapshot::new(
        1,
        DIRECTOR_MAC,
        vec![
            service(VIP_TCP_PORT, 6, SchedulerKind::Wrr, ids.clone()),
            service(VIP_UDP_PORT, 17, SchedulerKind::Rr, ids),
            service6(VIP_TCP_PORT, 6, SchedulerKind::Wrr, ids6.clone()),
            service6(VIP_UDP_PORT, 17, SchedulerKind::Rr, ids6),
        ],
        dests,
    )
    .unwrap()
}

#[test]
fn golden_packets() {
    for fx in fixtures::all() {
        // A director of its own for each row: wrr's turns are the snapshot's.
        let mut snap = world(&[3, 2, 1]);
        snap.add_own_addrs([fixtures::DIRECTOR.into(), fixtures::DIRECTOR6.into()]);
        let mut p = pipeline();
        p.prepare(&snap);
        let mut frame = fx.frame.clone();
        let verdict = p.process(&snap, 1, &mut frame);
        match fx.pipeline {
            PipelineExpect::NotSteered => continue,
            PipelineExpect::Drop(r) => {
                assert_eq!(verdict, Verdict::Drop(r), "{}", fx.name);
                assert_eq!(
                    frame, fx.frame,
                    "{}: a dropped frame is not modified",
                    fx.name
                );
                assert_eq!(p.counters().drops(r), 1, "{}", fx.name);
            }
            PipelineExpect::Forward => {
                assert_eq!(verdict, Verdict::Tx, "{}", fx.name);
                // wrr 3:2:1 gives the first connection to real server 0 (IPv6's first).
                let v6 = frame[12..14] == [0x86, 0xdd];
                let first = if v6 { V6_BASE } else { 0 };
                let mut want = fx.frame.clone();
                want[..6].copy_from_slice(&rs_mac(first));
                want[6..12].copy_from_slice(&DIRECTOR_MAC);
                assert_eq!(frame, want, "{}: DR changes only the MACs", fx.name);
                // Checked by an independent parser: the frame is still what it was.
                let parsed = etherparse::SlicedPacket::from_ethernet(&frame)
                    .unwrap_or_else(|e| panic!("{}: {e}", fx.name));
                assert!(parsed.transport.is_some(), "{}", fx.name);
                if !v6 {
                    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
                    assert!(ip.verify_checksum(), "{}", fx.name);
                }
                let c = &p.counters().dests[usize::from(first)];
                assert_eq!(c.packets.get(), 1, "{}", fx.name);
                assert_eq!(c.bytes.get(), frame.len() as u64);
            }
        }
    }
}

fn syn(sport: u16) -> Vec<u8> {
    fixtures::tcp_frame(CLIENT, sport, VIP, VIP_TCP_PORT, FLAG_SYN, b"")
}

fn dst_mac(frame: &[u8]) -> u8 {
    frame[5]
}

/// Prepares `p` for `snap` and opens a connection from client port 1; the real server
/// it went to.
fn first_choice(p: &mut Pipeline, snap: &Snapshot) -> u8 {
    p.prepare(snap);
    let mut f = syn(1);
    p.process(snap, 1, &mut f);
    dst_mac(&f)
}

/// Opens a connection on `p` in a world of two equal real servers, then prepares `p`
/// for the world without the one it went to: the TCP service rr over the other one
/// only. Returns that world and the other one's id.
fn remove_first_choice(p: &mut Pipeline) -> (Snapshot, u32) {
    let before = world(&[1, 1]);
    let on = first_choice(p, &before) as usize;
    let mut dests = before.dests.clone();
    dests[on] = None;
    let other = 1 - on as u32;
    let services = vec![service(VIP_TCP_PORT, 6, SchedulerKind::Rr, vec![other])];
    let after = Snapshot::new(2, DIRECTOR_MAC, services, dests).unwrap();
    p.prepare(&after);
    (after, other)
}

#[test]
fn a_connection_stays_on_its_real_server() {
    let snap = world(&[1, 1, 1]);
    let mut p = pipeline();
    p.prepare(&snap);
    let mut first = syn(1234);
    assert_eq!(p.process(&snap, 1, &mut first), Verdict::Tx);
    for flags in [FLAG_ACK, FLAG_ACK, FLAG_FIN | FLAG_ACK, FLAG_ACK] {
        // Other connections in between move the scheduler on.
        p.process(&snap, 2, &mut syn(999));
        let mut f = fixtures::tcp_frame(CLIENT, 1234, VIP, VIP_TCP_PORT, flags, b"x");
        assert_eq!(p.process(&snap, 2, &mut f), Verdict::Tx);
        assert_eq!(dst_mac(&f), dst_mac(&first));
    }
    assert_eq!(p.counters().flows_created.get(), 2);
}

#[test]
fn wrr_shares_over_new_connections() {
    let snap = world(&[3, 2, 1]);
    let mut p = pipeline();
    p.prepare(&snap);
    let mut got = [0u32; 3];
    for sport in 0..600u16 {
        let mut f = syn(10000 + sport);
        assert_eq!(p.process(&snap, 1, &mut f), Verdict::Tx);
        got[dst_mac(&f) as usize] += 1;
    }
    assert_eq!(got, [300, 200, 100]);
    assert_eq!(p.counters().dests[1].conns.get(), 200);
}

#[test]
fn quiescent_server_keeps_its_flows_and_gets_no_new_ones() {
    let mut p = pipeline();
    let on = first_choice(&mut p, &world(&[1, 1]));
    let mut weights = [1, 1];
    weights[on as usize] = 0;
    let after = Snapshot::new(
        2,
        DIRECTOR_MAC,
        world(&weights).services.clone(),
        world(&weights).dests.clone(),
    )
    .unwrap();
    p.prepare(&after);
    let mut again = fixtures::tcp_frame(CLIENT, 1, VIP, VIP_TCP_PORT, FLAG_ACK, b"");
    p.process(&after, 2, &mut again);
    assert_eq!(dst_mac(&again), on, "existing flow continues on weight 0");
    for sport in 100..110 {
        let mut n = syn(sport);
        p.process(&after, 2, &mut n);
        assert_ne!(dst_mac(&n), on, "no new connection to weight 0");
    }
}

#[test]
fn removed_server_flows_are_rescheduled() {
    let mut p = pipeline();
    let (after, other) = remove_first_choice(&mut p);
    let mut again = fixtures::tcp_frame(CLIENT, 1, VIP, VIP_TCP_PORT, FLAG_ACK, b"");
    assert_eq!(p.process(&after, 2, &mut again), Verdict::Tx);
    assert_eq!(dst_mac(&again) as u32, other);
    assert_eq!(p.counters().flows_rescheduled.get(), 1);
}

#[test]
fn no_schedulable_server_drops() {
    let snap = world(&[0, 0]);
    let mut p = pipeline();
    p.prepare(&snap);
    assert_eq!(
        p.process(&snap, 1, &mut syn(1)),
        Verdict::Drop(DropReason::NoDestination)
    );
    // Counted for its service too, and only for it.
    let svc = |port: u16| p.counters().services[port as usize].no_dest.get();
    assert_eq!((svc(VIP_TCP_PORT), svc(VIP_UDP_PORT)), (1, 0));
    assert_eq!(p.counters().drops(DropReason::NoDestination), 1);
}

#[test]
fn checksums_survive_forwarding() {
    let snap = world(&[1]);
    let mut p = pipeline();
    p.prepare(&snap);
    let mut f = fixtures::tcp_frame(CLIENT, 7, VIP, VIP_TCP_PORT, FLAG_ACK, b"payload");
    p.process(&snap, 1, &mut f);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(TcpPacket::new_checked(ip.payload())
        .unwrap()
        .verify_checksum(ip.src(), ip.dst()));
}

fn from(client: Ipv4Addr, sport: u16, flags: u8) -> Vec<u8> {
    fixtures::tcp_frame(client, sport, VIP, VIP_TCP_PORT, flags, b"")
}

#[test]
fn removed_server_policies() {
    for (policy, verdict, rescheduled) in [
        (NodestPolicy::Reschedule, Verdict::Tx, 1),
        (
            NodestPolicy::Expire,
            Verdict::Drop(DropReason::DestUnavailable),
            0,
        ),
        (
            NodestPolicy::Drop,
            Verdict::Drop(DropReason::DestUnavailable),
            0,
        ),
    ] {
        let mut p = pipeline_with(policy);
        let (after, _) = remove_first_choice(&mut p);
        let ack = || fixtures::tcp_frame(CLIENT, 1, VIP, VIP_TCP_PORT, FLAG_ACK, b"");
        assert_eq!(p.process(&after, 2, &mut ack()), verdict, "{policy:?}");
        assert_eq!(
            p.counters().flows_rescheduled.get(),
            rescheduled,
            "{policy:?}"
        );
        // Expire forgot the flow: its next ACK opens none (only a SYN does, sloppy_tcp
        // off). Drop keeps dropping.
        let again = p.process(&after, 2, &mut ack());
        let want = match policy {
            NodestPolicy::Drop => Verdict::Drop(DropReason::DestUnavailable),
            NodestPolicy::Expire => Verdict::Drop(DropReason::NoFlow),
            NodestPolicy::Reschedule => Verdict::Tx,
        };
        assert_eq!(again, want, "{policy:?}");
    }
}

/// sloppy_tcp: off, only a SYN opens a flow; on (or auto with a hashing scheduler), any
/// valid packet does, so a backup carries on a connection begun on another director.
#[test]
fn only_a_syn_opens_a_flow_unless_sloppy() {
    let mut snap = world(&[1, 1]);
    let mut p = pipeline();
    p.prepare(&snap);
    for flags in [FLAG_ACK, FLAG_ACK | FLAG_FIN, FLAG_RST, FLAG_SYN | FLAG_ACK] {
        assert_eq!(
            p.process(&snap, 1, &mut from(CLIENT, 99, flags)),
            Verdict::Drop(DropReason::NoFlow),
            "{flags:#x}"
        );
    }
    assert_eq!(p.counters().drops(DropReason::NoFlow), 4);
    assert_eq!(p.counters().flows_created.get(), 0);
    snap.services[0].sloppy_tcp = true;
    assert_eq!(
        p.process(&snap, 1, &mut from(CLIENT, 99, FLAG_ACK)),
        Verdict::Tx
    );
    assert_eq!(p.counters().flows_created.get(), 1);
    // auto: on for the schedulers every director agrees on.
    for (kind, sloppy) in [
        (SchedulerKind::Mh, true),
        (SchedulerKind::Sh, true),
        (SchedulerKind::Dh, true),
        (SchedulerKind::Fo, true),
        (SchedulerKind::Rr, false),
        (SchedulerKind::Wlc, false),
        (SchedulerKind::Lblc, false),
    ] {
        assert_eq!(service(1, 6, kind, vec![]).sloppy_tcp, sloppy, "{kind:?}");
    }
}

#[test]
fn active_and_inactive_follow_tcp_state_and_expiry() {
    let snap = world(&[1]);
    let mut p = pipeline();
    p.prepare(&snap);
    let d = |p: &Pipeline| {
        (
            p.counters().dests[0].active.get(),
            p.counters().dests[0].inactive.get(),
        )
    };
    p.process(&snap, 1, &mut syn(1));
    assert_eq!(d(&p), (0, 1), "SYN_RECV is inactive");
    p.process(&snap, 1, &mut from(CLIENT, 1, FLAG_ACK));
    assert_eq!(d(&p), (1, 0), "ESTABLISHED is active");
    p.process(&snap, 1, &mut syn(2));
    assert_eq!(d(&p), (1, 1));
    p.process(&snap, 1, &mut from(CLIENT, 1, FLAG_FIN | FLAG_ACK));
    assert_eq!(d(&p), (0, 2), "FIN_WAIT is inactive");
    // SYN_RECV times out after 60 s, FIN_WAIT after 120 s: the sweep takes them out.
    let buckets = p.flows().buckets();
    p.sweep(70, buckets);
    assert_eq!(d(&p), (0, 1));
    p.sweep(200, buckets);
    assert_eq!(d(&p), (0, 0));
    assert_eq!(p.counters().flows_expired.get(), 2);
}

fn persistent_world(netmask: u32, extra_ports: Vec<u16>) -> Snapshot {
    let mut svc = service(VIP_TCP_PORT, 6, SchedulerKind::Rr, vec![0, 1, 2]);
    svc.persistence = Some(Persistence {
        timeout: 300,
        netmask,
        netmask6: u128::MAX,
    });
    svc.extra_ports = extra_ports;
    Snapshot::new(
        1,
        DIRECTOR_MAC,
        vec![svc],
        (0..3).map(|i| dest(i, 1)).collect(),
    )
    .unwrap()
}

#[test]
fn persistence_sticks_a_client_across_connections() {
    let snap = persistent_world(u32::MAX, vec![]);
    let mut p = pipeline();
    p.prepare(&snap);
    let mut first = syn(1000);
    p.process(&snap, 1, &mut first);
    for sport in 1001..1010 {
        let mut f = syn(sport);
        p.process(&snap, 2, &mut f);
        assert_eq!(dst_mac(&f), dst_mac(&first), "same client, same server");
    }
    // Another client goes elsewhere (rr), and after the timeout the first one may too.
    let mut other = from(Ipv4Addr::new(10, 9, 9, 9), 1, FLAG_SYN);
    p.process(&snap, 2, &mut other);
    assert_ne!(dst_mac(&other), dst_mac(&first));
    let mut late = syn(2000);
    p.process(&snap, 1000, &mut late);
    assert_ne!(
        dst_mac(&late),
        dst_mac(&first),
        "template expired: rr moved on"
    );
}

#[test]
fn persistence_granularity_and_ports() {
    // /24 granularity, ports 80 and 443 as one service (the firewall-mark example).
    let snap = persistent_world(0xffff_ff00, vec![443]);
    let mut p = pipeline();
    p.prepare(&snap);
    let mut a = from(Ipv4Addr::new(192, 168, 7, 1), 5000, FLAG_SYN);
    p.process(&snap, 1, &mut a);
    let mut b = from(Ipv4Addr::new(192, 168, 7, 200), 5000, FLAG_SYN);
    p.process(&snap, 1, &mut b);
    assert_eq!(dst_mac(&a), dst_mac(&b), "same /24, same server");
    let mut tls = fixtures::tcp_frame(Ipv4Addr::new(192, 168, 7, 1), 5001, VIP, 443, FLAG_SYN, b"");
    assert_eq!(p.process(&snap, 1, &mut tls), Verdict::Tx);
    assert_eq!(dst_mac(&tls), dst_mac(&a), "443 follows 80");
    let mut c = from(Ipv4Addr::new(192, 168, 8, 1), 5000, FLAG_SYN);
    p.process(&snap, 1, &mut c);
    assert_ne!(
        dst_mac(&c),
        dst_mac(&a),
        "another /24 is scheduled on its own"
    );
}

#[test]
fn ops_schedules_every_datagram() {
    let mut svc = service(VIP_UDP_PORT, 17, SchedulerKind::Rr, vec![0, 1, 2]);
    svc.ops = true;
    let snap = Snapshot::new(
        1,
        DIRECTOR_MAC,
        vec![svc],
        (0..3).map(|i| dest(i, 1)).collect(),
    )
    .unwrap();
    let mut p = pipeline();
    p.prepare(&snap);
    let got: Vec<u8> = (0..6)
        .map(|_| {
            let mut f = fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q");
            assert_eq!(p.process(&snap, 1, &mut f), Verdict::Tx);
            dst_mac(&f)
        })
        .collect();
    assert_eq!(
        got,
        [0, 1, 2, 0, 1, 2],
        "same tuple, a new server each datagram"
    );
    assert_eq!(p.counters().flows_created.get(), 0);
}

proptest! {
    // Connection gauges never underflow and always equal the live flows, whatever the
    // order of segments, expiries and snapshot changes.
    #[test]
    fn gauges_match_live_flows(ops in proptest::collection::vec((0u16..40, 0u8..5, 0u32..3), 1..300)) {
        let snap = world(&[1, 2, 1]);
        let mut p = pipeline();
        p.prepare(&snap);
        let mut now = 1;
        for (sport, kind, tick) in ops {
            now += tick;
            let flags = [FLAG_SYN, FLAG_ACK, FLAG_FIN | FLAG_ACK, xvs_dataplane::wire::tcp::FLAG_RST, FLAG_ACK][kind as usize];
            p.process(&snap, now, &mut from(CLIENT, sport, flags));
            if tick == 2 {
                let b = p.flows().buckets();
                p.sweep(now, b / 2);
            }
        }
        let b = p.flows().buckets();
        p.sweep(now, b);
        let live = p.flows().count_live(now) as u64;
        let gauges: u64 = (0..3).map(|i| p.counters().dests[i].active.get() + p.counters().dests[i].inactive.get()).sum();
        prop_assert_eq!(gauges, live);
    }
}

proptest! {
    // Any bytes get a verdict, never a panic, and every frame is counted exactly once.
    #[test]
    fn arbitrary_frames_get_a_verdict(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..128), 1..64)) {
        let snap = world(&[1, 2]);
        let mut p = pipeline();
        p.prepare(&snap);
        let mut tx = 0u64;
        for mut f in frames.clone() {
            if p.process(&snap, 1, &mut f) == Verdict::Tx {
                tx += 1;
            }
        }
        let drops: u64 = DropReason::ALL.iter().map(|r| p.counters().drops(*r)).sum();
        prop_assert_eq!(drops + tx, frames.len() as u64);
    }

    // Frames that start as valid VIP traffic and are then cut or corrupted anywhere.
    #[test]
    fn mutated_vip_frames_get_a_verdict(cut in 0usize..80, at in 0usize..80, byte in any::<u8>()) {
        let snap = world(&[1]);
        let mut p = pipeline();
        p.prepare(&snap);
        let mut f = syn(5);
        if at < f.len() { f[at] = byte; }
        f.truncate(cut.max(1));
        let _ = p.process(&snap, 1, &mut f);
    }
}

proptest! {
    // The fuzz target's harness, as a property test that runs in `make test`.
    #[test]
    fn fuzz_harness(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        fixtures::exercise(&data);
    }
}

mod tun {
    use super::*;
    use xvs_dataplane::packet::Packet;
    use xvs_dataplane::wire::icmp::IcmpPacket;
    use xvs_dataplane::wire::ipv4::PROTO_IPIP;

    const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn tun_world(mtu: u16) -> Snapshot {
        let mut snap = Snapshot::new(
            1,
            DIRECTOR_MAC,
            vec![service(VIP_TCP_PORT, 6, SchedulerKind::Rr, vec![0])],
            vec![dest(0, 1)],
        )
        .unwrap();
        snap.services[0].forwarding = Forwarding::Tun;
        // Mid-connection frames are sent without their SYN.
        snap.services[0].sloppy_tcp = true;
        snap.local_addr = DIRECTOR;
        snap.mtu = mtu;
        snap
    }

    /// Runs `frame` with `headroom` bytes in front; returns the verdict and what is sent.
    fn run(snap: &Snapshot, frame: &[u8], headroom: usize) -> (Verdict, Vec<u8>, Pipeline) {
        let mut p = pipeline();
        p.prepare(snap);
        let mut buf = vec![0u8; headroom + frame.len() + 128];
        buf[headroom..headroom + frame.len()].copy_from_slice(frame);
        let mut pkt = Packet::new(&mut buf, headroom, frame.len()).unwrap();
        let v = p.process_packet(snap, 1, &mut pkt, Prefetched::NONE);
        let out = pkt.data().to_vec();
        (v, out, p)
    }

    #[test]
    fn encapsulates_in_ipip() {
        let snap = tun_world(1500);
        let frame = fixtures::tcp_frame(CLIENT, 4000, VIP, VIP_TCP_PORT, FLAG_SYN, b"");
        let (v, out, p) = run(&snap, &frame, 256);
        assert_eq!(v, Verdict::Tx);
        assert_eq!(&out[..6], &rs_mac(0));
        let outer = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(
            (outer.src(), outer.dst(), outer.protocol()),
            (DIRECTOR, Ipv4Addr::new(10, 0, 0, 10), PROTO_IPIP)
        );
        assert!(outer.verify_checksum());
        assert_eq!(outer.payload(), &frame[14..], "inner packet intact");
        assert_eq!(p.counters().dests[0].packets.get(), 1);
    }

    #[test]
    fn too_big_gets_icmp_frag_needed() {
        let snap = tun_world(1500);
        let frame = fixtures::tcp_frame(CLIENT, 4000, VIP, VIP_TCP_PORT, FLAG_ACK, &[0u8; 1460]);
        let (v, out, p) = run(&snap, &frame, 256);
        assert_eq!(v, Verdict::Tx, "the reply goes back out");
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (DIRECTOR, CLIENT));
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (icmp.msg_type(), icmp.code(), icmp.next_hop_mtu()),
            (3, 4, 1480)
        );
        assert_eq!(p.counters().icmp_frag_needed.get(), 1);
        assert_eq!(p.counters().dests[0].packets.get(), 0);
        // Exactly at the limit it fits.
        let fits = fixtures::tcp_frame(CLIENT, 4000, VIP, VIP_TCP_PORT, FLAG_ACK, &[0u8; 1440]);
        assert_eq!(run(&snap, &fits, 256).1.len(), fits.len() + 20);
    }

    #[test]
    fn no_headroom_and_fragmentable_are_dropped() {
        let snap = tun_world(1500);
        let frame = fixtures::tcp_frame(CLIENT, 4000, VIP, VIP_TCP_PORT, FLAG_SYN, b"");
        assert_eq!(
            run(&snap, &frame, 8).0,
            Verdict::Drop(DropReason::NoHeadroom)
        );
        let mut big = fixtures::tcp_frame(CLIENT, 4000, VIP, VIP_TCP_PORT, FLAG_ACK, &[0u8; 1460]);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut big[14..]);
            ip.set_flags_offset(false);
            ip.fill_checksum();
        }
        assert_eq!(run(&snap, &big, 256).0, Verdict::Drop(DropReason::TooBig));
    }
}

/// A DR client that closed a connection (FIN, then ACKs: the director never sees it reach
/// TIME_WAIT) and opens a new one from the same port within the FIN_WAIT timeout: a new
/// connection, scheduled and counted as such (IPVS's conn_reuse_mode 2 for DR/TUN).
#[test]
fn a_reused_client_port_is_a_new_connection() {
    let snap = world(&[1, 1]);
    let mut p = pipeline();
    p.prepare(&snap);
    let mut first = syn(7);
    assert_eq!(p.process(&snap, 1, &mut first), Verdict::Tx);
    let first_rs = dst_mac(&first) as usize;
    for flags in [FLAG_ACK, FLAG_FIN | FLAG_ACK, FLAG_ACK] {
        let mut seg = fixtures::tcp_frame(CLIENT, 7, VIP, VIP_TCP_PORT, flags, b"");
        assert_eq!(p.process(&snap, 1, &mut seg), Verdict::Tx);
    }
    let mut again = syn(7);
    assert_eq!(p.process(&snap, 2, &mut again), Verdict::Tx);
    let conns = |i: usize| p.counters().dests[i].conns.get();
    assert_eq!(conns(0) + conns(1), 2, "the reuse is counted");
    assert_ne!(
        dst_mac(&again) as usize,
        first_rs,
        "scheduled anew: wrr 1:1 moves on to the other server"
    );
    assert_eq!(p.counters().flows_created.get(), 2);
}

proptest! {
    // The worker's path (parse once at prefetch, decide on that) gives exactly what
    // parsing at decision time gives: the same verdicts, the same rewritten bytes.
    #[test]
    fn prefetched_frames_are_decided_alike(
        frames in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..128),
                (0u16..64, 0u8..3).prop_map(|(sport, k)| from(CLIENT, sport, [FLAG_SYN, FLAG_ACK, FLAG_FIN | FLAG_ACK][k as usize])),
            ],
            1..64,
        )
    ) {
        // A snapshot each: wrr's turns are shared by the workers of one.
        let (sa, sb) = (world(&[1, 2]), world(&[1, 2]));
        let (mut a, mut b) = (pipeline(), pipeline());
        a.prepare(&sa);
        b.prepare(&sb);
        for f in frames {
            let (mut fa, mut fb) = (f.clone(), f);
            let pre = b.prefetch(&fb);
            let va = a.process(&sa, 1, &mut fa);
            let vb = b.process_packet(&sb, 1, &mut xvs_dataplane::packet::Packet::whole(&mut fb), pre);
            prop_assert_eq!(va, vb);
            prop_assert_eq!(fa, fb);
        }
    }
}
