//! `xvs-lab demo`: builds the DR lab, runs xvs on it, shows where requests went and the
//! counters, and removes everything.

use std::process::ExitCode;

use anyhow::Result;
use xvs_lab::dr::{self, DrLab, VIP};

fn demo() -> Result<()> {
    let weights = [3, 2, 1];
    println!(
        "== building the lab: a client, a director (VIP {VIP}), three real servers on a bridge"
    );
    let mut lab = DrLab::build(weights.len(), 2)?;
    lab.start_web()?;
    lab.start_udp_echo(53)?;
    let yaml = dr::config(&weights, Some(53));
    let cfg = lab.write_config(&yaml)?;
    println!("== xvs configuration ({}):\n{yaml}", cfg.display());
    lab.start_xvs(&cfg)?;
    println!(
        "== xvs is running; XDP attached: {}",
        lab.director_has_xdp()?
    );

    println!("== 12 HTTP requests to http://{VIP}/ (wrr 3:2:1), a new connection each:");
    for (i, who) in lab.http_gets(12, "/")?.iter().enumerate() {
        println!("   request {:>2} -> {who}", i + 1);
    }
    println!("== 600 more requests:");
    let tally = DrLab::tally(&lab.http_gets(600, "/")?);
    for (who, n) in &tally {
        println!("   {who}: {n} ({:.1}%)", *n as f64 / 6.0);
    }
    println!("== 6 UDP queries to {VIP}:53 (rr):");
    for (i, who) in lab.udp_queries(53, 6)?.iter().enumerate() {
        println!("   query {} -> {who}", i + 1);
    }
    println!("== a real server's access log shows the client's own address (DR):");
    for l in lab.access_log(0).iter().take(3) {
        println!("   rs1: {l}");
    }
    let (status, log) = lab.stop_xvs()?;
    println!("== xvs stopped ({status}); its log and counters:");
    for l in log.lines() {
        println!("   {l}");
    }
    println!("== XDP attached after exit: {}", lab.director_has_xdp()?);
    println!("== removing the lab");
    Ok(())
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("demo") => match demo() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: xvs-lab demo");
            ExitCode::from(2)
        }
    }
}
