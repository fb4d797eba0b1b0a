//! The quorum (the least live weight for the service to be up), what happens at its
//! crossings, and the sorry server that takes the connections when no real server is up.

use std::net::IpAddr;

use crate::raw::{RawQuorumVrrp, RawSorryServer, RawVirtualServer, RawVrrpInstance};
use crate::validate::checker::Checker;

/// `quorum`: 1 by default.
pub(super) fn quorum(ck: &mut Checker, vs: &RawVirtualServer) -> u32 {
    vs.quorum.as_ref().map_or(1, |q| {
        ck.range(
            q,
            "quorum",
            0,
            1 << 24,
            "least total weight of live real servers",
        ) as u32
    })
}

/// `hysteresis`: 0 by default.
pub(super) fn hysteresis(ck: &mut Checker, vs: &RawVirtualServer) -> u32 {
    vs.hysteresis.as_ref().map_or(0, |q| {
        ck.range(
            q,
            "hysteresis",
            0,
            1 << 24,
            "weight tolerance around the quorum",
        ) as u32
    })
}

/// `quorum_vrrp`: one of `instances`, and the priority it advertises below quorum.
pub(super) fn vrrp(
    ck: &mut Checker,
    q: &RawQuorumVrrp,
    instances: &[RawVrrpInstance],
) -> (String, u8) {
    let p = ck.range(
        &q.priority,
        "quorum_vrrp priority",
        1,
        254,
        "the priority to advertise while below quorum",
    ) as u8;
    if !instances.iter().any(|v| v.name.value == q.instance.value) {
        ck.error(
            &q.instance,
            format!("no VRRP instance {:?}", q.instance.value),
            "name one of vrrp_instances",
        );
    }
    (q.instance.value.clone(), p)
}

/// `sorry_server`: a host of the virtual server's family (`vip`'s), on the virtual
/// server's first port unless given.
pub(super) fn sorry_server(
    ck: &mut Checker,
    s: &RawSorryServer,
    vip: IpAddr,
    first_port: u16,
) -> (IpAddr, u16) {
    ck.unicast(&s.address, "a sorry server's address");
    ck.same_family(&s.address, vip, "a sorry server");
    let p = s.port.as_ref().map_or(first_port, |p| {
        ck.range(
            p,
            "sorry_server port",
            0,
            65535,
            "omit it to use the virtual server's port",
        ) as u16
    });
    (s.address.value, p)
}
