//! The NAT connections a worker tells the steering program: the reply key of each NAT
//! flow it creates or installs from a peer, once per flow, and nothing for DR.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;

use common::pipeline;
use xvs_dataplane::fixtures::{self, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT, VIP_UDP_PORT};
use xvs_dataplane::flow::{FlowKey, Timeouts};
use xvs_dataplane::offload::FastKey;
use xvs_dataplane::sync::{SyncChannel, SyncKey, SyncRecord};
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use xvs_dataplane::*;

const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);

fn world(forwarding: Forwarding) -> Snapshot {
    let dests = vec![Some(Dest {
        addr: RIP.into(),
        port: 8080,
        weight: 1,
        mac: Some([2, 0, 0, 0, 1, 0]),
    })];
    let svc = |port, proto| common::rr_service(port, proto, forwarding);
    Snapshot::new(
        1,
        DIRECTOR_MAC,
        vec![svc(VIP_TCP_PORT, 6), svc(VIP_UDP_PORT, 17)],
        dests,
    )
    .unwrap()
}

/// Runs `frame`; returns the IPv4 reply keys it queued (and clears them).
fn run(p: &mut Pipeline, snap: &Snapshot, frame: &[u8]) -> Vec<FastKey> {
    p.prepare(snap);
    let mut f = frame.to_vec();
    assert_eq!(p.process(snap, 10, &mut f), Verdict::Tx);
    take(p)
}

fn take(p: &mut Pipeline) -> Vec<FastKey> {
    let ops = p.nat_conn_ops();
    let got = ops.v4().to_vec();
    ops.clear();
    got
}

fn reply(cport: u16, proto: u8) -> FastKey {
    FastKey::of(&FlowKey::new(
        u32::from(RIP),
        u32::from(CLIENT),
        8080,
        cport,
        proto,
    ))
}

#[test]
fn a_new_nat_flow_tells_its_reply_once() {
    let snap = world(Forwarding::Nat);
    let mut p = pipeline();
    let syn = fixtures::tcp_frame(CLIENT, 40000, VIP, VIP_TCP_PORT, FLAG_SYN, b"");
    assert_eq!(run(&mut p, &snap, &syn), [reply(40000, 6)]);
    let ack = fixtures::tcp_frame(CLIENT, 40000, VIP, VIP_TCP_PORT, FLAG_ACK, b"data");
    assert_eq!(
        run(&mut p, &snap, &ack),
        [reply(40000, 6)],
        "established: again"
    );
    assert!(
        run(&mut p, &snap, &ack).is_empty(),
        "nothing new: not again"
    );
    let udp = fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q");
    assert_eq!(run(&mut p, &snap, &udp), [reply(5353, 17)]);
    assert!(run(&mut p, &snap, &udp).is_empty());
}

#[test]
fn dr_flows_tell_nothing() {
    let snap = world(Forwarding::Dr);
    let mut p = pipeline();
    let syn = fixtures::tcp_frame(CLIENT, 40000, VIP, VIP_TCP_PORT, FLAG_SYN, b"");
    assert!(run(&mut p, &snap, &syn).is_empty());
}

/// A NAT connection a peer synced: its replies must be translated the moment this
/// director takes over, before any request of it arrives here.
#[test]
fn an_installed_nat_connection_tells_its_reply() {
    let snap = world(Forwarding::Nat);
    let ch = Arc::new(SyncChannel::default());
    let mut p = pipeline().with_sync(Arc::clone(&ch));
    p.prepare(&snap);
    let key = FlowKey::new(u32::from(CLIENT), u32::from(VIP), 40001, VIP_TCP_PORT, 6);
    let rec = SyncRecord {
        key: SyncKey::V4(key),
        dest: 0,
        state: 1,
        template: false,
        timeout: 900,
        local: None,
    };
    ch.inbound.push(rec).unwrap();
    let template = SyncRecord {
        key: SyncKey::V4(FlowKey::new(
            u32::from(CLIENT),
            u32::from(VIP),
            0,
            VIP_TCP_PORT,
            6,
        )),
        template: true,
        state: 0,
        ..rec
    };
    ch.inbound.push(template).unwrap();
    assert_eq!(p.install_synced(&snap, 10, 16), 2);
    assert_eq!(
        take(&mut p),
        [reply(40001, 6)],
        "the template tells nothing"
    );
    // Its next packet here (no change: it was ESTABLISHED) is known already.
    let ack = fixtures::tcp_frame(CLIENT, 40001, VIP, VIP_TCP_PORT, FLAG_ACK, b"data");
    assert!(run(&mut p, &snap, &ack).is_empty());
}

/// A resync brings NAT entries by the thousand: an install turn stops when the keys to
/// tell are full (the worker writes them), and the next goes on; none is lost.
#[test]
fn a_large_install_is_told_in_full_over_several_turns() {
    use xvs_dataplane::nat_conns::MAX_CONN_OPS;
    let snap = world(Forwarding::Nat);
    let ch = Arc::new(SyncChannel::default());
    let mut p = pipeline().with_sync(Arc::clone(&ch));
    p.prepare(&snap);
    let n = MAX_CONN_OPS + 500;
    for i in 0..n {
        let key = FlowKey::new(
            u32::from(CLIENT),
            u32::from(VIP),
            10000 + i as u16,
            VIP_TCP_PORT,
            6,
        );
        ch.inbound
            .push(SyncRecord {
                key: SyncKey::V4(key),
                dest: 0,
                state: 1,
                template: false,
                timeout: 900,
                local: None,
            })
            .unwrap();
    }
    assert_eq!(p.install_synced(&snap, 10, 4096), MAX_CONN_OPS);
    let mut told = take(&mut p).len();
    assert_eq!(p.install_synced(&snap, 10, 4096), 500);
    told += take(&mut p).len();
    assert_eq!(told, n);
    assert_eq!(p.nat_conn_ops().dropped, 0);
}

/// A connection's reply key is told again at each TCP state change and after it idled
/// past half its timeout: one pushed out of the steering program's LRU map (a flood of
/// new connections) comes back with the connection's next packet of note.
#[test]
fn a_connection_is_told_again_when_it_changes_or_wakes() {
    let snap = world(Forwarding::Nat);
    let mut p = pipeline();
    let seg = |flags| fixtures::tcp_frame(CLIENT, 40002, VIP, VIP_TCP_PORT, flags, b"");
    let at = |p: &mut Pipeline, now: u32, flags: u8| {
        p.prepare(&snap);
        let mut f = seg(flags);
        assert_eq!(p.process(&snap, now, &mut f), Verdict::Tx);
        take(p).len()
    };
    assert_eq!(at(&mut p, 10, FLAG_SYN), 1);
    assert_eq!(at(&mut p, 10, FLAG_ACK), 1, "established: a change");
    assert_eq!(at(&mut p, 11, FLAG_ACK), 0, "nothing new");
    let half = Timeouts::default().tcp(xvs_dataplane::flow::TcpState::Established) / 2;
    assert_eq!(
        at(&mut p, 12 + half, FLAG_ACK),
        1,
        "woke after half its timeout"
    );
    assert_eq!(at(&mut p, 13 + half, FLAG_ACK), 0);
}
