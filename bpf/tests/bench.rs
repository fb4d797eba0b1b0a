//! The benchmark's programs, loaded for real and run with BPF_PROG_TEST_RUN: the
//! generator writes valid frames for each flow in turn (checked with etherparse, an
//! independent parser), the in-kernel forwarder rewrites exactly what xvs's DR rewrite
//! does to the golden packets, and nothing else. Needs root and BPF.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{NetHeaders, PacketHeaders, TcpHeader, TransportHeader, UdpHeader};
use libbpf_rs::ProgramInput;
use xvs_bpf::bench::{template, template6, Forwarder, Sink, TrafGen, TEMPLATE6_SOURCE};
use xvs_dataplane::fixtures::{self, PipelineExpect, DIRECTOR_MAC, VIP};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const RS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

/// The source port of a generated frame's SYN or datagram, its TCP checksum checked
/// against `tcp_checksum` (what it should be) and its UDP header by `check_udp`.
fn source_port(
    transport: Option<&TransportHeader>,
    tcp_checksum: impl Fn(&TcpHeader) -> u16,
    check_udp: impl Fn(&UdpHeader),
) -> u16 {
    match transport {
        Some(TransportHeader::Tcp(t)) => {
            assert!(t.syn && !t.ack);
            assert_eq!(t.checksum, tcp_checksum(t), "TCP checksum");
            t.source_port
        }
        Some(TransportHeader::Udp(u)) => {
            check_udp(u);
            u.source_port
        }
        other => panic!("unexpected transport {other:?}"),
    }
}

/// (source address, source port) of a generated frame, after checking its checksums.
fn checked(frame: &[u8]) -> (Ipv4Addr, u16) {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads it");
    let Some(NetHeaders::Ipv4(ip, _)) = &p.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 checksum"
    );
    let payload = p.payload.slice();
    let sport = source_port(
        p.transport.as_ref(),
        |t| t.calc_checksum_ipv4(ip, payload).unwrap(),
        |u| assert_eq!(u.checksum, 0, "UDP without checksum (optional in IPv4)"),
    );
    (Ipv4Addr::from(ip.source), sport)
}

/// As `checked`, for an IPv6 frame: UDP carries a checksum there.
fn checked6(frame: &[u8]) -> (Ipv6Addr, u16) {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads it");
    let Some(NetHeaders::Ipv6(ip, _)) = &p.net else {
        panic!("not IPv6")
    };
    let payload = p.payload.slice();
    let sport = source_port(
        p.transport.as_ref(),
        |t| t.calc_checksum_ipv6(ip, payload).unwrap(),
        |u| {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv6(ip, payload).unwrap(),
                "UDP checksum"
            );
            assert_ne!(u.checksum, 0, "mandatory over IPv6");
        },
    );
    (Ipv6Addr::from(ip.source), sport)
}

#[test]
fn the_generator_writes_ipv6_flows_with_valid_checksums() {
    pin_to_one_cpu();
    let vip6 = fixtures::VIP6;
    for syn in [false, true] {
        let gen = TrafGen::load(2, Ipv4Addr::new(10, 128, 0, 7)).expect("load (root)");
        let t = template6([2, 0, 0, 0, 0, 1], DIRECTOR_MAC, vip6, 80, syn);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut out = vec![0u8; t.len()];
            assert_eq!(gen.program_run(&t, &mut out).unwrap(), XDP_TX);
            seen.push(checked6(&out));
        }
        let a = |n: u16| {
            let s = TEMPLATE6_SOURCE.segments();
            Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], 0x0a80, n)
        };
        assert_eq!(seen, [(a(7), 1024), (a(8), 1024), (a(7), 1024)]);
    }
}

#[test]
fn the_generator_cycles_through_its_flows_with_valid_checksums() {
    // Its sequence is per CPU: the test's runs must all happen on one.
    pin_to_one_cpu();
    for syn in [false, true] {
        let gen = TrafGen::load(3, Ipv4Addr::new(10, 128, 0, 0)).expect("load (root)");
        let t = template([2, 0, 0, 0, 0, 1], DIRECTOR_MAC, VIP, 80, syn);
        assert_eq!(t.len(), 60, "64 bytes on the wire");
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut out = vec![0u8; t.len()];
            let o = gen.program_run(&t, &mut out).expect("BPF_PROG_TEST_RUN");
            assert_eq!(o, XDP_TX);
            seen.push(checked(&out));
        }
        let a = |n| Ipv4Addr::new(10, 128, 0, n);
        assert_eq!(
            seen,
            [(a(0), 1024), (a(1), 1024), (a(2), 1024), (a(0), 1024)],
            "3 flows, then the first again"
        );
    }
    // Flows are sources first: past 2^20 of them the source port moves on.
    let gen = TrafGen::load(1 << 21, Ipv4Addr::new(10, 128, 0, 0)).unwrap();
    let t = template([2, 0, 0, 0, 0, 1], DIRECTOR_MAC, VIP, 80, false);
    let mut out = vec![0u8; t.len()];
    for _ in 0..(1 << 20) + 1 {
        gen.program_run(&t, &mut out).unwrap();
    }
    assert_eq!(checked(&out), (Ipv4Addr::new(10, 128, 0, 0), 1025));
}

#[test]
fn the_forwarder_rewrites_the_macs_of_what_xvs_forwards() {
    let fwd = Forwarder::load(VIP, RS_MAC, DIRECTOR_MAC).expect("load (root)");
    let prog = fwd.program().expect("the program");
    let mut forwarded = 0;
    // The kernel refuses to run frames shorter than an Ethernet header.
    // The baseline forwarder is IPv4's (the benchmark's chain is): IPv6 frames are not its.
    for fx in fixtures::all()
        .into_iter()
        .filter(|f| f.frame.len() >= 14 && f.frame[12..14] != [0x86, 0xdd])
    {
        let mut out = vec![0u8; fx.frame.len() + 64];
        let input = ProgramInput {
            data_in: Some(&fx.frame),
            data_out: Some(&mut out),
            ..Default::default()
        };
        let o = prog.test_run(input).expect("BPF_PROG_TEST_RUN");
        match fx.pipeline {
            PipelineExpect::Forward => {
                assert_eq!(o.return_value, XDP_TX, "{}", fx.name);
                let got = &out[..fx.frame.len()];
                assert_eq!(&got[..6], &RS_MAC, "{}: destination", fx.name);
                assert_eq!(&got[6..12], &DIRECTOR_MAC, "{}: source", fx.name);
                assert_eq!(
                    &got[12..],
                    &fx.frame[12..],
                    "{}: the rest unchanged",
                    fx.name
                );
                forwarded += 1;
            }
            _ if fx.steer == "pass_not_ip" || fx.steer == "pass_bad_header" => {
                assert_eq!(o.return_value, XDP_PASS, "{}", fx.name);
            }
            _ => {}
        }
    }
    assert!(
        forwarded >= 2,
        "the table has TCP and UDP frames to forward"
    );
    let other = fixtures::udp_frame(fixtures::CLIENT, 1, Ipv4Addr::new(10, 0, 0, 99), 53, b"x");
    let mut out = vec![0u8; other.len() + 64];
    let o = prog
        .test_run(ProgramInput {
            data_in: Some(&other),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(o.return_value, XDP_PASS, "not to the VIP: the kernel's");
}

#[test]
fn the_sink_starts_at_zero() {
    let sink = Sink::load().expect("load (root)");
    assert_eq!(sink.count().unwrap().packets, 0);
}

fn pin_to_one_cpu() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the CPU's index 0 is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(0, &mut set) };
    // SAFETY: pid 0 is this thread; `set` is a valid set of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}
