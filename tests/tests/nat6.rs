//! NAT66 end to end, one arm and two: the client and the IPv6 VIP on 2001:db8:1::/64,
//! real servers on 2001:db8::/64 with the director as their gateway; [VIP]:8080 maps to
//! port 80 on the real servers. Replies (and the real servers' answers to the director's
//! own health checks, which are not replies) are told apart and translated back to
//! [VIP]:8080 by the steering program.

use xvs_lab::dr::{self, DrLab, Prep, NAT_CLIENT6, NAT_VIP6};

fn nat6_lab(prep: Prep) -> DrLab {
    let mut lab = DrLab::build_with(2, 1, prep).expect("build the lab");
    lab.add_ipv6_nat().expect("IPv6 on the NAT lab");
    lab.start_web().expect("start nginx");
    let internal = if prep == Prep::Nat2 {
        "internal_interface: eth1\n"
    } else {
        ""
    };
    let cfg = format!(
        "interface: eth0\n{internal}flow_table_size: 65536\nvirtual_servers:\n  - name: web6\n    address: \"{NAT_VIP6}\"\n    port: 8080\n    protocol: tcp\n    scheduler: rr\n    forwarding: nat\n    health_check: {{ type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }}\n    real_servers:\n      - {{ address: \"{}\", port: 80 }}\n      - {{ address: \"{}\", port: 80 }}\n",
        dr::rs_addr6(0),
        dr::rs_addr6(1)
    );
    let path = lab.write_config(&cfg).unwrap();
    lab.start_xvs(&path).expect("start xvs");
    lab
}

/// Two arms: the client on eth0, the real servers behind eth1; requests leave by the
/// internal interface, replies come back there and leave translated by the external one.
#[test]
fn nat66_with_two_arms() {
    let mut lab = nat6_lab(Prep::Nat2);
    let out = lab
        .lab
        .sh(
            "cl",
            &format!("for i in $(seq 10); do curl -s -g -m 5 'http://[{NAT_VIP6}]:8080/' || echo FAIL; done"),
        )
        .unwrap();
    let answers: Vec<String> = out.lines().map(str::to_string).collect();
    let tally = DrLab::tally(&answers);
    assert_eq!(
        (tally.get("rs1"), tally.get("rs2")),
        (Some(&5), Some(&5)),
        "{tally:?}"
    );
    let log = lab.stop_clean().unwrap();
    assert!(log.contains("shared UMEM"), "{log}");
    assert!(log.contains("nat_reply"), "{log}");
    assert!(
        !log.contains(" down: "),
        "health checks through NAT66:\n{log}"
    );
}

#[test]
fn nat66_maps_ports_and_answers_from_the_vip() {
    let mut lab = nat6_lab(Prep::Nat);
    let out = lab
        .lab
        .sh(
            "cl",
            &format!("for i in $(seq 20); do curl -s -g -m 5 'http://[{NAT_VIP6}]:8080/' || echo FAIL; done"),
        )
        .unwrap();
    let answers: Vec<String> = out.lines().map(str::to_string).collect();
    let tally = DrLab::tally(&answers);
    assert_eq!(
        (tally.get("rs1"), tally.get("rs2")),
        (Some(&10), Some(&10)),
        "{tally:?}"
    );
    // The real servers see the client itself on port 80; the client talked to
    // [VIP]:8080 only.
    for i in 0..2 {
        let log = lab.access_log(i);
        assert!(
            !log.is_empty()
                && log
                    .iter()
                    .all(|l| l.starts_with(&format!("{NAT_CLIENT6} / 200"))),
            "{log:?}"
        );
    }
    let peer = lab
        .lab
        .sh(
            "cl",
            &format!("curl -s -g -m 5 -o /dev/null -w '%{{remote_ip}}:%{{remote_port}}' 'http://[{NAT_VIP6}]:8080/'"),
        )
        .unwrap();
    assert_eq!(peer, format!("{NAT_VIP6}:8080"));
    // A 20 MB download through the translation, intact.
    let dir = lab.lab.dir.display().to_string();
    let sums = lab
        .lab
        .sh(
            "cl",
            &format!("curl -s -g -m 60 -o {dir}/got6.bin 'http://[{NAT_VIP6}]:8080/big.bin' && sha256sum {dir}/got6.bin {dir}/big.bin"),
        )
        .unwrap();
    let sums: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(sums.len(), 2);
    assert_eq!(sums[0], sums[1], "intact");
    // Both real servers stayed up: the health checks' answers reached the director.
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let status = lab.lab.sh("lb", &format!("{bin} status --stats")).unwrap();
    eprintln!("{status}");
    assert!(
        status.contains(&format!("[{}]:80", dr::rs_addr6(0))),
        "{status}"
    );
    let log = lab.stop_clean().unwrap();
    dr::assert_nat_report(&log, "NAT66");
}
