//! The SYN guard, from the worker's side: when new flows overload the worker (its RX ring
//! backs up, or they evict live flows from its full table), it turns its queue's guard on
//! in the steering program (`xvs_syn_guard`), which then lets a new
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
/// How long the worker must stay overloaded before the guard goes on: a burst drains
/// well within it; a flood does not.
pub const SUSTAINED_NS: u64 = 10_000_000;
/// The share of the frames taken over that time that must have opened a flow (1/4): a
/// backlog of known flows' packets or datagrams is not the guard's to shed.
pub const NEW_FLOW_SHARE: u64 = 4;
/// How long the guard stays on after the worker was last seen overloaded, at first (0.75
/// to 1 of it: the end is pushed on a quarter hold at a time).
pub const HOLD_NS: u64 = 1_000_000_000;
/// The longest hold: a flood that comes back as soon as the guard goes off doubles the
/// hold each time, up to this.
pub const MAX_HOLD_NS: u64 = 16 * HOLD_NS;

/// What the worker had done by a batch: the time, the frames taken, the flows opened and
/// the live flows evicted to make room for new ones (its counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub at: u64,
    pub frames: u64,
    pub opened: u64,
    pub evicted: u64,
}

/// When the worker's queue needs the guard. Times are CLOCK_MONOTONIC_COARSE
/// nanoseconds, the steering program's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Until when the guard is on (0: it never was, or was turned off).
    until: u64,
    /// The current hold.
    hold: u64,
    /// Since when the worker has been overloaded, without a batch that found it not.
    since: Option<Mark>,
    /// When a batch last found it overloaded: a gap longer than `SUSTAINED_NS` (an idle
    /// worker sees no batch) starts the overload afresh.
    last: u64,
    /// Live flows evicted by the last batch's end.
    evicted: u64,
}

impl Pressure {
    /// Whether a ring of `size` entries with `ready` waiting is backed up.
    #[inline]
    pub fn backed_up(ready: u32, size: u32) -> bool {
        ready >= size / BACKED_UP_SHARE
    }

    /// Whether a batch finds the worker overloaded: its ring backed up, or new flows
    /// evicting live ones (the table is full: what a flood does to known connections).
    #[inline]
    pub fn overloaded(&mut self, backed_up: bool, evicted: u64) -> bool {
        let evicting = evicted != self.evicted;
        self.evicted = evicted;
        backed_up || evicting
    }

    /// A batch found the worker not overloaded: an overload must start again to count.
    #[inline]
    pub fn drained(&mut self) {
        self.since = None;
    }

    /// A batch found the worker overloaded at `m.at` (`m`: its counters then). Returns
    /// the time the guard must be on until, when the map must be written, and whether it
    /// was off: once the overload has lasted `SUSTAINED_NS` and new flows made at least a
    /// `NEW_FLOW_SHARE` of the frames over it; then again when its end would move by
    /// more than a quarter of the hold (at most four writes a hold).
    pub fn overloaded_at(&mut self, m: Mark) -> Option<(u64, bool)> {
        if m.at.saturating_sub(self.last) > SUSTAINED_NS {
            self.since = None;
        }
        self.last = m.at;
        let first = *self.since.get_or_insert(m);
        if m.at - first.at < SUSTAINED_NS
            || (m.opened - first.opened) * NEW_FLOW_SHARE < m.frames - first.frames
        {
            return None;
        }
        let now = m.at;
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

    /// Forgets the guard (turned off in the map by the caller) and any overload under
    /// way; `evicted`: the live evictions counted so far, the next batch's base.
    pub fn clear(&mut self, evicted: u64) {
        *self = Pressure {
            evicted,
            ..Pressure::default()
        };
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
    const MS: u64 = 1_000_000;

    /// A backlog of new flows only, `at` ns in.
    fn syns(at: u64) -> Mark {
        Mark {
            at,
            frames: at / 1000,
            opened: at / 1000,
            evicted: 0,
        }
    }

    /// Backed up from `t` for the sustained time: the guard's answer at its end.
    fn sustained(p: &mut Pressure, t: u64) -> Option<(u64, bool)> {
        assert_eq!(p.overloaded_at(syns(t)), None);
        p.overloaded_at(syns(t + SUSTAINED_NS))
    }

    #[test]
    fn a_quarter_full_ring_is_backed_up() {
        assert!(!Pressure::backed_up(511, 2048));
        assert!(Pressure::backed_up(512, 2048));
        assert!(Pressure::backed_up(2048, 2048));
    }

    #[test]
    fn a_full_table_evicting_live_flows_is_an_overload() {
        let mut p = Pressure::default();
        assert!(!p.overloaded(false, 0));
        assert!(p.overloaded(false, 3), "evictions since the last batch");
        assert!(!p.overloaded(false, 3), "none since");
        assert!(p.overloaded(true, 3), "a backed-up ring");
    }

    #[test]
    fn an_idle_gap_starts_the_overload_afresh() {
        let mut p = Pressure::default();
        assert_eq!(p.overloaded_at(syns(0)), None);
        // The worker saw no batch for a second (idle): the next overloaded one is a
        // start, not 10 ms of overload.
        assert_eq!(p.overloaded_at(syns(S)), None);
        assert!(p.overloaded_at(syns(S + SUSTAINED_NS)).is_some());
    }

    #[test]
    fn a_burst_that_drains_never_turns_it_on() {
        let mut p = Pressure::default();
        for t in (0..100).map(|i| i * 5 * MS) {
            assert_eq!(p.overloaded_at(syns(t)), None);
            p.drained();
        }
        assert!(!p.is_set());
    }

    #[test]
    fn a_backlog_of_known_flows_is_not_the_guards() {
        let mut p = Pressure::default();
        let m = |at: u64, opened: u64| Mark {
            at,
            frames: at / 1000,
            opened,
            evicted: 0,
        };
        assert_eq!(p.overloaded_at(m(0, 0)), None);
        // A fifth of the frames opened flows: below the share.
        let at = SUSTAINED_NS;
        assert_eq!(p.overloaded_at(m(at, at / 1000 / 5)), None);
        assert_eq!(
            p.overloaded_at(m(at, at / 1000 / 4)),
            Some((at + HOLD_NS, true))
        );
    }

    #[test]
    fn on_for_a_hold_and_written_at_most_four_times_a_hold() {
        let mut p = Pressure::default();
        let t = 10 * S;
        let on = t + SUSTAINED_NS;
        assert_eq!(sustained(&mut p, t), Some((on + S, true)));
        // Overloaded at every batch (1 ms apart) for two seconds more: pushed on a
        // quarter hold at a time, never ending sooner than 3/4 of a hold ahead.
        let mut writes = 0;
        let mut until = on + S;
        for now in (1..=2000).map(|ms| on + ms * MS) {
            if let Some((u, was_off)) = p.overloaded_at(syns(now)) {
                assert!(!was_off);
                writes += 1;
                until = u;
            }
            assert!(until >= now + S * 3 / 4, "on at {now}");
        }
        assert!((7..=8).contains(&writes), "{writes} writes in two holds");
        assert!(p.is_set());
    }

    #[test]
    fn a_flood_back_within_a_hold_doubles_it_up_to_the_limit() {
        let mut p = Pressure::default();
        let mut t = 100 * S;
        sustained(&mut p, t);
        assert_eq!(p.hold(), HOLD_NS);
        for want in [2, 4, 8, 16, 16] {
            // Released a hold after it went on; back half a hold later.
            t += SUSTAINED_NS + p.hold() + p.hold() / 2;
            p.drained();
            assert!(sustained(&mut p, t).is_some_and(|(_, was_off)| was_off));
            assert_eq!(p.hold(), want * S);
        }
        // Calm for a whole hold after the release: back to the first hold.
        t += SUSTAINED_NS + 2 * p.hold() + 1;
        p.drained();
        sustained(&mut p, t);
        assert_eq!(p.hold(), HOLD_NS);
    }

    #[test]
    fn cleared_it_starts_afresh() {
        let mut p = Pressure::default();
        sustained(&mut p, 5 * S);
        p.clear(0);
        assert!(!p.is_set());
        let t = 6 * S;
        assert_eq!(sustained(&mut p, t), Some((t + SUSTAINED_NS + S, true)));
        assert_eq!(p.hold(), HOLD_NS);
    }
}
