//! TUN over IPv6 end to end: real servers prepared by `xvs realserver up --mode tun` for
//! the IPv4 and the IPv6 VIP at once (one decap program, IPIP and IPv6-in-IPv6) answer
//! an IPv6 virtual server through an IPv6-in-IPv6 tunnel (next header 41, from the
//! director's IPv6 address); an upload of full-size segments gets through once the
//! client has heard the director's Packet Too Big.

use xvs_lab::dr::{self, DrLab, Prep, CLIENT6, DIRECTOR6, VIP6};

fn tun6_lab() -> DrLab {
    let mut lab = DrLab::build_with(2, 1, Prep::XvsTun).expect("build the lab");
    lab.add_ipv6().expect("IPv6 on the lab");
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    for i in 0..2 {
        let out = lab
            .lab
            .sh(
                &dr::rs_name(i),
                &format!("{bin} realserver up --vip {VIP6} --mode tun --dev eth0"),
            )
            .unwrap();
        assert!(out.contains("tunnel decap program"), "{out}");
    }
    lab.start_web().expect("start nginx");
    let cfg = dr::tun_config(&dr::config_dual(&[1, 1], None));
    let path = lab.write_config(&cfg).unwrap();
    lab.start_xvs(&path).expect("start xvs");
    lab
}

#[test]
fn ipv6_through_the_tunnel_and_an_upload_that_needs_packet_too_big() {
    xvs_lab::tools::require(&["tcpdump"]).unwrap();
    let mut lab = tun6_lab();
    let pcap = lab.lab.dir.join("rs1-6.pcap").display().to_string();
    lab.lab.capture_first("rs1", &pcap, "ip6 proto 41").unwrap();
    let answers = lab.http_gets6(10, "/").unwrap();
    let tally = DrLab::tally(&answers);
    assert_eq!(tally.get("rs1"), Some(&5), "{tally:?}");
    assert_eq!(tally.get("rs2"), Some(&5), "{tally:?}");
    // The IPv4 service through its IPIP tunnel, beside it.
    let v4 = DrLab::tally(&lab.http_gets(4, "/").unwrap());
    assert_eq!(
        (v4.get("rs1"), v4.get("rs2")),
        (Some(&2), Some(&2)),
        "{v4:?}"
    );
    assert!(lab.lab.caught_first(), "tcpdump saw no IPv6-in-IPv6");
    let seen = lab.lab.read_pcap_verbose("rs1", &pcap).unwrap();
    // Outer: director → real server, next header 41; inner: the client's SYN to the VIP.
    assert!(
        seen.contains(&format!("{DIRECTOR6} > {}:", dr::rs_addr6(0))),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("{CLIENT6}.")) && seen.contains(&format!("> {VIP6}.80:")),
        "{seen}"
    );

    // MTU 1500 on every link: full-size segments do not fit the tunnel until TCP hears
    // the director's Packet Too Big (MTU 1460).
    let dir = lab.lab.dir.display().to_string();
    let out = lab
        .lab
        .sh(
            "cl",
            &format!("curl -s -g -m 60 -o /dev/null -w '%{{http_code}}' -T {dir}/big.bin 'http://[{VIP6}]/upload/up6.bin'"),
        )
        .unwrap();
    assert_eq!(out, "201", "upload status");
    let (want, got) = lab.upload_sums("up6.bin").unwrap();
    assert_eq!(
        got,
        vec![want],
        "exactly one real server holds the upload, intact"
    );
    let route = lab
        .lab
        .sh("cl", &format!("ip -6 route get {VIP6}"))
        .unwrap();
    assert!(
        route.contains("mtu 1460"),
        "the client learned the tunnel's MTU: {route}"
    );
    let log = lab.stop_clean().unwrap();
    let sent = dr::frag_needed_sent(&log).expect("counter in the report");
    assert!(sent > 0, "Packet Too Big sent:\n{log}");

    // `down` for the IPv6 VIP leaves the IPv4 one's decap in place.
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let down = lab
        .lab
        .sh(
            "rs1",
            &format!("{bin} realserver down --vip {VIP6} --mode tun --dev eth0"),
        )
        .unwrap();
    assert!(down.contains("now serves 1 VIP(s)"), "{down}");
    assert!(!lab
        .lab
        .sh("rs1", "ip -6 addr show dev lo")
        .unwrap()
        .contains(VIP6));
}
