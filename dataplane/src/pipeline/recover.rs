//! Flows a killed xvs left in this worker's state file (`flow::state_file`), taken up at
//! start: each live entry is checked (a real-server id in range, a known TCP state) and
//! counted into its real server's gauges as if this process had opened it; anything
//! else is cleared. The fast-path and NAT marks are cleared too: the steering program's
//! maps may be new, so a recovered flow's next packet offers it again.

use super::Pipeline;
use crate::counters::WorkerCounters;
use crate::flow::table::Key;
use crate::flow::table::{FLAG_NAT_KNOWN, FLAG_OFFLOADED};
use crate::flow::{Flow, FlowTable, TcpState};

/// What a recovery found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Connections (and persistence templates) taken up.
    pub flows: u64,
    /// Entries cleared: expired, or naming no real server this process could have.
    pub cleared: u64,
}

impl Pipeline {
    /// Takes up what the tables hold from the last process, as of `now` (the table
    /// clock, which the file's epoch continued). Once, before the first packet.
    pub fn recover(&mut self, now: u32) -> Recovered {
        let mut r = Recovered::default();
        recover_table(&mut self.tables.v4, &self.counters, now, &mut r);
        recover_table(&mut self.tables.v6, &self.counters, now, &mut r);
        self.counters.flows_recovered.add(r.flows);
        r
    }
}

fn recover_table<K: Key>(
    table: &mut FlowTable<K>,
    counters: &WorkerCounters,
    now: u32,
    r: &mut Recovered,
) {
    for f in table.slots_mut() {
        if !f.occupied() {
            continue;
        }
        if !sound(f, counters, now) {
            *f = Flow::default();
            r.cleared += 1;
            continue;
        }
        f.flags &= !(FLAG_OFFLOADED | FLAG_NAT_KNOWN);
        if !f.is_template() {
            let c = &counters.dests[f.dest as usize];
            if f.tcp_state().is_active() {
                c.active.inc();
            } else {
                c.inactive.inc();
            }
        }
        r.flows += 1;
    }
}

/// A live entry this process could have written: its real server's id has gauges, and
/// its state byte is a state (a file's bytes are not trusted to be either).
fn sound<K>(f: &Flow<K>, counters: &WorkerCounters, now: u32) -> bool {
    f.expires > now
        && (f.dest as usize) < counters.dests.len()
        && TcpState::from_u8(f.state) as u8 == f.state
}
