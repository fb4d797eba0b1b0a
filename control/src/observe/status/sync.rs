//! `xvs status --sync`: connection sync at a glance — this director's connections
//! beside each peer's, when each was last heard, the entries that went each way and
//! what was refused, and the resyncs.

use std::fmt::Write;
use std::time::Instant;

use crate::observe::counters::AllWorkers;
use crate::observe::metrics::{entry_counts, local_connections};
use crate::sync::stats::PeerView;
use crate::sync::wire::Reject;
use crate::sync::SyncStats;

/// What both forms show, read once.
struct Seen<'a> {
    local: u64,
    ready: bool,
    now: Instant,
    peers: &'a [PeerView],
    entries: &'a [(&'a str, u64)],
    rejected: &'a [(&'a str, u64)],
}

pub fn render_sync(s: &SyncStats, w: AllWorkers<'_>, json: bool) -> String {
    let local = local_connections(w);
    let ready = s.ready.load(std::sync::atomic::Ordering::Relaxed);
    let now = Instant::now();
    let peers = s.peers.load();
    let entries = entry_counts(s, w);
    let rejected: Vec<(&str, u64)> = Reject::ALL
        .iter()
        .map(|r| (r.label(), s.rejected(*r)))
        .collect();
    let seen = Seen {
        local,
        ready,
        now,
        peers: &peers[..],
        entries: &entries,
        rejected: &rejected,
    };
    if json {
        return to_json(s, &seen);
    }
    to_text(s, &seen)
}

fn to_json(s: &SyncStats, v: &Seen<'_>) -> String {
    let get = SyncStats::get;
    let peers: Vec<serde_json::Value> = v
        .peers
        .iter()
        .map(|p| {
            serde_json::json!({
                "address": p.addr.to_string(),
                "up": p.live,
                "last_heard_seconds": v.now.duration_since(p.last_heard).as_secs_f64(),
                "connections": p.flows,
            })
        })
        .collect();
    let obj = super::counts_object;
    let doc = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": v.ready,
        "connections": v.local,
        "peers": peers,
        "entries": obj(v.entries),
        "rejected": obj(v.rejected),
        "messages": { "sent": get(&s.sent_messages), "received": get(&s.received_messages) },
        "bytes": { "sent": get(&s.sent_bytes), "received": get(&s.received_bytes) },
        "resyncs": {
            "requested": get(&s.resync_requested),
            "completed": get(&s.resync_completed),
            "served": get(&s.resync_served),
            "last_received_ms": get(&s.resync_last_ms),
            "last_served_ms": get(&s.resync_served_last_ms),
            "last_served_entries": get(&s.resync_served_entries),
        },
    });
    serde_json::to_string_pretty(&doc)
        .map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |s| s + "\n")
}

fn to_text(s: &SyncStats, v: &Seen<'_>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Connection sync: {} ({} connection(s) here)",
        if v.ready {
            "in step"
        } else {
            "resync under way"
        },
        v.local
    );
    peer_rows(&mut o, v);
    counts(&mut o, s, v);
    o
}

/// One row per peer, under a header; a live peer with an empty table beside a full one
/// here is marked.
fn peer_rows(o: &mut String, v: &Seen<'_>) {
    let _ = writeln!(o, "Peer             Up   Last heard  Connections");
    if v.peers.is_empty() {
        let _ = writeln!(o, "(no peer heard yet)");
    }
    for p in v.peers {
        let warn = if p.live && p.flows == 0 && v.local > 0 {
            "  <- empty table"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "{:<16} {:<4} {:>9.1}s  {:>11}{warn}",
            p.addr,
            if p.live { "yes" } else { "no" },
            v.now.duration_since(p.last_heard).as_secs_f64(),
            p.flows
        );
    }
}

/// Entries, refusals, messages and resyncs, a line each.
fn counts(o: &mut String, s: &SyncStats, v: &Seen<'_>) {
    let get = SyncStats::get;
    let _ = writeln!(o, "Entries          {}", join(v.entries));
    let _ = writeln!(o, "Rejected         {}", join(v.rejected));
    let _ = writeln!(
        o,
        "Messages         sent {} ({} bytes), received {} ({} bytes)",
        get(&s.sent_messages),
        get(&s.sent_bytes),
        get(&s.received_messages),
        get(&s.received_bytes)
    );
    let _ = writeln!(
        o,
        "Resyncs          requested {}, completed {} (last {} ms), served {} (last {} entries in {} ms)",
        get(&s.resync_requested),
        get(&s.resync_completed),
        get(&s.resync_last_ms),
        get(&s.resync_served),
        get(&s.resync_served_entries),
        get(&s.resync_served_last_ms)
    );
}

fn join(rows: &[(&str, u64)]) -> String {
    rows.iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::sync::stats::PeerView;

    #[test]
    fn a_peer_with_an_empty_table_beside_ours_is_marked() {
        let s = SyncStats::default();
        let w = vec![Arc::new(xvs_dataplane::WorkerCounters::new(4))];
        w[0].dests[1].active.inc();
        s.reject(Reject::Authentication);
        s.peers.store(Arc::new(vec![
            PeerView {
                addr: "10.0.0.3".parse().unwrap(),
                last_heard: Instant::now(),
                live: true,
                flows: 0,
            },
            PeerView {
                addr: "10.0.0.4".parse().unwrap(),
                last_heard: Instant::now(),
                live: true,
                flows: 1,
            },
        ]));
        let text = render_sync(&s, AllWorkers(&w), false);
        assert!(
            text.contains("resync under way (1 connection(s) here)"),
            "{text}"
        );
        let row = |a: &str| text.lines().find(|l| l.starts_with(a)).unwrap().to_string();
        assert!(row("10.0.0.3").ends_with("<- empty table"), "{text}");
        assert!(!row("10.0.0.4").contains("empty"), "{text}");
        assert!(text.contains("authentication 1"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&render_sync(&s, AllWorkers(&w), true)).unwrap();
        assert_eq!(json["connections"], 1);
        assert_eq!(json["peers"][0]["connections"], 0);
        assert_eq!(json["rejected"]["authentication"], 1);
    }
}
