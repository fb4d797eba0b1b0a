//! Per-worker counters: written by their worker only, read by the control thread at scrape
//! time. A relaxed load + store (not a read-modify-write) costs about as much as a plain
//! integer on x86 and is still a well-defined cross-thread read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::verdict::DropReason;

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Only the owning worker may call this: it is not an atomic increment.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// For gauges (active connections): the owner only, as `add`.
    #[inline]
    pub fn dec(&self) {
        self.add(u64::MAX);
    }

    /// For a value the owner publishes (a time): the owner only.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Back to 0, from any thread: only for a counter no worker writes any more (a real
    /// server's id that no snapshot and no flow names), before it is given out again.
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

/// Per real server (indexed by `DestId`).
#[derive(Default, Debug)]
pub struct DestCounters {
    /// Connections (flows) scheduled to this real server.
    pub conns: Counter,
    pub packets: Counter,
    pub bytes: Counter,
    /// Gauges, IPVS's ActiveConn and InActConn: this worker's connections to the real
    /// server now, ESTABLISHED and otherwise.
    pub active: Counter,
    pub inactive: Counter,
}

impl DestCounters {
    /// IPVS's connection overhead: an active connection weighs 256 inactive ones.
    #[inline]
    pub fn overhead(&self) -> u64 {
        (self.active.get() << 8) + self.inactive.get()
    }

    /// Every count back to 0 (see `Counter::reset`: a freed id's only).
    pub fn reset(&self) {
        for c in [
            &self.conns,
            &self.packets,
            &self.bytes,
            &self.active,
            &self.inactive,
        ] {
            c.reset();
        }
    }
}

/// Per virtual service (indexed by `Service::stats_id`).
#[derive(Debug, Default)]
pub struct ServiceCounters {
    /// New connections the scheduler could place nowhere (no real server available).
    pub no_dest: Counter,
}

/// One worker's counters, on their own cache lines.
#[repr(align(64))]
#[derive(Debug)]
pub struct WorkerCounters {
    /// Turns of the worker's loop (at least one per idle poll, 100 ms): the watchdog's
    /// sign of life.
    pub turns: Counter,
    pub rx_packets: Counter,
    pub rx_batches: Counter,
    pub tx_packets: Counter,
    pub tx_kicks: Counter,
    pub flows_created: Counter,
    pub flows_evicted: Counter,
    pub flows_rescheduled: Counter,
    /// Connections taken from the fast path's map, which a killed xvs's program left
    /// (`pipeline/adopt.rs`).
    pub flows_adopted: Counter,
    /// Connections and templates taken up from the flow-state file a killed xvs left
    /// (`pipeline/recover.rs`).
    pub flows_recovered: Counter,
    /// Entries of that file cleared instead: expired, or naming a service or real server
    /// this process does not have.
    pub flows_recovery_cleared: Counter,
    pub flows_expired: Counter,
    /// ICMP fragmentation-needed (ICMPv6 Packet Too Big over IPv6) sent to clients: TUN
    /// packets above the path MTU.
    pub icmp_frag_needed: Counter,
    /// Fast-path entries the worker queued and the kernel refused (or that did not fit).
    pub fast_path_failed: Counter,
    /// Times the worker, overloaded by new flows, turned its queue's SYN guard on.
    pub syn_guard_engaged: Counter,
    /// Until when (CLOCK_MONOTONIC_COARSE ns) the worker has its queue's SYN guard on
    /// (0: off): what it last wrote into `xvs_syn_guard`.
    pub syn_guard_until: Counter,
    /// Flows a packet's new flow evicted while they were not closing (not FIN_WAIT,
    /// TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK): the SYN guard's sign of a full table.
    pub live_evicted: Counter,
    /// NAT connections the kernel refused to take in `xvs_nat_conns` (or that did not
    /// fit a batch): their replies are not translated.
    pub nat_conns_failed: Counter,
    /// NAT replies the steering program translated and this worker sent (`nat_relay`).
    pub nat_relayed: Counter,
    /// TCP and UDP checksums a virtual link left partial, completed here.
    pub checksums_completed: Counter,
    /// FullNAT: segments given the client's address option, and those without room
    /// for it (40 bytes of options already, or extension headers).
    pub fullnat_toa_added: Counter,
    pub fullnat_toa_no_room: Counter,
    /// FullNAT segments that came with an option of that kind, the client's own,
    /// turned into NOPs.
    pub fullnat_toa_scrubbed: Counter,
    /// FullNAT reply entries the kernel refused (or that did not fit a batch): those
    /// connections' replies go to the kernel untranslated.
    pub fullnat_replies_failed: Counter,
    /// Gauges, per FullNAT local address id: this worker's pairs in use there.
    pub local_ports: Box<[Counter]>,
    /// Connection sync: entries handed to the sync thread, and lost for want of room.
    pub sync_queued: Counter,
    pub sync_queue_full: Counter,
    /// Entries from the peers installed in this worker's tables, and those whose real
    /// server this worker's snapshot no longer has.
    pub sync_installed: Counter,
    pub sync_install_stale: Counter,
    /// Entries this worker's resync walks put in the bulk queue.
    pub sync_walked: Counter,
    pub drops: [Counter; DropReason::COUNT],
    pub dests: Box<[DestCounters]>,
    pub services: Box<[ServiceCounters]>,
    /// Not a counter, but read the same way: control's window on the flow table.
    pub flow_dump: crate::flow::dump::FlowDump,
}

impl WorkerCounters {
    pub fn new(max_dests: usize) -> Self {
        WorkerCounters {
            turns: Counter::default(),
            rx_packets: Counter::default(),
            rx_batches: Counter::default(),
            tx_packets: Counter::default(),
            tx_kicks: Counter::default(),
            flows_created: Counter::default(),
            flows_evicted: Counter::default(),
            flows_rescheduled: Counter::default(),
            flows_adopted: Counter::default(),
            flows_recovered: Counter::default(),
            flows_recovery_cleared: Counter::default(),
            flows_expired: Counter::default(),
            icmp_frag_needed: Counter::default(),
            fast_path_failed: Counter::default(),
            syn_guard_engaged: Counter::default(),
            syn_guard_until: Counter::default(),
            live_evicted: Counter::default(),
            nat_conns_failed: Counter::default(),
            nat_relayed: Counter::default(),
            checksums_completed: Counter::default(),
            fullnat_toa_added: Counter::default(),
            fullnat_toa_no_room: Counter::default(),
            fullnat_toa_scrubbed: Counter::default(),
            fullnat_replies_failed: Counter::default(),
            local_ports: (0..crate::snapshot::MAX_LOCAL_ADDRS)
                .map(|_| Counter::default())
                .collect(),
            sync_queued: Counter::default(),
            sync_queue_full: Counter::default(),
            sync_installed: Counter::default(),
            sync_install_stale: Counter::default(),
            sync_walked: Counter::default(),
            drops: Default::default(),
            dests: (0..max_dests).map(|_| DestCounters::default()).collect(),
            services: (0..crate::snapshot::MAX_SERVICE_STATS)
                .map(|_| ServiceCounters::default())
                .collect(),
            flow_dump: Default::default(),
        }
    }

    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason as usize].inc();
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }
}
