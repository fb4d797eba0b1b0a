//! Between the workers' records (flow keys, real-server ids) and the wire's entries
//! (addresses and ports): ids are this director's own, so the snapshot names them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvs_dataplane::flow::{FlowKey, FlowKey6};
use xvs_dataplane::sync::{SyncKey, SyncRecord};
use xvs_dataplane::{Forwarding, Snapshot};

use super::wire::{Entry, Reject, MAX_TIMEOUT};

/// The entry for `rec`; None when its real server has left the snapshot.
pub fn entry(snap: &Snapshot, rec: &SyncRecord) -> Option<Entry> {
    let d = snap.dest(rec.dest)?;
    let (client, vaddr, cport, vport, proto): (IpAddr, IpAddr, u16, u16, u8) = match rec.key {
        SyncKey::V4(k) => (
            Ipv4Addr::from(k.saddr).into(),
            Ipv4Addr::from(k.daddr).into(),
            k.sport,
            k.dport,
            k.proto,
        ),
        SyncKey::V6(k) => (
            Ipv6Addr::from(k.saddr).into(),
            Ipv6Addr::from(k.daddr).into(),
            k.sport,
            k.dport,
            k.proto,
        ),
    };
    Some(Entry {
        template: rec.template,
        proto: proto & 0x7f,
        state: if rec.template { 0 } else { rec.state },
        timeout: rec.timeout.clamp(1, MAX_TIMEOUT),
        client,
        cport,
        vaddr,
        vport,
        raddr: d.addr,
        rport: d.port,
        local: rec.local,
    })
}

/// The record for a received entry, and its service's forwarding method: the service
/// and real server must be this director's too.
pub fn record(snap: &Snapshot, e: &Entry) -> Result<(SyncRecord, Forwarding), Reject> {
    if e.client.is_ipv6() != e.vaddr.is_ipv6() || e.raddr.is_ipv6() != e.vaddr.is_ipv6() {
        return Err(Reject::Malformed);
    }
    let svc = snap
        .lookup(e.vaddr, e.vport, e.proto)
        .map(|i| &snap.services[i])
        .ok_or(Reject::UnknownService)?;
    let dest = svc
        .dests
        .iter()
        .copied()
        .find(|&id| {
            snap.dest(id)
                .is_some_and(|d| d.addr == e.raddr && d.port == e.rport)
        })
        .ok_or(Reject::UnknownRealServer)?;
    // A FullNAT connection goes on only from a local address of this director's, and
    // only a FullNAT service's connection has one.
    let fullnat = svc.forwarding == Forwarding::FullNat && !e.template;
    match e.local {
        Some((laddr, _)) if fullnat && snap.local_id(laddr).is_some() => {}
        None if !fullnat => {}
        _ => return Err(Reject::FullNat),
    }
    let proto = if e.template { 0x80 | e.proto } else { e.proto };
    let key = match (e.client, e.vaddr) {
        (IpAddr::V4(c), IpAddr::V4(v)) => {
            SyncKey::V4(FlowKey::new(c.into(), v.into(), e.cport, e.vport, proto))
        }
        (IpAddr::V6(c), IpAddr::V6(v)) => {
            SyncKey::V6(FlowKey6::new(c.into(), v.into(), e.cport, e.vport, proto))
        }
        _ => return Err(Reject::Malformed),
    };
    let rec = SyncRecord {
        key,
        dest,
        state: e.state,
        template: e.template,
        timeout: e.timeout,
        local: e.local,
    };
    Ok((rec, svc.forwarding))
}
