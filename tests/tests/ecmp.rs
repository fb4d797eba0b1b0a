//! Scale-out: three active directors behind a router's ECMP, each announcing the VIP
//! through BIRD only while its xvs can serve it (`announce`). With paced downloads and
//! a new-connection loop running, each event — a director drained then stopped, added,
//! crashed, its xvs killed alone, a real server's service stopped, a director whose
//! real servers are all down — is counted: connections broken of those open, and the
//! longest gap between two answered requests of the loop. mh with `mh-port` gives every
//! director the same pick for a flow, so one that ECMP moves to another director
//! reaches the same real server, which any of its packets may open there (sloppy TCP).

use std::time::{Duration, Instant};

use xvs_lab::ecmp::{self, EcmpLab, VIP};

const DIRECTORS: usize = 3;
const REAL_SERVERS: usize = 2;
/// Paced downloads open across each event: 1.5 MB at nginx's 500 kB/s, three seconds.
const DOWNLOAD: usize = 3 << 19;
const DOWNLOADS: usize = 40;

/// How the directors agree on a moved flow's real server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Agree {
    /// mh with `mh-port`: the same pick everywhere, no messages.
    Hash,
    /// wlc, which does not hash: connection sync, every director to all (multicast).
    Sync,
}

const SYNC_KEY: &str = "ecmp-lab-sync-key-0123456789";

/// The directors' configuration: the example's, its health checks probing `port`.
fn xvs_config(agree: Agree, port: u16) -> String {
    let mut c = ecmp::DIRECTOR_XVS.replace("connect_port: 80", &format!("connect_port: {port}"));
    if agree == Agree::Sync {
        c = c.replace(
            "scheduler: mh\n    scheduler_flags: [mh-port]",
            "scheduler: wlc",
        );
        assert!(c.contains("wlc"), "the example's scheduler lines moved");
        c += &format!("connection_sync: {{ interface: eth0, key: \"{SYNC_KEY}\" }}\n");
    }
    c
}

/// One event's outcome, a row of the report.
struct Row {
    event: &'static str,
    broken: usize,
    total: usize,
    /// Requests of the new-connection loop that failed, of those made.
    failed: usize,
    requests: usize,
    /// The longest wait between two answered requests (s).
    gap: f64,
    /// What else was measured (how long the router took, and so on).
    note: String,
}

struct Run {
    lab: EcmpLab,
    agree: Agree,
    want: Vec<u8>,
    rows: Vec<Row>,
}

impl Run {
    fn start(agree: Agree) -> Run {
        let mut lab = EcmpLab::build(DIRECTORS, REAL_SERVERS).expect("build the lab");
        lab.dr.start_web().unwrap();
        let want = lab.dr.put_slow("part.bin", DOWNLOAD).unwrap();
        lab.start_router_bird().unwrap();
        for i in 0..DIRECTORS {
            lab.start_director_bird(i).unwrap();
            lab.start_xvs(i, &xvs_config(agree, 80)).unwrap();
        }
        let took = lab
            .wait_nexthops(DIRECTORS, Duration::from_secs(30))
            .unwrap();
        eprintln!("all {DIRECTORS} directors announced after {took:?}");
        // Held on lo, the anycast VIP answers what no virtual server takes, a ping.
        lab.dr
            .lab
            .sh("d1", &format!("ip -br addr show lo | grep -q {VIP}"))
            .unwrap();
        lab.dr
            .lab
            .sh("cl", &format!("ping -c 1 -W 2 {VIP} >/dev/null"))
            .unwrap();
        Run {
            lab,
            agree,
            want,
            rows: Vec::new(),
        }
    }

    fn config(&self, port: u16) -> String {
        xvs_config(self.agree, port)
    }

    /// Starts the downloads and the loop, runs `event` once they are under way, and
    /// counts what it broke. `event` returns what it measured.
    fn around(&mut self, name: &'static str, event: impl FnOnce(&mut EcmpLab) -> String) {
        let dir = self.lab.dr.lab.dir.display().to_string();
        let url = format!("http://{VIP}/slow/part.bin");
        for i in 0..DOWNLOADS {
            let out = format!("{dir}/dl{i}.bin");
            let _ = std::fs::remove_file(&out);
            self.lab
                .dr
                .lab
                .spawn(
                    "cl",
                    &format!("dl{i}"),
                    &["curl", "-sS", "-m", "30", "-o", &out, &url],
                )
                .unwrap();
        }
        self.lab.dr.start_http_loop_paced(7.0, 0.02, 1.0).unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        let note = event(&mut self.lab);
        let mut broken = 0;
        for i in 0..DOWNLOADS {
            let p = self.lab.dr.lab.proc(&format!("dl{i}")).unwrap();
            p.wait(Duration::from_secs(35));
            let got = std::fs::read(format!("{dir}/dl{i}.bin")).unwrap_or_default();
            broken += usize::from(got != self.want);
        }
        let results = self.lab.dr.loop_results(Duration::from_secs(20)).unwrap();
        // Forgotten, so the next event's processes of the same names are found.
        self.lab.dr.lab.stop("loop");
        for i in 0..DOWNLOADS {
            self.lab.dr.lab.stop(&format!("dl{i}"));
        }
        let answered: Vec<f64> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
        let gap = answered.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let row = Row {
            event: name,
            broken,
            total: DOWNLOADS,
            failed: results.iter().filter(|r| !r.1).count(),
            requests: results.len(),
            gap,
            note,
        };
        eprintln!(
            "{name}: {broken}/{DOWNLOADS} broken, {}/{} new connections failed, longest gap {gap:.3} s; {}",
            row.failed, row.requests, row.note
        );
        self.rows.push(row);
    }

    /// Under 1 % of the last event's open connections broken (none, with fewer than 100).
    fn few_broken(&self) {
        let r = self.rows.last().unwrap();
        assert!(
            r.broken * 100 < r.total.max(100),
            "{}: {} of {} connections broken",
            r.event,
            r.broken,
            r.total
        );
    }

    fn report(&self) {
        eprintln!("\n| event | broken / open connections | failed / new connections | longest gap (s) | measured |");
        eprintln!("|---|---|---|---|---|");
        for r in &self.rows {
            eprintln!(
                "| {} | {} / {} | {} / {} | {:.3} | {} |",
                r.event, r.broken, r.total, r.failed, r.requests, r.gap, r.note
            );
        }
    }
}

/// `xvs drain --director` on d3; once the router has moved off it, d3's xvs stops.
fn drain_then_stop_d3(lab: &mut EcmpLab) -> String {
    let began = Instant::now();
    lab.xvs(2, "drain --director").unwrap();
    let moved = lab
        .wait_nexthops(DIRECTORS - 1, Duration::from_secs(5))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.dr.lab.stop("xvs-d3");
    format!(
        "router moved off d3 {:.0} ms after the drain, stopped after {:.1} s",
        moved.as_secs_f64() * 1e3,
        began.elapsed().as_secs_f64()
    )
}

/// d2's xvs killed and its link down: BFD tells the router.
fn crash_d2(lab: &mut EcmpLab) -> String {
    lab.dr.crash("d2", "xvs-d2").unwrap();
    let took = lab
        .wait_nexthops(DIRECTORS - 1, Duration::from_secs(10))
        .unwrap();
    format!(
        "router dropped d2 after {:.0} ms (BFD 3 × 50 ms)",
        took.as_secs_f64() * 1e3
    )
}

#[test]
fn three_directors_behind_ecmp_share_the_load_and_keep_connections() {
    let mut run = Run::start(Agree::Hash);

    // Steady state: every director takes a share of the new connections.
    let before: Vec<u64> = (0..DIRECTORS)
        .map(|i| run.lab.connections(i).unwrap())
        .collect();
    run.around("steady state", |_| String::new());
    let shares: Vec<u64> = (0..DIRECTORS)
        .map(|i| run.lab.connections(i).unwrap() - before[i])
        .collect();
    let total: u64 = shares.iter().sum();
    eprintln!("new connections per director: {shares:?}");
    for (i, s) in shares.iter().enumerate() {
        assert!(
            *s * 5 >= total,
            "director {} took {s} of {total} connections (< 20 %)",
            i + 1
        );
    }
    let steady = run.rows.last().unwrap();
    assert_eq!((steady.broken, steady.failed), (0, 0));

    // A director drained, then stopped: its route goes first, then the process.
    run.around("d3 drained, then stopped", drain_then_stop_d3);
    let r = run.rows.last().unwrap();
    assert_eq!((r.broken, r.failed), (0, 0), "a drain breaks nothing");

    // A director added: warmup, then announced.
    run.around("d3 added", |lab| {
        let began = Instant::now();
        lab.start_xvs(2, &xvs_config(Agree::Hash, 80)).unwrap();
        lab.wait_nexthops(DIRECTORS, Duration::from_secs(10))
            .unwrap();
        let took = began.elapsed();
        assert!(
            took >= Duration::from_secs(1),
            "announced before its warmup: {took:?}"
        );
        format!(
            "announced {:.2} s after the start (warmup 1 s)",
            took.as_secs_f64()
        )
    });
    let r = run.rows.last().unwrap();
    assert_eq!(
        (r.broken, r.failed),
        (0, 0),
        "an added director breaks nothing"
    );

    // A director crashed.
    run.around("d2 crashed (kill -9, link down)", crash_d2);
    run.few_broken();
    run.lab.dr.lab.sh("d2", "ip link set eth0 up").unwrap();
    run.lab.start_xvs(1, &run.config(80)).unwrap();
    run.lab
        .wait_nexthops(DIRECTORS, Duration::from_secs(20))
        .unwrap();

    // A director's xvs killed while its host, BIRD and link stay up: its TUN device goes
    // with it, and the route with the device.
    run.around("d1's xvs killed (kill -9), BIRD up", |lab| {
        let pid = lab.dr.lab.proc("xvs-d1").unwrap().pid();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let took = lab
            .wait_nexthops(DIRECTORS - 1, Duration::from_secs(5))
            .unwrap();
        assert!(
            took < Duration::from_secs(2),
            "withdrawn within 2 s: {took:?}"
        );
        format!("router dropped d1 after {:.0} ms", took.as_secs_f64() * 1e3)
    });
    run.few_broken();
    run.lab.dr.lab.stop("xvs-d1");
    run.lab.start_xvs(0, &run.config(80)).unwrap();
    run.lab
        .wait_nexthops(DIRECTORS, Duration::from_secs(20))
        .unwrap();

    // A real server's service stopped: every director stops scheduling it.
    // Its downloads break with it: the real server's failure, not the directors'.
    run.around("rs2's nginx stopped", |lab| {
        let began = Instant::now();
        lab.dr.stop_web(1);
        let down = |lab: &EcmpLab| {
            (0..DIRECTORS).all(|i| {
                lab.xvs(i, "status --json")
                    .is_ok_and(|s| s.contains("\"state\": \"down\""))
            })
        };
        while !down(lab) && began.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // delay_loop 1 s + connect_timeout 0.5 s + a retry 0.2 s later (0.5 s more).
        assert!(
            down(lab) && began.elapsed() < Duration::from_secs(3),
            "every director took rs2 out within its checks' delay"
        );
        format!(
            "out of every director's pool after {:.2} s (delay_loop 1 s, retry 1 after 0.2 s)",
            began.elapsed().as_secs_f64()
        )
    });
    run.lab.dr.restart_web(1).unwrap();
    // Back in every director's pool before the next event: mh agrees across directors
    // only while their health views do.
    let began = Instant::now();
    while (0..DIRECTORS).any(|i| {
        run.lab
            .xvs(i, "status --json")
            .is_ok_and(|s| s.contains("\"state\": \"down\""))
    }) {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "rs2 never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A director whose real servers are all down (its checks now probe a closed port)
    // withdraws the VIP; the others carry on.
    run.around("d1's real servers all down", |lab| {
        lab.dr
            .lab
            .write("xvs-d1.yaml", xvs_config(Agree::Hash, 81))
            .unwrap();
        lab.xvs(0, "reload").unwrap();
        let took = lab
            .wait_nexthops(DIRECTORS - 1, Duration::from_secs(10))
            .unwrap();
        let said = lab.xvs(0, "status --announce").unwrap();
        assert!(
            said.contains("withdrawn") && said.contains("\"web\": below its quorum"),
            "{said}"
        );
        format!(
            "d1 withdrawn {:.2} s after the reload that failed its checks",
            took.as_secs_f64()
        )
    });
    let r = run.rows.last().unwrap();
    assert!(r.failed * 10 < r.requests, "the others carry on");

    // d1's checks probe the service again: announced again.
    run.lab
        .dr
        .lab
        .write("xvs-d1.yaml", xvs_config(Agree::Hash, 80))
        .unwrap();
    run.lab.xvs(0, "reload").unwrap();
    run.lab
        .wait_nexthops(DIRECTORS, Duration::from_secs(10))
        .unwrap();

    // A takeover (`xvs run --takeover`, an upgrade): the route never leaves the router.
    run.around("d3 taken over (xvs run --takeover)", |lab| {
        let fewest = lab.take_over(2).unwrap();
        assert_eq!(fewest, DIRECTORS, "the router lost d3 during the takeover");
        "the router's route kept every nexthop throughout (polled every 20 ms)".into()
    });
    let r = run.rows.last().unwrap();
    // A SYN in the workers' gap (tens of milliseconds) waits for its retransmission,
    // past the loop's 1 s bound.
    assert_eq!(r.broken, 0, "a takeover breaks no connection");
    assert!(r.failed <= 2, "{} new connections failed", r.failed);

    // A plain stop: withdrawn, `withdraw_delay` served on, then detached.
    run.around("d3 stopped (SIGTERM)", |lab| {
        let began = Instant::now();
        let pid = lab.dr.lab.proc("xvs-d3").unwrap().pid();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let moved = lab.wait_nexthops(DIRECTORS - 1, Duration::from_secs(5)).unwrap();
        let status = lab.dr.lab.proc("xvs-d3").unwrap().wait(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        format!(
            "router moved off d3 {:.0} ms after SIGTERM; xvs exited after {:.2} s (withdraw_delay 1 s)",
            moved.as_secs_f64() * 1e3,
            began.elapsed().as_secs_f64()
        )
    });
    let r = run.rows.last().unwrap();
    assert_eq!((r.broken, r.failed), (0, 0), "a stop breaks nothing");

    run.report();
}

/// Connection sync in N-way mode: wlc does not hash, so a flow ECMP moves to another
/// director survives there only through the entry its first director multicast to all.
#[test]
fn three_directors_in_sync_keep_the_flows_ecmp_moves() {
    let mut run = Run::start(Agree::Sync);
    run.around("d3 drained, then stopped (sync)", drain_then_stop_d3);
    let r = run.rows.last().unwrap();
    assert_eq!((r.broken, r.failed), (0, 0), "synced flows carried on");
    // Every director heard both others and installed their entries.
    for i in 0..DIRECTORS - 1 {
        let s: serde_json::Value =
            serde_json::from_str(&run.lab.xvs(i, "status --sync --json").unwrap()).unwrap();
        let peers = s["peers"].as_array().map_or(0, Vec::len);
        assert!(peers >= DIRECTORS - 1, "{}: {s:#}", ecmp::director(i));
        assert!(s["entries"]["installed"].as_u64().unwrap() > 0, "{s:#}");
    }
    run.lab.start_xvs(2, &run.config(80)).unwrap();
    run.lab
        .wait_nexthops(DIRECTORS, Duration::from_secs(20))
        .unwrap();
    run.around("d2 crashed (sync)", crash_d2);
    run.few_broken();
    run.report();
}
