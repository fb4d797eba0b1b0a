//! The XDP fast path, from the worker's side. The worker stays the source of truth: the
//! pipeline, deciding a packet of an established DR, TUN or NAT flow, queues an entry for the
//! steering program's `xvs_fast_flows` map (`FastOps`); the worker writes the batch's
//! entries with one syscall (`FastMap`). The steering program then forwards the flow's
//! next packets itself, except SYN, FIN and RST, which still come here (FIN and RST
//! remove the entry, a SYN reusing the port too), as do packets of an entry that is
//! missing, idle past its timeout, or of an older snapshot generation: such a packet,
//! reaching the worker, has it written again. The layouts are `bpf/include/xvs_abi.h`'s
//! (asserted in `xvs_bpf::abi`).

use std::os::fd::OwnedFd;

use crate::flow::{FlowKey, FlowKey6};
use crate::sys::{Map, MapError, Pod};

/// `struct xvs_fast_key`: the 5-tuple, network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastKey {
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub proto: u8,
    pub pad: [u8; 3],
}

impl FastKey {
    pub fn of(k: &FlowKey) -> FastKey {
        FastKey {
            saddr: k.saddr.to_be_bytes(),
            daddr: k.daddr.to_be_bytes(),
            sport: k.sport.to_be_bytes(),
            dport: k.dport.to_be_bytes(),
            proto: k.proto,
            pad: [0; 3],
        }
    }
}

/// `struct xvs_fast6_key`: an IPv6 flow's 5-tuple, network order (`xvs_fast_flows6`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastKey6 {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub proto: u8,
    pub pad: [u8; 3],
}

impl FastKey6 {
    pub fn of(k: &FlowKey6) -> FastKey6 {
        FastKey6 {
            saddr: k.saddr.to_be_bytes(),
            daddr: k.daddr.to_be_bytes(),
            sport: k.sport.to_be_bytes(),
            dport: k.dport.to_be_bytes(),
            proto: k.proto,
            pad: [0; 3],
        }
    }
}

/// A fast-path key of either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastKeyOf {
    V4(FastKey),
    V6(FastKey6),
}

/// `struct xvs_fast_value`: where the flow's packets go.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastValue {
    /// The real server's MAC (DR, NAT) or the next hop's (TUN).
    pub dst_mac: [u8; 6],
    /// 1: IPIP from `tun_saddr` to `daddr`.
    pub tun: u8,
    /// 1: the destination becomes `daddr`:`nat_port` (NAT over IPv4).
    pub nat: u8,
    pub tun_saddr: [u8; 4],
    /// TUN: the outer destination; NAT: the real server's address.
    pub daddr: [u8; 4],
    pub mtu: u16,
    /// NAT: the real server's port, network order.
    pub nat_port: [u8; 2],
    /// The real server's id (its slot in `xvs_fast_stats`).
    pub stats_slot: u32,
    pub generation: u32,
    /// Idle seconds after which the packets come back to the worker.
    pub timeout: u32,
    /// CLOCK_MONOTONIC_COARSE nanoseconds of the last packet (the worker writes now).
    pub last_seen: u64,
}

const _: () = assert!(std::mem::size_of::<FastKey>() == 16);
const _: () = assert!(std::mem::size_of::<FastKey6>() == 40);
const _: () = assert!(std::mem::size_of::<FastValue>() == 40);

/// Most entries one batch can queue: one per frame, and removals as many again.
pub const MAX_OPS: usize = 128;

/// One family's entries a batch wrote and removed.
#[derive(Debug)]
pub struct FastBatch<K> {
    pub keys: Vec<K>,
    pub values: Vec<FastValue>,
    pub removed: Vec<K>,
}

impl<K> Default for FastBatch<K> {
    fn default() -> Self {
        FastBatch {
            keys: Vec::with_capacity(MAX_OPS),
            values: Vec::with_capacity(MAX_OPS),
            removed: Vec::with_capacity(MAX_OPS),
        }
    }
}

impl<K> FastBatch<K> {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.removed.is_empty()
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.removed.clear();
    }
}

/// A fast-path key of either family: which batch (and map) it belongs to.
pub trait FastFamily: Copy {
    fn batch(ops: &mut FastOps) -> &mut FastBatch<Self>;
}

impl FastFamily for FastKey {
    #[inline(always)]
    fn batch(ops: &mut FastOps) -> &mut FastBatch<Self> {
        &mut ops.v4
    }
}

impl FastFamily for FastKey6 {
    #[inline(always)]
    fn batch(ops: &mut FastOps) -> &mut FastBatch<Self> {
        &mut ops.v6
    }
}

/// The entries a batch wrote and removed, for the worker to apply after the batch, for
/// `xvs_fast_flows` and `xvs_fast_flows6`. Allocated once; a batch never queues more
/// than `MAX_OPS` (one per frame) of a kind.
#[derive(Debug, Default)]
pub struct FastOps {
    pub v4: FastBatch<FastKey>,
    pub v6: FastBatch<FastKey6>,
    /// Ops that did not fit (never with batches of `MAX_OPS / 2` frames).
    pub dropped: u64,
}

impl FastOps {
    pub fn upsert<K: FastFamily>(&mut self, key: K, value: FastValue) {
        let b = K::batch(self);
        if b.keys.len() < MAX_OPS {
            b.keys.push(key);
            b.values.push(value);
        } else {
            self.dropped += 1;
        }
    }

    pub fn remove<K: FastFamily>(&mut self, key: K) {
        let b = K::batch(self);
        if b.removed.len() < MAX_OPS {
            b.removed.push(key);
        } else {
            self.dropped += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Stamps every entry written with `now` (CLOCK_MONOTONIC_COARSE ns).
    pub fn stamp(&mut self, now: u64) {
        for v in self.v4.values.iter_mut().chain(self.v6.values.iter_mut()) {
            v.last_seen = now;
        }
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

/// The steering program's `xvs_fast_flows` and `xvs_fast_flows6`, written by a worker.
pub struct FastMap {
    v4: Map<FastKey, FastValue>,
    v6: Map<FastKey6, FastValue>,
}

impl FastMap {
    /// The maps, from `xvs_bpf::Steer::fast_flows_fds` (duplicates the worker owns);
    /// refused if their layouts are not this build's.
    pub fn new(v4: OwnedFd, v6: OwnedFd) -> Result<FastMap, MapError> {
        Ok(FastMap {
            v4: Map::new(v4)?,
            v6: Map::new(v6)?,
        })
    }

    /// Writes and removes what a batch queued (one syscall per family for the writes,
    /// one per removal, which are rare: FIN, RST, a reused port); empties `ops`. Returns
    /// the entries that could not be written.
    pub fn apply(&self, ops: &mut FastOps) -> u64 {
        let failed = apply(&self.v4, &ops.v4) + apply(&self.v6, &ops.v6);
        ops.clear();
        failed
    }

    /// Another handle on the same maps.
    pub fn try_clone(&self) -> std::io::Result<FastMap> {
        Ok(FastMap {
            v4: self.v4.try_clone()?,
            v6: self.v6.try_clone()?,
        })
    }

    /// The entry for `key`, of either family, if the map has it.
    pub fn entry(&self, key: FastKeyOf) -> Option<FastValue> {
        match key {
            FastKeyOf::V4(k) => self.v4.lookup(&k),
            FastKeyOf::V6(k) => self.v6.lookup(&k),
        }
    }

    /// The entry's last packet, if the map has it.
    pub fn last_seen(&self, key: &FastKey) -> Option<u64> {
        self.v4.lookup(key).map(|v| v.last_seen)
    }

    /// The same for an IPv6 flow.
    pub fn last_seen6(&self, key: &FastKey6) -> Option<u64> {
        self.v6.lookup(key).map(|v| v.last_seen)
    }
}

fn apply<K: Pod>(map: &Map<K, FastValue>, b: &FastBatch<K>) -> u64 {
    let mut failed = 0;
    if !b.keys.is_empty() {
        let n = map.update_batch(&b.keys, &b.values);
        failed += (b.keys.len() - n) as u64;
    }
    for k in &b.removed {
        // Absent already (LRU evicted it, or it was never written): nothing to do.
        let _ = map.delete(k);
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_network_order() {
        let k = FastKey::of(&FlowKey::new(0x0a00_0001, 0x0a00_0064, 40000, 80, 6));
        assert_eq!(k.saddr, [10, 0, 0, 1]);
        assert_eq!(k.daddr, [10, 0, 0, 100]);
        assert_eq!(k.sport, 40000u16.to_be_bytes());
        assert_eq!(k.dport, [0, 80]);
        assert_eq!(k.proto, 6);
    }

    #[test]
    fn ops_are_bounded_and_cleared() {
        let mut ops = FastOps::default();
        for _ in 0..MAX_OPS + 3 {
            ops.upsert(FastKey::default(), FastValue::default());
        }
        assert_eq!((ops.v4.keys.len(), ops.dropped), (MAX_OPS, 3));
        assert_eq!(
            ops.v4.keys.capacity(),
            MAX_OPS,
            "no allocation past the first"
        );
        ops.upsert(FastKey6::default(), FastValue::default());
        assert_eq!(ops.v6.keys.len(), 1, "IPv6 in a batch of its own");
        ops.clear();
        assert!(ops.is_empty());
    }
}
