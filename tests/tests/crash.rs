//! `kill -9` of a director holding its VRRP VIP in the middle of traffic, then a restart:
//! the stale XDP program, the dead socket's registration and the VIP it left are taken
//! over, and traffic flows again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xvs_lab::dr::{self, DrLab, VIP};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn xdp_progs(lab: &DrLab) -> usize {
    lab.lab
        .sh("lb", "ip -d link show dev eth0")
        .unwrap()
        .matches("prog/xdp id")
        .count()
}

#[test]
fn a_killed_director_restarts_into_its_own_leftovers() {
    let mut lab = DrLab::build(2, 1).expect("build the lab");
    lab.start_web().unwrap();
    // The VIP is VRRP's to give: off the interface at first.
    lab.lab
        .sh("lb", &format!("ip addr del {VIP}/32 dev eth0"))
        .unwrap();
    let yaml = dr::config(&[1, 1], None)
        + &format!(
            "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: MASTER\n    virtual_router_id: 51\n    priority: 150\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddresses: [{VIP}]\n"
        );
    let cfg = lab.write_config(&yaml).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let holds = |lab: &DrLab| {
        lab.lab
            .sh("lb", "ip -4 -o addr show dev eth0")
            .unwrap()
            .contains(VIP)
    };
    let t = Instant::now();
    while !holds(&lab) {
        assert!(t.elapsed() < Duration::from_secs(10), "never became master");
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.start_http_loop_paced(8.0, 0.02, 0.3).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let pid = lab.lab.proc("xvs").unwrap().pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    lab.lab.stop("xvs");
    let killed = now();
    // What the kernel keeps of a killed xvs: its XDP program and the VIP.
    assert_eq!(
        xdp_progs(&lab),
        1,
        "the killed director's program stays attached"
    );
    assert!(holds(&lab), "and the VIP stays on the interface");
    std::thread::sleep(Duration::from_secs(1));
    let restarted = now();
    lab.start_xvs(&cfg).unwrap();
    let results = lab.loop_results(Duration::from_secs(30)).unwrap();
    let first_ok = results
        .iter()
        .find(|(t, ok)| *ok && *t > restarted)
        .map(|r| r.0)
        .expect("service came back after the restart");
    let after: Vec<_> = results.iter().filter(|r| r.0 > first_ok).collect();
    eprintln!(
        "killed at +0, restarted at +{:.2} s, serving again at +{:.2} s; {} requests after, {} failed",
        restarted - killed,
        first_ok - killed,
        after.len(),
        after.iter().filter(|r| !r.1).count()
    );
    assert!(after.len() > 50, "the loop ran on");
    assert!(after.iter().all(|r| r.1), "steady after the restart");
    assert!(
        first_ok - restarted < 5.0,
        "serving within 5 s of the restart"
    );
    assert_eq!(
        xdp_progs(&lab),
        1,
        "one program: the new one replaced the old"
    );
    assert!(holds(&lab), "the restarted director holds the VIP");
    let log = lab.stop_clean().unwrap();
    assert!(!holds(&lab), "a clean stop gives the VIP up:\n{log}");
}
