//! The XDP fast path, from the worker's side. The worker stays the source of truth: the
//! pipeline, deciding a packet of an established DR or TUN flow, queues an entry for the
//! steering program's `xvs_fast_flows` map (`FastOps`); the worker writes the batch's
//! entries with one syscall (`FastMap`). The steering program then forwards the flow's
//! next packets itself, except SYN, FIN and RST, which still come here (FIN and RST
//! remove the entry, a SYN reusing the port too), as do packets of an entry that is
//! missing, idle past its timeout, or of an older snapshot generation: such a packet,
//! reaching the worker, has it written again. The layouts are `bpf/include/xvs_abi.h`'s
//! (asserted in `xvs_bpf::abi`).

use crate::flow::FlowKey;

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

/// `struct xvs_fast_value`: where the flow's packets go.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastValue {
    pub dst_mac: [u8; 6],
    /// 1: IPIP from `tun_saddr` to `tun_daddr`.
    pub tun: u8,
    pub pad: u8,
    pub tun_saddr: [u8; 4],
    pub tun_daddr: [u8; 4],
    pub mtu: u16,
    pub pad2: u16,
    /// The real server's id (its slot in `xvs_fast_stats`).
    pub stats_slot: u32,
    pub generation: u32,
    /// Idle seconds after which the packets come back to the worker.
    pub timeout: u32,
    /// CLOCK_MONOTONIC_COARSE nanoseconds of the last packet (the worker writes now).
    pub last_seen: u64,
}

const _: () = assert!(std::mem::size_of::<FastKey>() == 16);
const _: () = assert!(std::mem::size_of::<FastValue>() == 40);

/// Most entries one batch can queue: one per frame, and removals as many again.
pub const MAX_OPS: usize = 128;

/// The entries a batch wrote and removed, for the worker to apply after the batch.
/// Allocated once; a batch never queues more than `MAX_OPS` (one per frame).
#[derive(Debug)]
pub struct FastOps {
    pub keys: Vec<FastKey>,
    pub values: Vec<FastValue>,
    pub removed: Vec<FastKey>,
    /// Ops that did not fit (never with batches of `MAX_OPS / 2` frames).
    pub dropped: u64,
}

impl Default for FastOps {
    fn default() -> Self {
        FastOps {
            keys: Vec::with_capacity(MAX_OPS),
            values: Vec::with_capacity(MAX_OPS),
            removed: Vec::with_capacity(MAX_OPS),
            dropped: 0,
        }
    }
}

impl FastOps {
    pub fn upsert(&mut self, key: FastKey, value: FastValue) {
        if self.keys.len() < MAX_OPS {
            self.keys.push(key);
            self.values.push(value);
        } else {
            self.dropped += 1;
        }
    }

    pub fn remove(&mut self, key: FastKey) {
        if self.removed.len() < MAX_OPS {
            self.removed.push(key);
        } else {
            self.dropped += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.removed.is_empty()
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.removed.clear();
    }
}

/// The steering program's `xvs_fast_flows`, written by a worker.
pub struct FastMap {
    fd: std::os::fd::OwnedFd,
}

impl FastMap {
    /// `fd`: the map, from `xvs_bpf::Steer::fast_flows_fd` (a duplicate the worker owns).
    pub fn new(fd: std::os::fd::OwnedFd) -> FastMap {
        FastMap { fd }
    }

    /// Writes and removes what a batch queued (one syscall for the writes, one per
    /// removal, which are rare: FIN, RST, a reused port); empties `ops`. Returns the
    /// entries that could not be written.
    pub fn apply(&self, ops: &mut FastOps) -> u64 {
        use std::os::fd::AsRawFd;
        let mut failed = 0;
        if !ops.keys.is_empty() {
            let n = crate::sys::bpf_map_update_batch(self.fd.as_raw_fd(), &ops.keys, &ops.values);
            failed += (ops.keys.len() - n) as u64;
        }
        for k in &ops.removed {
            // Absent already (LRU evicted it, or it was never written): nothing to do.
            let _ = crate::sys::bpf_map_delete(self.fd.as_raw_fd(), k);
        }
        ops.clear();
        failed
    }

    /// The entry's last packet, if the map has it.
    pub fn last_seen(&self, key: &FastKey) -> Option<u64> {
        use std::os::fd::AsRawFd;
        let mut v = FastValue::default();
        crate::sys::bpf_map_lookup(self.fd.as_raw_fd(), key, &mut v).then_some(v.last_seen)
    }
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
        assert_eq!((ops.keys.len(), ops.dropped), (MAX_OPS, 3));
        assert_eq!(ops.keys.capacity(), MAX_OPS, "no allocation past the first");
        ops.clear();
        assert!(ops.is_empty());
    }
}
