//! NAT and FullNAT replies the steering program translated and handed over to be sent
//! (the snapshot's `nat_relay`): on a link where its own `XDP_TX` is not delivered, a
//! worker's socket sends them. Such a frame comes from a NAT or FullNAT service's VIP; the steering program
//! hands a worker no other frame from a VIP (one to a service from a VIP is martian and
//! dropped there), so that source is the mark.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Pipeline;
use crate::packet::Packet;
use crate::rewrite;
use crate::snapshot::{Forwarding, Snapshot};
use crate::verdict::{DropReason, Verdict};
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

impl Pipeline {
    /// A frame for no service may be a NAT reply the steering program translated and
    /// handed over to be sent (`Snapshot::nat_relay`): sent on as it is. Out of line, off
    /// every other frame's path.
    #[inline(always)]
    pub(super) fn relay(
        &self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        decided: Result<Verdict, DropReason>,
    ) -> Result<Verdict, DropReason> {
        if decided != Err(DropReason::NoService) || !snap.nat_relay {
            return decided;
        }
        self.relay_reply(snap, pkt).ok_or(DropReason::NoService)
    }

    #[inline(never)]
    fn relay_reply(&self, snap: &Snapshot, pkt: &mut Packet<'_>) -> Option<Verdict> {
        if !is_relayed_reply(snap, pkt.data()) {
            return None;
        }
        if snap.complete_partial && rewrite::partial::complete(pkt.data_mut()) {
            self.counters.checksums_completed.inc();
        }
        self.counters.nat_relayed.inc();
        Some(Verdict::Tx)
    }
}

/// Whether `frame` is a NAT reply (or an ICMP error for a NAT client) the steering
/// program translated: its source is a NAT service's VIP, and for TCP and UDP its source
/// port that service's.
pub fn is_relayed_reply(snap: &Snapshot, frame: &[u8]) -> bool {
    let Some(ip) = frame.get(HEADER_LEN..) else {
        return false;
    };
    let Some(t) = frame.get(12..14) else {
        return false;
    };
    let (src, proto, l4) = match u16::from_be_bytes([t[0], t[1]]) {
        ETHERTYPE_IPV4 if ip.len() >= 20 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            (IpAddr::V4(src), ip[9], ip.get(ihl..))
        }
        ETHERTYPE_IPV6 if ip.len() >= 40 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&ip[8..24]);
            (IpAddr::V6(Ipv6Addr::from(a)), ip[6], ip.get(40..))
        }
        _ => return false,
    };
    match (proto, l4) {
        (PROTO_TCP | PROTO_UDP, Some(l4)) if l4.len() >= 2 => {
            let sport = u16::from_be_bytes([l4[0], l4[1]]);
            snap.lookup(src, sport, proto)
                .is_some_and(|i| translated(snap.services[i].forwarding))
        }
        (PROTO_TCP | PROTO_UDP, _) => false,
        // ICMP errors: from any NAT service's address.
        _ => snap
            .services
            .iter()
            .any(|s| translated(s.forwarding) && s.key.addr == src),
    }
}

/// Whether the steering program translates the service's replies: NAT's and FullNAT's.
fn translated(f: Forwarding) -> bool {
    matches!(f, Forwarding::Nat | Forwarding::FullNat)
}
