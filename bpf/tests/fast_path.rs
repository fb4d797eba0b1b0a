//! The steering program's fast path, loaded for real and run with BPF_PROG_TEST_RUN: an
//! entry a worker wrote (through the dataplane's own `FastMap`) forwards an established
//! DR, TUN or NAT flow in XDP, rewritten as the worker would (checked with etherparse for
//! TUN and NAT); SYN/FIN/RST, an entry of another generation, an idle one, or a packet too big
//! for the tunnel go on to the worker. Needs root and BPF.

use std::net::Ipv4Addr;

use etherparse::{NetHeaders, PacketHeaders};
use libbpf_rs::ProgramInput;
use xvs_bpf::abi::{Svc6Key, SvcKey, XdpCounters, SVC_F_FAST};
use xvs_bpf::Steer;
use xvs_dataplane::fixtures::{self, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT, VIP_UDP_PORT};
use xvs_dataplane::flow::{FlowKey, FlowKey6};
use xvs_dataplane::offload::{FastKey, FastKey6, FastMap, FastOps, FastValue};
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_PSH, FLAG_SYN};

/// "To the worker" in these runs: no socket is bound, so the program drops the
/// packet (counted `drop_no_socket`) where a running xvs's worker would get it.
const TO_WORKER: u32 = 1;
const XDP_DROP: u32 = 1;
const XDP_TX: u32 = 3;
const RS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const SLOT: u32 = 7;

/// The steering program with fast-path services on VIP, the director's MAC on the
/// interface test runs arrive on (loopback, ifindex 1), generation `gen`.
fn loaded(gen: u32) -> Steer {
    let mut steer = Steer::load().expect("load the steering program (root and BPF needed)");
    steer
        .set_services(&[
            (SvcKey::new(VIP, VIP_TCP_PORT, 6), SVC_F_FAST),
            (SvcKey::new(VIP, VIP_UDP_PORT, 17), SVC_F_FAST),
        ])
        .unwrap();
    steer.set_local_mac(1, DIRECTOR_MAC).unwrap();
    steer.set_fast_generation(gen).unwrap();
    steer
}

fn entry(steer: &Steer, key: FlowKey, gen: u32, tun: bool, mtu: u16, idle_secs: u64) {
    write(
        steer,
        key,
        FastValue {
            dst_mac: RS_MAC,
            tun: u8::from(tun),
            tun_saddr: [10, 0, 0, 2],
            daddr: [10, 0, 0, 11],
            mtu,
            stats_slot: SLOT,
            generation: gen,
            timeout: 60,
            last_seen: seen_ago(idle_secs),
            ..FastValue::default()
        },
    );
}

/// Writes `value` for `key` through the dataplane's own `FastMap`, as a worker does.
fn write(steer: &Steer, key: FlowKey, value: FastValue) {
    let (v4, v6) = steer.fast_flows_fds().unwrap();
    let mut ops = FastOps::default();
    ops.upsert(FastKey::of(&key), value);
    assert_eq!(FastMap::new(v4, v6).unwrap().apply(&mut ops), 0, "written");
}

/// A `last_seen` `secs` ago.
fn seen_ago(secs: u64) -> u64 {
    xvs_dataplane::sys::monotonic_coarse_ns().saturating_sub(secs * 1_000_000_000)
}

/// Runs `frame`; returns the action, the output frame and the counters it moved.
fn run(steer: &Steer, frame: &[u8]) -> (u32, Vec<u8>, XdpCounters) {
    let before = steer.counters().unwrap();
    let mut out = vec![0u8; frame.len() + 64];
    let o = steer
        .program()
        .test_run(ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    let got = o.data.map(|d| d.to_vec()).unwrap_or_default();
    (
        o.return_value,
        got,
        steer.counters().unwrap().since(&before),
    )
}

fn udp_key(sport: u16) -> FlowKey {
    FlowKey::new(u32::from(CLIENT), u32::from(VIP), sport, VIP_UDP_PORT, 17)
}

#[test]
fn an_established_dr_flow_is_forwarded_in_xdp_and_counted() {
    let steer = loaded(5);
    let frame = fixtures::udp_frame(CLIENT, 5000, VIP, VIP_UDP_PORT, b"hello");
    entry(&steer, udp_key(5000), 5, false, 1500, 0);
    let (action, out, delta) = run(&steer, &frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(delta.get("fast_path"), 1);
    assert_eq!(delta.values.iter().sum::<u64>(), 1, "exactly one counter");
    assert_eq!(&out[..6], &RS_MAC);
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    assert_eq!(&out[12..], &frame[12..], "DR changes the MACs only");
    let n = steer.fast_in(SLOT).unwrap();
    assert_eq!((n.packets, n.bytes), (1, frame.len() as u64));

    // TCP data of the flow: forwarded too.
    let tkey = FlowKey::new(u32::from(CLIENT), u32::from(VIP), 5001, VIP_TCP_PORT, 6);
    entry(&steer, tkey, 5, false, 1500, 0);
    let data = fixtures::tcp_frame(CLIENT, 5001, VIP, VIP_TCP_PORT, FLAG_ACK | FLAG_PSH, b"x");
    assert_eq!(run(&steer, &data).0, XDP_TX);
    // SYN, FIN, RST always go to the worker (no socket here: dropped, counted so).
    for flags in [FLAG_SYN, FLAG_FIN | FLAG_ACK, 0x04] {
        let f = fixtures::tcp_frame(CLIENT, 5001, VIP, VIP_TCP_PORT, flags, b"");
        let (action, _, delta) = run(&steer, &f);
        assert_eq!(
            (action, delta.get("drop_no_socket")),
            (XDP_DROP, 1),
            "flags {flags:#x}"
        );
    }
}

#[test]
fn stale_idle_or_unknown_entries_go_to_the_worker() {
    let steer = loaded(5);
    let frame = |sport| fixtures::udp_frame(CLIENT, sport, VIP, VIP_UDP_PORT, b"q");
    // Another generation (a snapshot was published since).
    entry(&steer, udp_key(6000), 4, false, 1500, 0);
    assert_eq!(run(&steer, &frame(6000)).0, TO_WORKER);
    // Idle past its timeout (60 s).
    entry(&steer, udp_key(6001), 5, false, 1500, 120);
    assert_eq!(run(&steer, &frame(6001)).0, TO_WORKER);
    // No entry.
    assert_eq!(run(&steer, &frame(6002)).0, TO_WORKER);
    // Fast path off altogether.
    let steer = loaded(0);
    entry(&steer, udp_key(6003), 0, false, 1500, 0);
    assert_eq!(run(&steer, &frame(6003)).0, TO_WORKER);
}

#[test]
fn a_tun_flow_is_encapsulated_as_the_worker_would() {
    let steer = loaded(5);
    let frame = fixtures::udp_frame(CLIENT, 7000, VIP, VIP_UDP_PORT, b"tunnel me");
    entry(&steer, udp_key(7000), 5, true, 1500, 0);
    let (action, out, _) = run(&steer, &frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out.len(), frame.len() + 20);
    assert_eq!(&out[..6], &RS_MAC);
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    let p = PacketHeaders::from_ethernet_slice(&out).expect("etherparse reads it");
    let Some(NetHeaders::Ipv4(outer, _)) = &p.net else {
        panic!("not IPv4")
    };
    assert_eq!(outer.protocol.0, 4, "IPIP");
    assert_eq!(Ipv4Addr::from(outer.source), Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(
        Ipv4Addr::from(outer.destination),
        Ipv4Addr::new(10, 0, 0, 11)
    );
    assert_eq!(outer.time_to_live, 64);
    assert_eq!(outer.header_checksum, outer.calc_header_checksum());
    assert_eq!(usize::from(outer.total_len), frame.len() - 14 + 20);
    assert_eq!(
        &out[34..],
        &frame[14..],
        "the client's packet inside, unchanged"
    );

    // Too big for the tunnel: the worker answers with ICMP fragmentation-needed.
    entry(&steer, udp_key(7001), 5, true, 40, 0);
    let big = fixtures::udp_frame(CLIENT, 7001, VIP, VIP_UDP_PORT, b"twenty-one bytes long");
    assert_eq!(run(&steer, &big).0, TO_WORKER);
}

/// An established IPv6 DR flow: forwarded by the steering program from the IPv6 map
/// (MACs only), its SYN/FIN/RST and a stale entry still the worker's.
#[test]
fn an_established_ipv6_dr_flow_is_forwarded_in_xdp() {
    let steer = loaded(5);
    steer
        .set_services6(&[(Svc6Key::new(fixtures::VIP6, VIP_UDP_PORT, 17), SVC_F_FAST)])
        .unwrap();
    let (c6, vip6) = (fixtures::CLIENT6, fixtures::VIP6);
    let key = |sport| FlowKey6::new(u128::from(c6), u128::from(vip6), sport, VIP_UDP_PORT, 17);
    let write = |sport, gen| {
        let (v4, v6) = steer.fast_flows_fds().unwrap();
        let mut ops = FastOps::default();
        ops.upsert(
            FastKey6::of(&key(sport)),
            FastValue {
                dst_mac: RS_MAC,
                stats_slot: SLOT,
                generation: gen,
                timeout: 60,
                last_seen: xvs_dataplane::sys::monotonic_coarse_ns(),
                ..FastValue::default()
            },
        );
        assert_eq!(FastMap::new(v4, v6).unwrap().apply(&mut ops), 0);
    };
    let frame = |sport| fixtures::udp6_frame(c6, sport, vip6, VIP_UDP_PORT, b"hello6");
    write(5000, 5);
    let (action, out, delta) = run(&steer, &frame(5000));
    assert_eq!((action, delta.get("fast_path")), (XDP_TX, 1));
    assert_eq!(delta.values.iter().sum::<u64>(), 1, "exactly one counter");
    assert_eq!(&out[..6], &RS_MAC);
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    assert_eq!(&out[12..], &frame(5000)[12..], "DR changes the MACs only");
    assert_eq!(steer.fast_in(SLOT).unwrap().packets, 1);
    // The IPv4 map's key for the same ports does not match it, nor a stale entry.
    write(5001, 4);
    assert_eq!(run(&steer, &frame(5001)).0, TO_WORKER);
    assert_eq!(run(&steer, &frame(5002)).0, TO_WORKER, "no entry");
}

/// A NAT entry for `key` to RIP:RPORT (IPv4), written as the worker writes it.
fn nat_entry(steer: &Steer, key: FlowKey, gen: u32) {
    nat_entry_idle(steer, key, gen, 0);
}

/// `nat_entry`, its last packet `idle_secs` ago (its timeout: 60 s).
fn nat_entry_idle(steer: &Steer, key: FlowKey, gen: u32, idle_secs: u64) {
    write(
        steer,
        key,
        FastValue {
            dst_mac: RS_MAC,
            nat: 1,
            daddr: RIP.octets(),
            nat_port: RPORT.to_be_bytes(),
            stats_slot: SLOT,
            generation: gen,
            timeout: 60,
            last_seen: seen_ago(idle_secs),
            ..FastValue::default()
        },
    );
}

const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const RPORT: u16 = 8080;

/// Whether etherparse finds the frame's IPv4 header checksum and its TCP/UDP checksum
/// (when it has one) right, computed from scratch.
fn checksums_right(frame: &[u8]) -> bool {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads it");
    let Some(NetHeaders::Ipv4(ip, _)) = &p.net else {
        return false;
    };
    let payload = p.payload.slice();
    let l4 = match &p.transport {
        Some(etherparse::TransportHeader::Tcp(t)) => {
            t.checksum == t.calc_checksum_ipv4(ip, payload).unwrap()
        }
        Some(etherparse::TransportHeader::Udp(u)) => {
            u.checksum == 0 || u.checksum == u.calc_checksum_ipv4(ip, payload).unwrap()
        }
        _ => false,
    };
    ip.header_checksum == ip.calc_header_checksum() && l4
}

/// An established NAT flow's request, translated in XDP exactly as the worker's rewrite
/// (`rewrite::nat::dnat`) translates it, byte for byte, with checksums etherparse finds
/// right; a UDP datagram without a checksum stays without one; SYN/FIN/RST and a stale
/// entry still go to the worker.
#[test]
fn an_established_nat_flow_is_translated_in_xdp_as_the_worker_would() {
    let steer = loaded(5);
    let tkey = |sport| FlowKey::new(u32::from(CLIENT), u32::from(VIP), sport, VIP_TCP_PORT, 6);
    let frames = [
        (
            udp_key(5100),
            fixtures::udp_frame(CLIENT, 5100, VIP, VIP_UDP_PORT, b"translate me"),
        ),
        (
            tkey(5101),
            fixtures::tcp_frame(
                CLIENT,
                5101,
                VIP,
                VIP_TCP_PORT,
                FLAG_ACK | FLAG_PSH,
                b"GET /",
            ),
        ),
        (
            tkey(5102),
            fixtures::tcp_frame(CLIENT, 5102, VIP, VIP_TCP_PORT, FLAG_ACK, b""),
        ),
    ];
    for (key, frame) in frames {
        nat_entry(&steer, key, 5);
        let (action, out, delta) = run(&steer, &frame);
        assert_eq!((action, delta.get("fast_path")), (XDP_TX, 1));
        let mut want = frame.clone();
        xvs_dataplane::rewrite::nat::dnat(&mut want, RS_MAC, DIRECTOR_MAC, RIP, RPORT);
        assert_eq!(out, want, "as the worker rewrites it");
        assert!(checksums_right(&out), "checksums right by etherparse");
    }
    assert_eq!(steer.fast_in(SLOT).unwrap().packets, 3);

    // No UDP checksum (0): none after either.
    let mut bare = fixtures::udp_frame(CLIENT, 5103, VIP, VIP_UDP_PORT, b"no sum");
    bare[40..42].copy_from_slice(&[0, 0]);
    nat_entry(&steer, udp_key(5103), 5);
    let (action, out, _) = run(&steer, &bare);
    assert_eq!(action, XDP_TX);
    assert_eq!(&out[40..42], &[0, 0]);
    assert!(checksums_right(&out));

    // SYN, FIN, RST and a stale entry: the worker's.
    for flags in [FLAG_SYN, FLAG_FIN | FLAG_ACK, 0x04] {
        let f = fixtures::tcp_frame(CLIENT, 5101, VIP, VIP_TCP_PORT, flags, b"");
        assert_eq!(run(&steer, &f).0, TO_WORKER, "flags {flags:#x}");
    }
    nat_entry(&steer, udp_key(5104), 4);
    let f = fixtures::udp_frame(CLIENT, 5104, VIP, VIP_UDP_PORT, b"x");
    assert_eq!(run(&steer, &f).0, TO_WORKER);
}

/// Two-arm NAT: the translated request is redirected to the internal interface, from
/// that interface's MAC; an internal interface whose MAC the program was not told goes
/// to the worker instead.
#[test]
fn a_two_arm_nat_request_leaves_by_the_internal_interface() {
    const XDP_REDIRECT: u32 = 4;
    const INTERNAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];
    let mut steer = loaded(5);
    let frame = fixtures::udp_frame(CLIENT, 5200, VIP, VIP_UDP_PORT, b"inside");
    nat_entry(&steer, udp_key(5200), 5);
    // An interface the program knows no MAC of.
    steer.set_internal_ifindex(99).unwrap();
    assert_eq!(run(&steer, &frame).0, TO_WORKER);
    // Told (the redirect is not carried out in a test run: any index does).
    steer.set_local_mac(99, INTERNAL_MAC).unwrap();
    let (action, out, delta) = run(&steer, &frame);
    assert_eq!((action, delta.get("fast_path")), (XDP_REDIRECT, 1));
    let mut want = frame.clone();
    xvs_dataplane::rewrite::nat::dnat(&mut want, RS_MAC, INTERNAL_MAC, RIP, RPORT);
    assert_eq!(out, want);
}

/// What a NAT flow's worker does at its packets, the fast path does for the flows it
/// carries: one that wakes after idling half its timeout has its reply key written
/// again (the LRU map may have lost it); a UDP client's learned MAC is confirmed by its
/// flow's traffic, so a spoofer's datagram from another port cannot take it over.
#[test]
fn a_nat_flow_on_the_fast_path_keeps_its_reply_key_and_its_client() {
    use std::net::IpAddr;
    use xvs_bpf::abi::SVC_F_NAT;
    use xvs_dataplane::fixtures::CLIENT_MAC;
    let steer = loaded(5);
    steer
        .set_services(&[(SvcKey::new(VIP, VIP_UDP_PORT, 17), SVC_F_NAT | SVC_F_FAST)])
        .unwrap();
    let known = |sport: u16| {
        steer
            .nat_conn_known(
                (IpAddr::from(RIP), RPORT),
                (IpAddr::from(CLIENT), sport),
                17,
            )
            .unwrap()
    };
    let datagram = |sport, mac: [u8; 6]| {
        let mut f = fixtures::udp_frame(CLIENT, sport, VIP, VIP_UDP_PORT, b"d");
        f[6..12].copy_from_slice(&mac);
        f
    };
    // Idle 10 s of 60: nothing to tell; 40 s: told again.
    nat_entry_idle(&steer, udp_key(5300), 5, 10);
    assert_eq!(run(&steer, &datagram(5300, CLIENT_MAC)).0, XDP_TX);
    assert!(!known(5300));
    nat_entry_idle(&steer, udp_key(5301), 5, 40);
    assert_eq!(run(&steer, &datagram(5301, CLIENT_MAC)).0, XDP_TX);
    assert!(known(5301), "the reply key is back");

    // The control: an entry a minute old (written without a time) is taken over by a
    // datagram from another MAC, on a new flow (to the worker).
    let attacker = [2, 0, 0, 0, 0, 0x66];
    steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
    assert_eq!(run(&steer, &datagram(5399, attacker)).0, TO_WORKER);
    assert_eq!(steer.nat_client(CLIENT), Some(attacker), "the control");
    // The client's flow on the fast path, 20 s since its last datagram (past a 17 s
    // epoch): its entry confirmed, and the same spoof then teaches nothing.
    steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
    nat_entry_idle(&steer, udp_key(5302), 5, 20);
    assert_eq!(run(&steer, &datagram(5302, CLIENT_MAC)).0, XDP_TX);
    assert_eq!(run(&steer, &datagram(5398, attacker)).0, TO_WORKER);
    assert_eq!(steer.nat_client(CLIENT), Some(CLIENT_MAC), "confirmed");
}
