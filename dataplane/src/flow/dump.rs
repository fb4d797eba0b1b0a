//! `xvs status --connections` (ipvsadm -Lnc): control asks, a worker copies at most
//! `limit` of its live flows between two batches, control reads the copy. No lock: a
//! request number and an `ArcSwapOption` carry the question and the answer; the worker
//! pays one relaxed load per loop and allocates only when asked.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::flow::table::{FlowKey, FlowTable};
use crate::snapshot::DestId;

/// One flow as copied for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpedFlow {
    pub key: FlowKey,
    pub dest: DestId,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// `TcpState` as u8 (0 for UDP).
    pub state: u8,
    /// A persistence template (client network → real server), not a connection.
    pub template: bool,
}

/// A worker's answer to request `seq`.
#[derive(Debug)]
pub struct Answer {
    pub seq: u64,
    pub flows: Vec<DumpedFlow>,
    /// Live entries the table held; more than `flows.len()` when the limit cut it.
    pub live: usize,
}

#[derive(Debug, Default)]
pub struct FlowDump {
    requested: AtomicU64,
    limit: AtomicUsize,
    answer: ArcSwapOption<Answer>,
}

impl FlowDump {
    /// Control: asks for at most `limit` flows; returns the number to wait for.
    pub fn request(&self, limit: usize) -> u64 {
        self.limit.store(limit, Ordering::Relaxed);
        // Release: the worker that sees the new number sees the limit.
        self.requested.fetch_add(1, Ordering::Release) + 1
    }

    /// Control: the answer to `seq` (or a later request), once the worker gave it.
    pub fn answer(&self, seq: u64) -> Option<Arc<Answer>> {
        self.answer.load_full().filter(|a| a.seq >= seq)
    }

    /// Worker: answers a pending request, if any; `seen` is the last one it answered.
    #[inline]
    pub fn serve(&self, seen: &mut u64, table: &FlowTable, now: impl FnOnce() -> u32) {
        let seq = self.requested.load(Ordering::Acquire);
        if seq == *seen {
            return;
        }
        let now = now();
        let limit = self.limit.load(Ordering::Relaxed);
        let mut live = 0;
        let mut flows = Vec::with_capacity(limit.min(4096));
        for f in table.iter_live(now) {
            live += 1;
            if flows.len() < limit {
                flows.push(DumpedFlow {
                    key: f.key,
                    dest: f.dest,
                    expires_in: f.expires.saturating_sub(now),
                    state: f.state,
                    template: f.is_template(),
                });
            }
        }
        self.answer
            .store(Some(Arc::new(Answer { seq, flows, live })));
        *seen = seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::table::Flow;

    fn table_with(n: u32, now: u32) -> FlowTable {
        let mut t = FlowTable::new(1024, 7);
        for i in 0..n {
            let key = FlowKey::new(0x0a00_0001, 0x0a00_0064, 40000 + i as u16, 80, 6);
            let slot = t.lookup(&key, now).expect_err("new key");
            t.insert(
                slot,
                Flow {
                    key,
                    dest: i % 3,
                    expires: now + 10 + i,
                    state: 3,
                    ..Flow::default()
                },
            );
        }
        t
    }

    #[test]
    fn answers_each_request_once_within_the_limit() {
        let now = 5;
        let table = table_with(20, now);
        let dump = FlowDump::default();
        let mut seen = 0;
        dump.serve(&mut seen, &table, || now);
        assert!(dump.answer(1).is_none(), "nothing asked, nothing answered");

        let seq = dump.request(8);
        assert!(dump.answer(seq).is_none());
        dump.serve(&mut seen, &table, || now);
        let a = dump.answer(seq).expect("answered");
        assert_eq!((a.flows.len(), a.live), (8, 20));
        assert!(a.flows.iter().all(|f| f.expires_in >= 10 && !f.template));

        // A later request gets a fresh answer; an old answer does not satisfy it.
        let seq2 = dump.request(100);
        assert!(dump.answer(seq2).is_none());
        dump.serve(&mut seen, &table, || now + 12);
        let b = dump.answer(seq2).expect("answered");
        // Flows with expires <= now + 12 (i < 3) are dead.
        assert_eq!((b.flows.len(), b.live), (17, 17));
    }
}
