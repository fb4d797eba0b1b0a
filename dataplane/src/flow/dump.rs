//! `xvs status --connections` (ipvsadm -Lnc): control asks, a worker copies at most
//! `limit` of its live flows, control reads the copy. The worker walks its table a
//! slice of buckets per loop turn, between two batches, as the sweep does: a table of
//! millions of flows never holds up its queue. No lock: a request number and an
//! `ArcSwapOption` carry the question and the answer; the worker pays one acquire load
//! per loop turn and allocates only when asked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::flow::table::{Flow, FlowKey, FlowKey6, FlowTable, Key};
use crate::snapshot::DestId;

/// A flow's 5-tuple, of either family (a template's: client network, service address,
/// 0, service port, protocol | 0x80).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

impl From<&FlowKey> for Tuple {
    fn from(k: &FlowKey) -> Self {
        Tuple {
            saddr: Ipv4Addr::from(k.saddr).into(),
            daddr: Ipv4Addr::from(k.daddr).into(),
            sport: k.sport,
            dport: k.dport,
            proto: k.proto,
        }
    }
}

impl From<&FlowKey6> for Tuple {
    fn from(k: &FlowKey6) -> Self {
        Tuple {
            saddr: Ipv6Addr::from(k.saddr).into(),
            daddr: Ipv6Addr::from(k.daddr).into(),
            sport: k.sport,
            dport: k.dport,
            proto: k.proto,
        }
    }
}

/// The tuple as a table's key: `None` when it is of the other family (or mixed).
trait FromTuple: Key + Sized {
    fn from_tuple(t: &Tuple) -> Option<Self>;
}

impl FromTuple for FlowKey {
    fn from_tuple(t: &Tuple) -> Option<Self> {
        match (t.saddr, t.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                Some(FlowKey::new(s.into(), d.into(), t.sport, t.dport, t.proto))
            }
            _ => None,
        }
    }
}

impl FromTuple for FlowKey6 {
    fn from_tuple(t: &Tuple) -> Option<Self> {
        match (t.saddr, t.daddr) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                Some(FlowKey6::new(s.into(), d.into(), t.sport, t.dport, t.proto))
            }
            _ => None,
        }
    }
}

/// One flow as copied for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpedFlow {
    pub key: Tuple,
    pub dest: DestId,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// `TcpState` as u8 (0 for UDP).
    pub state: u8,
    /// A persistence template (client network → real server), not a connection.
    pub template: bool,
    /// A FullNAT connection's local address and port.
    pub local: Option<(IpAddr, u16)>,
}

/// A FullNAT flow's local pair, by family (true: IPv6) and slot: the worker's pipeline
/// answers (`Pipeline::local_of`).
pub type LocalOf<'a> = &'a dyn Fn(bool, usize) -> Option<(IpAddr, u16)>;

/// A worker's answer to request `seq`.
#[derive(Debug)]
pub struct Answer {
    pub seq: u64,
    pub flows: Vec<DumpedFlow>,
    /// Live entries the table held; more than `flows.len()` when the limit cut it.
    pub live: usize,
}

/// What control asks: at most `limit` live flows, or (`find`) the one flow with that key.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub seq: u64,
    pub limit: usize,
    pub find: Option<Tuple>,
}

#[derive(Debug, Default)]
pub struct FlowDump {
    requested: AtomicU64,
    query: ArcSwapOption<Query>,
    answer: ArcSwapOption<Answer>,
}

/// A worker's side of the dump: the last request answered and the walk under way.
#[derive(Debug, Default)]
pub struct DumpCursor {
    seen: u64,
    /// The request being walked, the next bucket, and what was copied so far.
    walk: Option<(u64, usize, Answer)>,
}

impl DumpCursor {
    /// A walk is under way: the worker should come back soon rather than sleep.
    pub fn busy(&self) -> bool {
        self.walk.is_some()
    }
}

impl FlowDump {
    /// Control: asks for at most `limit` flows; returns the number to wait for.
    pub fn request(&self, limit: usize) -> u64 {
        self.ask(limit, None)
    }

    /// Control: asks for the live flow (or persistence template) with `key`, if any.
    pub fn find(&self, key: Tuple) -> u64 {
        self.ask(1, Some(key))
    }

    fn ask(&self, limit: usize, find: Option<Tuple>) -> u64 {
        let seq = self.requested.load(Ordering::Relaxed) + 1;
        self.query.store(Some(Arc::new(Query { seq, limit, find })));
        // Release: the worker that sees the new number sees the query.
        self.requested.store(seq, Ordering::Release);
        seq
    }

    /// Control: the answer to `seq` (or a later request), once the worker gave it.
    pub fn answer(&self, seq: u64) -> Option<Arc<Answer>> {
        self.answer.load_full().filter(|a| a.seq >= seq)
    }

    /// Worker: walks at most `slice` buckets of a pending request over its IPv4 table,
    /// then its IPv6 one; publishes the answer when the walk reaches the end of both. A
    /// newer request restarts the walk.
    #[inline]
    pub fn serve(
        &self,
        cur: &mut DumpCursor,
        v4: &FlowTable,
        v6: &FlowTable<FlowKey6>,
        (slice, local): (usize, LocalOf<'_>),
        now: impl FnOnce() -> u32,
    ) {
        let seq = self.requested.load(Ordering::Acquire);
        if seq == cur.seen {
            return;
        }
        self.walk(cur, seq, (v4, v6), (slice, local), now());
    }

    #[cold]
    fn walk(
        &self,
        cur: &mut DumpCursor,
        seq: u64,
        (v4, v6): (&FlowTable, &FlowTable<FlowKey6>),
        (slice, local): (usize, LocalOf<'_>),
        now: u32,
    ) {
        let Some(q) = self.query.load_full() else {
            cur.seen = seq;
            return;
        };
        if let Some(t) = q.find {
            // One lookup, no walk.
            let flows: Vec<DumpedFlow> = find(v4, &t, now, |i| local(false, i))
                .or_else(|| find(v6, &t, now, |i| local(true, i)))
                .into_iter()
                .collect();
            let live = flows.len();
            self.answer.store(Some(Arc::new(Answer {
                seq: q.seq,
                flows,
                live,
            })));
            cur.walk = None;
            cur.seen = seq;
            return;
        }
        let (walking, next, mut answer) = match cur.walk.take() {
            Some(w) if w.0 == q.seq => w,
            _ => (
                q.seq,
                0,
                Answer {
                    seq: q.seq,
                    flows: Vec::with_capacity(q.limit.min(4096)),
                    live: 0,
                },
            ),
        };
        // The two tables as one sequence of buckets: IPv4's, then IPv6's.
        let b4 = v4.buckets();
        let mut take = |f: DumpedFlow| {
            answer.live += 1;
            if answer.flows.len() < q.limit {
                answer.flows.push(f);
            }
        };
        let end = next.saturating_add(slice.max(1));
        if next < b4 {
            v4.iter_live_slots(next, end.min(b4) - next, now)
                .for_each(|(i, f)| take(copy(f, now, local(false, i))));
        }
        if end > b4 {
            let from = next.max(b4) - b4;
            v6.iter_live_slots(from, end - b4 - from, now)
                .for_each(|(i, f)| take(copy(f, now, local(true, i))));
        }
        let next = end;
        if next >= b4 + v6.buckets() {
            self.answer.store(Some(Arc::new(answer)));
            cur.seen = seq.max(walking);
        } else {
            cur.walk = Some((walking, next, answer));
        }
    }
}

fn copy<K: Key>(f: &Flow<K>, now: u32, local: Option<(IpAddr, u16)>) -> DumpedFlow
where
    for<'a> Tuple: From<&'a K>,
{
    DumpedFlow {
        key: Tuple::from(&f.key),
        dest: f.dest,
        expires_in: f.expires.saturating_sub(now),
        state: f.state,
        template: f.is_template(),
        local,
    }
}

/// The live flow of `table` with tuple `t`, if the tuple is of its family.
fn find<K: FromTuple>(
    table: &FlowTable<K>,
    t: &Tuple,
    now: u32,
    local: impl Fn(usize) -> Option<(IpAddr, u16)>,
) -> Option<DumpedFlow>
where
    for<'a> Tuple: From<&'a K>,
{
    let key = K::from_tuple(t)?;
    let i = table.lookup(&key, now).ok()?;
    Some(copy(table.get(i), now, local(i)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::table::Flow;

    fn none6() -> FlowTable<FlowKey6> {
        FlowTable::new(1, 0)
    }

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
        let mut cur = DumpCursor::default();
        let all = table.buckets() + 1; // and the IPv6 table's one bucket
        dump.serve(&mut cur, &table, &none6(), (all, &|_, _| None), || now);
        assert!(dump.answer(1).is_none(), "nothing asked, nothing answered");

        let seq = dump.request(8);
        assert!(dump.answer(seq).is_none());
        dump.serve(&mut cur, &table, &none6(), (all, &|_, _| None), || now);
        let a = dump.answer(seq).expect("answered");
        assert_eq!((a.flows.len(), a.live), (8, 20));
        assert!(a.flows.iter().all(|f| f.expires_in >= 10 && !f.template));

        // A later request gets a fresh answer; an old answer does not satisfy it.
        let seq2 = dump.request(100);
        assert!(dump.answer(seq2).is_none());
        dump.serve(&mut cur, &table, &none6(), (all, &|_, _| None), || now + 12);
        let b = dump.answer(seq2).expect("answered");
        // Flows with expires <= now + 12 (i < 3) are dead.
        assert_eq!((b.flows.len(), b.live), (17, 17));
    }

    #[test]
    fn walks_the_table_a_slice_per_turn() {
        let now = 5;
        let table = table_with(200, now);
        let dump = FlowDump::default();
        let mut cur = DumpCursor::default();
        let seq = dump.request(1000);
        let slice = 16;
        let turns = (table.buckets() + 1).div_ceil(slice);
        assert!(turns > 1, "the table needs several slices");
        for turn in 1..turns {
            dump.serve(&mut cur, &table, &none6(), (slice, &|_, _| None), || now);
            assert!(dump.answer(seq).is_none(), "no answer before the walk ends");
            assert!(cur.busy(), "turn {turn}: still walking");
        }
        dump.serve(&mut cur, &table, &none6(), (slice, &|_, _| None), || now);
        let a = dump.answer(seq).expect("answered after the last slice");
        assert_eq!((a.flows.len(), a.live), (200, 200), "every flow, each once");
        assert!(!cur.busy());
        // A new request in the middle of a walk starts it over.
        let first = dump.request(1000);
        dump.serve(&mut cur, &table, &none6(), (slice, &|_, _| None), || now);
        let second = dump.request(1000);
        for _ in 0..turns {
            dump.serve(&mut cur, &table, &none6(), (slice, &|_, _| None), || now);
        }
        let b = dump
            .answer(first)
            .expect("a later answer satisfies an earlier ask");
        assert_eq!((b.seq, b.live), (second, 200));
    }

    #[test]
    fn finds_one_flow_by_its_key_without_a_walk() {
        let now = 5;
        let table = table_with(50, now);
        let dump = FlowDump::default();
        let mut cur = DumpCursor::default();
        let key = FlowKey::new(0x0a00_0001, 0x0a00_0064, 40007, 80, 6);
        let seq = dump.find(Tuple::from(&key));
        dump.serve(&mut cur, &table, &none6(), (1, &|_, _| None), || now);
        let a = dump.answer(seq).expect("answered in one turn");
        assert_eq!(a.flows.len(), 1);
        assert_eq!(
            (a.flows[0].key, a.flows[0].dest),
            (Tuple::from(&key), 7 % 3)
        );
        let missing = dump.find(Tuple::from(&FlowKey::new(1, 2, 3, 4, 6)));
        dump.serve(&mut cur, &table, &none6(), (1, &|_, _| None), || now);
        assert!(dump.answer(missing).expect("answered").flows.is_empty());
    }
}
