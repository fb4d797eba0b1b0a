//! The flow table: fixed capacity, allocated once, set-associative.
//!
//! A key hashes to one bucket of `WAYS` entries; lookup compares at most `WAYS` keys.
//! Expiry is lazy: an entry past its deadline counts as free when its bucket is next
//! touched, so nothing ever scans the table per packet. When a bucket is full, the entry
//! to replace is, in order: an expired one, a closed one, the one closest to expiry. A
//! replaced live entry is an eviction, and counted by the caller.

use crate::flow::TcpState;
use crate::hash::mix64;
use crate::snapshot::DestId;
use crate::sys::Entries;

/// Entries per bucket of the IPv4 table: 8 × 32 bytes = four cache lines.
pub const WAYS: usize = 8;

/// What a table is keyed by: an IPv4 or an IPv6 5-tuple. Each family has a table of its
/// own, so that IPv4's entries stay 32 bytes (IPv6's addresses alone are 32).
pub trait Key: Copy + Default + Eq + std::fmt::Debug {
    /// Entries per bucket: as many as fit in four cache lines.
    const WAYS: usize;
    /// The bucket hash, keyed by the table's seed.
    fn hash(&self, seed: u64) -> u64;
}

/// A connection's identity: the client's packet as it arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FlowKey {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

impl FlowKey {
    pub fn new(saddr: u32, daddr: u32, sport: u16, dport: u16, proto: u8) -> Self {
        FlowKey {
            saddr,
            daddr,
            sport,
            dport,
            proto,
            _pad: [0; 3],
        }
    }
}

impl Key for FlowKey {
    const WAYS: usize = WAYS;

    #[inline(always)]
    fn hash(&self, seed: u64) -> u64 {
        let a = (u64::from(self.saddr) << 32) | u64::from(self.daddr);
        let b = ports_proto(self.sport, self.dport, self.proto);
        mix64(a ^ seed) ^ mix64(b.wrapping_add(seed.rotate_left(17)))
    }
}

#[inline(always)]
fn ports_proto(sport: u16, dport: u16, proto: u8) -> u64 {
    (u64::from(sport) << 24) | (u64::from(dport) << 8) | u64::from(proto)
}

/// An IPv6 connection's identity. Addresses as integers (network order read big-endian)
/// so that masks and comparisons are single operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FlowKey6 {
    pub saddr: u128,
    pub daddr: u128,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 11],
}

impl FlowKey6 {
    pub fn new(saddr: u128, daddr: u128, sport: u16, dport: u16, proto: u8) -> Self {
        FlowKey6 {
            saddr,
            daddr,
            sport,
            dport,
            proto,
            _pad: [0; 11],
        }
    }

    /// The key as the schedulers see it: each address folded to 32 bits by XOR of its
    /// words, as IPVS's hashing schedulers fold an IPv6 address.
    #[inline]
    pub fn folded(&self) -> FlowKey {
        FlowKey::new(
            fold128(self.saddr),
            fold128(self.daddr),
            self.sport,
            self.dport,
            self.proto,
        )
    }
}

/// The XOR of an IPv6 address's four 32-bit words.
#[inline(always)]
pub fn fold128(a: u128) -> u32 {
    (a ^ (a >> 64)) as u64 as u32 ^ ((a ^ (a >> 64)) as u64 >> 32) as u32
}

impl Key for FlowKey6 {
    /// 4 × 64 bytes: the same four cache lines per bucket as IPv4's.
    const WAYS: usize = 4;

    #[inline(always)]
    fn hash(&self, seed: u64) -> u64 {
        let s = (self.saddr as u64) ^ ((self.saddr >> 64) as u64).rotate_left(29);
        let d = (self.daddr as u64) ^ ((self.daddr >> 64) as u64).rotate_left(29);
        let b = ports_proto(self.sport, self.dport, self.proto);
        mix64(s ^ seed)
            ^ mix64(d ^ seed.rotate_left(7))
            ^ mix64(b.wrapping_add(seed.rotate_left(17)))
    }
}

/// `Flow::flags`: the entry is a persistence template (client network → real server),
/// not a connection.
pub const FLAG_TEMPLATE: u8 = 1;
/// The flow has an entry in the XDP fast path (`crate::offload`).
pub const FLAG_OFFLOADED: u8 = 2;
/// A NAT flow whose replies the steering program was told of (`crate::nat_conns`).
pub const FLAG_NAT_KNOWN: u8 = 4;
/// A UDP flow's packets seen by the worker before its hand-over to the fast path, two
/// bits, saturating (`Flow::udp_seen`).
pub const FLAG_UDP_SEEN: u8 = 0b11 << 3;
/// A FullNAT flow holding a local pair (`crate::fullnat::FullNat`, by the flow's slot).
pub const FLAG_FULLNAT: u8 = 1 << 5;
/// A FullNAT TCP flow whose handshake ACK carried the client's address option.
pub const FLAG_TOA_ACKED: u8 = 1 << 6;
/// A FullNAT flow installed from a peer whose pair this worker did not take from its
/// own pool: it never gives it back, nor removes its reply entry.
pub const FLAG_PAIR_BORROWED: u8 = 1 << 7;

/// One tracked connection, or a persistence template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Flow<K = FlowKey> {
    pub key: K,
    pub dest: DestId,
    /// Second (table clock) after which the entry is dead; 0 marks a free slot.
    pub expires: u32,
    /// Second at which this connection last refreshed its persistence template.
    pub template_seen: u32,
    /// `TcpState` as u8 (0 for UDP).
    pub state: u8,
    pub flags: u8,
    /// Connection sync: the table clock's second, modulo 2^16, at which the entry was
    /// last sent to (or received from) the peers; refreshes are due from it.
    pub synced: u16,
}

const _: () = assert!(std::mem::size_of::<Flow>() == 32);
// Any bytes are a valid entry (`sys::Pod`), so a file's may be read as one.
// The u128 addresses align an IPv6 entry to 16 bytes: 48 of key, 16 of state.
const _: () = assert!(std::mem::size_of::<Flow<FlowKey6>>() == 64);

impl<K> Flow<K> {
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.state)
    }

    fn live(&self, now: u32) -> bool {
        self.expires > now
    }

    /// Holds an entry, live or expired but not yet reclaimed.
    pub fn occupied(&self) -> bool {
        self.expires != 0
    }

    pub fn is_template(&self) -> bool {
        self.flags & FLAG_TEMPLATE != 0
    }

    /// Packets of this UDP flow counted so far (0 to 3, `FLAG_UDP_SEEN`).
    pub fn udp_seen(&self) -> u8 {
        (self.flags & FLAG_UDP_SEEN) >> 3
    }

    /// Counts one more, up to 3.
    pub fn count_udp(&mut self) {
        if self.udp_seen() < 3 {
            self.flags += 1 << 3;
        }
    }
}

/// Where a missing key would go: a flat index and whether using it evicts a live flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub index: usize,
    pub evicts: bool,
}

pub struct FlowTable<K: Key = FlowKey> {
    entries: Entries<Flow<K>>,
    bucket_mask: usize,
    seed: u64,
    /// Next bucket the incremental sweep looks at.
    sweep_cursor: usize,
}

impl<K: Key> FlowTable<K> {
    /// A table for at least `capacity` flows (rounded up to a power-of-two number of
    /// buckets). `seed` keys the hash so that clients cannot aim at one bucket.
    pub fn new(capacity: usize, seed: u64) -> Self {
        let buckets = capacity.div_ceil(K::WAYS).max(1).next_power_of_two();
        FlowTable::in_entries(Entries::on_heap(buckets * K::WAYS), seed)
    }

    /// A table over `entries` as they are (a recovered file's flows, `state_file`):
    /// a power-of-two number of whole buckets.
    pub(crate) fn in_entries(entries: Entries<Flow<K>>, seed: u64) -> Self {
        let buckets = entries.len() / K::WAYS;
        debug_assert!(buckets.is_power_of_two() && buckets * K::WAYS == entries.len());
        FlowTable {
            entries,
            bucket_mask: buckets - 1,
            seed,
            sweep_cursor: 0,
        }
    }

    /// Every slot, occupied or not (recovery walks them once at start).
    pub(crate) fn slots_mut(&mut self) -> &mut [Flow<K>] {
        &mut self.entries
    }

    pub fn buckets(&self) -> usize {
        self.bucket_mask + 1
    }

    /// Reclaims expired entries in the next `buckets` buckets, calling `on_expire` with
    /// each before it is cleared. Lookups treat expired entries as free anyway; the sweep
    /// is what lets per-server connection counts go down when a flow goes quiet.
    pub fn sweep(&mut self, now: u32, buckets: usize, mut on_expire: impl FnMut(&Flow<K>)) {
        self.sweep_renewing(now, buckets, |_| None, |_, f| on_expire(f))
    }

    /// As `sweep`, asking `renew` first about each expired flow: a new expiry past `now`
    /// keeps it (a flow the XDP fast path carries is seen there, not here).
    pub fn sweep_renewing(
        &mut self,
        now: u32,
        buckets: usize,
        mut renew: impl FnMut(&Flow<K>) -> Option<u32>,
        mut on_expire: impl FnMut(usize, &Flow<K>),
    ) {
        for _ in 0..buckets.min(self.buckets()) {
            let base = self.sweep_cursor * K::WAYS;
            for (i, e) in self.entries[base..base + K::WAYS].iter_mut().enumerate() {
                if e.occupied() && !e.live(now) {
                    if let Some(until) = renew(e).filter(|u| *u > now) {
                        e.expires = until;
                        continue;
                    }
                    on_expire(base + i, e);
                    *e = Flow::default();
                }
            }
            self.sweep_cursor = (self.sweep_cursor + 1) & self.bucket_mask;
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes the table holds, for the operator.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
    }

    #[inline]
    fn bucket(&self, k: &K) -> usize {
        (k.hash(self.seed) as usize & self.bucket_mask) * K::WAYS
    }

    /// Starts loading `key`'s bucket into the cache: a batch prefetches every frame's
    /// bucket first, so the memory latency of one lookup overlaps the others.
    #[inline]
    pub fn prefetch(&self, key: &K) {
        let base = self.entries[self.bucket(key)..].as_ptr().cast::<u8>();
        for line in 0..(K::WAYS * std::mem::size_of::<Flow<K>>()).div_ceil(64) {
            crate::sys::prefetch(base.wrapping_add(line * 64));
        }
    }

    /// Finds the live flow for `key` (`Ok(index)`), or the slot it should be put in.
    #[inline]
    pub fn lookup(&self, key: &K, now: u32) -> Result<usize, Slot> {
        let base = self.bucket(key);
        let bucket = &self.entries[base..base + K::WAYS];
        // The hit path first: most packets belong to a known flow.
        if let Some(i) = bucket.iter().position(|e| e.key == *key && e.live(now)) {
            return Ok(base + i);
        }
        Err(self.victim(base, now))
    }

    /// The slot a new entry takes in the bucket at `base`: a free or expired one, else a
    /// closed connection, else the live entry closest to expiry.
    #[cold]
    fn victim(&self, base: usize, now: u32) -> Slot {
        let mut victim = 0;
        let mut victim_rank = (u8::MAX, u32::MAX);
        for (i, e) in self.entries[base..base + K::WAYS].iter().enumerate() {
            if !e.live(now) {
                return Slot {
                    index: base + i,
                    evicts: false,
                };
            }
            let closed = matches!(e.tcp_state(), TcpState::Close | TcpState::TimeWait);
            let rank = (if closed { 1 } else { 2 }, e.expires);
            if rank < victim_rank {
                victim = i;
                victim_rank = rank;
            }
        }
        Slot {
            index: base + victim,
            evicts: true,
        }
    }

    #[inline]
    pub fn get(&self, index: usize) -> &Flow<K> {
        &self.entries[index]
    }

    #[inline]
    pub fn get_mut(&mut self, index: usize) -> &mut Flow<K> {
        &mut self.entries[index]
    }

    /// Puts `flow` in `slot` (from a `lookup` of the same key with no change between).
    #[inline]
    pub fn insert(&mut self, slot: Slot, flow: Flow<K>) -> &mut Flow<K> {
        let e = &mut self.entries[slot.index];
        *e = flow;
        e
    }

    /// Frees the entry at `index`.
    pub fn remove(&mut self, index: usize) {
        self.entries[index] = Flow::default();
    }

    /// Live entries now (a full scan: for tests and the control thread, never per packet).
    pub fn count_live(&self, now: u32) -> usize {
        self.entries.iter().filter(|e| e.live(now)).count()
    }

    /// Live flows of buckets `first..first + count` (clipped to the table), for `xvs
    /// status --connections`, which walks the table a slice at a time.
    pub fn iter_live_buckets(
        &self,
        first: usize,
        count: usize,
        now: u32,
    ) -> impl Iterator<Item = &Flow<K>> {
        self.iter_live_slots(first, count, now).map(|(_, f)| f)
    }

    /// As `iter_live_buckets`, with each flow's slot.
    pub fn iter_live_slots(
        &self,
        first: usize,
        count: usize,
        now: u32,
    ) -> impl Iterator<Item = (usize, &Flow<K>)> {
        let start = (first * K::WAYS).min(self.entries.len());
        let end = (first.saturating_add(count).saturating_mul(K::WAYS)).min(self.entries.len());
        self.entries[start..end]
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.live(now))
            .map(move |(i, e)| (start + i, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u32) -> FlowKey {
        FlowKey::new(
            0x0a00_0000 | i,
            0x0a00_0064,
            (i % 60000) as u16 + 1024,
            80,
            6,
        )
    }

    /// Returns (inserted, evicted).
    fn put(t: &mut FlowTable, k: FlowKey, now: u32, ttl: u32) -> (bool, bool) {
        match t.lookup(&k, now) {
            Ok(i) => {
                t.get_mut(i).expires = now + ttl;
                (false, false)
            }
            Err(slot) => {
                t.insert(
                    slot,
                    Flow {
                        key: k,
                        dest: 7,
                        expires: now + ttl,
                        state: TcpState::Established as u8,
                        ..Flow::default()
                    },
                );
                (true, slot.evicts)
            }
        }
    }

    #[test]
    fn insert_then_find_until_expiry() {
        let mut t = FlowTable::new(1024, 42);
        let k = key(1);
        assert!(t.lookup(&k, 1).is_err());
        put(&mut t, k, 1, 10);
        let i = t.lookup(&k, 5).unwrap();
        assert_eq!(t.get(i).dest, 7);
        assert!(t.lookup(&k, 10).is_ok());
        assert!(t.lookup(&k, 11).is_err(), "expired");
    }

    #[test]
    fn full_bucket_evicts_closed_then_soonest() {
        let mut t = FlowTable::new(WAYS, 1); // one bucket
        for i in 0..WAYS as u32 {
            assert_eq!(put(&mut t, key(i), 1, 100 + i), (true, false));
        }
        // Mark one closed: it goes first even though it expires last.
        let closed = t.lookup(&key(WAYS as u32 - 1), 1).unwrap();
        t.get_mut(closed).state = TcpState::Close as u8;
        let slot = t.lookup(&key(1000), 1).unwrap_err();
        assert!(slot.evicts);
        assert_eq!(slot.index, closed);
        t.get_mut(closed).state = TcpState::Established as u8;
        let slot = t.lookup(&key(1000), 1).unwrap_err();
        assert_eq!(t.get(slot.index).key, key(0), "soonest to expire");
    }

    #[test]
    fn sweep_reclaims_expired_once() {
        let mut t = FlowTable::new(64, 3);
        for i in 0..20 {
            put(&mut t, key(i), 1, if i % 2 == 0 { 5 } else { 50 });
        }
        let mut seen = 0;
        t.sweep(10, t.buckets(), |f| {
            assert_eq!(f.expires, 6);
            seen += 1;
        });
        assert_eq!(seen, 10);
        t.sweep(10, t.buckets(), |_| panic!("already reclaimed"));
        assert_eq!(t.count_live(10), 10);
    }

    proptest! {
        // The table never grows, and no flow is lost silently: every flow accepted is
        // still there unless an insert reported evicting it.
        #[test]
        fn bounded_and_findable(ids in proptest::collection::vec(0u32..5000, 1..3000)) {
            let mut t = FlowTable::new(512, 9);
            let cap = t.capacity();
            let (mut inserted, mut evicted) = (0, 0);
            for (n, id) in ids.iter().enumerate() {
                let (ins, ev) = put(&mut t, key(*id), 1 + n as u32 / 100, 1000);
                inserted += usize::from(ins);
                evicted += usize::from(ev);
                prop_assert_eq!(t.capacity(), cap);
            }
            let now = 1 + ids.len() as u32 / 100;
            let live = t.count_live(now);
            prop_assert!(live <= cap);
            prop_assert_eq!(live, inserted - evicted);
            // The last key inserted is always present.
            prop_assert!(t.lookup(&key(*ids.last().unwrap()), now).is_ok());
        }
    }
}
