//! `xvs drain` / `xvs undrain` end to end: a real server drained while a download runs
//! through it takes no new connection, the download finishes intact, the drain shows in
//! `xvs status` and `/metrics`, survives a reload, and ends with `undrain`.

use std::time::Duration;

use xvs_lab::dr::{self, DrLab, VIP};

/// `xvs ARGS` on the director.
fn xvs(lab: &DrLab, args: &str) -> std::process::Output {
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    lab.lab.sh_output("lb", &format!("{bin} {args}")).unwrap()
}

#[test]
fn a_drained_real_server_finishes_its_connections_and_takes_no_new_one() {
    let mut lab = DrLab::build(3, 1).expect("build the lab");
    lab.start_web().expect("start nginx");
    let cfg = lab.write_config(&dr::config(&[1, 1, 1], None)).unwrap();
    lab.start_xvs(&cfg).expect("start xvs");

    // A 20 MiB download at 2 MiB/s: about ten seconds on one real server.
    let dir = lab.lab.dir.display().to_string();
    let script = format!(
        "curl -s -m 60 --limit-rate 2M -o {dir}/got.bin http://{VIP}/big.bin && sha256sum {dir}/got.bin {dir}/big.bin"
    );
    lab.lab.spawn("cl", "dl", &["sh", "-c", &script]).unwrap();
    // Which real server has it: the one ESTABLISHED flow.
    let mut rs = None;
    for _ in 0..50 {
        let c = String::from_utf8_lossy(&xvs(&lab, "status --connections").stdout).into_owned();
        rs = c
            .lines()
            .find(|l| l.starts_with("TCP ") && l.contains("ESTABLISHED"))
            .and_then(|l| l.split_whitespace().nth(5).map(str::to_string));
        if rs.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rs = rs.expect("the download's flow in `status --connections`");
    let addr = rs.trim_end_matches(":80").to_string();
    let i = (0..3)
        .find(|&i| dr::rs_addr(i) == addr)
        .expect("a lab real server");

    let out = xvs(&lab, &format!("drain {rs} --virtual web"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains(&format!(
            "{rs} of web: drained: no new connections; 1 active"
        )),
        "{said}"
    );
    // Again: nothing changes, and it says so.
    let again = String::from_utf8_lossy(&xvs(&lab, &format!("drain {addr}")).stdout).into_owned();
    assert!(again.contains("already drained"), "{again}");

    let answers = lab.http_gets(30, "/").unwrap();
    let tally = DrLab::tally(&answers);
    assert!(!tally.contains_key("FAIL"), "{tally:?}");
    assert!(
        !tally.contains_key(&dr::rs_name(i)),
        "drained, yet served: {tally:?}"
    );
    assert_eq!(tally.values().sum::<usize>(), 30);

    let status = String::from_utf8_lossy(&xvs(&lab, "status").stdout).into_owned();
    let line = status
        .lines()
        .find(|l| l.contains(&format!("-> {rs} ")))
        .unwrap_or_else(|| panic!("{status}"));
    // As ipvsadm shows a drained real server (weight 0); the JSON says why.
    assert!(line.contains("Route   0      "), "{status}");
    let m = xvs_lab::metrics::scrape(&lab.lab, "lb").unwrap();
    let key =
        |r: &str| format!("xvs_real_server_drained{{virtual_server=\"web\",real_server=\"{r}\"}}");
    assert_eq!(m.get(&key(&rs)), Some(&1.0), "{m:?}");
    assert_eq!(
        m.get(&key(&format!("{}:80", dr::rs_addr((i + 1) % 3)))),
        Some(&0.0)
    );

    // A reload keeps the drain.
    let out = xvs(&lab, "reload");
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&xvs(&lab, "status --json").stdout).expect("status --json");
    let drained: Vec<&serde_json::Value> = json["virtual_servers"][0]["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["drained"] == true)
        .collect();
    assert_eq!(drained.len(), 1, "{json}");
    assert_eq!(drained[0]["address"], addr.as_str(), "{json}");
    assert_eq!(drained[0]["weight"], 0, "{json}");

    // The download it had finishes, intact.
    let dl = lab.lab.proc("dl").unwrap();
    assert!(
        dl.wait(Duration::from_secs(60))
            .is_some_and(|s| s.success()),
        "{}",
        dl.output()
    );
    let sums: Vec<String> = dl
        .output()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(sums.len() == 2 && sums[0] == sums[1], "{sums:?}");
    let done = String::from_utf8_lossy(&xvs(&lab, &format!("drain {rs}")).stdout).into_owned();
    assert!(
        done.contains("0 active"),
        "free once its download ended: {done}"
    );

    // Undrained, it is scheduled again.
    let out = xvs(&lab, &format!("undrain {addr}"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("undrained: scheduled again"),
        "{out:?}"
    );
    let tally = DrLab::tally(&lab.http_gets(30, "/").unwrap());
    assert_eq!(tally.get(&dr::rs_name(i)), Some(&10), "{tally:?}");

    // What names nothing is refused, and says what to do.
    for (args, says) in [
        ("drain 10.0.0.99", "is no real server"),
        (
            "drain 10.0.0.11 --virtual nope",
            "no virtual server \"nope\"",
        ),
        ("undrain not-an-address", "is no IPv4 address"),
    ] {
        let out = xvs(&lab, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args}: {err}");
    }
    lab.stop_clean().unwrap();
}
