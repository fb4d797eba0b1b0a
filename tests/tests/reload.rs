//! Live reload under load, as issue 7 asks: while a client loop opens a new connection
//! every 20 ms and 20 long downloads run, the weights change, a real server joins, the
//! scheduler changes, a virtual server is added, a real server leaves, and an invalid file
//! changes nothing. Reloads come by SIGHUP, `xvs reload` and the file watch.

use std::time::{Duration, Instant};

use xvs_lab::dr::{rs_addr, DrLab, VIP};

fn hup(lab: &mut DrLab) {
    let pid = lab.lab.proc("xvs").expect("xvs runs").pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
}

fn log(lab: &DrLab) -> String {
    std::fs::read_to_string(lab.lab.dir.join("xvs.log")).unwrap_or_default()
}

/// Connections scheduled so far to each real server of `web`, by address (`xvs status
/// --json`).
fn scheduled(lab: &DrLab) -> std::collections::HashMap<String, u64> {
    status_json(lab)["virtual_servers"][0]["real_servers"]
        .as_array()
        .expect("real servers")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().expect("address").to_string(),
                r["totals"]["conns"].as_u64().expect("conns"),
            )
        })
        .collect()
}

/// Waits (5 s at most) until xvs's log shows `needle`; returns how long that took.
fn wait_log(lab: &DrLab, needle: &str) -> Duration {
    let t0 = Instant::now();
    while !log(lab).contains(needle) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no {needle:?}:\n{}",
            log(lab)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

/// Writes `yaml`, sends SIGHUP, and waits until the log shows `needle`.
fn reload(lab: &mut DrLab, yaml: &str, needle: &str) {
    lab.write_config(yaml).unwrap();
    hup(lab);
    wait_log(lab, needle);
}

/// `xvs status --json`, parsed.
fn status_json(lab: &DrLab) -> serde_json::Value {
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let json = lab.lab.sh("lb", &format!("{bin} status --json")).unwrap();
    serde_json::from_str(&json).expect("status --json is JSON")
}

/// The lab's configuration: `web` (TCP 80, DR) over `servers` (real server index, weight)
/// with `scheduler`, and with `dns` a UDP rr service on port 5353 over all three.
fn yaml(scheduler: &str, servers: &[(usize, u32)], dns: bool) -> String {
    let mut s = format!(
        "interface: eth0\nflow_table_size: 65536\nvirtual_servers:\n  - name: web\n    address: {VIP}\n    port: 80\n    protocol: tcp\n    scheduler: {scheduler}\n    forwarding: dr\n    real_servers:\n"
    );
    for (i, w) in servers {
        s += &format!("      - {{ address: {}, weight: {w} }}\n", rs_addr(*i));
    }
    if dns {
        s += &format!("  - name: dns\n    address: {VIP}\n    port: 5353\n    protocol: udp\n    scheduler: rr\n    real_servers:\n");
        for i in 0..3 {
            s += &format!("      - {{ address: {} }}\n", rs_addr(i));
        }
    }
    s
}

/// Every pick made by `web` while `f` runs (the client loop's too), per real server index.
fn picks_during(lab: &DrLab, f: impl FnOnce()) -> [u64; 3] {
    let before = scheduled(lab);
    f();
    let after = scheduled(lab);
    let mut d = [0; 3];
    for (i, slot) in d.iter_mut().enumerate() {
        let addr = rs_addr(i);
        *slot = after
            .get(&addr)
            .unwrap_or(&0)
            .saturating_sub(*before.get(&addr).unwrap_or(&0));
    }
    d
}

/// The running configuration as `xvs status --json` shows it, counters left out.
fn shape(lab: &DrLab) -> serde_json::Value {
    let mut v = status_json(lab);
    for vs in v["virtual_servers"].as_array_mut().unwrap() {
        let o = vs.as_object_mut().unwrap();
        o.remove("totals");
        o.remove("rate");
        for rs in o["real_servers"].as_array_mut().unwrap() {
            let r = rs.as_object_mut().unwrap();
            for k in ["totals", "rate", "active_conns", "inactive_conns"] {
                r.remove(k);
            }
        }
    }
    v
}

/// The first 8 MB of the lab's big file: about 16 s at 500 kB/s, to span every reload.
const DOWNLOAD: usize = 8 << 20;
const DOWNLOADS: usize = 20;

#[test]
fn reloads_under_load() {
    let mut lab = DrLab::build(3, 1).unwrap();
    lab.start_web().unwrap();
    lab.start_udp_echo(5353).unwrap();
    let cfg = lab
        .write_config(&yaml("wrr", &[(1, 1), (2, 1)], false))
        .unwrap();
    lab.start_xvs(&cfg).unwrap();

    // 20 downloads, paced by the servers (nginx's limit_rate under /slow/; curl's
    // --limit-rate only slows its own reading, while the server may be done already) to
    // outlast the reloads, on rs2 and rs3 (rs1 is the one that joins and leaves, so none
    // of them is the removed server's).
    let dir = lab.lab.dir.display().to_string();
    lab.put_slow("part.bin", DOWNLOAD).unwrap();
    for i in 0..DOWNLOADS {
        let out = format!("{dir}/dl{i}.bin");
        let url = format!("http://{VIP}/slow/part.bin");
        lab.lab
            .spawn(
                "cl",
                &format!("dl{i}"),
                &["curl", "-sS", "-m", "90", "-o", &out, &url],
            )
            .unwrap();
    }
    let t0 = Instant::now();
    while active(&lab) < DOWNLOADS as u64 {
        if t0.elapsed() > Duration::from_secs(10) {
            let curls: String = (0..DOWNLOADS)
                .map(|i| {
                    let p = lab.lab.proc(&format!("dl{i}")).unwrap();
                    let st = p.wait(Duration::ZERO);
                    let size = std::fs::metadata(format!("{dir}/dl{i}.bin")).map_or(0, |m| m.len());
                    format!("dl{i} exit {st:?}, {size} bytes: {}\n", p.output())
                })
                .collect();
            panic!(
                "{} of {DOWNLOADS} downloads established:\n{curls}{}\n{}",
                active(&lab),
                serde_json::to_string_pretty(&status_json(&lab)).unwrap(),
                log(&lab)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.start_http_loop(12.0).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // 1. Weights 3:1 (SIGHUP), for new connections. One worker: one wrr sequence, exact
    // up to the cycle it starts and ends in.
    reload(
        &mut lab,
        &yaml("wrr", &[(1, 3), (2, 1)], false),
        "reload 1 done",
    );
    let d = picks_during(&lab, || {
        let t = DrLab::tally(&lab.http_gets(40, "/").unwrap());
        assert_eq!(t.get("FAIL"), None, "{t:?}");
    });
    let total = d[1] + d[2];
    assert!(total >= 40 && d[0] == 0, "{d:?}");
    assert!(
        (d[1] as f64 - 0.75 * total as f64).abs() <= 3.0,
        "3:1 → {d:?}"
    );

    // 2. rs1 joins, by `xvs reload` through the control socket; it is scheduled once its
    // MAC is resolved (retried every second).
    lab.write_config(&yaml("wrr", &[(0, 1), (1, 3), (2, 1)], false))
        .unwrap();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let answer = lab.lab.sh("lb", &format!("{bin} reload")).unwrap();
    assert!(answer.contains("reload 2 done"), "{answer}");
    let t0 = Instant::now();
    while log(&lab).matches("(neighbours changed)").count() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "rs1 never resolved:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = picks_during(&lab, || {
        let t = DrLab::tally(&lab.http_gets(25, "/").unwrap());
        assert_eq!(t.get("FAIL"), None, "{t:?}");
    });
    assert!(d[0] >= 3, "rs1 takes its share (1 of 5): {d:?}");

    // 3. The scheduler becomes rr: equal shares, whatever the weights.
    reload(
        &mut lab,
        &yaml("rr", &[(0, 1), (1, 3), (2, 1)], false),
        "reload 3 done",
    );
    let d = picks_during(&lab, || {
        let t = DrLab::tally(&lab.http_gets(30, "/").unwrap());
        assert_eq!(t.get("FAIL"), None, "{t:?}");
    });
    let total: u64 = d.iter().sum();
    assert!(
        total >= 30
            && d.iter()
                .all(|&n| (n as f64 - total as f64 / 3.0).abs() <= 1.0),
        "rr → {d:?}"
    );

    // 4. A virtual server is added: UDP 5353, rr over the three.
    reload(
        &mut lab,
        &yaml("rr", &[(0, 1), (1, 3), (2, 1)], true),
        "reload 4 done",
    );
    let t = DrLab::tally(&lab.udp_queries(5353, 30).unwrap());
    assert_eq!(
        (t.get("rs1"), t.get("rs2"), t.get("rs3")),
        (Some(&10), Some(&10), Some(&10)),
        "{t:?}"
    );

    // 5. rs1 leaves: its connections follow expire_nodest_conn; nobody is sent to it.
    let without_rs1 = yaml("rr", &[(1, 3), (2, 1)], true);
    reload(&mut lab, &without_rs1, "reload 5 done");
    let t = DrLab::tally(&lab.http_gets(20, "/").unwrap());
    assert!(
        !t.contains_key("rs1") && t.get("rs2").unwrap_or(&0) + t.get("rs3").unwrap_or(&0) == 20,
        "rs1 gone → {t:?}"
    );

    // 6. An invalid file: refused with its line:column; the running config stays.
    let running = shape(&lab);
    reload(
        &mut lab,
        &without_rs1.replace("weight: 3", "weight: -3"),
        "reload failed",
    );
    assert!(
        log(&lab).contains("xvs.yaml:") && log(&lab).contains("out of range"),
        "{}",
        log(&lab)
    );
    assert_eq!(
        shape(&lab),
        running,
        "xvs status shows the running config unchanged"
    );
    // The downloads were in flight through every change.
    for i in 0..DOWNLOADS {
        let p = lab.lab.proc(&format!("dl{i}")).unwrap();
        if !p.running() {
            let size = std::fs::metadata(format!("{dir}/dl{i}.bin")).map_or(0, |m| m.len());
            panic!(
                "download {i} ended before the last reload: {:?}, {size} bytes {}",
                p.wait(Duration::ZERO),
                p.output()
            );
        }
    }
    assert!(
        active(&lab) >= DOWNLOADS as u64,
        "their connections are still established"
    );
    let t = DrLab::tally(&lab.http_gets(20, "/").unwrap());
    assert!(
        !t.contains_key("rs1") && t.get("rs2").unwrap_or(&0) + t.get("rs3").unwrap_or(&0) == 20,
        "unchanged: {t:?}"
    );

    let results = lab.loop_results(Duration::from_secs(20)).unwrap();
    let failed = results.iter().filter(|r| !r.1).count();
    eprintln!(
        "client loop: {} requests, {failed} failed across 5 reloads and 1 refused one",
        results.len()
    );
    // Only a connection open on rs1 at the instant it left may fail.
    assert!(failed <= 2, "{failed} of {} failed", results.len());

    // Every download completes, intact.
    let want = lab
        .lab
        .sh(
            "cl",
            &format!("head -c {DOWNLOAD} {dir}/big.bin | sha256sum"),
        )
        .unwrap();
    let want = want.split_whitespace().next().unwrap().to_string();
    let t0 = Instant::now();
    for i in 0..DOWNLOADS {
        let name = format!("dl{i}");
        let left = Duration::from_secs(60).saturating_sub(t0.elapsed());
        let status = lab
            .lab
            .proc(&name)
            .unwrap()
            .wait(left)
            .unwrap_or_else(|| panic!("download {i} still running"));
        assert!(status.success(), "download {i}: {status:?}");
        let got = lab
            .lab
            .sh("cl", &format!("sha256sum {dir}/dl{i}.bin"))
            .unwrap();
        assert_eq!(
            got.split_whitespace().next(),
            Some(want.as_str()),
            "download {i}"
        );
    }
    eprintln!(
        "{DOWNLOADS} downloads of {DOWNLOAD} bytes intact, the last done {:.1} s after the reloads",
        t0.elapsed().as_secs_f64()
    );
    let out = lab.stop_clean().unwrap();
    assert!(out.contains("reloads: 5 done, 1 failed"), "{out}");
}

/// ESTABLISHED connections of `web` now (`xvs status --json`).
fn active(lab: &DrLab) -> u64 {
    status_json(lab)["virtual_servers"][0]["real_servers"]
        .as_array()
        .expect("real servers")
        .iter()
        .map(|r| r["active_conns"].as_u64().unwrap_or(0))
        .sum()
}

/// `watch_config: true`: writing the file reloads it, whether in place or by a rename
/// over it; the same content again reloads nothing; an invalid file is refused.
#[test]
fn file_watch_reloads_on_change() {
    let mut lab = DrLab::build(2, 1).unwrap();
    lab.start_web().unwrap();
    let with =
        |servers: &[(usize, u32)]| format!("watch_config: true\n{}", yaml("wrr", servers, false));
    let cfg = lab.write_config(&with(&[(0, 1), (1, 1)])).unwrap();
    lab.start_xvs(&cfg).unwrap();
    assert!(log(&lab).contains("watching"), "{}", log(&lab));
    let weights = |lab: &DrLab| -> Vec<u64> {
        shape(lab)["virtual_servers"][0]["real_servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["weight"].as_u64().unwrap())
            .collect()
    };

    // Written in place.
    lab.write_config(&with(&[(0, 3), (1, 1)])).unwrap();
    let took = wait_log(&lab, "reload 1 done");
    assert_eq!(weights(&lab), [3, 1]);
    // The same content again: no reload.
    lab.write_config(&with(&[(0, 3), (1, 1)])).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!log(&lab).contains("reload 2"), "{}", log(&lab));
    // Replaced by a rename, as editors and config managers do.
    let tmp = lab
        .lab
        .write("xvs.yaml.new", with(&[(0, 1), (1, 2)]))
        .unwrap();
    std::fs::rename(&tmp, &cfg).unwrap();
    wait_log(&lab, "reload 2 done");
    assert_eq!(weights(&lab), [1, 2]);
    // An invalid file: refused, the running config stays.
    lab.write_config(&with(&[(0, 1), (1, 2)]).replace("weight: 2", "weight: two"))
        .unwrap();
    wait_log(&lab, "reload failed");
    assert!(log(&lab).contains("xvs.yaml:"), "{}", log(&lab));
    assert_eq!(weights(&lab), [1, 2]);
    eprintln!(
        "file watch: reloaded {:.2} s after the write",
        took.as_secs_f64()
    );
    let out = lab.stop_clean().unwrap();
    assert!(out.contains("reloads: 2 done, 1 failed"), "{out}");
}

/// A director whose configuration is generated: 18 reloads 150 ms apart, each bringing
/// 1000 real servers it never saw (on a network it has no route to: nothing is sent to them), then
/// a reload keeping one lab real server and adding a UDP service. Every reload must
/// answer done and the last must take effect: the ids of real servers that left are
/// reused (there are 16384), and a reload that could not apply would say so.
#[test]
fn thousands_of_new_real_servers_then_a_reload_still_takes_effect() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    lab.start_udp_echo(5353).unwrap();
    let three = [(0, 1), (1, 1), (2, 1)];
    let cfg = lab.write_config(&yaml("rr", &three, false)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let t0 = Instant::now();
    for round in 0..18u32 {
        let mut y = yaml("rr", &three, false);
        for i in 0..1000u32 {
            y += &format!(
                "      - {{ address: 10.{}.{}.{} }}\n",
                100 + round,
                i / 250,
                i % 250 + 1
            );
        }
        lab.write_config(&y).unwrap();
        let out = lab.lab.sh("lb", &format!("{bin} reload")).unwrap();
        assert!(out.contains("done"), "round {round}: {out}");
        // A generator's pace, not a loop's: a retired id is free again after a second.
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    eprintln!("18 reloads of 1000 new real servers: {:?}", t0.elapsed());
    lab.write_config(&yaml("rr", &[(0, 1)], true)).unwrap();
    let out = lab.lab.sh("lb", &format!("{bin} reload")).unwrap();
    assert!(out.contains("done"), "{out}");
    let t = DrLab::tally(&lab.http_gets(20, "/").unwrap());
    assert_eq!(t.get("rs1"), Some(&20), "only the one kept: {t:?}");
    let answers = lab.udp_queries(5353, 20).unwrap();
    let answered = answers.iter().filter(|a| *a != "timeout").count();
    assert_eq!(answered, 20, "the new service answers: {answers:?}");
    assert!(!log(&lab).contains("exceed the limit"), "{}", log(&lab));

    // A file over the steering map's size: refused with the reason, nothing changed.
    let mut y = yaml("rr", &[(1, 1), (2, 1)], false);
    for i in 0..4097u32 {
        y += &format!(
            "  - {{ name: x{i}, address: 10.200.{}.{}, port: 80, protocol: tcp, real_servers: [{{ address: {} }}] }}\n",
            i / 250,
            i % 250 + 1,
            rs_addr(1)
        );
    }
    lab.write_config(&y).unwrap();
    let err = lab.lab.sh("lb", &format!("{bin} reload")).unwrap_err();
    assert!(
        format!("{err:#}").contains("4098 IPv4 services (address, port, protocol): at most 4096"),
        "{err:#}"
    );
    let t = DrLab::tally(&lab.http_gets(10, "/").unwrap());
    assert_eq!(t.get("rs1"), Some(&10), "unchanged: {t:?}");
}

/// A second `xvs run` on the interface a running xvs serves is refused, names the running
/// one's pid, and changes nothing: the first keeps its program, its control socket and
/// its traffic.
#[test]
fn a_second_run_on_a_served_interface_is_refused() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab
        .write_config(&yaml("rr", &[(0, 1), (1, 1), (2, 1)], false))
        .unwrap();
    lab.start_xvs(&cfg).unwrap();
    let pid = lab.lab.proc("xvs").expect("xvs runs").pid();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let out = lab
        .lab
        .sh_output("lb", &format!("timeout 20 {bin} run -c {}", cfg.display()))
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second run exits: {err}");
    assert!(
        err.contains(&format!("is already served by xvs (pid {pid})")),
        "{err}"
    );
    assert!(lab.director_has_xdp().unwrap());
    let t = DrLab::tally(&lab.http_gets(6, "/").unwrap());
    assert_eq!(t.get("FAIL"), None, "{t:?}");
    assert_eq!(status_json(&lab)["virtual_servers"][0]["name"], "web");
    let (status, _) = lab.stop_xvs().unwrap();
    assert!(status.success());
    assert!(
        !lab.director_has_xdp().unwrap(),
        "the first detached its own"
    );
}
