//! VRRPv3 over IPv6 (RFC 5798) against the real keepalived, both ways: adverts from the
//! link-local address to ff02::12 that keepalived accepts and xvs accepts from it, the
//! IPv6 VIP moved on a crash and on a graceful stop, and the unsolicited neighbour
//! advertisement that tells the link where the VIP now is.

use std::time::{Duration, Instant};

use xvs_lab::vrrp::{Peer, VrrpLab, VIP6};

fn peer(master: bool, priority: u8) -> Peer {
    Peer {
        master,
        priority,
        password: "",
        version: 3,
        advert_int: 1.0,
    }
}

#[test]
fn xvs_master_keepalived_backup_over_ipv6() {
    let mut lab = VrrpLab::build().unwrap();
    lab.start_keepalived6(&peer(false, 100)).unwrap();
    // d2 watches for the neighbour advertisement of the VIP.
    let pcap = lab.path("d2.pcap").display().to_string();
    lab.lab
        .spawn_tcpdump("d2", "tcpdump", &pcap, "icmp6 or ip6 proto 112")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.start_xvs6(&peer(true, 150)).unwrap();
    lab.wait_vip6("d1", true, Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !lab.holds_vip6("d2"),
        "keepalived stays backup while xvs advertises:\n{}",
        lab.log("keepalived")
    );
    lab.lab.stop("tcpdump");
    let seen = lab.lab.read_pcap_verbose("d2", &pcap).unwrap();
    assert!(
        seen.contains("> ff02::12: VRRPv3, Advertisement, vrid 61, prio 150")
            && seen.contains("fe80::"),
        "xvs's adverts, from its link-local address: {seen}"
    );
    assert!(seen.contains("hlim 255"), "{seen}");
    assert!(
        seen.contains(&format!("neighbor advertisement, length 32, tgt is {VIP6}")),
        "the unsolicited NA: {seen}"
    );

    // Crash: keepalived takes over within 3 × advert_int + skew (3.6 s), plus slack.
    let t0 = Instant::now();
    lab.kill("xvs");
    lab.wait_vip6("d2", true, Duration::from_secs(8)).unwrap();
    let took = t0.elapsed();
    eprintln!("keepalived took the IPv6 VIP {took:?} after xvs was killed");
    assert!(took < Duration::from_millis(3600 + 1500), "{took:?}");
}

#[test]
fn keepalived_master_xvs_backup_over_ipv6_graceful_handover() {
    let mut lab = VrrpLab::build().unwrap();
    lab.start_keepalived6(&peer(true, 150)).unwrap();
    lab.wait_vip6("d2", true, Duration::from_secs(10)).unwrap();
    lab.start_xvs6(&peer(false, 100)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !lab.holds_vip6("d1"),
        "xvs stays backup:\n{}",
        lab.log("xvs")
    );
    // keepalived's adverts are accepted (checksum over the IPv6 pseudo-header, hop
    // limit 255), none rejected.
    let m = xvs_lab::metrics::scrape(&lab.lab, "d1").unwrap();
    let received = m
        .get("xvs_vrrp_adverts_total{vrrp_instance=\"VI_6\",outcome=\"received\"}")
        .copied()
        .unwrap_or(-1.0);
    assert!(received >= 3.0, "{m:?}");
    let rejected: f64 = m
        .iter()
        .filter(|(k, _)| k.contains("outcome=\"rejected_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(rejected, 0.0, "{m:?}");
    // keepalived's priority-0 goodbye: xvs takes over after its skew time, not 3.6 s.
    let t0 = Instant::now();
    lab.lab.stop("keepalived");
    lab.wait_vip6("d1", true, Duration::from_secs(8)).unwrap();
    let took = t0.elapsed();
    eprintln!("xvs took the IPv6 VIP {took:?} after keepalived stopped gracefully");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    // xvs's own graceful stop gives it back: the VIP leaves d1.
    let status = lab.lab.stop("xvs").unwrap();
    assert!(status.success());
    assert!(!lab.holds_vip6("d1"), "the VIP released on stop");
}
