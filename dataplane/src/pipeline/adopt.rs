//! Connections a worker never saw that the fast path's map holds: those a killed xvs's
//! steering program left and a restarted one took over (`xvs_bpf::Leftover`). The new
//! process starts a new fast-path generation, so each such flow's next packet reaches
//! a worker, which would drop it (`no_flow`: only a SYN opens a TCP flow). Instead it
//! looks the flow up in the map and, when the entry names a real server of the packet's
//! service as this snapshot has it (the same id and MAC; for NAT, address and port),
//! adopts it as established; the
//! packet then goes on as any packet of a known flow, and the flow is offered to the
//! fast path again under the new generation.

use super::family::FamilyKey;
use super::parse::Parsed;
use super::Pipeline;
use crate::flow::TcpState;
use crate::offload::{FastKeyOf, FastValue};
use crate::snapshot::{Forwarding, Snapshot};

/// Looks a fast-path key up in the steering program's map (the worker's, a syscall).
pub type AdoptLookup = Box<dyn FnMut(FastKeyOf) -> Option<FastValue> + Send>;

/// Map lookups a worker makes per batch for packets of unknown TCP flows: a flood of
/// spoofed ACKs costs at most this many syscalls a batch; a real flow's packet past the
/// budget is dropped as before and adopted at its retransmission.
pub const ADOPT_PER_BATCH: u32 = 16;

impl Pipeline {
    /// Adopts unknown flows from `lookup` (the fast path's map).
    pub fn set_adoption(&mut self, lookup: AdoptLookup) {
        self.adopt = Some(lookup);
    }

    /// The slot of the flow of `p` (an unknown TCP flow's non-SYN packet to service
    /// `svc_idx`) adopted from the fast path's map, or `None`.
    #[cold]
    #[inline(never)]
    pub(super) fn adopt<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        p: &Parsed<K>,
        now: u32,
    ) -> Option<usize> {
        if self.adopt_budget == 0 {
            return None;
        }
        self.adopt_budget -= 1;
        let entry = (self.adopt.as_mut()?)(p.key.fast_key_of())?;
        let svc = &snap.services[svc_idx];
        let dest = entry.stats_slot;
        // Only DR, TUN and NAT flows take the fast path, so only they are adopted from
        // it; a NAT entry must name the server's address and port as this snapshot has
        // them.
        let nat = svc.forwarding == Forwarding::Nat;
        let named = matches!(
            svc.forwarding,
            Forwarding::Dr | Forwarding::Tun | Forwarding::Nat
        ) && svc.persistence.is_none()
            && svc.dests.contains(&dest)
            && (entry.nat == 1) == nat
            && snap.dest(dest).is_some_and(|d| {
                d.mac == Some(entry.dst_mac) && (!nat || nat_names(d, &entry, p.key.ports().1))
            });
        if !named {
            return None;
        }
        let slot = K::table(&self.tables).lookup(&p.key, now).err()?;
        self.reclaim::<K>(slot);
        self.start(slot.index, &p.key, dest, now);
        K::table_mut(&mut self.tables).get_mut(slot.index).state = TcpState::Established as u8;
        let c = &self.counters.dests[dest as usize];
        c.inactive.dec();
        c.active.inc();
        self.counters.flows_adopted.inc();
        Some(slot.index)
    }
}

/// Whether a NAT entry's real server is `d`: its address, and its port (the packet's own,
/// `vport`, when the server has none).
fn nat_names(d: &crate::snapshot::Dest, entry: &FastValue, vport: u16) -> bool {
    let port = if d.port == 0 { vport } else { d.port };
    d.addr == std::net::IpAddr::from(entry.daddr) && entry.nat_port == port.to_be_bytes()
}
