//! The pipeline against the golden packets, and against arbitrary bytes.

use std::net::Ipv4Addr;
use std::sync::Arc;

use proptest::prelude::*;
use xvs_dataplane::fixtures::{
    self, PipelineExpect, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT, VIP_UDP_PORT,
};
use xvs_dataplane::flow::Timeouts;
use xvs_dataplane::snapshot::MAX_DESTS;
use xvs_dataplane::wire::ipv4::Ipv4Packet;
use xvs_dataplane::wire::tcp::{TcpPacket, FLAG_ACK, FLAG_FIN, FLAG_SYN};
use xvs_dataplane::*;

fn rs_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i]
}

fn dest(i: u8, weight: u32) -> Option<Dest> {
    Some(Dest {
        addr: Ipv4Addr::new(10, 0, 0, 10 + i),
        port: 80,
        weight,
        mac: Some(rs_mac(i)),
    })
}

fn service(port: u16, proto: u8, scheduler: SchedulerKind, dests: Vec<DestId>) -> Service {
    Service {
        name: format!("svc{port}"),
        key: ServiceKey {
            addr: VIP,
            port,
            proto,
        },
        scheduler,
        forwarding: Forwarding::Dr,
        dests,
    }
}

fn world(weights: &[u32]) -> Snapshot {
    let ids: Vec<DestId> = (0..weights.len() as u32).collect();
    Snapshot::new(
        1,
        DIRECTOR_MAC,
        vec![
            service(VIP_TCP_PORT, 6, SchedulerKind::Wrr, ids.clone()),
            service(VIP_UDP_PORT, 17, SchedulerKind::Rr, ids),
        ],
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| dest(i as u8, w))
            .collect(),
    )
    .unwrap()
}

fn pipeline() -> Pipeline {
    let cfg = PipelineConfig {
        flow_capacity: 4096,
        hash_seed: 7,
        timeouts: Timeouts::default(),
    };
    Pipeline::new(&cfg, Arc::new(WorkerCounters::new(MAX_DESTS)))
}

#[test]
fn golden_packets() {
    let snap = world(&[3, 2, 1]);
    for fx in fixtures::all() {
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
                // wrr 3:2:1 gives the first connection to real server 0.
                let mut want = fx.frame.clone();
                want[..6].copy_from_slice(&rs_mac(0));
                want[6..12].copy_from_slice(&DIRECTOR_MAC);
                assert_eq!(frame, want, "{}: DR changes only the MACs", fx.name);
                let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
                assert!(ip.verify_checksum(), "{}", fx.name);
                assert_eq!(p.counters().dests[0].packets.get(), 1);
                assert_eq!(p.counters().dests[0].bytes.get(), frame.len() as u64);
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
    let before = world(&[1, 1]);
    p.prepare(&before);
    let mut f = syn(1);
    p.process(&before, 1, &mut f);
    let on = dst_mac(&f);
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
    let before = world(&[1, 1]);
    p.prepare(&before);
    let mut f = syn(1);
    p.process(&before, 1, &mut f);
    let on = dst_mac(&f) as usize;
    let mut dests = before.dests.clone();
    dests[on] = None;
    let other = 1 - on as u32;
    let services = vec![service(VIP_TCP_PORT, 6, SchedulerKind::Rr, vec![other])];
    let after = Snapshot::new(2, DIRECTOR_MAC, services, dests).unwrap();
    p.prepare(&after);
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
