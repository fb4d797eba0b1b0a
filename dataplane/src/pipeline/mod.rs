//! The per-frame decision, without I/O and without a clock: parse → service → flow →
//! schedule → rewrite. A worker calls `prepare` once per batch with the snapshot it loaded,
//! then `process_packet` per frame, and `sweep` now and then. Nothing here allocates, locks
//! or makes a syscall.
//!
//! By concern: `parse` reads the frame, `family` puts IPv4 and IPv6 behind one trait,
//! `track` keeps the flow table, `persist` the persistence templates and scheduling,
//! `offer` tells the steering program what it may carry (fast path, NAT replies),
//! `sync` and `synced` are connection sync out and in, `sweep` expires flows, `relay`
//! recognises the NAT replies XDP hands over, `adopt` and `recover` take up what a
//! killed xvs left (in the fast path's map, in the flow-state file). The rewrite itself
//! is `rewrite::forward`.

use std::sync::Arc;

use crate::counters::WorkerCounters;
use crate::flow::{FlowFile, FlowKey6, FlowTable, Timeouts};
use crate::fullnat::{FullNat, ReplyOps, Share};
use crate::nat_conns::NatConnOps;
use crate::offload::FastOps;
use crate::packet::Packet;
use crate::rewrite;
use crate::rewrite::forward::{Forwarded, Target};
use crate::sched::SchedState;
use crate::snapshot::{Forwarding, Snapshot};
use crate::sync::SyncChannel;
use crate::verdict::{DropReason, Verdict};

mod adopt;
mod family;
mod fullnat;
mod offer;
mod parse;
mod persist;
mod recover;
mod relay;
mod sweep;
mod sync;
mod synced;
mod track;

pub use adopt::{AdoptLookup, ADOPT_PER_BATCH};
pub use family::{template_key, template_key6};
use family::{FamilyKey, Tables};
pub use offer::UDP_OFFLOAD_AT;
pub use parse::Prefetched;
use parse::{parse, AnyParsed, Early, Parsed};
pub use recover::Recovered;
pub use synced::ResyncCursor;

/// What happens to a flow whose real server left the configuration (IPVS's
/// `expire_nodest_conn`, plus rescheduling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodestPolicy {
    /// Schedule the flow's next packet anew (default): UDP moves on at once, and a TCP
    /// client gets a reset from the new server instead of waiting for a timeout.
    #[default]
    Reschedule,
    /// IPVS `expire_nodest_conn=1`: drop the packet and forget the flow; the client's
    /// next packet is scheduled anew.
    Expire,
    /// IPVS `expire_nodest_conn=0`: drop the flow's packets until it times out.
    Drop,
}

/// Sizing and policy of one worker's pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Flows the worker's table holds (rounded up); allocated once at start.
    pub flow_capacity: usize,
    /// Keys the flow hash (random per process in production).
    pub hash_seed: u64,
    pub timeouts: Timeouts,
    pub nodest: NodestPolicy,
    /// This worker's share of FullNAT's local ports.
    pub share: Share,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flow_capacity: 1 << 20,
            hash_seed: 0x5eed,
            timeouts: Timeouts::default(),
            nodest: NodestPolicy::default(),
            share: Share::default(),
        }
    }
}

pub struct Pipeline {
    tables: Tables,
    flow_capacity: usize,
    hash_seed: u64,
    sched: Vec<SchedState>,
    /// The snapshot generation `sched` was built for.
    sched_generation: Option<u64>,
    timeouts: Timeouts,
    nodest: NodestPolicy,
    counters: Arc<WorkerCounters>,
    rand: u64,
    /// IPv4 identification of the tunnel headers this worker writes.
    ip_ident: u16,
    /// Fast-path entries this batch wrote and removed, for the worker to apply.
    fast: FastOps,
    /// NAT connections this batch created, for the worker to tell the steering program
    /// before it transmits.
    nat_conns: NatConnOps,
    /// FullNAT's local pairs and reply entries.
    fullnat: FullNat,
    /// The packet in hand is a FullNAT service's: connection sync waits for its pair.
    fullnat_pending: bool,
    /// Connection sync's queues, when it is on.
    sync: Option<Arc<SyncChannel>>,
    /// Where flows nobody here saw are looked up (`adopt.rs`), and the lookups left to
    /// this batch.
    adopt: Option<AdoptLookup>,
    adopt_budget: u32,
    /// The state file the tables live in, when they outlive the process.
    file: Option<Arc<FlowFile>>,
}

impl Pipeline {
    pub fn new(config: &PipelineConfig, counters: Arc<WorkerCounters>) -> Self {
        Pipeline::in_file(config, counters, None)
    }

    /// A pipeline whose tables live in `file` (when given and its regions can be had),
    /// so that a restarted xvs finds them; else on the heap.
    pub fn in_file(
        config: &PipelineConfig,
        counters: Arc<WorkerCounters>,
        file: Option<Arc<FlowFile>>,
    ) -> Self {
        let from_file = file.as_ref();
        Pipeline {
            tables: Tables {
                v4: from_file
                    .and_then(|f| f.take_table4())
                    .unwrap_or_else(|| FlowTable::new(config.flow_capacity, config.hash_seed)),
                v6: from_file
                    .filter(|f| f.holds_v6())
                    .and_then(|f| f.take_table6())
                    .unwrap_or_else(|| FlowTable::new(1, config.hash_seed)),
            },
            flow_capacity: config.flow_capacity,
            hash_seed: config.hash_seed,
            sched: Vec::new(),
            sched_generation: None,
            timeouts: config.timeouts,
            nodest: config.nodest,
            counters,
            rand: config.hash_seed | 1,
            ip_ident: config.hash_seed as u16,
            fast: FastOps::default(),
            nat_conns: NatConnOps::default(),
            fullnat: FullNat::new(config.share, config.hash_seed),
            fullnat_pending: false,
            sync: None,
            adopt: None,
            adopt_budget: 0,
            file,
        }
    }

    /// Sends this pipeline's flows to connection sync and installs the peers' (through
    /// `channel`'s queues).
    pub fn with_sync(mut self, channel: Arc<SyncChannel>) -> Self {
        self.sync = Some(channel);
        self
    }

    pub fn sync(&self) -> Option<&Arc<SyncChannel>> {
        self.sync.as_ref()
    }

    /// What the batch queued for the XDP fast path; the worker applies and clears it.
    pub fn fast_ops(&mut self) -> &mut FastOps {
        &mut self.fast
    }

    /// The NAT connections the batch (or an install) created; the worker writes and
    /// clears them.
    pub fn nat_conn_ops(&mut self) -> &mut NatConnOps {
        &mut self.nat_conns
    }

    /// The FullNAT reply entries the batch (or a sweep) queued; the worker writes and
    /// clears them.
    pub fn fullnat_ops(&mut self) -> &mut ReplyOps {
        &mut self.fullnat.ops
    }

    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    pub fn flows(&self) -> &FlowTable {
        &self.tables.v4
    }

    pub fn flows6(&self) -> &FlowTable<FlowKey6> {
        &self.tables.v6
    }

    /// The local pair of the FullNAT flow in slot `index` of the IPv4 (IPv6: `v6`)
    /// table, if it holds one (`xvs status --connections`).
    pub fn local_of(&self, v6: bool, index: usize) -> Option<(std::net::IpAddr, u16)> {
        use crate::flow::table::FLAG_FULLNAT;
        use crate::fullnat::SlotFamily;
        use crate::offload::{FastKey, FastKey6};
        let fullnat = |flags: u8| flags & FLAG_FULLNAT != 0;
        if v6 {
            let t = &self.tables.v6;
            (index < t.capacity() && fullnat(t.get(index).flags)).then_some(())?;
            self.fullnat
                .held_ref::<FastKey6>(index)
                .map(|h| h.reply.local())
        } else {
            let t = &self.tables.v4;
            (index < t.capacity() && fullnat(t.get(index).flags)).then_some(())?;
            self.fullnat
                .held_ref::<FastKey>(index)
                .map(|h| h.reply.local())
        }
    }

    /// Readies the scheduler state for `snap`: rebuilt only when the generation changed.
    /// The first snapshot with an IPv6 service allocates the IPv6 flow table (once: a
    /// director that serves IPv4 only never pays for it).
    pub fn prepare(&mut self, snap: &Snapshot) {
        self.adopt_budget = ADOPT_PER_BATCH;
        if self.sched_generation != Some(snap.generation) {
            if snap.has_ipv6() && self.tables.v6.buckets() == 1 {
                self.tables.v6 = self
                    .file
                    .as_ref()
                    .and_then(|f| f.take_table6())
                    .unwrap_or_else(|| FlowTable::new(self.flow_capacity, self.hash_seed));
            }
            let slots = (self.tables.v4.capacity(), self.tables.v6.capacity());
            self.fullnat.prepare(snap, slots.0, slots.1);
            self.sched = snap
                .services
                .iter()
                .map(|s| SchedState::new(s, snap))
                .collect();
            self.sched_generation = Some(snap.generation);
        }
    }

    /// Prefetches the flow-table bucket `frame` will need: call for a whole batch before
    /// processing it. Frames that do not parse are left for `process_packet` to count.
    #[inline]
    pub fn prefetch(&self, frame: &[u8]) -> Prefetched {
        Prefetched(match parse(frame) {
            Ok(AnyParsed::V4(p)) => {
                self.tables.v4.prefetch(&p.key);
                Ok(p)
            }
            Ok(AnyParsed::V6(p)) => {
                self.tables.v6.prefetch(&p.key);
                Err(Early::Unparsed)
            }
            Err(r) => Err(Early::Drop(r)),
        })
    }

    /// The one entry: decides a frame and rewrites it in place when it is forwarded (it
    /// may grow into its headroom, or become the ICMP reply to itself). `pre` is its
    /// `prefetch` (nothing changed since), or `Prefetched::NONE`. `now` is in seconds on
    /// the worker's monotonic clock and must be at least 1. `prepare(snap)` must have been
    /// called for this snapshot.
    #[inline]
    pub fn process_packet(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
        pre: Prefetched,
    ) -> Verdict {
        let decided = match pre.0 {
            Ok(p) => self.decide(snap, now, pkt, p),
            Err(Early::Drop(r)) => Err(r),
            Err(Early::Unparsed) => self.decide_unparsed(snap, now, pkt),
        };
        let decided = self.relay(snap, pkt, decided);
        decided.unwrap_or_else(|reason| {
            self.counters.count_drop(reason);
            Verdict::Drop(reason)
        })
    }

    /// `process_packet` for a whole frame with no headroom (TUN cannot encapsulate it),
    /// not prefetched: what tests and benchmarks call.
    #[inline]
    pub fn process(&mut self, snap: &Snapshot, now: u32, frame: &mut [u8]) -> Verdict {
        self.process_packet(snap, now, &mut Packet::whole(frame), Prefetched::NONE)
    }

    /// A frame its prefetch did not keep a parse of (IPv6): parsed here, out of line, so
    /// that IPv4's prefetched path stays as small as it was.
    #[inline(never)]
    fn decide_unparsed(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
    ) -> Result<Verdict, DropReason> {
        match parse(pkt.data())? {
            AnyParsed::V4(p) => self.decide(snap, now, pkt, p),
            AnyParsed::V6(p) => self.decide(snap, now, pkt, p),
        }
    }

    /// Parse → service → flow → forward → count.
    fn decide<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
        p: Parsed<K>,
    ) -> Result<Verdict, DropReason> {
        let svc_idx = service(snap, &p.key)?;
        let svc = &snap.services[svc_idx];
        if snap.complete_partial && rewrite::partial::complete(pkt.data_mut()) {
            self.counters.checksums_completed.inc();
        }
        self.fullnat_pending = svc.forwarding == Forwarding::FullNat;
        let (dest, flow) = self.connection(snap, svc_idx, &p, now)?;
        let d = snap.dest(dest).ok_or(DropReason::NoDestination)?;
        // A real server of the packet's family (the configuration keeps them so).
        if d.addr.is_ipv6() != K::IS_V6 {
            return Err(DropReason::NoDestination);
        }
        let mut to = Target {
            mac: d.mac.ok_or(DropReason::NoDestination)?,
            addr: d.addr,
            port: if d.port == 0 { p.key.ports().1 } else { d.port },
            from: None,
        };
        let mut toa = false;
        match svc.forwarding {
            Forwarding::Nat => self.know_nat(flow, &p.key, to.addr, to.port),
            Forwarding::FullNat => {
                let ends = (to.addr, to.port);
                to.from = Some(self.fullnat_from(snap, svc_idx, flow, &p.key, dest, ends)?);
                toa = self.fullnat_toa(flow, &p, pkt);
            }
            Forwarding::Dr | Forwarding::Tun => {}
        }
        let bytes = pkt.len() as u64;
        let forwarded =
            rewrite::forward::forward(pkt, snap, svc.forwarding, &to, &mut self.ip_ident)?;
        if toa {
            finish_toa::<K>(pkt.data_mut());
        }
        let verdict = match forwarded {
            Forwarded::Out => Verdict::Tx,
            Forwarded::Internal => Verdict::TxInternal,
            Forwarded::Replied => {
                self.counters.icmp_frag_needed.inc();
                return Ok(Verdict::Tx);
            }
        };
        if let Some(index) = flow {
            self.offer(snap, svc, index, &p, dest, &to);
        }
        let c = &self.counters.dests[dest as usize];
        c.packets.inc();
        c.bytes.add(bytes);
        Ok(verdict)
    }
}

/// The TCP checksum of a segment the client's address option went into, computed whole
/// after the rewrite.
#[inline(never)]
fn finish_toa<K: FamilyKey>(frame: &mut [u8]) {
    if K::IS_V6 {
        rewrite::toa::finish6(frame);
    } else {
        rewrite::toa::finish4(frame);
    }
}

/// The packet's service, refused as the steering program refuses it after its lookup.
#[inline(always)]
fn service<K: FamilyKey>(snap: &Snapshot, k: &K) -> Result<usize, DropReason> {
    let svc_idx = k.service(snap).ok_or(DropReason::NoService)?;
    if k.source_is_own(snap) {
        return Err(DropReason::MartianSource);
    }
    // After the lookup, as the steering program: port 0 matches an all-ports service.
    let (sport, dport) = k.ports();
    if sport == 0 || dport == 0 {
        return Err(DropReason::PortZero);
    }
    Ok(svc_idx)
}
