//! keepalived's e-mail settings (global_defs' notification_email, smtp_*, and the
//! smtp_alert keywords of global_defs, vrrp_instance, vrrp_sync_group, virtual_server and
//! real_server) as `email_alerts`, with keepalived's defaults made explicit: alerts on
//! VRRP transitions only when asked for, on real servers unless turned off.

use super::tree::Stmt;
use crate::import::quote;

/// What global_defs said about e-mail.
#[derive(Default)]
pub(super) struct Email {
    to: Vec<String>,
    from: Option<String>,
    server: Option<(String, Option<String>)>,
    timeout: Option<String>,
    helo: Option<String>,
    alert: Option<bool>,
    alert_vrrp: Option<bool>,
    alert_checker: Option<bool>,
}

/// keepalived's boolean keyword: alone it means yes.
fn flag(s: &Stmt) -> Option<bool> {
    match s.arg(0) {
        None | Some("true" | "on" | "yes") => Some(true),
        Some("false" | "off" | "no") => Some(false),
        Some(_) => None,
    }
}

impl Email {
    /// Takes a global_defs statement about e-mail; false when it is none of those.
    /// `warn` gets what cannot be converted.
    pub(super) fn global(&mut self, g: &Stmt, warn: &mut impl FnMut(&Stmt, &str)) -> bool {
        match g.keyword() {
            "notification_email" => {
                self.to.extend(
                    super::convert::inner_of(g)
                        .iter()
                        .map(|a| a.keyword().to_string()),
                );
            }
            "notification_email_from" => self.from = g.arg(0).map(str::to_string),
            "smtp_server" => {
                let host = g.arg(0).unwrap_or("");
                if host.parse::<std::net::IpAddr>().is_ok() {
                    self.server = Some((host.to_string(), g.arg(1).map(str::to_string)));
                } else {
                    warn(
                        g,
                        "names no IP address: not converted (xvs takes the relay's address)",
                    );
                }
            }
            "smtp_connect_timeout" => self.timeout = g.arg(0).map(str::to_string),
            "smtp_helo_name" => self.helo = g.arg(0).map(str::to_string),
            "smtp_alert" => self.alert = flag(g),
            "smtp_alert_vrrp" => self.alert_vrrp = flag(g),
            "smtp_alert_checker" => self.alert_checker = flag(g),
            _ => return false,
        }
        true
    }

    /// The `email_alerts` section, when keepalived would send any: recipients and a
    /// relay given. `blocks` are the file's top-level statements, whose own
    /// `smtp_alert` keywords turn alerts of their kind on.
    pub(super) fn write(&self, router_id: Option<&str>, blocks: &[Stmt], yaml: &mut String) {
        let Some((server, port)) = &self.server else {
            return;
        };
        if self.to.is_empty() {
            return;
        }
        let asked = |kinds: &[&str]| {
            blocks
                .iter()
                .filter(|b| kinds.contains(&b.keyword()))
                .flat_map(|b| within(b))
                .any(|s| s.keyword() == "smtp_alert" && flag(s) == Some(true))
        };
        // keepalived: an instance's own keyword, else smtp_alert_vrrp, else smtp_alert,
        // else off; a real server's likewise with smtp_alert_checker, else on.
        let vrrp = asked(&["vrrp_instance", "vrrp_sync_group"])
            || self.alert_vrrp.or(self.alert).unwrap_or(false);
        let checker =
            asked(&["virtual_server"]) || self.alert_checker.or(self.alert).unwrap_or(true);
        let mut w = |l: &str| {
            yaml.push_str(l);
            yaml.push('\n');
        };
        w("email_alerts:");
        w("  to:");
        for t in &self.to {
            w(&format!("    - {}", quote(t)));
        }
        if let Some(f) = &self.from {
            w(&format!("  from: {}", quote(f)));
        }
        w(&format!("  smtp_server: {server}"));
        if let Some(p) = port {
            w(&format!("  smtp_port: {p}"));
        }
        if let Some(t) = &self.timeout {
            w(&format!("  connect_timeout: {t}"));
        }
        if let Some(h) = &self.helo {
            w(&format!("  helo_name: {}", quote(h)));
        }
        if let Some(r) = router_id {
            w(&format!("  router_id: {}", quote(r)));
        }
        w(&format!("  vrrp: {vrrp}"));
        w(&format!("  checker: {checker}"));
    }
}

/// Every statement inside `s`, nested blocks too.
fn within(s: &Stmt) -> Vec<&Stmt> {
    let mut out = Vec::new();
    for i in super::convert::inner_of(s) {
        out.push(i);
        out.extend(within(i));
    }
    out
}
