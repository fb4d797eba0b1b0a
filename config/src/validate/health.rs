//! A health check's keys: keepalived's checkers and their timings.

use std::net::IpAddr;

use super::checker::{secs, Checker};
use crate::model::*;
use crate::raw::*;
use crate::spanned::Spanned;

pub(super) fn health_check(ck: &mut Checker, h: &Spanned<RawHealthCheck>) -> Option<HealthCheck> {
    let r = &h.value;
    let kind = kind(ck, r)?;
    let timeout = if matches!(kind, CheckKind::Misc { .. }) {
        &r.misc_timeout
    } else {
        &r.connect_timeout
    };
    Some(HealthCheck {
        kind,
        delay_loop_ms: secs(ck, &r.delay_loop, "delay_loop", 60.0, 0.1, 86400.0),
        timeout_ms: secs(ck, timeout, "timeout", 5.0, 0.01, 3600.0),
        retry: r.retry.as_ref().map_or(1, |v| {
            ck.range(v, "retry", 0, 100, "attempts after the first failure") as u32
        }),
        delay_before_retry_ms: secs(
            ck,
            &r.delay_before_retry,
            "delay_before_retry",
            1.0,
            0.0,
            3600.0,
        ),
        warmup_ms: secs(ck, &r.warmup, "warmup", 0.0, 0.0, 3600.0),
        alpha: r.alpha.unwrap_or(false),
        connect_ip: r.connect_ip.as_ref().map(|a| a.value),
        connect_port: r
            .connect_port
            .as_ref()
            .map(|p| ck.range(p, "connect_port", 1, 65535, "the port to check") as u16),
        bindto: r.bindto.as_ref().map(|b| bindto(ck, r, b)),
    })
}

/// What the check does, by its type; None for a misc check without a script it can run.
fn kind(ck: &mut Checker, r: &RawHealthCheck) -> Option<CheckKind> {
    Some(match r.kind.value {
        CheckType::Tcp => CheckKind::Tcp,
        CheckType::Http | CheckType::Https => http(ck, r),
        CheckType::Misc => match &r.misc_path {
            Some(p) if !p.value.trim().is_empty() => CheckKind::Misc {
                script: ck.script(&r.misc_path, "misc_path")?,
                dynamic: r.misc_dynamic.unwrap_or(false),
            },
            _ => {
                ck.error(
                    &r.kind,
                    "a misc check needs `misc_path`".into(),
                    "the script to run; exit 0 means up",
                );
                return None;
            }
        },
        CheckType::Udp => CheckKind::Udp {
            payload: r.payload.clone().unwrap_or_default().into_bytes(),
        },
    })
}

/// An HTTP or HTTPS check: the path, the status codes and the body's digest.
fn http(ck: &mut Checker, r: &RawHealthCheck) -> CheckKind {
    let mut status_codes = Vec::new();
    for c in &r.status_code {
        status_codes.push(ck.range(
            c,
            "status_code",
            100,
            599,
            "an HTTP status code such as 200",
        ) as u16);
    }
    if let Some(d) = &r.digest {
        if d.value.len() != 32 || !d.value.chars().all(|c| c.is_ascii_hexdigit()) {
            ck.error(
                d,
                "digest must be an MD5 in hex (32 characters)".into(),
                "as keepalived's genhash prints it",
            );
        }
    }
    CheckKind::Http {
        path: r.path.clone().unwrap_or_else(|| "/".into()),
        status_codes,
        digest: r.digest.as_ref().map(|d| d.value.to_lowercase()),
        virtualhost: r.virtualhost.clone(),
        tls: (r.kind.value == CheckType::Https).then(|| TlsCheck {
            verify: r.ssl_verify.unwrap_or(false),
        }),
    }
}

/// `bindto`: the probe's source address.
fn bindto(ck: &mut Checker, r: &RawHealthCheck, b: &Spanned<IpAddr>) -> IpAddr {
    // The probe's source and its target are of one family; without connect_ip
    // the target is the real server, an IPv4 address.
    let target_v6 = r.connect_ip.as_ref().is_some_and(|c| c.value.is_ipv6());
    if b.value.is_ipv6() != target_v6 {
        ck.error(
            b,
            format!(
                "bindto {} is not of the checked address's family ({})",
                b.value,
                if target_v6 { "IPv6 connect_ip" } else { "IPv4" }
            ),
            "a probe's source and target are both IPv4 or both IPv6",
        );
    }
    b.value
}
