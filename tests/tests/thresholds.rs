//! Connection thresholds end to end (keepalived's `uthreshold`/`lthreshold`, `ipvsadm
//! -x/-y`): a real server holding `uthreshold` connections takes no new one while they
//! run, shows as overloaded in `xvs status` and `/metrics`, and is scheduled again once
//! its connections are gone below `lthreshold`.

use std::time::{Duration, Instant};

use xvs_lab::dr::{self, DrLab, VIP};

/// Waits until `/metrics` has `key` at `value`.
fn wait_metric(lab: &DrLab, key: &str, value: f64, timeout: Duration) {
    let t0 = Instant::now();
    loop {
        let m = xvs_lab::metrics::scrape(&lab.lab, "lb").unwrap();
        if m.get(key) == Some(&value) {
            return;
        }
        assert!(t0.elapsed() < timeout, "{key} never {value}: {m:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_real_server_at_its_uthreshold_takes_no_new_connection_until_below_lthreshold() {
    let mut lab = DrLab::build(2, 1).expect("build the lab");
    lab.start_web().expect("start nginx");
    let rs0 = dr::rs_addr(0);
    // Short TIME_WAIT and CLOSE: the ended downloads leave the count within seconds.
    let yaml = dr::config(&[1, 1], None).replacen(
        &format!("{{ address: {rs0}, port: 80, weight: 1 }}"),
        &format!("{{ address: {rs0}, port: 80, weight: 1, uthreshold: 2, lthreshold: 1 }}"),
        1,
    ) + "timeouts: { time_wait: 1, close: 1, tcpfin: 1, close_wait: 1, last_ack: 1 }\n";
    assert!(yaml.contains("uthreshold: 2"), "{yaml}");
    let cfg = lab.write_config(&yaml).unwrap();
    lab.start_xvs(&cfg).expect("start xvs");
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();

    // Four slow downloads, wrr 1:1: two on each real server.
    let dir = lab.lab.dir.display().to_string();
    for i in 0..4 {
        let script =
            format!("exec curl -s -m 30 --limit-rate 100k -o {dir}/dl{i}.bin http://{VIP}/big.bin");
        lab.lab
            .spawn("cl", &format!("dl{i}"), &["sh", "-c", &script])
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    let key =
        format!("xvs_real_server_overloaded{{virtual_server=\"web\",real_server=\"{rs0}:80\"}}");
    wait_metric(&lab, &key, 1.0, Duration::from_secs(5));
    let status = lab.lab.sh("lb", &format!("{bin} status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.contains(&format!("-> {rs0}:80 ")))
        .unwrap_or_else(|| panic!("{status}"));
    // As ipvsadm shows it (weight 0); the JSON says why.
    assert!(line.contains("Route   0      "), "{status}");
    let json = lab.lab.sh("lb", &format!("{bin} status --json")).unwrap();
    assert!(json.contains("\"overloaded\": true"), "{json}");
    assert!(line.contains(" 2 "), "its two downloads active: {status}");
    // Overloaded: every new connection goes to the other one.
    let t = DrLab::tally(&lab.http_gets(10, "/").unwrap());
    assert_eq!(t.get(&dr::rs_name(1)), Some(&10), "{t:?}");

    // The downloads end (killed); their flows expire within the short timeouts; below
    // lthreshold it is scheduled again.
    for i in 0..4 {
        lab.lab.stop(&format!("dl{i}"));
    }
    wait_metric(&lab, &key, 0.0, Duration::from_secs(20));
    let t = DrLab::tally(&lab.http_gets(10, "/").unwrap());
    // Scheduled again (its share stays under half: the requests' own TIME_WAIT flows
    // count too, as in IPVS, and may take it back to its uthreshold).
    assert!(
        t.get(&dr::rs_name(0)).is_some_and(|&n| n >= 1),
        "scheduled again: {t:?}"
    );
    assert_eq!(t.values().sum::<usize>(), 10);
    assert!(!t.contains_key("FAIL"), "{t:?}");
    let out = lab.stop_clean().unwrap();
    assert!(
        out.contains("overloaded: it reached its uthreshold"),
        "{out}"
    );
    assert!(
        out.contains("below its lthreshold: scheduled again"),
        "{out}"
    );
}
