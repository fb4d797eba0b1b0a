//! NAT end to end, one arm: clients on 172.16.0.0/24, real servers on 10.0.0.0/24 with the
//! director as their gateway; VIP:8080 maps to port 80 on the real servers. Replies are
//! translated back to VIP:8080 by the steering program.

use xvs_lab::dr::{self, DrLab, Prep, Switch, NAT_CLIENT, NAT_VIP};

fn config() -> String {
    format!(
        "interface: eth0\nflow_table_size: 65536\nvirtual_servers:\n  - name: web\n    address: {NAT_VIP}\n    port: 8080\n    protocol: tcp\n    scheduler: rr\n    forwarding: nat\n    health_check: {{ type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }}\n    real_servers:\n      - {{ address: 10.0.0.11, port: 80 }}\n      - {{ address: 10.0.0.12, port: 80 }}\n"
    )
}

fn nat_lab() -> DrLab {
    lab_with(Prep::Nat, &config())
}

fn lab_with(prep: Prep, cfg: &str) -> DrLab {
    let mut lab = DrLab::build_with(2, 1, prep).expect("build the lab");
    lab.start_web().expect("start nginx");
    let path = lab.write_config(cfg).unwrap();
    lab.start_xvs(&path).expect("start xvs");
    lab
}

/// Downloads the 20 MB file from the VIP and checks it arrived intact.
fn download_intact(lab: &DrLab) {
    let dir = lab.lab.dir.display().to_string();
    let out = lab
        .lab
        .sh("cl", &format!("curl -s -m 60 -o {dir}/got.bin http://{NAT_VIP}:8080/big.bin && sha256sum {dir}/got.bin {dir}/big.bin"))
        .unwrap();
    let sums: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sums.len(), 2, "{out}");
    assert_eq!(sums[0], sums[1], "20 MB through NAT, intact");
}

/// The sum of the director's /metrics samples whose line starts with `prefix`.
fn metric_sum(lab: &DrLab, prefix: &str) -> u64 {
    let scrape = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    scrape
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The steering program's count of `outcome`.
fn xdp_packets(lab: &DrLab, outcome: &str) -> u64 {
    metric_sum(
        lab,
        &format!("xvs_xdp_packets_total{{outcome=\"{outcome}\"}}"),
    )
}

fn fast_path_packets(lab: &DrLab) -> u64 {
    xdp_packets(lab, "fast_path")
}

/// The client's packets the steering program translated itself (the fast path) must be
/// most of them once a download ran: every ACK after the handshake.
fn requests_took_the_fast_path(lab: &DrLab) {
    let (fast, steered) = (fast_path_packets(lab), xdp_packets(lab, "steered"));
    eprintln!("NAT requests: {fast} translated in XDP, {steered} to the workers");
    assert!(fast > steered, "{fast} in XDP, {steered} to the workers");
}

/// Two arms: clients on eth0, real servers behind eth1 (seed 003's VIP/DIP layout).
/// With `fast_path: auto` the requests stay on the workers (a veth's lost redirects are
/// counted nowhere auto could see); with `xdp` (the switch's internal port runs XDP) the
/// established ones are translated in XDP and redirected to eth1.
#[test]
fn two_arm_requests_leave_by_the_internal_interface() {
    for fast_path in ["auto", "xdp"] {
        let cfg = config().replacen(
            "interface: eth0\n",
            &format!("interface: eth0\ninternal_interface: eth1\nfast_path: {fast_path}\n"),
            1,
        );
        let mut lab = lab_with(Prep::Nat2, &cfg);
        let tally = DrLab::tally(&lab.http_gets(20, ":8080/").unwrap());
        assert_eq!(
            (tally.get("rs1"), tally.get("rs2")),
            (Some(&10), Some(&10)),
            "{fast_path}: {tally:?}"
        );
        download_intact(&lab);
        if fast_path == "xdp" {
            requests_took_the_fast_path(&lab);
        } else {
            assert_eq!(fast_path_packets(&lab), 0, "auto on a veth: the workers'");
        }
        let log = lab.stop_clean().unwrap();
        assert!(log.contains("shared UMEM"), "{log}");
        assert!(log.contains("nat_reply"), "{log}");
    }
}

#[test]
fn port_mapped_requests_and_replies_from_the_vip() {
    let mut lab = nat_lab();
    let answers = lab.http_gets(20, ":8080/").unwrap();
    let tally = DrLab::tally(&answers);
    assert_eq!(tally.get("rs1"), Some(&10), "{tally:?}");
    assert_eq!(tally.get("rs2"), Some(&10), "{tally:?}");
    // The real servers see the client itself (masquerading keeps the source) on port 80.
    for i in 0..2 {
        let log = lab.access_log(i);
        assert!(
            log.iter()
                .all(|l| l.starts_with(&format!("{NAT_CLIENT} / 200"))),
            "{log:?}"
        );
    }
    // The client talked to VIP:8080 only: curl reports the peer it got its answer from.
    let peer = lab.lab.sh("cl", &format!("curl -s -m 5 -o /dev/null -w '%{{remote_ip}}:%{{remote_port}}' http://{NAT_VIP}:8080/")).unwrap();
    assert_eq!(peer, format!("{NAT_VIP}:8080"));
    let log = lab.stop_clean().unwrap();
    dr::assert_nat_report(&log, "NAT");
}

#[test]
fn long_download_intact() {
    let mut lab = nat_lab();
    download_intact(&lab);
    requests_took_the_fast_path(&lab);

    // The replies crossed the director: the real server that served the file counts them
    // as its outbound packets and bytes (whole frames, so a little more than the file).
    // The other sent nothing out: its answers to health checks are for the director.
    let size = std::fs::metadata(lab.lab.dir.join("big.bin"))
        .unwrap()
        .len();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let json = lab
        .lab
        .sh("lb", &format!("{bin} status --stats --json"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).expect("status --json is JSON");
    let totals: Vec<&serde_json::Value> = v["virtual_servers"][0]["real_servers"]
        .as_array()
        .expect("real servers")
        .iter()
        .map(|r| &r["totals"])
        .collect();
    let served = totals
        .iter()
        .find(|t| t["conns"] == 1)
        .unwrap_or_else(|| panic!("one connection, to one real server: {json}"));
    let out_bytes = served["out_bytes"].as_u64().unwrap();
    let out_packets = served["out_packets"].as_u64().unwrap();
    assert!(
        out_bytes > size && out_bytes < size + size / 10,
        "out_bytes {out_bytes} for a {size}-byte file: {json}"
    );
    assert!(out_packets >= size / 1500, "{json}");
    eprintln!("NAT out: {out_packets} packets, {out_bytes} bytes for a {size}-byte file");
    let idle = totals.iter().find(|t| t["conns"] == 0).expect("the other");
    assert_eq!(idle["out_packets"], 0, "{json}");
    let metrics = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let scraped: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("xvs_real_server_out_bytes_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(scraped >= out_bytes, "{scraped} < {out_bytes}");
    lab.stop_clean().unwrap();
}

/// A real server's own traffic from its service port (a connection it opens from port
/// 80) answers no connection the director knows: it must never leave with the VIP as its
/// source (an open source NAT, IPVS translates only its connections' packets). The
/// steering program gives it to the kernel untranslated and counts it.
#[test]
fn a_real_servers_own_traffic_is_not_translated() {
    let mut lab = nat_lab();
    // The client's requests teach the director its MAC: a translated packet would reach it.
    let answers = lab.http_gets(2, ":8080/").unwrap();
    assert!(answers.iter().all(|a| a != "FAIL"), "{answers:?}");
    // rs2's port 80 free for a connection of its own.
    lab.stop_web(1);
    let pcap = lab.lab.dir.join("cl.pcap").display().to_string();
    lab.lab
        .spawn_tcpdump("cl", "capture", &pcap, "tcp dst port 9999")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let script = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('10.0.0.12', 80))\ns.settimeout(1.5)\ntry:\n    s.connect(('{NAT_CLIENT}', 9999))\nexcept OSError:\n    pass\n"
    );
    lab.lab
        .sh("rs2", &format!("python3 -c \"{script}\""))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    lab.lab.stop("capture");
    let seen = lab
        .lab
        .sh("cl", &format!("tcpdump -nn -r {pcap} 2>/dev/null"))
        .unwrap();
    assert!(
        !seen.contains(&format!("{NAT_VIP}.8080 >")),
        "a real server's own packet left as the VIP's:\n{seen}"
    );
    let log = lab.stop_clean().unwrap();
    let unknown = log
        .split("pass_nat_unknown ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(unknown.is_some_and(|n| n >= 1), "{log}");
}

/// With `fast_path: off` (or `auto` fallen back on a veth whose peer runs no XDP), the
/// steering program still translates the replies, and hands them to the workers to send
/// instead of using `XDP_TX`: requests are answered, a 20 MB download arrives intact, and
/// the workers count the replies they sent.
#[test]
fn with_the_fast_path_off_the_workers_send_the_replies() {
    let cfg = config().replacen("interface: eth0\n", "interface: eth0\nfast_path: off\n", 1);
    let mut lab = lab_with(Prep::Nat, &cfg);
    let tally = DrLab::tally(&lab.http_gets(10, ":8080/").unwrap());
    assert_eq!(
        (tally.get("rs1"), tally.get("rs2")),
        (Some(&5), Some(&5)),
        "{tally:?}"
    );
    download_intact(&lab);
    let metrics = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let relayed: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("xvs_nat_replies_relayed_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(relayed > 10_000, "{relayed} replies sent by the workers");
    assert!(
        metrics.contains("xvs_nat_replies_by_workers 1"),
        "{metrics}"
    );
    lab.stop_clean().unwrap();
}

/// One-arm NAT on the lab a new user builds first (no XDP on the bridge port, offloads
/// on) with the default configuration: the replies' checksums arrive partial and XDP_TX
/// is not delivered; the steering program moves the partial sums with the address, the
/// workers send the replies and complete them. Requests and a 20 MB download arrive.
#[test]
fn a_bare_veth_lab_serves_nat_with_the_default_configuration() {
    let mut lab = DrLab::build_switch(2, 1, Prep::Nat, Switch::Bare).expect("build the lab");
    lab.start_web().expect("start nginx");
    let path = lab.write_config(&config()).unwrap();
    lab.start_xvs(&path).expect("start xvs");
    let answers = lab.http_gets(10, ":8080/").unwrap();
    assert!(answers.iter().all(|a| a != "FAIL"), "{answers:?}");
    download_intact(&lab);
    let metrics = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let total = |prefix: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert!(metrics.contains("xvs_fast_path_active 0"), "{metrics}");
    assert!(
        total("xvs_nat_replies_relayed_total{") > 10_000,
        "{metrics}"
    );
    assert!(
        total("xvs_checksums_completed_total{") > 10_000,
        "{metrics}"
    );
    lab.stop_clean().unwrap();
}
