//! E-mail alerts end to end: a director with `email_alerts` (VRRP and checker alerts on)
//! and an SMTP sink on the client's side. It becomes VRRP master, a real server's web
//! server stops and starts again: a message for each reaches the sink, with keepalived's
//! subjects, through the whole SMTP dialogue (and one for the BACKUP state it starts in). A relay that is not there costs nothing:
//! the alerts fail (logged, counted) while the director forwards as before.

use std::time::{Duration, Instant};

use xvs_lab::dr::{self, DrLab, CLIENT, VIP};

const SINK_PORT: u16 = 2525;

fn config(relay: &str) -> String {
    dr::config(&[1, 1], None).replace(
        "    real_servers:\n",
        "    health_check: { type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }\n    real_servers:\n",
    ) + &format!(
        "vrrp_instances:\n  - {{ name: VI_1, interface: eth0, state: MASTER, virtual_router_id: 51, priority: 150, version: 3, advert_int: 0.1, virtual_ipaddresses: [{VIP}] }}\n\
         email_alerts:\n  to: [ops@example.org, oncall@example.org]\n  from: xvs@lb.example.org\n  smtp_server: {relay}\n  smtp_port: {SINK_PORT}\n  connect_timeout: 2\n  router_id: lb1\n  vrrp: true\n"
    )
}

fn log(lab: &DrLab) -> String {
    std::fs::read_to_string(lab.lab.dir.join("xvs.log")).unwrap_or_default()
}

/// The messages the sink kept so far, in order.
fn mails(lab: &DrLab) -> Vec<String> {
    (1..)
        .map(|n| lab.lab.dir.join(format!("mail-{n}.txt")))
        .map_while(|p| std::fs::read_to_string(p).ok())
        .collect()
}

fn wait_mails(lab: &DrLab, n: usize, within: Duration) -> Vec<String> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        let m = mails(lab);
        if m.len() >= n {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    mails(lab)
}

#[test]
fn alerts_reach_the_relay_and_a_dead_relay_delays_nothing() {
    let mut lab = DrLab::build(2, 1).unwrap();
    // VRRP gives the VIP: the director does not hold it at first.
    lab.lab
        .sh("lb", &format!("ip addr del {VIP}/32 dev eth0"))
        .unwrap();
    lab.start_web().unwrap();
    let dir = lab.lab.dir.display().to_string();
    lab.lab
        .spawn(
            "cl",
            "smtp-sink",
            &[
                "/usr/bin/python3",
                &format!("{dir}/smtp_sink.py"),
                CLIENT,
                &SINK_PORT.to_string(),
                &dir,
                "60",
            ],
        )
        .unwrap()
        .wait_for_log("listening", Duration::from_secs(10))
        .unwrap();
    let cfg = lab.write_config(&config(CLIENT)).unwrap();
    lab.start_xvs(&cfg).unwrap();

    // BACKUP at start, MASTER after its Master_Down_Interval: as keepalived, a message
    // each.
    let m = wait_mails(&lab, 2, Duration::from_secs(10));
    assert_eq!(m.len(), 2, "{m:?}");
    for (i, state, body) in [
        (
            0,
            "BACKUP",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (1, "MASTER", "=> VRRP Instance is now owning VRRP VIPs <="),
    ] {
        let subject = format!("Subject: [lb1] VRRP Instance VI_1 - Entering {state} state\r\n");
        assert!(m[i].contains(&subject) && m[i].contains(body), "{}", m[i]);
    }
    assert!(m[0].starts_with("HELO "), "{}", m[0]);
    for line in [
        "MAIL FROM:<xvs@lb.example.org>",
        "RCPT TO:<ops@example.org>",
        "RCPT TO:<oncall@example.org>",
        "From: xvs@lb.example.org\r\n",
        "To: ops@example.org, oncall@example.org\r\n",
    ] {
        assert!(m[0].contains(line), "{line:?} in {}", m[0]);
    }

    // A real server out, and back.
    lab.stop_web(1);
    let m = wait_mails(&lab, 3, Duration::from_secs(10));
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(
        m[2].contains(&format!(
            "Subject: [lb1] Realserver [{}]:tcp:80 of virtual server [{VIP}]:tcp:80 - DOWN\r\n",
            dr::rs_addr(1)
        )),
        "{}",
        m[2]
    );
    lab.restart_web(1).unwrap();
    let m = wait_mails(&lab, 4, Duration::from_secs(10));
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(m[3].contains("- UP\r\n"), "{}", m[3]);

    // The relay is now an address no host answers (a reload moves it): each alert
    // waits out connect_timeout in the background, and forwarding never waits.
    lab.lab.stop("smtp-sink");
    lab.write_config(&config("10.0.0.77")).unwrap();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let out = lab.lab.sh("lb", &format!("{bin} reload")).unwrap();
    assert!(out.contains("done"), "{out}");
    lab.stop_web(0);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10)
        && !log(&lab).contains(&format!("{}:80 of web down", dr::rs_addr(0)))
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    let answers = lab.http_gets(10, "/").unwrap();
    assert!(answers.iter().all(|a| a == "rs2"), "{answers:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "requests waited: {:?}",
        t0.elapsed()
    );
    let count = |m: &std::collections::BTreeMap<String, f64>, r: &str| {
        m.get(&format!("xvs_email_alerts_total{{result=\"{r}\"}}"))
            .copied()
            .unwrap_or(0.0)
    };
    let t0 = Instant::now();
    let mut scrape = xvs_lab::metrics::scrape(&lab.lab, "lb").unwrap();
    while t0.elapsed() < Duration::from_secs(10) && count(&scrape, "failed") < 1.0 {
        std::thread::sleep(Duration::from_millis(200));
        scrape = xvs_lab::metrics::scrape(&lab.lab, "lb").unwrap();
    }
    assert!(
        count(&scrape, "failed") >= 1.0,
        "the failed alert counted: {scrape:?}"
    );
    assert_eq!(count(&scrape, "sent"), 4.0);
    let log = lab.stop_clean().unwrap();
    assert!(log.contains("not sent through"), "{log}");
}
