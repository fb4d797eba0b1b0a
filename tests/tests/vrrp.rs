//! VRRP against the real keepalived: the same virtual router, either side master, kills,
//! preemption, a wrong password.

use std::time::{Duration, Instant};

use xvs_lab::vrrp::{Peer, VrrpLab};

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
    // xvs advertises before it takes the VIP and logs: keepalived may step down first.
    lab.wait_vip("d1", true, Duration::from_secs(2)).unwrap();
    let t0 = Instant::now();
    while !lab.log("xvs").contains("BACKUP -> MASTER") && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = lab.log("xvs");
    assert!(log.contains("left on eth0 by an earlier run"), "{log}");
    assert!(log.contains("BACKUP -> MASTER"), "{log}");
}

#[test]
fn a_state_master_below_the_peers_priority_never_claims_the_vip() {
    let mut lab = VrrpLab::build().unwrap();
    lab.start_keepalived(&peer(true, 200)).unwrap();
    lab.wait_vip("d2", true, Duration::from_secs(10)).unwrap();
    // As keepalived 2.x: `state MASTER` at 150 starts as backup, hears 200, stays so.
    // Before, it took the VIP at once and held it until keepalived's next advert.
    lab.start_xvs(&peer(true, 150)).unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        assert!(
            !lab.holds_vip("d1"),
            "xvs claimed the VIP:\n{}",
            lab.log("xvs")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = lab.log("xvs");
    assert!(log.contains("starts as BACKUP"), "{log}");
    assert!(!log.contains("-> MASTER"), "{log}");
    // With the master gone (killed, no goodbye) it takes over after Master_Down_Interval.
    let t0 = Instant::now();
    lab.kill("keepalived");
    lab.wait_vip("d1", true, Duration::from_secs(8)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(3600 + 1500),
        "{:?}",
        t0.elapsed()
    );
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

/// A tracked link going down puts its instance in FAULT, and its sync group follows: the
/// other director (keepalived) takes both virtual routers' addresses.
#[test]
fn track_interface_fault_takes_the_sync_group_down() {
    let mut lab = VrrpLab::build().unwrap();
    // A link of d1's own to track: one end of a veth pair whose other end we can cut.
    lab.lab.sh("d1", "ip link add trk0 type veth peer name trk1 && ip link set trk0 up && ip link set trk1 up").unwrap();
    let ka = "global_defs {\n  router_id d2\n}\n".to_string()
        + &["51 10.0.0.100", "52 10.0.0.101"]
            .iter()
            .map(|v| {
                let (id, vip) = v.split_once(' ').unwrap();
                format!("vrrp_instance VI_{id} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {id}\n  priority 100\n  advert_int 1\n  virtual_ipaddress {{\n    {vip}/32\n  }}\n}}\n")
            })
            .collect::<String>();
    lab.lab.spawn_keepalived("d2", &ka).unwrap();
    let xvs = "interface: eth0\nvrrp_instances:\n  - { name: VI_51, interface: eth0, state: MASTER, virtual_router_id: 51, priority: 150, virtual_ipaddresses: [10.0.0.100], track_interfaces: [trk0] }\n  - { name: VI_52, interface: eth0, state: MASTER, virtual_router_id: 52, priority: 150, virtual_ipaddresses: [10.0.0.101] }\nvrrp_sync_groups:\n  - { name: G1, group: [VI_51, VI_52] }\n";
    let cfg = lab
        .lab
        .write("xvs.yaml", xvs)
        .unwrap()
        .display()
        .to_string();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    lab.lab
        .spawn("d1", "xvs", &[&bin, "run", "-c", &cfg])
        .unwrap();
    let has = |lab: &VrrpLab, host: &str, vip: &str| {
        lab.lab
            .sh(host, "ip -4 -o addr show dev eth0")
            .unwrap()
            .contains(&format!(" {vip}/"))
    };
    let wait = |lab: &VrrpLab, host: &str, vip: &str, want: bool| {
        let t0 = Instant::now();
        while has(lab, host, vip) != want {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{host} {vip} {want}:\n{}",
                lab.lab.sh(host, "ip -4 -o addr").unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(&lab, "d1", "10.0.0.100", true);
    wait(&lab, "d1", "10.0.0.101", true);
    lab.lab.sh("d1", "ip link set trk1 down").unwrap();
    // VI_51 goes FAULT (its tracked link), VI_52 follows it; keepalived takes both.
    wait(&lab, "d2", "10.0.0.100", true);
    wait(&lab, "d2", "10.0.0.101", true);
    assert!(!has(&lab, "d1", "10.0.0.100") && !has(&lab, "d1", "10.0.0.101"));
    let log = lab.log("xvs");
    assert!(
        log.contains("VI_52: sync group G1 follows VI_51 to FAULT"),
        "{log}"
    );
}
