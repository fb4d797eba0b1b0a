//! TUN end to end: real servers prepared by `xvs realserver up --mode tun` (VIP on lo, ARP
//! silenced, rp_filter off, xvs's IPIP decap program on eth0) answer through the tunnel.

use xvs_lab::dr::{self, DrLab, Prep, VIP};

fn tun_lab() -> DrLab {
    let mut lab = DrLab::build_with(2, 1, Prep::XvsTun).expect("build the lab");
    lab.start_web().expect("start nginx");
    let cfg = dr::tun_config(&dr::config(&[1, 1], None));
    let path = lab.write_config(&cfg).unwrap();
    lab.start_xvs(&path).expect("start xvs");
    lab
}

#[test]
fn http_through_the_tunnel_with_the_right_outer_header() {
    xvs_lab::tools::require(&["tcpdump"]).unwrap();
    let mut lab = tun_lab();
    let pcap = lab.lab.dir.join("rs1.pcap").display().to_string();
    lab.lab.capture_first("rs1", &pcap, "ip proto 4").unwrap();
    let answers = lab.http_gets(10, "/").unwrap();
    let tally = DrLab::tally(&answers);
    assert_eq!(tally.get("rs1"), Some(&5), "{tally:?}");
    assert_eq!(tally.get("rs2"), Some(&5), "{tally:?}");
    assert!(lab.lab.caught_first(), "tcpdump saw no IPIP");
    let seen = lab.lab.read_pcap_verbose("rs1", &pcap).unwrap();
    // Outer: director → real server, IPIP, DF copied; inner: the client's own SYN to the VIP.
    assert!(seen.contains("proto IPIP (4)"), "{seen}");
    assert!(
        seen.contains(&format!("{} > {}:", dr::DIRECTOR, dr::rs_addr(0))),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("{}.", dr::CLIENT)) && seen.contains(&format!("> {VIP}.80:")),
        "{seen}"
    );
    assert!(seen.contains("flags [DF]"), "{seen}");
    lab.stop_clean().unwrap();
    // The real server's preparation undoes cleanly.
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    // `down` takes `up`'s line; a device `up` did not record is refused, nothing changed.
    let wrong = lab.lab.sh(
        "rs1",
        &format!("{bin} realserver down --vip {VIP} --mode tun --dev eth9"),
    );
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("not eth9")),
        "{wrong:?}"
    );
    assert!(lab
        .lab
        .sh("rs1", "ip addr show dev lo")
        .unwrap()
        .contains(VIP));
    let down = lab
        .lab
        .sh(
            "rs1",
            &format!("{bin} realserver down --vip {VIP} --mode tun --dev eth0"),
        )
        .unwrap();
    assert!(
        down.contains("detached the tunnel decap program from eth0"),
        "{down}"
    );
    assert!(!lab
        .lab
        .sh("rs1", "ip addr show dev lo")
        .unwrap()
        .contains(VIP));
    assert_eq!(
        lab.lab
            .sh("rs1", "tc filter show dev eth0 ingress")
            .unwrap()
            .trim(),
        ""
    );
}

#[test]
fn upload_adapts_to_the_tunnel_mtu() {
    let mut lab = tun_lab();
    let dir = lab.lab.dir.display().to_string();
    // MTU 1500 on every link: full-size segments do not fit the tunnel until TCP hears
    // the director's ICMP fragmentation-needed.
    let out = lab
        .lab
        .sh("cl", &format!("curl -s -m 60 -o /dev/null -w '%{{http_code}}' -T {dir}/big.bin http://{VIP}/upload/up.bin"))
        .unwrap();
    assert_eq!(out, "201", "upload status");
    let (want, got) = lab.upload_sums("up.bin").unwrap();
    assert_eq!(
        got,
        vec![want],
        "exactly one real server holds the upload, intact"
    );
    let log = lab.stop_clean().unwrap();
    let sent = dr::frag_needed_sent(&log).expect("counter in the report");
    assert!(sent > 0, "the client learned the MTU from xvs:\n{log}");
}
