//! real_server blocks: a real server's own lines, and its checker's (`checker.rs`).

use std::net::IpAddr;

use super::checker::checker;
use super::{inner, ip, whole, Out};
use crate::import::quote;
use crate::keepalived::tree::Stmt;

/// A real server's own lines, and its check's.
pub(super) type RealServerLines = (Vec<String>, Option<Vec<String>>);

/// `delay_loop`, `alpha` and `vhost` (virtualhost): the virtual server's, for its checks.
pub(super) fn real_server(
    r: &Stmt,
    vip: IpAddr,
    delay_loop: Option<&str>,
    alpha: bool,
    vhost: Option<&str>,
    out: &mut Out,
) -> Option<RealServerLines> {
    let Some(a) = ip(r.arg(0)).filter(|a| a.is_ipv6() == vip.is_ipv6()) else {
        out.warn(
            r,
            "needs an address of the virtual server's family: not converted",
        );
        return None;
    };
    let mut lines = vec![format!("address: {a}")];
    if let Some(p) = r.arg(1).and_then(|p| p.parse::<u16>().ok()) {
        lines.push(format!("port: {p}"));
    }
    let mut check = None;
    for f in inner(r) {
        let k = f.keyword();
        match k {
            "weight" => {
                if let Some(w) = whole(f, out) {
                    lines.push(format!("weight: {w}"));
                }
            }
            "inhibit_on_failure" => lines.push("inhibit_on_failure: true".into()),
            "uthreshold" | "lthreshold" => {
                if let Some(v) = whole(f, out) {
                    lines.push(format!("{k}: {v}"));
                }
            }
            "notify_up" | "notify_down" => {
                lines.push(format!("{k}: {}", quote(&f.args().join(" "))))
            }
            // Turns `email_alerts: { checker: true }` on (email.rs).
            "smtp_alert" => {}
            k if k.ends_with("_CHECK") || k == "HTTP_GET" || k == "SSL_GET" => {
                if check.is_some() {
                    out.warn(f, "not converted: xvs runs one check per real server");
                    continue;
                }
                check = checker(f, delay_loop, alpha, out).map(|c| with_vhost(c, k, vhost));
            }
            _ => out.warn(f, "in real_server: not converted"),
        }
    }
    Some((lines, check))
}

/// An HTTP or SSL check (`k`) without a virtualhost of its own takes the virtual
/// server's, `vhost`.
fn with_vhost(mut c: Vec<String>, k: &str, vhost: Option<&str>) -> Vec<String> {
    if let Some(v) = vhost {
        if matches!(k, "HTTP_GET" | "SSL_GET") && !c.iter().any(|l| l.starts_with("virtualhost:")) {
            c.push(format!("virtualhost: {}", quote(v)));
        }
    }
    c
}
