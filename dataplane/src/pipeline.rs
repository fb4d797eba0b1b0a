//! The per-frame decision, without I/O and without a clock: parse → service → flow →
//! schedule → rewrite. A worker calls `prepare` once per batch with the snapshot it loaded,
//! then `process` per frame, and `sweep` now and then. Nothing here allocates, locks or
//! makes a syscall.

use std::net::IpAddr;
use std::sync::Arc;

use crate::counters::WorkerCounters;
use crate::fast::{FastFamily, FastKey, FastKey6, FastOps, FastValue};
use crate::flow::table::{Key, Slot, FLAG_NAT_KNOWN, FLAG_OFFLOADED, FLAG_TEMPLATE};
use crate::flow::{Direction, Flow, FlowKey, FlowKey6, FlowTable, TcpState, Timeouts};
use crate::hash::mix64;
use crate::nat_conns::{NatConnOps, NatFamily};
use crate::packet::Packet;
use crate::rewrite;
use crate::rewrite::tun::TunError;
use crate::rewrite::tun6::Tun6Error;
use crate::sched::{PickCtx, SchedState};
use crate::screen;
use crate::snapshot::{DestId, Forwarding, Persistence, Service, Snapshot};
use crate::sync::record::{refresh_after, tcp_state_synced};
use crate::sync::{SyncChannel, SyncKey, SyncRecord};
use crate::verdict::{DropReason, Verdict};
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use crate::wire::WireError;

mod relay;
mod synced;
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
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flow_capacity: 1 << 20,
            hash_seed: 0x5eed,
            timeouts: Timeouts::default(),
            nodest: NodestPolicy::default(),
        }
    }
}

/// The fields of a frame the decision needs, read before anything is rewritten.
#[derive(Clone, Copy, Debug)]
struct Parsed<K> {
    key: K,
    tcp_flags: u8,
}

/// A frame's parse, of either family.
#[derive(Clone, Copy, Debug)]
enum AnyParsed {
    V4(Parsed<FlowKey>),
    V6(Parsed<FlowKey6>),
}

/// A frame parsed ahead of its batch (`Pipeline::prefetch`): its flow's bucket is on its
/// way into the cache, and `Pipeline::process_prefetched` does not parse an IPv4 frame
/// again. An IPv6 frame's parse is not kept: its key is over twice IPv4's, and a
/// worker's batch holds one of these per frame (moved around per frame), so keeping it
/// would make IPv4's batches slower (measured: +27 % per prefetched batch). Its bucket
/// is prefetched all the same, and it is parsed again at decision time.
#[derive(Clone, Copy, Debug)]
pub struct Prefetched(Result<Parsed<FlowKey>, Early>);

/// What a prefetched frame that is no parsed IPv4 one is.
#[derive(Clone, Copy, Debug)]
enum Early {
    Drop(DropReason),
    /// IPv6, parsed again by `process_prefetched`.
    Ipv6,
}

impl Default for Prefetched {
    fn default() -> Self {
        Prefetched(Err(Early::Drop(DropReason::Truncated)))
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::Malformed => DropReason::Malformed,
        }
    }
}

/// The frame's flow key and TCP flags, after every check that needs only the frame
/// (`screen`); the director's own addresses are checked against the snapshot later.
#[inline(always)]
fn parse(frame: &[u8]) -> Result<AnyParsed, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    match eth.ethertype() {
        ETHERTYPE_IPV4 => parse_v4(eth).map(AnyParsed::V4),
        ETHERTYPE_IPV6 => parse_v6(eth).map(AnyParsed::V6),
        _ => Err(DropReason::NotIp),
    }
}

/// The ports and flags of a TCP or UDP header.
#[inline(always)]
fn ports(protocol: u8, l4: &[u8]) -> Result<(u16, u16, u8), DropReason> {
    match protocol {
        PROTO_TCP => screen::tcp(l4),
        PROTO_UDP => {
            let (s, d) = screen::udp(l4)?;
            Ok((s, d, 0))
        }
        _ => Err(DropReason::NoService),
    }
}

#[inline(always)]
fn parse_v4(eth: EthernetFrame<&[u8]>) -> Result<Parsed<FlowKey>, DropReason> {
    let ip = screen::ipv4(eth.payload())?;
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let (sport, dport, tcp_flags) = ports(ip.protocol(), ip.payload())?;
    // A VIP is unicast: the same frame flooded to every director (a VRRP backup too)
    // must not be forwarded by each.
    if eth.dst()[0] & 1 != 0 {
        return Err(DropReason::L2Multicast);
    }
    if screen::martian_source(ip.src_raw()) {
        return Err(DropReason::MartianSource);
    }
    Ok(Parsed {
        key: FlowKey::new(ip.src_raw(), ip.dst_raw(), sport, dport, ip.protocol()),
        tcp_flags,
    })
}

#[inline(always)]
fn parse_v6(eth: EthernetFrame<&[u8]>) -> Result<Parsed<FlowKey6>, DropReason> {
    let (ip, protocol, l4) = screen::ipv6(eth.payload())?;
    let (sport, dport, tcp_flags) = ports(protocol, l4)?;
    if eth.dst()[0] & 1 != 0 {
        return Err(DropReason::L2Multicast);
    }
    let (saddr, daddr) = (
        u128::from_be_bytes(ip.src_raw()),
        u128::from_be_bytes(ip.dst_raw()),
    );
    if screen::martian_source6(saddr) {
        return Err(DropReason::MartianSource);
    }
    Ok(Parsed {
        key: FlowKey6::new(saddr, daddr, sport, dport, protocol),
        tcp_flags,
    })
}

/// A flow key of either family: what the pipeline's decision needs to know of one,
/// so that the decision is written once and compiled for each.
/// The packet of a UDP flow from which the fast path carries it (`offer`): the second,
/// so a spoofed flood (a packet per source) never enters the shared map.
pub const UDP_OFFLOAD_AT: u8 = 2;

trait FamilyKey: Key {
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
    type Fast: FastFamily + NatFamily;
    fn fast_key(&self) -> Self::Fast;
    /// The key the steering program looks this NAT connection's replies up by: from
    /// `rip`:`rport` (of the key's family) to the client.
    fn nat_reply_key(&self, rip: IpAddr, rport: u16) -> Self::Fast;
    fn ports(&self) -> (u16, u16);
    fn proto(&self) -> u8;
    fn table(t: &Tables) -> &FlowTable<Self>;
    fn table_mut(t: &mut Tables) -> &mut FlowTable<Self>;
    /// The key as connection sync carries it.
    fn sync_key(&self) -> SyncKey;
}

impl FamilyKey for FlowKey {
    const IS_V6: bool = false;
    #[inline(always)]
    fn service(&self, snap: &Snapshot) -> Option<usize> {
        snap.lookup4(self.daddr, self.dport, self.proto)
    }
    #[inline(always)]
    fn source_is_own(&self, snap: &Snapshot) -> bool {
        snap.is_own(self.saddr)
    }
    fn template(&self, p: &Persistence, svc: &Service) -> Self {
        template_key(p, svc, self.saddr)
    }
    #[inline(always)]
    fn sched_key(&self) -> FlowKey {
        *self
    }
    type Fast = FastKey;
    #[inline(always)]
    fn fast_key(&self) -> FastKey {
        FastKey::of(self)
    }
    fn nat_reply_key(&self, rip: IpAddr, rport: u16) -> FastKey {
        FastKey::of(&FlowKey::new(
            v4_bits(rip),
            self.saddr,
            rport,
            self.sport,
            self.proto,
        ))
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
        &t.v4
    }
    #[inline(always)]
    fn table_mut(t: &mut Tables) -> &mut FlowTable<Self> {
        &mut t.v4
    }
    fn sync_key(&self) -> SyncKey {
        SyncKey::V4(*self)
    }
}

impl FamilyKey for FlowKey6 {
    const IS_V6: bool = true;
    #[inline(always)]
    fn service(&self, snap: &Snapshot) -> Option<usize> {
        snap.lookup6(self.daddr, self.dport, self.proto)
    }
    #[inline(always)]
    fn source_is_own(&self, snap: &Snapshot) -> bool {
        snap.is_own6(self.saddr)
    }
    fn template(&self, p: &Persistence, svc: &Service) -> Self {
        template_key6(p, svc, self.saddr)
    }
    #[inline(always)]
    fn sched_key(&self) -> FlowKey {
        self.folded()
    }
    type Fast = FastKey6;
    #[inline(always)]
    fn fast_key(&self) -> FastKey6 {
        FastKey6::of(self)
    }
    fn nat_reply_key(&self, rip: IpAddr, rport: u16) -> FastKey6 {
        FastKey6::of(&FlowKey6::new(
            v6_bits(rip),
            self.saddr,
            rport,
            self.sport,
            self.proto,
        ))
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
        &t.v6
    }
    #[inline(always)]
    fn table_mut(t: &mut Tables) -> &mut FlowTable<Self> {
        &mut t.v6
    }
    fn sync_key(&self) -> SyncKey {
        SyncKey::V6(*self)
    }
}

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
    v4: FlowTable,
    /// IPv6 flows: a table of their own, of one bucket until a snapshot has an IPv6
    /// service (its entries are twice IPv4's, see `FlowKey6`).
    v6: FlowTable<FlowKey6>,
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
    /// Connection sync's queues, when it is on.
    sync: Option<Arc<SyncChannel>>,
}

impl Pipeline {
    pub fn new(config: &PipelineConfig, counters: Arc<WorkerCounters>) -> Self {
        Pipeline {
            tables: Tables {
                v4: FlowTable::new(config.flow_capacity, config.hash_seed),
                v6: FlowTable::new(1, config.hash_seed),
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
            sync: None,
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

    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    pub fn flows(&self) -> &FlowTable {
        &self.tables.v4
    }

    pub fn flows6(&self) -> &FlowTable<FlowKey6> {
        &self.tables.v6
    }

    /// Readies the scheduler state for `snap`: rebuilt only when the generation changed.
    /// The first snapshot with an IPv6 service allocates the IPv6 flow table (once: a
    /// director that serves IPv4 only never pays for it).
    pub fn prepare(&mut self, snap: &Snapshot) {
        if self.sched_generation != Some(snap.generation) {
            if snap.has_ipv6() && self.tables.v6.buckets() == 1 {
                self.tables.v6 = FlowTable::new(self.flow_capacity, self.hash_seed);
            }
            self.sched = snap
                .services
                .iter()
                .map(|s| SchedState::new(s, snap))
                .collect();
            self.sched_generation = Some(snap.generation);
        }
    }

    /// Reclaims expired flows in the next `buckets` buckets of the table and takes them
    /// out of the connection counts.
    pub fn sweep(&mut self, now: u32, buckets: usize) {
        self.sweep_renewing(now, buckets, |_| None, |_| None)
    }

    /// As `sweep`; a flow the fast path carries is asked about first: `seen(key)` (for
    /// IPv6, `seen6`) is when its last packet went by there (seconds on this clock), and
    /// it lives on from then. The IPv6 table is swept at the same pace: its share of
    /// the same period.
    pub fn sweep_renewing(
        &mut self,
        now: u32,
        buckets: usize,
        seen: impl FnMut(&FlowKey) -> Option<u32>,
        seen6: impl FnMut(&FlowKey6) -> Option<u32>,
    ) {
        let (b4, b6) = (self.tables.v4.buckets(), self.tables.v6.buckets());
        let buckets6 = (buckets.saturating_mul(b6)).div_ceil(b4);
        let sync = self.sync.as_deref();
        sweep_table(
            &mut self.tables.v4,
            &self.counters,
            &self.timeouts,
            sync,
            now,
            buckets,
            seen,
        );
        sweep_table(
            &mut self.tables.v6,
            &self.counters,
            &self.timeouts,
            sync,
            now,
            buckets6,
            seen6,
        );
    }

    /// Prefetches the flow-table bucket `frame` will need: call for a whole batch before
    /// processing it. Frames that do not parse are left for `process` to count.
    #[inline]
    pub fn prefetch(&self, frame: &[u8]) -> Prefetched {
        Prefetched(match parse(frame) {
            Ok(AnyParsed::V4(p)) => {
                self.tables.v4.prefetch(&p.key);
                Ok(p)
            }
            Ok(AnyParsed::V6(p)) => {
                self.tables.v6.prefetch(&p.key);
                Err(Early::Ipv6)
            }
            Err(r) => Err(Early::Drop(r)),
        })
    }

    /// As [`Pipeline::process_packet`], for a frame `prefetch` parsed and nothing has
    /// changed since: it is not parsed again.
    #[inline]
    pub fn process_prefetched(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
        pre: Prefetched,
    ) -> Verdict {
        let decided = match pre.0 {
            Ok(p) => self.decide_parsed(snap, now, pkt, p),
            Err(Early::Drop(r)) => Err(r),
            Err(Early::Ipv6) => self.decide_ipv6(snap, now, pkt),
        };
        let decided = self.relay(snap, pkt, decided);
        self.verdict(decided)
    }

    /// As [`Pipeline::process_packet`], for a frame with no headroom (TUN cannot
    /// encapsulate it).
    #[inline]
    pub fn process(&mut self, snap: &Snapshot, now: u32, frame: &mut [u8]) -> Verdict {
        self.process_packet(snap, now, &mut Packet::whole(frame))
    }

    /// Decides one frame and rewrites it in place when it is forwarded (it may grow into
    /// its headroom, or become the ICMP reply to itself). `now` is in seconds on the
    /// worker's monotonic clock and must be at least 1. `prepare(snap)` must have been
    /// called for this snapshot.
    #[inline]
    pub fn process_packet(&mut self, snap: &Snapshot, now: u32, pkt: &mut Packet<'_>) -> Verdict {
        let decided = self.decide(snap, now, pkt);
        let decided = self.relay(snap, pkt, decided);
        self.verdict(decided)
    }

    /// A frame for no service may be a NAT reply the steering program translated and
    /// handed over to be sent (`Snapshot::nat_relay`): sent on as it is. Out of line, off
    /// every other frame's path.
    #[inline(always)]
    fn relay(
        &self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        decided: Result<Verdict, DropReason>,
    ) -> Result<Verdict, DropReason> {
        if decided != Err(DropReason::NoService) || !snap.nat_relay {
            return decided;
        }
        self.relay_reply(snap, pkt).ok_or(DropReason::NoService)
    }

    #[inline(never)]
    fn relay_reply(&self, snap: &Snapshot, pkt: &mut Packet<'_>) -> Option<Verdict> {
        if !relay::is_relayed_reply(snap, pkt.data()) {
            return None;
        }
        if snap.complete_partial && rewrite::partial::complete(pkt.data_mut()) {
            self.counters.checksums_completed.inc();
        }
        self.counters.nat_relayed.inc();
        Some(Verdict::Tx)
    }

    /// The decision as a verdict; a drop is counted under its reason.
    #[inline]
    fn verdict(&self, decided: Result<Verdict, DropReason>) -> Verdict {
        decided.unwrap_or_else(|reason| {
            self.counters.count_drop(reason);
            Verdict::Drop(reason)
        })
    }

    #[inline]
    fn decide(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
    ) -> Result<Verdict, DropReason> {
        let p = parse(pkt.data())?;
        self.decide_any(snap, now, pkt, p)
    }

    /// An IPv6 frame's decision after its prefetch: parsed again, out of line, so that
    /// IPv4's prefetched path stays as small as it was.
    #[inline(never)]
    fn decide_ipv6(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
    ) -> Result<Verdict, DropReason> {
        self.decide(snap, now, pkt)
    }

    #[inline(always)]
    fn decide_any(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
        p: AnyParsed,
    ) -> Result<Verdict, DropReason> {
        match p {
            AnyParsed::V4(p) => self.decide_parsed(snap, now, pkt, p),
            AnyParsed::V6(p) => self.decide_parsed(snap, now, pkt, p),
        }
    }

    fn decide_parsed<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
        p: Parsed<K>,
    ) -> Result<Verdict, DropReason> {
        let k = &p.key;
        let (sport, dport) = k.ports();
        let svc_idx = k.service(snap).ok_or(DropReason::NoService)?;
        if k.source_is_own(snap) {
            return Err(DropReason::MartianSource);
        }
        // After the lookup, as the steering program: port 0 matches an all-ports service.
        if sport == 0 || dport == 0 {
            return Err(DropReason::PortZero);
        }
        let svc = &snap.services[svc_idx];
        if snap.complete_partial && rewrite::partial::complete(pkt.data_mut()) {
            self.counters.checksums_completed.inc();
        }

        let (dest, flow) = if svc.ops && k.proto() == PROTO_UDP {
            // One-packet scheduling: no flow, every datagram on its own.
            let dest = self.schedule(snap, svc_idx, k, now)?;
            self.counters.dests[dest as usize].conns.inc();
            (dest, None)
        } else {
            let (dest, index) = self.track(snap, svc_idx, &p, now)?;
            (dest, Some(index))
        };

        let d = snap.dest(dest).ok_or(DropReason::NoDestination)?;
        let mac = d.mac.ok_or(DropReason::NoDestination)?;
        let bytes = pkt.len() as u64;
        let mut verdict = Verdict::Tx;
        // A real server of the packet's family (the configuration keeps them so).
        if d.addr.is_ipv6() != K::IS_V6 {
            return Err(DropReason::NoDestination);
        }
        let rip = match d.addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        };
        match (svc.forwarding, d.addr) {
            (Forwarding::Dr, _) => rewrite::dr::rewrite(pkt.data_mut(), mac, snap.local_mac),
            (Forwarding::Nat, IpAddr::V6(rip)) => {
                let rport = if d.port == 0 { dport } else { d.port };
                self.know_nat(flow, k, d.addr, rport);
                let src = snap.internal_mac.unwrap_or(snap.local_mac);
                rewrite::nat6::dnat(pkt.data_mut(), mac, src, rip, rport);
                if snap.internal_mac.is_some() {
                    verdict = Verdict::TxInternal;
                }
            }
            (Forwarding::Nat, IpAddr::V4(rip)) => {
                let rport = if d.port == 0 { dport } else { d.port };
                self.know_nat(flow, k, d.addr, rport);
                let src = snap.internal_mac.unwrap_or(snap.local_mac);
                rewrite::nat::dnat(pkt.data_mut(), mac, src, rip, rport);
                if snap.internal_mac.is_some() {
                    verdict = Verdict::TxInternal;
                }
            }
            (Forwarding::Tun, IpAddr::V6(rip)) => {
                // No IPv6 address on the interface: control refuses to start so.
                let src = snap.local_addr6.ok_or(DropReason::NoDestination)?;
                match rewrite::tun6::encapsulate(pkt, mac, snap.local_mac, src, rip, snap.mtu) {
                    Ok(()) => {}
                    Err(Tun6Error::TooBig { mtu }) => {
                        rewrite::tun6::packet_too_big(pkt, snap.local_mac, src, mtu);
                        self.counters.icmp_frag_needed.inc();
                        return Ok(Verdict::Tx);
                    }
                    Err(Tun6Error::NoHeadroom) => return Err(DropReason::NoHeadroom),
                }
            }
            (Forwarding::Tun, IpAddr::V4(rip)) => {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                let r = rewrite::tun::encapsulate(
                    pkt,
                    mac,
                    snap.local_mac,
                    snap.local_addr,
                    rip,
                    snap.mtu,
                    self.ip_ident,
                );
                match r {
                    Ok(()) => {}
                    Err(TunError::TooBig { dont_frag: true }) => {
                        let mtu = snap.mtu.saturating_sub(rewrite::tun::OVERHEAD as u16);
                        rewrite::frag_needed::reply(pkt, snap.local_mac, snap.local_addr, mtu);
                        self.counters.icmp_frag_needed.inc();
                        return Ok(Verdict::Tx);
                    }
                    Err(TunError::TooBig { dont_frag: false }) => return Err(DropReason::TooBig),
                    Err(TunError::NoHeadroom) => return Err(DropReason::NoHeadroom),
                }
            }
        }
        if let Some(index) = flow {
            if snap.fast_generation != 0 && svc.forwarding != Forwarding::Nat {
                // TUN's outer destination (TUN is IPv4's); unused by DR.
                let tun_daddr = rip.map_or([0; 4], |a| a.octets());
                self.offer(snap, svc, index, &p, dest, tun_daddr, mac);
            }
        }
        let c = &self.counters.dests[dest as usize];
        c.packets.inc();
        c.bytes.add(bytes);
        Ok(verdict)
    }

    /// Tells the steering program a NAT flow's replies (once per flow, `FLAG_NAT_KNOWN`):
    /// only those it translates. A one-packet datagram (no flow) is told every time.
    fn know_nat<K: FamilyKey>(&mut self, flow: Option<usize>, k: &K, rip: IpAddr, rport: u16) {
        if let Some(index) = flow {
            let f = K::table_mut(&mut self.tables).get_mut(index);
            if f.flags & FLAG_NAT_KNOWN != 0 {
                return;
            }
            f.flags |= FLAG_NAT_KNOWN;
        }
        self.nat_conns.push(k.nat_reply_key(rip, rport));
    }

    /// Hands a DR or TUN flow to the XDP fast path once it is established (any UDP
    /// flow; TCP in ESTABLISHED), and again whenever a packet of it reaches the worker
    /// all the same (the entry was missing, idle or stale). SYN, FIN and RST take it
    /// back: the worker must see how the connection ends, or that the port is reused.
    /// Persistent services stay on the worker (their templates live by its packets).
    #[allow(clippy::too_many_arguments)]
    fn offer<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc: &Service,
        index: usize,
        p: &Parsed<K>,
        dest: DestId,
        tun_daddr: [u8; 4],
        mac: [u8; 6],
    ) {
        // Persistent services, and IPv6 tunnels (the steering program encapsulates in
        // IPv4 only), stay on the worker.
        if svc.persistence.is_some() || (K::IS_V6 && svc.forwarding == Forwarding::Tun) {
            return;
        }
        let key = p.key.fast_key();
        let flow = K::table_mut(&mut self.tables).get_mut(index);
        let ttl = if p.key.proto() == PROTO_TCP {
            if p.tcp_flags & (FLAG_SYN | FLAG_FIN | FLAG_RST) != 0 {
                if flow.flags & FLAG_OFFLOADED != 0 {
                    flow.flags &= !FLAG_OFFLOADED;
                    self.fast.remove(key);
                }
                return;
            }
            if flow.tcp_state() != TcpState::Established {
                return;
            }
            self.timeouts.tcp(TcpState::Established)
        } else {
            // A UDP flow is handed over from its `UDP_OFFLOAD_AT`th packet, once it has
            // shown it carries traffic: a spoofed flood (a packet per source) never
            // reaches the shared map, so it never evicts established flows from it.
            if flow.udp_seen() + 1 < UDP_OFFLOAD_AT {
                flow.count_udp();
                return;
            }
            self.timeouts.udp
        };
        flow.flags |= FLAG_OFFLOADED;
        let tun = svc.forwarding == Forwarding::Tun;
        self.fast.upsert(
            key,
            FastValue {
                dst_mac: mac,
                tun: u8::from(tun),
                tun_saddr: snap.local_addr.octets(),
                tun_daddr,
                mtu: snap.mtu,
                stats_slot: dest,
                generation: snap.fast_generation,
                timeout: ttl,
                ..FastValue::default()
            },
        );
    }

    /// Finds or creates the packet's flow, updates its state, returns its real server
    /// and the flow's slot.
    fn track<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        p: &Parsed<K>,
        now: u32,
    ) -> Result<(DestId, usize), DropReason> {
        let k = &p.key;
        let tcp = k.proto() == PROTO_TCP;
        let mut found = K::table(&self.tables).lookup(k, now);
        // As IPVS without sloppy_tcp: only a SYN opens a TCP connection the director has
        // not seen (a known one whose server left is rescheduled whatever the packet).
        if found.is_err()
            && tcp
            && !snap.services[svc_idx].sloppy_tcp
            && p.tcp_flags & (FLAG_SYN | FLAG_ACK | FLAG_RST | FLAG_FIN) != FLAG_SYN
        {
            return Err(DropReason::NoFlow);
        }
        if let Ok(index) = found {
            let flow = *K::table(&self.tables).get(index);
            let new_conn = tcp
                && p.tcp_flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN
                && flow.tcp_state().reusable(Direction::InputOnly);
            let gone = snap.dest(flow.dest).is_none();
            if gone {
                match self.nodest {
                    NodestPolicy::Drop => return Err(DropReason::DestUnavailable),
                    NodestPolicy::Expire => {
                        self.take_back(&flow);
                        uncount(&self.counters, &flow);
                        K::table_mut(&mut self.tables).remove(index);
                        return Err(DropReason::DestUnavailable);
                    }
                    NodestPolicy::Reschedule => self.counters.flows_rescheduled.inc(),
                }
            }
            if gone || new_conn {
                // A new connection on this tuple (reused, or its server left): free the
                // entry first, then treat the packet as a miss.
                self.take_back(&flow);
                uncount(&self.counters, &flow);
                K::table_mut(&mut self.tables).remove(index);
                found = Err(Slot {
                    index,
                    evicts: false,
                });
            }
        }
        let created = found.is_err();
        let index = match found {
            Ok(index) => index,
            Err(_) => {
                let dest = self.schedule(snap, svc_idx, k, now)?;
                // Scheduling may have put a persistence template in this very bucket, so
                // a persistent service looks again; otherwise the miss's slot stands.
                let slot = match (found, snap.services[svc_idx].persistence) {
                    (Err(slot), None) => slot,
                    _ => match K::table(&self.tables).lookup(k, now) {
                        Err(slot) => slot,
                        Ok(index) => Slot {
                            index,
                            evicts: false,
                        },
                    },
                };
                self.reclaim::<K>(slot);
                self.start(slot.index, k, dest, now);
                slot.index
            }
        };

        let flow = K::table_mut(&mut self.tables).get_mut(index);
        let old = flow.tcp_state();
        let ttl = if tcp {
            let s = old.next(Direction::InputOnly, p.tcp_flags);
            if s != old {
                // Told again at each change: a flood that pushed its reply key out of the
                // steering program's LRU map cannot keep it out.
                flow.flags &= !FLAG_NAT_KNOWN;
            }
            flow.state = s as u8;
            if s.is_active() != old.is_active() {
                let c = &self.counters.dests[flow.dest as usize];
                let (from, to) = if s.is_active() {
                    (&c.inactive, &c.active)
                } else {
                    (&c.active, &c.inactive)
                };
                from.dec();
                to.inc();
            }
            self.timeouts.tcp(s)
        } else {
            self.timeouts.udp
        };
        if flow.expires.saturating_sub(now) < ttl / 2 {
            // Idle past half its timeout: its reply key may have aged out; told again.
            flow.flags &= !FLAG_NAT_KNOWN;
        }
        flow.expires = now.saturating_add(ttl.max(1));
        let dest = flow.dest;
        if self.sync.is_some() {
            // Out of line: without sync the packet pays one test.
            self.sync_flow::<K>(index, old, created, ttl, now);
        }

        // Keep the client's persistence template alive while its connections are: at most
        // one template lookup per connection every half timeout.
        if let Some(pers) = snap.services[svc_idx].persistence {
            let flow = K::table_mut(&mut self.tables).get_mut(index);
            if now.saturating_sub(flow.template_seen) >= (pers.timeout / 2).max(1) {
                flow.template_seen = now;
                let tk = k.template(&pers, &snap.services[svc_idx]);
                self.refresh_template(&pers, tk, dest, now);
            }
        }
        Ok((dest, index))
    }

    /// Connection sync's look at a flow a packet just updated: sent when established
    /// (UDP: new), on a later state change, or half its timeout after the peers last
    /// heard of it.
    #[inline(never)]
    fn sync_flow<K: FamilyKey>(
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
        let s = flow.tcp_state();
        let refresh = (now as u16).wrapping_sub(flow.synced) >= refresh_after(ttl);
        let due = if flow.key.proto() == PROTO_TCP {
            tcp_state_synced(s) && (s != old || refresh)
        } else {
            created || refresh
        };
        if due {
            flow.synced = now as u16;
            send_record(ch, &self.counters, flow, ttl.max(1));
        }
    }

    /// Takes a flow's entry back from the fast path, if it has one.
    #[inline]
    fn take_back<K: FamilyKey>(&mut self, flow: &Flow<K>) {
        if flow.flags & FLAG_OFFLOADED != 0 {
            self.fast.remove(flow.key.fast_key());
        }
    }

    /// Accounts for whatever connection occupies `slot` before it is overwritten: an
    /// eviction if it was live, an expiry otherwise.
    fn reclaim<K: FamilyKey>(&mut self, slot: Slot) {
        let old = *K::table(&self.tables).get(slot.index);
        if old.occupied() {
            self.take_back(&old);
        }
        let old = &old;
        if old.occupied() && !old.is_template() {
            if slot.evicts {
                self.counters.flows_evicted.inc();
            } else {
                self.counters.flows_expired.inc();
            }
            uncount(&self.counters, old);
        }
    }

    /// Starts a new connection to `dest` in slot `index`, counted inactive until
    /// established.
    fn start<K: FamilyKey>(&mut self, index: usize, k: &K, dest: DestId, now: u32) {
        let c = &self.counters.dests[dest as usize];
        c.conns.inc();
        c.inactive.inc();
        self.counters.flows_created.inc();
        K::table_mut(&mut self.tables).insert(
            Slot {
                index,
                evicts: false,
            },
            Flow {
                key: *k,
                dest,
                expires: now + 1,
                template_seen: now,
                ..Flow::default()
            },
        );
    }

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
                    send_record(ch, &self.counters, t, pers.timeout.max(1));
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
                send_record(ch, &self.counters, t, pers.timeout.max(1));
            }
        }
    }

    /// The real server for a new connection: the client's persistence template if it has
    /// a live one to a server still present, else the scheduler's pick.
    fn schedule<K: FamilyKey>(
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
}

/// One table's sweep slice: an expired flow the fast path carries lives on from when
/// `seen` says its last packet went by there; the others leave their gauges.
///
/// With connection sync on, a renewed flow is sent again: its packets go by in XDP, so
/// this is the one place its worker learns that it lives on.
fn sweep_table<K: FamilyKey>(
    table: &mut FlowTable<K>,
    counters: &WorkerCounters,
    timeouts: &Timeouts,
    sync: Option<&SyncChannel>,
    now: u32,
    buckets: usize,
    mut seen: impl FnMut(&K) -> Option<u32>,
) {
    table.sweep_renewing(
        now,
        buckets,
        |f| {
            if f.flags & FLAG_OFFLOADED == 0 {
                return None;
            }
            let ttl = if f.key.proto() == PROTO_TCP {
                timeouts.tcp(f.tcp_state())
            } else {
                timeouts.udp
            };
            let until = seen(&f.key).map(|t| t.saturating_add(ttl));
            if let (Some(ch), Some(u)) = (sync, until.filter(|u| *u > now)) {
                send_record(ch, counters, f, u - now);
            }
            until
        },
        |f| {
            if !f.is_template() {
                counters.flows_expired.inc();
                uncount(counters, f);
            }
        },
    );
}

/// Hands an entry with `ttl` seconds left to the sync thread; a full queue loses it
/// (counted): its next change or refresh is sent again.
#[cold]
fn send_record<K: FamilyKey>(ch: &SyncChannel, counters: &WorkerCounters, f: &Flow<K>, ttl: u32) {
    let rec = SyncRecord {
        key: f.key.sync_key(),
        dest: f.dest,
        state: f.state,
        template: f.is_template(),
        timeout: ttl,
    };
    match ch.changes.push(rec) {
        Ok(()) => counters.sync_queued.inc(),
        Err(_) => counters.sync_queue_full.inc(),
    }
}

/// Takes a connection out of its real server's active/inactive gauge.
fn uncount<K>(counters: &WorkerCounters, f: &Flow<K>) {
    let c = &counters.dests[f.dest as usize];
    if f.tcp_state().is_active() {
        c.active.dec();
    } else {
        c.inactive.dec();
    }
}
