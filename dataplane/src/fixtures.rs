//! Golden packets: crafted frames with what the steering program and the pipeline must do
//! with each. The same table drives the BPF tests (BPF_PROG_TEST_RUN) and the pipeline's
//! tests, so the two stay in agreement. Also the frame builders tests and benches share.

use std::net::Ipv4Addr;

use crate::verdict::DropReason;
use crate::wire::ethernet::{EthernetRepr, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr, PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_VRRP};
use crate::wire::tcp::{TcpRepr, FLAG_ACK, FLAG_SYN};
use crate::wire::udp::UdpRepr;

pub const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
pub const DIRECTOR_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// Services in the fixtures' world: VIP:80/tcp and VIP:53/udp.
pub const VIP_TCP_PORT: u16 = 80;
pub const VIP_UDP_PORT: u16 = 53;

fn eth_ip(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + l4.len()];
    EthernetRepr {
        src: CLIENT_MAC,
        dst: DIRECTOR_MAC,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut f);
    Ipv4Repr {
        src,
        dst,
        protocol: proto,
        payload_len: l4.len(),
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
    }
    .emit(&mut f[14..]);
    f[34..].copy_from_slice(l4);
    f
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
    eth_ip(PROTO_TCP, src, dst, &l4)
}

/// An Ethernet + IPv4 + UDP frame from the client.
pub fn udp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + payload.len()];
    UdpRepr {
        src_port: sport,
        dst_port: dport,
    }
    .emit(&mut l4, payload, src, dst);
    eth_ip(PROTO_UDP, src, dst, &l4)
}

fn raw(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    EthernetRepr {
        src: CLIENT_MAC,
        dst: DIRECTOR_MAC,
        ethertype,
    }
    .emit(&mut f);
    f.extend_from_slice(body);
    f
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
    /// bound; "steered" means XDP_REDIRECT, anything else XDP_PASS.
    pub steer: &'static str,
    pub pipeline: PipelineExpect,
}

/// The golden table.
pub fn all() -> Vec<Fixture> {
    use PipelineExpect::*;
    let syn = tcp_frame(CLIENT, 40000, VIP, VIP_TCP_PORT, FLAG_SYN, b"");
    let mut fragment = tcp_frame(CLIENT, 40001, VIP, VIP_TCP_PORT, FLAG_ACK, b"data");
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut fragment[14..]);
        ip.set_flags_offset(false);
        ip.into_inner()[6] |= 0x20; // more fragments
        Ipv4Packet::new_unchecked(&mut fragment[14..]).fill_checksum();
    }
    let mut bad_ihl = syn.clone();
    bad_ihl[14] = 0x44;
    let mut ip_options = tcp_frame(CLIENT, 40002, VIP, VIP_TCP_PORT, FLAG_SYN, b"");
    {
        // IHL 6: four bytes of options (NOPs + EOL) between the IP and TCP headers.
        let tcp = ip_options.split_off(34);
        ip_options.extend_from_slice(&[1, 1, 1, 0]);
        ip_options.extend_from_slice(&tcp);
        ip_options[14] = 0x46;
        let total = (ip_options.len() - 14) as u16;
        let mut ip = Ipv4Packet::new_unchecked(&mut ip_options[14..]);
        ip.set_total_len(total);
        ip.fill_checksum();
    }
    let mut short_tcp = syn.clone();
    short_tcp.truncate(14 + 20 + 10);
    let mut vrrp_body = vec![0u8; 20 + 8];
    Ipv4Repr {
        src: DIRECTOR,
        dst: Ipv4Addr::new(224, 0, 0, 18),
        protocol: PROTO_VRRP,
        payload_len: 8,
        ttl: 255,
        tos: 0xc0,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut vrrp_body);
    let mut icmp_body = vec![0u8; 20 + 8];
    Ipv4Repr {
        src: CLIENT,
        dst: VIP,
        protocol: PROTO_ICMP,
        payload_len: 8,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut icmp_body);
    icmp_body[20] = 8; // echo request

    vec![
        Fixture {
            name: "VIP TCP SYN",
            frame: syn.clone(),
            steer: "steered",
            pipeline: Forward,
        },
        Fixture {
            name: "VIP TCP data",
            frame: tcp_frame(
                CLIENT,
                40000,
                VIP,
                VIP_TCP_PORT,
                FLAG_ACK,
                b"GET / HTTP/1.0\r\n\r\n",
            ),
            steer: "steered",
            pipeline: Forward,
        },
        Fixture {
            name: "VIP UDP",
            frame: udp_frame(CLIENT, 5353, VIP, VIP_UDP_PORT, b"query"),
            steer: "steered",
            pipeline: Forward,
        },
        Fixture {
            name: "VIP TCP with IP options",
            frame: ip_options,
            steer: "steered",
            pipeline: Forward,
        },
        Fixture {
            name: "VIP TCP to a port with no service",
            frame: tcp_frame(CLIENT, 40000, VIP, 22, FLAG_SYN, b""),
            steer: "pass_not_service",
            pipeline: Drop(DropReason::NoService),
        },
        Fixture {
            name: "VIP UDP on the TCP service's port",
            frame: udp_frame(CLIENT, 5353, VIP, VIP_TCP_PORT, b"x"),
            steer: "pass_not_service",
            pipeline: Drop(DropReason::NoService),
        },
        Fixture {
            name: "TCP to the director's own address",
            frame: tcp_frame(CLIENT, 40000, DIRECTOR, 22, FLAG_SYN, b""),
            steer: "pass_not_service",
            pipeline: NotSteered,
        },
        Fixture {
            name: "ARP request",
            frame: raw(
                ETHERTYPE_ARP,
                &[
                    0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0,
                    0, 100,
                ],
            ),
            steer: "pass_not_ipv4",
            pipeline: Drop(DropReason::NotIpv4),
        },
        Fixture {
            name: "VRRP advert",
            frame: raw(ETHERTYPE_IPV4, &vrrp_body),
            steer: "pass_other_proto",
            pipeline: NotSteered,
        },
        Fixture {
            name: "ICMP echo to the VIP",
            frame: raw(ETHERTYPE_IPV4, &icmp_body),
            steer: "pass_other_proto",
            pipeline: NotSteered,
        },
        Fixture {
            name: "IPv6",
            frame: raw(ETHERTYPE_IPV6, &[0x60; 40]),
            steer: "pass_not_ipv4",
            pipeline: Drop(DropReason::NotIpv4),
        },
        Fixture {
            name: "VIP TCP fragment",
            frame: fragment,
            steer: "pass_fragment",
            pipeline: Drop(DropReason::Fragment),
        },
        Fixture {
            name: "truncated Ethernet",
            frame: syn[..10].to_vec(),
            steer: "pass_truncated",
            pipeline: Drop(DropReason::Truncated),
        },
        Fixture {
            name: "truncated IPv4",
            frame: syn[..14 + 12].to_vec(),
            steer: "pass_truncated",
            pipeline: Drop(DropReason::Truncated),
        },
        Fixture {
            name: "truncated TCP",
            frame: short_tcp,
            steer: "pass_truncated",
            pipeline: Drop(DropReason::Truncated),
        },
        Fixture {
            name: "IPv4 IHL 4",
            frame: bad_ihl,
            steer: "pass_bad_header",
            pipeline: Drop(DropReason::Malformed),
        },
    ]
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
    let dests: Vec<Option<Dest>> = (0..4u8)
        .map(|i| {
            Some(Dest {
                addr: Ipv4Addr::new(10, 0, 0, 11 + i),
                port: 80,
                weight: u32::from(i),
                mac: (i != 3).then_some([2, 0, 0, 0, 1, i]),
            })
        })
        .collect();
    let mut services = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        for proto in [6u8, 17] {
            let key = ServiceKey {
                addr: VIP,
                port: 1 + i as u16,
                proto,
            };
            let mut s = Service::new(
                format!("{kind:?}{proto}"),
                key,
                *kind,
                crate::snapshot::Forwarding::Dr,
                vec![0, 1, 2, 3],
            );
            s.mh_table_size = 251;
            s.sched_flags = SchedFlags {
                port: i % 2 == 0,
                fallback: i % 3 == 0,
            };
            s.persistence = (i % 4 == 0).then_some(Persistence {
                timeout: 30,
                netmask: 0xffff_ff00,
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
        // Make most frames reach the scheduler: a VIP destination with a valid header.
        if frame.len() >= 38 && len % 4 != 0 {
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
