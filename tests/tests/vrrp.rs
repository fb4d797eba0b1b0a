//! VRRP against the real keepalived: the same virtual router, either side master, kills,
//! preemption, a wrong password.

use std::time::{Duration, Instant};

use xvs_tests::vrrp::{Peer, VrrpLab};

fn peer(master: bool, priority: u8) -> Peer {
    Peer {
        master,
        priority,
        password: "1111",
        version: 2,
        advert_int: 1.0,
    }
}

#[test]
fn xvs_master_keepalived_backup_failover_and_preemption() {
    let mut lab = VrrpLab::build().unwrap();
    lab.start_keepalived(&peer(false, 100)).unwrap();
    lab.start_xvs(&peer(true, 150)).unwrap();
    lab.wait_vip("d1", true, Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !lab.holds_vip("d2"),
        "keepalived stays backup while xvs advertises:\n{}",
        lab.log("keepalived")
    );

    // Crash: keepalived must take over within 3 × advert_int + skew (3.6 s), plus slack.
    let t0 = Instant::now();
    lab.kill("xvs");
    lab.wait_vip("d2", true, Duration::from_secs(8)).unwrap();
    let took = t0.elapsed();
    eprintln!("keepalived took over {took:?} after xvs was killed");
    assert!(took < Duration::from_millis(3600 + 1500), "{took:?}");

    // xvs comes back with the higher priority: it removes the VIP its killed run left,
    // then preempts; keepalived gives the VIP back.
    lab.start_xvs(&peer(false, 150)).unwrap();
    let back = lab.wait_vip("d2", false, Duration::from_secs(10)).unwrap();
    eprintln!("xvs preempted back in {back:?}");
    assert!(lab.holds_vip("d1"));
    let log = lab.log("xvs");
    assert!(log.contains("left on eth0 by an earlier run"), "{log}");
    assert!(log.contains("BACKUP -> MASTER"), "{log}");
}

#[test]
fn keepalived_master_xvs_backup_graceful_handover() {
    let mut lab = VrrpLab::build().unwrap();
    lab.start_keepalived(&peer(true, 150)).unwrap();
    lab.wait_vip("d2", true, Duration::from_secs(10)).unwrap();
    lab.start_xvs(&peer(false, 100)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !lab.holds_vip("d1"),
        "xvs stays backup:\n{}",
        lab.log("xvs")
    );
    // A graceful stop sends priority 0: xvs takes over after its skew time, not 3.6 s.
    let t0 = Instant::now();
    lab.lab.stop("keepalived");
    lab.wait_vip("d1", true, Duration::from_secs(8)).unwrap();
    let took = t0.elapsed();
    eprintln!("xvs took over {took:?} after keepalived stopped gracefully");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[test]
fn wrong_password_is_rejected_and_counted_without_flapping() {
    let mut lab = VrrpLab::build().unwrap();
    lab.start_keepalived(&Peer {
        password: "2222",
        ..peer(true, 150)
    })
    .unwrap();
    lab.start_xvs(&peer(false, 100)).unwrap();
    // Neither accepts the other's adverts: each ends up master of its own, once.
    lab.wait_vip("d1", true, Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let status = lab.lab.stop("xvs").unwrap();
    assert!(status.success());
    let log = lab.log("xvs");
    let summary = std::fs::read_to_string(lab.path("xvs.log")).unwrap_or(log);
    let line = summary
        .lines()
        .find(|l| l.starts_with("vrrp VI_1:"))
        .expect("summary line")
        .to_string();
    assert!(
        line.contains("transitions 3"),
        "INIT→BACKUP→MASTER, then INIT on stop: no flapping: {line}"
    );
    assert!(
        line.contains("auth "),
        "rejected adverts counted by reason: {line}"
    );
}
