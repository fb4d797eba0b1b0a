//! Every kind of frame of the golden table (`dataplane/src/fixtures/table.rs`, `docs/input.md`)
//! sent over the wire to a DR director, beside a real client: each moves exactly the
//! counter the table names, by exactly the count sent; nothing that must be dropped
//! reaches a real server (tcpdump on each); the client's requests all succeed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use xvs_dataplane::fixtures::{self, PipelineExpect, World, DROPPED_PORT_BASE};
use xvs_lab::dr::{self, DrLab, CLIENT, CLIENT6, DIRECTOR, DIRECTOR6, VIP, VIP6};
use xvs_lab::metrics;

const UDP_PORT: u16 = 53;
/// Copies of each frame.
const COPIES: usize = 3;

fn mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, b) in s.trim().split(':').enumerate() {
        m[i] = u8::from_str_radix(b, 16).expect("a MAC");
    }
    m
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Counters that traffic other than the test's own frames moves too: the client's
/// requests, ARP, and what the client's kernel answers to real servers' replies to the
/// forwarded frames (a RST to a SYN+ACK, ICMP port unreachable to a UDP answer). For
/// them the test asks for at least the count sent.
fn shared(label: &str) -> bool {
    matches!(
        label,
        "steered" | "fast_path" | "pass_not_ip" | "pass_other_proto"
    )
}

#[test]
fn every_kind_of_frame_gets_its_documented_outcome() {
    xvs_lab::tools::require(&["tcpdump", "python3"]).unwrap();
    let mut lab = DrLab::build(2, 1).expect("build the lab");
    lab.add_ipv6().expect("IPv6 on the lab");
    // The fixtures' source ports (40000 up, 41000 up for the dropped ones) are not the
    // client's: its own connections must never be mistaken for a fixture that leaked.
    lab.lab
        .sh(
            "cl",
            &format!(
                "sysctl -qw net.ipv4.ip_local_reserved_ports=40000-{}",
                DROPPED_PORT_BASE + 99
            ),
        )
        .unwrap();
    lab.start_web().unwrap();
    lab.start_udp_echo(UDP_PORT).unwrap();
    let cfg = lab
        .write_config(&dr::config_dual(&[1, 1], Some(UDP_PORT)))
        .unwrap();
    lab.start_xvs(&cfg).unwrap();
    let pcap_of = |lab: &DrLab, i: usize| {
        lab.lab
            .dir
            .join(format!("rs{i}.pcap"))
            .display()
            .to_string()
    };
    for i in 0..2 {
        let pcap = pcap_of(&lab, i);
        lab.lab
            .spawn_tcpdump(&dr::rs_name(i), &format!("tcpdump{i}"), &pcap, "tcp or udp")
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let world = World {
        client_mac: mac(&lab.mac("cl").unwrap()),
        director_mac: mac(&lab.mac("lb").unwrap()),
        client: CLIENT.parse().unwrap(),
        director: DIRECTOR.parse().unwrap(),
        vip: VIP.parse().unwrap(),
        client6: CLIENT6.parse().unwrap(),
        director6: DIRECTOR6.parse().unwrap(),
        vip6: VIP6.parse().unwrap(),
        tcp_port: 80,
        udp_port: UDP_PORT,
    };
    let table = fixtures::table(&world);
    // The real client: a new connection every 20 ms while the frames go out.
    lab.start_http_loop_paced(3.0 + 0.4 * table.len() as f64, 0.02, 1.0)
        .unwrap();

    let mut skipped = Vec::new();
    for fx in &table {
        // A packet socket refuses a frame shorter than the link header; the lab's bridge
        // moves a VLAN tag into the skb's metadata, where XDP cannot see it (docs/input.md).
        if fx.frame.len() < 14 || fx.frame[12..14] == [0x81, 0x00] {
            skipped.push(fx.name);
            continue;
        }
        let before = metrics::scrape(&lab.lab, "lb").unwrap();
        lab.send_raw(&vec![hex(&fx.frame); COPIES]).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let after = metrics::scrape(&lab.lab, "lb").unwrap();
        let xdp = metrics::deltas(&before, &after, "xvs_xdp_packets_total{");
        let drops = metrics::deltas(&before, &after, "xvs_drops_total{");
        let key = format!("xvs_xdp_packets_total{{outcome=\"{}\"}}", fx.steer);
        let moved = xdp.get(&key).copied().unwrap_or(0.0) as usize;
        if shared(fx.steer) {
            assert!(moved >= COPIES, "{}: {key} moved {moved}: {xdp:?}", fx.name);
        } else {
            assert_eq!(moved, COPIES, "{}: {key}: {xdp:?}", fx.name);
        }
        let others: BTreeMap<_, _> = xdp
            .iter()
            .filter(|(k, _)| **k != key && !shared(k.split('"').nth(1).unwrap_or("")))
            .collect();
        assert!(
            others.is_empty(),
            "{}: other counters moved: {others:?}",
            fx.name
        );
        match fx.pipeline {
            PipelineExpect::Drop(r) if fx.steer == "steered" => {
                let k = format!("xvs_drops_total{{reason=\"{}\"}}", r.label());
                assert_eq!(
                    drops.get(&k).copied(),
                    Some(COPIES as f64),
                    "{}: {drops:?}",
                    fx.name
                );
                assert_eq!(drops.len(), 1, "{}: {drops:?}", fx.name);
            }
            _ => assert!(drops.is_empty(), "{}: worker drops {drops:?}", fx.name),
        }
    }
    let results = lab.loop_results(Duration::from_secs(60)).unwrap();
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    eprintln!(
        "{} kinds of frame x{COPIES} sent ({} skipped: {skipped:?}); the client's {} requests meanwhile: {failed} failed",
        table.len() - skipped.len(),
        skipped.len(),
        results.len()
    );
    assert!(results.len() > 50, "the client loop ran");
    assert_eq!(failed, 0, "every real request succeeded");

    // What the real servers received: nothing from the dropped frames' ports (or port 0),
    // and the forwarded fixtures did arrive (the capture works).
    let director_mac = lab.mac("lb").unwrap();
    let mut seen_ports = Vec::new();
    for i in 0..2 {
        lab.lab.stop(&format!("tcpdump{i}"));
        let pcap = pcap_of(&lab, i);
        let text = lab
            .lab
            .sh(
                &dr::rs_name(i),
                &format!("tcpdump -e -nn -r {pcap} 2>/dev/null"),
            )
            .unwrap();
        for line in text.lines() {
            // "TIME SRCMAC > DSTMAC, ethertype IPv4 (0x0800), length N: SRC.PORT > DST.PORT: ..."
            // Only what the director sent counts: the switch floods group frames to
            // every port itself.
            if line.split_whitespace().nth(1) != Some(director_mac.as_str()) {
                continue;
            }
            let Some(src) = line
                .split_once(", length ")
                .and_then(|(_, r)| r.split_once(": "))
                .and_then(|(_, r)| r.split_whitespace().next())
            else {
                continue;
            };
            let Some((addr, port)) = src.rsplit_once('.') else {
                continue;
            };
            if let (Ok(a), Ok(p)) = (addr.parse::<IpAddr>(), port.parse::<u16>()) {
                seen_ports.push((a, p, line.to_string()));
            }
        }
    }
    let leaked: Vec<_> = seen_ports
        .iter()
        .filter(|(_, p, _)| *p == 0 || (DROPPED_PORT_BASE..DROPPED_PORT_BASE + 100).contains(p))
        .map(|(_, _, l)| l)
        .collect();
    assert!(
        leaked.is_empty(),
        "dropped frames reached a real server: {leaked:?}"
    );
    // IPv4's and IPv6's forwarded fixtures.
    for port in [40000u16, 40004, 40005, 40006, 40020, 40021, 40022, 40023] {
        assert!(
            seen_ports.iter().any(|(_, p, _)| *p == port),
            "forwarded fixture from port {port} not captured on a real server"
        );
    }
    // `xvs status --drops` tells the operator the same: 5 kinds of bad flags over IPv4
    // and 1 over IPv6, 3 each; 6 martian sources over IPv4 and 4 over IPv6.
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let drops = lab.lab.sh("lb", &format!("{bin} status --drops")).unwrap();
    eprintln!("{drops}");
    let row = |label: &str| {
        drops
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == label))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse::<usize>().ok())
    };
    assert_eq!(row("drop_bad_tcp_flags"), Some(6 * COPIES), "{drops}");
    assert_eq!(row("drop_martian_source"), Some(10 * COPIES), "{drops}");
    assert_eq!(row("no_flow"), Some(2 * COPIES), "{drops}");
    lab.stop_clean().unwrap();
}
