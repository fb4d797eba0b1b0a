//! A real Prometheus server scrapes xvs in a lab; after a known load, PromQL gives the
//! weighted split of connections per real server.

use std::time::{Duration, Instant};

use xvs_lab::dr::{self, DrLab};

/// Loopback of the director's namespace: nothing outside the lab is reached.
const PROMETHEUS: &str = "127.0.0.1:19090";
const REQUESTS: usize = 600;

/// `sum by (real_server)` of the connections counter, as (real server, count).
fn query(lab: &DrLab) -> Vec<(String, u64)> {
    let q = "sum by (real_server) (xvs_real_server_connections_total{virtual_server=\"web\"})";
    let Ok(out) = lab.lab.sh(
        "lb",
        &format!("curl -s -m 5 -G http://{PROMETHEUS}/api/v1/query --data-urlencode 'query={q}'"),
    ) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
        return Vec::new();
    };
    let mut split: Vec<(String, u64)> = v["data"]["result"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    let rs = r["metric"]["real_server"].as_str()?.to_string();
                    let n = r["value"][1].as_str()?.parse::<f64>().ok()?;
                    Some((rs, n as u64))
                })
                .collect()
        })
        .unwrap_or_default();
    split.sort();
    split
}

#[test]
fn promql_gives_the_weighted_split() {
    xvs_lab::tools::require(&["prometheus", "curl"]).unwrap();
    let weights = [3u64, 2, 1];
    let mut lab = DrLab::build(weights.len(), 1).expect("build the lab");
    lab.start_web().expect("start nginx");
    let cfg = lab.write_config(&dr::config(&[3, 2, 1], None)).unwrap();
    lab.start_xvs(&cfg).expect("start xvs");

    let prom_cfg = lab
        .lab
        .write(
            "prometheus.yml",
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: xvs\n    static_configs:\n      - targets: ['127.0.0.1:9147']\n",
        )
        .unwrap();
    let data = lab.lab.dir.join("tsdb");
    let (cfg_arg, data_arg, listen_arg) = (
        format!("--config.file={}", prom_cfg.display()),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--web.listen-address={PROMETHEUS}"),
    );
    lab.lab
        .spawn(
            "lb",
            "prometheus",
            &["prometheus", &cfg_arg, &data_arg, &listen_arg],
        )
        .unwrap();
    let ready = Instant::now();
    while lab
        .lab
        .sh("lb", &format!("curl -sf -m 2 http://{PROMETHEUS}/-/ready"))
        .is_err()
    {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "prometheus never became ready"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let answers = lab.http_gets(REQUESTS, "/").unwrap();
    assert_eq!(DrLab::tally(&answers).get("FAIL"), None);

    // One worker, so one wrr cycle: the split is exact. Wait for a scrape that has it all.
    let total: u64 = weights.iter().sum();
    let want: Vec<(String, u64)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                format!("{}:80", dr::rs_addr(i)),
                REQUESTS as u64 * w / total,
            )
        })
        .collect();
    let start = Instant::now();
    let mut got = query(&lab);
    while got != want && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
        got = query(&lab);
    }
    eprintln!("PromQL split after {:?}: {got:?}", start.elapsed());
    if got != want {
        // What Prometheus made of its last scrapes, and what a scrape says now.
        let targets = lab
            .lab
            .sh(
                "lb",
                &format!("curl -s -m 5 http://{PROMETHEUS}/api/v1/targets"),
            )
            .unwrap_or_default();
        let scrape = lab
            .lab
            .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/metrics")
            .unwrap_or_default();
        let conns: Vec<&str> = scrape
            .lines()
            .filter(|l| l.starts_with("xvs_real_server_connections_total"))
            .collect();
        eprintln!("targets: {targets}\nscrape now: {conns:?}");
    }
    assert_eq!(got, want, "PromQL split vs the weights");
    lab.stop_clean().unwrap();
}
