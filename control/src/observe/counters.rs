//! One way to read the workers' counters: every view (`xvs status`, `/metrics`, the exit
//! report) sums over the workers through `AllWorkers`, at the moment it asks. Workers
//! write their own counters with relaxed stores; nothing here writes.

use std::sync::Arc;

use xvs_dataplane::counters::{DestCounters, ServiceCounters};
use xvs_dataplane::{DropReason, WorkerCounters};

#[derive(Clone, Copy)]
pub struct AllWorkers<'a>(pub &'a [Arc<WorkerCounters>]);

impl<'a> AllWorkers<'a> {
    /// A worker counter, summed.
    pub fn sum(self, f: impl Fn(&WorkerCounters) -> u64) -> u64 {
        self.0.iter().map(|w| f(w)).sum()
    }

    /// A counter of real server `id`, summed (0 for an id past a worker's end).
    pub fn dest(self, id: usize, f: impl Fn(&DestCounters) -> u64) -> u64 {
        self.0.iter().filter_map(|w| w.dests.get(id)).map(f).sum()
    }

    /// A counter of virtual server slot `id`, summed.
    pub fn service(self, id: usize, f: impl Fn(&ServiceCounters) -> u64) -> u64 {
        self.0
            .iter()
            .filter_map(|w| w.services.get(id))
            .map(f)
            .sum()
    }

    /// Frames dropped for `reason`, summed.
    pub fn drops(self, reason: DropReason) -> u64 {
        self.sum(|w| w.drops(reason))
    }

    /// Each worker with its queue number.
    pub fn each(self) -> impl Iterator<Item = (usize, &'a WorkerCounters)> {
        self.0.iter().map(|w| &**w).enumerate()
    }

    /// Connections (not templates) a worker's flow table holds now.
    pub fn connections(w: &WorkerCounters) -> u64 {
        w.dests
            .iter()
            .map(|d| d.active.get() + d.inactive.get())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_workers_and_tolerates_short_ones() {
        let w = vec![
            Arc::new(WorkerCounters::new(4)),
            Arc::new(WorkerCounters::new(2)),
        ];
        w[0].dests[3].packets.add(5);
        w[0].dests[1].packets.add(1);
        w[1].dests[1].packets.add(2);
        w[0].rx_packets.add(10);
        w[1].rx_packets.add(20);
        let all = AllWorkers(&w);
        assert_eq!(all.dest(1, |d| d.packets.get()), 3);
        assert_eq!(all.dest(3, |d| d.packets.get()), 5, "worker 1 has no id 3");
        assert_eq!(all.dest(99, |d| d.packets.get()), 0);
        assert_eq!(all.sum(|c| c.rx_packets.get()), 30);
        assert_eq!(all.each().count(), 2);
    }
}
