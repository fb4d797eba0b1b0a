//! `email_alerts`: the addresses (nothing that could leave the SMTP command or header
//! they go in), the server and the timeout.

use super::checker::{secs, Checker};
use crate::model::*;
use crate::raw::RawEmailAlerts;
use crate::spanned::Spanned;

pub(super) fn check(ck: &mut Checker, e: &RawEmailAlerts) -> Option<EmailAlerts> {
    let before = ck.out.len();
    if e.to.is_empty() {
        ck.error(
            &e.smtp_server,
            "email_alerts has no recipient".into(),
            "list them under `to:`, as keepalived's notification_email",
        );
    }
    for a in e.to.iter().chain(&e.from) {
        address(ck, a);
    }
    if e.smtp_server.value.is_unspecified() || e.smtp_server.value.is_multicast() {
        ck.error(
            &e.smtp_server,
            format!(
                "smtp_server {} is not a host's address",
                e.smtp_server.value
            ),
            "the relay's unicast address",
        );
    }
    let port = e.smtp_port.as_ref().map_or(DEFAULT_SMTP_PORT, |p| {
        ck.range(
            p,
            "email_alerts smtp_port",
            1,
            65535,
            "a TCP port (25 for SMTP)",
        ) as u16
    });
    let timeout_ms = secs(
        ck,
        &e.connect_timeout,
        "email_alerts connect_timeout",
        DEFAULT_SMTP_TIMEOUT_S,
        1.0,
        300.0,
    );
    header_names(ck, e);
    (ck.out.len() == before).then(|| EmailAlerts {
        to: e.to.iter().map(|a| a.value.clone()).collect(),
        from: e.from.as_ref().map(|a| a.value.clone()),
        server: std::net::SocketAddr::new(e.smtp_server.value, port),
        timeout_ms,
        helo_name: e.helo_name.as_ref().map(|h| h.value.clone()),
        vrrp: e.vrrp.unwrap_or(false),
        checker: e.checker.unwrap_or(true),
        router_id: e.router_id.as_ref().map(|h| h.value.clone()),
    })
}

/// `helo_name` and `router_id`: names a mail header can carry.
fn header_names(ck: &mut Checker, e: &RawEmailAlerts) {
    for name in [&e.helo_name, &e.router_id].into_iter().flatten() {
        if name.value.is_empty()
            || name.value.len() > 255
            || !name.value.bytes().all(|b| b.is_ascii_graphic())
        {
            ck.error(
                name,
                format!("{:?} is not a name a mail header can carry", name.value),
                "1 to 255 printable ASCII characters, no spaces",
            );
        }
    }
}

/// A mailbox as SMTP's MAIL FROM/RCPT TO and the headers take it: local@domain, printable
/// ASCII, no spaces, angle brackets, commas or quotes.
fn address(ck: &mut Checker, a: &Spanned<String>) {
    let v = &a.value;
    let ok = v.len() <= 254
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>,\"()[]\\;:".contains(&b))
        && matches!(v.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if !ok {
        ck.error(
            a,
            format!("{v:?} is not an e-mail address xvs sends to"),
            "local@domain, printable ASCII without spaces, quotes, commas or brackets",
        );
    }
}
