//! The real server's FullNAT programs, loaded for real and run with BPF_PROG_TEST_RUN
//! over the frames the director's pipeline sends: the opening SYN (with the client's
//! address option) and the later segments arrive from the client, the answers leave to
//! the local pair again, checksums as etherparse computes them; an option from an
//! untrusted address, or one that would give two connections the same client port, is
//! not followed. Needs root and BPF.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use libbpf_rs::ProgramInput;
use xvs_bpf::abi::ToaCounters;
use xvs_bpf::Toa;
use xvs_dataplane::fixtures::{self, CLIENT, CLIENT6, DIRECTOR_MAC, VIP, VIP6};
use xvs_dataplane::snapshot::{LocalPool, MAX_DESTS};
use xvs_dataplane::*;

const RIP: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 11);
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const LIP2: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 3);
const RIP6: Ipv6Addr = Ipv6Addr::new(0xfd20, 0, 0, 0, 0, 0, 0, 11);
const LIP6: Ipv6Addr = Ipv6Addr::new(0xfd50, 0, 0, 0, 0, 0, 0, 2);

/// The frame the director sends for the client's SYN from `cport`, from `lip`.
fn director_syn(vip: IpAddr, rip: IpAddr, lip: IpAddr, client: IpAddr, cport: u16) -> Vec<u8> {
    let dests = vec![Some(Dest {
        addr: rip,
        port: 8080,
        weight: 1,
        mac: Some([2, 0, 0, 0, 1, 0]),
    })];
    let mut svc = Service::new(
        "web",
        ServiceKey {
            addr: vip,
            port: 80,
            proto: 6,
        },
        SchedulerKind::Rr,
        Forwarding::FullNat,
        vec![0],
    );
    svc.local = Some(LocalPool {
        addrs: vec![lip],
        ports: (5000, 5000),
    });
    let snap = Snapshot::new(1, DIRECTOR_MAC, vec![svc], dests).unwrap();
    let mut p = Pipeline::new(
        &PipelineConfig::default(),
        Arc::new(WorkerCounters::new(MAX_DESTS)),
    );
    p.prepare(&snap);
    let syn = match (client, vip) {
        (IpAddr::V4(c), IpAddr::V4(v)) => fixtures::tcp_frame(c, cport, v, 80, 0x02, b""),
        (IpAddr::V6(c), IpAddr::V6(v)) => fixtures::tcp6_frame(c, cport, v, 80, 0x02, b""),
        _ => unreachable!(),
    };
    let len = syn.len();
    let mut buf = syn;
    buf.resize(len + 64, 0);
    let mut pkt = packet::Packet::new(&mut buf, 0, len).unwrap();
    let v = p.process_packet(&snap, 10, &mut pkt, pipeline::Prefetched::NONE);
    assert_eq!(v, Verdict::Tx);
    let n = pkt.len();
    buf.truncate(n);
    buf
}

fn run(toa: &Toa, ingress: bool, frame: &[u8]) -> (Vec<u8>, ToaCounters) {
    let before = toa.counters().unwrap();
    let mut out = vec![0u8; frame.len() + 64];
    let input = ProgramInput {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let o = toa
        .program(ingress)
        .test_run(input)
        .expect("BPF_PROG_TEST_RUN");
    assert_eq!(o.return_value, 0, "TC_ACT_OK");
    let len = o.data.map_or(0, |d| d.len());
    (out[..len].to_vec(), toa.counters().unwrap().since(&before))
}

/// Source, source port, destination, destination port; the checksums checked.
fn ends(frame: &[u8]) -> (IpAddr, u16, IpAddr, u16) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("tcp")
    };
    let (src, dst, want) = match p.net.unwrap() {
        NetSlice::Ipv4(ip) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
            let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
            (h.source.into(), h.destination.into(), want)
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header().to_header();
            let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
            (h.source.into(), h.destination.into(), want)
        }
        _ => panic!("ip"),
    };
    assert_eq!(t.checksum(), want, "TCP checksum");
    (src, t.source_port(), dst, t.destination_port())
}

fn loaded(trust: &[IpAddr]) -> Toa {
    let toa = Toa::load().expect("load the real server's programs (root and BPF needed)");
    toa.trust(trust).unwrap();
    toa
}

#[test]
fn a_connection_from_a_local_pair_has_the_client_as_its_peer() {
    let toa = loaded(&[LIP.into()]);
    let syn = director_syn(VIP.into(), RIP.into(), LIP.into(), CLIENT.into(), 40000);
    assert_eq!(
        ends(&syn),
        (LIP.into(), 5000, RIP.into(), 8080),
        "as the director sends it"
    );
    let (out, d) = run(&toa, true, &syn);
    assert_eq!(ends(&out), (CLIENT.into(), 40000, RIP.into(), 8080));
    assert_eq!((d.get("option"), d.get("restored")), (1, 1));

    // Later segments carry no option: restored all the same.
    let data = fixtures::tcp_frame(LIP, 5000, RIP, 8080, 0x18, b"GET / HTTP/1.0\r\n\r\n");
    let (out, _) = run(&toa, true, &data);
    assert_eq!(ends(&out), (CLIENT.into(), 40000, RIP.into(), 8080));
    // The answers, sent to the client, leave to the local pair.
    let answer = fixtures::tcp_frame(RIP, 8080, CLIENT, 40000, 0x18, b"HTTP/1.0 200 OK\r\n");
    let (out, d) = run(&toa, false, &answer);
    assert_eq!(ends(&out), (RIP.into(), 8080, LIP.into(), 5000));
    assert_eq!(d.get("reversed"), 1);
    // Other traffic passes untouched, both ways.
    let other = fixtures::tcp_frame(Ipv4Addr::new(10, 20, 0, 99), 5000, RIP, 8080, 0x18, b"x");
    assert_eq!(run(&toa, true, &other).0, other);
    let other = fixtures::tcp_frame(RIP, 22, CLIENT, 40000, 0x18, b"x");
    assert_eq!(run(&toa, false, &other).0, other);
}

#[test]
fn options_from_untrusted_addresses_and_colliding_clients_are_not_followed() {
    let toa = loaded(&[LIP.into(), LIP2.into()]);
    // From an address the real server was not told of: anyone could claim any client.
    let spoofed = director_syn(
        VIP.into(),
        RIP.into(),
        Ipv4Addr::new(192, 168, 50, 9).into(),
        CLIENT.into(),
        41000,
    );
    let (out, d) = run(&toa, true, &spoofed);
    assert_eq!(out, spoofed, "untouched");
    assert_eq!((d.get("untrusted"), d.get("restored")), (1, 0));

    // Two local pairs naming the same client port towards the same service port (two
    // directors, say): the second is left as it is, so neither connection is confused.
    let first = director_syn(VIP.into(), RIP.into(), LIP.into(), CLIENT.into(), 42000);
    run(&toa, true, &first);
    let second = director_syn(VIP.into(), RIP.into(), LIP2.into(), CLIENT.into(), 42000);
    let (out, d) = run(&toa, true, &second);
    assert_eq!(out, second);
    assert_eq!(d.get("collision"), 1);
    let answer = fixtures::tcp_frame(RIP, 8080, CLIENT, 42000, 0x18, b"x");
    let (out, _) = run(&toa, false, &answer);
    assert_eq!(
        ends(&out).2,
        IpAddr::from(LIP),
        "the first connection's answers"
    );
}

#[test]
fn ipv6_too() {
    let toa = loaded(&[LIP6.into()]);
    let syn = director_syn(VIP6.into(), RIP6.into(), LIP6.into(), CLIENT6.into(), 40000);
    let (out, d) = run(&toa, true, &syn);
    assert_eq!(ends(&out), (CLIENT6.into(), 40000, RIP6.into(), 8080));
    assert_eq!(d.get("option"), 1);
    let answer = fixtures::tcp6_frame(RIP6, 8080, CLIENT6, 40000, 0x18, b"x");
    let (out, _) = run(&toa, false, &answer);
    assert_eq!(ends(&out), (RIP6.into(), 8080, LIP6.into(), 5000));
}

/// A pair's new connection (its SYN) forgets what the earlier one recorded, even when
/// the new SYN names no client (no room for the option): it goes on as the local
/// pair's, never as the earlier client's. And only a SYN's option is followed: a later
/// segment naming someone else changes nothing.
#[test]
fn a_pairs_new_connection_never_inherits_the_earlier_client() {
    let toa = loaded(&[LIP.into()]);
    let syn = director_syn(VIP.into(), RIP.into(), LIP.into(), CLIENT.into(), 45000);
    run(&toa, true, &syn);
    // An ACK from the pair that names another client, as a forger would.
    let mut forged = director_syn(
        VIP.into(),
        RIP.into(),
        LIP.into(),
        Ipv4Addr::new(192, 0, 2, 66).into(),
        1,
    );
    forged[14 + 20 + 13] = 0x10;
    xvs_dataplane::rewrite::toa::finish4(&mut forged);
    let (out, d) = run(&toa, true, &forged);
    assert_eq!(d.get("option"), 0, "not a SYN: not followed");
    assert_eq!(
        ends(&out).0,
        IpAddr::from(CLIENT),
        "still the connection's client"
    );
    // The pair's next connection, whose SYN carries no option.
    let bare = fixtures::tcp_frame(LIP, 5000, RIP, 8080, 0x02, b"");
    let (out, d) = run(&toa, true, &bare);
    assert_eq!(out, bare, "the local pair's own");
    assert_eq!(d.get("restored"), 0);
    let answer = fixtures::tcp_frame(RIP, 8080, CLIENT, 45000, 0x12, b"");
    assert_eq!(
        run(&toa, false, &answer).0,
        answer,
        "the earlier client's way out is gone"
    );
}
