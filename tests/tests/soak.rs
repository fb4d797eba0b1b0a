//! `make soak` (not in `make test`): SOAK_SECS (default 1800) of steady traffic through a
//! DR director with VRRP, a reload every 30 s, a real server flapping (its web server
//! stopped and started, the health check following) and a VRRP peer flapping (keepalived
//! as backup, stopped and started). Resident memory, file descriptors and threads stay
//! flat; xvs logs no error; the counters agree with the traffic sent.

use std::time::{Duration, Instant};

use xvs_lab::dr::{self, DrLab, VIP};
use xvs_lab::metrics;
use xvs_lab::vrrp::Peer;

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

fn config(weights: [u32; 2]) -> String {
    let mut y = dr::config(&weights, None);
    y = y.replacen(
        "    real_servers:\n",
        "    health_check: { type: tcp, delay_loop: 1, connect_timeout: 1, retry: 1, delay_before_retry: 0.5 }\n    real_servers:\n",
        1,
    );
    y + &format!(
        "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: MASTER\n    virtual_router_id: 51\n    priority: 150\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddresses: [{VIP}]\n"
    )
}

#[test]
#[ignore = "30 minutes: run by `make soak`"]
fn half_an_hour_of_traffic_reloads_and_flapping() {
    let secs: f64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800.0);
    let mut lab = DrLab::build_pair(2).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&config([1, 1])).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let keepalived = Peer {
        master: false,
        priority: 100,
        password: "",
        version: 3,
        advert_int: 0.1,
    }
    .keepalived_conf();
    let pid = lab.lab.proc("xvs").unwrap().pid();
    lab.start_http_loop_paced(secs, 0.02, 1.0).unwrap();
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let (mut reloads, mut rs_flaps, mut peer_flaps) = (0, 0, 0);
    let mut peer_up = false;
    let mut tick = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_secs(1));
        tick += 1;
        if tick.is_multiple_of(30) {
            let w = if reloads % 2 == 0 { [2, 1] } else { [1, 1] };
            std::fs::write(&cfg, config(w)).unwrap();
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGHUP) };
            reloads += 1;
        }
        if tick % 20 == 5 {
            lab.stop_web(1);
            rs_flaps += 1;
        }
        if tick % 20 == 12 {
            lab.restart_web(1).unwrap();
        }
        if tick.is_multiple_of(45) {
            if peer_up {
                lab.lab.stop("keepalived");
            } else {
                lab.lab.spawn_keepalived("lb2", &keepalived).unwrap();
                peer_flaps += 1;
            }
            peer_up = !peer_up;
        }
        if tick.is_multiple_of(10) {
            samples.push((
                tick,
                xvs_lab::tools::proc_status(pid, "VmRSS:"),
                fds(pid),
                xvs_lab::tools::proc_status(pid, "Threads:"),
            ));
        }
    }
    if lab.lab.proc("keepalived").is_some() {
        lab.lab.stop("keepalived");
    }
    let results = lab.loop_results(Duration::from_secs(60)).unwrap();
    let ok = results.iter().filter(|r| r.1).count() as f64;
    let scrape = metrics::scrape(&lab.lab, "lb").unwrap();
    let conns: f64 = scrape
        .iter()
        .filter(|(k, _)| k.starts_with("xvs_real_server_connections_total{virtual_server=\"web\""))
        .map(|(_, v)| v)
        .sum();
    let log = lab.stop_clean().unwrap();
    // Warm-up: the first minute's samples (allocator, first reloads) are not the baseline.
    let steady: Vec<_> = samples.iter().filter(|s| s.0 >= 60).collect();
    let (rss_min, rss_max) = steady
        .iter()
        .fold((u64::MAX, 0), |(a, b), s| (a.min(s.1), b.max(s.1)));
    let fd_set: std::collections::BTreeSet<u64> = steady.iter().map(|s| s.2).collect();
    let threads: std::collections::BTreeSet<u64> = steady.iter().map(|s| s.3).collect();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    eprintln!(
        "soak {secs} s: {reloads} reloads, {rs_flaps} real server flaps, {peer_flaps} VRRP peer starts; \
         {} requests, {ok} answered ({:.2} %), {conns} connections counted; RSS {rss_min}..{rss_max} KiB, \
         fds {fd_set:?}, threads {threads:?}; {} error lines",
        results.len(),
        100.0 * ok / results.len() as f64,
        errors.len()
    );
    assert!(errors.is_empty(), "errors logged:\n{}", errors.join("\n"));
    assert!(rss_max - rss_min < 8 * 1024, "RSS {rss_min}..{rss_max} KiB");
    assert!(fd_set.len() <= 2, "file descriptors moved: {fd_set:?}");
    // tokio's blocking pool (reload reads, neighbour resolution) starts a thread when
    // asked and lets it go after 10 s idle: bounded, not growing.
    let (tmin, tmax) = (threads.first().unwrap(), threads.last().unwrap());
    assert!(tmax - tmin <= 4, "threads moved: {threads:?}");
    // Every answered request was a connection xvs counted; a request to the flapping
    // server before its check noticed may fail, but no more than a few percent.
    assert!(conns >= ok, "{conns} connections counted, {ok} answered");
    assert!(
        ok >= 0.95 * results.len() as f64,
        "{ok} of {}",
        results.len()
    );
}
