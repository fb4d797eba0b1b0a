//! FullNAT end to end: real servers on a subnet of their own behind a router (their
//! default route is the router, not the director); the director's requests reach them
//! from its local addresses, and the steering program turns their replies back into the
//! VIP's. Layout in `xvs_lab::fullnat`.

use std::collections::BTreeMap;
use std::time::Duration;

use xvs_lab::dr::DrLab;
use xvs_lab::fullnat::{self, LOCALS, VIP};

fn lab(weights: &[u32], ports: &str) -> DrLab {
    let mut lab = fullnat::build(weights.len()).expect("build the lab");
    lab.start_web().expect("start nginx");
    let path = lab
        .write_config(&fullnat::config(8080, weights, ports))
        .unwrap();
    lab.start_xvs(&path).expect("start xvs");
    lab
}

fn metric(lab: &DrLab, line_start: &str) -> u64 {
    let m = lab
        .lab
        .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    m.lines()
        .filter(|l| l.starts_with(line_start))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// wrr 3:2:1 over 60 requests: exactly 30, 20 and 10; each real server saw the
/// director's local addresses (both of them), never the client; the client saw only
/// VIP:8080; a 20 MB download arrives intact.
#[test]
fn requests_leave_from_the_local_addresses_and_replies_from_the_vip() {
    let mut lab = lab(&[3, 2, 1], "1024-65535");
    let tally = DrLab::tally(&lab.http_gets(60, ":8080/").unwrap());
    assert_eq!(
        (tally.get("rs1"), tally.get("rs2"), tally.get("rs3")),
        (Some(&30), Some(&20), Some(&10)),
        "{tally:?}"
    );
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..3 {
        for line in lab.access_log(i) {
            let src = line.split_whitespace().next().unwrap().to_string();
            assert!(LOCALS.contains(&src.as_str()), "rs{}: {line}", i + 1);
            *sources.entry(src).or_default() += 1;
        }
    }
    assert_eq!(
        sources.len(),
        2,
        "both local addresses in turn: {sources:?}"
    );
    let peer = lab
        .lab
        .sh(
            "cl",
            &format!(
                "curl -s -m 5 -o /dev/null -w '%{{remote_ip}}:%{{remote_port}}' http://{VIP}:8080/"
            ),
        )
        .unwrap();
    assert_eq!(peer, format!("{VIP}:8080"));

    let dir = lab.lab.dir.display().to_string();
    let out = lab
        .lab
        .sh("cl", &format!("curl -s -m 60 -o {dir}/got.bin http://{VIP}:8080/big.bin && sha256sum {dir}/got.bin {dir}/big.bin"))
        .unwrap();
    let sums: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(sums.len(), 2, "{out}");
    assert_eq!(sums[0], sums[1], "20 MB through FullNAT, intact");

    assert!(metric(&lab, "xvs_xdp_packets_total{outcome=\"fnat_reply") > 1000);
    assert_eq!(
        metric(&lab, "xvs_drops_total{reason=\"fullnat_no_port\"}"),
        0
    );
    lab.stop_clean().unwrap();
}

/// A pool of 4 pairs (2 addresses × 2 ports) and 6 slow downloads at once: 4 are
/// served, the other connections' SYNs are dropped and counted `fullnat_no_port`, the 4
/// arrive intact; once they are done the pool serves new connections again.
#[test]
fn an_exhausted_pool_drops_new_connections_and_keeps_the_established() {
    let mut lab = lab(&[1, 1, 1], "3000-3001");
    let body = lab.put_slow("f.bin", 1_000_000).unwrap();
    let dir = lab.lab.dir.display().to_string();
    // Six at once, each with its own output; a refused one gives up after 3 s.
    let script = (0..6)
        .map(|i| format!("curl -s --connect-timeout 3 -m 20 -o {dir}/slow{i}.bin http://{VIP}:8080/slow/f.bin & sleep 0.2"))
        .collect::<Vec<_>>()
        .join("; ");
    lab.lab
        .spawn("cl", "slow", &["sh", "-c", &format!("{script}; wait")])
        .unwrap();
    // While they run: every pair in use, as the status and the metrics say.
    std::thread::sleep(Duration::from_millis(1500));
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let cfg = lab.lab.dir.join("xvs.yaml").display().to_string();
    let status = lab
        .lab
        .sh("lb", &format!("{bin} status --config {cfg}"))
        .unwrap();
    for a in LOCALS {
        assert!(
            status.contains(&format!("  local {a}: 2 of 2 ports in use")),
            "{status}"
        );
    }
    assert_eq!(metric(&lab, "xvs_fullnat_local_ports_in_use{"), 4);
    assert_eq!(metric(&lab, "xvs_fullnat_local_ports{"), 4);
    let p = lab.lab.proc("slow").unwrap();
    assert!(p.wait(Duration::from_secs(30)).is_some());
    let intact = (0..6)
        .filter(|i| std::fs::read(format!("{dir}/slow{i}.bin")).is_ok_and(|b| b == body))
        .count();
    assert_eq!(intact, 4, "the pool's four pairs");
    assert!(
        metric(&lab, "xvs_drops_total{reason=\"fullnat_no_port\"}") >= 2,
        "the others' SYNs counted"
    );
    // FIN and TIME_WAIT time out after 2 s, the sweep passes every 2 s.
    std::thread::sleep(Duration::from_secs(5));
    let tally = DrLab::tally(&lab.http_gets(6, ":8080/").unwrap());
    assert_eq!(tally.get("FAIL"), None, "served again: {tally:?}");
    lab.stop_clean().unwrap();
}

/// `xvs realserver up --mode fullnat` on every real server: nginx logs the client
/// itself; `down` takes the programs off and the local addresses are back. The client
/// still sees only VIP:8080, and a download is intact through the rewrites both ways.
#[test]
fn the_real_servers_program_gives_applications_the_client() {
    let mut lab = lab(&[1, 1, 1], "1024-65535");
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let locals = LOCALS.join(",");
    for i in 0..3 {
        let out = lab
            .lab
            .sh(
                &format!("rs{}", i + 1),
                &format!("{bin} realserver up --mode fullnat --dev eth0 --local {locals}"),
            )
            .unwrap();
        assert!(
            out.contains("attached the FullNAT programs to eth0"),
            "{out}"
        );
    }
    let tally = DrLab::tally(&lab.http_gets(30, ":8080/").unwrap());
    assert_eq!(
        tally.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{tally:?}"
    );
    for i in 0..3 {
        let log = lab.access_log(i);
        assert!(!log.is_empty());
        assert!(
            log.iter()
                .all(|l| l.starts_with(&format!("{} / 200", fullnat::CLIENT))),
            "rs{}: {log:?}",
            i + 1
        );
    }
    let dir = lab.lab.dir.display().to_string();
    let out = lab
        .lab
        .sh("cl", &format!("curl -s -m 60 -o {dir}/got.bin http://{VIP}:8080/big.bin && sha256sum {dir}/got.bin {dir}/big.bin"))
        .unwrap();
    let sums: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(sums[0], sums[1], "20 MB, intact");

    for i in 0..3 {
        let rs = format!("rs{}", i + 1);
        let out = lab
            .lab
            .sh(
                &rs,
                &format!("{bin} realserver down --mode fullnat --dev eth0"),
            )
            .unwrap();
        assert!(
            out.contains("detached the FullNAT programs from eth0"),
            "{out}"
        );
        let tc = lab
            .lab
            .sh(
                &rs,
                "tc filter show dev eth0 ingress; tc filter show dev eth0 egress",
            )
            .unwrap();
        assert!(!tc.contains("xvs_toa"), "{tc}");
        std::fs::write(lab.lab.dir.join(&rs).join("access.log"), "").unwrap();
    }
    lab.http_gets(3, ":8080/").unwrap();
    for i in 0..3 {
        for line in lab.access_log(i) {
            let src = line.split_whitespace().next().unwrap().to_string();
            assert!(LOCALS.contains(&src.as_str()), "after down: {line}");
        }
    }
    lab.stop_clean().unwrap();
}

/// Waits (5 s at most) until the backup installed `n` entries from its peer.
fn wait_installed(lab: &DrLab, cfg: &std::path::Path, n: usize) {
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let t = std::time::Instant::now();
    loop {
        let out = lab
            .lab
            .sh(
                "lb2",
                &format!("{bin} status --sync --json --config {}", cfg.display()),
            )
            .unwrap();
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        if s["entries"]["installed"].as_u64().unwrap_or(0) >= n as u64 {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A VRRP pair with connection sync: 20 paced downloads through the master, which
/// crashes (kill -9, link down); the backup takes the VIP and the local addresses, and
/// carries every download on from the same local pairs (the real servers never notice).
/// `XVS_LAB_NO_SYNC=1` runs it without sync, for the comparison.
#[test]
fn a_vrrp_pair_with_sync_carries_the_downloads_across_the_masters_crash() {
    const DOWNLOADS: usize = 20;
    let sync = std::env::var_os("XVS_LAB_NO_SYNC").is_none();
    let mut lab = fullnat::build_pair(3).expect("build the lab");
    lab.start_web().unwrap();
    // 3 MB at nginx's 500 kB/s: 6 s, the crash 1 s in.
    let want = lab.put_slow("f.bin", 3_000_000).unwrap();
    let key = sync.then_some("fullnat-lab-sync-key-0123456789");
    let c1 = lab
        .lab
        .write("xvs1.yaml", fullnat::pair_config("MASTER", 150, key))
        .unwrap();
    let c2 = lab
        .lab
        .write("xvs2.yaml", fullnat::pair_config("BACKUP", 100, key))
        .unwrap();
    lab.start_xvs_on("lb", "xvs", &c1).unwrap();
    lab.start_xvs_on("lb2", "xvs2", &c2).unwrap();
    let holds = |lab: &DrLab, host: &str| {
        lab.lab
            .sh(host, "ip -4 -o addr show dev eth0")
            .unwrap()
            .contains(&format!("{VIP}/"))
    };
    let t = std::time::Instant::now();
    while !holds(&lab, "lb") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "lb never took the VIP"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let dir = lab.lab.dir.join("dl");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let script = format!(
        "for i in $(seq {DOWNLOADS}); do (curl -s -m 30 --speed-time 4 --speed-limit 1000 -o {d}/$i http://{VIP}/slow/f.bin) & sleep 0.02; done; wait"
    );
    lab.lab.spawn("cl", "dl", &["sh", "-c", &script]).unwrap();
    // Every download under way, and the backup told of each.
    let t = std::time::Instant::now();
    loop {
        let n: usize = lab
            .lab
            .sh(
                "cl",
                &format!("ss -Htn state established dst {VIP}:80 | wc -l"),
            )
            .unwrap()
            .trim()
            .parse()
            .unwrap_or(0);
        if n >= DOWNLOADS {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{n} connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    if sync {
        wait_installed(&lab, &c2, DOWNLOADS);
    }
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        lab.lab.proc("dl").unwrap().running(),
        "the downloads outlast the crash"
    );
    lab.crash("lb", "xvs").unwrap();
    let t = std::time::Instant::now();
    while !holds(&lab, "lb2") {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "lb2 never took the VIP"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "lb2 took the VIP and the local addresses {:?} after the crash",
        t.elapsed()
    );
    let p = lab.lab.proc("dl").unwrap();
    assert!(
        p.wait(Duration::from_secs(60)).is_some(),
        "downloads never ended"
    );
    let intact = (1..=DOWNLOADS)
        .filter(|i| std::fs::read(dir.join(i.to_string())).is_ok_and(|b| b == want))
        .count();
    eprintln!("sync {sync}: {intact}/{DOWNLOADS} downloads intact across the crash");
    assert_eq!(intact, DOWNLOADS, "every download across the crash");
    let m = lab
        .lab
        .sh("lb2", "curl -s -m 5 http://127.0.0.1:9147/metrics")
        .unwrap();
    let replies: u64 = m
        .lines()
        .filter(|l| l.starts_with("xvs_xdp_packets_total{outcome=\"fnat_reply"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        replies > 100,
        "the backup translated the replies: {replies}"
    );
    lab.lab.stop("xvs2");
}

/// 1000 connections open at once over the two local addresses: each answered, the
/// pairs spread over both addresses while they are held.
#[test]
fn a_thousand_concurrent_connections_over_two_local_addresses() {
    let mut lab = lab(&[1, 1, 1], "1024-65535");
    let script = format!(
        r#"
import socket, sys
socks = []
for i in range(1000):
    s = socket.create_connection(("{VIP}", 8080), timeout=10)
    socks.append(s)
print("open", len(socks), flush=True)
sys.stdin.readline()
ok = 0
for s in socks:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
for s in socks:
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    ok += data.startswith(b"HTTP/1.1 200")
    s.close()
print("answered", ok, flush=True)
"#
    );
    let path = lab.lab.write("thousand.py", script).unwrap();
    let fifo = lab.lab.dir.join("go");
    lab.lab
        .sh("cl", &format!("mkfifo {}", fifo.display()))
        .unwrap();
    let cmd = format!(
        "ulimit -n 4096; exec python3 -u {} < {}",
        path.display(),
        fifo.display()
    );
    lab.lab
        .spawn("cl", "thousand", &["sh", "-c", &cmd])
        .unwrap();
    // Writers to the fifo: one held open until the connections are all up.
    let hold = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    lab.lab
        .proc("thousand")
        .unwrap()
        .wait_for_log("open 1000", Duration::from_secs(60))
        .unwrap();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let cfg = lab.lab.dir.join("xvs.yaml").display().to_string();
    let json = lab
        .lab
        .sh("lb", &format!("{bin} status --json --config {cfg}"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let held: Vec<u64> = v["virtual_servers"][0]["local_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ports_in_use"].as_u64().unwrap())
        .collect();
    assert_eq!(held.iter().sum::<u64>(), 1000, "{held:?}");
    assert!(held.iter().all(|n| *n >= 400), "both addresses: {held:?}");
    // Each connection with the local pair it leaves from.
    let conns = lab
        .lab
        .sh("lb", &format!("{bin} status --connections --config {cfg}"))
        .unwrap();
    let paired = conns
        .lines()
        .filter(|l| LOCALS.iter().any(|a| l.contains(&format!(" from {a}:"))))
        .count();
    assert_eq!(paired, 1000, "{conns}");
    {
        use std::io::Write;
        let mut hold = hold;
        hold.write_all(b"go\n").unwrap();
    }
    lab.lab
        .proc("thousand")
        .unwrap()
        .wait_for_log("answered 1000", Duration::from_secs(60))
        .unwrap();
    lab.stop_clean().unwrap();
}

/// IPv6: requests from the local address to the real servers behind the router, the
/// replies from [VIP6]:8080 to the client; with the real servers' program, nginx logs
/// the client's IPv6 address.
#[test]
fn ipv6_end_to_end_with_the_client_restored() {
    let mut lab = fullnat::build(2).expect("build the lab");
    fullnat::add_ipv6(&lab).unwrap();
    lab.start_web().unwrap();
    let path = lab.write_config(&fullnat::config6(8080, 2)).unwrap();
    lab.start_xvs(&path).unwrap();
    let get = |lab: &DrLab, n: usize| {
        lab.lab
            .sh(
                "cl",
                &format!(
                    "for i in $(seq {n}); do curl -s -m 5 http://[{}]:8080/ || echo FAIL; done",
                    fullnat::VIP6
                ),
            )
            .unwrap()
    };
    let out = get(&lab, 10);
    let tally = DrLab::tally(&out.lines().map(str::to_string).collect::<Vec<_>>());
    assert_eq!(
        (tally.get("rs1"), tally.get("rs2")),
        (Some(&5), Some(&5)),
        "{tally:?}"
    );
    for i in 0..2 {
        assert!(
            lab.access_log(i)
                .iter()
                .all(|l| l.starts_with(&format!("{} ", fullnat::LOCAL6))),
            "{:?}",
            lab.access_log(i)
        );
    }
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    for i in 0..2 {
        let rs = format!("rs{}", i + 1);
        lab.lab
            .sh(
                &rs,
                &format!(
                    "{bin} realserver up --mode fullnat --dev eth0 --local {}",
                    fullnat::LOCAL6
                ),
            )
            .unwrap();
        std::fs::write(lab.lab.dir.join(&rs).join("access.log"), "").unwrap();
    }
    get(&lab, 4);
    for i in 0..2 {
        let log = lab.access_log(i);
        assert!(!log.is_empty());
        assert!(
            log.iter()
                .all(|l| l.starts_with(&format!("{} / 200", fullnat::CLIENT6))),
            "{log:?}"
        );
        lab.lab
            .sh(
                &format!("rs{}", i + 1),
                &format!("{bin} realserver down --mode fullnat --dev eth0"),
            )
            .unwrap();
    }
    lab.stop_clean().unwrap();
}

/// The path to the real servers is narrower than the client's (the router's inner link
/// at MTU 1400): the router's fragmentation-needed goes to the local address the
/// director's requests leave from, and the steering program sends it on to the client,
/// whose kernel lowers its path MTU. A 300 kB upload then arrives whole, which it could
/// not without the error (a path MTU black hole).
#[test]
fn a_fragmentation_needed_from_the_real_servers_path_reaches_the_client() {
    let mut lab = lab(&[1], "1024-65535");
    lab.lab.sh("rt", "ip link set eth1 mtu 1400").unwrap();
    let dir = lab.lab.dir.display().to_string();
    lab.lab
        .sh(
            "cl",
            &format!("head -c 300000 {dir}/big.bin > {dir}/up.bin"),
        )
        .unwrap();
    let code = lab
        .lab
        .sh(
            "cl",
            &format!("curl -s -m 20 -o /dev/null -w '%{{http_code}}' -T {dir}/up.bin http://{VIP}:8080/upload/up.bin"),
        )
        .unwrap();
    assert!(code == "201" || code == "204", "{code}");
    let want = lab
        .lab
        .sh("cl", &format!("sha256sum < {dir}/up.bin"))
        .unwrap();
    let got = lab
        .lab
        .sh("rs1", &format!("sha256sum < {dir}/rs1/www/upload/up.bin"))
        .unwrap();
    assert_eq!(got, want, "the upload, whole");
    assert!(metric(&lab, "xvs_xdp_packets_total{outcome=\"fnat_icmp\"}") >= 1);
    lab.stop_clean().unwrap();
}
