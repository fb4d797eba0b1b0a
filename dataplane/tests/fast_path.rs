//! The pipeline's side of the XDP fast path: which flows it hands over, with what, and
//! when it takes them back.

mod common;

use std::net::Ipv4Addr;

use common::pipeline;
use xvs_dataplane::fixtures::{self, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT, VIP_UDP_PORT};
use xvs_dataplane::flow::{FlowKey, TcpState, Timeouts};
use xvs_dataplane::offload::FastKey;
use xvs_dataplane::pipeline::Prefetched;
use xvs_dataplane::snapshot::Persistence;
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use xvs_dataplane::*;

const RS_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0];

fn world(forwarding: Forwarding, fast_generation: u32, persistent: bool) -> Snapshot {
    let dests = vec![Some(Dest {
        addr: Ipv4Addr::new(10, 0, 0, 11).into(),
        port: 0,
        weight: 1,
        mac: Some(RS_MAC),
    })];
    let svc = |port, proto| {
        let mut s = common::rr_service(port, proto, forwarding);
        if persistent {
            s.persistence = Some(Persistence {
                timeout: 300,
                netmask: u32::MAX,
                netmask6: u128::MAX,
            });
        }
        s
    };
    let mut snap = Snapshot::new(
        3,
        DIRECTOR_MAC,
        vec![svc(VIP_TCP_PORT, 6), svc(VIP_UDP_PORT, 17)],
        dests,
    )
    .unwrap();
    snap.local_addr = Ipv4Addr::new(10, 0, 0, 2);
    snap.mtu = 1500;
    snap.fast_generation = fast_generation;
    snap
}

/// Runs `frame` (with headroom for TUN) and returns (upserts, removals) it queued.
fn run(p: &mut Pipeline, snap: &Snapshot, frame: &[u8]) -> (usize, usize) {
    p.prepare(snap);
    let mut buf = vec![0u8; 256 + frame.len()];
    buf[256..].copy_from_slice(frame);
    let mut pkt = xvs_dataplane::packet::Packet::new(&mut buf, 256, frame.len()).unwrap();
    assert_eq!(
        p.process_packet(snap, 10, &mut pkt, Prefetched::NONE),
        Verdict::Tx
    );
    let ops = p.fast_ops();
    let got = (ops.v4.keys.len(), ops.v4.removed.len());
    ops.clear();
    got
}

fn tcp(flags: u8) -> Vec<u8> {
    fixtures::tcp_frame(CLIENT, 40000, VIP, VIP_TCP_PORT, flags, b"")
}

/// A UDP flow goes to the fast path at its second packet, once it has shown it carries
/// traffic: a spoofed flood's one-packet flows never reach the shared map.
#[test]
fn a_udp_flow_is_handed_over_at_its_second_packet_with_its_decision() {
    for fwd in [Forwarding::Dr, Forwarding::Tun, Forwarding::Nat] {
        let snap = world(fwd, 9, false);
        let mut p = pipeline();
        let frame = fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q");
        assert_eq!(run(&mut p, &snap, &frame), (0, 0), "first packet: not yet");
        p.prepare(&snap);
        let mut buf = vec![0u8; 256 + frame.len()];
        buf[256..].copy_from_slice(&frame);
        let mut pkt = xvs_dataplane::packet::Packet::new(&mut buf, 256, frame.len()).unwrap();
        assert_eq!(
            p.process_packet(&snap, 10, &mut pkt, Prefetched::NONE),
            Verdict::Tx
        );
        let ops = p.fast_ops();
        assert_eq!(ops.v4.keys.len(), 1, "{fwd:?}");
        let key = FlowKey::new(u32::from(CLIENT), u32::from(VIP), 5353, VIP_UDP_PORT, 17);
        assert_eq!(ops.v4.keys[0], FastKey::of(&key));
        let v = ops.v4.values[0];
        assert_eq!(v.dst_mac, RS_MAC);
        assert_eq!(v.tun, u8::from(fwd == Forwarding::Tun));
        assert_eq!(v.nat, u8::from(fwd == Forwarding::Nat));
        assert_eq!(v.tun_saddr, [10, 0, 0, 2]);
        assert_eq!(v.daddr, [10, 0, 0, 11]);
        // The server has no port of its own: NAT keeps the packet's.
        assert_eq!(v.nat_port, VIP_UDP_PORT.to_be_bytes());
        assert_eq!((v.mtu, v.stats_slot, v.generation), (1500, 0, 9));
        assert_eq!(v.timeout, Timeouts::default().udp, "{fwd:?}");
    }
}

#[test]
fn tcp_is_handed_over_when_established_and_taken_back_at_fin() {
    let snap = world(Forwarding::Dr, 1, false);
    let mut p = pipeline();
    assert_eq!(run(&mut p, &snap, &tcp(FLAG_SYN)), (0, 0), "SYN: not yet");
    assert_eq!(run(&mut p, &snap, &tcp(FLAG_ACK)), (1, 0), "established");
    // A packet reaching the worker again means the entry was missing: written again.
    assert_eq!(run(&mut p, &snap, &tcp(FLAG_ACK)), (1, 0));
    assert_eq!(
        run(&mut p, &snap, &tcp(FLAG_FIN | FLAG_ACK)),
        (0, 1),
        "FIN takes it back"
    );
    assert_eq!(
        run(&mut p, &snap, &tcp(FLAG_ACK)),
        (0, 0),
        "after FIN the worker keeps the flow"
    );
    // RST of an established flow too.
    let mut p = pipeline();
    run(&mut p, &snap, &tcp(FLAG_SYN));
    run(&mut p, &snap, &tcp(FLAG_ACK));
    assert_eq!(run(&mut p, &snap, &tcp(FLAG_RST)), (0, 1));
}

#[test]
fn a_reused_port_takes_the_entry_back() {
    let snap = world(Forwarding::Dr, 1, false);
    let mut p = pipeline();
    run(&mut p, &snap, &tcp(FLAG_SYN));
    run(&mut p, &snap, &tcp(FLAG_ACK));
    run(&mut p, &snap, &tcp(FLAG_FIN | FLAG_ACK));
    // A new connection on the same tuple, after the old one ended on our side.
    let (_, removed) = run(&mut p, &snap, &tcp(FLAG_SYN));
    assert_eq!(removed, 0, "FIN already removed it: nothing left to remove");
    run(&mut p, &snap, &tcp(FLAG_ACK));
    assert_eq!(
        p.flows()
            .iter_live_buckets(0, p.flows().buckets(), 10)
            .filter(|f| f.tcp_state() == TcpState::Established)
            .count(),
        1
    );
}

#[test]
fn no_fast_path_when_off_or_for_persistent_services() {
    let udp = fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q");
    for snap in [
        world(Forwarding::Dr, 0, false),
        world(Forwarding::Nat, 1, true),
        world(Forwarding::Dr, 1, true),
    ] {
        let mut p = pipeline();
        for _ in 0..3 {
            assert_eq!(run(&mut p, &snap, &udp), (0, 0));
        }
    }
}

/// A NAT flow's entry names the server's own port when it has one (mapped ports).
#[test]
fn a_nat_flow_is_handed_over_with_its_mapped_port() {
    let mut snap = world(Forwarding::Nat, 1, false);
    let mut dests: Vec<Option<Dest>> = vec![Some(Dest {
        addr: Ipv4Addr::new(10, 0, 0, 11).into(),
        port: 8080,
        weight: 1,
        mac: Some(RS_MAC),
    })];
    snap = Snapshot::new(
        3,
        DIRECTOR_MAC,
        snap.services.clone(),
        std::mem::take(&mut dests),
    )
    .unwrap();
    snap.fast_generation = 1;
    let mut p = pipeline();
    assert_eq!(run(&mut p, &snap, &tcp(FLAG_SYN)), (0, 0), "SYN: not yet");
    p.prepare(&snap);
    assert_eq!(p.process(&snap, 10, &mut tcp(FLAG_ACK)), Verdict::Tx);
    let ops = p.fast_ops();
    let v = ops.v4.values[0];
    assert_eq!(
        (v.nat, v.daddr, v.nat_port),
        (1, [10, 0, 0, 11], 8080u16.to_be_bytes())
    );
}

#[test]
fn the_sweep_keeps_a_flow_the_fast_path_still_carries() {
    let snap = world(Forwarding::Dr, 1, false);
    let mut p = pipeline();
    for _ in 0..2 {
        run(
            &mut p,
            &snap,
            &fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q"),
        );
    }
    let udp = Timeouts::default().udp;
    let all = p.flows().buckets();
    // Past its worker-side expiry, but seen by XDP a moment ago: it lives on.
    let late = 10 + udp + 5;
    p.sweep_renewing(late, all, |_| Some(late - 1), |_| None);
    assert_eq!(p.flows().count_live(late), 1, "renewed");
    // Silent there too: it expires.
    let later = late + udp + 5;
    p.sweep_renewing(later, all, |_| Some(late - 1), |_| None);
    assert_eq!(p.flows().count_live(later), 0);
    assert_eq!(p.counters().flows_expired.get(), 1);
}

/// An IPv6 DR flow is handed over as IPv4's, into the IPv6 map's batch.
#[test]
fn an_ipv6_dr_flow_is_handed_over_to_the_ipv6_map() {
    let dests = vec![Some(Dest {
        addr: "2001:db8::11".parse::<std::net::IpAddr>().unwrap(),
        port: 0,
        weight: 1,
        mac: Some(RS_MAC),
    })];
    let svc = Service::new(
        "web6",
        ServiceKey {
            addr: fixtures::VIP6.into(),
            port: VIP_TCP_PORT,
            proto: 6,
        },
        SchedulerKind::Rr,
        Forwarding::Dr,
        vec![0],
    );
    let mut snap = Snapshot::new(3, DIRECTOR_MAC, vec![svc], dests).unwrap();
    snap.fast_generation = 5;
    let mut p = pipeline();
    let frame = |flags| {
        fixtures::tcp6_frame(
            fixtures::CLIENT6,
            40000,
            fixtures::VIP6,
            VIP_TCP_PORT,
            flags,
            b"",
        )
    };
    let mut counts = Vec::new();
    for flags in [FLAG_SYN, FLAG_ACK, FLAG_FIN | FLAG_ACK] {
        p.prepare(&snap);
        let mut f = frame(flags);
        assert_eq!(p.process(&snap, 10, &mut f), Verdict::Tx);
        let ops = p.fast_ops();
        assert!(ops.v4.is_empty(), "nothing for the IPv4 map");
        counts.push((ops.v6.keys.len(), ops.v6.removed.len()));
        if let Some(v) = ops.v6.values.first() {
            assert_eq!((v.dst_mac, v.tun, v.generation), (RS_MAC, 0, 5));
            let k = ops.v6.keys[0];
            assert_eq!(k.saddr, fixtures::CLIENT6.octets());
            assert_eq!(k.daddr, fixtures::VIP6.octets());
            assert_eq!(
                (k.sport, k.dport, k.proto),
                (40000u16.to_be_bytes(), [0, 80], 6)
            );
        }
        ops.clear();
    }
    assert_eq!(
        counts,
        [(0, 0), (1, 0), (0, 1)],
        "SYN: not yet; established; FIN"
    );
}

/// A flow the worker never saw, whose entry the fast path's map holds (a killed xvs's,
/// taken over): its packet is adopted as an established flow and forwarded, when the
/// entry names the service's real server with the MAC this snapshot has; otherwise it
/// is dropped as any unknown flow's non-SYN packet.
#[test]
fn an_unknown_flow_in_the_fast_paths_map_is_adopted_only_as_it_names_a_real_server() {
    use xvs_dataplane::offload::{FastKeyOf, FastValue};
    for (mac, adopted) in [(RS_MAC, true), ([2, 0, 0, 0, 9, 9], false)] {
        let snap = world(Forwarding::Dr, 9, false);
        let mut p = pipeline();
        let key = FastKey::of(&FlowKey::new(
            u32::from(CLIENT),
            u32::from(VIP),
            40000,
            VIP_TCP_PORT,
            6,
        ));
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = std::sync::Arc::clone(&asked);
        p.set_adoption(Box::new(move |k| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (k == FastKeyOf::V4(key)).then_some(FastValue {
                dst_mac: mac,
                stats_slot: 0,
                generation: 8,
                ..FastValue::default()
            })
        }));
        p.prepare(&snap);
        let v = p.process(&snap, 10, &mut tcp(FLAG_ACK));
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1);
        let c = p.counters();
        if adopted {
            assert_eq!(v, Verdict::Tx);
            assert_eq!(c.flows_adopted.get(), 1);
            assert_eq!(c.dests[0].active.get(), 1, "counted established");
            // A known flow now: no further lookup.
            assert_eq!(p.process(&snap, 10, &mut tcp(FLAG_ACK)), Verdict::Tx);
            assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1);
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::NoFlow));
            assert_eq!(c.flows_adopted.get(), 0);
        }
    }
}

/// A NAT flow is adopted only from an entry that translates to the real server as this
/// snapshot has it: a NAT entry, the server's address, its port.
#[test]
fn a_nat_flow_is_adopted_only_from_an_entry_naming_its_address_and_port() {
    use xvs_dataplane::offload::FastValue;
    let right = FastValue {
        dst_mac: RS_MAC,
        nat: 1,
        daddr: [10, 0, 0, 11],
        nat_port: VIP_TCP_PORT.to_be_bytes(),
        ..FastValue::default()
    };
    let cases = [
        (right, true),
        (FastValue { nat: 0, ..right }, false),
        (
            FastValue {
                daddr: [10, 0, 0, 12],
                ..right
            },
            false,
        ),
        (
            FastValue {
                nat_port: [0x1f, 0x90],
                ..right
            },
            false,
        ),
    ];
    for (entry, adopted) in cases {
        let snap = world(Forwarding::Nat, 9, false);
        let mut p = pipeline();
        p.set_adoption(Box::new(move |_| Some(entry)));
        p.prepare(&snap);
        let v = p.process(&snap, 10, &mut tcp(FLAG_ACK));
        let want = if adopted {
            Verdict::Tx
        } else {
            Verdict::Drop(DropReason::NoFlow)
        };
        assert_eq!(v, want, "{entry:?}");
        assert_eq!(p.counters().flows_adopted.get(), u64::from(adopted));
    }
}

/// Lookups for unknown flows are bounded per batch: a flood of spoofed ACKs costs at
/// most `ADOPT_PER_BATCH` map lookups a batch.
#[test]
fn adoption_lookups_are_bounded_per_batch() {
    use xvs_dataplane::pipeline::ADOPT_PER_BATCH;
    let snap = world(Forwarding::Dr, 9, false);
    let mut p = pipeline();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = std::sync::Arc::clone(&asked);
    p.set_adoption(Box::new(move |_| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    }));
    p.prepare(&snap);
    for sport in 0..3 * ADOPT_PER_BATCH as u16 {
        let mut f = fixtures::tcp_frame(CLIENT, 1000 + sport, VIP, VIP_TCP_PORT, FLAG_ACK, b"");
        assert_eq!(
            p.process(&snap, 10, &mut f),
            Verdict::Drop(DropReason::NoFlow)
        );
    }
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::Relaxed),
        ADOPT_PER_BATCH
    );
}
