//! Health checks on the DR lab: a real server whose web server stops leaves the pool by
//! itself, and comes back when it is started again; with every one down the sorry server
//! answers.

use std::time::{Duration, Instant};

use xvs_lab::dr::{self, DrLab};

/// web over rs1 and rs2 with a TCP check (delay_loop 1 s, 1 retry after 0.5 s); rs3 is
/// the sorry server.
fn config() -> String {
    dr::config(&[1, 1], None).replace(
        "    real_servers:\n",
        "    health_check: { type: tcp, delay_loop: 1, connect_timeout: 1, retry: 1, delay_before_retry: 0.5 }\n    sorry_server: { address: 10.0.0.13 }\n    real_servers:\n",
    )
}

fn tally(lab: &DrLab, n: usize) -> std::collections::BTreeMap<String, usize> {
    DrLab::tally(&lab.http_gets(n, "/").unwrap())
}

#[test]
fn a_dead_real_server_leaves_and_comes_back() {
    let mut lab = DrLab::build(3, 1).unwrap();
    lab.start_web().unwrap();
    let cfg = lab.write_config(&config()).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let t = tally(&lab, 20);
    assert_eq!(
        (t.get("rs1"), t.get("rs2")),
        (Some(&10), Some(&10)),
        "{t:?}"
    );

    lab.stop_web(1);
    let stopped = Instant::now();
    // Within delay_loop × (retry + 1) plus slack, rs2 is out of the pool.
    let mut gone = None;
    while stopped.elapsed() < Duration::from_secs(6) {
        if log(&lab).contains("10.0.0.12:80 of web down") {
            gone = Some(stopped.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = gone.unwrap_or_else(|| panic!("rs2 never declared down:\n{}", log(&lab)));
    eprintln!("rs2 declared down {gone:?} after its web server stopped");
    assert!(
        log(&lab).contains("connect: Connection refused"),
        "the reason is logged:\n{}",
        log(&lab)
    );
    // From now on no request fails, and rs2 gets none.
    let t = tally(&lab, 200);
    assert_eq!(t.get("rs1"), Some(&200), "{t:?}");

    lab.restart_web(1).unwrap();
    let back = Instant::now();
    while !log(&lab).contains("10.0.0.12:80 of web up") {
        assert!(
            back.elapsed() < Duration::from_secs(6),
            "rs2 never came back:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = tally(&lab, 20);
    assert_eq!(
        (t.get("rs1"), t.get("rs2")),
        (Some(&10), Some(&10)),
        "{t:?}"
    );

    // Everyone down: the sorry server (rs3) takes the connections.
    lab.stop_web(0);
    lab.stop_web(1);
    let all = Instant::now();
    while !(log(&lab).contains("10.0.0.11:80 of web down")
        && log(&lab).matches("10.0.0.12:80 of web down").count() == 2)
    {
        assert!(
            all.elapsed() < Duration::from_secs(8),
            "not both down:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = tally(&lab, 10);
    assert_eq!(t.get("rs3"), Some(&10), "sorry server: {t:?}");

    // The checks in /metrics: rs2 went down, up, down; rs1 down once; a probe histogram
    // for each; promtool accepts it.
    let scrape = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let value = |line_start: &str| -> f64 {
        scrape
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start}: {scrape}"))
    };
    let rs = |i: u8| format!("{{virtual_server=\"web\",real_server=\"10.0.0.1{i}:80\"}}");
    assert_eq!(
        value(&format!("xvs_health_check_transitions_total{}", rs(2))),
        3.0
    );
    assert_eq!(
        value(&format!("xvs_health_check_transitions_total{}", rs(1))),
        1.0
    );
    assert!(value(&format!("xvs_health_check_failures_total{}", rs(2))) >= 2.0);
    let count = value(&format!("xvs_health_check_duration_seconds_count{}", rs(1)));
    let inf = "xvs_health_check_duration_seconds_bucket{virtual_server=\"web\",real_server=\"10.0.0.11:80\",le=\"+Inf\"}";
    assert!(count >= 3.0 && value(inf) == count, "{scrape}");
    xvs_lab::tools::require(&["promtool"]).unwrap();
    let path = lab.lab.write("scrape.txt", &scrape).unwrap();
    let check = lab
        .lab
        .sh_output(
            "lb",
            &format!("promtool check metrics < {}", path.display()),
        )
        .unwrap();
    assert!(
        check.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (status, _) = lab.stop_xvs().unwrap();
    assert!(status.success());
}

/// A dual-stack real server checked over IPv6 (`connect_ip`, `bindto`): its checks reach
/// it from the director's IPv6 address (its access log says so), and its failure takes it
/// out of the pool as an IPv4 check's would.
#[test]
fn a_real_server_checked_over_ipv6_leaves_and_comes_back() {
    let mut lab = DrLab::build(2, 1).unwrap();
    for (host, addr) in [
        ("lb", "2001:db8::2"),
        ("rs1", "2001:db8::11"),
        ("rs2", "2001:db8::12"),
    ] {
        lab.lab
            .sh(host, &format!("ip -6 addr add {addr}/64 dev eth0 nodad"))
            .unwrap();
    }
    lab.start_web().unwrap();
    let yaml = dr::config(&[1, 1], None).replacen(
        "{ address: 10.0.0.11, port: 80, weight: 1 }",
        "{ address: 10.0.0.11, port: 80, weight: 1, health_check: { type: http, connect_ip: \"2001:db8::11\", bindto: \"2001:db8::2\", delay_loop: 1, connect_timeout: 1, retry: 1, delay_before_retry: 0.5 } }",
        1,
    );
    assert!(yaml.contains("connect_ip"), "{yaml}");
    let cfg = lab.write_config(&yaml).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let t0 = Instant::now();
    while !lab
        .access_log(0)
        .iter()
        .any(|l| l.starts_with("2001:db8::2 / 200"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no check over IPv6 reached rs1: {:?}",
            lab.access_log(0)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.stop_web(0);
    let t0 = Instant::now();
    while !log(&lab).contains("10.0.0.11:80 of web down") {
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "rs1 never declared down:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = tally(&lab, 20);
    assert_eq!(t.get("rs2"), Some(&20), "{t:?}");
    lab.restart_web(0).unwrap();
    let t0 = Instant::now();
    while !log(&lab).contains("10.0.0.11:80 of web up") {
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "rs1 never came back:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = tally(&lab, 20);
    assert_eq!(t.get("rs1"), Some(&10), "back in the pool: {t:?}");
    lab.stop_clean().unwrap();
}

/// What xvs has logged so far.
fn log(lab: &DrLab) -> String {
    std::fs::read_to_string(lab.lab.dir.join("xvs.log")).unwrap_or_default()
}

/// Below quorum the director runs `quorum_down` and advertises a lower VRRP priority:
/// the peer director (keepalived here) takes the VIP.
#[test]
fn losing_the_quorum_hands_the_vip_over() {
    use xvs_lab::vrrp::Peer;
    let mut lab = DrLab::build_pair(2).unwrap();
    lab.start_web().unwrap();
    let ka = Peer {
        master: false,
        priority: 100,
        password: "1111",
        version: 2,
        advert_int: 1.0,
    };
    lab.lab
        .spawn_keepalived("lb2", &ka.keepalived_conf())
        .unwrap();
    let flag = lab.lab.dir.join("quorum-lost").display().to_string();
    // The script writes into the lab's directory, which is root's: it runs as root.
    let cfg = "script_user: root\n".to_string() + &dr::config(&[1, 1], None).replace(
        "    real_servers:\n",
        &format!("    health_check: {{ type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }}\n    quorum: 2\n    quorum_down: \"touch {flag}\"\n    quorum_vrrp: {{ instance: VI_1, priority: 50 }}\n    real_servers:\n"),
    ) + &format!(
        "vrrp_instances:\n  - {{ name: VI_1, interface: eth0, state: MASTER, virtual_router_id: 51, priority: 150, advert_int: 1, authentication: {{ auth_type: PASS, auth_pass: \"1111\" }}, virtual_ipaddresses: [{}] }}\n",
        dr::VIP
    );
    let path = lab.write_config(&cfg).unwrap();
    lab.start_xvs_on("lb", "xvs", &path).unwrap();
    let holds = |lab: &DrLab, host: &str| {
        lab.lab
            .sh(host, "ip -4 -o addr show dev eth0")
            .unwrap()
            .contains(&format!(" {}/", dr::VIP))
    };
    let t0 = Instant::now();
    while !holds(&lab, "lb") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "xvs never became master:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.stop_web(1);
    let t1 = Instant::now();
    while !holds(&lab, "lb2") || holds(&lab, "lb") {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "the VIP did not move:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "VIP moved to the healthy director {:?} after a real server died",
        t1.elapsed()
    );
    assert!(std::path::Path::new(&flag).exists(), "quorum_down ran");
    assert!(log(&lab).contains("lost its quorum"), "{}", log(&lab));
}
