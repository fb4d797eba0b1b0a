//! The two address families behind one trait, so that the decision is written once and
//! compiled for each; the persistence templates' keys; the worker's two flow tables.

use std::net::IpAddr;

use crate::flow::table::Key;
use crate::flow::{FlowKey, FlowKey6, FlowTable};
use crate::fullnat::{FnatValue, SlotFamily};
use crate::nat_conns::NatFamily;
use crate::offload::{FastFamily, FastKey, FastKey6, FastKeyOf};
use crate::snapshot::{Persistence, Service, Snapshot};
use crate::sync::SyncKey;

/// A flow key of either family: what the pipeline's decision needs to know of one.
pub(super) trait FamilyKey: Key {
    const IS_V6: bool;
    /// The service the packet is for (`Snapshot::lookup` of its destination).
    fn service(&self, snap: &Snapshot) -> Option<usize>;
    /// The source is a VIP or one of the director's addresses.
    fn source_is_own(&self, snap: &Snapshot) -> bool;
    /// The key of the persistence template for this connection's client network.
    fn template(&self, p: &Persistence, svc: &Service) -> Self;
    /// The key the schedulers hash.
    fn sched_key(&self) -> FlowKey;
    /// The fast path's key (`xvs_fast_flows` or `xvs_fast_flows6`).
    type Fast: FastFamily + NatFamily + SlotFamily;
    fn fast_key(&self) -> Self::Fast;
    /// The same, of either family.
    fn fast_key_of(&self) -> FastKeyOf;
    /// The key the steering program looks this NAT connection's replies up by: from
    /// `rip`:`rport` (of the key's family) to the client.
    fn nat_reply_key(&self, rip: IpAddr, rport: u16) -> Self::Fast;
    /// The key the steering program looks a FullNAT connection's replies up by: from
    /// `rip`:`rport` to its local pair.
    fn fnat_reply_key(&self, rip: IpAddr, rport: u16, laddr: IpAddr, lport: u16) -> Self::Fast;
    /// What those replies become: from the VIP to the client.
    fn fnat_value(&self, stats_slot: u32) -> FnatValue;
    fn ports(&self) -> (u16, u16);
    fn proto(&self) -> u8;
    fn table(t: &Tables) -> &FlowTable<Self>;
    fn table_mut(t: &mut Tables) -> &mut FlowTable<Self>;
    /// The key as connection sync carries it.
    fn sync_key(&self) -> SyncKey;
}

/// The trait's one implementation, for each family: what differs is named in the
/// arguments.
macro_rules! family_key {
    ($key:ident, v6: $v6:expr, table: $table:ident, fast: $fast:ident, lookup: $lookup:ident,
     own: $own:ident, template: $template:ident, bits: $bits:ident, sync: $sync:ident,
     sched: |$k:ident| $sched:expr) => {
        impl FamilyKey for $key {
            const IS_V6: bool = $v6;
            #[inline(always)]
            fn service(&self, snap: &Snapshot) -> Option<usize> {
                snap.$lookup(self.daddr, self.dport, self.proto)
            }
            #[inline(always)]
            fn source_is_own(&self, snap: &Snapshot) -> bool {
                snap.$own(self.saddr)
            }
            fn template(&self, p: &Persistence, svc: &Service) -> Self {
                $template(p, svc, self.saddr)
            }
            #[inline(always)]
            fn sched_key(&self) -> FlowKey {
                let $k = self;
                $sched
            }
            type Fast = $fast;
            #[inline(always)]
            fn fast_key(&self) -> $fast {
                $fast::of(self)
            }
            fn fast_key_of(&self) -> FastKeyOf {
                FastKeyOf::$sync($fast::of(self))
            }
            fn nat_reply_key(&self, rip: IpAddr, rport: u16) -> $fast {
                let reply = $key::new($bits(rip), self.saddr, rport, self.sport, self.proto);
                $fast::of(&reply)
            }
            fn fnat_reply_key(&self, rip: IpAddr, rport: u16, laddr: IpAddr, lport: u16) -> $fast {
                let reply = $key::new($bits(rip), $bits(laddr), rport, lport, self.proto);
                $fast::of(&reply)
            }
            fn fnat_value(&self, stats_slot: u32) -> FnatValue {
                let mut v = FnatValue {
                    cport: self.sport.to_be_bytes(),
                    vport: self.dport.to_be_bytes(),
                    stats_slot,
                    ..FnatValue::default()
                };
                let (c, d) = (self.saddr.to_be_bytes(), self.daddr.to_be_bytes());
                v.caddr[..c.len()].copy_from_slice(&c);
                v.vip[..d.len()].copy_from_slice(&d);
                v
            }
            #[inline(always)]
            fn ports(&self) -> (u16, u16) {
                (self.sport, self.dport)
            }
            #[inline(always)]
            fn proto(&self) -> u8 {
                self.proto
            }
            #[inline(always)]
            fn table(t: &Tables) -> &FlowTable<Self> {
                &t.$table
            }
            #[inline(always)]
            fn table_mut(t: &mut Tables) -> &mut FlowTable<Self> {
                &mut t.$table
            }
            fn sync_key(&self) -> SyncKey {
                SyncKey::$sync(*self)
            }
        }
    };
}

family_key!(FlowKey, v6: false, table: v4, fast: FastKey, lookup: lookup4, own: is_own,
    template: template_key, bits: v4_bits, sync: V4, sched: |k| *k);
family_key!(FlowKey6, v6: true, table: v6, fast: FastKey6, lookup: lookup6, own: is_own6,
    template: template_key6, bits: v6_bits, sync: V6, sched: |k| k.folded());

/// The service address as the templates of an IPv4 service hold it.
fn v4_bits(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => 0,
    }
}

/// The same for an IPv6 service.
fn v6_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V6(a) => u128::from(a),
        IpAddr::V4(_) => 0,
    }
}

/// The flow-table key of a persistence template: the client network and the service.
pub fn template_key(p: &Persistence, svc: &Service, saddr: u32) -> FlowKey {
    FlowKey::new(
        saddr & p.netmask,
        v4_bits(svc.key.addr),
        0,
        svc.key.port,
        0x80 | svc.key.proto,
    )
}

/// As `template_key`, for an IPv6 client: its prefix of the service's granularity.
pub fn template_key6(p: &Persistence, svc: &Service, saddr: u128) -> FlowKey6 {
    FlowKey6::new(
        saddr & p.netmask6,
        v6_bits(svc.key.addr),
        0,
        svc.key.port,
        0x80 | svc.key.proto,
    )
}

/// The worker's flow tables, one per family.
pub struct Tables {
    pub(super) v4: FlowTable,
    /// IPv6 flows: a table of their own, of one bucket until a snapshot has an IPv6
    /// service (its entries are twice IPv4's, see `FlowKey6`).
    pub(super) v6: FlowTable<FlowKey6>,
}
