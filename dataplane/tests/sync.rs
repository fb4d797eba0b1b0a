//! Connection sync in the pipeline: what a worker hands to the sync thread, and what a
//! second director's worker does with it. The records go from one pipeline's queue to
//! the other's as the sync thread would carry them (the real server ids agree here).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use xvs_dataplane::fixtures::{self, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT, VIP_UDP_PORT};
use xvs_dataplane::flow::{TcpState, Timeouts};
use xvs_dataplane::pipeline::{NodestPolicy, ResyncCursor};
use xvs_dataplane::snapshot::{Persistence, MAX_DESTS};
use xvs_dataplane::sync::{SyncChannel, SyncKey, SyncRecord};
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_SYN};
use xvs_dataplane::*;

fn dest(i: u8) -> Option<Dest> {
    Some(Dest {
        addr: Ipv4Addr::new(10, 0, 0, 10 + i).into(),
        port: 80,
        weight: 1,
        mac: Some([0x02, 0, 0, 0, 1, i]),
    })
}

fn dest6(i: u8) -> Option<Dest> {
    Some(Dest {
        addr: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10 + u16::from(i)).into(),
        port: 80,
        weight: 1,
        mac: Some([0x02, 0, 0, 0, 2, i]),
    })
}

fn service(addr: std::net::IpAddr, port: u16, proto: u8, dests: Vec<DestId>) -> Service {
    let mut s = Service::new(
        format!("svc{addr}{port}"),
        ServiceKey { addr, port, proto },
        // Not a hashing scheduler: another director's pick would differ.
        SchedulerKind::Rr,
        Forwarding::Dr,
        dests,
    );
    s.stats_id = u32::from(port) + if addr.is_ipv6() { 1000 } else { 0 };
    s
}

/// TCP 80 and UDP 53 on the VIP (IPv4: real servers 0..3; IPv6: 3..6), optionally
/// persistent.
fn world(persistent: bool) -> Snapshot {
    let mut web = service(VIP.into(), VIP_TCP_PORT, 6, vec![0, 1, 2]);
    if persistent {
        web.persistence = Some(Persistence::per_client(300));
    }
    let services = vec![
        web,
        service(VIP.into(), VIP_UDP_PORT, 17, vec![0, 1, 2]),
        service(fixtures::VIP6.into(), VIP_TCP_PORT, 6, vec![3, 4, 5]),
    ];
    let dests = vec![dest(0), dest(1), dest(2), dest6(0), dest6(1), dest6(2)];
    Snapshot::new(1, DIRECTOR_MAC, services, dests).unwrap()
}

fn director() -> (Pipeline, Arc<SyncChannel>) {
    let cfg = PipelineConfig {
        flow_capacity: 1 << 16,
        hash_seed: 11,
        timeouts: Timeouts::default(),
        nodest: NodestPolicy::Reschedule,
        ..PipelineConfig::default()
    };
    let ch = Arc::new(SyncChannel::default());
    let p =
        Pipeline::new(&cfg, Arc::new(WorkerCounters::new(MAX_DESTS))).with_sync(Arc::clone(&ch));
    (p, ch)
}

fn tcp(sport: u16, flags: u8) -> Vec<u8> {
    fixtures::tcp_frame(CLIENT, sport, VIP, VIP_TCP_PORT, flags, b"x")
}

fn drain(ch: &SyncChannel) -> Vec<SyncRecord> {
    std::iter::from_fn(|| ch.changes.pop()).collect()
}

/// Moves every change of `from` to `to`'s inbound queue, as the sync thread does.
fn carry(from: &SyncChannel, to: &SyncChannel) -> usize {
    let recs = drain(from);
    for r in &recs {
        to.inbound.push(*r).unwrap();
    }
    recs.len()
}

#[test]
fn a_connection_is_sent_when_established_and_on_each_state_change() {
    let snap = world(false);
    let (mut p, ch) = director();
    p.prepare(&snap);
    assert_eq!(p.process(&snap, 1, &mut tcp(1000, FLAG_SYN)), Verdict::Tx);
    assert!(drain(&ch).is_empty(), "a handshake is not sent");
    p.process(&snap, 1, &mut tcp(1000, FLAG_ACK));
    let sent = drain(&ch);
    assert_eq!(sent.len(), 1);
    assert_eq!(TcpState::from_u8(sent[0].state), TcpState::Established);
    assert_eq!(sent[0].timeout, 900);
    assert!(!sent[0].template);
    for t in 2..10 {
        p.process(&snap, t, &mut tcp(1000, FLAG_ACK));
    }
    assert!(drain(&ch).is_empty(), "nothing changed, nothing due");
    p.process(&snap, 10, &mut tcp(1000, FLAG_FIN | FLAG_ACK));
    let sent = drain(&ch);
    assert_eq!(sent.len(), 1);
    assert_eq!(TcpState::from_u8(sent[0].state), TcpState::FinWait);
    assert_eq!(p.counters().sync_queued.get(), 2);
}

#[test]
fn a_live_connection_is_sent_again_after_half_its_timeout() {
    let snap = world(false);
    let (mut p, ch) = director();
    p.prepare(&snap);
    p.process(&snap, 1, &mut tcp(1000, FLAG_SYN));
    p.process(&snap, 1, &mut tcp(1000, FLAG_ACK));
    assert_eq!(drain(&ch).len(), 1);
    p.process(&snap, 400, &mut tcp(1000, FLAG_ACK));
    assert!(drain(&ch).is_empty(), "400 s < 450 s");
    p.process(&snap, 451, &mut tcp(1000, FLAG_ACK));
    assert_eq!(
        drain(&ch).len(),
        1,
        "refreshed before the peer's copy expires"
    );
    p.process(&snap, 452, &mut tcp(1000, FLAG_ACK));
    assert!(drain(&ch).is_empty());
}

#[test]
fn udp_is_sent_when_created() {
    let snap = world(false);
    let (mut p, ch) = director();
    p.prepare(&snap);
    let mut d = fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q");
    p.process(&snap, 1, &mut d);
    let sent = drain(&ch);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].timeout, 300);
    p.process(
        &snap,
        2,
        &mut fixtures::udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"q"),
    );
    assert!(drain(&ch).is_empty());
}

#[test]
fn the_backup_carries_on_a_synced_connection_to_the_same_real_server() {
    let snap = world(false);
    let (mut master, mch) = director();
    let (mut backup, bch) = director();
    master.prepare(&snap);
    backup.prepare(&snap);
    // Move rr on, so that the backup's own pick would differ.
    for sport in 1..3 {
        let mut f = tcp(sport, FLAG_SYN);
        backup.process(&snap, 1, &mut f);
    }
    let mut first = tcp(1000, FLAG_SYN);
    master.process(&snap, 1, &mut first);
    master.process(&snap, 1, &mut tcp(1000, FLAG_ACK));
    // Without sync: rr without sloppy_tcp drops a connection it has not seen.
    assert_eq!(
        backup.process(&snap, 2, &mut tcp(1000, FLAG_ACK)),
        Verdict::Drop(DropReason::NoFlow)
    );
    assert_eq!(carry(&mch, &bch), 1);
    assert_eq!(backup.install_synced(&snap, 2, 100), 1);
    assert_eq!(backup.counters().sync_installed.get(), 1);
    let mut f = tcp(1000, FLAG_ACK);
    assert_eq!(backup.process(&snap, 3, &mut f), Verdict::Tx);
    assert_eq!(f[5], first[5], "the same real server");
    let d = u32::from(first[5]) as usize;
    assert_eq!(backup.counters().dests[d].active.get(), 1, "counted active");
    assert!(
        drain(&bch).is_empty(),
        "an installed entry is not echoed back"
    );
}

#[test]
fn an_ipv6_connection_is_synced_too() {
    let snap = world(false);
    let (mut master, mch) = director();
    let (mut backup, bch) = director();
    master.prepare(&snap);
    backup.prepare(&snap);
    let frame = |flags| {
        fixtures::tcp6_frame(
            fixtures::CLIENT6,
            7000,
            fixtures::VIP6,
            VIP_TCP_PORT,
            flags,
            b"x",
        )
    };
    let mut first = frame(FLAG_SYN);
    master.process(&snap, 1, &mut first);
    master.process(&snap, 1, &mut frame(FLAG_ACK));
    assert_eq!(carry(&mch, &bch), 1);
    backup.install_synced(&snap, 1, 100);
    let mut f = frame(FLAG_ACK);
    assert_eq!(backup.process(&snap, 2, &mut f), Verdict::Tx);
    assert_eq!(f[5], first[5]);
}

#[test]
fn a_persistence_template_follows_the_client_to_the_backup() {
    let snap = world(true);
    let (mut master, mch) = director();
    let (mut backup, bch) = director();
    master.prepare(&snap);
    backup.prepare(&snap);
    backup.process(&snap, 1, &mut tcp(1, FLAG_SYN));
    let mut first = tcp(1000, FLAG_SYN);
    master.process(&snap, 1, &mut first);
    let sent = drain(&mch);
    assert_eq!(sent.len(), 1, "the template, on creation");
    assert!(sent[0].template);
    assert!(matches!(sent[0].key, SyncKey::V4(k) if k.proto & 0x80 != 0));
    bch.inbound.push(sent[0]).unwrap();
    backup.install_synced(&snap, 2, 100);
    // A new connection of the same client on the backup: the template's server.
    let mut again = tcp(2000, FLAG_SYN);
    backup.process(&snap, 3, &mut again);
    assert_eq!(again[5], first[5]);
}

#[test]
fn an_entry_for_a_real_server_the_snapshot_lacks_is_stale() {
    let snap = world(false);
    let (mut p, ch) = director();
    p.prepare(&snap);
    let rec = SyncRecord {
        key: SyncKey::V4(xvs_dataplane::flow::FlowKey::new(1, 2, 3, 80, 6)),
        dest: 40,
        state: TcpState::Established as u8,
        template: false,
        timeout: 900,
        local: None,
    };
    ch.inbound.push(rec).unwrap();
    assert_eq!(p.install_synced(&snap, 1, 10), 1);
    assert_eq!(p.counters().sync_install_stale.get(), 1);
    assert_eq!(p.counters().sync_installed.get(), 0);
}

#[test]
fn a_resync_walk_hands_over_every_live_entry_paced_by_the_bulk_queue() {
    let snap = world(true);
    let (mut p, ch) = director();
    p.prepare(&snap);
    // 1500 clients, one connection each: 1500 connections and 1500 templates.
    for i in 0..1500u32 {
        let c = Ipv4Addr::from(0x0a01_0000 + i);
        p.process(
            &snap,
            1,
            &mut fixtures::tcp_frame(c, 1000, VIP, VIP_TCP_PORT, FLAG_SYN, b""),
        );
        p.process(
            &snap,
            1,
            &mut fixtures::tcp_frame(c, 1000, VIP, VIP_TCP_PORT, FLAG_ACK, b"x"),
        );
    }
    assert_eq!(p.counters().flows_evicted.get(), 0);
    drain(&ch);
    let mut cursor = ResyncCursor::default();
    assert!(!p.resync_walk(&mut cursor, 2, 1 << 20), "nothing asked");
    let n = ch.ask_walk();
    let mut got = Vec::new();
    let mut turns = 0;
    while p.resync_walk(&mut cursor, 2, 64) {
        turns += 1;
        assert!(turns < 10_000);
        // The sync thread takes a little at a time.
        for _ in 0..100 {
            if let Some(r) = ch.bulk.pop() {
                got.push(r);
            }
        }
    }
    got.extend(std::iter::from_fn(|| ch.bulk.pop()));
    assert!(ch.walk_finished(n));
    assert_eq!(got.len(), 3000);
    assert_eq!(got.iter().filter(|r| r.template).count(), 1500);
    assert!(got.iter().all(|r| r.timeout > 0));
    assert_eq!(p.counters().sync_walked.get(), 3000);
}

#[test]
fn a_full_queue_loses_the_entry_and_counts_it() {
    let snap = world(false);
    let (mut p, ch) = director();
    p.prepare(&snap);
    let cap = ch.changes.capacity();
    for i in 0..(cap as u32 + 10) {
        let c = Ipv4Addr::from(0x0a02_0000 + i);
        p.process(
            &snap,
            1,
            &mut fixtures::udp_frame(c, 99, VIP, VIP_UDP_PORT, b"q"),
        );
    }
    assert_eq!(p.counters().sync_queue_full.get(), 10);
    assert_eq!(ch.changes.len(), cap);
}
