//! The SYN guard, from the worker's side: when the worker's RX ring backs up, it turns its
//! queue's guard on in the steering program (`xvs_syn_guard`), which then lets a new
//! connection's SYN through only on its retransmission (`bpf/include/syn_guard.h`): a
//! spoofed flood, a SYN per source, is dropped in XDP and leaves the ring to known flows
//! and real clients. `Pressure` decides when (sans I/O); `GuardMap` writes it.

use std::os::fd::OwnedFd;

use crate::sys::{Map, MapError};

/// How the guard is set (`syn_guard`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SynGuard {
    /// On for a queue while its worker is overloaded.
    #[default]
    Auto,
    /// On for every queue, always: every new connection waits for its first
    /// retransmission (a second, on Linux).
    On,
    Off,
}

/// A ring holding at least this share of its size (1/4) is backed up: the worker is not
/// keeping up, and a burst more would overflow it.
pub const BACKED_UP_SHARE: u32 = 4;
/// How long the guard stays on after the ring was last seen backed up, at first.
pub const HOLD_NS: u64 = 1_000_000_000;
/// The longest hold: a flood that comes back as soon as the guard goes off doubles the
/// hold each time, up to this.
pub const MAX_HOLD_NS: u64 = 16 * HOLD_NS;

/// When the worker's queue needs the guard. Times are CLOCK_MONOTONIC_COARSE
/// nanoseconds, the steering program's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Until when the guard is on (0: it never was, or was turned off).
    until: u64,
    /// The current hold.
    hold: u64,
}

impl Pressure {
    /// Whether a ring of `size` entries with `ready` waiting is backed up.
    #[inline]
    pub fn backed_up(ready: u32, size: u32) -> bool {
        ready >= size / BACKED_UP_SHARE
    }

    /// The ring is backed up at `now`: the time the guard must be on until, when the
    /// map must be written (turned on, or its end pushed on by more than a quarter of
    /// the hold: at most four writes a hold), and whether it was off.
    pub fn backed_up_at(&mut self, now: u64) -> Option<(u64, bool)> {
        let was_off = now >= self.until;
        if was_off {
            // Back within a hold of the last release: the flood outlasts the hold.
            self.hold = if self.until != 0 && now - self.until < self.hold {
                (self.hold * 2).min(MAX_HOLD_NS)
            } else {
                HOLD_NS
            };
        } else if self.until - now >= self.hold - self.hold / 4 {
            return None;
        }
        self.until = now + self.hold;
        Some((self.until, was_off))
    }

    /// Whether the guard was turned on and not off since (it may have run out).
    pub fn is_set(&self) -> bool {
        self.until != 0
    }

    /// Forgets the guard (turned off in the map by the caller).
    pub fn clear(&mut self) {
        *self = Pressure::default();
    }

    /// The current hold (0 before the first time).
    pub fn hold(&self) -> u64 {
        self.hold
    }
}

/// `struct xvs_syn_guard`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardValue {
    pub until: u64,
}

/// The steering program's `xvs_syn_guard`, one queue's entry of it written by its worker.
#[derive(Debug)]
pub struct GuardMap {
    map: Map<u32, GuardValue>,
    queue: u32,
}

impl GuardMap {
    /// The map, from `xvs_bpf::Steer::syn_guard_fd`, for queue `queue`.
    pub fn new(fd: OwnedFd, queue: u32) -> Result<GuardMap, MapError> {
        Ok(GuardMap {
            map: Map::new(fd)?,
            queue,
        })
    }

    /// Turns the queue's guard on until `until` (0: off); false if the kernel refused.
    pub fn set(&self, until: u64) -> bool {
        self.map
            .update_batch(&[self.queue], &[GuardValue { until }])
            == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_quarter_full_ring_is_backed_up() {
        assert!(!Pressure::backed_up(511, 2048));
        assert!(Pressure::backed_up(512, 2048));
        assert!(Pressure::backed_up(2048, 2048));
    }

    #[test]
    fn on_for_a_hold_and_written_at_most_four_times_a_hold() {
        let mut p = Pressure::default();
        assert_eq!(p.backed_up_at(10 * S), Some((11 * S, true)));
        // Within a quarter hold: nothing to write.
        assert_eq!(p.backed_up_at(10 * S + S / 4), None);
        // Past it: pushed on, still on.
        assert_eq!(
            p.backed_up_at(10 * S + S / 4 + 1),
            Some((11 * S + S / 4 + 1, false))
        );
        assert!(p.is_set());
    }

    #[test]
    fn a_flood_back_within_a_hold_doubles_it_up_to_the_limit() {
        let mut p = Pressure::default();
        let mut t = 100 * S;
        p.backed_up_at(t);
        assert_eq!(p.hold(), HOLD_NS);
        for want in [2, 4, 8, 16, 16] {
            // Released at `t + hold`; back half a hold later.
            t += p.hold() + p.hold() / 2;
            assert!(p.backed_up_at(t).is_some_and(|(_, was_off)| was_off));
            assert_eq!(p.hold(), want * S);
        }
        // Calm for a whole hold after the release: back to the first hold.
        t += 2 * p.hold() + 1;
        p.backed_up_at(t);
        assert_eq!(p.hold(), HOLD_NS);
    }

    #[test]
    fn cleared_it_starts_afresh() {
        let mut p = Pressure::default();
        p.backed_up_at(5 * S);
        p.clear();
        assert!(!p.is_set());
        assert_eq!(p.backed_up_at(5 * S + 1), Some((6 * S + 1, true)));
        assert_eq!(p.hold(), HOLD_NS);
    }
}
