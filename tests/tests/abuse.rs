//! Abusive local clients of `/metrics` and the control socket: idle connections, huge
//! requests, more clients than are served, a client that trickles a byte at a time. Each
//! gets a bounded answer in bounded time, xvs's memory stays flat, and the other clients
//! (a scrape, `xvs status`) are served meanwhile.

use xvs_lab::dr::{self, DrLab};

#[test]
fn slow_huge_and_many_clients_are_bounded() {
    let mut lab = DrLab::build(1, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&dr::config(&[1], None)).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let pid = lab.lab.proc("xvs").unwrap().pid();
    let script = lab
        .lab
        .write("abuse_client.py", include_str!("../src/abuse_client.py"))
        .unwrap();
    let before = xvs_lab::tools::proc_status(pid, "VmRSS:");
    let out = lab
        .lab
        .sh("lb", &format!("timeout 60 python3 {} 40", script.display()))
        .unwrap();
    let after = xvs_lab::tools::proc_status(pid, "VmRSS:");
    eprintln!("{out}xvs resident memory: {before} KiB before, {after} KiB after");
    let get = |name: &str| -> Vec<String> {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
            .split(' ')
            .map(str::to_string)
            .collect()
    };
    // 40 idle connections on each socket do not keep others waiting.
    let s = get("scrape_beside_idle");
    assert_eq!(s[1], "HTTP/1.1_200_OK", "{out}");
    assert!(s[0].parse::<f64>().unwrap() < 2.0, "{out}");
    let s = get("status_beside_idle");
    assert_eq!(s[1], "ok", "{out}");
    assert!(s[0].parse::<f64>().unwrap() < 2.0, "{out}");
    // Huge requests are refused, not buffered.
    assert_eq!(
        get("huge_request")[0],
        "HTTP/1.1_431_Request_Header_Fields_Too_Large"
    );
    assert_eq!(get("huge_command")[0], "error", "{out}");
    assert!(
        get("huge_command")[1].starts_with("a_command_is_at_most"),
        "{out}"
    );
    // 40 idle + 100 more: past 64 at once, told 503 straight away.
    let busy: usize = get("over_limit_503")[0].parse().unwrap();
    assert!(busy >= 100 - 64 + 40 - 10, "{busy} answered 503:\n{out}");
    assert_eq!(get("scrape_after")[1], "HTTP/1.1_200_OK", "{out}");
    // One address holds 8 at most: the other 4 of its 12 are told 503, and a scrape
    // from another address is served meanwhile.
    let one = get("per_address_503");
    assert_eq!(one[0], "4", "{out}");
    assert_eq!(one[1], "HTTP/1.1_200_OK", "{out}");
    // The trickling client is hung up on within the client timeout (10 s).
    let cut = get("slow_client_cut")[0].clone();
    let cut: f64 = cut.parse().unwrap_or_else(|_| panic!("never cut:\n{out}"));
    assert!((9.0..13.0).contains(&cut), "cut after {cut} s");
    assert!(
        after < before + 16 * 1024,
        "resident memory grew from {before} to {after} KiB"
    );
    lab.stop_clean().unwrap();
}
