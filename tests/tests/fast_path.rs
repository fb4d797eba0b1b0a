//! The XDP fast path end to end: a 20 MB upload through an xvs DR director, most of its
//! packets forwarded by the steering program itself once the connection is established,
//! the file intact on the real server, and every packet counted exactly once (workers'
//! plus fast path = what the steering program let through); with `fast_path: off`, none
//! takes it.

use xvs_lab::dr::{self, DrLab, VIP};

/// The sum of a family's samples whose line starts with `prefix`.
fn sum(scrape: &str, prefix: &str) -> u64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Uploads 20 MB through a director running `fast_path`; returns (fast-path packets,
/// packets the workers got) after checking the upload and the counts.
fn upload(fast_path: &str) -> (u64, u64) {
    let mut lab = DrLab::build(1, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab
        .write_config(&(dr::config(&[1], None) + &format!("fast_path: {fast_path}\n")))
        .unwrap();
    lab.start_xvs(&cfg).unwrap();
    let dir = lab.lab.dir.display().to_string();
    let code = lab
        .lab
        .sh(
            "cl",
            &format!("curl -s -m 60 -o /dev/null -w '%{{http_code}}' -T {dir}/big.bin http://{VIP}/upload/up.bin"),
        )
        .unwrap();
    assert_eq!(code, "201", "upload status");
    let sums = lab
        .lab
        .sh(
            "rs1",
            &format!("sha256sum < {dir}/rs1/www/upload/up.bin; sha256sum < {dir}/big.bin"),
        )
        .unwrap();
    let s: Vec<&str> = sums.lines().collect();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0], s[1], "the upload arrived intact");
    let scrape = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let fast = sum(&scrape, "xvs_xdp_packets_total{outcome=\"fast_path\"}");
    let steered = sum(&scrape, "xvs_xdp_packets_total{outcome=\"steered\"}");
    let forwarded = sum(
        &scrape,
        "xvs_real_server_in_packets_total{virtual_server=\"web\"",
    );
    let dropped = sum(&scrape, "xvs_drops_total{");
    eprintln!(
        "fast_path {fast_path}: {fast} packets in XDP, {steered} to the workers, {forwarded} forwarded in all, {dropped} dropped"
    );
    assert_eq!(
        forwarded + dropped,
        steered + fast,
        "every packet counted once, in the real server's count or as a drop:\n{scrape}"
    );
    assert_eq!(
        sum(
            &scrape,
            "xvs_real_server_connections_total{virtual_server=\"web\""
        ),
        1,
        "one connection"
    );
    lab.stop_clean().unwrap();
    (fast, steered)
}

#[test]
fn an_upload_takes_the_fast_path_and_counts_stay_exact() {
    let (fast, steered) = upload("xdp");
    // 20 MB are some 14,000 segments: nearly all of them after the handshake.
    assert!(fast > 10_000, "{fast} packets on the fast path");
    assert!(steered < fast / 10, "{steered} packets reached the workers");
}

#[test]
fn with_the_fast_path_off_every_packet_reaches_a_worker() {
    let (fast, steered) = upload("off");
    assert_eq!(fast, 0);
    assert!(steered > 10_000, "{steered}");
}

/// The lab a new user builds first: namespaces, a bridge, veths as `ip link` makes them,
/// nothing prepared on the switch side, the default configuration (`fast_path` unset:
/// `auto`). The bridge port runs no XDP, so what the director sends with `XDP_TX` is
/// lost; the director sees its veth count those losses, falls back to the workers, and
/// says so in `xvs status --dataplane` and /metrics. Every request and download arrives.
#[test]
fn a_bare_veth_lab_works_with_the_default_configuration() {
    let mut lab = DrLab::build_bare(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[3, 2, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let answers = lab.http_gets(30, "/").unwrap();
    let failed = answers.iter().filter(|a| *a == "FAIL").count();
    let dir = lab.lab.dir.display().to_string();
    let downloads = lab
        .lab
        .sh(
            "cl",
            &format!(
                "for i in 1 2 3; do curl -s -m 60 http://{VIP}/big.bin | sha256sum; done; sha256sum < {dir}/big.bin"
            ),
        )
        .unwrap();
    let sums: Vec<&str> = downloads.lines().collect();
    let status = lab
        .lab
        .sh(
            "lb",
            &format!(
                "{} status --dataplane",
                xvs_lab::tools::xvs_bin().unwrap().display()
            ),
        )
        .unwrap_or_else(|e| format!("(status failed: {e})"));
    let scrape = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    eprintln!("{failed} of 30 requests failed\n{downloads}\n{status}");
    assert_eq!(failed, 0, "every request answered: {answers:?}");
    assert_eq!(sums.len(), 4);
    assert!(
        sums[..3].iter().all(|s| *s == sums[3]),
        "every download intact: {sums:?}"
    );
    assert!(
        status.contains("fast path: off (fell back:"),
        "the fallback in status:\n{status}"
    );
    assert!(
        scrape.contains("xvs_fast_path_active 0"),
        "the fallback in /metrics"
    );
    // Whichever came first decided it: XDP's frames lost, or the client's partial
    // checksums the workers completed (which the fast path would have forwarded so).
    assert!(
        sum(&scrape, "xvs_xdp_tx_undelivered_frames_total{") > 0
            || sum(&scrape, "xvs_checksums_completed_total{") > 0,
        "why, in /metrics"
    );
    assert!(
        scrape.contains("xvs_xdp_tx_undelivered_frames_total{interface=\"eth0\"}"),
        "eth0 watched"
    );
    lab.stop_clean().unwrap();
}
