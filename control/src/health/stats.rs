//! A real server's check statistics: written by its monitor task, read at scrape time
//! (`xvs_health_check_duration_seconds`, `xvs_health_check_transitions_total`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Histogram bucket bounds, in milliseconds: from a LAN connect to a timed-out probe.
pub const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

#[derive(Debug, Default)]
pub struct CheckStats {
    /// Probes that took at most `BUCKETS_MS[i]` and more than the bucket before it.
    buckets: [AtomicU64; BUCKETS_MS.len()],
    /// Every probe, the ones above the last bound too.
    count: AtomicU64,
    sum_us: AtomicU64,
    failures: AtomicU64,
    transitions: AtomicU64,
}

/// What a scrape prints.
#[derive(Debug, PartialEq)]
pub struct Read {
    /// Cumulative, as Prometheus wants: probes that took at most `BUCKETS_MS[i]`.
    pub cumulative: [u64; BUCKETS_MS.len()],
    pub count: u64,
    pub sum_seconds: f64,
    pub failures: u64,
    pub transitions: u64,
}

impl CheckStats {
    /// One probe (a retry is a probe too).
    pub fn observe(&self, took: Duration, ok: bool) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_MS.iter().position(|ms| us <= ms * 1000) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        if !ok {
            self.failures.fetch_add(1, Relaxed);
        }
    }

    /// The real server went up or down.
    pub fn transition(&self) {
        self.transitions.fetch_add(1, Relaxed);
    }

    pub fn read(&self) -> Read {
        let mut cumulative = [0; BUCKETS_MS.len()];
        let mut running = 0;
        for (c, b) in cumulative.iter_mut().zip(&self.buckets) {
            running += b.load(Relaxed);
            *c = running;
        }
        Read {
            cumulative,
            count: self.count.load(Relaxed),
            sum_seconds: self.sum_us.load(Relaxed) as f64 / 1e6,
            failures: self.failures.load(Relaxed),
            transitions: self.transitions.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_slowest_only_counted() {
        let s = CheckStats::default();
        s.observe(Duration::from_micros(800), true); // <= 1 ms
        s.observe(Duration::from_millis(1), true); // <= 1 ms: bounds are inclusive
        s.observe(Duration::from_millis(30), false); // <= 50 ms
        s.observe(Duration::from_secs(6), false); // above every bound
        s.transition();
        let r = s.read();
        assert_eq!(r.cumulative, [2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
        assert_eq!((r.count, r.failures, r.transitions), (4, 2, 1));
        assert!((r.sum_seconds - 6.0318).abs() < 1e-9, "{}", r.sum_seconds);
    }
}
