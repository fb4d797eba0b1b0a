//! Persistence and scheduling: a new connection goes to its client's live template's
//! server, else to the scheduler's pick; templates are refreshed while their connections
//! live, and their changes sent to connection sync.

use super::sync::send_record;
use super::{FamilyKey, Pipeline};
use crate::flow::table::FLAG_TEMPLATE;
use crate::flow::Flow;
use crate::hash::mix64;
use crate::sched::PickCtx;
use crate::snapshot::{DestId, Persistence, Snapshot};
use crate::verdict::DropReason;

impl Pipeline {
    /// Keeps the client's persistence template alive while its connections are: at most
    /// one template lookup per connection every half timeout.
    #[inline]
    pub(super) fn keep_template<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        k: &K,
        index: usize,
        dest: DestId,
        now: u32,
    ) {
        let Some(pers) = snap.services[svc_idx].persistence else {
            return;
        };
        let flow = K::table_mut(&mut self.tables).get_mut(index);
        if now.saturating_sub(flow.template_seen) >= (pers.timeout / 2).max(1) {
            flow.template_seen = now;
            let tk = k.template(&pers, &snap.services[svc_idx]);
            self.refresh_template(&pers, tk, dest, now);
        }
    }

    /// The real server for a new connection: the client's persistence template if it has
    /// a live one to a server still present, else the scheduler's pick.
    pub(super) fn schedule<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        k: &K,
        now: u32,
    ) -> Result<DestId, DropReason> {
        let svc = &snap.services[svc_idx];
        if let Some(pers) = svc.persistence {
            let tk = k.template(&pers, svc);
            if let Ok(i) = K::table(&self.tables).lookup(&tk, now) {
                let d = K::table(&self.tables).get(i).dest;
                // As IPVS (expire_quiescent_template=0): a quiescent server keeps its
                // persistent clients; one that left does not.
                if crate::sched::reachable(snap, d) {
                    self.touch_template::<K>(i, &pers, now);
                    return Ok(d);
                }
            }
        }
        self.rand = mix64(self.rand);
        let sched_key = k.sched_key();
        let ctx = PickCtx {
            key: &sched_key,
            conns: &self.counters.dests,
            rand: self.rand,
            now,
        };
        let Some(dest) = self.sched[svc_idx].pick(svc, snap, &snap.tables[svc_idx], &ctx) else {
            if let Some(c) = self.counters.services.get(svc.stats_id as usize) {
                c.no_dest.inc();
            }
            return Err(DropReason::NoDestination);
        };
        if let Some(pers) = svc.persistence {
            self.refresh_template(&pers, k.template(&pers, svc), dest, now);
        }
        Ok(dest)
    }

    /// A new or refreshed template for `tk`'s client network, sent to the peers when new.
    fn refresh_template<K: FamilyKey>(
        &mut self,
        pers: &Persistence,
        tk: K,
        dest: DestId,
        now: u32,
    ) {
        let expires = now.saturating_add(pers.timeout.max(1));
        match K::table(&self.tables).lookup(&tk, now) {
            Ok(i) => self.touch_template::<K>(i, pers, now),
            Err(slot) => {
                self.reclaim::<K>(slot);
                let t = K::table_mut(&mut self.tables).insert(
                    slot,
                    Flow {
                        key: tk,
                        dest,
                        expires,
                        // A template's own connection-sync clock.
                        template_seen: now,
                        flags: FLAG_TEMPLATE,
                        ..Flow::default()
                    },
                );
                if let Some(ch) = self.sync.as_deref() {
                    send_record(ch, &self.counters, t, pers.timeout.max(1), None);
                }
            }
        }
    }

    /// A live template used again: it lives for another timeout, and the peers hear of
    /// it when half its timeout has gone by since they last did.
    fn touch_template<K: FamilyKey>(&mut self, i: usize, pers: &Persistence, now: u32) {
        let t = K::table_mut(&mut self.tables).get_mut(i);
        t.expires = now.saturating_add(pers.timeout.max(1));
        if let Some(ch) = self.sync.as_deref() {
            if now.saturating_sub(t.template_seen) >= (pers.timeout / 2).max(1) {
                t.template_seen = now;
                send_record(ch, &self.counters, t, pers.timeout.max(1), None);
            }
        }
    }
}
