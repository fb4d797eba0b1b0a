//! Connection sync messages from the network, through the whole receiving path: no
//! panic, and nothing installed that did not authenticate. Byte 0 chooses how the rest
//! is used: even, a datagram as it arrives (forged, truncated, anything); odd, a message
//! body that is signed with the right key first (kind from byte 1, count from bytes 2–3),
//! so that the fuzzer reaches the entries' decoding, the translation and the install.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use xvs::fuzzing::sync_engine::{Engine, Settings};
use xvs::fuzzing::sync_stats::SyncStats;
use xvs::fuzzing::sync_wire::{self as wire, Kind};
use xvs::fuzzing::sync_auth as auth;
use xvs_dataplane::snapshot::MAX_DESTS;
use xvs_dataplane::sync::SyncChannel;
use xvs_dataplane::{Dest, Forwarding, SchedulerKind, Service, ServiceKey, Snapshot, WorkerCounters};

const KEY: &[u8] = b"the fuzzer's shared secret";
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

fn engine(ch: &Arc<SyncChannel>, stats: &Arc<SyncStats>) -> Engine {
    let dests = (0..3u8)
        .map(|i| {
            Some(Dest {
                addr: Ipv4Addr::new(10, 0, 0, 11 + i).into(),
                port: 80,
                weight: 1,
                mac: Some([2, 0, 0, 0, 1, i]),
            })
        })
        .collect();
    let services = vec![
        Service::new(
            String::from("web"),
            ServiceKey { addr: Ipv4Addr::new(10, 0, 0, 100).into(), port: 80, proto: 6 },
            SchedulerKind::Rr,
            Forwarding::Dr,
            vec![0, 1, 2],
        ),
        Service::new(
            String::from("nat"),
            ServiceKey { addr: Ipv4Addr::new(10, 0, 0, 101).into(), port: 0, proto: 17 },
            SchedulerKind::Rr,
            Forwarding::Nat,
            vec![0, 1],
        ),
    ];
    let snap = Snapshot::new(1, [2, 0, 0, 0, 0, 2], services, dests).unwrap();
    Engine::new(
        Settings {
            key: KEY.to_vec(),
            own: Ipv4Addr::new(10, 0, 0, 2),
            port: 8848,
            peers: vec![PEER],
            group: Ipv4Addr::new(224, 0, 0, 81),
            resync_timeout: Duration::from_secs(5),
            resync_rate: 100_000,
            boot: 1,
        },
        vec![Arc::clone(ch)],
        vec![Arc::new(WorkerCounters::new(MAX_DESTS))],
        Arc::new(ArcSwap::from_pointee(snap)),
        Arc::clone(stats),
        Instant::now(),
    )
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let ch = Arc::new(SyncChannel::default());
    let stats = Arc::new(SyncStats::default());
    let mut e = engine(&ch, &stats);
    let mut out = Vec::new();
    let now = Instant::now();
    let from = SocketAddrV4::new(PEER, 8848);
    if mode & 1 == 0 {
        e.on_datagram(now, from, rest, &mut out);
        // Without the key nothing gets in.
        assert!(ch.inbound.is_empty());
        let _ = wire::frame(rest).map(|f| wire::entries(f.body, f.header.count));
        return;
    }
    if rest.len() < 3 || rest.len() - 3 > wire::MAX_BODY {
        return;
    }
    let kind = match rest[0] % 4 {
        0 => Kind::Entries,
        1 => Kind::ResyncRequest,
        2 => Kind::ResyncDone,
        _ => Kind::Hello,
    };
    let count = u16::from_be_bytes([rest[1], rest[2]]);
    let key = auth::Key::new(KEY);
    // From the peer, sent now by the engine's clock (its boot is 1 ns after the epoch).
    let stamp = wire::Stamp {
        boot: 1,
        seq: 1,
        sender: PEER,
        sent: 0,
        recipient: Ipv4Addr::new(10, 0, 0, 2),
    };
    let mut msg = wire::Builder::new(kind, false).body(&rest[3..]).seal(stamp, |d| key.sign(d));
    msg[24..26].copy_from_slice(&count.to_be_bytes());
    // The count changed after signing: sign again over the final header.
    let end = msg.len() - wire::TAG_LEN;
    let tag = key.sign(&msg[..end]);
    msg[end..].copy_from_slice(&tag);
    e.on_datagram(now, from, &msg, &mut out);
    // The same again is a replay.
    let before = ch.inbound.len();
    e.on_datagram(now, from, &msg, &mut out);
    assert_eq!(ch.inbound.len(), before);
    e.on_turn(now, &mut out);
    let _ = e.take_resolve();
});
