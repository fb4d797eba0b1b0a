//! The alerts' text, as keepalived words them, and the message SMTP's DATA carries:
//! headers, the body, lines ending CRLF, a leading dot doubled. No I/O.

use std::time::{SystemTime, UNIX_EPOCH};

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A VRRP instance entered `state` (MASTER, BACKUP, FAULT).
    Vrrp { instance: String, state: String },
    /// A real server left the pool (`up` false) or came back.
    RealServer {
        /// `[10.0.0.11]:tcp:80`, keepalived's form.
        real_server: String,
        /// `[10.0.0.100]:tcp:80`.
        virtual_server: String,
        up: bool,
        reason: String,
    },
}

impl Event {
    /// keepalived's subject lines: "[router] VRRP Instance VI_1 - Entering MASTER state",
    /// "[router] Realserver [ip]:tcp:80 of virtual server [vip]:tcp:80 - DOWN".
    pub fn subject(&self, router_id: &str) -> String {
        match self {
            Event::Vrrp { instance, state } => {
                format!("[{router_id}] VRRP Instance {instance} - Entering {state} state")
            }
            Event::RealServer {
                real_server,
                virtual_server,
                up,
                ..
            } => format!(
                "[{router_id}] Realserver {real_server} of virtual server {virtual_server} - {}",
                if *up { "UP" } else { "DOWN" }
            ),
        }
    }

    pub fn body(&self) -> String {
        match self {
            Event::Vrrp { state, .. } if state == "MASTER" => {
                "=> VRRP Instance is now owning VRRP VIPs <=".into()
            }
            Event::Vrrp { .. } => "=> VRRP Instance is no longer owning VRRP VIPs <=".into(),
            Event::RealServer { reason, .. } => format!("=> {reason} <="),
        }
    }
}

/// keepalived's form of an endpoint: `[10.0.0.11]:tcp:80`.
pub fn endpoint(addr: std::net::IpAddr, proto: u8, port: u16) -> String {
    let p = match proto {
        6 => "tcp",
        17 => "udp",
        _ => "ip",
    };
    format!("[{addr}]:{p}:{port}")
}

/// The message for DATA, without the final ".": headers and body, CRLF line ends, any
/// line starting with "." doubled (RFC 5321 4.5.2), control characters of the text
/// (a real server's reason comes from a check) replaced.
pub fn data(from: &str, to: &[String], subject: &str, body: &str, now: SystemTime) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect()
    };
    let subject = clean(subject).replace('\n', " ");
    let mut m = String::new();
    m += &format!("Date: {}\r\n", rfc5322_date(now));
    m += &format!("From: {from}\r\n");
    m += &format!("To: {}\r\n", to.join(", "));
    m += &format!("Subject: {subject}\r\n");
    m += &format!("X-Mailer: xvs {}\r\n", env!("CARGO_PKG_VERSION"));
    m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    for line in clean(&body.replace("\r\n", "\n")).lines() {
        if line.starts_with('.') {
            m.push('.');
        }
        m += line;
        m += "\r\n";
    }
    m
}

/// "Sun, 06 Dec 2026 13:05:09 +0000".
pub fn rfc5322_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let (y, mo, d) = crate::calendar::civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {h:02}:{m:02}:{s:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(mo - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn subjects_and_bodies_are_keepaliveds() {
        let v = Event::Vrrp {
            instance: "VI_1".into(),
            state: "MASTER".into(),
        };
        assert_eq!(
            v.subject("LVS_devel"),
            "[LVS_devel] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(v.body(), "=> VRRP Instance is now owning VRRP VIPs <=");
        let r = Event::RealServer {
            real_server: endpoint("10.0.0.12".parse().unwrap(), 6, 80),
            virtual_server: endpoint("10.0.0.100".parse().unwrap(), 6, 80),
            up: false,
            reason: "TCP connect failed".into(),
        };
        assert_eq!(
            r.subject("lb1"),
            "[lb1] Realserver [10.0.0.12]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"
        );
        assert_eq!(r.body(), "=> TCP connect failed <=");
    }

    #[test]
    fn the_message_is_crlf_dot_stuffed_and_dated() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_562_309); // 2026-12-06 13:05:09 UTC
        let m = data(
            "xvs@lb1",
            &["a@example.org".into(), "b@example.org".into()],
            "s\r\nBcc: evil@example.org",
            "line\n.dot\r\nend",
            t,
        );
        assert!(m.starts_with("Date: Sun, 06 Dec 2026 13:05:09 +0000\r\nFrom: xvs@lb1\r\nTo: a@example.org, b@example.org\r\n"), "{m}");
        // A line break in the subject cannot start a header of its own.
        assert!(m.contains("Subject: s  Bcc: evil@example.org\r\n"), "{m}");
        assert!(m.ends_with("\r\n\r\nline\r\n..dot\r\nend\r\n"), "{m}");
        assert!(!m.replace("\r\n", "").contains('\r') && !m.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn dates_match_the_calendar() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }
}
