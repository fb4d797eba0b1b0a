//! `xvs import-keepalived` end to end: a keepalived.conf as the seeds write them (DR, wrr
//! weights 3:2:1, TCP_CHECK) for this lab's addresses, converted on the director and run
//! as it comes out: the split and the health check behave as keepalived's would.

use std::time::{Duration, Instant};

use xvs_tests::dr::DrLab;

const KEEPALIVED_CONF: &str = "! keepalived.conf for the lab
global_defs {
   router_id LAB_DIRECTOR
}

virtual_server 10.0.0.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP

    real_server 10.0.0.11 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
    real_server 10.0.0.12 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
    real_server 10.0.0.13 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
}
";

#[test]
fn a_converted_keepalived_conf_runs() {
    let mut lab = DrLab::build(3, 1).unwrap();
    lab.start_web().unwrap();
    let conf = lab.lab.write("keepalived.conf", KEEPALIVED_CONF).unwrap();
    let yaml = lab.lab.dir.join("xvs.yaml");
    let bin = xvs_tests::tools::xvs_bin().unwrap().display().to_string();
    let out = lab
        .lab
        .sh_output(
            "lb",
            &format!(
                "{bin} import-keepalived --interface eth0 {} > {}",
                conf.display(),
                yaml.display()
            ),
        )
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("0 statement(s) not converted"), "{err}");
    lab.start_xvs(&yaml).unwrap();

    let t = DrLab::tally(&lab.http_gets(60, "/").unwrap());
    assert_eq!(
        (t.get("rs1"), t.get("rs2"), t.get("rs3")),
        (Some(&30), Some(&20), Some(&10)),
        "wrr 3:2:1 as keepalived configured it: {t:?}"
    );

    // The converted TCP_CHECK takes a dead real server out of the pool.
    lab.stop_web(1);
    let t0 = Instant::now();
    let log =
        |lab: &DrLab| std::fs::read_to_string(lab.lab.dir.join("xvs.log")).unwrap_or_default();
    while !log(&lab).contains("10.0.0.12:80 of 10.0.0.100:80/tcp down") {
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "rs2 never declared down:\n{}",
            log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = DrLab::tally(&lab.http_gets(40, "/").unwrap());
    assert_eq!(t.get("rs2"), None, "{t:?}");
    assert_eq!(t.get("FAIL"), None, "{t:?}");
    assert_eq!(
        t.get("rs1").unwrap_or(&0) + t.get("rs3").unwrap_or(&0),
        40,
        "{t:?}"
    );
    lab.stop_clean().unwrap();
}
