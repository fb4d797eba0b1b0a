//! The connection-sync families: entries sent, received, installed and rejected by
//! reason, resyncs and their duration, and each peer's last word.

use std::time::Instant;

use super::text::{Out, Read};
use crate::observe::counters::AllWorkers;
use crate::sync::stats::PeerView;
use crate::sync::wire::Reject;
use crate::sync::SyncStats;

/// Families of one sample each way: name, help, then what was sent and received.
const BY_DIRECTION: [(&str, &str, Read<SyncStats>, Read<SyncStats>); 2] = [
    (
        "xvs_sync_messages_total",
        "Connection sync messages sent and accepted.",
        |s| SyncStats::get(&s.sent_messages),
        |s| SyncStats::get(&s.received_messages),
    ),
    (
        "xvs_sync_bytes_total",
        "Connection sync bytes (UDP payload).",
        |s| SyncStats::get(&s.sent_bytes),
        |s| SyncStats::get(&s.received_bytes),
    ),
];

/// The resyncs counted, by what happened.
const RESYNCS: [(&str, Read<SyncStats>); 3] = [
    ("requested", |s| SyncStats::get(&s.resync_requested)),
    ("completed", |s| SyncStats::get(&s.resync_completed)),
    ("served", |s| SyncStats::get(&s.resync_served)),
];

/// The last resyncs' durations in milliseconds, received and served.
const RESYNC_LAST_MS: [(&str, Read<SyncStats>); 2] = [
    ("received", |s| SyncStats::get(&s.resync_last_ms)),
    ("served", |s| SyncStats::get(&s.resync_served_last_ms)),
];

/// A peer's value at `now` (the scrape's time).
type PeerValue = fn(&PeerView, Instant) -> String;

/// The families per peer: name, help, value.
const PER_PEER: [(&str, &str, PeerValue); 3] = [
    (
        "xvs_sync_peer_last_heard_seconds",
        "Seconds since each sync peer was last heard from.",
        |p, now| format!("{:.3}", now.duration_since(p.last_heard).as_secs_f64()),
    ),
    (
        "xvs_sync_peer_connections",
        "Connections each sync peer says it tracks (its last hello): a backup at 0 beside a master that is not has no table to fail over with.",
        |p, _| p.flows.to_string(),
    ),
    (
        "xvs_sync_peer_up",
        "1 for a sync peer heard within 3 s.",
        |p, _| u64::from(p.live).to_string(),
    ),
];

pub fn families(o: &mut Out, s: &SyncStats, w: AllWorkers<'_>) {
    entries(o, s, w);
    traffic(o, s);
    refusals(o, s);
    resyncs(o, s);
    readiness(o, s, w);
    peers(o, s);
}

fn entries(o: &mut Out, s: &SyncStats, w: AllWorkers<'_>) {
    o.family(
        "xvs_sync_entries_total",
        "counter",
        "Connection sync entries: queued by the workers, sent, received, installed by the workers, lost to a full queue, stale (real server gone).",
    );
    for (what, n) in entry_counts(s, w) {
        o.sample("xvs_sync_entries_total", &[("what", what)], n);
    }
}

/// Messages and bytes, each way.
fn traffic(o: &mut Out, s: &SyncStats) {
    for (name, help, sent, received) in BY_DIRECTION {
        o.family(name, "counter", help);
        o.sample(name, &[("direction", "sent")], sent(s));
        o.sample(name, &[("direction", "received")], received(s));
    }
}

/// What was refused, by reason, and the NAT next hops left unresolved.
fn refusals(o: &mut Out, s: &SyncStats) {
    o.family(
        "xvs_sync_rejected_total",
        "counter",
        "Connection sync messages and entries refused, by reason.",
    );
    for &r in Reject::ALL {
        o.sample(
            "xvs_sync_rejected_total",
            &[("reason", r.label())],
            s.rejected(r),
        );
    }
    o.family(
        "xvs_sync_nat_resolves_dropped_total",
        "counter",
        "NAT clients of received entries whose next hop was not resolved (the resolver's queue was full); asked again with the next entry.",
    );
    o.sample(
        "xvs_sync_nat_resolves_dropped_total",
        &[],
        SyncStats::get(&s.resolves_dropped),
    );
}

fn resyncs(o: &mut Out, s: &SyncStats) {
    o.family(
        "xvs_sync_resyncs_total",
        "counter",
        "Full-table resyncs: asked of the peers, finished, and served to them.",
    );
    for (what, f) in RESYNCS {
        o.sample("xvs_sync_resyncs_total", &[("what", what)], f(s));
    }
    o.family(
        "xvs_sync_resync_last_seconds",
        "gauge",
        "Duration of the last resync received, and of the last one served.",
    );
    for (what, f) in RESYNC_LAST_MS {
        o.sample_text(
            "xvs_sync_resync_last_seconds",
            &[("what", what)],
            &seconds(f(s)),
        );
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Whether the table is in step, and how many connections it holds.
fn readiness(o: &mut Out, s: &SyncStats, w: AllWorkers<'_>) {
    o.family(
        "xvs_sync_ready",
        "gauge",
        "1 when this director's table is in step with its peers' (a resync finished, or none to be had).",
    );
    o.sample(
        "xvs_sync_ready",
        &[],
        u64::from(s.ready.load(std::sync::atomic::Ordering::Relaxed)),
    );
    o.family(
        "xvs_sync_local_connections",
        "gauge",
        "Connections this director's workers track (summed over the workers).",
    );
    o.sample("xvs_sync_local_connections", &[], local_connections(w));
}

/// Each peer's last word; no family at all before a peer is heard.
fn peers(o: &mut Out, s: &SyncStats) {
    let peers = s.peers.load();
    if peers.is_empty() {
        return;
    }
    let now = Instant::now();
    for (name, help, value) in PER_PEER {
        o.family(name, "gauge", help);
        for p in peers.iter() {
            let addr = p.addr.to_string();
            o.sample_text(name, &[("peer", &addr)], &value(p, now));
        }
    }
}

/// The entries by what happened to them, the workers' counters summed with the sync
/// thread's: `/metrics` and `xvs status --sync` show the same.
pub fn entry_counts(s: &SyncStats, w: AllWorkers<'_>) -> [(&'static str, u64); 7] {
    let get = SyncStats::get;
    let sum = |f: fn(&xvs_dataplane::WorkerCounters) -> u64| w.0.iter().map(|c| f(c)).sum::<u64>();
    [
        ("queued", sum(|c| c.sync_queued.get())),
        ("sent", get(&s.sent_entries)),
        ("received", get(&s.received_entries)),
        ("installed", sum(|c| c.sync_installed.get())),
        ("queue_full", sum(|c| c.sync_queue_full.get())),
        (
            "stale",
            sum(|c| c.sync_install_stale.get()) + get(&s.dest_gone),
        ),
        ("walked", sum(|c| c.sync_walked.get())),
    ]
}

/// The workers' connection gauges, summed (what a hello reports).
pub fn local_connections(w: AllWorkers<'_>) -> u64 {
    w.0.iter()
        .flat_map(|c| c.dests.iter())
        .map(|d| d.active.get() + d.inactive.get())
        .sum()
}
