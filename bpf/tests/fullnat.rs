//! FullNAT's replies in the steering program, loaded for real and run with
//! BPF_PROG_TEST_RUN: the reply entry is the one the pipeline queues for a SYN it
//! forwarded (the two halves checked together), the reply leaves from VIP:vport to the
//! client with checksums etherparse agrees with, and a packet to a local address of no
//! known connection is the kernel's. Needs root and BPF.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use libbpf_rs::ProgramInput;
use xvs_bpf::abi::{Svc6Key, SvcKey, XdpCounters, SVC_F_NAT};
use xvs_bpf::Steer;
use xvs_dataplane::fixtures::{self, CLIENT, CLIENT6, CLIENT_MAC, DIRECTOR_MAC, VIP, VIP6};
use xvs_dataplane::snapshot::{LocalPool, MAX_DESTS};
use xvs_dataplane::sys::bytes_of;
use xvs_dataplane::*;

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const RIP: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 11);
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const RIP6: Ipv6Addr = Ipv6Addr::new(0xfd20, 0, 0, 0, 0, 0, 0, 11);
const LIP6: Ipv6Addr = Ipv6Addr::new(0xfd50, 0, 0, 0, 0, 0, 0, 2);

fn snapshot(vip: IpAddr, rip: IpAddr, lip: IpAddr) -> Snapshot {
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
        ports: (5000, 5999),
    });
    Snapshot::new(1, DIRECTOR_MAC, vec![svc], dests).unwrap()
}

fn steer() -> Steer {
    let steer = Steer::load().expect("load the steering program (root and BPF needed)");
    steer
        .set_services(&[(SvcKey::new(VIP, 80, 6), SVC_F_NAT)])
        .unwrap();
    steer
        .set_services6(&[(Svc6Key::new(VIP6, 80, 6), SVC_F_NAT)])
        .unwrap();
    steer
        .set_local_addrs(&[VIP, LIP, fixtures::DIRECTOR])
        .unwrap();
    steer.set_local_addrs6(&[VIP6, LIP6]).unwrap();
    steer.set_fnat_locals(&[LIP.into(), LIP6.into()]).unwrap();
    steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
    steer.set_nat_client(CLIENT6, CLIENT_MAC).unwrap();
    steer
}

/// Forwards the client's SYN through a pipeline, writes the reply entry it queued into
/// the steering program's map, and returns the local port it took.
fn open(steer: &Steer, snap: &Snapshot, syn: Vec<u8>) -> u16 {
    let [f] = forwarded(steer, snap, [syn]);
    let sliced = SlicedPacket::from_ethernet(&f).unwrap();
    match sliced.transport {
        Some(TransportSlice::Tcp(t)) => t.source_port(),
        _ => panic!("tcp"),
    }
}

/// A connection's frames, in order, through a pipeline, the reply entry written into the
/// steering program's map; the frames as the director sent them.
fn forwarded<const N: usize>(
    steer: &Steer,
    snap: &Snapshot,
    mut frames: [Vec<u8>; N],
) -> [Vec<u8>; N] {
    let mut p = Pipeline::new(
        &PipelineConfig::default(),
        Arc::new(WorkerCounters::new(MAX_DESTS)),
    );
    p.prepare(snap);
    for f in &mut frames {
        assert_eq!(p.process(snap, 10, f), Verdict::Tx);
    }
    let ops = p.fullnat_ops();
    for (k, v) in ops.v4.keys.iter().zip(&ops.v4.values) {
        steer
            .add_fnat_conn(false, bytes_of(k), bytes_of(v))
            .unwrap();
    }
    for (k, v) in ops.v6.keys.iter().zip(&ops.v6.values) {
        steer.add_fnat_conn(true, bytes_of(k), bytes_of(v)).unwrap();
    }
    frames
}

fn run(steer: &Steer, frame: &[u8]) -> (u32, Vec<u8>, XdpCounters) {
    let before = steer.counters().unwrap();
    let mut out = vec![0u8; frame.len() + 256];
    let input = ProgramInput {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let o = steer.program().test_run(input).expect("BPF_PROG_TEST_RUN");
    let len = o.data.map_or(0, |d| d.len());
    (
        o.return_value,
        out[..len].to_vec(),
        steer.counters().unwrap().since(&before),
    )
}

/// The frame's ends and whether etherparse computes the checksums it carries.
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

#[test]
fn replies_to_a_local_pair_become_the_vip_to_the_client() {
    let steer = steer();
    let snap = snapshot(VIP.into(), RIP.into(), LIP.into());
    let lport = open(
        &steer,
        &snap,
        fixtures::tcp_frame(CLIENT, 40000, VIP, 80, 0x02, b""),
    );
    let reply = fixtures::tcp_frame(RIP, 8080, LIP, lport, 0x12, b"hello from rs");
    let (action, out, delta) = run(&steer, &reply);
    assert_eq!((action, delta.get("fnat_reply")), (XDP_TX, 1));
    assert_eq!(
        (&out[..6], &out[6..12]),
        (&CLIENT_MAC[..], &fixtures::DIRECTOR_MAC[..])
    );
    assert_eq!(ends(&out), (VIP.into(), 80, CLIENT.into(), 40000));

    // Another port of the local address, or another real server: no connection.
    for frame in [
        fixtures::tcp_frame(RIP, 8080, LIP, lport + 1, 0x12, b""),
        fixtures::tcp_frame(Ipv4Addr::new(10, 20, 0, 12), 8080, LIP, lport, 0x12, b""),
    ] {
        let (action, out, delta) = run(&steer, &frame);
        assert_eq!((action, delta.get("pass_fnat_unknown")), (XDP_PASS, 1));
        assert_eq!(out, frame, "untouched");
    }
}

#[test]
fn ipv6_replies_too() {
    let steer = steer();
    let snap = snapshot(VIP6.into(), RIP6.into(), LIP6.into());
    let lport = open(
        &steer,
        &snap,
        fixtures::tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x02, b""),
    );
    let reply = fixtures::tcp6_frame(RIP6, 8080, LIP6, lport, 0x12, b"hello from rs");
    let (action, out, delta) = run(&steer, &reply);
    assert_eq!((action, delta.get("fnat_reply")), (XDP_TX, 1));
    assert_eq!(ends(&out), (VIP6.into(), 80, CLIENT6.into(), 40000));
}

/// A fragmentation-needed from the real server's path, about a request the director
/// sent from its local pair: it reaches the client as if about the client's own packet
/// (from the VIP, quoting CIP:cport → VIP:vport), every checksum right.
#[test]
fn icmp_errors_about_a_request_reach_its_client() {
    use etherparse::{icmpv4, Icmpv4Type, PacketBuilder};
    let steer = steer();
    let snap = snapshot(VIP.into(), RIP.into(), LIP.into());
    let syn = fixtures::tcp_frame(CLIENT, 40000, VIP, 80, 0x02, b"");
    let data = fixtures::tcp_frame(CLIENT, 40000, VIP, 80, 0x18, b"big request");
    let [_, req] = forwarded(&steer, &snap, [syn, data]);
    // The quoted part: the request's IP header and 8 bytes of its TCP header.
    let quoted = &req[14..14 + 20 + 8];
    let router = Ipv4Addr::new(10, 20, 0, 254);
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 9, 9], DIRECTOR_MAC)
        .ipv4(router.octets(), LIP.octets(), 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ));
    let mut icmp = Vec::new();
    b.write(&mut icmp, quoted).unwrap();
    let (action, out, d) = run(&steer, &icmp);
    assert_eq!((action, d.get("fnat_icmp")), (XDP_TX, 1));
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination), (VIP.octets(), CLIENT.octets()));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Icmpv4(i)) = &sliced.transport else {
        panic!()
    };
    let want = i.icmp_type().calc_checksum(i.payload());
    assert_eq!(i.checksum(), want, "ICMP checksum");
    let inner = etherparse::Ipv4HeaderSlice::from_slice(i.payload()).unwrap();
    assert_eq!(
        (inner.source_addr(), inner.destination_addr()),
        (CLIENT, VIP)
    );
    let inner_h = inner.to_header();
    assert_eq!(inner_h.header_checksum, inner_h.calc_header_checksum());
    let ports = &i.payload()[20..24];
    assert_eq!(
        ports,
        &[40000u16.to_be_bytes(), 80u16.to_be_bytes()].concat()[..]
    );
    // About a pair no connection holds: the kernel's.
    let mut other = icmp.clone();
    other[14 + 20 + 8 + 20] ^= 1;
    let (action, _, d) = run(&steer, &other);
    assert_eq!((action, d.get("fnat_icmp")), (XDP_PASS, 0));
}

/// IPv6: a Packet Too Big from the real server's path about a request reaches the
/// client, quoting the client's own packet, the ICMPv6 checksum (pseudo-header
/// included) and the quoted TCP checksum right.
#[test]
fn icmpv6_errors_about_a_request_reach_its_client() {
    use etherparse::{Icmpv6Type, PacketBuilder};
    let steer = steer();
    let snap = snapshot(VIP6.into(), RIP6.into(), LIP6.into());
    let syn = fixtures::tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x02, b"");
    let data = fixtures::tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x18, b"big request");
    let [_, req] = forwarded(&steer, &snap, [syn, data]);
    // The whole request quoted (IPv6 quotes as much as fits).
    let quoted = req[14..].to_vec();
    let router = Ipv6Addr::new(0xfd20, 0, 0, 0, 0, 0, 0, 0xfe);
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 9, 9], DIRECTOR_MAC)
        .ipv6(router.octets(), LIP6.octets(), 64)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 });
    let mut icmp = Vec::new();
    b.write(&mut icmp, &quoted).unwrap();
    let (action, out, d) = run(&steer, &icmp);
    assert_eq!((action, d.get("fnat_icmp")), (XDP_TX, 1));
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!()
    };
    let h = ip.header();
    assert_eq!((h.source_addr(), h.destination_addr()), (VIP6, CLIENT6));
    let Some(TransportSlice::Icmpv6(i)) = &sliced.transport else {
        panic!()
    };
    let want = i
        .icmp_type()
        .calc_checksum(h.source(), h.destination(), i.payload())
        .unwrap();
    assert_eq!(i.checksum(), want, "ICMPv6 checksum");
    // The quoted packet: the client's own, its TCP checksum right.
    let inner = SlicedPacket::from_ip(i.payload()).unwrap();
    let Some(NetSlice::Ipv6(iip)) = &inner.net else {
        panic!()
    };
    let ih = iip.header();
    assert_eq!((ih.source_addr(), ih.destination_addr()), (CLIENT6, VIP6));
    let Some(TransportSlice::Tcp(t)) = &inner.transport else {
        panic!()
    };
    assert_eq!((t.source_port(), t.destination_port()), (40000, 80));
    let want = t
        .to_header()
        .calc_checksum_ipv6(&ih.to_header(), t.payload())
        .unwrap();
    assert_eq!(t.checksum(), want, "quoted TCP checksum");
}
