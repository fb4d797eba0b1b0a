//! A worker: one thread per RX queue, pinned to a core, owning its socket, its pipeline
//! and its counters. It meets the control thread only at the snapshot (loaded once per
//! batch) and the counters (read by control at scrape time), and at the stop flag.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::counters::WorkerCounters;
use crate::flow::dump::DumpCursor;
use crate::flow::FlowFile;
use crate::fullnat::ReplyMap;
use crate::nat_conns::NatConnMap;
use crate::offload::{FastKey, FastKey6, FastMap};
use crate::pipeline::{Pipeline, PipelineConfig, Prefetched, ResyncCursor};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::syn_guard::{GuardMap, Mark, Pressure, SynGuard, BACKED_UP_SHARE};
use crate::verdict::{DropReason, Verdict};
use crate::xsk::{BoundMode, ConsRing, ProdRing, Umem, Xsk, XskTx};

/// The most frames a batch takes from the RX ring (`WorkerConfig::batch` may be less).
pub const BATCH: u32 = 64;
/// How long an idle worker sleeps in poll() before looking at the stop flag again.
const IDLE_POLL_MS: i32 = 100;
/// The sweep visits the whole flow table once per this period...
const SWEEP_PERIOD_MS: u64 = 2000;
/// ...in slices of at most this many buckets, so no batch waits long behind it.
const SWEEP_MAX_BUCKETS: u64 = 4096;
/// At most this many `sendto()` kicks per turn while the TX ring drains (`Xsk::drain_tx`).
const MAX_KICKS: u32 = 64;
/// With connection sync on, an idle worker wakes this often to install what the peers
/// sent (a backup receives no traffic, only sync).
const SYNC_IDLE_POLL_MS: i32 = 10;
/// Synced entries a worker installs per loop turn, and buckets a resync walk covers.
const SYNC_INSTALL_PER_TURN: usize = 4096;
const SYNC_WALK_BUCKETS_PER_TURN: usize = 4096;

/// How many frames a batch may take off the RX ring: at most `batch`, and no more than
/// the TX rings have room for, since each received frame leaves by at most one of them.
/// A frame is never received and then dropped for want of TX room (it would count as
/// forwarded and as dropped at once): what does not fit stays in the RX ring, and the
/// kernel counts it there (`rx_ring_full`) if the ring overflows.
#[inline]
pub fn batch_room(batch: u32, tx_free: u32, internal_free: Option<u32>) -> u32 {
    batch
        .min(BATCH)
        .min(tx_free)
        .min(internal_free.unwrap_or(u32::MAX))
}

pub struct WorkerConfig {
    pub queue: u32,
    /// The core to pin to; `None` leaves the thread unpinned.
    pub cpu: Option<usize>,
    pub pipeline: PipelineConfig,
    /// Frames per batch, 1 to `BATCH`.
    pub batch: u32,
    /// The file the flow tables live in, so they outlive the process (`None`: the heap).
    pub flow_file: Option<Arc<FlowFile>>,
    /// The fast path's entries were taken over at their own generation: recovered flows
    /// keep their offloaded mark (the entries still carry them).
    pub fast_kept: bool,
}

pub struct Worker {
    xsk: Xsk,
    /// Two-arm NAT: the internal interface's transmit socket, sharing `xsk`'s UMEM.
    internal: Option<XskTx>,
    internal_outstanding: u32,
    pipeline: Pipeline,
    snapshot: SharedSnapshot,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    /// Frames to return to the fill ring that did not fit in it yet (never in practice:
    /// the fill ring holds every frame; kept so a frame can never be lost).
    spare: Vec<u64>,
    tx_outstanding: u32,
    /// Buckets swept since start: the sweep keeps pace with the clock, not the traffic.
    swept: u64,
    /// The flow dump under way (`status --connections`).
    dump: DumpCursor,
    /// The batch's frames as `Pipeline::prefetch` parsed them.
    pre: [Option<Prefetched>; BATCH as usize],
    /// Frames per batch (`WorkerConfig::batch`).
    batch: u32,
    /// The XDP fast path's map, when it is on.
    fast: Option<FastMap>,
    /// The steering program's known NAT connections.
    nat_conns: Option<NatConnMap>,
    /// The steering program's FullNAT reply entries.
    fullnat: Option<ReplyMap>,
    /// CLOCK_MONOTONIC_COARSE at `epoch`: converts the fast path's times to this clock.
    epoch_ns: u64,
    /// A peer's resync under way (connection sync).
    resync: ResyncCursor,
    /// The flow tables hold a killed xvs's flows, to take up before the first batch.
    recovering: bool,
    fast_kept: bool,
    /// The queue's entry of the steering program's SYN guard, and when it is needed.
    guard: Option<GuardMap>,
    pressure: Pressure,
}

impl Worker {
    pub fn new(
        xsk: Xsk,
        config: &WorkerConfig,
        snapshot: SharedSnapshot,
        stop: Arc<AtomicBool>,
        counters: Arc<WorkerCounters>,
    ) -> Self {
        let frames = xsk.umem.frame_count() as usize;
        // A recovered file's deadlines count from its epoch: the clock carries on there.
        let epoch_ns = config
            .flow_file
            .as_ref()
            .map_or_else(crate::sys::monotonic_coarse_ns, |f| f.epoch_ns());
        let since = crate::sys::monotonic_coarse_ns().saturating_sub(epoch_ns);
        let now = Instant::now();
        let mut w = Worker {
            xsk,
            internal: None,
            internal_outstanding: 0,
            pipeline: Pipeline::in_file(&config.pipeline, counters, config.flow_file.clone()),
            snapshot,
            stop,
            epoch: now.checked_sub(Duration::from_nanos(since)).unwrap_or(now),
            spare: Vec::with_capacity(frames),
            tx_outstanding: 0,
            swept: 0,
            dump: DumpCursor::default(),
            pre: [None; BATCH as usize],
            batch: config.batch.clamp(1, BATCH),
            fast: None,
            nat_conns: None,
            fullnat: None,
            epoch_ns,
            resync: ResyncCursor::default(),
            recovering: config.flow_file.as_ref().is_some_and(|f| f.recovered()),
            fast_kept: config.fast_kept,
            guard: None,
            pressure: Pressure::default(),
        };
        // A recovered file's clock started long ago: the sweep starts where it stands,
        // not with a backlog of every period since.
        w.swept = w.sweep_due(w.epoch.elapsed());
        w
    }

    /// Sends this worker's flows to connection sync and installs the peers', through
    /// `channel` (one per worker).
    pub fn with_sync(mut self, channel: Arc<crate::sync::SyncChannel>) -> Self {
        self.pipeline = self.pipeline.with_sync(channel);
        self
    }

    /// Connection sync's share of a loop turn: install what the peers sent, go on with a
    /// resync walk. Returns true when more is waiting (the worker must not sleep).
    fn serve_sync(&mut self) -> bool {
        let Some(ch) = self.pipeline.sync() else {
            return false;
        };
        if ch.inbound.is_empty() && self.resync.idle(ch.walk_asked()) {
            return false;
        }
        let now = self.now();
        let snap = self.snapshot.load();
        self.pipeline
            .install_synced(&snap, now, SYNC_INSTALL_PER_TURN);
        self.apply_nat_conns();
        self.apply_fullnat();
        let walking = self
            .pipeline
            .resync_walk(&mut self.resync, now, SYNC_WALK_BUCKETS_PER_TURN);
        // A walk that waits for room in the bulk queue sleeps a turn: the sync thread
        // drains it at its own pace.
        let more = self.pipeline.sync().is_some_and(|c| !c.inbound.is_empty());
        more || (walking && self.pipeline.sync().is_some_and(|c| !c.bulk.is_full()))
    }

    /// Tells the steering program the NAT connections this worker creates, through `map`.
    pub fn with_nat_conns(mut self, map: NatConnMap) -> Self {
        self.nat_conns = Some(map);
        self
    }

    /// Writes the NAT connections the batch (or an install) created: before the batch
    /// is transmitted, so that the real server's first reply finds its entry.
    fn apply_nat_conns(&mut self) {
        let ops = self.pipeline.nat_conn_ops();
        if ops.is_empty() && ops.dropped == 0 {
            return;
        }
        let failed = match self.nat_conns.as_ref() {
            Some(map) => map.apply(ops),
            None => {
                ops.clear();
                0
            }
        } + std::mem::take(&mut ops.dropped);
        if failed > 0 {
            self.pipeline.counters().nat_conns_failed.add(failed);
        }
    }

    /// Tells the steering program the FullNAT connections' reply entries, through `map`.
    pub fn with_fullnat_replies(mut self, map: ReplyMap) -> Self {
        self.fullnat = Some(map);
        self
    }

    /// Writes and removes the FullNAT reply entries the batch (or the sweep) queued:
    /// before the batch is transmitted, so that the real server's first reply finds
    /// its entry.
    fn apply_fullnat(&mut self) {
        let ops = self.pipeline.fullnat_ops();
        if ops.is_empty() && ops.dropped == 0 {
            return;
        }
        let failed = match self.fullnat.as_ref() {
            Some(map) => map.apply(ops),
            None => {
                ops.clear();
                0
            }
        } + std::mem::take(&mut ops.dropped);
        if failed > 0 {
            self.pipeline.counters().fullnat_replies_failed.add(failed);
        }
    }

    /// Hands established DR, TUN and NAT flows to the XDP fast path through `map`.
    pub fn with_fast_path(mut self, map: FastMap) -> Self {
        // A descriptor of its own for the pipeline's lookups of flows it never saw
        // (`pipeline/adopt.rs`); without one (no descriptor left) they are not adopted.
        if let Ok(own) = map.try_clone() {
            self.pipeline
                .set_adoption(Box::new(move |key| own.entry(key)));
        }
        self.fast = Some(map);
        self
    }

    /// Writes what the batch (or the sweep) queued for the fast path, stamped now.
    fn apply_fast(&mut self) {
        let (Some(map), ops) = (self.fast.as_ref(), self.pipeline.fast_ops()) else {
            return;
        };
        if ops.is_empty() {
            return;
        }
        ops.stamp(crate::sys::monotonic_coarse_ns());
        let failed = map.apply(ops) + std::mem::take(&mut ops.dropped);
        if failed > 0 {
            self.pipeline.counters().fast_path_failed.add(failed);
        }
    }

    /// Turns the queue's SYN guard on through `map` when the RX ring backs up.
    pub fn with_syn_guard(mut self, map: GuardMap) -> Self {
        self.guard = Some(map);
        self
    }

    /// Turns the queue's SYN guard on while the worker stays overloaded by new flows (its
    /// RX ring backed up, or live flows evicted: `syn_guard: auto`, `Pressure`), and off
    /// when the setting leaves `auto` (control clears idle queues' too). Reads the clock
    /// only when overloaded; writes the map at most four times a hold.
    #[inline]
    fn guard_pressure(&mut self, mode: SynGuard) {
        let Some(map) = self.guard.as_ref() else {
            return;
        };
        let c = self.pipeline.counters();
        let evicted = c.live_evicted.get();
        if mode != SynGuard::Auto {
            if self.pressure.is_set() {
                map.set(0);
                c.syn_guard_until.set(0);
            }
            // Back in `auto`, an overload starts afresh.
            self.pressure.clear(evicted);
            return;
        }
        let size = self.xsk.rx.size();
        let backed_up = Pressure::backed_up(self.xsk.rx.backlog(size / BACKED_UP_SHARE), size);
        if !self.pressure.overloaded(backed_up, evicted) {
            self.pressure.drained();
            return;
        }
        let mark = Mark {
            at: crate::sys::monotonic_coarse_ns(),
            frames: c.rx_packets.get(),
            opened: c.flows_created.get(),
            evicted,
        };
        if let Some((until, was_off)) = self.pressure.overloaded_at(mark) {
            // A refused write leaves the guard off; tried again a quarter hold on.
            if map.set(until) {
                c.syn_guard_until.set(until);
                if was_off {
                    c.syn_guard_engaged.inc();
                }
            }
        }
    }

    /// Sends `TxInternal` frames out of `tx` (opened with `Xsk::open_shared_tx`).
    pub fn with_internal(mut self, tx: XskTx) -> Self {
        self.internal = Some(tx);
        self
    }

    /// Starts the worker on its own thread, pinned to `cpu` if given.
    pub fn spawn(
        mut self,
        queue: u32,
        cpu: Option<usize>,
    ) -> io::Result<JoinHandle<io::Result<()>>> {
        std::thread::Builder::new()
            .name(format!("xvs-q{queue}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    crate::sys::pin_to_cpu(cpu)?;
                }
                self.run();
                Ok(())
            })
    }

    /// Seconds since the worker started, from 1 (0 marks free flow slots).
    fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32 + 1
    }

    pub fn run(&mut self) {
        if self.recovering {
            self.recovering = false;
            let snap = self.snapshot.load_full();
            self.pipeline.recover(&snap, self.now(), self.fast_kept);
        }
        while !self.stop.load(Ordering::Relaxed) {
            self.pipeline.counters().turns.inc();
            let epoch = self.epoch;
            let pipeline = &self.pipeline;
            pipeline.counters().flow_dump.serve(
                &mut self.dump,
                pipeline.flows(),
                pipeline.flows6(),
                (SWEEP_MAX_BUCKETS as usize, &|v6, i| {
                    pipeline.local_of(v6, i)
                }),
                // Read the clock only when asked.
                || epoch.elapsed().as_secs() as u32 + 1,
            );
            let sync_busy = self.serve_sync();
            if self.poll_once() == 0 {
                self.reap_completions();
                if self.tx_outstanding > 0 {
                    self.kick();
                }
                if let (Some(t), true) = (self.internal.as_ref(), self.internal_outstanding > 0) {
                    t.kick_tx();
                }
                self.sweep();
                // A flow dump or sync work under way goes on at once; otherwise sleep
                // until traffic.
                let idle = if self.dump.busy() || sync_busy {
                    0
                } else if self.pipeline.sync().is_some() {
                    SYNC_IDLE_POLL_MS
                } else {
                    IDLE_POLL_MS
                };
                self.xsk.wait_rx(idle);
            }
        }
    }

    /// Buckets the sweep should have visited `elapsed` after the epoch.
    fn sweep_due(&self, elapsed: Duration) -> u64 {
        let buckets = self.pipeline.flows().buckets() as u64;
        (elapsed.as_millis() as u64).saturating_mul(buckets) / SWEEP_PERIOD_MS
    }

    /// Reclaims expired flows at the pace of the clock (see `SWEEP_PERIOD_MS`).
    fn sweep(&mut self) {
        let elapsed = self.epoch.elapsed();
        let due = self.sweep_due(elapsed);
        let n = due.saturating_sub(self.swept).min(SWEEP_MAX_BUCKETS);
        if n > 0 {
            let now = elapsed.as_secs() as u32 + 1;
            let done = match self.fast.as_ref() {
                Some(map) => {
                    let epoch = self.epoch_ns;
                    let secs = |ns: u64| (ns.saturating_sub(epoch) / 1_000_000_000) as u32 + 1;
                    let done = self.pipeline.sweep_renewing(
                        now,
                        n as usize,
                        |k| map.last_seen(&FastKey::of(k)).map(secs),
                        |k| map.last_seen6(&FastKey6::of(k)).map(secs),
                    );
                    self.apply_fast();
                    done
                }
                None => self.pipeline.sweep(now, n as usize),
            };
            self.apply_fullnat();
            // Fewer than asked when FullNAT's removals filled up: the rest next turn.
            self.swept += done as u64;
        }
    }

    /// Processes one batch; returns how many frames it took.
    pub fn poll_once(&mut self) -> u32 {
        let room = self.make_room();
        let n = self.xsk.rx.peek(room);
        if n == 0 {
            return 0;
        }
        let now = self.now();
        let snap = self.snapshot.load();
        self.guard_pressure(snap.syn_guard);
        self.pipeline.prepare(&snap);
        self.prefetch_batch(n);
        // Refreshes the cached consumer indices the writes below are checked against.
        self.xsk.tx.free(n);
        self.xsk.fill.free(n);
        if let Some(t) = self.internal.as_mut() {
            t.tx.free(n);
        }
        let mut placed = Placed::default();
        let mut taken = 0;
        // `peek` made all `n` available; should one not be, what follows stays in the RX
        // ring for the next batch instead of being released unplaced.
        while taken < n {
            let Some((desc, base, verdict)) = self.decide_frame(&snap, now, taken) else {
                break;
            };
            self.place(desc, base, verdict, &mut placed);
            taken += 1;
        }
        self.publish(taken, placed);
        taken
    }

    /// Room in the TX ring(s) for a batch; when there is none, the kernel is asked to
    /// send and the sent frames are reaped first.
    fn make_room(&mut self) -> u32 {
        let room = self.room();
        if room > 0 {
            return room;
        }
        self.reap_completions();
        self.kick();
        if let (Some(t), true) = (self.internal.as_ref(), self.internal_outstanding > 0) {
            t.kick_tx();
        }
        self.reap_completions();
        self.room()
    }

    /// Parses the batch's `n` frames ahead and prefetches their flows' buckets: parsed
    /// once, the prefetch's parse is the decision's.
    fn prefetch_batch(&mut self, n: u32) {
        for i in 0..n {
            let Some(desc) = self.xsk.rx.get(i) else {
                break;
            };
            self.pre[i as usize] = self
                .xsk
                .umem
                .packet_mut(desc.addr, desc.len)
                .map(|frame| self.pipeline.prefetch(frame));
        }
    }

    /// The `i`th frame of the batch decided (and rewritten): its descriptor as it is now,
    /// its chunk's base, and the verdict.
    #[inline]
    fn decide_frame(
        &mut self,
        snap: &Snapshot,
        now: u32,
        i: u32,
    ) -> Option<(libc::xdp_desc, u64, Verdict)> {
        let mut desc = self.xsk.rx.get(i)?;
        let base = self.xsk.umem.frame_base(desc.addr);
        let Some(mut pkt) = self.xsk.umem.packet_in_frame(desc.addr, desc.len) else {
            let reason = DropReason::InvalidDescriptor;
            self.pipeline.counters().count_drop(reason);
            return Some((desc, base, Verdict::Drop(reason)));
        };
        let pre = self.pre[i as usize].take().unwrap_or(Prefetched::NONE);
        let verdict = self.pipeline.process_packet(snap, now, &mut pkt, pre);
        // The frame may have grown into its headroom (TUN) or been replaced by a reply:
        // send what it is now.
        desc.addr = base + pkt.head() as u64;
        desc.len = pkt.len() as u32;
        Some((desc, base, verdict))
    }

    /// Puts a decided frame on its TX ring, or its chunk back on the fill ring (dropped,
    /// or no room to send: counted).
    #[inline]
    fn place(&mut self, desc: libc::xdp_desc, base: u64, verdict: Verdict, placed: &mut Placed) {
        match verdict {
            Verdict::Tx => {
                if self.xsk.tx.write(placed.tx, desc) {
                    placed.tx += 1;
                    return;
                }
                self.pipeline.counters().count_drop(DropReason::TxRingFull);
            }
            Verdict::TxInternal => {
                let int_n = placed.internal;
                if self
                    .internal
                    .as_mut()
                    .is_some_and(|t| t.tx.write(int_n, desc))
                {
                    placed.internal += 1;
                    return;
                }
                self.pipeline.counters().count_drop(DropReason::TxRingFull);
            }
            Verdict::Drop(_) => {}
        }
        if self.xsk.fill.write(placed.fill, base) {
            placed.fill += 1;
        } else {
            self.spare.push(base);
        }
    }

    /// Hands the batch's results to the kernel: the RX slots back, the fill ring, the
    /// NAT connections (before the frames that need them leave), the TX rings, the fast
    /// path's entries; then the counters, completions and the sweep.
    fn publish(&mut self, n: u32, placed: Placed) {
        self.xsk.rx.release(n);
        self.xsk.fill.submit(placed.fill);
        self.apply_nat_conns();
        self.apply_fullnat();
        if placed.tx > 0 {
            self.xsk.tx.submit(placed.tx);
            self.tx_outstanding += placed.tx;
            self.kick();
        }
        if let (Some(t), true) = (self.internal.as_mut(), placed.internal > 0) {
            t.tx.submit(placed.internal);
            self.internal_outstanding += placed.internal;
            // Shared sockets inherit copy mode on veth; kicking is cheap either way.
            t.kick_tx();
        }
        self.apply_fast();
        let counters = self.pipeline.counters();
        counters.rx_packets.add(u64::from(n));
        counters.rx_batches.inc();
        counters
            .tx_packets
            .add(u64::from(placed.tx + placed.internal));
        self.reap_completions();
        if self.xsk.fill.needs_wakeup() {
            self.xsk.wake_fill();
        }
        self.sweep();
    }

    /// Room in the TX ring(s) for a batch.
    fn room(&mut self) -> u32 {
        let tx = self.xsk.tx.free(self.batch);
        let internal = self.internal.as_mut().map(|t| t.tx.free(self.batch));
        batch_room(self.batch, tx, internal)
    }

    /// Has the kernel send what the TX ring holds. With need_wakeup the kernel says when it
    /// needs the syscall; copy mode always does.
    fn kick(&mut self) {
        if self.xsk.mode() != BoundMode::Copy && !self.xsk.tx.needs_wakeup() {
            return;
        }
        let kicks = self.xsk.drain_tx(MAX_KICKS);
        self.pipeline.counters().tx_kicks.add(u64::from(kicks));
    }

    /// Moves sent frames from the completion ring (and any spare frames) back to the fill
    /// ring.
    fn reap_completions(&mut self) {
        let done = self.xsk.comp.peek(u32::MAX);
        let internal_done = self.internal.as_mut().map_or(0, |t| t.comp.peek(u32::MAX));
        self.xsk
            .fill
            .free(done + internal_done + self.spare.len() as u32);
        let mut filled = 0;
        while let Some(addr) = self.spare.pop() {
            if !self.xsk.fill.write(filled, addr) {
                self.spare.push(addr);
                break;
            }
            filled += 1;
        }
        let took = refill(
            &mut self.xsk.comp,
            &mut self.xsk.fill,
            &self.xsk.umem,
            filled,
        );
        self.tx_outstanding = self.tx_outstanding.saturating_sub(took);
        filled += took;
        // The internal socket's sent frames come home to the receiving socket's fill ring.
        if let Some(t) = self.internal.as_mut() {
            let took = refill(&mut t.comp, &mut self.xsk.fill, &self.xsk.umem, filled);
            self.internal_outstanding = self.internal_outstanding.saturating_sub(took);
            filled += took;
        }
        self.xsk.fill.submit(filled);
    }
}

/// Where a batch's frames went: slots written on each ring, submitted together.
#[derive(Default)]
struct Placed {
    tx: u32,
    internal: u32,
    fill: u32,
}

/// Moves completed frames' chunks to the fill ring's slots from `at` on, as many as both
/// rings allow; returns how many (released from `comp`).
fn refill(comp: &mut ConsRing<u64>, fill: &mut ProdRing<u64>, umem: &Umem, at: u32) -> u32 {
    // Looks again: sends may have completed since the caller sized the fill ring.
    comp.peek(u32::MAX);
    let mut took = 0;
    while let Some(addr) = comp.get(took) {
        if !fill.write(at + took, umem.frame_base(addr)) {
            break;
        }
        took += 1;
    }
    comp.release(took);
    took
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_never_takes_more_than_the_tx_rings_can_send() {
        assert_eq!(batch_room(64, 2048, None), BATCH);
        assert_eq!(batch_room(16, 2048, None), 16, "a smaller batch setting");
        assert_eq!(
            batch_room(500, 2048, None),
            BATCH,
            "never past the arrays' size"
        );
        assert_eq!(
            batch_room(64, 10, None),
            10,
            "the TX ring's room bounds the batch"
        );
        assert_eq!(
            batch_room(64, 0, None),
            0,
            "a full TX ring: nothing received"
        );
        assert_eq!(
            batch_room(64, 2048, Some(3)),
            3,
            "two-arm NAT: the internal ring too"
        );
        assert_eq!(batch_room(64, 5, Some(3000)), 5);
    }
}
