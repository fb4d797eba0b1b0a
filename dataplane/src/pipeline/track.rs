//! The flow table's side of a packet: find its connection or open one (scheduled), move
//! the TCP state and the real servers' active/inactive gauges, and free entries whose
//! connection ended or was replaced.

use super::fullnat::release;
use super::NodestPolicy;
use super::{FamilyKey, Parsed, Pipeline};
use crate::counters::WorkerCounters;
use crate::flow::table::{Slot, FLAG_NAT_KNOWN, FLAG_OFFLOADED};
use crate::flow::{Direction, Flow, TcpState};
use crate::snapshot::{DestId, Snapshot};
use crate::verdict::DropReason;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

impl Pipeline {
    /// The packet's real server and its flow's slot; a one-packet-scheduled datagram
    /// (`ops`) has no flow and is scheduled on its own.
    #[inline(always)]
    pub(super) fn connection<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        p: &Parsed<K>,
        now: u32,
    ) -> Result<(DestId, Option<usize>), DropReason> {
        if snap.services[svc_idx].ops && p.key.proto() == PROTO_UDP {
            let dest = self.schedule(snap, svc_idx, &p.key, now)?;
            self.counters.dests[dest as usize].conns.inc();
            return Ok((dest, None));
        }
        let (dest, index) = self.track(snap, svc_idx, p, now)?;
        Ok((dest, Some(index)))
    }

    /// Finds or creates the packet's flow, updates its state, returns its real server
    /// and the flow's slot.
    fn track<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        p: &Parsed<K>,
        now: u32,
    ) -> Result<(DestId, usize), DropReason> {
        let (index, created) = self.find_or_open(snap, svc_idx, p, now)?;
        let (old, ttl) = self.advance(index, p, now);
        if self.sync.is_some() {
            // Out of line: without sync the packet pays one test.
            self.sync_flow::<K>(index, old, created, ttl, now);
        }
        let dest = K::table(&self.tables).get(index).dest;
        self.keep_template(snap, svc_idx, &p.key, index, dest, now);
        Ok((dest, index))
    }

    /// The packet's flow's slot, and whether this packet opened it.
    #[inline]
    fn find_or_open<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        p: &Parsed<K>,
        now: u32,
    ) -> Result<(usize, bool), DropReason> {
        let mut found = K::table(&self.tables).lookup(&p.key, now);
        // As IPVS without sloppy_tcp: only a SYN opens a TCP connection the director has
        // not seen (a known one whose server left is rescheduled whatever the packet).
        if found.is_err()
            && p.key.proto() == PROTO_TCP
            && !snap.services[svc_idx].sloppy_tcp
            && p.tcp_flags & (FLAG_SYN | FLAG_ACK | FLAG_RST | FLAG_FIN) != FLAG_SYN
        {
            return match self.adopt(snap, svc_idx, p, now) {
                Some(index) => Ok((index, false)),
                None => Err(DropReason::NoFlow),
            };
        }
        if let Ok(index) = found {
            if self.replaced::<K>(snap, index, p)? {
                found = Err(Slot {
                    index,
                    evicts: false,
                });
            }
        }
        match found {
            Ok(index) => Ok((index, false)),
            Err(slot) => self
                .open(snap, svc_idx, &p.key, slot, now)
                .map(|i| (i, true)),
        }
    }

    /// Whether a known flow gives way to a new connection on its tuple (reused by a SYN,
    /// or its server left and `nodest` reschedules): its entry is freed, and the packet
    /// is treated as a miss. A server that left may drop the packet instead.
    #[inline]
    fn replaced<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        index: usize,
        p: &Parsed<K>,
    ) -> Result<bool, DropReason> {
        let flow = *K::table(&self.tables).get(index);
        let new_conn = p.key.proto() == PROTO_TCP
            && p.tcp_flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN
            && flow.tcp_state().reusable(Direction::InputOnly);
        let gone = snap.dest(flow.dest).is_none();
        if gone {
            match self.nodest {
                NodestPolicy::Drop => return Err(DropReason::DestUnavailable),
                NodestPolicy::Expire => {
                    self.forget(index, &flow);
                    return Err(DropReason::DestUnavailable);
                }
                NodestPolicy::Reschedule => self.counters.flows_rescheduled.inc(),
            }
        }
        if gone || new_conn {
            self.forget(index, &flow);
        }
        Ok(gone || new_conn)
    }

    /// A new connection: scheduled, and started in the miss's slot.
    fn open<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        k: &K,
        slot: Slot,
        now: u32,
    ) -> Result<usize, DropReason> {
        let dest = self.schedule(snap, svc_idx, k, now)?;
        // Scheduling may have put a persistence template in this very bucket, so a
        // persistent service looks again; otherwise the miss's slot stands.
        let slot = match snap.services[svc_idx].persistence {
            None => slot,
            Some(_) => match K::table(&self.tables).lookup(k, now) {
                Err(slot) => slot,
                Ok(index) => Slot {
                    index,
                    evicts: false,
                },
            },
        };
        self.count_live_eviction::<K>(slot);
        self.reclaim::<K>(slot);
        self.start(slot.index, k, dest, now);
        Ok(slot.index)
    }

    /// Counts a packet's new flow taking the slot of a flow that was not closing
    /// (`live_evicted`: the SYN guard's sign of a full table).
    #[inline]
    fn count_live_eviction<K: FamilyKey>(&self, slot: Slot) {
        if !slot.evicts {
            return;
        }
        let old = K::table(&self.tables).get(slot.index);
        if old.occupied() && !old.is_template() && !old.tcp_state().is_closing() {
            self.counters.live_evicted.inc();
        }
    }

    /// The packet's effect on its flow: the TCP state and the gauges that follow it, and
    /// when it expires. Returns the state before and the timeout.
    #[inline]
    fn advance<K: FamilyKey>(&mut self, index: usize, p: &Parsed<K>, now: u32) -> (TcpState, u32) {
        let flow = K::table_mut(&mut self.tables).get_mut(index);
        let old = flow.tcp_state();
        let ttl = if p.key.proto() == PROTO_TCP {
            let s = old.next(Direction::InputOnly, p.tcp_flags);
            if s != old {
                // Told again at each change: a flood that pushed its reply key out of the
                // steering program's LRU map cannot keep it out.
                flow.flags &= !FLAG_NAT_KNOWN;
            }
            flow.state = s as u8;
            if s.is_active() != old.is_active() {
                let c = &self.counters.dests[flow.dest as usize];
                let (from, to) = if s.is_active() {
                    (&c.inactive, &c.active)
                } else {
                    (&c.active, &c.inactive)
                };
                from.dec();
                to.inc();
            }
            self.timeouts.tcp(s)
        } else {
            self.timeouts.udp
        };
        if flow.expires.saturating_sub(now) < ttl / 2 {
            // Idle past half its timeout: its reply key may have aged out; told again.
            flow.flags &= !FLAG_NAT_KNOWN;
        }
        flow.expires = now.saturating_add(ttl.max(1));
        (old, ttl)
    }

    /// Frees a live flow's entry: taken back from the fast path and out of the gauges.
    pub(super) fn forget<K: FamilyKey>(&mut self, index: usize, flow: &Flow<K>) {
        self.take_back(flow);
        release(&mut self.fullnat, &self.counters, index, flow);
        uncount(&self.counters, flow);
        K::table_mut(&mut self.tables).remove(index);
    }

    /// Takes a flow's entry back from the fast path, if it has one.
    #[inline]
    pub(super) fn take_back<K: FamilyKey>(&mut self, flow: &Flow<K>) {
        if flow.flags & FLAG_OFFLOADED != 0 {
            self.fast.remove(flow.key.fast_key());
        }
    }

    /// Accounts for whatever connection occupies `slot` before it is overwritten: an
    /// eviction if it was live, an expiry otherwise.
    pub(super) fn reclaim<K: FamilyKey>(&mut self, slot: Slot) {
        let old = *K::table(&self.tables).get(slot.index);
        if old.occupied() {
            self.take_back(&old);
            release(&mut self.fullnat, &self.counters, slot.index, &old);
        }
        if old.occupied() && !old.is_template() {
            if slot.evicts {
                self.counters.flows_evicted.inc();
            } else {
                self.counters.flows_expired.inc();
            }
            uncount(&self.counters, &old);
        }
    }

    /// Starts a new connection to `dest` in slot `index`, counted inactive until
    /// established.
    pub(super) fn start<K: FamilyKey>(&mut self, index: usize, k: &K, dest: DestId, now: u32) {
        let c = &self.counters.dests[dest as usize];
        c.conns.inc();
        c.inactive.inc();
        self.counters.flows_created.inc();
        K::table_mut(&mut self.tables).insert(
            Slot {
                index,
                evicts: false,
            },
            Flow {
                key: *k,
                dest,
                expires: now + 1,
                template_seen: now,
                ..Flow::default()
            },
        );
    }
}

/// Takes a connection out of its real server's active/inactive gauge.
pub(super) fn uncount<K>(counters: &WorkerCounters, f: &Flow<K>) {
    let c = &counters.dests[f.dest as usize];
    if f.tcp_state().is_active() {
        c.active.dec();
    } else {
        c.inactive.dec();
    }
}
