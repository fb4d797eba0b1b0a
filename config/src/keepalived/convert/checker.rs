//! keepalived's checker blocks (TCP_CHECK, HTTP_GET, ...) as `health_check` lines.

use super::{inner, number, whole, Out};
use crate::import::quote;
use crate::keepalived::tree::Stmt;

/// keepalived's checkers that xvs has, and the `type` each becomes.
const KINDS: [(&str, &str); 5] = [
    ("TCP_CHECK", "tcp"),
    ("HTTP_GET", "http"),
    ("SSL_GET", "https"),
    ("MISC_CHECK", "misc"),
    ("UDP_CHECK", "udp"),
];

/// A check being written, and what its statements so far said.
struct Check {
    kind: &'static str,
    lines: Vec<String>,
    /// It has a delay_loop of its own (else it takes the virtual server's).
    has_delay: bool,
    /// `url` blocks seen: xvs checks the first.
    urls: u32,
}

/// keepalived's checker block as xvs's `health_check` lines, or None.
pub(super) fn checker(
    c: &Stmt,
    delay_loop: Option<&str>,
    alpha: bool,
    out: &mut Out,
) -> Option<Vec<String>> {
    let Some(&(_, kind)) = KINDS.iter().find(|(k, _)| *k == c.keyword()) else {
        out.warn(
            c,
            "not converted: xvs checks with TCP, HTTP_GET, SSL_GET, MISC_CHECK or UDP",
        );
        return None;
    };
    let mut check = Check {
        kind,
        lines: vec![format!("type: {kind}")],
        has_delay: false,
        urls: 0,
    };
    for f in inner(c) {
        check.statement(c, f, out);
    }
    if !check.has_delay {
        if let Some(d) = delay_loop {
            check.lines.insert(1, format!("delay_loop: {d}"));
        }
    }
    if alpha {
        check.lines.push("alpha: true".into());
    }
    Some(check.lines)
}

impl Check {
    /// One statement `f` of checker block `c`.
    fn statement(&mut self, c: &Stmt, f: &Stmt, out: &mut Out) {
        let k = f.keyword();
        match k {
            "connect_timeout" | "delay_before_retry" | "warmup" | "misc_timeout" | "delay_loop" => {
                if let Some(v) = number(f, out) {
                    self.has_delay |= k == "delay_loop";
                    self.lines.push(format!("{k}: {v}"));
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(v) = whole(f, out) {
                    self.lines.push(format!("retry: {v}"));
                }
            }
            "connect_port" => {
                if let Some(v) = whole(f, out) {
                    self.lines.push(format!("connect_port: {v}"));
                }
            }
            "connect_ip" | "bindto" => {
                match f.arg(0).and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
                    Some(a) => self.lines.push(format!("{k}: {}", quote(&a.to_string()))),
                    None => out.warn(f, "is no IP address: not converted"),
                }
            }
            "misc_path" => self
                .lines
                .push(format!("misc_path: {}", quote(&f.args().join(" ")))),
            "misc_dynamic" => self.lines.push("misc_dynamic: true".into()),
            "virtualhost" => {
                if let Some(v) = f.arg(0) {
                    self.lines.push(format!("virtualhost: {}", quote(v)));
                }
            }
            "url" => self.url(f, out),
            "user" if self.kind == "misc" => {
                out.warn(f, "not converted: misc scripts run as the xvs user (root)")
            }
            _ => out.warn(f, &format!("in {}: not converted", c.keyword())),
        }
    }

    /// A `url` block: its path, digest and status codes. xvs checks one URL.
    fn url(&mut self, f: &Stmt, out: &mut Out) {
        self.urls += 1;
        if self.urls > 1 {
            out.warn(f, "not converted: xvs checks one URL per real server");
            return;
        }
        let mut codes = Vec::new();
        for u in inner(f) {
            match (u.keyword(), u.arg(0)) {
                ("path", Some(p)) => self.lines.push(format!("path: {}", quote(p))),
                ("digest", Some(d)) => self.lines.push(format!("digest: {}", quote(d))),
                ("status_code", Some(_)) => codes.extend(
                    u.args()
                        .iter()
                        .filter(|c| c.parse::<u16>().is_ok())
                        .cloned(),
                ),
                _ => out.warn(u, "in url: not converted"),
            }
        }
        if !codes.is_empty() {
            self.lines
                .push(format!("status_code: [{}]", codes.join(", ")));
        }
    }
}
