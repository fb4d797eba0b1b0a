//! The steering program, loaded for real, run over the golden packets with
//! BPF_PROG_TEST_RUN (Katran's fixture style). Needs root and BPF, as every xvs machine has.

use std::ffi::CString;

use libbpf_rs::ProgramInput;
use xvs_bpf::abi::{Svc6Key, SvcKey, XdpCounters};
use xvs_bpf::Steer;
use xvs_dataplane::fixtures::{self, VIP, VIP_TCP_PORT, VIP_UDP_PORT};
use xvs_dataplane::xsk::{BindMode, Xsk, XskConfig};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

fn loaded() -> Steer {
    let steer = Steer::load().expect("load the steering program (root and BPF needed)");
    steer
        .set_services(&[
            (SvcKey::new(VIP, VIP_TCP_PORT, 6), 0),
            (SvcKey::new(VIP, VIP_UDP_PORT, 17), 0),
        ])
        .unwrap();
    // As control does: the VIPs and the director's addresses are martian sources.
    steer.set_local_addrs(&[VIP, fixtures::DIRECTOR]).unwrap();
    steer
        .set_services6(&[
            (Svc6Key::new(fixtures::VIP6, VIP_TCP_PORT, 6), 0),
            (Svc6Key::new(fixtures::VIP6, VIP_UDP_PORT, 17), 0),
        ])
        .unwrap();
    steer
        .set_local_addrs6(&[fixtures::VIP6, fixtures::DIRECTOR6])
        .unwrap();
    steer
}

/// Runs one frame; returns the XDP action and the counters it changed.
fn run(steer: &Steer, frame: &[u8]) -> (u32, XdpCounters) {
    let before = steer.counters().unwrap();
    let input = ProgramInput {
        data_in: Some(frame),
        ..Default::default()
    };
    let out = steer.program().test_run(input).expect("BPF_PROG_TEST_RUN");
    (out.return_value, steer.counters().unwrap().since(&before))
}

/// Moves this test's thread into a new network namespace, so its loopback (where
/// BPF_PROG_TEST_RUN says packets arrive) and the AF_XDP socket bound to it are its own.
fn own_netns() {
    // SAFETY: unshare affects only the calling thread's namespaces.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
}

/// An AF_XDP socket on loopback queue 0 of this thread's own namespace.
fn loopback_socket() -> Xsk {
    own_netns();
    let lo = CString::new("lo").unwrap();
    // SAFETY: a valid NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(lo.as_ptr()) };
    let cfg = XskConfig {
        frame_count: 64,
        rx_size: 64,
        tx_size: 64,
        bind: BindMode::Copy,
        ..XskConfig::default()
    };
    Xsk::open(ifindex, 0, &cfg).expect("AF_XDP socket on lo")
}

#[test]
fn golden_packets() {
    let steer = loaded();
    let xsk = loopback_socket();
    steer.register_xsk(0, xsk.fd()).unwrap();
    for fx in fixtures::all() {
        if fx.frame.len() < 14 {
            // The kernel refuses to test-run a frame shorter than an Ethernet header (and
            // no driver delivers one); the pipeline's tests cover it.
            let input = ProgramInput {
                data_in: Some(&fx.frame),
                ..Default::default()
            };
            assert!(steer.program().test_run(input).is_err(), "{}", fx.name);
            continue;
        }
        let (action, delta) = run(&steer, &fx.frame);
        let want = if fx.steer == "steered" {
            XDP_REDIRECT
        } else if fx.steer.starts_with("drop_") {
            XDP_DROP
        } else {
            XDP_PASS
        };
        assert_eq!(action, want, "{}: action", fx.name);
        assert_eq!(delta.get(fx.steer), 1, "{}: counter {}", fx.name, fx.steer);
        assert_eq!(
            delta.values.iter().sum::<u64>(),
            1,
            "{}: exactly one counter",
            fx.name
        );
    }
}

#[test]
fn services_are_steered_only_on_the_external_interface() {
    let mut steer = loaded();
    let xsk = loopback_socket();
    steer.register_xsk(0, xsk.fd()).unwrap();
    let frame = fixtures::tcp_frame(fixtures::CLIENT, 1, VIP, VIP_TCP_PORT, 2, b"");
    assert_eq!(run(&steer, &frame).0, XDP_REDIRECT);
    // BPF_PROG_TEST_RUN's packets arrive on loopback (ifindex 1): another interface.
    steer.set_external_ifindex(1000).unwrap();
    let (action, delta) = run(&steer, &frame);
    assert_eq!((action, delta.get("pass_not_service")), (XDP_PASS, 1));
    steer.set_external_ifindex(1).unwrap();
    assert_eq!(run(&steer, &frame).0, XDP_REDIRECT);
}

#[test]
fn frames_for_another_mac_are_left_to_the_kernel() {
    let steer = loaded();
    let xsk = loopback_socket();
    steer.register_xsk(0, xsk.fd()).unwrap();
    let frame = fixtures::tcp_frame(fixtures::CLIENT, 1, VIP, VIP_TCP_PORT, 2, b"");
    // BPF_PROG_TEST_RUN's packets arrive on loopback (ifindex 1).
    steer.set_local_mac(1, [2, 0, 0, 0, 0, 0x77]).unwrap();
    let (action, delta) = run(&steer, &frame);
    assert_eq!((action, delta.get("pass_not_ours")), (XDP_PASS, 1));
    steer.set_local_mac(1, fixtures::DIRECTOR_MAC).unwrap();
    assert_eq!(run(&steer, &frame).0, XDP_REDIRECT, "addressed to us");
    let mut multicast = frame.clone();
    multicast[0] = 0x01;
    let (action, delta) = run(&steer, &multicast);
    assert_eq!(
        (action, delta.get("drop_l2_multicast")),
        (XDP_DROP, 1),
        "group addresses pass the MAC filter, and the screen drops them"
    );
}

#[test]
fn drops_vip_traffic_while_no_socket_is_bound() {
    let steer = loaded();
    let frame = fixtures::tcp_frame(fixtures::CLIENT, 1, VIP, VIP_TCP_PORT, 2, b"");
    let (action, delta) = run(&steer, &frame);
    assert_eq!(action, XDP_DROP, "never to a kernel that would reset it");
    assert_eq!(delta.get("drop_no_socket"), 1);
}

#[test]
fn port_zero_service_takes_every_port() {
    let steer = loaded();
    let xsk = loopback_socket();
    steer.register_xsk(0, xsk.fd()).unwrap();
    let frame = fixtures::tcp_frame(fixtures::CLIENT, 1, VIP, 8443, 2, b"");
    assert_eq!(run(&steer, &frame).0, XDP_PASS);
    steer.set_services(&[(SvcKey::new(VIP, 0, 6), 0)]).unwrap();
    assert_eq!(run(&steer, &frame).0, XDP_REDIRECT);
    assert_eq!(
        steer.services(),
        vec![SvcKey::new(VIP, 0, 6)],
        "stale services removed"
    );
}

mod nat {
    use std::net::Ipv4Addr;

    use super::*;
    use xvs_bpf::abi::{NatKey, NatValue, SVC_F_NAT};
    use xvs_dataplane::fixtures::{CLIENT, CLIENT_MAC};
    use xvs_dataplane::wire::ipv4::Ipv4Packet;
    use xvs_dataplane::wire::tcp::TcpPacket;
    use xvs_dataplane::wire::udp::UdpPacket;

    const XDP_DROP: u32 = 1;
    const XDP_TX: u32 = 3;
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
    const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x22];

    fn nat_steer() -> Steer {
        let steer = Steer::load().unwrap();
        steer
            .set_services(&[(SvcKey::new(VIP, 8080, 6), SVC_F_NAT)])
            .unwrap();
        let backend = |proto| {
            (
                NatKey {
                    addr: RIP.into(),
                    port: 80,
                    proto,
                },
                NatValue {
                    vip: VIP.into(),
                    vport: 8080,
                    src_mac: DIRECTOR_MAC,
                    out_ifindex: 0,
                    // The real server's outbound-counter slot: one per service.
                    stats_slot: u32::from(proto),
                },
            )
        };
        steer.set_nat_backends(&[backend(6), backend(17)]).unwrap();
        // The connections the replies below belong to, as a worker would have told them.
        steer
            .add_nat_conn((RIP.into(), 80), (CLIENT.into(), 40000), 6)
            .unwrap();
        steer
            .add_nat_conn((RIP.into(), 80), (CLIENT.into(), 5353), 17)
            .unwrap();
        steer
    }

    /// A real server's packet from its service port that answers no connection the
    /// workers know (its own traffic, or a spoofed one) leaves untranslated, counted;
    /// so does an ICMP error quoting such a packet.
    #[test]
    fn packets_of_unknown_connections_are_not_translated() {
        let steer = nat_steer();
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        for frame in [
            fixtures::tcp_frame(RIP, 80, CLIENT, 40001, 0x12, b"not a reply"),
            fixtures::udp_frame(RIP, 80, Ipv4Addr::new(10, 9, 9, 9), 123, b"ntp"),
            fixtures::udp_frame(RIP, 80, CLIENT, 40000, b"TCP's tuple, over UDP"),
        ] {
            let (action, out, delta) = run_out(&steer, &frame);
            assert_eq!((action, delta.get("pass_nat_unknown")), (XDP_PASS, 1));
            assert_eq!(out, frame, "untouched");
        }
        let mut other = icmp_from_rs(28);
        other[14 + 20 + 8 + 20..14 + 20 + 8 + 22].copy_from_slice(&40001u16.to_be_bytes());
        let (action, out, delta) = run_out(&steer, &other);
        assert_eq!((action, delta.get("pass_nat_unknown")), (XDP_PASS, 1));
        assert_eq!(out, other);
        // An error quoting a known connection but sent elsewhere than to its client: it
        // would carry anything anywhere as the VIP's.
        let mut elsewhere = icmp_from_rs(28);
        elsewhere[14 + 16..14 + 20].copy_from_slice(&[10, 9, 9, 9]);
        let (action, out, delta) = run_out(&steer, &elsewhere);
        assert_eq!((action, delta.get("pass_nat_unknown")), (XDP_PASS, 1));
        assert_eq!(out, elsewhere);
    }

    /// A fragment from a NAT real server cannot be matched to a connection (only the
    /// first carries ports): dropped and counted, never passed on with the real server's
    /// address. Anyone else's fragments are the kernel's; the director's own too.
    #[test]
    fn fragments_from_nat_real_servers_are_dropped() {
        let steer = nat_steer();
        steer.set_nat_addrs(&[RIP.into()]).unwrap();
        let fragment = |src: Ipv4Addr, dst: Ipv4Addr| {
            let mut f = fixtures::tcp_frame(src, 80, dst, 40000, 0x10, b"x");
            f[14 + 6] = 0x20; // more fragments (the header checksum is not checked here)
            f
        };
        let (action, _, delta) = run_out(&steer, &fragment(RIP, CLIENT));
        assert_eq!((action, delta.get("drop_nat_fragment")), (XDP_DROP, 1));
        let (action, _, delta) = run_out(&steer, &fragment(Ipv4Addr::new(10, 0, 1, 12), CLIENT));
        assert_eq!((action, delta.get("pass_fragment")), (XDP_PASS, 1));
        let director = Ipv4Addr::new(10, 0, 0, 2);
        steer.set_local_addrs(&[director]).unwrap();
        let (action, _, delta) = run_out(&steer, &fragment(RIP, director));
        assert_eq!((action, delta.get("pass_fragment")), (XDP_PASS, 1));
        // IPv6 likewise.
        let rip6: std::net::Ipv6Addr = "2001:db8::11".parse().unwrap();
        steer.set_nat_addrs(&[RIP.into(), rip6.into()]).unwrap();
        let mut frag6 = fixtures::tcp6_frame(rip6, 80, fixtures::CLIENT6, 40000, 0x10, b"x");
        // A fragment header (next TCP, offset 0, more fragments) behind the IPv6 header.
        frag6.splice(54..54, [6, 0, 0, 1, 0, 0, 0, 7]);
        frag6[14 + 6] = 44;
        let plen = u16::from_be_bytes([frag6[18], frag6[19]]) + 8;
        frag6[18..20].copy_from_slice(&plen.to_be_bytes());
        let (action, _, delta) = run_out(&steer, &frag6);
        assert_eq!((action, delta.get("drop_nat_fragment")), (XDP_DROP, 1));
    }

    /// The client's MAC is learned from a packet that may open a flow only (a SYN, not
    /// a spoofed ACK), and an entry learned less than a minute ago is not replaced.
    #[test]
    fn a_learned_client_mac_is_not_moved_by_later_packets() {
        let steer = nat_steer();
        let from = |mac: [u8; 6], flags: u8| {
            let mut f = fixtures::tcp_frame(CLIENT, 40000, VIP, 8080, flags, b"");
            f[6..12].copy_from_slice(&mac);
            f
        };
        let attacker = [2, 0, 0, 0, 0, 0x66];
        run(&steer, &from(attacker, 0x10));
        assert_eq!(steer.nat_client(CLIENT), None, "an ACK teaches nothing");
        run(&steer, &from(CLIENT_MAC, 0x02));
        assert_eq!(steer.nat_client(CLIENT), Some(CLIENT_MAC));
        run(&steer, &from(attacker, 0x10));
        run(&steer, &from(attacker, 0x02));
        assert_eq!(
            steer.nat_client(CLIENT),
            Some(CLIENT_MAC),
            "a fresh entry stays"
        );
        // An entry a minute old (here: written without a time) may be learned anew.
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        run(&steer, &from(attacker, 0x02));
        assert_eq!(steer.nat_client(CLIENT), Some(attacker));
    }

    fn run_out(steer: &Steer, frame: &[u8]) -> (u32, Vec<u8>, XdpCounters) {
        let before = steer.counters().unwrap();
        let mut out = vec![0u8; frame.len() + 256];
        let input = ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        };
        let o = steer.program().test_run(input).expect("BPF_PROG_TEST_RUN");
        let len = o.data.map_or(0, |d| d.len());
        let delta = steer.counters().unwrap().since(&before);
        (o.return_value, out[..len].to_vec(), delta)
    }

    #[test]
    fn requests_teach_the_client_mac() {
        let steer = nat_steer();
        assert_eq!(steer.nat_client(CLIENT), None);
        let req = fixtures::tcp_frame(CLIENT, 40000, VIP, 8080, 2, b"");
        run(&steer, &req);
        assert_eq!(steer.nat_client(CLIENT), Some(CLIENT_MAC));
    }

    /// The reply with its TCP checksum left partial, as a veth hands a real server's
    /// frame over (CHECKSUM_PARTIAL: the field holds the pseudo-header's folded sum).
    fn partial_reply() -> Vec<u8> {
        use xvs_dataplane::wire::checksum;
        let mut f = fixtures::tcp_frame(RIP, 80, CLIENT, 40000, 0x18, b"partial from rs1");
        let len = (f.len() - 14 - 20) as u16;
        let pseudo = checksum::pseudo_header(RIP.octets(), CLIENT.octets(), 6, len);
        f[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        f
    }

    /// Relaying on a veth (`XVS_CFG_PARTIAL_CSUM`): a partial checksum is moved with the
    /// address as a sum, so that the relaying worker's completion
    /// (`rewrite::partial`) gives the reply's right checksum; a whole one is updated as
    /// ever. The frame goes to the worker's socket (none bound here: dropped, counted
    /// as the translation it is).
    #[test]
    fn relayed_replies_keep_a_partial_checksum_completable() {
        let mut steer = nat_steer();
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        steer.set_nat_relay(true, true).unwrap();
        let (action, mut out, delta) = run_out(&steer, &partial_reply());
        assert_eq!(
            (action, delta.get("nat_reply")),
            (XDP_DROP, 1),
            "to the socket"
        );
        {
            let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
            assert_eq!((ip.src(), ip.dst()), (VIP, CLIENT));
            assert!(ip.verify_checksum());
        }
        assert!(
            xvs_dataplane::rewrite::partial::complete(&mut out),
            "still partial, for the new addresses"
        );
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (8080, 40000));
        assert!(tcp.verify_checksum(VIP, CLIENT), "completed right");

        // A whole checksum on the same path: updated, valid as it leaves.
        let whole = fixtures::tcp_frame(RIP, 80, CLIENT, 40000, 0x18, b"whole from rs1");
        let (_, out, _) = run_out(&steer, &whole);
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert!(TcpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(VIP, CLIENT));

        // Not relaying (XDP_TX, nobody completes): no field is read as partial.
        steer.set_nat_relay(false, false).unwrap();
        let (action, out, _) = run_out(&steer, &partial_reply());
        assert_eq!(action, XDP_TX);
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        let mut moved = out.clone();
        assert!(
            !xvs_dataplane::rewrite::partial::complete(&mut moved),
            "updated as a checksum: {:?}",
            ip.src()
        );
    }

    #[test]
    fn replies_become_the_vip_with_valid_checksums() {
        let steer = nat_steer();
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        let reply = fixtures::tcp_frame(RIP, 80, CLIENT, 40000, 0x12, b"hello from rs1");
        let (action, out, delta) = run_out(&steer, &reply);
        assert_eq!((action, delta.get("nat_reply")), (XDP_TX, 1));
        assert_eq!(&out[..6], &CLIENT_MAC);
        assert_eq!(&out[6..12], &DIRECTOR_MAC);
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (VIP, CLIENT));
        assert!(
            ip.verify_checksum(),
            "IPv4 checksum, recomputed from scratch"
        );
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (8080, 40000));
        assert!(
            tcp.verify_checksum(VIP, CLIENT),
            "TCP checksum, recomputed from scratch"
        );

        let udp = fixtures::udp_frame(RIP, 80, CLIENT, 5353, b"answer");
        let (action, out, _) = run_out(&steer, &udp);
        assert_eq!(action, XDP_TX);
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(u.src_port(), 8080);
        assert!(u.checksum() != 0 && u.verify_checksum(VIP, CLIENT));

        // A UDP reply without a checksum stays without one.
        let mut bare = fixtures::udp_frame(RIP, 80, CLIENT, 5353, b"answer");
        bare[40] = 0;
        bare[41] = 0;
        let (_, out, _) = run_out(&steer, &bare);
        assert_eq!(&out[40..42], &[0, 0]);
    }

    #[test]
    fn frames_sent_out_are_counted_per_real_server() {
        let steer = nat_steer();
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        let reply = fixtures::tcp_frame(RIP, 80, CLIENT, 40000, 0x10, b"some bytes");
        for _ in 0..3 {
            assert_eq!(run_out(&steer, &reply).0, XDP_TX);
        }
        let udp = fixtures::udp_frame(RIP, 80, CLIENT, 5353, b"answer");
        assert_eq!(run_out(&steer, &udp).0, XDP_TX);
        let tcp_out = steer.nat_out(6).unwrap();
        assert_eq!(
            (tcp_out.packets, tcp_out.bytes),
            (3, 3 * reply.len() as u64)
        );
        let udp_out = steer.nat_out(17).unwrap();
        assert_eq!((udp_out.packets, udp_out.bytes), (1, udp.len() as u64));
        // A request is inbound: the real server's outbound counters do not move.
        run(
            &steer,
            &fixtures::tcp_frame(CLIENT, 40000, VIP, 8080, 2, b""),
        );
        assert_eq!(steer.nat_out(6).unwrap(), tcp_out);
        // A slot past the map's end reads as nothing sent, not as an error.
        assert_eq!(
            steer.nat_out(xvs_bpf::abi::MAX_NAT_OUT_SLOTS).unwrap(),
            Default::default()
        );
    }

    /// A real server's "fragmentation needed" to the client, quoting the first `quote`
    /// bytes of the client's (DNATed) packet to RIP:80.
    fn icmp_from_rs(quote: usize) -> Vec<u8> {
        use xvs_dataplane::wire::ethernet::{EthernetRepr, ETHERTYPE_IPV4};
        use xvs_dataplane::wire::icmp;
        use xvs_dataplane::wire::ipv4::{Ipv4Repr, PROTO_ICMP};
        let request = fixtures::tcp_frame(CLIENT, 40000, RIP, 80, 2, b"");
        let q = &request[14..14 + quote];
        let mut f = vec![0u8; 14 + 20 + 8 + quote];
        EthernetRepr {
            src: [2, 0, 0, 0, 1, 11],
            dst: DIRECTOR_MAC,
            ethertype: ETHERTYPE_IPV4,
        }
        .emit(&mut f);
        Ipv4Repr {
            src: RIP,
            dst: CLIENT,
            protocol: PROTO_ICMP,
            payload_len: 8 + quote,
            ttl: 64,
            tos: 0,
            ident: 5,
            dont_frag: false,
        }
        .emit(&mut f[14..]);
        icmp::emit_frag_needed(&mut f[34..], 1400, q);
        f
    }

    #[test]
    fn icmp_errors_quoting_a_nat_flow_are_translated() {
        use xvs_dataplane::wire::icmp::IcmpPacket;
        let steer = nat_steer();
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        for quote in [40, 28] {
            let (action, out, delta) = run_out(&steer, &icmp_from_rs(quote));
            assert_eq!(
                (action, delta.get("nat_icmp")),
                (XDP_TX, 1),
                "quote {quote}"
            );
            assert_eq!(&out[..6], &CLIENT_MAC);
            let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
            assert_eq!((ip.src(), ip.dst()), (VIP, CLIENT));
            assert!(ip.verify_checksum());
            let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
            assert!(
                icmp.verify_checksum(),
                "ICMP checksum, recomputed from scratch (quote {quote})"
            );
            assert_eq!(icmp.next_hop_mtu(), 1400);
            let inner = Ipv4Packet::new_unchecked(icmp.payload());
            assert_eq!(
                (inner.src(), inner.dst()),
                (CLIENT, VIP),
                "the client sees its own packet to the VIP"
            );
            assert!(inner.verify_checksum());
            let ports = &icmp.payload()[20..24];
            assert_eq!(ports, &[0x9c, 0x40, 0x1f, 0x90], "40000 -> 8080");
            if quote == 40 {
                assert!(TcpPacket::new_checked(&icmp.payload()[20..])
                    .unwrap()
                    .verify_checksum(CLIENT, VIP));
            }
        }
        // ICMP quoting something that is no NAT backend: the kernel's business.
        let mut other = icmp_from_rs(28);
        other[14 + 20 + 8 + 23] = 81; // quoted destination port 81
        assert_eq!(run_out(&steer, &other).2.get("pass_other_proto"), 1);
    }

    #[test]
    fn answers_to_the_director_itself_are_no_nat_replies() {
        // A health check from the director (10.0.0.2) to RIP:80 gets its answer untouched.
        let steer = nat_steer();
        let director = Ipv4Addr::new(10, 0, 0, 2);
        steer.set_local_addrs(&[director]).unwrap();
        let answer = fixtures::tcp_frame(RIP, 80, director, 45000, 0x12, b"");
        let (action, out, delta) = run_out(&steer, &answer);
        assert_eq!((action, delta.get("pass_not_service")), (XDP_PASS, 1));
        assert_eq!(out, answer);
    }

    #[test]
    fn replies_from_unknown_servers_are_not_touched() {
        let steer = nat_steer();
        steer.set_nat_client(CLIENT, CLIENT_MAC).unwrap();
        let other = fixtures::tcp_frame(RIP, 81, CLIENT, 40000, 0x12, b"");
        let (action, out, delta) = run_out(&steer, &other);
        assert_eq!((action, delta.get("pass_not_service")), (XDP_PASS, 1));
        assert_eq!(out, other);
    }

    #[test]
    fn a_reply_with_no_way_to_the_client_is_dropped_and_counted() {
        own_netns(); // no routes: the FIB knows no way either
        let steer = nat_steer();
        let reply = fixtures::tcp_frame(RIP, 80, CLIENT, 40000, 0x12, b"");
        let (action, _, delta) = run_out(&steer, &reply);
        assert_eq!((action, delta.get("drop_nat_no_neigh")), (XDP_DROP, 1));
    }

    /// NAT66: the IPv6 real server's reply and an ICMPv6 error quoting the client's
    /// packet to it, translated back to [VIP]:8080, every checksum valid (etherparse).
    #[test]
    fn nat66_replies_and_icmpv6_errors_become_the_vip() {
        use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
        use std::net::Ipv6Addr;
        use xvs_bpf::abi::Svc6Key;
        use xvs_dataplane::fixtures::{CLIENT6, VIP6};
        let rip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
        let mut steer = Steer::load().unwrap();
        steer
            .set_services6(&[(Svc6Key::new(VIP6, 8080, 6), SVC_F_NAT)])
            .unwrap();
        steer
            .set_nat_backends(&[(
                NatKey {
                    addr: rip6.into(),
                    port: 80,
                    proto: 6,
                },
                NatValue {
                    vip: VIP6.into(),
                    vport: 8080,
                    src_mac: DIRECTOR_MAC,
                    out_ifindex: 0,
                    stats_slot: 9,
                },
            )])
            .unwrap();
        steer
            .add_nat_conn((rip6.into(), 80), (CLIENT6.into(), 40000), 6)
            .unwrap();
        // A request teaches the client's MAC (no socket: passed to the kernel, counted).
        run(
            &steer,
            &fixtures::tcp6_frame(CLIENT6, 40000, VIP6, 8080, 2, b""),
        );
        assert_eq!(steer.nat_client(CLIENT6), Some(CLIENT_MAC));

        let reply = fixtures::tcp6_frame(rip6, 80, CLIENT6, 40000, 0x12, b"hello from rs1");
        let (action, out, delta) = run_out(&steer, &reply);
        assert_eq!((action, delta.get("nat_reply")), (XDP_TX, 1));
        assert_eq!(&out[..6], &CLIENT_MAC);
        assert_eq!(&out[6..12], &DIRECTOR_MAC);
        let p = PacketHeaders::from_ethernet_slice(&out).unwrap();
        let (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Tcp(t))) = (&p.net, &p.transport)
        else {
            panic!("not IPv6 + TCP")
        };
        assert_eq!(
            (Ipv6Addr::from(ip.source), Ipv6Addr::from(ip.destination)),
            (VIP6, CLIENT6)
        );
        assert_eq!((t.source_port, t.destination_port), (8080, 40000));
        assert_eq!(
            t.checksum,
            t.calc_checksum_ipv6(ip, p.payload.slice()).unwrap()
        );
        assert_eq!(steer.nat_out(9).unwrap().packets, 1);

        // Relaying on a veth: a partial checksum is moved as a sum; the worker's
        // completion gives the right one (etherparse's).
        steer.set_nat_relay(true, true).unwrap();
        let mut partial = fixtures::tcp6_frame(rip6, 80, CLIENT6, 40000, 0x18, b"partial");
        let len = (partial.len() - 54) as u32;
        let pseudo = xvs_dataplane::wire::checksum::pseudo_header_v6(
            rip6.octets(),
            CLIENT6.octets(),
            6,
            len,
        );
        partial[54 + 16..54 + 18]
            .copy_from_slice(&xvs_dataplane::wire::checksum::fold(pseudo).to_be_bytes());
        let (_, mut out, _) = run_out(&steer, &partial);
        assert!(xvs_dataplane::rewrite::partial::complete(&mut out));
        let p = PacketHeaders::from_ethernet_slice(&out).unwrap();
        let (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Tcp(t))) = (&p.net, &p.transport)
        else {
            panic!("not IPv6 + TCP")
        };
        assert_eq!(Ipv6Addr::from(ip.source), VIP6);
        assert_eq!(
            t.checksum,
            t.calc_checksum_ipv6(ip, p.payload.slice()).unwrap()
        );
        steer.set_nat_relay(false, false).unwrap();

        // A Packet Too Big from the real server, quoting the client's packet to it.
        use xvs_dataplane::wire::ethernet::{EthernetRepr, ETHERTYPE_IPV6};
        use xvs_dataplane::wire::icmpv6;
        use xvs_dataplane::wire::ipv6::{Ipv6Repr, NH_ICMPV6};
        let request = fixtures::tcp6_frame(CLIENT6, 40000, rip6, 80, 0x10, b"data");
        let quote = &request[14..];
        let mut f = vec![0u8; 14 + 40 + 8 + quote.len()];
        EthernetRepr {
            src: [2, 0, 0, 0, 1, 11],
            dst: DIRECTOR_MAC,
            ethertype: ETHERTYPE_IPV6,
        }
        .emit(&mut f);
        Ipv6Repr {
            src: rip6,
            dst: CLIENT6,
            next_header: NH_ICMPV6,
            payload_len: 8 + quote.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut f[14..]);
        icmpv6::emit_packet_too_big(&mut f[54..], 1400, quote, rip6.octets(), CLIENT6.octets());
        let (action, out, delta) = run_out(&steer, &f);
        assert_eq!((action, delta.get("nat_icmp")), (XDP_TX, 1));
        let p = PacketHeaders::from_ethernet_slice(&out).unwrap();
        let (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Icmpv6(h))) =
            (&p.net, &p.transport)
        else {
            panic!("not ICMPv6")
        };
        assert_eq!(Ipv6Addr::from(ip.source), VIP6, "from the VIP");
        let quoted = p.payload.slice();
        assert_eq!(
            h.checksum,
            h.icmp_type
                .calc_checksum(ip.source, ip.destination, quoted)
                .unwrap(),
            "ICMPv6 checksum"
        );
        // The quoted packet is the client's to [VIP]:8080 again, its TCP checksum valid.
        let q = PacketHeaders::from_ip_slice(quoted).unwrap();
        let (Some(NetHeaders::Ipv6(qip, _)), Some(TransportHeader::Tcp(qt))) =
            (&q.net, &q.transport)
        else {
            panic!("quoted packet")
        };
        assert_eq!(Ipv6Addr::from(qip.destination), VIP6);
        assert_eq!(qt.destination_port, 8080);
        assert_eq!(
            qt.checksum,
            qt.calc_checksum_ipv6(qip, q.payload.slice()).unwrap()
        );
        // Answers to the director itself are not replies.
        steer.set_local_addrs6(&[CLIENT6]).unwrap();
        let (_, _, delta) = run_out(&steer, &reply);
        assert_eq!(delta.get("nat_reply"), 0);
    }
}

/// The SYN guard (`bpf/include/syn_guard.h`): while on, a new connection's SYN passes
/// only when it comes again (its retransmission).
mod syn_guard {
    use super::*;
    use xvs_dataplane::syn_guard::GuardMap;

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const SYN_ACK: u8 = 0x12;

    fn syn(sport: u16, seq: u32) -> Vec<u8> {
        let mut f = fixtures::tcp_frame(fixtures::CLIENT, sport, VIP, VIP_TCP_PORT, SYN, b"");
        f[38..42].copy_from_slice(&seq.to_be_bytes());
        f
    }

    fn syn6(sport: u16, seq: u32) -> Vec<u8> {
        let mut f = fixtures::tcp6_frame(
            fixtures::CLIENT6,
            sport,
            fixtures::VIP6,
            VIP_TCP_PORT,
            SYN,
            b"",
        );
        f[58..62].copy_from_slice(&seq.to_be_bytes());
        f
    }

    /// The steering program with a socket on queue 0 (the test run's queue), the guard
    /// on `auto` (each queue's as its worker says).
    fn guarded() -> (Steer, Xsk) {
        let mut steer = loaded();
        steer.set_syn_guard(false, true).unwrap();
        let xsk = loopback_socket();
        steer.register_xsk(0, xsk.fd()).unwrap();
        (steer, xsk)
    }

    /// Queue 0's guard on until `secs` from now (negative: ran out that long ago).
    fn queue_guard(steer: &Steer, secs: i64) {
        let now = xvs_dataplane::sys::monotonic_coarse_ns();
        let until = now.saturating_add_signed(secs * 1_000_000_000);
        let map = GuardMap::new(steer.syn_guard_fd().unwrap(), 0).unwrap();
        assert!(map.set(until));
    }

    #[test]
    fn off_every_syn_reaches_the_worker() {
        let (steer, _xsk) = guarded();
        let (action, d) = run(&steer, &syn(1000, 7));
        assert_eq!(
            (action, d.get("steered"), d.get("drop_syn_guard")),
            (XDP_REDIRECT, 1, 0)
        );
        // A guard that ran out is off.
        queue_guard(&steer, -1);
        assert_eq!(run(&steer, &syn(1001, 7)).0, XDP_REDIRECT);
    }

    #[test]
    fn a_new_syn_is_shed_and_its_retransmission_passes() {
        let (mut steer, _xsk) = guarded();
        steer.set_syn_guard(true, false).unwrap();
        let (action, d) = run(&steer, &syn(2000, 0x1234_5678));
        assert_eq!(
            (action, d.get("drop_syn_guard"), d.get("steered")),
            (XDP_DROP, 1, 0)
        );
        let (action, d) = run(&steer, &syn(2000, 0x1234_5678));
        assert_eq!(
            (action, d.get("steered"), d.get("drop_syn_guard")),
            (XDP_REDIRECT, 1, 0)
        );
        // The same ports with another sequence number is another attempt: shed first.
        assert_eq!(run(&steer, &syn(2000, 0x1234_5679)).0, XDP_DROP);
        // Turned off, a new one passes at once.
        steer.set_syn_guard(false, true).unwrap();
        assert_eq!(run(&steer, &syn(2001, 1)).0, XDP_REDIRECT);
    }

    #[test]
    fn known_flows_and_replies_are_never_shed() {
        let (mut steer, _xsk) = guarded();
        steer.set_syn_guard(true, false).unwrap();
        for flags in [ACK, SYN_ACK, ACK | 0x08, 0x11, 0x04] {
            let f = fixtures::tcp_frame(fixtures::CLIENT, 3000, VIP, VIP_TCP_PORT, flags, b"x");
            let (action, d) = run(&steer, &f);
            assert_eq!(
                (action, d.get("drop_syn_guard")),
                (XDP_REDIRECT, 0),
                "flags {flags:#x}"
            );
        }
        let udp = fixtures::udp_frame(fixtures::CLIENT, 3000, VIP, VIP_UDP_PORT, b"x");
        assert_eq!(run(&steer, &udp).0, XDP_REDIRECT);
    }

    #[test]
    fn off_a_queue_entry_left_on_is_not_read() {
        let (mut steer, _xsk) = guarded();
        queue_guard(&steer, 10);
        assert_eq!(run(&steer, &syn(7000, 1)).0, XDP_DROP);
        steer.set_syn_guard(false, false).unwrap();
        assert_eq!(run(&steer, &syn(7001, 1)).0, XDP_REDIRECT);
    }

    #[test]
    fn an_overloaded_queue_guards_itself_over_ipv4_and_ipv6() {
        let (steer, _xsk) = guarded();
        queue_guard(&steer, 10);
        assert_eq!(run(&steer, &syn(4000, 9)).0, XDP_DROP);
        assert_eq!(run(&steer, &syn(4000, 9)).0, XDP_REDIRECT);
        assert_eq!(run(&steer, &syn6(4000, 9)).0, XDP_DROP);
        let (action, d) = run(&steer, &syn6(4000, 9));
        assert_eq!((action, d.get("steered")), (XDP_REDIRECT, 1));
        queue_guard(&steer, 0);
        assert_eq!(run(&steer, &syn6(4001, 9)).0, XDP_REDIRECT);
    }

    #[test]
    fn the_guard_flag_and_the_nat_relay_flags_keep_each_other() {
        let (mut steer, _xsk) = guarded();
        steer.set_syn_guard(true, false).unwrap();
        steer.set_nat_relay(true, true).unwrap();
        steer.set_nat_relay(false, false).unwrap();
        assert_eq!(run(&steer, &syn(5000, 1)).0, XDP_DROP, "still on");
        steer.set_nat_relay(true, false).unwrap();
        steer.set_syn_guard(false, true).unwrap();
        assert_eq!(run(&steer, &syn(5001, 1)).0, XDP_REDIRECT);
    }

    #[test]
    fn a_queue_guards_only_itself_and_clearing_turns_all_off() {
        let (steer, _xsk) = guarded();
        let other = GuardMap::new(steer.syn_guard_fd().unwrap(), 1).unwrap();
        assert!(other.set(xvs_dataplane::sys::monotonic_coarse_ns() + 10_000_000_000));
        assert_eq!(
            run(&steer, &syn(6000, 1)).0,
            XDP_REDIRECT,
            "queue 0 is not guarded"
        );
        queue_guard(&steer, 10);
        assert_eq!(run(&steer, &syn(6001, 1)).0, XDP_DROP);
        steer.clear_syn_guards().unwrap();
        assert_eq!(run(&steer, &syn(6002, 1)).0, XDP_REDIRECT);
    }
}
