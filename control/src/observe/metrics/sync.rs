//! The connection-sync families: entries sent, received, installed and rejected by
//! reason, resyncs and their duration, and each peer's last word.

use std::time::Instant;

use super::text::Out;
use crate::observe::counters::AllWorkers;
use crate::sync::wire::Reject;
use crate::sync::SyncStats;

pub fn families(o: &mut Out, s: &SyncStats, w: AllWorkers<'_>) {
    let get = SyncStats::get;
    o.family(
        "xvs_sync_entries_total",
        "counter",
        "Connection sync entries: queued by the workers, sent, received, installed by the workers, lost to a full queue, stale (real server gone).",
    );
    for (what, n) in entry_counts(s, w) {
        o.sample("xvs_sync_entries_total", &[("what", what)], n);
    }
    o.family(
        "xvs_sync_messages_total",
        "counter",
        "Connection sync messages sent and accepted.",
    );
    o.sample(
        "xvs_sync_messages_total",
        &[("direction", "sent")],
        get(&s.sent_messages),
    );
    o.sample(
        "xvs_sync_messages_total",
        &[("direction", "received")],
        get(&s.received_messages),
    );
    o.family(
        "xvs_sync_bytes_total",
        "counter",
        "Connection sync bytes (UDP payload).",
    );
    o.sample(
        "xvs_sync_bytes_total",
        &[("direction", "sent")],
        get(&s.sent_bytes),
    );
    o.sample(
        "xvs_sync_bytes_total",
        &[("direction", "received")],
        get(&s.received_bytes),
    );
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
        get(&s.resolves_dropped),
    );
    o.family(
        "xvs_sync_resyncs_total",
        "counter",
        "Full-table resyncs: asked of the peers, finished, and served to them.",
    );
    for (what, n) in [
        ("requested", get(&s.resync_requested)),
        ("completed", get(&s.resync_completed)),
        ("served", get(&s.resync_served)),
    ] {
        o.sample("xvs_sync_resyncs_total", &[("what", what)], n);
    }
    o.family(
        "xvs_sync_resync_last_seconds",
        "gauge",
        "Duration of the last resync received, and of the last one served.",
    );
    let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    o.sample_text(
        "xvs_sync_resync_last_seconds",
        &[("what", "received")],
        &secs(get(&s.resync_last_ms)),
    );
    o.sample_text(
        "xvs_sync_resync_last_seconds",
        &[("what", "served")],
        &secs(get(&s.resync_served_last_ms)),
    );
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
    let peers = s.peers.load();
    if !peers.is_empty() {
        o.family(
            "xvs_sync_peer_last_heard_seconds",
            "gauge",
            "Seconds since each sync peer was last heard from.",
        );
        let now = Instant::now();
        for p in peers.iter() {
            let addr = p.addr.to_string();
            o.sample_text(
                "xvs_sync_peer_last_heard_seconds",
                &[("peer", &addr)],
                &format!("{:.3}", now.duration_since(p.last_heard).as_secs_f64()),
            );
        }
        o.family(
            "xvs_sync_peer_connections",
            "gauge",
            "Connections each sync peer says it tracks (its last hello): a backup at 0 beside a master that is not has no table to fail over with.",
        );
        for p in peers.iter() {
            let addr = p.addr.to_string();
            o.sample("xvs_sync_peer_connections", &[("peer", &addr)], p.flows);
        }
        o.family(
            "xvs_sync_peer_up",
            "gauge",
            "1 for a sync peer heard within 3 s.",
        );
        for p in peers.iter() {
            let addr = p.addr.to_string();
            o.sample("xvs_sync_peer_up", &[("peer", &addr)], u64::from(p.live));
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
