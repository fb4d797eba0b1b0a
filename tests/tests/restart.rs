//! A restart of xvs (`kill -9`, then `xvs run` again at once) on a director whose kernel
//! already knows the real servers' MAC addresses: the new process takes them from the
//! neighbour table and schedules every real server from its first snapshot, so new
//! connections are served again as soon as it runs. How soon is measured and printed
//! (`--nocapture`); the test asserts the mechanism, not the time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xvs_lab::dr::{self, DrLab};

/// `kill -9` of the lab's xvs: nothing of it runs any more, and nothing was cleaned up.
fn kill_9(lab: &mut DrLab) {
    let pid = lab.lab.proc("xvs").unwrap().pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    lab.lab.stop("xvs");
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_restarted_director_schedules_known_neighbours_at_once() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[1, 1, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    // Every real server answered once: the director's kernel knows their MACs.
    let answers = lab.http_gets(6, "/").unwrap();
    assert_eq!(DrLab::tally(&answers).len(), 3, "{answers:?}");

    // New connections every 5 ms, each given up after 50 ms (the lab's round trip is well
    // under a millisecond): the first answered after the restart is within ~55 ms of it.
    lab.start_http_loop_paced(5.0, 0.005, 0.05).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    kill_9(&mut lab);
    let restarted = now();
    lab.start_xvs(&cfg).unwrap();
    let log = lab.lab.proc("xvs").unwrap().output();

    let results = lab.loop_results(Duration::from_secs(30)).unwrap();
    let first_ok = results
        .iter()
        .find(|(t, ok)| *ok && *t > restarted)
        .map(|r| r.0)
        .expect("served again after the restart");
    let after: Vec<_> = results.iter().filter(|r| r.0 > first_ok).collect();
    eprintln!(
        "restarted at {restarted:.3} (+0), a new connection served at +{:.3} s; {} requests after, {} failed\n{log}",
        first_ok - restarted,
        after.len(),
        after.iter().filter(|r| !r.1).count()
    );
    assert!(
        !log.contains("not scheduled, resolving"),
        "every real server's MAC came from the neighbour table:\n{log}"
    );
    assert!(after.len() > 50, "the loop ran on");
    assert!(after.iter().all(|r| r.1), "steady after the restart");
    lab.stop_clean().unwrap();
}

/// Bytes of each paced download: 3 MB at nginx's 500 kB/s, six seconds.
const DOWNLOAD: usize = 3 << 20;

/// `n` paced downloads of `url` from the client, `kill -9` of xvs two seconds in, the
/// same `xvs run` again at once; waits for each. Returns how many arrived intact, the
/// new process's log and its metrics summed by name.
fn downloads_across_kill_9(
    lab: &mut DrLab,
    cfg: &std::path::Path,
    url: &str,
    n: usize,
    before_kill: impl FnOnce(&mut DrLab),
) -> (usize, String, std::collections::BTreeMap<String, f64>) {
    let dir = lab.lab.dir.display().to_string();
    let want = lab.put_slow("part.bin", DOWNLOAD).unwrap();
    for i in 0..n {
        let out = format!("{dir}/dl{i}.bin");
        lab.lab
            .spawn(
                "cl",
                &format!("dl{i}"),
                &["curl", "-sS", "-g", "-m", "40", "-o", &out, url],
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(2000));
    before_kill(lab);
    kill_9(lab);
    lab.start_xvs(cfg).unwrap();
    let mut intact = 0;
    for i in 0..n {
        let p = lab.lab.proc(&format!("dl{i}")).unwrap();
        let status = p.wait(Duration::from_secs(40));
        let got = std::fs::read(format!("{dir}/dl{i}.bin")).unwrap_or_default();
        eprintln!("download {i}: {status:?}, {} bytes", got.len());
        intact += usize::from(got == want);
    }
    let log = lab.lab.proc("xvs").unwrap().output();
    let mut sums = std::collections::BTreeMap::new();
    for (k, v) in xvs_lab::metrics::scrape(&lab.lab, "lb").unwrap() {
        let name = k.split('{').next().unwrap_or(&k).to_string();
        *sums.entry(name).or_insert(0.0) += v;
    }
    eprintln!(
        "{intact} of {n} downloads intact across kill -9 and restart; recovered {}, adopted {}, no_flow drops {}",
        sums.get("xvs_flows_recovered_total").unwrap_or(&0.0),
        sums.get("xvs_flows_adopted_total").unwrap_or(&0.0),
        no_flow(lab),
    );
    (intact, log, sums)
}

/// Packets the workers dropped as of no known flow (`xvs status`'s drop reasons).
fn no_flow(lab: &DrLab) -> f64 {
    xvs_lab::metrics::scrape(&lab.lab, "lb")
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("xvs_drops_total") && k.contains("\"no_flow\""))
        .map(|(_, v)| v)
        .sum()
}

/// The restarted process said it recovered its flows, and took up at least `n`.
fn assert_recovered(log: &str, sums: &std::collections::BTreeMap<String, f64>, n: f64) {
    assert!(
        log.contains("recovering the flows the last xvs left in"),
        "{log}"
    );
    let got = sums
        .get("xvs_flows_recovered_total")
        .copied()
        .unwrap_or(0.0);
    assert!(got >= n, "recovered {got}, want at least {n}\n{log}");
}

/// Serves `yaml` on `lab`, runs `n` downloads of `url` across a `kill -9` and restart,
/// and checks every one arrived intact and the new process recovered their flows.
/// Returns its log and metrics.
fn all_intact_across_kill_9(
    lab: &mut DrLab,
    yaml: &str,
    url: &str,
    n: usize,
) -> (String, std::collections::BTreeMap<String, f64>) {
    lab.start_web().unwrap();
    let cfg = lab.write_config(yaml).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let (intact, log, sums) = downloads_across_kill_9(lab, &cfg, url, n, |_| {});
    assert_eq!(intact, n, "{log}");
    assert_recovered(&log, &sums, n as f64);
    (log, sums)
}

/// `kill -9` in the middle of paced DR downloads (wrr, the fast path on: the lab's switch
/// side runs an XDP program), then the same `xvs run` again: the new process maps the
/// killed one's flow-state file and takes its fast-path maps over (same build, same
/// configuration), so every download finishes intact. Without either, their packets
/// reach a worker that does not know them, which drops them (`no_flow`: only a SYN
/// opens a flow under wrr).
#[test]
fn kill_9_and_restart_keeps_fast_path_downloads() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    let url = format!("http://{}/slow/part.bin", dr::VIP);
    let (log, _) = all_intact_across_kill_9(&mut lab, &dr::config(&[1, 1, 1], None), &url, 6);
    assert!(
        log.contains("took over the connection state left on eth0"),
        "{log}"
    );
    lab.stop_clean().unwrap();
}

/// The same with the fast path off: every packet goes through a worker, so the flows
/// live only in the workers' tables, which outlive the process in their state file.
/// Twelve downloads, wrr over three real servers: all intact.
#[test]
fn kill_9_and_restart_keeps_worker_carried_downloads() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    let yaml = dr::config(&[1, 1, 1], None).replacen(
        "interface: eth0\n",
        "interface: eth0\nfast_path: off\n",
        1,
    );
    let url = format!("http://{}/slow/part.bin", dr::VIP);
    let (_, sums) = all_intact_across_kill_9(&mut lab, &yaml, &url, 12);
    assert_eq!(
        sums.get("xvs_flows_adopted_total").copied().unwrap_or(0.0),
        0.0,
        "no fast path: nothing to adopt"
    );
    // A clean stop leaves no state behind: the connections end with it.
    let ns = lab
        .lab
        .sh("lb", "readlink /proc/self/ns/net | tr -dc 0-9")
        .unwrap();
    lab.stop_clean().unwrap();
    let left = lab
        .lab
        .sh(
            "lb",
            &format!("ls /run/xvs | grep -c '^xvs-net{ns}-.*\\.\\(flows\\|ids\\)$' || true"),
        )
        .unwrap();
    assert_eq!(left.trim(), "0", "state files left after a clean stop");
}

/// NAT (one arm, rr): the workers translate every packet both ways; the flows and the
/// steering program's known NAT connections both outlive the kill.
#[test]
fn kill_9_and_restart_keeps_nat_downloads() {
    let mut lab = DrLab::build_with(2, 1, dr::Prep::Nat).expect("build the lab");
    let yaml = format!(
        "interface: eth0\nflow_table_size: 65536\nvirtual_servers:\n  - name: web\n    address: {}\n    port: 8080\n    protocol: tcp\n    scheduler: rr\n    forwarding: nat\n    real_servers:\n      - {{ address: 10.0.0.11, port: 80 }}\n      - {{ address: 10.0.0.12, port: 80 }}\n",
        dr::NAT_VIP
    );
    let url = format!("http://{}:8080/slow/part.bin", dr::NAT_VIP);
    all_intact_across_kill_9(&mut lab, &yaml, &url, 6);
    lab.stop_clean().unwrap();
}

/// TUN (IPIP, rr over two real servers prepared by `xvs realserver up --mode tun`).
#[test]
fn kill_9_and_restart_keeps_tun_downloads() {
    let mut lab = DrLab::build_with(2, 1, dr::Prep::XvsTun).expect("build the lab");
    let yaml = dr::tun_config(&dr::config(&[1, 1], None));
    let url = format!("http://{}/slow/part.bin", dr::VIP);
    all_intact_across_kill_9(&mut lab, &yaml, &url, 6);
    lab.stop_clean().unwrap();
}

/// IPv6 DR on a dual-stack director: the IPv6 flow table outlives the kill as IPv4's.
#[test]
fn kill_9_and_restart_keeps_ipv6_downloads() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.add_ipv6().unwrap();
    let url = format!("http://[{}]/slow/part.bin", dr::VIP6);
    all_intact_across_kill_9(&mut lab, &dr::config_dual(&[1, 1, 1], None), &url, 6);
    lab.stop_clean().unwrap();
}

/// A persistence template outlives the kill: the client returns to its real server.
/// Another client takes the first rr turn before it, so the client's server is the one
/// a fresh rr would *not* pick first: only a recovered template sends it back there.
#[test]
fn kill_9_and_restart_keeps_a_persistence_template() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let yaml = dr::config(&[1, 1, 1], None).replacen(
        "    scheduler: wrr\n",
        "    scheduler: rr\n    persistence_timeout: 300\n",
        1,
    );
    let cfg = lab.write_config(&yaml).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let other = "10.0.0.9";
    lab.lab
        .sh("cl", &format!("ip addr add {other}/24 dev eth0"))
        .unwrap();
    let first = lab
        .lab
        .sh(
            "cl",
            &format!("curl -s -m 5 --interface {other} http://{}/", dr::VIP),
        )
        .unwrap();
    let before = lab.http_gets(3, "/").unwrap();
    assert!(
        before.iter().all(|a| *a == before[0] && *a != first.trim()),
        "{first} then {before:?}"
    );
    kill_9(&mut lab);
    lab.start_xvs(&cfg).unwrap();
    let log = lab.lab.proc("xvs").unwrap().output();
    let after = lab.http_gets(6, "/").unwrap();
    eprintln!("before the kill: {before:?}; after: {after:?}");
    assert!(after.iter().all(|a| *a == before[0]), "{after:?}\n{log}");
    assert!(
        log.contains("recovering the flows the last xvs left in"),
        "{log}"
    );
    lab.stop_clean().unwrap();
}

/// The real servers' ids are kept beside the flows. A reload puts a new real server
/// first: a fresh start would number the servers in configuration order, so every
/// recovered flow would name the server before its own. Downloads begun before the
/// reload, `kill -9` after it, the new configuration's `xvs run`: all intact.
#[test]
fn kill_9_after_a_reload_keeps_each_flow_at_its_real_server() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let all = dr::config(&[1, 1, 1], None).replacen(
        "interface: eth0\n",
        "interface: eth0\nfast_path: off\n",
        1,
    );
    let first = format!(
        "      - {{ address: {}, port: 80, weight: 1 }}\n",
        dr::rs_addr(0)
    );
    assert!(all.contains(&first), "{all}");
    let cfg = lab.write_config(&all.replacen(&first, "", 1)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let url = format!("http://{}/slow/part.bin", dr::VIP);
    let (intact, log, sums) = downloads_across_kill_9(&mut lab, &cfg, &url, 6, |lab| {
        lab.write_config(&all).unwrap();
        let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
        let answer = lab.lab.sh("lb", &format!("{bin} reload")).unwrap();
        assert!(answer.contains("done"), "{answer}");
    });
    assert!(log.contains("real-server ids taken from"), "{log}");
    assert_eq!(intact, 6, "{log}");
    assert_recovered(&log, &sums, 6.0);
    lab.stop_clean().unwrap();
}

/// What another configuration left in the steering program's maps is not taken over
/// (its fast-path entries may name real servers this one does not have): said in the
/// log, and the director starts with new maps and serves. (The workers' flows are still
/// recovered: they name real servers by the ids kept beside them, checked against this
/// configuration's services.)
#[test]
fn another_configurations_leftovers_are_not_taken_over() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[1, 1, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    kill_9(&mut lab);
    let cfg = lab.write_config(&dr::config(&[2, 1, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let log = lab.lab.proc("xvs").unwrap().output();
    assert!(
        log.contains("is another version's or configuration's") && !log.contains("took over"),
        "{log}"
    );
    let answers = lab.http_gets(8, "/").unwrap();
    assert_eq!(DrLab::tally(&answers).get("FAIL"), None, "{answers:?}");
    lab.stop_clean().unwrap();
}
