//! The forwarding dispatch: a scheduled frame rewritten by its service's method for its
//! real server, or replaced by the ICMP error that says it cannot be tunnelled.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::tun::TunError;
use super::tun6::Tun6Error;
use super::{dr, frag_needed, fullnat, nat, nat6, tun, tun6};
use crate::packet::Packet;
use crate::snapshot::{Forwarding, Snapshot};
use crate::verdict::DropReason;
use crate::wire::ethernet::Mac;

/// Where a frame goes: the real server's next hop, address and port (NAT's, resolved:
/// the packet's own when the server has none), and for FullNAT the local pair it leaves
/// from.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub mac: Mac,
    pub addr: IpAddr,
    pub port: u16,
    pub from: Option<(IpAddr, u16)>,
}

/// What became of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Rewritten for the real server, out of the interface it came in on.
    Out,
    /// Rewritten for the real server, out of the internal interface (two-arm NAT).
    Internal,
    /// Replaced by an ICMP error to its sender (too big to tunnel with DF set), which
    /// goes out of the interface it came in on.
    Replied,
}

/// Rewrites `pkt` by `method` for `to`. `ip_ident` is the worker's IPv4 identification
/// counter for the tunnel headers it writes.
#[inline(always)]
pub fn forward(
    pkt: &mut Packet<'_>,
    snap: &Snapshot,
    method: Forwarding,
    to: &Target,
    ip_ident: &mut u16,
) -> Result<Forwarded, DropReason> {
    match (method, to.addr) {
        (Forwarding::Dr, _) => {
            dr::rewrite(pkt.data_mut(), to.mac, snap.local_mac);
            Ok(Forwarded::Out)
        }
        (Forwarding::Nat, IpAddr::V6(rip)) => {
            nat6::dnat(pkt.data_mut(), to.mac, nat_source(snap), rip, to.port);
            Ok(nat_side(snap))
        }
        (Forwarding::Nat, IpAddr::V4(rip)) => {
            nat::dnat(pkt.data_mut(), to.mac, nat_source(snap), rip, to.port);
            Ok(nat_side(snap))
        }
        (Forwarding::FullNat, _) => fullnat(pkt.data_mut(), snap, to),
        (Forwarding::Tun, IpAddr::V6(rip)) => tunnel6(pkt, snap, to.mac, rip),
        (Forwarding::Tun, IpAddr::V4(rip)) => {
            *ip_ident = ip_ident.wrapping_add(1);
            tunnel4(pkt, snap, to.mac, rip, *ip_ident)
        }
    }
}

/// A FullNAT request from its local pair (the pipeline gives one of the real server's
/// family).
fn fullnat(frame: &mut [u8], snap: &Snapshot, to: &Target) -> Result<Forwarded, DropReason> {
    let src = nat_source(snap);
    match (to.from, to.addr) {
        (Some((IpAddr::V4(laddr), lport)), IpAddr::V4(rip)) => {
            let ends = fullnat::Ends {
                laddr,
                lport,
                rip,
                rport: to.port,
            };
            fullnat::rewrite4(frame, to.mac, src, ends);
        }
        (Some((IpAddr::V6(laddr), lport)), IpAddr::V6(rip)) => {
            let ends = fullnat::Ends {
                laddr,
                lport,
                rip,
                rport: to.port,
            };
            fullnat::rewrite6(frame, to.mac, src, ends);
        }
        _ => return Err(DropReason::NoDestination),
    }
    Ok(nat_side(snap))
}

/// The MAC a NAT frame leaves from: the internal interface's on a two-arm director.
fn nat_source(snap: &Snapshot) -> Mac {
    snap.internal_mac.unwrap_or(snap.local_mac)
}

fn nat_side(snap: &Snapshot) -> Forwarded {
    if snap.internal_mac.is_some() {
        Forwarded::Internal
    } else {
        Forwarded::Out
    }
}

fn tunnel4(
    pkt: &mut Packet<'_>,
    snap: &Snapshot,
    mac: Mac,
    rip: Ipv4Addr,
    ident: u16,
) -> Result<Forwarded, DropReason> {
    let r = tun::encapsulate(
        pkt,
        mac,
        snap.local_mac,
        snap.local_addr,
        rip,
        snap.mtu,
        ident,
    );
    match r {
        Ok(()) => Ok(Forwarded::Out),
        Err(TunError::TooBig { dont_frag: true }) => {
            let mtu = snap.mtu.saturating_sub(tun::OVERHEAD as u16);
            frag_needed::reply(pkt, snap.local_mac, snap.local_addr, mtu);
            Ok(Forwarded::Replied)
        }
        Err(TunError::TooBig { dont_frag: false }) => Err(DropReason::TooBig),
        Err(TunError::NoHeadroom) => Err(DropReason::NoHeadroom),
    }
}

fn tunnel6(
    pkt: &mut Packet<'_>,
    snap: &Snapshot,
    mac: Mac,
    rip: Ipv6Addr,
) -> Result<Forwarded, DropReason> {
    // No IPv6 address on the interface: control refuses to start so.
    let src = snap.local_addr6.ok_or(DropReason::NoDestination)?;
    match tun6::encapsulate(pkt, mac, snap.local_mac, src, rip, snap.mtu) {
        Ok(()) => Ok(Forwarded::Out),
        Err(Tun6Error::TooBig { mtu }) => {
            tun6::packet_too_big(pkt, snap.local_mac, src, mtu);
            Ok(Forwarded::Replied)
        }
        Err(Tun6Error::NoHeadroom) => Err(DropReason::NoHeadroom),
    }
}
