//! Connection sync's outgoing side: which flow changes a packet or a template sends to
//! the peers (the incoming side is `synced`).

use super::{FamilyKey, Pipeline};
use crate::counters::WorkerCounters;
use crate::flow::table::FLAG_FULLNAT;
use crate::flow::{Flow, TcpState};
use crate::sync::record::{refresh_after, tcp_state_synced};
use crate::sync::{SyncChannel, SyncRecord};
use crate::wire::ipv4::PROTO_TCP;

impl Pipeline {
    /// Connection sync's look at a flow a packet just updated: sent when established
    /// (UDP: new), on a later state change, or half its timeout after the peers last
    /// heard of it.
    #[inline(never)]
    pub(super) fn sync_flow<K: FamilyKey>(
        &mut self,
        index: usize,
        old: TcpState,
        created: bool,
        ttl: u32,
        now: u32,
    ) {
        let Some(ch) = self.sync.as_deref() else {
            return;
        };
        let flow = K::table_mut(&mut self.tables).get_mut(index);
        // A FullNAT flow goes with its pair: one that has none yet is sent once it has
        // (`fullnat_from`).
        let local = if flow.flags & FLAG_FULLNAT != 0 {
            self.fullnat.local_of::<K::Fast>(index)
        } else if self.fullnat_pending {
            return;
        } else {
            None
        };
        let s = flow.tcp_state();
        let refresh = (now as u16).wrapping_sub(flow.synced) >= refresh_after(ttl);
        let due = if flow.key.proto() == PROTO_TCP {
            tcp_state_synced(s) && (s != old || refresh)
        } else {
            created || refresh
        };
        if due {
            flow.synced = now as u16;
            send_record(ch, &self.counters, flow, ttl.max(1), local);
        }
    }
}

/// Hands an entry with `ttl` seconds left to the sync thread; a full queue loses it
/// (counted): its next change or refresh is sent again.
#[cold]
pub(super) fn send_record<K: FamilyKey>(
    ch: &SyncChannel,
    counters: &WorkerCounters,
    f: &Flow<K>,
    ttl: u32,
    local: Option<(std::net::IpAddr, u16)>,
) {
    let rec = SyncRecord {
        key: f.key.sync_key(),
        dest: f.dest,
        state: f.state,
        template: f.is_template(),
        timeout: ttl,
        local,
    };
    match ch.changes.push(rec) {
        Ok(()) => counters.sync_queued.inc(),
        Err(_) => counters.sync_queue_full.inc(),
    }
}
