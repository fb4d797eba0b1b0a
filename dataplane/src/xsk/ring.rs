//! Single-producer/single-consumer rings as AF_XDP lays them out: a producer index, a
//! consumer index, a flags word and a power-of-two array of descriptors. Each side keeps
//! cached copies of both indices and reads the other side's only when the cache runs dry,
//! which is what makes a batch cost one shared-memory read instead of one per packet.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where a ring's parts live: mmap'd from the kernel, or a test's own memory.
#[derive(Debug)]
pub struct RingMem<T> {
    pub producer: *const AtomicU32,
    pub consumer: *const AtomicU32,
    pub flags: *const AtomicU32,
    pub descs: *mut T,
    pub size: u32,
}

impl<T> RingMem<T> {
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: `ProdRing::new`/`ConsRing::new` callers guarantee the pointer is valid and
        // aligned for the ring's lifetime; AtomicU32 makes the shared access well defined.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.consumer }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.flags }
    }

    #[inline]
    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: masking keeps the offset below `size`, and `descs` points at `size`
        // elements (caller's guarantee at construction).
        unsafe { self.descs.add((index & (self.size - 1)) as usize) }
    }
}

/// The side that fills slots: user space for the fill and TX rings.
#[derive(Debug)]
pub struct ProdRing<T> {
    mem: RingMem<T>,
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: the ring is owned by one worker thread at a time; the raw pointers refer to
// memory that outlives it (the socket's mmaps) and is only shared with the kernel.
unsafe impl<T: Send> Send for ProdRing<T> {}
// SAFETY: as for ProdRing.
unsafe impl<T: Send> Send for ConsRing<T> {}

impl<T: Copy> ProdRing<T> {
    /// # Safety
    /// `mem`'s pointers must be valid and aligned for as long as the ring is used,
    /// `descs` must hold `size` elements, `size` must be a power of two, and no one but the
    /// other side (the kernel, or one `ConsRing`) may touch the ring meanwhile.
    pub unsafe fn new(mem: RingMem<T>) -> Self {
        assert!(mem.size.is_power_of_two());
        let cached_prod = mem.producer().load(Ordering::Relaxed);
        let cached_cons = mem.consumer().load(Ordering::Acquire);
        ProdRing {
            mem,
            cached_prod,
            cached_cons,
        }
    }

    pub fn size(&self) -> u32 {
        self.mem.size
    }

    /// Free slots, reading the consumer index only if fewer than `want` are known free.
    #[inline]
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.mem.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.mem.consumer().load(Ordering::Acquire);
        self.mem.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes the `i`th slot after the last submitted one, if the last `free` found it
    /// free; false (nothing written) otherwise. Checked in every build: a slot the
    /// consumer may be reading is never written.
    #[inline]
    #[must_use]
    pub fn write(&mut self, i: u32, value: T) -> bool {
        if i >= self.mem.size - self.cached_prod.wrapping_sub(self.cached_cons) {
            return false;
        }
        // SAFETY: the slot is within the ring and free (checked above), so the consumer
        // does not read it until `submit` publishes it.
        unsafe { self.mem.slot(self.cached_prod.wrapping_add(i)).write(value) };
        true
    }

    /// Publishes the first `n` written slots to the consumer.
    #[inline]
    pub fn submit(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.mem
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// True when the kernel asked to be woken up to consume this ring.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.mem.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Slots submitted and not yet consumed.
    pub fn pending(&mut self) -> u32 {
        self.cached_cons = self.mem.consumer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }
}

/// The side that takes slots: user space for the RX and completion rings.
#[derive(Debug)]
pub struct ConsRing<T> {
    mem: RingMem<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ConsRing<T> {
    /// # Safety
    /// As for [`ProdRing::new`].
    pub unsafe fn new(mem: RingMem<T>) -> Self {
        assert!(mem.size.is_power_of_two());
        let cached_cons = mem.consumer().load(Ordering::Relaxed);
        let cached_prod = mem.producer().load(Ordering::Acquire);
        ConsRing {
            mem,
            cached_prod,
            cached_cons,
        }
    }

    /// Entries ready to read, at most `max`; reads the producer index only when the
    /// cached ones are used up.
    #[inline]
    pub fn peek(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n == 0 {
            self.cached_prod = self.mem.producer().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        n.min(max)
    }

    /// Entries ready, at least `floor` of them known without reading the producer
    /// again: the cached count when it reaches `floor`, else the producer's (a frame it
    /// made available is only ever more to read).
    #[inline]
    pub fn backlog(&mut self, floor: u32) -> u32 {
        let n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n >= floor {
            return n;
        }
        self.cached_prod = self.mem.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// The ring's size.
    pub fn size(&self) -> u32 {
        self.mem.size
    }

    /// The `i`th entry after the last released one, if the last `peek` made it
    /// available. Checked in every build: a slot the producer may be writing is never
    /// read.
    #[inline]
    pub fn get(&self, i: u32) -> Option<T> {
        if i >= self.cached_prod.wrapping_sub(self.cached_cons) {
            return None;
        }
        // SAFETY: the producer published this slot (checked above) and will not write it
        // again before `release` hands it back.
        Some(unsafe { self.mem.slot(self.cached_cons.wrapping_add(i)).read() })
    }

    /// Hands the first `n` entries back to the producer.
    #[inline]
    pub fn release(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.mem
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ring in ordinary memory, as the kernel would lay it out.
    struct TestRing {
        producer: AtomicU32,
        consumer: AtomicU32,
        flags: AtomicU32,
        descs: Vec<u64>,
    }

    impl TestRing {
        fn new(size: u32, start: u32) -> Box<Self> {
            Box::new(TestRing {
                producer: AtomicU32::new(start),
                consumer: AtomicU32::new(start),
                flags: AtomicU32::new(0),
                descs: vec![0; size as usize],
            })
        }

        fn mem(&mut self) -> RingMem<u64> {
            RingMem {
                producer: &self.producer,
                consumer: &self.consumer,
                flags: &self.flags,
                descs: self.descs.as_mut_ptr(),
                size: self.descs.len() as u32,
            }
        }
    }

    #[test]
    fn wakeup_flag() {
        let mut r = TestRing::new(4, 0);
        // SAFETY: `r` outlives the ring; only this test touches it.
        let p = unsafe { ProdRing::new(r.mem()) };
        assert!(!p.needs_wakeup());
        r.flags.store(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(p.needs_wakeup());
    }

    proptest! {
        // Whatever the batch sizes, and across index wrap-around, the consumer sees exactly
        // what the producer submitted, in order, and the producer never overruns.
        #[test]
        fn fifo_without_overrun(ops in proptest::collection::vec((0u32..10, 0u32..10), 1..200),
                                start in prop_oneof![Just(0u32), Just(u32::MAX - 20)]) {
            let mut r = TestRing::new(8, start);
            // SAFETY: `r` outlives both rings; they are its only users.
            let (mut p, mut c) = unsafe { (ProdRing::new(r.mem()), ConsRing::new(r.mem())) };
            let (mut next, mut expect) = (0u64, 0u64);
            for (put, take) in ops {
                let free = p.free(put);
                prop_assert!(free <= 8);
                let n = put.min(free);
                for i in 0..n {
                    prop_assert!(p.write(i, next));
                    next += 1;
                }
                // Past what is free, nothing is written.
                prop_assert!(!p.write(n.max(free), next));
                p.submit(n);
                let m = c.peek(take);
                for i in 0..m {
                    prop_assert_eq!(c.get(i), Some(expect));
                    expect += 1;
                }
                // Past what was published, nothing is read.
                prop_assert_eq!(c.get(8), None);
                c.release(m);
                prop_assert!(next - expect <= 8);
            }
        }
    }
}
