//! A SYN flood from a million spoofed sources (the benchmark's BPF generator, paced
//! below what the path carries) at a DR director while three long downloads run and a
//! client opens a new connection every 20 ms: the flow table stays bounded, xvs's memory
//! flat, the downloads intact, and at least 99 % of the client's connections succeed.

use std::time::Duration;

use xvs_lab::dr::{self, DrLab, VIP};
use xvs_lab::metrics;

/// The pace asked of the generator; one pinned generator sharing the machine reaches
/// about 37k/s of it, well below what the path forwards (docs/input.md).
const FLOOD_PPS: u64 = 100_000;
/// The flood ends when every source has sent once, or after this long.
const FLOOD_SECS: f64 = 40.0;
/// The client's loop: as long as the flood lasts at this lab's rate.
const LOOP_SECS: f64 = 25.0;
const SOURCES: u32 = 1 << 20;

fn sum(m: &std::collections::BTreeMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn a_syn_flood_below_capacity_leaves_real_clients_served() {
    let mut lab = DrLab::build(2, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[1, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    // The generator sends with XDP_TX: a veth delivers that only with XDP on its peer.
    let pass = lab.lab.dir.join("pass.bpf.o").display().to_string();
    lab.lab
        .sh(
            "sw",
            &format!("ip link set dev cl xdpdrv obj {pass} sec xdp"),
        )
        .unwrap();
    let pid = lab.lab.proc("xvs").unwrap().pid();
    let rss_before = xvs_lab::tools::proc_status(pid, "VmRSS:");
    let dir = lab.lab.dir.display().to_string();
    for i in 0..3 {
        // 20 MiB at 1 MiB/s: the downloads last through the flood.
        let script =
            format!("curl -s -m 60 --limit-rate 1M -o {dir}/dl{i}.bin http://{VIP}/big.bin");
        lab.lab
            .spawn("cl", &format!("dl{i}"), &["sh", "-c", &script])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    lab.start_http_loop_paced(LOOP_SECS, 0.02, 1.0).unwrap();
    let pps = xvs_lab::tools::xvs_bin()
        .unwrap()
        .with_file_name("xvs-pps")
        .display()
        .to_string();
    let lb_mac = lab.mac("lb").unwrap();
    // XVS_FLOOD=max: unpaced, past the path's capacity; the outcome is reported, and only
    // survival asserted (docs/input.md quotes it). Not part of `make test`.
    let above = std::env::var("XVS_FLOOD").is_ok_and(|v| v == "max");
    let (flows, secs, rate) = (
        SOURCES.to_string(),
        FLOOD_SECS.to_string(),
        FLOOD_PPS.to_string(),
    );
    // The generator's flow sequence is per CPU: on one CPU it sends each flow once.
    let last_cpu = (std::thread::available_parallelism().map_or(1, |n| n.get()) - 1).to_string();
    let mut argv = vec![
        "taskset",
        "-c",
        &last_cpu,
        pps.as_str(),
        "gen",
        "--dev",
        "eth0",
        "--dst-mac",
        &lb_mac,
        "--vip",
        VIP,
        "--port",
        "80",
        "--flows",
        &flows,
        "--syn",
        "--secs",
        &secs,
        "--count",
        &flows,
    ];
    if !above {
        argv.extend(["--pps", &rate]);
    }
    lab.lab.spawn("cl", "flood", &argv).unwrap();
    let flood = lab.lab.proc("flood").unwrap();
    flood
        .wait(Duration::from_secs_f64(FLOOD_SECS + 20.0))
        .expect("the flood ends");
    let out = flood.output();
    let sent: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("sent "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("generator: {out}"));
    let results = lab.loop_results(Duration::from_secs(30)).unwrap();
    let ok = results.iter().filter(|r| r.1).count();
    let scrape = metrics::scrape(&lab.lab, "lb").unwrap();
    let rss_after = xvs_lab::tools::proc_status(pid, "VmRSS:");
    for i in 0..3 {
        lab.lab
            .proc(&format!("dl{i}"))
            .unwrap()
            .wait(Duration::from_secs(60))
            .expect("download ends");
    }
    let sums = lab
        .lab
        .sh("cl", &format!("sha256sum {dir}/dl0.bin {dir}/dl1.bin {dir}/dl2.bin {dir}/big.bin | cut -d' ' -f1 | sort -u | wc -l"))
        .unwrap();
    let created = sum(&scrape, "xvs_flows_created_total");
    let evicted = sum(&scrape, "xvs_flows_evicted_total");
    let held = sum(&scrape, "xvs_flow_table_connections");
    let capacity = sum(&scrape, "xvs_flow_table_capacity");
    let steered = sum(&scrape, "xvs_xdp_packets_total{outcome=\"steered\"}");
    let ring_drops =
        sum(&scrape, "xvs_xsk_rx_dropped_total") + sum(&scrape, "xvs_xsk_rx_ring_full_total");
    eprintln!(
        "flood ({}): {sent} SYNs from {SOURCES} sources, paced at most {FLOOD_PPS}/s; {steered} steered, {ring_drops} lost at the AF_XDP rings; flows created {created}, evicted {evicted}, held {held} of {capacity}; \
         the client's new connections: {ok} of {} succeeded; xvs RSS {rss_before} -> {rss_after} KiB",
        out.trim(),
        results.len()
    );
    assert!(
        sent >= u64::from(SOURCES),
        "every source sent at least once"
    );
    assert!(held <= capacity, "the table is bounded");
    assert!(evicted > 0.0, "a full table evicts, counted");
    assert_eq!(sums.trim(), "1", "the downloads arrived intact");
    if above {
        // Past capacity the rings overflow (counted): what is measured is reported.
        assert!(ok > 0, "served at all under the flood");
        lab.stop_clean().unwrap();
        return;
    }
    // Each SYN a new flow (the client's too): all of them reached a worker.
    assert!(
        created >= 0.99 * sent as f64,
        "the SYNs reached the workers"
    );
    assert!(
        ok * 100 >= results.len() * 99 && results.len() > 100,
        "{ok} of {} connections succeeded",
        results.len()
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB"
    );
    lab.stop_clean().unwrap();
}
