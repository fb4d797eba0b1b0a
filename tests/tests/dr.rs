//! DR load balancing end to end: a client, xvs on a director, nginx and UDP echoes on
//! three real servers, all in namespaces this test makes and removes.

use std::time::Duration;

use xvs_lab::dr::{self, DrLab, CLIENT, DIRECTOR, VIP};

const UDP_PORT: u16 = 53;

fn lab_with_xvs(weights: &[u32], queues: u32) -> DrLab {
    let mut lab = DrLab::build(weights.len(), queues).expect("build the lab");
    lab.start_web().expect("start nginx");
    lab.start_udp_echo(UDP_PORT).expect("start the UDP echoes");
    let cfg = lab
        .write_config(&dr::config(weights, Some(UDP_PORT)))
        .unwrap();
    lab.start_xvs(&cfg).expect("start xvs");
    assert!(lab.director_has_xdp().unwrap(), "xvs attached XDP");
    lab
}

#[test]
fn tcp_wrr_shares_and_client_address_kept() {
    let weights = [3, 2, 1];
    let mut lab = lab_with_xvs(&weights, 2);
    let answers = lab.http_gets(600, "/").unwrap();
    let tally = DrLab::tally(&answers);
    assert_eq!(tally.get("FAIL"), None, "failed requests: {tally:?}");
    // Two workers, one wrr: IPVS's sequence exactly, whichever queue each connection
    // arrived on (the turns are the virtual server's, sched/turns.rs).
    let cycle = ["rs1", "rs1", "rs2", "rs1", "rs2", "rs3"];
    assert_eq!(&answers[..12], &[cycle, cycle].concat()[..], "{answers:?}");
    assert_eq!(
        (tally.get("rs1"), tally.get("rs2"), tally.get("rs3")),
        (Some(&300), Some(&200), Some(&100)),
        "exact shares: {tally:?}"
    );
    let total: u32 = weights.iter().sum();
    for (i, w) in weights.iter().enumerate() {
        let got = *tally.get(&dr::rs_name(i)).unwrap_or(&0) as f64 / 600.0 * 100.0;
        let want = f64::from(*w) / f64::from(total) * 100.0;
        eprintln!(
            "{}: {got:.1}% of requests (weight share {want:.1}%)",
            dr::rs_name(i)
        );
        assert!(
            (got - want).abs() <= 5.0,
            "{}: {got:.1}% vs {want:.1}% ({tally:?})",
            dr::rs_name(i)
        );
        // DR keeps the client's address: the real server sees the client itself.
        let log = lab.access_log(i);
        assert!(!log.is_empty());
        assert!(
            log.iter().all(|l| l.starts_with(&format!("{CLIENT} "))),
            "{:?}",
            &log[..3.min(log.len())]
        );
    }
    let log = lab.stop_clean().unwrap();
    assert!(log.contains("workers: 2"), "{log}");
}

#[test]
fn long_download_stays_on_one_server_intact() {
    let mut lab = lab_with_xvs(&[1, 1, 1], 2);
    let script = format!(
        "curl -s -m 60 -o {dir}/got.bin http://{VIP}/big.bin && sha256sum {dir}/got.bin {dir}/big.bin",
        dir = lab.lab.dir.display()
    );
    let out = lab.lab.sh("cl", &script).unwrap();
    let sums: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sums.len(), 2, "{out}");
    assert_eq!(sums[0], sums[1], "the 20 MB download arrived intact");
    let served: Vec<usize> = (0..3)
        .filter(|&i| lab.access_log(i).iter().any(|l| l.contains("/big.bin 200")))
        .collect();
    assert_eq!(
        served.len(),
        1,
        "served by exactly one real server: {served:?}"
    );
    lab.stop_clean().unwrap();
}

#[test]
fn udp_is_balanced() {
    // Two workers: rr is the virtual server's, not each worker's.
    let mut lab = lab_with_xvs(&[1, 1, 1], 2);
    let answers = lab.udp_queries(UDP_PORT, 60).unwrap();
    let cycle = ["rs1", "rs2", "rs3"];
    assert_eq!(
        &answers[..9],
        &[cycle, cycle, cycle].concat()[..],
        "{answers:?}"
    );
    let tally = DrLab::tally(&answers);
    assert_eq!(tally.get("timeout"), None, "{tally:?}");
    for i in 0..3 {
        assert_eq!(
            tally.get(&dr::rs_name(i)),
            Some(&20),
            "rr over three: {tally:?}"
        );
    }
    lab.stop_clean().unwrap();
}

#[test]
fn director_own_traffic_still_works() {
    let mut lab = lab_with_xvs(&[1, 1, 1], 1);
    lab.lab
        .sh(
            "cl",
            &format!("ping -c 3 -i 0.2 -W 2 {DIRECTOR} >/dev/null"),
        )
        .expect("ping the director");
    let script = lab.lab.dir.join("own").display().to_string();
    std::fs::create_dir_all(&script).unwrap();
    std::fs::write(format!("{script}/index.html"), "director itself\n").unwrap();
    lab.lab
        .spawn(
            "lb",
            "own-http",
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                DIRECTOR,
                "--directory",
                &script,
            ],
        )
        .unwrap();
    lab.wait_port("lb", DIRECTOR, 8080).unwrap();
    let body = lab
        .lab
        .sh("cl", &format!("curl -s -m 5 http://{DIRECTOR}:8080/"))
        .unwrap();
    assert_eq!(body, "director itself\n");
    // And a VIP request still goes to a real server meanwhile.
    assert!(lab.http_gets(1, "/").unwrap()[0].starts_with("rs"));
    lab.stop_clean().unwrap();
}

#[test]
fn bad_config_attaches_nothing() {
    let lab = DrLab::build(1, 1).unwrap();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let cases = [
        (
            "duplicate",
            dr::config(&[1], None)
                + dr::config(&[1], None)
                    .split_once("virtual_servers:\n")
                    .unwrap()
                    .1,
            "already defined",
        ),
        (
            "missing interface",
            dr::config(&[1], None).replacen("interface: eth0\n", "", 1),
            "lacks the key `interface`",
        ),
        (
            "no such interface",
            dr::config(&[1], None).replacen("eth0", "eth9", 1),
            "does not exist",
        ),
        (
            "negative weight",
            dr::config(&[1], None).replacen("weight: 1", "weight: -1", 1),
            "out of range",
        ),
        (
            "unknown scheduler",
            dr::config(&[1], None).replacen("scheduler: wrr", "scheduler: nope", 1),
            "`nope` is not one of",
        ),
    ];
    for (what, yaml, needle) in cases {
        let path = lab
            .lab
            .write("bad.yaml", &yaml)
            .unwrap()
            .display()
            .to_string();
        for verb in ["check", "run"] {
            let out = lab
                .lab
                .sh_output("lb", &format!("{bin} {verb} -c {path}"))
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {verb} accepted it");
            assert!(
                err.contains(&format!("{path}:")) && err.contains(needle),
                "{what}: {verb}: {err}"
            );
            assert!(err.contains("hint:"), "{what}: {err}");
            assert!(!lab.director_has_xdp().unwrap(), "{what}: attached");
        }
        // `--no-host` checks the file alone: only the interface's absence passes.
        let out = lab
            .lab
            .sh_output("lb", &format!("{bin} check --no-host -c {path}"))
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if what == "no such interface" {
            assert!(out.status.success(), "{what}: --no-host refused it: {err}");
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("not checked (--no-host)"),
                "{what}: {out:?}"
            );
        } else {
            assert!(!out.status.success(), "{what}: --no-host accepted it");
            assert!(err.contains(needle), "{what}: --no-host: {err}");
        }
    }
    // The good one still checks fine.
    let good = lab
        .write_config(&dr::config(&[1], None))
        .unwrap()
        .display()
        .to_string();
    let out = lab.lab.sh("lb", &format!("{bin} check -c {good}")).unwrap();
    assert!(out.contains("OK"), "{out}");

    // Valid, but a DR real server off the director's segment: checked, with a warning
    // naming it (and only it).
    let off = lab
        .lab
        .write(
            "off.yaml",
            dr::config(&[1], None) + "      - { address: 192.168.99.5, port: 80 }\n",
        )
        .unwrap()
        .display()
        .to_string();
    let out = lab
        .lab
        .sh_output("lb", &format!("{bin} check -c {off}"))
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: DR real server 192.168.99.5 of \"web\"")
            && !err.contains("10.0.0.11"),
        "{err}"
    );
    // Routes are the host's: `--no-host` does not look.
    let out = lab
        .lab
        .sh_output("lb", &format!("{bin} check --no-host -c {off}"))
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn metrics_are_valid_and_count_every_connection() {
    xvs_lab::tools::require(&["promtool"]).unwrap();
    let mut lab = lab_with_xvs(&[1, 1, 1], 2);
    assert_eq!(lab.http_gets(100, "/").unwrap().len(), 100);
    let scrape = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let path = lab
        .lab
        .write("scrape.txt", &scrape)
        .unwrap()
        .display()
        .to_string();
    let check = lab
        .lab
        .sh_output("lb", &format!("promtool check metrics < {path}"))
        .unwrap();
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // Connections counted exactly, summed over the workers at scrape time.
    let conns: u64 = scrape
        .lines()
        .filter(|l| l.starts_with("xvs_real_server_connections_total{virtual_server=\"web\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(conns, 100, "{scrape}");
    // Every one of them found a real server.
    assert!(
        scrape.contains("xvs_virtual_server_schedule_failures_total{virtual_server=\"web\"} 0\n"),
        "{scrape}"
    );
    // Per worker (two queues): the kernel's socket counters, read by getsockopt at scrape
    // time, and the flow table's capacity.
    for w in ["0", "1"] {
        for family in [
            "xvs_xsk_fill_ring_empty_total",
            "xvs_xsk_rx_ring_full_total",
            "xvs_worker_tx_ring_full_total",
            "xvs_flows_rescheduled_total",
        ] {
            assert!(
                scrape.contains(&format!("{family}{{worker=\"{w}\"}} ")),
                "{family} worker {w}: {scrape}"
            );
        }
        assert!(
            scrape.contains(&format!(
                "xvs_flow_table_capacity{{worker=\"{w}\"}} 65536\n"
            )),
            "{scrape}"
        );
        // A quiet director's SYN guard (auto) is off.
        assert!(
            scrape.contains(&format!("xvs_syn_guard_active{{worker=\"{w}\"}} 0\n")),
            "{scrape}"
        );
    }
    // OpenMetrics when asked: its content type, counter families without `_total`, `# EOF`.
    let om = lab
        .lab
        .sh(
            "lb",
            "curl -s -m 5 -D - -H 'Accept: application/openmetrics-text;version=1.0.0' http://127.0.0.1:9147/metrics",
        )
        .unwrap();
    assert!(
        om.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{om}"
    );
    assert!(
        om.contains("# TYPE xvs_real_server_connections counter"),
        "{om}"
    );
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    assert!(
        scrape.contains("xvs_xdp_packets_total{outcome=\"steered\"}"),
        "{scrape}"
    );
    assert!(
        scrape.contains("xvs_drops_total{reason=\"no_destination\"} 0"),
        "{scrape}"
    );
    let nf = lab
        .lab
        .sh(
            "lb",
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9147/other",
        )
        .unwrap();
    assert_eq!(nf, "404");
    lab.stop_clean().unwrap();
}

#[test]
fn status_and_reload_over_the_control_socket() {
    let mut lab = lab_with_xvs(&[3, 2, 1], 1);
    assert_eq!(lab.http_gets(60, "/").unwrap().len(), 60);
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let status = lab.lab.sh("lb", &format!("{bin} status")).unwrap();
    assert!(status.contains(&format!("TCP  {VIP}:80 wrr")), "{status}");
    assert!(
        status.contains("  -> 10.0.0.11:80") && status.contains("Route   3"),
        "{status}"
    );
    // --stats counts match the connections sent, exactly.
    let stats = lab.lab.sh("lb", &format!("{bin} status --stats")).unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("TCP  {VIP}:80 ")))
        .expect("web line");
    assert_eq!(line.split_whitespace().nth(2), Some("60"), "{stats}");
    // --json: the same counts, per virtual and real server.
    let json = lab.lab.sh("lb", &format!("{bin} status --json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).expect("status --json is JSON");
    let web = v["virtual_servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "web"))
        .unwrap_or_else(|| panic!("no web service: {json}"));
    assert_eq!(web["totals"]["conns"], 60, "{json}");
    let per_rs: u64 = web["real_servers"]
        .as_array()
        .expect("real_servers")
        .iter()
        .map(|r| r["totals"]["conns"].as_u64().expect("conns"))
        .sum();
    assert_eq!(per_rs, 60, "{json}");
    assert_eq!(web["real_servers"][0]["weight"], 3, "{json}");
    // --connections (ipvsadm -Lnc): the 60 flows, closed by the client within seconds, so
    // still in FIN_WAIT/TIME_WAIT (120 s), split 30/20/10 by the wrr weights.
    let conns = lab
        .lab
        .sh("lb", &format!("{bin} status --connections"))
        .unwrap();
    let rows: Vec<Vec<&str>> = conns
        .lines()
        .filter(|l| l.starts_with("TCP "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 60, "{conns}");
    for (i, want) in [30, 20, 10].into_iter().enumerate() {
        let to = format!("{}:80", dr::rs_addr(i));
        let n = rows
            .iter()
            .filter(|r| r[3].starts_with("10.0.0.1:") && r[4] == format!("{VIP}:80") && r[5] == to)
            .count();
        assert_eq!(n, want, "{to}: {conns}");
    }
    let cj: serde_json::Value = serde_json::from_str(
        &lab.lab
            .sh("lb", &format!("{bin} status --connections --json"))
            .unwrap(),
    )
    .expect("--connections --json is JSON");
    assert_eq!(cj["live"], 60, "{cj}");

    // `xvs reload` applies a new file; an invalid one is refused with its line:column.
    lab.write_config(&dr::config(&[1, 1, 1], Some(UDP_PORT)))
        .unwrap();
    let out = lab.lab.sh("lb", &format!("{bin} reload")).unwrap();
    assert!(out.contains("reload 1 done"), "{out}");
    assert!(lab
        .lab
        .sh("lb", &format!("{bin} status"))
        .unwrap()
        .contains("Route   1"));
    lab.write_config(&dr::config(&[1, 1, 1], Some(UDP_PORT)).replacen("weight: 1", "weight: x", 1))
        .unwrap();
    let bad = lab.lab.sh_output("lb", &format!("{bin} reload")).unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("xvs.yaml:"), "{err}");
    assert!(
        lab.lab
            .sh("lb", &format!("{bin} status"))
            .unwrap()
            .contains("Route   1"),
        "running config unchanged"
    );

    // --rate: a sample (every 2 s) precedes this load, so it shows as connections per second.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(lab.http_gets(30, "/").unwrap().len(), 30);
    let rate = lab.lab.sh("lb", &format!("{bin} status --rate")).unwrap();
    let cps: f64 = rate
        .lines()
        .find(|l| l.starts_with(&format!("TCP  {VIP}:80 ")))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no CPS for web: {rate}"));
    assert!(cps >= 1.0, "{rate}");
    let both = lab
        .lab
        .sh_output("lb", &format!("{bin} status --stats --rate"))
        .unwrap();
    assert!(!both.status.success(), "--stats with --rate was accepted");

    // Explain: the real classifier and scheduler on the live snapshot.
    let why = lab
        .lab
        .sh("lb", &format!("{bin} explain 10.0.0.1:40000 {VIP}:80 tcp"))
        .unwrap();
    assert!(
        why.contains("virtual server web") && why.contains("-> 10.0.0.1"),
        "{why}"
    );

    // Root only.
    let nobody = lab
        .lab
        .sh_output(
            "lb",
            &format!("setpriv --reuid=65534 --regid=65534 --clear-groups {bin} status"),
        )
        .unwrap();
    assert!(!nobody.status.success(), "a non-root user was answered");
    lab.stop_clean().unwrap();
}

/// `cpus` pins each worker where it says, and `af_xdp` sizes its socket: traffic flows
/// with small rings, and the worker thread may run on the configured CPU only.
#[test]
fn workers_run_on_the_configured_cpus_with_the_configured_rings() {
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let mut lab = DrLab::build(2, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab
        .write_config(
            &(dr::config(&[1, 1], None)
                + &format!(
                    "cpus: [{cpu}]\naf_xdp: {{ frames: 1024, rx_ring: 256, tx_ring: 256 }}\n"
                )),
        )
        .unwrap();
    lab.start_xvs(&cfg).unwrap();
    assert_eq!(lab.http_gets(40, "/").unwrap().len(), 40);
    let pid = lab.lab.proc("xvs").unwrap().pid();
    let mut pinned = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "xvs-q0" {
            let status = std::fs::read_to_string(dir.join("status")).unwrap();
            pinned = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string());
        }
    }
    assert_eq!(
        pinned.as_deref(),
        Some(cpu.to_string().as_str()),
        "worker 0's CPUs"
    );
    lab.stop_clean().unwrap();
}
