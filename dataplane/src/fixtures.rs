//! Golden packets: crafted frames with what the steering program and the pipeline must do
//! with each. The same table drives the BPF tests (BPF_PROG_TEST_RUN) and the pipeline's
//! tests, so the two stay in agreement. Also the frame builders tests and benches share.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ethernet::{EthernetRepr, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr, PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_VRRP};
use crate::wire::ipv6::{
    Ipv6Repr, NH_DEST_OPTS, NH_FRAGMENT, NH_HOP_BY_HOP, NH_ICMPV6, NH_ROUTING,
};
use crate::wire::tcp::{TcpRepr, FLAG_ACK, FLAG_FIN, FLAG_PSH, FLAG_RST, FLAG_SYN};
use crate::wire::udp::UdpRepr;

pub const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
pub const DIRECTOR_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
pub const DIRECTOR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
/// Services in the fixtures' world: VIP:80/tcp and VIP:53/udp.
pub const VIP_TCP_PORT: u16 = 80;
pub const VIP_UDP_PORT: u16 = 53;

/// The addresses a fixture frame carries: the fixtures' own world (`World::default()`),
/// or a lab's, so an end-to-end test can send the same table over a wire.
#[derive(Clone, Copy, Debug)]
pub struct World {
    pub client_mac: Mac,
    pub director_mac: Mac,
    pub client: Ipv4Addr,
    pub director: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub client6: Ipv6Addr,
    pub director6: Ipv6Addr,
    pub vip6: Ipv6Addr,
    pub tcp_port: u16,
    pub udp_port: u16,
}

impl Default for World {
    fn default() -> Self {
        World {
            client_mac: CLIENT_MAC,
            director_mac: DIRECTOR_MAC,
            client: CLIENT,
            director: DIRECTOR,
            vip: VIP,
            client6: CLIENT6,
            director6: DIRECTOR6,
            vip6: VIP6,
            tcp_port: VIP_TCP_PORT,
            udp_port: VIP_UDP_PORT,
        }
    }
}

fn eth_ip_in(w: &World, proto: u8, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + l4.len()];
    EthernetRepr {
        src: w.client_mac,
        dst: w.director_mac,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut f);
    Ipv4Repr {
        src,
        dst,
        protocol: proto,
        payload_len: l4.len(),
        ttl,
        tos: 0,
        ident: 1,
        dont_frag: true,
    }
    .emit(&mut f[14..]);
    f[34..].copy_from_slice(l4);
    f
}

fn tcp_l4(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: 1000,
        ack: if flags & FLAG_ACK != 0 { 2000 } else { 0 },
        flags,
        window: 64240,
        payload,
    };
    let mut l4 = vec![0u8; repr.len()];
    repr.emit(&mut l4, src, dst);
    l4
}

/// An Ethernet + IPv4 + TCP frame from the client.
pub fn tcp_frame(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = tcp_l4(src, sport, dst, dport, flags, payload);
    eth_ip_in(&World::default(), PROTO_TCP, src, dst, 64, &l4)
}

fn udp_l4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + payload.len()];
    UdpRepr {
        src_port: sport,
        dst_port: dport,
    }
    .emit(&mut l4, payload, src, dst);
    l4
}

/// An Ethernet + IPv4 + UDP frame from the client.
pub fn udp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l4 = udp_l4(src, sport, dst, dport, payload);
    eth_ip_in(&World::default(), PROTO_UDP, src, dst, 64, &l4)
}

/// An Ethernet + IPv6 frame from the client: `exts` (extension headers, the first of
/// type `nh`) then `l4`, whose protocol the last extension header names.
fn eth_ip6_in(w: &World, nh: u8, src: Ipv6Addr, dst: Ipv6Addr, exts: &[u8], l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40];
    EthernetRepr {
        src: w.client_mac,
        dst: w.director_mac,
        ethertype: ETHERTYPE_IPV6,
    }
    .emit(&mut f);
    Ipv6Repr {
        src,
        dst,
        next_header: nh,
        payload_len: exts.len() + l4.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x12345,
    }
    .emit(&mut f[14..]);
    f.extend_from_slice(exts);
    f.extend_from_slice(l4);
    f
}

/// `l4` (a TCP or UDP header and payload) with its checksum over the IPv6 pseudo-header.
fn checksum6(mut l4: Vec<u8>, proto: u8, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let at = if proto == PROTO_TCP { 16 } else { 6 };
    l4[at..at + 2].fill(0);
    let acc = checksum::pseudo_header_v6(src.octets(), dst.octets(), proto, l4.len() as u32);
    let c = match !checksum::fold(checksum::sum(acc, &l4)) {
        // UDP over IPv6 must carry a checksum: 0 is sent as all ones (RFC 8200 8.1).
        0 if proto == PROTO_UDP => 0xffff,
        c => c,
    };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    l4
}

fn tcp6_l4(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = tcp_l4(
        Ipv4Addr::UNSPECIFIED,
        sport,
        Ipv4Addr::UNSPECIFIED,
        dport,
        flags,
        payload,
    );
    checksum6(l4, PROTO_TCP, src, dst)
}

fn udp6_l4(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l4 = udp_l4(
        Ipv4Addr::UNSPECIFIED,
        sport,
        Ipv4Addr::UNSPECIFIED,
        dport,
        payload,
    );
    checksum6(l4, PROTO_UDP, src, dst)
}

/// An Ethernet + IPv6 + TCP frame from the client.
pub fn tcp6_frame(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = tcp6_l4(src, sport, dst, dport, flags, payload);
    eth_ip6_in(&World::default(), PROTO_TCP, src, dst, &[], &l4)
}

/// An Ethernet + IPv6 + UDP frame from the client.
pub fn udp6_frame(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l4 = udp6_l4(src, sport, dst, dport, payload);
    eth_ip6_in(&World::default(), PROTO_UDP, src, dst, &[], &l4)
}

fn raw_in(w: &World, ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    EthernetRepr {
        src: w.client_mac,
        dst: w.director_mac,
        ethertype,
    }
    .emit(&mut f);
    f.extend_from_slice(body);
    f
}

/// `frame` with its IPv4 header edited by `edit`, the header checksum made right again.
fn ip_edited(mut frame: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    edit(&mut frame[14..]);
    Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
    frame
}

/// The client's ARP request for the VIP.
fn arp_request(w: &World) -> Vec<u8> {
    let mut b = vec![0, 1, 8, 0, 6, 4, 0, 1];
    b.extend_from_slice(&w.client_mac);
    b.extend_from_slice(&w.client.octets());
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(&w.vip.octets());
    b
}

/// What the pipeline does with a fixture once the steering program sent it to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineExpect {
    /// Forwarded to a real server (DR: only the MACs change).
    Forward,
    Drop(DropReason),
    /// The steering program never sends it to a worker.
    NotSteered,
}

pub struct Fixture {
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// The steering counter (`xvs_abi.h` label) this frame increments when a socket is
    /// bound; "steered" and "fast_path" mean XDP_REDIRECT, a "drop_" one XDP_DROP,
    /// anything else XDP_PASS.
    pub steer: &'static str,
    pub pipeline: PipelineExpect,
    /// Why this is the outcome (the kernel's or IPVS's behaviour it follows).
    pub why: &'static str,
}

/// The first source port of the fixtures a real server must never see (a lab's capture
/// tells them apart by port); forwarded ones use ports below it.
pub const DROPPED_PORT_BASE: u16 = 41000;

/// The golden table, in the fixtures' world.
pub fn all() -> Vec<Fixture> {
    table(&World::default())
}

/// The golden table with `w`'s addresses. The steering program's services are VIP:tcp_port
/// over TCP and VIP:udp_port over UDP, scheduled by a non-hashing scheduler (`sloppy_tcp`
/// off), and the director's address and the VIP are its own.
pub fn table(w: &World) -> Vec<Fixture> {
    use PipelineExpect::*;
    let (c, vip, tp, up) = (w.client, w.vip, w.tcp_port, w.udp_port);
    let tcp = |src: Ipv4Addr, sport: u16, dport: u16, flags: u8, payload: &[u8]| {
        eth_ip_in(
            w,
            PROTO_TCP,
            src,
            vip,
            64,
            &tcp_l4(src, sport, vip, dport, flags, payload),
        )
    };
    let udp = |src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]| {
        eth_ip_in(
            w,
            PROTO_UDP,
            src,
            dst,
            64,
            &udp_l4(src, sport, dst, dport, payload),
        )
    };
    let drop_tcp = |n: u16, flags: u8| tcp(c, DROPPED_PORT_BASE + n, tp, flags, b"");
    let syn = tcp(c, 40000, tp, FLAG_SYN, b"");
    let fragment = |first: bool| {
        ip_edited(tcp(c, 40001, tp, FLAG_ACK, b"data"), |ip| {
            // More fragments follow (first) / offset 1480 (a later one).
            ip[6] = if first { 0x20 } else { 0x00 };
            ip[7] = if first { 0 } else { 185 };
        })
    };
    let mut ip_options = syn.clone();
    {
        // IHL 6: four bytes of options (NOPs + EOL) between the IP and TCP headers.
        let tcp = ip_options.split_off(34);
        ip_options.extend_from_slice(&[1, 1, 1, 0]);
        ip_options.extend_from_slice(&tcp);
        ip_options[14] = 0x46;
        let total = (ip_options.len() - 14) as u16;
        ip_options = ip_edited(ip_options, |ip| {
            ip[2..4].copy_from_slice(&total.to_be_bytes())
        });
        ip_options[34 + 4..34 + 6].copy_from_slice(&(40002u16).to_be_bytes());
        // The TCP checksum is not checked on the way (as IPVS in DR): left stale.
    }
    let ttl = |t: u8, sport: u16| ip_edited(tcp(c, sport, tp, FLAG_SYN, b""), |ip| ip[8] = t);
    let mut short_tcp = drop_tcp(0, FLAG_SYN);
    short_tcp.truncate(14 + 20 + 10);
    let mut vrrp_body = vec![0u8; 20 + 8];
    Ipv4Repr {
        src: w.director,
        dst: Ipv4Addr::new(224, 0, 0, 18),
        protocol: PROTO_VRRP,
        payload_len: 8,
        ttl: 255,
        tos: 0xc0,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut vrrp_body);
    let icmp_in = |ty: u8, quoted: &[u8]| {
        let mut icmp = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(quoted);
        let sum = crate::wire::checksum::fold(crate::wire::checksum::sum(0, &icmp));
        icmp[2..4].copy_from_slice(&(!sum).to_be_bytes());
        eth_ip_in(w, PROTO_ICMP, c, vip, 64, &icmp)
    };
    // An ICMP error from the client quoting the VIP's reply to it (VIP:port → client).
    let quoted = {
        let l4 = tcp_l4(vip, tp, c, 40003, FLAG_SYN | FLAG_ACK, b"");
        let mut q = eth_ip_in(w, PROTO_TCP, vip, c, 64, &l4)[14..].to_vec();
        q.truncate(28);
        q
    };
    let mut bad_ihl = drop_tcp(1, FLAG_SYN);
    bad_ihl[14] = 0x44;
    let mut bad_version = drop_tcp(2, FLAG_SYN);
    bad_version[14] = 0x65;
    let long_total = ip_edited(drop_tcp(3, FLAG_SYN), |ip| {
        let t = u16::from_be_bytes([ip[2], ip[3]]) + 8;
        ip[2..4].copy_from_slice(&t.to_be_bytes());
    });
    let short_total = ip_edited(drop_tcp(4, FLAG_SYN), |ip| {
        ip[2..4].copy_from_slice(&19u16.to_be_bytes())
    });
    let mut bad_csum = drop_tcp(5, FLAG_SYN);
    bad_csum[24] ^= 0x5a;
    let martian = |src: [u8; 4], n: u16| {
        tcp(
            Ipv4Addr::from(src),
            DROPPED_PORT_BASE + n,
            tp,
            FLAG_SYN,
            b"",
        )
    };
    let mut l2_broadcast = drop_tcp(12, FLAG_SYN);
    l2_broadcast[..6].copy_from_slice(&[0xff; 6]);
    let mut l2_multicast = drop_tcp(13, FLAG_SYN);
    l2_multicast[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    let mut doff_small = drop_tcp(20, FLAG_SYN);
    doff_small[14 + 20 + 12] = 0x40;
    let mut doff_past = drop_tcp(21, FLAG_SYN);
    doff_past[14 + 20 + 12] = 0xf0;
    let udp_len = |len: u16, n: u16| {
        let mut f = udp(c, DROPPED_PORT_BASE + n, vip, up, b"query");
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&len.to_be_bytes());
        f
    };
    let mut bad_tcp_csum = tcp(c, 40010, tp, FLAG_SYN, b"");
    bad_tcp_csum[14 + 20 + 16] ^= 0x5a;
    let mut bad_udp_csum = udp(c, 40011, vip, up, b"query");
    bad_udp_csum[14 + 20 + 6] ^= 0x5a;
    let mut vlan = syn.clone();
    {
        let ip = vlan.split_off(12);
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        vlan.extend_from_slice(&ip);
    }
    let mut garbage: Vec<u8> = raw_in(w, ETHERTYPE_IPV4, &[0u8; 46]);
    let mut x = 0x9e37_79b9u32;
    for b in &mut garbage[14..] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    garbage[14] = 0xa5; // whatever the bytes, not IPv4's version

    // IPv6: the same services on the VIP's IPv6 address.
    let (c6, vip6) = (w.client6, w.vip6);
    let tcp6x = |src: Ipv6Addr, sport: u16, flags: u8, exts: &[u8], nh: u8| {
        let l4 = tcp6_l4(src, sport, vip6, tp, flags, b"");
        eth_ip6_in(
            w,
            if exts.is_empty() { PROTO_TCP } else { nh },
            src,
            vip6,
            exts,
            &l4,
        )
    };
    let tcp6 = |src: Ipv6Addr, sport: u16, flags: u8| tcp6x(src, sport, flags, &[], 0);
    let drop6 = |n: u16, flags: u8| tcp6(c6, DROPPED_PORT_BASE + 50 + n, flags);
    // An 8-byte extension header of type `ty`'s body, followed by `next`.
    let ext = |next: u8| vec![next, 0, 1, 4, 0, 0, 0, 0];
    let hop_by_hop = ext(PROTO_TCP);
    let mut five_dest_opts = Vec::new();
    for i in 0..5 {
        five_dest_opts.extend(ext(if i < 4 { NH_DEST_OPTS } else { PROTO_TCP }));
    }
    let mut hbh_second = ext(NH_HOP_BY_HOP);
    hbh_second.extend(ext(PROTO_TCP));
    let frag6 = |offset_m: u16| {
        let mut h = vec![PROTO_TCP, 0];
        h.extend_from_slice(&offset_m.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x12, 0x34]);
        h
    };
    let icmp6 = |ty: u8, dst: Ipv6Addr, body: &[u8]| {
        let mut m = vec![ty, 0, 0, 0];
        m.extend_from_slice(body);
        let acc = checksum::pseudo_header_v6(c6.octets(), dst.octets(), NH_ICMPV6, m.len() as u32);
        let sum = !checksum::fold(checksum::sum(acc, &m));
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        eth_ip6_in(w, NH_ICMPV6, c6, dst, &[], &m)
    };
    // A neighbour solicitation for the VIP, to its solicited-node group.
    let snm = {
        let o = vip6.octets();
        Ipv6Addr::from([
            0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
        ])
    };
    let mut ns_body = vec![0u8; 4];
    ns_body.extend_from_slice(&vip6.octets());
    let mut ns = icmp6(135, snm, &ns_body);
    ns[..6].copy_from_slice(&[
        0x33,
        0x33,
        0xff,
        snm.octets()[13],
        snm.octets()[14],
        snm.octets()[15],
    ]);
    let mut long_payload6 = drop6(1, FLAG_SYN);
    let pl = u16::from_be_bytes([long_payload6[18], long_payload6[19]]) + 8;
    long_payload6[18..20].copy_from_slice(&pl.to_be_bytes());
    let mut short6 = drop6(2, FLAG_SYN);
    short6.truncate(14 + 24);
    let mut l2_multicast6 = drop6(3, FLAG_SYN);
    l2_multicast6[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    let mut trunc_ext = tcp6x(
        c6,
        DROPPED_PORT_BASE + 54,
        FLAG_SYN,
        &ext(PROTO_TCP),
        NH_HOP_BY_HOP,
    );
    trunc_ext[14 + 40 + 1] = 200; // 1608 bytes of options in a 60-byte payload
    let martian6 = |src: Ipv6Addr, n: u16| tcp6(src, DROPPED_PORT_BASE + 60 + n, FLAG_SYN);
    let udp6 = |sport: u16| {
        let l4 = udp6_l4(c6, sport, vip6, up, b"query");
        eth_ip6_in(w, PROTO_UDP, c6, vip6, &[], &l4)
    };
    let v6_rows =
        vec![
        Fixture {
            name: "IPv6 TCP SYN to a TCP service",
            frame: tcp6(c6, 40020, FLAG_SYN),
            steer: "steered",
            pipeline: Forward,
            why: "a new connection",
        },
        Fixture {
            name: "IPv6 UDP to a UDP service",
            frame: udp6(40021),
            steer: "steered",
            pipeline: Forward,
            why: "a datagram of a new flow",
        },
        Fixture {
            name: "IPv6 TCP SYN after hop-by-hop options",
            frame: tcp6x(c6, 40022, FLAG_SYN, &hop_by_hop, NH_HOP_BY_HOP),
            steer: "steered",
            pipeline: Forward,
            why: "the chain is walked to the TCP header (at most 4 extension headers)",
        },
        Fixture {
            name: "IPv6 TCP SYN in an atomic fragment (offset 0, M clear)",
            frame: tcp6x(c6, 40023, FLAG_SYN, &frag6(0), NH_FRAGMENT),
            steer: "steered",
            pipeline: Forward,
            why: "a whole packet (RFC 6946): its ports are there",
        },
        Fixture {
            name: "IPv6 TCP ACK of no known connection",
            frame: drop6(0, FLAG_ACK),
            steer: "steered",
            pipeline: Drop(DropReason::NoFlow),
            why: "as IPVS without sloppy_tcp: only a SYN opens a connection",
        },
        Fixture {
            name: "IPv6 TCP to a VIP port with no service",
            frame: tcp6x(c6, DROPPED_PORT_BASE + 55, FLAG_SYN, &[], 0)
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 14 + 40 + 3 { b ^ 1 } else { b })
                .collect(),
            steer: "pass_not_service",
            pipeline: NotSteered,
            why: "the kernel's (it holds no socket there: a RST)",
        },
        Fixture {
            name: "IPv6 neighbour solicitation for the VIP",
            frame: ns,
            steer: "pass_other_proto",
            pipeline: NotSteered,
            why: "neighbour discovery, router and multicast traffic are always the kernel's",
        },
        Fixture {
            name: "ICMPv6 echo to the VIP",
            frame: icmp6(128, vip6, &[0, 1, 0, 1]),
            steer: "pass_other_proto",
            pipeline: NotSteered,
            why: "the kernel answers ping for the VIP it holds",
        },
        Fixture {
            name: "IPv6 first fragment (M set)",
            frame: tcp6x(c6, DROPPED_PORT_BASE + 56, FLAG_SYN, &frag6(1), NH_FRAGMENT),
            steer: "pass_fragment",
            pipeline: Drop(DropReason::Fragment),
            why: "no ports to schedule on: the kernel reassembles (and, holding no service, drops)",
        },
        Fixture {
            name: "IPv6 later fragment (offset set)",
            frame: tcp6x(c6, DROPPED_PORT_BASE + 57, FLAG_SYN, &frag6(185 << 3), NH_FRAGMENT),
            steer: "pass_fragment",
            pipeline: Drop(DropReason::Fragment),
            why: "as the first fragment",
        },
        Fixture {
            name: "IPv6 with five extension headers",
            frame: tcp6x(c6, DROPPED_PORT_BASE + 58, FLAG_SYN, &five_dest_opts, NH_DEST_OPTS),
            steer: "pass_ipv6_ext",
            pipeline: Drop(DropReason::ExtHeaders),
            why: "past the walk's bound of 4: the kernel's, which walks any chain",
        },
        Fixture {
            name: "IPv6 hop-by-hop options not first",
            frame: tcp6x(c6, DROPPED_PORT_BASE + 59, FLAG_SYN, &hbh_second, NH_DEST_OPTS),
            steer: "pass_ipv6_ext",
            pipeline: Drop(DropReason::ExtHeaders),
            why: "RFC 8200 4.1: the kernel answers with a parameter problem",
        },
        Fixture {
            name: "IPv6 extension header past the payload",
            frame: trunc_ext,
            steer: "pass_ipv6_ext",
            pipeline: Drop(DropReason::ExtHeaders),
            why: "the kernel drops it",
        },
        Fixture {
            name: "truncated IPv6 header (24 bytes)",
            frame: short6,
            steer: "pass_truncated",
            pipeline: Drop(DropReason::Truncated),
            why: "the kernel drops it",
        },
        Fixture {
            name: "IPv6 payload length past the frame",
            frame: long_payload6,
            steer: "drop_bad_ip_length",
            pipeline: Drop(DropReason::BadIpLength),
            why: "ipv6_rcv drops it",
        },
        Fixture {
            name: "IPv6 source ::1",
            frame: martian6(Ipv6Addr::LOCALHOST, 0),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "ip6_rcv_core drops loopback from the wire",
        },
        Fixture {
            name: "IPv6 source a multicast address",
            frame: martian6("ff02::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED), 1),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "RFC 4291 2.7: never a source",
        },
        Fixture {
            name: "IPv6 source an IPv4-mapped address",
            frame: martian6(c.to_ipv6_mapped(), 2),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "RFC 4291 2.5.5.2: not on the wire",
        },
        Fixture {
            name: "IPv6 source the VIP itself",
            frame: martian6(vip6, 3),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "a spoofed packet: the VIP is the director's",
        },
        Fixture {
            name: "IPv6 in an Ethernet multicast frame",
            frame: l2_multicast6,
            steer: "drop_l2_multicast",
            pipeline: Drop(DropReason::L2Multicast),
            why: "a VIP is unicast: every director of a pair would forward it",
        },
        Fixture {
            name: "IPv6 TCP SYN+FIN",
            frame: drop6(4, FLAG_SYN | FLAG_FIN),
            steer: "drop_bad_tcp_flags",
            pipeline: Drop(DropReason::BadTcpFlags),
            why: "as over IPv4",
        },
    ];

    let mut rows = vec![
        Fixture {
            name: "TCP SYN to a TCP service",
            frame: syn.clone(),
            steer: "steered",
            pipeline: Forward,
            why: "a new connection",
        },
        Fixture {
            name: "TCP ACK (data) of no known connection",
            frame: drop_tcp(30, FLAG_ACK),
            steer: "steered",
            pipeline: Drop(DropReason::NoFlow),
            why: "as IPVS without sloppy_tcp: only a SYN opens a connection",
        },
        Fixture {
            name: "TCP SYN with payload, full-size frame (1514 bytes)",
            frame: tcp(c, 40004, tp, FLAG_SYN, &[0x61; 1460]),
            steer: "steered",
            pipeline: Forward,
            why: "a valid segment",
        },
        Fixture {
            name: "UDP to a UDP service",
            frame: udp(c, 5353, vip, up, b"query"),
            steer: "steered",
            pipeline: Forward,
            why: "a new flow",
        },
        Fixture {
            name: "TCP with IPv4 options",
            frame: ip_options,
            steer: "steered",
            pipeline: Forward,
            why: "options are legal and carried unchanged (IPVS forwards them)",
        },
        Fixture {
            name: "TCP SYN with TTL 1",
            frame: ttl(1, 40005),
            steer: "steered",
            pipeline: Forward,
            why: "the director is the destination, not a router: TTL is not checked nor decremented (IPVS DR)",
        },
        Fixture {
            name: "TCP SYN with TTL 0",
            frame: ttl(0, 40006),
            steer: "steered",
            pipeline: Forward,
            why: "as TTL 1",
        },
        Fixture {
            name: "TCP SYN with a wrong TCP checksum",
            frame: bad_tcp_csum,
            steer: "steered",
            pipeline: Forward,
            why: "L4 checksums are not verified on the way (IPVS DR neither); the real server's stack drops it",
        },
        Fixture {
            name: "UDP with a wrong UDP checksum",
            frame: bad_udp_csum,
            steer: "steered",
            pipeline: Forward,
            why: "as the TCP checksum",
        },
        Fixture {
            name: "TCP to a VIP port with no service",
            frame: tcp(c, 40007, 22, FLAG_SYN, b""),
            steer: "pass_not_service",
            pipeline: Drop(DropReason::NoService),
            why: "not a service: the kernel's (it answers or drops as for any local port)",
        },
        Fixture {
            name: "UDP to the TCP service's port",
            frame: udp(c, 5353, vip, tp, b"x"),
            steer: "pass_not_service",
            pipeline: Drop(DropReason::NoService),
            why: "services are per protocol",
        },
        Fixture {
            name: "TCP to destination port 0",
            frame: tcp(c, 40008, 0, FLAG_SYN, b""),
            steer: "pass_not_service",
            pipeline: Drop(DropReason::NoService),
            why: "no service listens on port 0 (an all-ports service would drop it as port_zero)",
        },
        Fixture {
            name: "TCP to the director's own address",
            frame: eth_ip_in(w, PROTO_TCP, c, w.director, 64, &tcp_l4(c, 40009, w.director, 22, FLAG_SYN, b"")),
            steer: "pass_not_service",
            pipeline: NotSteered,
            why: "the director's own traffic (SSH, ...)",
        },
        Fixture {
            name: "UDP to the limited broadcast",
            frame: udp(c, 5353, Ipv4Addr::BROADCAST, up, b"x"),
            steer: "pass_not_service",
            pipeline: NotSteered,
            why: "a VIP is unicast: the kernel's",
        },
        Fixture {
            name: "UDP to a multicast group",
            frame: udp(c, 5353, Ipv4Addr::new(239, 1, 1, 1), up, b"x"),
            steer: "pass_not_service",
            pipeline: NotSteered,
            why: "as broadcast",
        },
        Fixture {
            name: "ARP request",
            frame: raw_in(w, ETHERTYPE_ARP, &arp_request(w)),
            steer: "pass_not_ip",
            pipeline: Drop(DropReason::NotIp),
            why: "the kernel answers ARP",
        },
        Fixture {
            name: "VRRP advert",
            frame: raw_in(w, ETHERTYPE_IPV4, &vrrp_body),
            steer: "pass_other_proto",
            pipeline: NotSteered,
            why: "the control plane's (its raw socket)",
        },
        Fixture {
            name: "ICMP echo to the VIP",
            frame: icmp_in(8, &[]),
            steer: "pass_other_proto",
            pipeline: NotSteered,
            why: "the kernel answers ping for the VIP it holds",
        },
        Fixture {
            name: "ICMP error quoting a VIP flow (DR/TUN)",
            frame: icmp_in(3, &quoted),
            steer: "pass_other_proto",
            pipeline: NotSteered,
            why: "DR/TUN replies bypass the director: the kernel's (NAT flows' are translated: nat_icmp)",
        },
        Fixture {
            name: "IP version 4 in an IPv6 EtherType",
            frame: raw_in(w, ETHERTYPE_IPV6, &[0x45; 40]),
            steer: "pass_bad_header",
            pipeline: Drop(DropReason::BadIpVersion),
            why: "the kernel drops it",
        },
        Fixture {
            name: "802.1Q VLAN-tagged TCP SYN",
            frame: vlan,
            steer: "pass_not_ip",
            pipeline: Drop(DropReason::NotIp),
            why: "xvs serves untagged frames; a VLAN's own interface is where to attach it. A tag the NIC (rx-vlan offload) or a bridge strips into metadata is invisible to XDP: turn `rxvlan` off",
        },
        Fixture {
            name: "first fragment (MF set)",
            frame: fragment(true),
            steer: "pass_fragment",
            pipeline: Drop(DropReason::Fragment),
            why: "no ports to schedule on: the kernel reassembles (and, holding no service, drops)",
        },
        Fixture {
            name: "later fragment (offset set)",
            frame: fragment(false),
            steer: "pass_fragment",
            pipeline: Drop(DropReason::Fragment),
            why: "as the first",
        },
        Fixture {
            name: "truncated Ethernet (10 bytes)",
            frame: syn[..10].to_vec(),
            steer: "pass_truncated",
            pipeline: Drop(DropReason::Truncated),
            why: "no driver delivers it; the kernel's test run refuses it",
        },
        Fixture {
            name: "truncated IPv4 header (12 bytes)",
            frame: syn[..14 + 12].to_vec(),
            steer: "pass_truncated",
            pipeline: Drop(DropReason::Truncated),
            why: "the kernel drops it (ip_rcv: header too short)",
        },
        Fixture {
            name: "truncated TCP header (10 bytes)",
            frame: short_tcp,
            steer: "pass_truncated",
            pipeline: Drop(DropReason::BadIpLength),
            why: "ports unreadable: the kernel's, which drops it (total length past the frame)",
        },
        Fixture {
            name: "IPv4 header length 4 words",
            frame: bad_ihl,
            steer: "pass_bad_header",
            pipeline: Drop(DropReason::BadIpHeaderLen),
            why: "no header to read ports behind: the kernel drops it (ip_rcv)",
        },
        Fixture {
            name: "IP version 6 in an IPv4 EtherType",
            frame: bad_version,
            steer: "pass_bad_header",
            pipeline: Drop(DropReason::BadIpVersion),
            why: "as a bad header length",
        },
        Fixture {
            name: "garbage after an IPv4 EtherType",
            frame: garbage,
            steer: "pass_bad_header",
            pipeline: Drop(DropReason::BadIpVersion),
            why: "as a bad version",
        },
        Fixture {
            name: "IPv4 total length past the frame",
            frame: long_total,
            steer: "drop_bad_ip_length",
            pipeline: Drop(DropReason::BadIpLength),
            why: "ip_rcv drops it",
        },
        Fixture {
            name: "IPv4 total length below the header",
            frame: short_total,
            steer: "drop_bad_ip_length",
            pipeline: Drop(DropReason::BadIpLength),
            why: "ip_rcv drops it",
        },
        Fixture {
            name: "IPv4 header checksum wrong",
            frame: bad_csum,
            steer: "drop_bad_ip_checksum",
            pipeline: Drop(DropReason::BadIpChecksum),
            why: "ip_rcv drops it",
        },
        Fixture {
            name: "source 127.0.0.1",
            frame: martian([127, 0, 0, 1], 6),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "a martian source (ip_route_input)",
        },
        Fixture {
            name: "source 0.0.0.0",
            frame: martian([0, 0, 0, 0], 7),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "a martian source",
        },
        Fixture {
            name: "source a multicast address",
            frame: martian([224, 0, 0, 5], 8),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "a martian source",
        },
        Fixture {
            name: "source 255.255.255.255",
            frame: martian([255, 255, 255, 255], 9),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "a martian source",
        },
        Fixture {
            name: "source the VIP itself",
            frame: martian(vip.octets(), 10),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "a local address as the source: the kernel drops it",
        },
        Fixture {
            name: "source the director's own address",
            frame: martian(w.director.octets(), 11),
            steer: "drop_martian_source",
            pipeline: Drop(DropReason::MartianSource),
            why: "as the VIP",
        },
        Fixture {
            name: "in an Ethernet broadcast frame",
            frame: l2_broadcast,
            steer: "drop_l2_multicast",
            pipeline: Drop(DropReason::L2Multicast),
            why: "flooded to every director: forwarded by none (a VIP is unicast)",
        },
        Fixture {
            name: "in an Ethernet multicast frame",
            frame: l2_multicast,
            steer: "drop_l2_multicast",
            pipeline: Drop(DropReason::L2Multicast),
            why: "as broadcast",
        },
        Fixture {
            name: "TCP from source port 0",
            frame: tcp(c, 0, tp, FLAG_SYN, b""),
            steer: "drop_port_zero",
            pipeline: Drop(DropReason::PortZero),
            why: "no stack sends from port 0",
        },
        Fixture {
            name: "UDP from source port 0",
            frame: udp(c, 0, vip, up, b"query"),
            steer: "drop_port_zero",
            pipeline: Drop(DropReason::PortZero),
            why: "as TCP",
        },
        Fixture {
            name: "TCP SYN+FIN",
            frame: drop_tcp(14, FLAG_SYN | FLAG_FIN),
            steer: "drop_bad_tcp_flags",
            pipeline: Drop(DropReason::BadTcpFlags),
            why: "no stack sends it (a scan); conntrack calls it invalid",
        },
        Fixture {
            name: "TCP SYN+RST",
            frame: drop_tcp(15, FLAG_SYN | FLAG_RST),
            steer: "drop_bad_tcp_flags",
            pipeline: Drop(DropReason::BadTcpFlags),
            why: "as SYN+FIN",
        },
        Fixture {
            name: "TCP with no flag (null scan)",
            frame: drop_tcp(16, 0),
            steer: "drop_bad_tcp_flags",
            pipeline: Drop(DropReason::BadTcpFlags),
            why: "as SYN+FIN",
        },
        Fixture {
            name: "TCP FIN+PSH+URG without ACK (Xmas scan)",
            frame: drop_tcp(17, FLAG_FIN | FLAG_PSH | 0x20),
            steer: "drop_bad_tcp_flags",
            pipeline: Drop(DropReason::BadTcpFlags),
            why: "as SYN+FIN",
        },
        Fixture {
            name: "TCP FIN without ACK",
            frame: drop_tcp(18, FLAG_FIN),
            steer: "drop_bad_tcp_flags",
            pipeline: Drop(DropReason::BadTcpFlags),
            why: "as SYN+FIN",
        },
        Fixture {
            name: "TCP data offset 4 words",
            frame: doff_small,
            steer: "drop_bad_tcp_offset",
            pipeline: Drop(DropReason::BadTcpOffset),
            why: "tcp_v4_rcv drops it",
        },
        Fixture {
            name: "TCP data offset past the segment",
            frame: doff_past,
            steer: "drop_bad_tcp_offset",
            pipeline: Drop(DropReason::BadTcpOffset),
            why: "tcp_v4_rcv drops it",
        },
        Fixture {
            name: "UDP length below 8",
            frame: udp_len(7, 22),
            steer: "drop_bad_udp_length",
            pipeline: Drop(DropReason::BadUdpLength),
            why: "udp_rcv drops it",
        },
        Fixture {
            name: "UDP length past the IP payload",
            frame: udp_len(200, 23),
            steer: "drop_bad_udp_length",
            pipeline: Drop(DropReason::BadUdpLength),
            why: "udp_rcv drops it",
        },
    ];
    rows.extend(v6_rows);
    rows.extend(source_routes(w));
    rows
}

/// Source-routed packets to a service (appended last: the fuzz seeds are numbered by
/// place in the table).
fn source_routes(w: &World) -> Vec<Fixture> {
    use PipelineExpect::*;
    let (c, vip, tp) = (w.client, w.vip, w.tcp_port);
    // IHL 7: a loose source route through 10.0.0.9 (type 131, length 7, pointer 4),
    // then the end of the list.
    let lsrr = {
        let sport = DROPPED_PORT_BASE + 80;
        let l4 = tcp_l4(c, sport, vip, tp, FLAG_SYN, b"");
        let mut f = eth_ip_in(w, PROTO_TCP, c, vip, 64, &l4);
        let tcp = f.split_off(34);
        f.extend_from_slice(&[131, 7, 4, 10, 0, 0, 9, 0]);
        f.extend_from_slice(&tcp);
        f[14] = 0x47;
        let total = (f.len() - 14) as u16;
        ip_edited(f, |ip| ip[2..4].copy_from_slice(&total.to_be_bytes()))
    };
    // A routing header (type 0, one address) with `left` segments left.
    let routed6 = |left: u8, sport: u16| {
        let mut rh = vec![PROTO_TCP, 2, 0, left, 0, 0, 0, 0];
        rh.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        let l4 = tcp6_l4(w.client6, sport, w.vip6, tp, FLAG_SYN, b"");
        eth_ip6_in(w, NH_ROUTING, w.client6, w.vip6, &rh, &l4)
    };
    vec![
        Fixture {
            name: "TCP SYN with a loose source route option",
            frame: lsrr,
            steer: "drop_source_route",
            pipeline: Drop(DropReason::SourceRoute),
            why: "ip_rcv_options drops a source-routed packet (accept_source_route is off on a host)",
        },
        Fixture {
            name: "IPv6 TCP SYN with a routing header, segments left 1",
            frame: routed6(1, DROPPED_PORT_BASE + 81),
            steer: "drop_source_route",
            pipeline: Drop(DropReason::SourceRoute),
            why: "not at its final destination: ipv6_rthdr_rcv drops it (source routing off; RFC 5095)",
        },
        Fixture {
            name: "IPv6 TCP SYN with a routing header, no segments left",
            frame: routed6(0, 40024),
            steer: "steered",
            pipeline: Forward,
            why: "at its final destination: the header is skipped, as the kernel does",
        },
    ]
}

/// The table as the Markdown of `docs/input.md`'s outcome section (kept in step by a test).
pub fn markdown(table: &[Fixture]) -> String {
    let mut s =
        String::from("| frame | steering program (XDP) | worker | why |\n|---|---|---|---|\n");
    for f in table {
        let xdp = match f.steer {
            "steered" => "to a worker".to_string(),
            l if l.starts_with("drop_") => format!("dropped: `{l}`"),
            l => format!("to the kernel: `{l}`"),
        };
        let worker = match f.pipeline {
            PipelineExpect::Forward => "forwarded".to_string(),
            PipelineExpect::Drop(r) => format!("dropped: `{}`", r.label()),
            PipelineExpect::NotSteered => "—".to_string(),
        };
        s.push_str(&format!("| {} | {xdp} | {worker} | {} |\n", f.name, f.why));
    }
    s
}

/// The harness the fuzz target and the property tests share: `data` is cut into frames
/// (each led by a length byte) and run through a pipeline serving one VIP port per
/// scheduler, with persistence and OPS in the mix. Panics if any frame is not counted
/// exactly once, forwarded or dropped, or if a connection gauge goes negative.
pub fn exercise(data: &[u8]) {
    use std::sync::Arc;

    use crate::counters::WorkerCounters;
    use crate::pipeline::{Pipeline, PipelineConfig};
    use crate::snapshot::*;
    use crate::verdict::Verdict;

    const KINDS: [SchedulerKind; 14] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Sh,
        SchedulerKind::Dh,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Mh,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Twos,
    ];
    // Real servers 0-3 are IPv4's, 4-7 IPv6's; every scheduler serves both families.
    let dests: Vec<Option<Dest>> = (0..8u8)
        .map(|i| {
            Some(Dest {
                addr: if i < 4 {
                    Ipv4Addr::new(10, 0, 0, 11 + i).into()
                } else {
                    std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 11 + u16::from(i)).into()
                },
                port: 80,
                weight: u32::from(i % 4),
                mac: (i % 4 != 3).then_some([2, 0, 0, 0, 1, i]),
            })
        })
        .collect();
    let mut services = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        for (proto, v6) in [(6u8, false), (17, false), (6, true), (17, true)] {
            let key = ServiceKey {
                addr: if v6 { VIP6.into() } else { VIP.into() },
                port: 1 + i as u16,
                proto,
            };
            let mut s = Service::new(
                format!("{kind:?}{proto}{}", if v6 { "v6" } else { "" }),
                key,
                *kind,
                crate::snapshot::Forwarding::Dr,
                if v6 {
                    vec![4, 5, 6, 7]
                } else {
                    vec![0, 1, 2, 3]
                },
            );
            s.mh_table_size = 251;
            s.sched_flags = SchedFlags {
                port: i % 2 == 0,
                fallback: i % 3 == 0,
            };
            s.persistence = (i % 4 == 0).then_some(Persistence {
                timeout: 30,
                netmask: 0xffff_ff00,
                netmask6: !0 << 64,
            });
            s.ops = proto == 17 && i % 5 == 0;
            services.push(s);
        }
    }
    let snap = Snapshot::new(1, DIRECTOR_MAC, services, dests).expect("valid");
    let counters = Arc::new(WorkerCounters::new(MAX_DESTS));
    let cfg = PipelineConfig {
        flow_capacity: 64,
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(&cfg, Arc::clone(&counters));
    p.prepare(&snap);
    let (mut rest, mut frames, mut tx, mut now) = (data, 0u64, 0u64, 1u32);
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let mut frame = tail[..n].to_vec();
        // Make most frames reach the scheduler: a VIP destination with a valid header,
        // IPv6's or IPv4's.
        if frame.len() >= 58 && len % 4 == 3 {
            frame[12] = 0x86;
            frame[13] = 0xdd;
            frame[14] = 0x60;
            let payload = (frame.len() - 54) as u16;
            frame[18..20].copy_from_slice(&payload.to_be_bytes());
            frame[20] = if len % 2 == 0 { 6 } else { 17 };
            frame[38..54].copy_from_slice(&VIP6.octets());
            frame[56] = 0;
            frame[57] %= 16;
        } else if frame.len() >= 38 && len % 4 != 0 {
            frame[12] = 0x08;
            frame[13] = 0x00;
            frame[14] = 0x45;
            frame[30..34].copy_from_slice(&VIP.octets());
            frame[36] = 0;
            frame[37] %= 16;
            let total = (frame.len() - 14) as u16;
            frame[16..18].copy_from_slice(&total.to_be_bytes());
            frame[20] &= 0x40; // no fragments
            frame[23] = if len % 2 == 0 { 6 } else { 17 };
        }
        rest = &tail[n..];
        frames += 1;
        now += u32::from(len % 3);
        if p.process(&snap, now, &mut frame) == Verdict::Tx {
            tx += 1;
        }
        if len % 7 == 0 {
            p.sweep(now, 4);
        }
    }
    let drops: u64 = crate::verdict::DropReason::ALL
        .iter()
        .map(|r| counters.drops(*r))
        .sum();
    assert_eq!(drops + tx, frames, "every frame counted once");
    for d in counters.dests.iter().take(4) {
        assert!(
            d.active.get() < 1 << 32 && d.inactive.get() < 1 << 32,
            "gauge underflow"
        );
    }
}
