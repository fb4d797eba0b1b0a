//! One virtual server and its real servers: addresses, ports, scheduler, forwarding,
//! persistence, checks, quorum, and what must be unique across the file.
//!
//! - `service.rs`: its name, ports and protocol, and what must be unique of them
//! - `scheduler.rs`: the scheduler's flags and Maglev's table
//! - `persistence.rs`: persistence's timeout and granularity
//! - `real_server.rs`: the real servers (their checks are `../health.rs`)
//! - `quorum.rs`: the quorum, and what happens when the service loses it
//! - `fullnat.rs`: FullNAT's local addresses and ports

mod fullnat;
mod persistence;
mod quorum;
mod real_server;
mod scheduler;
mod service;

use std::collections::HashMap;
use std::net::IpAddr;

use super::checker::Checker;
use crate::model::*;
use crate::raw::*;

/// What must be unique over the whole file, with the line it was first seen on.
#[derive(Default)]
pub(super) struct Seen {
    /// Virtual server and VRRP instance names.
    pub names: HashMap<String, u64>,
    pub services: HashMap<(IpAddr, u16, Protocol), u64>,
    /// NAT real servers (address, port, protocol): each answers for one service.
    pub nat: HashMap<(IpAddr, u16, Protocol), u64>,
    /// FullNAT's local addresses, each with its pool.
    pub local: fullnat::Pools,
}

/// Across the file: not more local addresses than the director can hold, and none that
/// is another virtual server's or real server's address.
pub(super) fn check_local_addresses(ck: &mut Checker, seen: &Seen, vss: &[VirtualServer]) {
    fullnat::across(ck, &seen.local, vss);
}

/// `instances`: the file's VRRP instances, which `quorum_vrrp` may name.
pub(super) fn check(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    seen: &mut Seen,
    instances: &[RawVrrpInstance],
) -> VirtualServer {
    service::unique_name(ck, vs, &mut seen.names);
    let ports = service::ports(ck, vs);
    service::unique(ck, vs, &ports, &mut seen.services);
    let scheduler = vs.scheduler.as_ref().map_or(Scheduler::Wrr, |s| s.value);
    let scheduler_flags = scheduler::flags(ck, &vs.scheduler_flags, scheduler);
    let mh_table_size = scheduler::mh_table_size(ck, vs.mh_table_size.as_ref(), scheduler);
    let persistence = persistence::check(ck, vs);
    let ops = service::ops(ck, vs);
    let forwarding = vs.forwarding.as_ref().map_or(Forwarding::Dr, |f| f.value);
    ck.unicast(&vs.address, "a virtual server's address");
    service::nat_ports(ck, vs, forwarding, &ports);
    let real_servers = real_server::check(ck, vs, forwarding, &ports);
    if forwarding == Forwarding::Nat {
        real_server::unique_nat(ck, vs, &real_servers, &ports, &mut seen.nat);
    }
    let local = fullnat::check(ck, vs, forwarding, &real_servers, &mut seen.local);
    let first_port = ports[0];
    VirtualServer {
        name: vs.name.value.clone(),
        address: vs.address.value,
        ports,
        protocol: vs.protocol.value,
        scheduler,
        scheduler_flags,
        mh_table_size,
        persistence,
        ops,
        forwarding,
        local,
        real_servers,
        quorum: quorum::quorum(ck, vs),
        hysteresis: quorum::hysteresis(ck, vs),
        quorum_up: ck.script(&vs.quorum_up, "quorum_up"),
        quorum_down: ck.script(&vs.quorum_down, "quorum_down"),
        quorum_vrrp: vs
            .quorum_vrrp
            .as_ref()
            .map(|q| quorum::vrrp(ck, q, instances)),
        sorry_server: vs
            .sorry_server
            .as_ref()
            .map(|s| quorum::sorry_server(ck, s, vs.address.value, first_port)),
        // Filled in by `announce::apply`, which knows the top-level settings.
        announce: None,
    }
}
