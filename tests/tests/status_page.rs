//! The status page (`/` on the metrics listener) as an operator sees it: headless
//! Chromium loads it from a running director, its rendered text names the lab's virtual
//! and real servers and follows a real server going down; `tidy` finds no error in it;
//! a virtual server named `<script>…` shows as text; `/status.json` is its twin. The
//! screenshot it takes is the README's (`XVS_BLESS=1` writes docs/status-page.png).

use std::path::Path;
use std::time::Duration;

use xvs_lab::dr::{self, DrLab};

const PAGE: &str = "http://127.0.0.1:9147/";

/// The lab's configuration: the usual web service, health-checked, under a name that
/// would be markup if it were not escaped, and a plain UDP service beside it.
fn config() -> String {
    dr::config(&[2, 1], Some(5353))
        .replacen("  - name: web\n", "  - name: \"<script>alert('web')</script>\"\n", 1)
        .replacen(
            "    forwarding: dr\n",
            "    forwarding: dr\n    health_check: { type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }\n",
            1,
        )
}

/// Chromium, headless, in the director's namespace, with its profile in the lab's
/// directory; `what` is `--dump-dom` or `--screenshot=FILE`.
fn chromium(lab: &DrLab, what: &str) -> String {
    let dir = lab.lab.dir.display();
    lab.lab
        .sh(
            "lb",
            &format!(
                "timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
                 --user-data-dir={dir}/chromium --window-size=1100,900 --hide-scrollbars \
                 {what} {PAGE} 2>/dev/null"
            ),
        )
        .unwrap()
}

/// The rendered page's text, once `want` is in it (the page reads state every 2 s).
fn page_with(lab: &DrLab, want: &str) -> String {
    let mut dom = String::new();
    for _ in 0..20 {
        dom = chromium(lab, "--dump-dom");
        if dom.contains(want) {
            return dom;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the page never showed {want:?}:\n{dom}");
}

#[test]
fn an_operator_reads_the_directors_state_in_a_browser() {
    let mut lab = DrLab::build(2, 1).expect("build the lab");
    lab.start_web().unwrap();
    let cfg = lab.write_config(&config()).unwrap();
    lab.start_xvs(&cfg).unwrap();
    let answers = lab.http_gets(4, "/").unwrap();
    assert_eq!(DrLab::tally(&answers).get("FAIL"), None, "{answers:?}");

    let dom = page_with(
        &lab,
        &format!("{}:80</td><td class=\"ok\">up</td>", dr::rs_addr(0)),
    );
    // The name is text: escaped in the markup, and no script element came of it.
    assert!(
        dom.contains("&lt;script&gt;alert('web')&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");
    for want in [dr::VIP, &dr::rs_addr(1), "dns", "wrr", "Route", "Drops"] {
        assert!(dom.contains(want), "{want} missing:\n{dom}");
    }

    // What the listener sends is valid HTML (tidy: errors exit 2; warnings are allowed).
    let served = lab
        .lab
        .sh(
            "lb",
            &format!("curl -s -m 5 -D {}/headers {PAGE}", lab.lab.dir.display()),
        )
        .unwrap();
    let html = lab.lab.dir.join("page.html");
    std::fs::write(&html, &served).unwrap();
    let tidy = std::process::Command::new("tidy")
        .args(["-q", "-e", "--show-warnings", "no"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        tidy.status.code().is_some_and(|c| c < 2),
        "tidy: {}",
        String::from_utf8_lossy(&tidy.stderr)
    );
    let headers = std::fs::read_to_string(lab.lab.dir.join("headers")).unwrap();
    assert!(
        headers.contains("Content-Security-Policy: default-src 'none'"),
        "{headers}"
    );

    // The twin: the same servers, as `xvs status --json` has them.
    let json: serde_json::Value = serde_json::from_str(
        &lab.lab
            .sh("lb", "curl -s -m 5 http://127.0.0.1:9147/status.json")
            .unwrap(),
    )
    .expect("status.json is JSON");
    let rs0 = &json["virtual_servers"][0]["real_servers"][0];
    assert_eq!(rs0["state"], "up", "{json}");
    assert!(rs0["since"].as_u64().is_some(), "{json}");
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();
    let cli: serde_json::Value =
        serde_json::from_str(&lab.lab.sh("lb", &format!("{bin} status --json")).unwrap()).unwrap();
    let names = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["virtual_servers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|vs| {
                vs["real_servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |rs| {
                        (
                            vs["name"].to_string(),
                            rs["address"].to_string(),
                            rs["state"].to_string(),
                        )
                    })
            })
            .collect()
    };
    assert_eq!(
        names(&json),
        names(&cli),
        "the twin has xvs status --json's rows"
    );
    // Read only: anything but GET and HEAD is refused.
    let post = lab
        .lab
        .sh(
            "lb",
            &format!("curl -s -o /dev/null -w '%{{http_code}}' -X POST {PAGE}"),
        )
        .unwrap();
    assert_eq!(post.trim(), "405");

    let shot = lab.lab.dir.join("status-page.png");
    chromium(&lab, &format!("--screenshot={}", shot.display()));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if std::env::var_os("XVS_BLESS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/status-page.png");
        std::fs::write(docs, &png).unwrap();
    }

    // A real server stops: its check fails, and the page says so, in words.
    lab.stop_web(0);
    let dom = page_with(
        &lab,
        &format!("{}:80</td><td class=\"bad\">down</td>", dr::rs_addr(0)),
    );
    assert!(
        dom.contains("down: "),
        "the last check's verdict and reason:\n{dom}"
    );
    lab.stop_clean().unwrap();
}
