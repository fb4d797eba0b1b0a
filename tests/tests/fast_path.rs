//! The XDP fast path end to end: a 20 MB upload through an xvs DR director, most of its
//! packets forwarded by the steering program itself once the connection is established,
//! the file intact on the real server, and every packet counted exactly once (workers'
//! plus fast path = what the steering program let through); with `fast_path: off`, none
//! takes it.

use xvs_tests::dr::{self, DrLab, VIP};

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
        "xvs_real_server_packets_in_total{virtual_server=\"web\"",
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
