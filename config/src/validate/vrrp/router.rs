//! The virtual router an instance is: its name and id, each unique where it must be; its
//! priority, VRRP version, advertisement interval, preemption and password.

use std::collections::HashMap;

use crate::error::Diagnostic;
use crate::model::AuthType;
use crate::raw::{RawAuth, RawVrrpInstance};
use crate::spanned::Spanned;
use crate::validate::checker::{at, Checker};

/// The checked router settings, for `VrrpInstance`.
pub(super) struct Router {
    pub vrid: u8,
    pub priority: u8,
    pub version: u8,
    pub advert_int_cs: u16,
    pub preempt_delay: u32,
    pub password: Option<String>,
}

/// `names`: the names so far; `vrids`: the (interface, id) pairs so far.
pub(super) fn check(
    ck: &mut Checker,
    vi: &RawVrrpInstance,
    names: &mut HashMap<String, u64>,
    vrids: &mut HashMap<(String, u8), u64>,
) -> Router {
    unique_name(ck, vi, names);
    let vrid = vrid(ck, vi, vrids);
    let priority = ck.range(
        &vi.priority,
        "priority",
        1,
        255,
        "1 to 254; 255 only for the owner of the addresses",
    ) as u8;
    let version = vi.version.as_ref().map_or(2, |v| {
        ck.range(v, "version", 2, 3, "2 (RFC 3768) or 3 (RFC 5798)") as u8
    });
    Router {
        vrid,
        priority,
        version,
        advert_int_cs: advert_int(ck, &vi.advert_int, version),
        preempt_delay: vi.preempt_delay.as_ref().map_or(0, |d| {
            ck.range(d, "preempt_delay", 0, 1000, "seconds") as u32
        }),
        password: vi.authentication.as_ref().map(|a| password(ck, a, version)),
    }
}

/// Its name is no other instance's.
fn unique_name(ck: &mut Checker, vi: &RawVrrpInstance, names: &mut HashMap<String, u64>) {
    if let Some(first) = names.insert(format!("vrrp {}", vi.name.value), at(&vi.name).0) {
        ck.error(
            &vi.name,
            format!(
                "VRRP instance name {:?} is already used at line {first}",
                vi.name.value
            ),
            "give each instance its own name",
        );
    }
}

/// `virtual_router_id`: 1 to 255, and another on each interface.
fn vrid(ck: &mut Checker, vi: &RawVrrpInstance, vrids: &mut HashMap<(String, u8), u64>) -> u8 {
    let vrid = ck.range(
        &vi.virtual_router_id,
        "virtual_router_id",
        1,
        255,
        "1 to 255; the same on every director of the pair",
    ) as u8;
    if let Some(first) = vrids.insert(
        (vi.interface.value.clone(), vrid),
        at(&vi.virtual_router_id).0,
    ) {
        ck.error(
            &vi.virtual_router_id,
            format!(
                "virtual_router_id {vrid} on {} is already used at line {first}",
                vi.interface.value
            ),
            "each virtual router on a link needs its own id",
        );
    }
    vrid
}

/// `advert_int` in centiseconds: whole seconds in version 2, hundredths in version 3.
fn advert_int(ck: &mut Checker, advert_int: &Option<Spanned<f64>>, version: u8) -> u16 {
    match advert_int {
        None => 100,
        Some(a) => {
            let cs = (a.value * 100.0).round();
            let ok = if version == 2 {
                (100.0..=25500.0).contains(&cs) && cs % 100.0 == 0.0
            } else {
                (1.0..=4095.0).contains(&cs)
            };
            if !ok {
                let (l, c) = at(a);
                ck.out.push(
                    Diagnostic::new(
                        l,
                        c,
                        format!(
                            "advert_int {} is not valid for VRRP version {version}",
                            a.value
                        ),
                    )
                    .hint("version 2: whole seconds 1 to 255; version 3: 0.01 to 40.95 seconds"),
                );
            }
            cs.clamp(1.0, 4095.0) as u16
        }
    }
}

/// `authentication`'s password: VRRPv2's PASS, 1 to 8 characters.
fn password(ck: &mut Checker, a: &Spanned<RawAuth>, version: u8) -> String {
    // PASS is the only type offered (AH is deprecated by RFC 3768).
    let AuthType::Pass = a.value.auth_type;
    if version != 2 {
        ck.error(
            a,
            "authentication exists in VRRP version 2 only".into(),
            "remove it, or use `version: 2`",
        );
    }
    if a.value.auth_pass.is_empty() || a.value.auth_pass.len() > 8 {
        ck.error(
            a,
            "auth_pass must be 1 to 8 characters".into(),
            "VRRPv2 carries 8 bytes of password",
        );
    }
    a.value.auth_pass.clone()
}
