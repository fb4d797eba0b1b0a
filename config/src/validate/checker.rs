//! The collector of diagnostics and the checks every section shares: ranges, unicast
//! addresses, seconds, primes.

use std::net::IpAddr;

use crate::error::Diagnostic;
use crate::model::Located;
use crate::spanned::Spanned;

pub(super) struct Checker {
    pub(super) out: Vec<Diagnostic>,
}

pub(super) fn at<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// A value with its position, for what is reported on after the checks (names, interfaces).
pub(super) fn located<T: Clone>(s: &Spanned<T>) -> Located<T> {
    let (line, column) = at(s);
    Located {
        value: s.value.clone(),
        line,
        column,
    }
}

impl Checker {
    pub(super) fn error<T>(&mut self, s: &Spanned<T>, message: String, hint: &str) {
        let (l, c) = at(s);
        self.out.push(Diagnostic::new(l, c, message).hint(hint));
    }

    /// A script line (`notify_master`, `quorum_up`, ...): one that splits into a program
    /// and its arguments (`crate::script::argv`), kept as written.
    pub(super) fn script(&mut self, s: &Option<Spanned<String>>, what: &str) -> Option<String> {
        let s = s.as_ref()?;
        match crate::script::argv(&s.value) {
            Ok(_) => Some(s.value.clone()),
            Err(e) => {
                self.error(
                    s,
                    format!("{what} cannot be read: {e}"),
                    "a program and its arguments, as keepalived reads them: quote a word that holds spaces",
                );
                None
            }
        }
    }

    /// An address a host can be given: not 0.0.0.0, broadcast, multicast or loopback.
    pub(super) fn unicast<A: Copy + Into<IpAddr>>(&mut self, a: &Spanned<A>, what: &str) {
        let v: IpAddr = a.value.into();
        let class = if v.is_unspecified() {
            "unspecified"
        } else if matches!(v, IpAddr::V4(v4) if v4.is_broadcast()) {
            "broadcast"
        } else if v.is_multicast() {
            "multicast"
        } else if v.is_loopback() {
            "loopback"
        } else {
            return;
        };
        self.error(
            a,
            format!("{v} is a {class} address, which cannot be {what}"),
            "give a unicast address of the network",
        );
    }

    /// `a` is of `vip`'s family: a virtual server and its real servers are.
    pub(super) fn same_family(&mut self, a: &Spanned<IpAddr>, vip: IpAddr, what: &str) {
        if a.value.is_ipv6() != vip.is_ipv6() {
            let family = |ip: IpAddr| if ip.is_ipv6() { "IPv6" } else { "IPv4" };
            self.error(
                a,
                format!(
                    "{} is {}, and the virtual server {vip} is {}",
                    a.value,
                    family(a.value),
                    family(vip)
                ),
                &format!("{what} is of its virtual server's family: give an {} address, or a virtual server of its own", family(vip)),
            );
        }
    }

    /// An integer field within `lo..=hi`.
    pub(super) fn range(
        &mut self,
        s: &Spanned<i64>,
        what: &str,
        lo: i64,
        hi: i64,
        hint: &str,
    ) -> i64 {
        if s.value < lo || s.value > hi {
            self.error(
                s,
                format!("{what} {} is out of range {lo}..={hi}", s.value),
                hint,
            );
            return lo;
        }
        s.value
    }
}

/// Seconds (fractions allowed) to milliseconds within `lo..=hi` seconds.
pub(super) fn secs(
    ck: &mut Checker,
    v: &Option<Spanned<f64>>,
    what: &str,
    default: f64,
    lo: f64,
    hi: f64,
) -> u64 {
    match v {
        None => (default * 1000.0) as u64,
        Some(s) if (lo..=hi).contains(&s.value) => (s.value * 1000.0) as u64,
        Some(s) => {
            let (l, c) = at(s);
            ck.out.push(
                Diagnostic::new(
                    l,
                    c,
                    format!("{what} {} is out of range {lo}..={hi}", s.value),
                )
                .hint("seconds"),
            );
            (default * 1000.0) as u64
        }
    }
}

pub(super) fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}
