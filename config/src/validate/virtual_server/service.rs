//! The service a virtual server is: its name, address, ports and protocol, unique over
//! the file; and what its protocol and forwarding allow of them.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;
use crate::validate::checker::{at, Checker};

/// Its name is no other virtual server's.
pub(super) fn unique_name(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    names: &mut HashMap<String, u64>,
) {
    if let Some(first) = names.insert(vs.name.value.clone(), at(&vs.name).0) {
        ck.error(
            &vs.name,
            format!(
                "virtual server name {:?} is already used at line {first}",
                vs.name.value
            ),
            "give each virtual server its own name: metrics and `xvs status` use it",
        );
    }
}

/// `port` or `ports`; [0] stands in for a wrong or missing one, the checks going on.
pub(super) fn ports(ck: &mut Checker, vs: &RawVirtualServer) -> Vec<u16> {
    let port_hint = "0 stands for every port of the address";
    match (&vs.port, &vs.ports) {
        (Some(p), None) => vec![ck.range(p, "port", 0, 65535, port_hint) as u16],
        (None, Some(list)) if !list.is_empty() => list
            .iter()
            .map(|p| ck.range(p, "port", 1, 65535, "list the ports one by one"))
            .map(|p| p as u16)
            .collect(),
        (None, Some(_)) => {
            ck.error(
                &vs.name,
                format!(
                    "virtual server {:?} has an empty `ports` list",
                    vs.name.value
                ),
                "list at least one port",
            );
            vec![0]
        }
        (Some(p), Some(_)) => {
            ck.error(
                p,
                "give either `port` or `ports`, not both".into(),
                "`ports: [80, 443]` serves several ports as one service",
            );
            vec![0]
        }
        (None, None) => {
            ck.error(
                &vs.name,
                format!("virtual server {:?} has no `port`", vs.name.value),
                "add `port: 80` (0: every port) or `ports: [80, 443]`",
            );
            vec![0]
        }
    }
}

/// Each of its (address, port, protocol) is no other virtual server's.
pub(super) fn unique(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    ports: &[u16],
    services: &mut HashMap<(IpAddr, u16, Protocol), u64>,
) {
    for (i, &port) in ports.iter().enumerate() {
        let key = (vs.address.value, port, vs.protocol.value);
        let span = vs
            .ports
            .as_ref()
            .and_then(|l| l.get(i))
            .map_or_else(|| at(&vs.address), at);
        if let Some(first) = services.insert(key, span.0) {
            ck.out.push(
                Diagnostic::new(
                    span.0,
                    span.1,
                    format!(
                        "virtual server {}:{port}/{} is already defined at line {first}",
                        vs.address.value,
                        vs.protocol.value.as_str()
                    ),
                )
                .hint("each address, port and protocol may have one virtual server; merge the two"),
            );
        }
    }
}

/// `ops` (one-packet scheduling), which UDP alone has.
pub(super) fn ops(ck: &mut Checker, vs: &RawVirtualServer) -> bool {
    let ops = vs.ops.as_ref().is_some_and(|o| o.value);
    if let Some(o) = vs
        .ops
        .as_ref()
        .filter(|o| o.value && vs.protocol.value != Protocol::Udp)
    {
        ck.error(
            o,
            "ops (one-packet scheduling) applies to UDP only".into(),
            "remove it, or use `protocol: udp`",
        );
    }
    ops
}

/// NAT serves the ports it is given, not every port (0).
pub(super) fn nat_ports(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    forwarding: Forwarding,
    ports: &[u16],
) {
    if matches!(forwarding, Forwarding::Nat | Forwarding::FullNat) && ports.contains(&0) {
        let span = vs.port.as_ref().map_or_else(|| at(&vs.address), at);
        ck.out.push(
            Diagnostic::new(
                span.0,
                span.1,
                format!(
                    "a {} virtual server cannot serve every port (port 0)",
                    forwarding.as_str().to_uppercase()
                ),
            )
            .hint("list the ports: NAT must know which port each reply came from"),
        );
    }
}
