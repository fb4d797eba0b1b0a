//! FullNAT through the pipeline: each connection's local pair (unique, given back when
//! it ends), the reply entry the steering program needs, the client's address option on
//! the opening segments, and a pool exhausted — checked with etherparse.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use xvs_dataplane::fixtures::{tcp_frame, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT};
use xvs_dataplane::flow::FlowKey;
use xvs_dataplane::offload::FastKey;
use xvs_dataplane::packet::Packet;
use xvs_dataplane::pipeline::Prefetched;
use xvs_dataplane::rewrite::toa;
use xvs_dataplane::snapshot::LocalPool;
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use xvs_dataplane::*;

const RIP: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 11);
const LIPS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(192, 168, 50, 2),
    Ipv4Addr::new(192, 168, 50, 3),
];

fn world(ports: (u16, u16)) -> Snapshot {
    let dests = vec![Some(Dest {
        addr: RIP.into(),
        port: 8080,
        weight: 1,
        mac: Some([2, 0, 0, 0, 1, 0]),
    })];
    let mut svc = common::rr_service(VIP_TCP_PORT, 6, Forwarding::FullNat);
    svc.local = Some(LocalPool {
        addrs: LIPS.iter().map(|a| IpAddr::from(*a)).collect(),
        ports,
    });
    Snapshot::new(1, DIRECTOR_MAC, vec![svc], dests).unwrap()
}

/// What a forwarded segment became.
#[derive(Debug)]
struct Out {
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    toa: Option<(u16, IpAddr)>,
}

/// Runs a segment from the client's `cport` with room after it for the option.
fn send(
    p: &mut Pipeline,
    snap: &Snapshot,
    now: u32,
    cport: u16,
    flags: u8,
    data: &[u8],
) -> Result<Out, DropReason> {
    p.prepare(snap);
    let frame = tcp_frame(CLIENT, cport, VIP, VIP_TCP_PORT, flags, data);
    let len = frame.len();
    let mut buf = frame;
    buf.resize(len + 64, 0);
    let mut pkt = Packet::new(&mut buf, 0, len).unwrap();
    match p.process_packet(snap, now, &mut pkt, Prefetched::NONE) {
        Verdict::Tx => {}
        Verdict::Drop(r) => return Err(r),
        v => panic!("{v:?}"),
    }
    let n = pkt.len();
    Ok(read(&buf[..n]))
}

/// The segment's ends and option, its checksums checked against etherparse's.
fn read(frame: &[u8]) -> Out {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("ipv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("tcp")
    };
    let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
    assert_eq!(t.checksum(), want, "TCP checksum");
    // etherparse stops at an unknown kind: it must be the option's, where it stops.
    let unknown = t.options_iterator().find_map(|o| match o {
        Err(etherparse::TcpOptionReadError::UnknownId(id)) => Some(id),
        _ => None,
    });
    let toa = toa::parse(t.options());
    assert_eq!(unknown.is_some(), toa.is_some());
    assert!(unknown.is_none_or(|id| id == toa::KIND));
    Out {
        src: h.source.into(),
        sport: t.source_port(),
        dst: h.destination.into(),
        dport: t.destination_port(),
        toa,
    }
}

fn reply_key(o: &Out) -> FastKey {
    FastKey::of(&FlowKey::new(
        u32::from(o.dst),
        u32::from(o.src),
        o.dport,
        o.sport,
        6,
    ))
}

#[test]
fn a_connection_leaves_from_one_pair_with_the_client_in_its_opening_segments() {
    let snap = world((2000, 2999));
    let mut p = common::pipeline();
    let syn = send(&mut p, &snap, 10, 40000, FLAG_SYN, b"").unwrap();
    assert!(LIPS.contains(&syn.src), "{syn:?}");
    assert!((2000..=2999).contains(&syn.sport));
    assert_eq!((syn.dst, syn.dport), (RIP, 8080));
    assert_eq!(
        syn.toa,
        Some((40000, CLIENT.into())),
        "the client in the SYN"
    );

    let ops = p.fullnat_ops();
    assert_eq!(ops.v4.keys, [reply_key(&syn)], "the reply entry");
    let v = ops.v4.values[0];
    assert_eq!(
        (&v.caddr[..4], &v.vip[..4]),
        (&CLIENT.octets()[..], &VIP.octets()[..])
    );
    assert_eq!(
        (v.cport, v.vport),
        (40000u16.to_be_bytes(), VIP_TCP_PORT.to_be_bytes())
    );
    ops.clear();

    let ack = send(&mut p, &snap, 10, 40000, FLAG_ACK, b"").unwrap();
    assert_eq!((ack.src, ack.sport), (syn.src, syn.sport), "the same pair");
    assert_eq!(
        ack.toa,
        Some((40000, CLIENT.into())),
        "and in the handshake's ACK"
    );
    // Told again at the state change, as NAT's entries are.
    assert_eq!(p.fullnat_ops().v4.keys, [reply_key(&syn)]);
    p.fullnat_ops().clear();
    let data = send(
        &mut p,
        &snap,
        10,
        40000,
        FLAG_ACK,
        b"GET / HTTP/1.0\r\n\r\n",
    )
    .unwrap();
    assert_eq!((data.sport, data.toa), (syn.sport, None), "never in data");
    let ack2 = send(&mut p, &snap, 10, 40000, FLAG_ACK, b"").unwrap();
    assert_eq!(ack2.toa, None, "one ACK carries it");
    assert!(p.fullnat_ops().is_empty(), "told once");

    let c = p.counters();
    let in_use: u64 = c.local_ports.iter().map(|g| g.get()).sum();
    assert_eq!((c.fullnat_toa_added.get(), in_use), (2, 1));
}

#[test]
fn pairs_are_unique_and_an_exhausted_pool_drops_new_connections_only() {
    // Two addresses × two ports.
    let snap = world((3000, 3001));
    let mut p = common::pipeline();
    let mut pairs = Vec::new();
    for cport in 41000..41004 {
        let o = send(&mut p, &snap, 10, cport, FLAG_SYN, b"").unwrap();
        pairs.push((o.src, o.sport));
    }
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 4, "every pair once: {pairs:?}");
    assert_eq!(
        send(&mut p, &snap, 10, 41004, FLAG_SYN, b"").unwrap_err(),
        DropReason::FullnatNoPort
    );
    assert_eq!(p.counters().drops(DropReason::FullnatNoPort), 1);
    // The established ones go on.
    assert!(send(&mut p, &snap, 10, 41001, FLAG_ACK, b"").is_ok());
    // One ends: its pair is free again, and its reply entry removed.
    p.fullnat_ops().clear();
    send(&mut p, &snap, 10, 41000, FLAG_RST | FLAG_ACK, b"").unwrap();
    let again = send(&mut p, &snap, 11, 41000, FLAG_SYN, b"");
    // A RST leaves the flow (CLOSE) until a new SYN reuses it: the pair follows.
    let o = again.unwrap();
    assert!(pairs.contains(&(o.src, o.sport)));
    assert_eq!(
        send(&mut p, &snap, 11, 41005, FLAG_SYN, b"").unwrap_err(),
        DropReason::FullnatNoPort
    );
}

#[test]
fn an_expired_connection_gives_its_pair_back() {
    let snap = world((3000, 3000));
    let mut p = common::pipeline();
    let first = send(&mut p, &snap, 10, 42000, FLAG_SYN, b"").unwrap();
    send(&mut p, &snap, 10, 42001, FLAG_SYN, b"").unwrap();
    assert_eq!(
        send(&mut p, &snap, 10, 42002, FLAG_SYN, b"").unwrap_err(),
        DropReason::FullnatNoPort
    );
    p.fullnat_ops().clear();
    // SYN_RECV's timeout is well under an hour.
    let later = 10 + 3600;
    p.sweep(later, usize::MAX);
    let ops = p.fullnat_ops();
    assert_eq!(ops.v4.removed.len(), 2, "both reply entries removed");
    assert!(ops.v4.removed.contains(&reply_key(&first)));
    let o = send(&mut p, &snap, later, 42003, FLAG_SYN, b"").unwrap();
    assert_eq!(o.sport, 3000);
    send(&mut p, &snap, later, 42004, FLAG_SYN, b"").unwrap();
    let in_use: u64 = p.counters().local_ports.iter().map(|g| g.get()).sum();
    assert_eq!(in_use, 2);
    // FIN from the client: the flow stays until it times out; the pair with it.
    send(&mut p, &snap, later, 42003, FLAG_FIN | FLAG_ACK, b"").unwrap();
    assert_eq!(
        send(&mut p, &snap, later, 42005, FLAG_SYN, b"").unwrap_err(),
        DropReason::FullnatNoPort
    );
}

fn synced_pipeline(
    share: xvs_dataplane::fullnat::Share,
) -> (Pipeline, std::sync::Arc<xvs_dataplane::sync::SyncChannel>) {
    let cfg = PipelineConfig {
        flow_capacity: 4096,
        hash_seed: 7,
        share,
        ..PipelineConfig::default()
    };
    let ch = std::sync::Arc::new(xvs_dataplane::sync::SyncChannel::default());
    let p = Pipeline::new(
        &cfg,
        std::sync::Arc::new(WorkerCounters::new(xvs_dataplane::snapshot::MAX_DESTS)),
    )
    .with_sync(std::sync::Arc::clone(&ch));
    (p, ch)
}

/// Connection sync carries a FullNAT connection with its pair: the peer installs it,
/// writes its reply entry (it translates the replies the moment it takes over), and the
/// worker whose share the port is reserves the pair, so no new connection there takes it.
#[test]
fn a_synced_connection_keeps_its_pair_on_the_peer() {
    use xvs_dataplane::fullnat::Share;
    // One address, two ports: ports 3000 (worker 0 of 2) and 3001 (worker 1 of 2).
    let mut snap = world((3000, 3001));
    if let Some(l) = snap.services[0].local.as_mut() {
        l.addrs.truncate(1);
    }
    let snap = Snapshot::new(1, DIRECTOR_MAC, snap.services.clone(), snap.dests.clone()).unwrap();
    let (mut master, out) = synced_pipeline(Share {
        worker: 0,
        workers: 1,
    });
    let syn = send(&mut master, &snap, 10, 43000, FLAG_SYN, b"").unwrap();
    send(&mut master, &snap, 10, 43000, FLAG_ACK, b"").unwrap();
    let rec = out.changes.pop().expect("sent once established");
    assert_eq!(rec.local, Some((syn.src.into(), syn.sport)));

    for (worker, owner) in [(0u16, syn.sport == 3000), (1, syn.sport == 3001)] {
        let (mut backup, inbound) = synced_pipeline(Share { worker, workers: 2 });
        inbound.inbound.push(rec).unwrap();
        assert_eq!(backup.install_synced(&snap, 11, 10), 1);
        assert_eq!(backup.counters().sync_install_stale.get(), 0);
        assert_eq!(
            backup.fullnat_ops().v4.keys,
            [reply_key(&syn)],
            "worker {worker}"
        );
        // The taken-over connection goes on from its pair.
        let ack = send(&mut backup, &snap, 12, 43000, FLAG_ACK, b"data").unwrap();
        assert_eq!((ack.src, ack.sport), (syn.src, syn.sport));
        // A new connection on the owner finds its pair taken; on the other, its own.
        let fresh = send(&mut backup, &snap, 12, 43001, FLAG_SYN, b"");
        if owner {
            assert_eq!(
                fresh.unwrap_err(),
                DropReason::FullnatNoPort,
                "worker {worker}"
            );
        } else {
            assert_ne!(fresh.unwrap().sport, syn.sport, "worker {worker}");
        }
    }

    // A synced copy that expires (the connection's packets may be another worker's)
    // gives its reserved pair back but leaves the reply entry alone: only the LRU, or
    // the next connection on the pair, replaces it.
    let (mut backup, inbound) = synced_pipeline(Share {
        worker: 0,
        workers: 1,
    });
    inbound.inbound.push(rec).unwrap();
    backup.install_synced(&snap, 11, 10);
    backup.fullnat_ops().clear();
    backup.sweep(11 + 7200, usize::MAX);
    assert!(
        backup.fullnat_ops().v4.removed.is_empty(),
        "the entry is left"
    );
    let in_use: u64 = backup.counters().local_ports.iter().map(|g| g.get()).sum();
    assert_eq!(in_use, 0, "the pair is back");

    // A pair of an address this director does not have: the entry is not installed.
    let mut other = rec;
    other.local = Some(("192.0.2.99".parse().unwrap(), 3000));
    let (mut backup, inbound) = synced_pipeline(Share::default());
    inbound.inbound.push(other).unwrap();
    backup.install_synced(&snap, 11, 10);
    assert_eq!(backup.counters().sync_install_stale.get(), 1);
    assert_eq!(
        send(&mut backup, &snap, 12, 43000, FLAG_ACK, b"x").unwrap_err(),
        DropReason::NoFlow
    );
}

/// The XDP fast path carries DR, TUN and NAT flows only: a FullNAT flow stays on the worker
/// (its rewrite is the worker's), even with the fast path on.
#[test]
fn fullnat_flows_never_take_the_fast_path() {
    let mut snap = world((2000, 2999));
    snap.fast_generation = 7;
    let mut p = common::pipeline();
    for flags in [FLAG_SYN, FLAG_ACK, FLAG_ACK] {
        send(&mut p, &snap, 10, 44000, flags, b"").unwrap();
        assert!(p.fast_ops().is_empty(), "flags {flags:#x}");
    }
}

/// Thousands of connections expiring at once: each sweep call stops before its reply
/// removals overflow (the worker writes them between calls), none is lost, and every
/// pair comes back.
#[test]
fn a_mass_expiry_never_loses_a_reply_removal() {
    let snap = world((2000, 3999));
    let mut p = common::pipeline();
    for cport in 0..3000u16 {
        send(&mut p, &snap, 10, 20000 + cport, FLAG_SYN, b"").unwrap();
        // As the worker writes them after each batch.
        p.fullnat_ops().clear();
    }
    assert_eq!(p.fullnat_ops().dropped, 0);
    let later = 10 + 3600;
    let (mut removed, mut calls) = (0, 0);
    let buckets = p.flows().buckets();
    let mut swept = 0;
    while swept < buckets {
        swept += p.sweep(later, buckets - swept);
        let ops = p.fullnat_ops();
        assert!(ops.v4.removed.len() <= xvs_dataplane::fullnat::MAX_REPLY_OPS);
        assert_eq!(ops.dropped, 0);
        removed += ops.v4.removed.len();
        ops.clear();
        calls += 1;
    }
    // A full bucket evicted some (their pairs given back then).
    let evicted = p.counters().flows_evicted.get();
    assert_eq!(removed as u64 + evicted, 3000);
    assert!(calls > 2, "the sweep went in several calls: {calls}");
    let in_use: u64 = p.counters().local_ports.iter().map(|g| g.get()).sum();
    assert_eq!(in_use, 0);
}

/// `xvs status --connections` (the flow dump) shows a FullNAT connection with its pair.
#[test]
fn the_flow_dump_names_each_connections_local_pair() {
    use xvs_dataplane::flow::dump::DumpCursor;
    let snap = world((2000, 2999));
    let mut p = common::pipeline();
    let syn = send(&mut p, &snap, 10, 46000, FLAG_SYN, b"").unwrap();
    let dump = std::sync::Arc::clone(p.counters());
    let seq = dump.flow_dump.request(10);
    let mut cur = DumpCursor::default();
    let all = p.flows().buckets() + p.flows6().buckets();
    dump.flow_dump.serve(
        &mut cur,
        p.flows(),
        p.flows6(),
        (all, &|v6, i| p.local_of(v6, i)),
        || 10,
    );
    let a = dump.flow_dump.answer(seq).expect("answered");
    assert_eq!(a.flows.len(), 1);
    assert_eq!(a.flows[0].local, Some((syn.src.into(), syn.sport)));
}
