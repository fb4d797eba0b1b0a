//! Shared set-up for xvs's benchmarks: a snapshot and frames for many distinct flows.

#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use xvs_dataplane::fixtures::{self, DIRECTOR_MAC, VIP, VIP6};
use xvs_dataplane::snapshot::{
    Dest, Forwarding, SchedulerKind, Service, ServiceKey, Snapshot, MAX_DESTS,
};
use xvs_dataplane::wire::tcp::FLAG_ACK;
use xvs_dataplane::{Pipeline, PipelineConfig, WorkerCounters};

/// A snapshot with one TCP service on VIP:80 over `n` real servers of weight 1..=3.
pub fn snapshot(scheduler: SchedulerKind, n: usize) -> Snapshot {
    let dests = (0..n)
        .map(|i| {
            Some(Dest {
                addr: Ipv4Addr::from(0x0a01_0000 + i as u32).into(),
                port: 80,
                weight: 1 + (i as u32 % 3),
                mac: Some([2, 0, 0, 1, (i >> 8) as u8, i as u8]),
            })
        })
        .collect();
    let key = ServiceKey {
        addr: VIP.into(),
        port: 80,
        proto: 6,
    };
    let svc = Service::new(
        "bench",
        key,
        scheduler,
        Forwarding::Dr,
        (0..n as u32).collect(),
    );
    Snapshot::new(1, DIRECTOR_MAC, vec![svc], dests).expect("valid")
}

/// As `snapshot`, on the IPv6 VIP over IPv6 real servers.
pub fn snapshot6(scheduler: SchedulerKind, n: usize) -> Snapshot {
    let mut snap = snapshot(scheduler, n);
    let mut svc = snap.services[0].clone();
    svc.key.addr = VIP6.into();
    let dests = snap
        .dests
        .iter_mut()
        .enumerate()
        .map(|(i, d)| {
            d.take().map(|d| Dest {
                addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, (i >> 16) as u16, i as u16).into(),
                ..d
            })
        })
        .collect();
    Snapshot::new(1, DIRECTOR_MAC, vec![svc], dests).expect("valid")
}

pub fn pipeline(flow_capacity: usize) -> Pipeline {
    let cfg = PipelineConfig {
        flow_capacity,
        hash_seed: 0x1234_5678,
        ..PipelineConfig::default()
    };
    Pipeline::new(&cfg, Arc::new(WorkerCounters::new(MAX_DESTS)))
}

/// Every scheduler, with its ipvsadm name.
pub const SCHEDULERS: [(&str, SchedulerKind); 14] = [
    ("rr", SchedulerKind::Rr),
    ("wrr", SchedulerKind::Wrr),
    ("lc", SchedulerKind::Lc),
    ("wlc", SchedulerKind::Wlc),
    ("sed", SchedulerKind::Sed),
    ("nq", SchedulerKind::Nq),
    ("sh", SchedulerKind::Sh),
    ("dh", SchedulerKind::Dh),
    ("lblc", SchedulerKind::Lblc),
    ("lblcr", SchedulerKind::Lblcr),
    ("mh", SchedulerKind::Mh),
    ("fo", SchedulerKind::Fo),
    ("ovf", SchedulerKind::Ovf),
    ("twos", SchedulerKind::Twos),
];

/// The SYN that opens flow number `i` (as `frame`'s addresses and ports).
pub fn syn_frame(i: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(0x0b00_0000 | (i >> 14));
    let sport = 1024 + (i & 0x3fff) as u16;
    fixtures::tcp_frame(src, sport, VIP, 80, xvs_dataplane::wire::tcp::FLAG_SYN, b"")
}

/// A 64-byte-class client frame (TCP ACK, no payload) of flow number `i`.
pub fn frame(i: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(0x0b00_0000 | (i >> 14));
    let sport = 1024 + (i & 0x3fff) as u16;
    fixtures::tcp_frame(src, sport, VIP, 80, FLAG_ACK, b"")
}

/// The IPv6 source of flow number `i`.
fn client6(i: u32) -> (Ipv6Addr, u16) {
    let s = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, (i >> 14) as u16);
    (s, 1024 + (i & 0x3fff) as u16)
}

/// `syn_frame` over IPv6.
pub fn syn_frame6(i: u32) -> Vec<u8> {
    let (src, sport) = client6(i);
    fixtures::tcp6_frame(
        src,
        sport,
        VIP6,
        80,
        xvs_dataplane::wire::tcp::FLAG_SYN,
        b"",
    )
}

/// `frame` over IPv6.
pub fn frame6(i: u32) -> Vec<u8> {
    let (src, sport) = client6(i);
    fixtures::tcp6_frame(src, sport, VIP6, 80, FLAG_ACK, b"")
}
