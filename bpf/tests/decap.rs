//! The real server's decap program through BPF_PROG_TEST_RUN: IPIP (or IPv6-in-IPv6) to a
//! VIP comes out as the client's own packet; everything else comes out unchanged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libbpf_rs::ProgramInput;
use xvs_bpf::Decap;
use xvs_dataplane::fixtures::{self, CLIENT, VIP};
use xvs_dataplane::packet::Packet;
use xvs_dataplane::rewrite::{tun, tun6};
use xvs_dataplane::wire::ipv4::{Ipv4Packet, Ipv4Repr, PROTO_IPIP};

const TC_ACT_OK: u32 = 0;
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

/// The client's frame as xvs's TUN rewrite sends it to the real server.
fn tunnelled(inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 + inner.len()];
    buf[64..].copy_from_slice(inner);
    let mut pkt = Packet::new(&mut buf, 64, inner.len()).unwrap();
    tun::encapsulate(
        &mut pkt,
        [2, 0, 0, 0, 0, 11],
        [2, 0, 0, 0, 0, 2],
        DIRECTOR,
        RIP,
        1500,
        9,
    )
    .unwrap();
    pkt.data().to_vec()
}

/// Runs the program; returns its action, the frame it leaves, and the counter it moved.
fn run(d: &Decap, frame: &[u8]) -> (u32, Vec<u8>, &'static str) {
    let before = d.counters().unwrap();
    let mut out = vec![0u8; frame.len() + 64];
    let input = ProgramInput {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let o = d.program().test_run(input).expect("BPF_PROG_TEST_RUN");
    let len = o.data.map(|d| d.len()).unwrap_or(0);
    let delta = d.counters().unwrap().since(&before);
    let moved: Vec<&'static str> = delta
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(l, _)| l)
        .collect();
    assert_eq!(moved.len(), 1, "exactly one counter: {moved:?}");
    (o.return_value, out[..len].to_vec(), moved[0])
}

#[test]
fn decapsulates_tunnelled_vip_traffic_only() {
    let d = Decap::load().expect("load the decap program (root and BPF needed)");
    d.add_vips(&[VIP.into()]).unwrap();
    let inner = fixtures::tcp_frame(CLIENT, 40000, VIP, 80, 0x02, b"hello");

    let (action, out, counter) = run(&d, &tunnelled(&inner));
    assert_eq!((action, counter), (TC_ACT_OK, "decapped"));
    assert_eq!(
        &out[14..],
        &inner[14..],
        "the client's packet, byte for byte"
    );
    assert_eq!(&out[12..14], &[0x08, 0x00]);

    // IPIP to an address that is no VIP here: left alone.
    let other = fixtures::tcp_frame(CLIENT, 40000, Ipv4Addr::new(10, 9, 9, 9), 80, 0x02, b"");
    let frame = tunnelled(&other);
    let (action, out, counter) = run(&d, &frame);
    assert_eq!((action, counter, out), (TC_ACT_OK, "pass_not_vip", frame));

    // Plain traffic and truncated tunnels: untouched.
    let (_, out, counter) = run(&d, &inner);
    assert_eq!((counter, out), ("pass_not_ipip", inner.clone()));
    let mut short = tunnelled(&inner);
    short.truncate(14 + 20 + 10);
    let mut ip = Ipv4Packet::new_unchecked(&mut short[14..]);
    ip.set_total_len(30);
    ip.fill_checksum();
    assert_eq!(run(&d, &short).2, "pass_truncated");

    // An outer fragment (a router split the tunnel's packet): the kernel reassembles it
    // before anything may strip the outer header; untouched, counted.
    for (flags, offset) in [(0x20u8, 0u8), (0x00, 185)] {
        let mut frag = tunnelled(&inner);
        frag[14 + 6] = flags;
        frag[14 + 7] = offset;
        let mut ip = Ipv4Packet::new_unchecked(&mut frag[14..]);
        ip.fill_checksum();
        let (action, out, counter) = run(&d, &frag);
        assert_eq!((action, counter, out), (TC_ACT_OK, "pass_fragment", frag));
    }

    // An outer header with options is not xvs's: untouched.
    let mut opts = vec![0u8; 14 + 24];
    opts[..14].copy_from_slice(&tunnelled(&inner)[..14]);
    Ipv4Repr {
        src: DIRECTOR,
        dst: RIP,
        protocol: PROTO_IPIP,
        payload_len: 4 + inner.len() - 14,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: true,
    }
    .emit(&mut opts[14..]);
    opts[14] = 0x46;
    opts.extend_from_slice(&inner[14..]);
    assert_eq!(run(&d, &opts).2, "pass_not_ipip");
}

/// The client's IPv6 frame as xvs's IPv6 TUN rewrite sends it.
fn tunnelled6(inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 + inner.len()];
    buf[64..].copy_from_slice(inner);
    let mut pkt = Packet::new(&mut buf, 64, inner.len()).unwrap();
    tun6::encapsulate(
        &mut pkt,
        [2, 0, 0, 0, 0, 11],
        [2, 0, 0, 0, 0, 2],
        fixtures::DIRECTOR6,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11),
        1500,
    )
    .unwrap();
    pkt.data().to_vec()
}

#[test]
fn decapsulates_ipv6_in_ipv6_to_an_ipv6_vip_only() {
    let d = Decap::load().expect("load the decap program (root and BPF needed)");
    let vip6 = fixtures::VIP6;
    // One program for both families, as `xvs realserver up` loads it.
    d.add_vips(&[IpAddr::from(VIP), IpAddr::from(vip6)])
        .unwrap();
    let inner = fixtures::tcp6_frame(fixtures::CLIENT6, 40000, vip6, 80, 0x02, b"hello6");
    let (action, out, counter) = run(&d, &tunnelled6(&inner));
    assert_eq!((action, counter), (TC_ACT_OK, "decapped"));
    assert_eq!(
        &out[12..],
        &inner[12..],
        "the client's packet, byte for byte"
    );

    // To another address: left alone; plain IPv6: untouched; cut short: untouched.
    let other = fixtures::tcp6_frame(fixtures::CLIENT6, 1, Ipv6Addr::LOCALHOST, 80, 0x02, b"");
    let frame = tunnelled6(&other);
    assert_eq!(run(&d, &frame), (TC_ACT_OK, frame.clone(), "pass_not_vip"));
    let (_, out, counter) = run(&d, &inner);
    assert_eq!((counter, out), ("pass_not_ipip", inner.clone()));
    let mut short = tunnelled6(&inner);
    short.truncate(14 + 40 + 20);
    assert_eq!(run(&d, &short).2, "pass_truncated");
    // The IPv4 VIP's IPIP still decapsulates beside it.
    let v4 = fixtures::tcp_frame(CLIENT, 40000, VIP, 80, 0x02, b"");
    assert_eq!(run(&d, &tunnelled(&v4)).2, "decapped");
}
