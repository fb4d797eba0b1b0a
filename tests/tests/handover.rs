//! A planned handover: `xvs run --takeover` while an xvs runs. The running one hands
//! over its state and exits; the new one is VRRP master from its first advert, so a
//! keepalived backup watching at `advert_int 0.1` never takes over; downloads under way
//! finish intact, the director's kernel sends no reset (no VIP packet reached it), and
//! new connections are served again after a short gap (measured and printed; the test
//! asserts the mechanism, not the time).

use std::time::Duration;

use xvs_lab::dr::{self, DrLab, VIP};

/// Bytes of each paced download: 3 MB at nginx's 500 kB/s, six seconds.
const DOWNLOAD: usize = 3 << 20;
const DOWNLOADS: usize = 6;

/// The lab's UDP service (rr, DR): the paced stream's.
const UDP_PORT: u16 = 5353;

fn xvs_config(fast_path: &str) -> String {
    dr::config(&[1, 1, 1], Some(UDP_PORT))
        + &format!("fast_path: {fast_path}\n")
        + &format!(
            "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: MASTER\n    virtual_router_id: 51\n    priority: 150\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddresses: [{VIP}]\n"
        )
}

fn keepalived_config() -> String {
    format!(
        "global_defs {{\n  router_id lb2\n  vrrp_version 3\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  advert_int 0.1\n  virtual_ipaddress {{\n    {VIP}/32\n  }}\n}}\n"
    )
}

/// The UDP stream is carried by the fast path, in XDP, across the takeover.
#[test]
fn a_takeover_keeps_downloads_and_the_vrrp_role() {
    takeover("auto");
}

/// Every flow is the workers': the UDP stream's longest gap is the workers' gap.
#[test]
fn a_takeover_with_the_fast_path_off_keeps_downloads() {
    takeover("off");
}

fn takeover(fast_path: &str) {
    let mut lab = DrLab::build_pair(3).expect("build the lab");
    lab.start_web().unwrap();
    lab.start_udp_echo(UDP_PORT).unwrap();
    let cfg = lab.write_config(&xvs_config(fast_path)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    lab.wait_vip("lb", Duration::from_secs(10), "xvs never became master");
    lab.lab
        .spawn_keepalived("lb2", &keepalived_config())
        .unwrap();
    lab.lab
        .proc("keepalived")
        .unwrap()
        .wait_for_log("Entering BACKUP STATE", Duration::from_secs(10))
        .unwrap();

    let dir = lab.lab.dir.display().to_string();
    let want = lab.put_slow("part.bin", DOWNLOAD).unwrap();
    let url = format!("http://{VIP}/slow/part.bin");
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
    lab.start_http_loop_paced(8.0, 0.01, 0.2).unwrap();
    // One established UDP flow, a datagram every 2 ms (the fast path carries it, when on).
    let stream = lab.lab.dir.join("udp_stream.py").display().to_string();
    lab.lab
        .spawn(
            "cl",
            "udp-stream",
            &[
                "python3",
                "-u",
                &stream,
                VIP,
                &UDP_PORT.to_string(),
                "0.002",
                "8",
            ],
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));

    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let path = cfg.display().to_string();
    // The director holds the VIP: a VIP packet its kernel got would be answered with a
    // reset. Counted before and after.
    let resets_before = resets(&lab);
    let began = now();
    lab.lab
        .spawn("lb", "xvs-new", &[&bin, "run", "--takeover", "-c", &path])
        .unwrap()
        .wait_for_log("xvs running", Duration::from_secs(20))
        .unwrap();
    let old = lab.lab.proc("xvs").unwrap();
    let status = old.wait(Duration::from_secs(10));
    let old_log = old.output();
    // 75: handed over (the unit counts it a success).
    assert_eq!(status.and_then(|s| s.code()), Some(75), "{old_log}");
    assert!(old_log.contains("handing over to a new xvs"), "{old_log}");
    for l in old_log
        .lines()
        .filter(|l| l.contains("handing over") || l.contains("handed over"))
    {
        eprintln!("old: {l}");
    }

    let mut intact = 0;
    for i in 0..DOWNLOADS {
        let p = lab.lab.proc(&format!("dl{i}")).unwrap();
        let status = p.wait(Duration::from_secs(40));
        let got = std::fs::read(format!("{dir}/dl{i}.bin")).unwrap_or_default();
        eprintln!("download {i}: {status:?}, {} bytes", got.len());
        intact += usize::from(got == want);
    }
    let results = lab.loop_results(Duration::from_secs(20)).unwrap();
    let udp = lab.lab.proc("udp-stream").unwrap();
    udp.wait(Duration::from_secs(20));
    let udp = udp.output();
    // The longest wait between two answered requests from just before the takeover on.
    let answered: Vec<f64> = results
        .iter()
        .filter(|(t, ok)| *ok && *t > began - 0.5)
        .map(|r| r.0)
        .collect();
    let gap = answered.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let failed = results.iter().filter(|r| !r.1).count();
    let log = lab.lab.proc("xvs-new").unwrap().output();
    let ka = lab.lab.proc("keepalived").unwrap().output();
    eprintln!(
        "fast path {fast_path}: {intact} of {DOWNLOADS} downloads intact across the takeover; \
         new connections: longest gap {gap:.3} s, {failed} of {} requests failed; one UDP \
         flow: {}\n{log}",
        results.len(),
        udp.trim()
    );
    assert!(udp.contains("answered"), "the UDP stream ran: {udp}");
    assert_eq!(intact, DOWNLOADS, "{log}");
    let resets = resets(&lab) - resets_before;
    eprintln!("TCP resets the director's kernel sent meanwhile: {resets}");
    assert_eq!(resets, 0, "no VIP packet reached the director's kernel");
    // The counter does see the kernel's resets: a connection to a closed port of the
    // director's own address gets one.
    let before = self::resets(&lab);
    let _ = lab.lab.sh(
        "cl",
        &format!("curl -s -m 2 http://{}:1/ || true", dr::DIRECTOR),
    );
    assert!(
        self::resets(&lab) > before,
        "nstat counts the director's resets"
    );
    assert!(log.contains("resuming as master"), "{log}");
    assert!(log.contains("recovering the flows"), "{log}");
    // Loaded before it asked, over the maps it then took over.
    assert!(!log.contains("loading the steering program again"), "{log}");
    // The fast path's entries are this configuration's, with the ids restored: no flow
    // of theirs passes through a worker.
    if fast_path == "auto" {
        assert!(log.contains("the fast path's entries carry on"), "{log}");
    }
    assert!(
        !ka.contains("Entering MASTER STATE"),
        "keepalived took over:\n{ka}"
    );
    assert!(lab.holds_vip("lb").unwrap(), "the VIP stayed");
    assert!(
        results.iter().rev().take(20).all(|r| r.1),
        "steady after the takeover"
    );
    lab.lab.stop("xvs-new");
}

/// TCP resets the director's kernel has sent (`nstat`'s TcpOutRsts, absolute).
fn resets(lab: &DrLab) -> u64 {
    let out = lab.lab.sh("lb", "nstat -asz TcpOutRsts").unwrap();
    out.lines()
        .find(|l| l.starts_with("TcpOutRsts"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no TcpOutRsts in {out}"))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A VRRP instance block for a lone director (no peer: master at once).
fn instances(list: &[(&str, u8, &str)]) -> String {
    let mut y = String::from("vrrp_instances:\n");
    for (name, vrid, vip) in list {
        y += &format!(
            "  - name: {name}\n    interface: eth0\n    state: MASTER\n    virtual_router_id: {vrid}\n    priority: 150\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddresses: [{vip}]\n"
        );
    }
    y
}

/// A takeover whose configuration drops an instance gives up the VIP the last process
/// left on the interface for it (no instance of the new one would ever remove it); the
/// kept instance's VIP stays.
#[test]
fn a_takeover_gives_up_the_vips_of_instances_the_new_configuration_drops() {
    const DROPPED: &str = "10.0.0.101";
    let mut lab = DrLab::build(1, 1).expect("build the lab");
    let both = dr::config(&[1], None) + &instances(&[("VI_1", 51, VIP), ("VI_2", 52, DROPPED)]);
    let one = dr::config(&[1], None) + &instances(&[("VI_1", 51, VIP)]);
    let cfg = lab.write_config(&both).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let holds = |lab: &DrLab, addr: &str| {
        lab.lab
            .sh("lb", "ip -4 -o addr show dev eth0")
            .unwrap()
            .contains(&format!("{addr}/32"))
    };
    let t0 = std::time::Instant::now();
    while !holds(&lab, DROPPED) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "VI_2 never became master"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let new_cfg = lab
        .lab
        .write("one.yaml", one)
        .unwrap()
        .display()
        .to_string();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    lab.lab
        .spawn(
            "lb",
            "xvs-new",
            &[&bin, "run", "--takeover", "-c", &new_cfg],
        )
        .unwrap()
        .wait_for_log("xvs running", Duration::from_secs(20))
        .unwrap();
    let status = lab.lab.proc("xvs").unwrap().wait(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(75));
    let log = lab.lab.proc("xvs-new").unwrap().output();
    assert!(
        log.contains(&format!("gave up {DROPPED}/32 on eth0")),
        "{log}"
    );
    assert!(
        !holds(&lab, DROPPED),
        "the dropped instance's VIP is gone:\n{log}"
    );
    assert!(holds(&lab, VIP), "the kept instance's VIP stays:\n{log}");
    lab.lab.stop("xvs-new");
}
