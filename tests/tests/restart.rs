//! A restart of xvs (`kill -9`, then `xvs run` again at once) on a director whose kernel
//! already knows the real servers' MAC addresses: the new process takes them from the
//! neighbour table and schedules every real server from its first snapshot, so new
//! connections are served again as soon as it runs. How soon is measured and printed
//! (`--nocapture`); the test asserts the mechanism, not the time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xvs_lab::dr::{self, DrLab};

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
    let pid = lab.lab.proc("xvs").unwrap().pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    lab.lab.stop("xvs");
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
const DOWNLOADS: usize = 6;

/// `kill -9` in the middle of paced DR downloads (wrr, the fast path on: the lab's switch
/// side runs an XDP program), then the same `xvs run` again: the new process takes the
/// killed one's fast-path flows over (same build, same configuration), so every download
/// finishes intact. Without the takeover their packets reach a worker that does not know
/// them, which drops them (`no_flow`: only a SYN opens a flow under wrr).
#[test]
fn kill_9_and_restart_keeps_fast_path_downloads() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[1, 1, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let dir = lab.lab.dir.display().to_string();
    let want = lab.put_slow("part.bin", DOWNLOAD).unwrap();
    let url = format!("http://{}/slow/part.bin", dr::VIP);
    for i in 0..DOWNLOADS {
        let out = format!("{dir}/dl{i}.bin");
        lab.lab
            .spawn(
                "cl",
                &format!("dl{i}"),
                &["curl", "-sS", "-m", "40", "-o", &out, &url],
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(2000));
    let pid = lab.lab.proc("xvs").unwrap().pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    lab.lab.stop("xvs");
    lab.start_xvs(&cfg).unwrap();
    let log = lab.lab.proc("xvs").unwrap().output();
    assert!(
        log.contains("took over the connection state left on eth0"),
        "{log}"
    );
    let mut intact = 0;
    for i in 0..DOWNLOADS {
        let p = lab.lab.proc(&format!("dl{i}")).unwrap();
        let status = p.wait(Duration::from_secs(40));
        let got = std::fs::read(format!("{dir}/dl{i}.bin")).unwrap_or_default();
        eprintln!("download {i}: {status:?}, {} bytes", got.len());
        intact += usize::from(got == want);
    }
    let m = xvs_lab::metrics::scrape(&lab.lab, "lb").unwrap();
    let adopted: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("xvs_flows_adopted_total"))
        .map(|(_, v)| v)
        .sum();
    eprintln!(
        "{intact} of {DOWNLOADS} downloads intact across kill -9 and restart; {adopted} flows adopted"
    );
    assert_eq!(intact, DOWNLOADS, "{log}");
    // The new process's first generation sends each flow to a worker once, which adopts
    // it from the map.
    assert!(adopted >= 1.0, "{m:?}");
    lab.stop_clean().unwrap();
}

/// What another configuration left behind is not taken over (its fast-path entries may
/// name real servers this one does not have): said in the log, and the director starts
/// afresh and serves.
#[test]
fn another_configurations_leftovers_are_not_taken_over() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[1, 1, 1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let pid = lab.lab.proc("xvs").unwrap().pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    lab.lab.stop("xvs");
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
