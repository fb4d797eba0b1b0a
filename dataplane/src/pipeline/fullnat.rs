//! A FullNAT flow's side of the decision: the local pair it leaves from (taken from its
//! service's pool at its first packet, given back when the flow ends), the reply entry
//! the steering program translates its replies by, and the client's address option on
//! the segments that open the connection.

use std::net::IpAddr;

use super::sync::send_record;
use super::{FamilyKey, Parsed, Pipeline};
use crate::counters::WorkerCounters;
use crate::flow::table::{FLAG_FULLNAT, FLAG_NAT_KNOWN, FLAG_PAIR_BORROWED, FLAG_TOA_ACKED};
use crate::flow::Flow;
use crate::fullnat::{FullNat, Held, LocalPort};
use crate::packet::Packet;
use crate::rewrite::toa::{self, Toa};
use crate::snapshot::{DestId, Snapshot};
use crate::verdict::DropReason;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

impl Pipeline {
    /// The local pair flow `index` (of service `svc_idx`, to `rip`:`rport` on real
    /// server `dest`) leaves from; its first packet takes one, and queues the reply
    /// entry, as NAT tells its connections (again after a state change or an idle
    /// spell). No pair free: the flow is forgotten and the packet dropped, counted.
    pub(super) fn fullnat_from<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        flow: Option<usize>,
        k: &K,
        dest: DestId,
        (rip, rport): (IpAddr, u16),
    ) -> Result<(IpAddr, u16), DropReason> {
        // One-packet scheduling keeps no flow: the configuration refuses it for FullNAT.
        let index = flow.ok_or(DropReason::NoDestination)?;
        let f = *K::table(&self.tables).get(index);
        if f.flags & FLAG_FULLNAT != 0 {
            let held = self.fullnat.held::<K::Fast>(index);
            let pair = held.map(|h| h.pair).ok_or(DropReason::NoDestination)?;
            let laddr = local_addr(snap, pair.addr())?;
            if f.flags & FLAG_NAT_KNOWN == 0 {
                K::table_mut(&mut self.tables).get_mut(index).flags |= FLAG_NAT_KNOWN;
                let reply = k.fnat_reply_key(rip, rport, laddr, pair.port());
                // Told again: for another real server, the old key goes.
                self.fullnat.rekey::<K::Fast>(index, reply);
                self.fullnat.ops.upsert(reply, k.fnat_value(dest));
            }
            return Ok((laddr, pair.port()));
        }
        let Some(pair) = self.fullnat.pools.take(svc_idx) else {
            self.forget(index, &f);
            return Err(DropReason::FullnatNoPort);
        };
        let laddr = match local_addr(snap, pair.addr()) {
            Ok(a) => a,
            Err(r) => {
                self.fullnat.pools.give_back(pair);
                return Err(r);
            }
        };
        let reply = k.fnat_reply_key(rip, rport, laddr, pair.port());
        let held = Held {
            pair,
            reply,
            synced: false,
        };
        if !self.fullnat.hold::<K::Fast>(index, held) {
            self.fullnat.pools.give_back(pair);
            return Err(DropReason::NoDestination);
        }
        if let Some(c) = self.counters.local_ports.get(usize::from(pair.addr())) {
            c.inc();
        }
        let f = K::table_mut(&mut self.tables).get_mut(index);
        f.flags |= FLAG_FULLNAT | FLAG_NAT_KNOWN;
        self.fullnat.ops.upsert(reply, k.fnat_value(dest));
        if let (Some(ch), PROTO_UDP) = (self.sync.as_deref(), k.proto()) {
            // A UDP flow is sent when it is new: with its pair, now that it has one.
            let (f, ttl) = (*f, self.timeouts.udp.max(1));
            send_record(ch, &self.counters, &f, ttl, Some((laddr, pair.port())));
        }
        Ok((laddr, pair.port()))
    }

    /// Installs a peer's FullNAT connection in slot `index` with its pair: reserved in
    /// this worker's pool when the port is this worker's share (the others borrow it:
    /// they neither give it back nor remove its reply entry), and its reply entry
    /// written so that this director translates the replies the moment it takes over.
    /// False when the pair is not one of this director's, or already in use here.
    pub(super) fn install_fullnat<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        index: usize,
        k: &K,
        dest: DestId,
        (rip, rport): (IpAddr, u16),
        (laddr, lport): (IpAddr, u16),
    ) -> bool {
        let Some(id) = snap.local_id(laddr) else {
            return false;
        };
        let pair = LocalPort::new(id, lport);
        let reply = k.fnat_reply_key(rip, rport, laddr, lport);
        let f = *K::table(&self.tables).get(index);
        if f.flags & FLAG_FULLNAT != 0 {
            if self
                .fullnat
                .held::<K::Fast>(index)
                .is_some_and(|h| h.pair == pair)
            {
                // The same pair, perhaps to another real server now.
                self.fullnat.rekey::<K::Fast>(index, reply);
                self.fullnat.ops.upsert(reply, k.fnat_value(dest));
                return true;
            }
            release(&mut self.fullnat, &self.counters, index, &f);
        }
        let owned = self.fullnat.pools.owns(lport);
        if owned && !self.fullnat.pools.reserve(pair) {
            return false;
        }
        let held = Held {
            pair,
            reply,
            synced: true,
        };
        if !self.fullnat.hold::<K::Fast>(index, held) {
            if owned {
                self.fullnat.pools.give_back(pair);
            }
            return false;
        }
        if owned {
            if let Some(c) = self.counters.local_ports.get(usize::from(id)) {
                c.inc();
            }
        }
        let f = K::table_mut(&mut self.tables).get_mut(index);
        f.flags |= FLAG_FULLNAT | FLAG_NAT_KNOWN;
        f.flags &= !FLAG_PAIR_BORROWED;
        if !owned {
            f.flags |= FLAG_PAIR_BORROWED;
        }
        self.fullnat.ops.upsert(reply, k.fnat_value(dest));
        true
    }

    /// Turns a client's own address option into NOPs on every segment, then adds the
    /// director's to a segment that opens the connection: the SYN, and the handshake's
    /// first ACK (a data-less ACK, once per flow), where the `toa` module on a real
    /// server looks for it. Call before the rewrite; true when added
    /// (the rewrite's TCP checksum is then computed whole, `toa::finish4`).
    pub(super) fn fullnat_toa<K: FamilyKey>(
        &mut self,
        flow: Option<usize>,
        p: &Parsed<K>,
        pkt: &mut Packet<'_>,
    ) -> bool {
        if p.key.proto() != PROTO_TCP {
            return false;
        }
        // Only the director names the client: a client's own option would name anyone.
        if toa::scrub_frame(pkt.data_mut(), K::IS_V6) {
            self.counters.fullnat_toa_scrubbed.inc();
        }
        let syn = p.tcp_flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN;
        let first_ack = p.tcp_flags & (FLAG_SYN | FLAG_ACK | FLAG_FIN | FLAG_RST) == FLAG_ACK
            && flow.is_some_and(|i| K::table(&self.tables).get(i).flags & FLAG_TOA_ACKED == 0);
        if !syn && !first_ack {
            return false;
        }
        let added = if K::IS_V6 {
            toa::add6(pkt)
        } else {
            toa::add4(pkt)
        };
        match added {
            Toa::Added => {
                self.counters.fullnat_toa_added.inc();
                if let (true, Some(i)) = (first_ack, flow) {
                    K::table_mut(&mut self.tables).get_mut(i).flags |= FLAG_TOA_ACKED;
                }
                true
            }
            Toa::HasData => false,
            Toa::NoRoom => {
                self.counters.fullnat_toa_no_room.inc();
                false
            }
        }
    }
}

/// The address of local id `id` in `snap` (control keeps ids for the process's life).
fn local_addr(snap: &Snapshot, id: u16) -> Result<IpAddr, DropReason> {
    snap.local_addrs
        .get(usize::from(id))
        .copied()
        .ok_or(DropReason::NoDestination)
}

/// A flow in slot `index` leaves its table: a FullNAT one gives its pair back.
#[inline]
pub(super) fn release<K: FamilyKey>(
    fullnat: &mut FullNat,
    counters: &WorkerCounters,
    index: usize,
    flow: &Flow<K>,
) {
    if flow.flags & FLAG_FULLNAT == 0 || flow.flags & FLAG_PAIR_BORROWED != 0 {
        return;
    }
    if let Some(h) = fullnat.held::<K::Fast>(index) {
        if let Some(c) = counters.local_ports.get(usize::from(h.pair.addr())) {
            c.dec();
        }
    }
    fullnat.release::<K::Fast>(index);
}
