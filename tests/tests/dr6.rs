//! IPv6 DR end to end, on a dual-stack director: the same three nginx real servers
//! behind an IPv4 and an IPv6 virtual server at once, wrr over both; the real servers
//! see the client's own IPv6 address; an established IPv6 flow takes the XDP fast path;
//! `xvs status`, `--connections` and `/metrics` name the IPv6 service and its real
//! servers as `[addr]:port`.

use xvs_lab::dr::{self, DrLab, CLIENT, CLIENT6, VIP, VIP6};
use xvs_lab::metrics;

#[test]
fn a_dual_stack_director_splits_ipv4_and_ipv6_by_weight() {
    let weights = [3, 2, 1];
    let mut lab = DrLab::build(weights.len(), 2).expect("build the lab");
    lab.add_ipv6().expect("IPv6 on the lab");
    lab.start_web().expect("start nginx");
    let cfg = lab.write_config(&dr::config_dual(&weights, None)).unwrap();
    lab.start_xvs(&cfg).expect("start xvs");
    // The IPv6 real servers' MACs come from the neighbour table (NDP), as IPv4's from ARP.
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    for _ in 0..50 {
        if !lab
            .lab
            .sh("lb", &format!("{bin} status"))
            .unwrap()
            .contains("no MAC")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The first requests, right after start, all answered: they once lost one in about
    // eight runs, while the real servers' link-local addresses were still tentative
    // (`DrLab::add_ipv6` now waits that out; see `ipv6_addrs`).
    let warm = lab.http_gets6(10, "/").unwrap();
    assert!(
        !warm.iter().any(|a| a == "FAIL"),
        "IPv6 right after start: {warm:?}"
    );
    // Each family in turn, then both at once: wrr splits each exactly (one client, a
    // new connection per request, each worker's turn its own: within one request per
    // worker and real server).
    let n = 120;
    let v6 = lab.http_gets6(n, "/").unwrap();
    let v4 = lab.http_gets(n, "/").unwrap();
    for (family, answers) in [("IPv6", &v6), ("IPv4", &v4)] {
        let tally = DrLab::tally(answers);
        assert_eq!(
            tally.get("FAIL"),
            None,
            "{family}: failed requests: {tally:?}"
        );
        let total: u32 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let got = *tally.get(&dr::rs_name(i)).unwrap_or(&0);
            let want = n * *w as usize / total as usize;
            eprintln!(
                "{family} {}: {got} of {n} (weight share {want})",
                dr::rs_name(i)
            );
            assert!(
                got.abs_diff(want) <= 2,
                "{family} {}: {got} vs {want} ({tally:?})",
                dr::rs_name(i)
            );
        }
    }
    // DR keeps the client's address, IPv6's too.
    for i in 0..weights.len() {
        let log = lab.access_log(i);
        let by6 = log
            .iter()
            .filter(|l| l.starts_with(&format!("{CLIENT6} ")))
            .count();
        let by4 = log
            .iter()
            .filter(|l| l.starts_with(&format!("{CLIENT} ")))
            .count();
        assert_eq!(
            by4 + by6,
            log.len(),
            "only the client's two addresses: {log:?}"
        );
        assert!(
            by6 > 0 && by4 > 0,
            "{}: {by4} IPv4, {by6} IPv6",
            dr::rs_name(i)
        );
    }

    // Status names the IPv6 service and its real servers as [addr]:port.
    let status = lab.lab.sh("lb", &format!("{bin} status")).unwrap();
    eprintln!("{status}");
    assert!(status.contains(&format!("[{VIP6}]:80")), "{status}");
    assert!(
        status.contains(&format!("[{}]:80", dr::rs_addr6(0))),
        "{status}"
    );
    assert!(status.contains(&format!("{VIP}:80")), "{status}");
    let json = lab.lab.sh("lb", &format!("{bin} status --json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).expect("status --json");
    assert!(json.contains(VIP6), "{v}");

    // A live connection shows in --connections with both ends in brackets; its ACKs,
    // established, take the XDP fast path (only IPv6 traffic flows meanwhile).
    let fast = |m: &std::collections::BTreeMap<String, f64>| {
        m.get("xvs_xdp_packets_total{outcome=\"fast_path\"}")
            .copied()
            .unwrap_or(0.0)
    };
    let before = fast(&metrics::scrape(&lab.lab, "lb").unwrap());
    lab.lab
        .spawn(
            "cl",
            "slow6",
            &[
                "curl",
                "-s",
                "-g",
                "-m",
                "20",
                "-o",
                "/dev/null",
                &format!("http://[{VIP6}]/big.bin"),
                "--limit-rate",
                "200k",
            ],
        )
        .unwrap();
    let mut conns = String::new();
    for _ in 0..50 {
        conns = lab
            .lab
            .sh("lb", &format!("{bin} status --connections"))
            .unwrap();
        if conns.contains("ESTABLISHED") && conns.contains(&format!("[{CLIENT6}]:")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(conns.contains(&format!("[{VIP6}]:80")), "{conns}");
    assert!(conns.contains(&format!("[{CLIENT6}]:")), "{conns}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = fast(&metrics::scrape(&lab.lab, "lb").unwrap());
    lab.lab.stop("slow6");
    eprintln!("IPv6 download: {} packets on the fast path", after - before);
    assert!(
        after - before > 10.0,
        "the IPv6 flow's ACKs took the fast path"
    );

    // /metrics: the IPv6 real servers counted under their bracketed names.
    let m = metrics::scrape(&lab.lab, "lb").unwrap();
    let packets6: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("xvs_real_server_in_packets_total{")
                && k.contains(&format!("real_server=\"[{}]:80\"", dr::rs_addr6(0)))
        })
        .map(|(_, v)| *v)
        .sum();
    assert!(packets6 > 0.0, "no IPv6 real server packets in /metrics");
    // The IPv4 service's counts are its own.
    let log = lab.stop_clean().unwrap();
    assert!(log.contains("workers: 2"), "{log}");
}
