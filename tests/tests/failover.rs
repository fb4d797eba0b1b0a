//! Two xvs directors in front of DR real servers, the VIP moved by VRRP between them. A
//! client loop runs while the master crashes (killed, its link down); the gap in service
//! is measured and bounded by the failover time.

use std::time::Duration;

use xvs_lab::dr::{self, DrLab, VIP};

fn config(state: &str, priority: u8, version: u8, advert_int: f64) -> String {
    dr::config(&[1, 1], None)
        + &format!(
            "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: {state}\n    virtual_router_id: 51\n    priority: {priority}\n    version: {version}\n    advert_int: {advert_int}\n    virtual_ipaddresses: [{VIP}]\n"
        )
}

/// Returns the measured gap: from the last answered request before the crash to the
/// first answered one after it.
fn failover_gap(version: u8, advert_int: f64) -> Duration {
    failover_gap_paced(version, advert_int, 0.02, 0.3)
}

/// As `failover_gap`, the client sending a request every `pace` seconds, each bounded by
/// `timeout` (the gap's resolution is about their sum).
fn failover_gap_paced(version: u8, advert_int: f64, pace: f64, timeout: f64) -> Duration {
    let mut lab = DrLab::build_pair(2).expect("build the lab");
    lab.start_web().unwrap();
    let c1 = lab
        .lab
        .write("xvs1.yaml", config("MASTER", 150, version, advert_int))
        .unwrap();
    let c2 = lab
        .lab
        .write("xvs2.yaml", config("BACKUP", 100, version, advert_int))
        .unwrap();
    lab.start_xvs_on("lb", "xvs", &c1).unwrap();
    lab.start_xvs_on("lb2", "xvs2", &c2).unwrap();
    lab.wait_vip("lb", Duration::from_secs(10), "lb never became master");
    lab.start_http_loop_paced(9.0, pace, timeout).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let crash = lab.crash("lb", "xvs").unwrap();
    let results = lab.loop_results(Duration::from_secs(20)).unwrap();
    let (before, after) = DrLab::around(&results, crash).expect("service came back");
    let tail_ok = results.iter().rev().take(20).all(|r| r.1);
    assert!(tail_ok, "service is steady after the failover");
    assert!(lab.holds_vip("lb2").unwrap(), "lb2 holds the VIP");
    Duration::from_secs_f64(after - before)
}

#[test]
fn failover_v2_advert_1s() {
    let gap = failover_gap(2, 1.0);
    eprintln!("VRRPv2, advert_int 1 s: service gap {gap:?}");
    // 3 × 1 s + skew (0.61 s), plus the client's 20 ms pacing and 300 ms timeout.
    assert!(gap < Duration::from_millis(3610 + 1000), "{gap:?}");
}

#[test]
fn failover_v3_advert_100ms() {
    let gap = failover_gap(3, 0.1);
    eprintln!("VRRPv3, advert_int 0.1 s: service gap {gap:?}");
    // 3 × 100 ms + skew (60 ms), plus the client's pacing and timeout.
    assert!(gap < Duration::from_millis(360 + 1000), "{gap:?}");
}

/// The smallest interval VRRPv3 allows, which the VRRP-under-reload test shows free of
/// false failovers: the client loop (a request every 5 ms, 50 ms timeout) measures the
/// interruption a crash causes.
#[test]
fn failover_v3_advert_10ms() {
    let gap = failover_gap_paced(3, 0.01, 0.005, 0.05);
    eprintln!("VRRPv3, advert_int 0.01 s: service gap {gap:?}");
    // 3 × 10 ms + skew (6 ms), the GARP, plus the client's 5 ms pacing and 50 ms timeout.
    assert!(gap < Duration::from_millis(36 + 200), "{gap:?}");
}
