//! The per-frame decision, without I/O and without a clock: parse → service → flow →
//! schedule → rewrite. A worker calls `prepare` once per batch with the snapshot it loaded,
//! then `process` per frame, and `sweep` now and then. Nothing here allocates, locks or
//! makes a syscall.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::counters::WorkerCounters;
use crate::fast::{FastKey, FastOps, FastValue};
use crate::flow::table::{Slot, FLAG_OFFLOADED, FLAG_TEMPLATE};
use crate::flow::{Direction, Flow, FlowKey, FlowTable, TcpState, Timeouts};
use crate::hash::mix64;
use crate::packet::Packet;
use crate::rewrite;
use crate::rewrite::tun::TunError;
use crate::sched::{PickCtx, SchedState};
use crate::screen;
use crate::snapshot::{Dest, DestId, Forwarding, Persistence, Service, Snapshot};
use crate::verdict::{DropReason, Verdict};
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use crate::wire::WireError;

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
struct Parsed {
    key: FlowKey,
    tcp_flags: u8,
}

/// A frame parsed ahead of its batch (`Pipeline::prefetch`): its flow's bucket is on its
/// way into the cache, and `Pipeline::process_prefetched` does not parse it again.
#[derive(Clone, Copy, Debug)]
pub struct Prefetched(Result<Parsed, DropReason>);

impl Default for Prefetched {
    fn default() -> Self {
        Prefetched(Err(DropReason::Truncated))
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
fn parse(frame: &[u8]) -> Result<Parsed, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = screen::ipv4(eth.payload())?;
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let (sport, dport, tcp_flags) = match ip.protocol() {
        PROTO_TCP => screen::tcp(ip.payload())?,
        PROTO_UDP => {
            let (s, d) = screen::udp(ip.payload())?;
            (s, d, 0)
        }
        _ => return Err(DropReason::NoService),
    };
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

/// The flow-table key of a persistence template: the client network and the service.
pub fn template_key(p: &Persistence, svc: &Service, saddr: u32) -> FlowKey {
    FlowKey::new(
        saddr & p.netmask,
        u32::from(svc.key.addr),
        0,
        svc.key.port,
        0x80 | svc.key.proto,
    )
}

pub struct Pipeline {
    flows: FlowTable,
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
}

impl Pipeline {
    pub fn new(config: &PipelineConfig, counters: Arc<WorkerCounters>) -> Self {
        Pipeline {
            flows: FlowTable::new(config.flow_capacity, config.hash_seed),
            sched: Vec::new(),
            sched_generation: None,
            timeouts: config.timeouts,
            nodest: config.nodest,
            counters,
            rand: config.hash_seed | 1,
            ip_ident: config.hash_seed as u16,
            fast: FastOps::default(),
        }
    }

    /// What the batch queued for the XDP fast path; the worker applies and clears it.
    pub fn fast_ops(&mut self) -> &mut FastOps {
        &mut self.fast
    }

    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// Readies the scheduler state for `snap`: rebuilt only when the generation changed.
    pub fn prepare(&mut self, snap: &Snapshot) {
        if self.sched_generation != Some(snap.generation) {
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
        self.sweep_renewing(now, buckets, |_| None)
    }

    /// As `sweep`; a flow the fast path carries is asked about first: `seen(key)` is when
    /// its last packet went by there (seconds on this clock), and it lives on from then.
    pub fn sweep_renewing(
        &mut self,
        now: u32,
        buckets: usize,
        mut seen: impl FnMut(&FlowKey) -> Option<u32>,
    ) {
        let counters = &self.counters;
        let timeouts = &self.timeouts;
        self.flows.sweep_renewing(
            now,
            buckets,
            |f| {
                if f.flags & FLAG_OFFLOADED == 0 {
                    return None;
                }
                let ttl = if f.key.proto == PROTO_TCP {
                    timeouts.tcp(f.tcp_state())
                } else {
                    timeouts.udp
                };
                seen(&f.key).map(|t| t.saturating_add(ttl))
            },
            |f| {
                if !f.is_template() {
                    counters.flows_expired.inc();
                    uncount(counters, f);
                }
            },
        );
    }

    /// Prefetches the flow-table bucket `frame` will need: call for a whole batch before
    /// processing it. Frames that do not parse are left for `process` to count.
    #[inline]
    pub fn prefetch(&self, frame: &[u8]) -> Prefetched {
        let p = parse(frame);
        if let Ok(p) = &p {
            self.flows.prefetch(&p.key);
        }
        Prefetched(p)
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
        let decided = pre.0.and_then(|p| self.decide_parsed(snap, now, pkt, p));
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
        self.verdict(decided)
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
        self.decide_parsed(snap, now, pkt, p)
    }

    fn decide_parsed(
        &mut self,
        snap: &Snapshot,
        now: u32,
        pkt: &mut Packet<'_>,
        p: Parsed,
    ) -> Result<Verdict, DropReason> {
        let k = &p.key;
        let svc_idx = snap
            .lookup(Ipv4Addr::from(k.daddr), k.dport, k.proto)
            .ok_or(DropReason::NoService)?;
        if snap.is_own(k.saddr) {
            return Err(DropReason::MartianSource);
        }
        // After the lookup, as the steering program: port 0 matches an all-ports service.
        if k.sport == 0 || k.dport == 0 {
            return Err(DropReason::PortZero);
        }
        let svc = &snap.services[svc_idx];

        let (dest, flow) = if svc.ops && k.proto == PROTO_UDP {
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
        match svc.forwarding {
            Forwarding::Dr => rewrite::dr::rewrite(pkt.data_mut(), mac, snap.local_mac),
            Forwarding::Nat => {
                let rport = if d.port == 0 { p.key.dport } else { d.port };
                let src = snap.internal_mac.unwrap_or(snap.local_mac);
                rewrite::nat::dnat(pkt.data_mut(), mac, src, d.addr, rport);
                if snap.internal_mac.is_some() {
                    verdict = Verdict::TxInternal;
                }
            }
            Forwarding::Tun => {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                let r = rewrite::tun::encapsulate(
                    pkt,
                    mac,
                    snap.local_mac,
                    snap.local_addr,
                    d.addr,
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
                self.offer(snap, svc, index, &p, dest, d, mac);
            }
        }
        let c = &self.counters.dests[dest as usize];
        c.packets.inc();
        c.bytes.add(bytes);
        Ok(verdict)
    }

    /// Hands a DR or TUN flow to the XDP fast path once it is established (any UDP
    /// flow; TCP in ESTABLISHED), and again whenever a packet of it reaches the worker
    /// all the same (the entry was missing, idle or stale). SYN, FIN and RST take it
    /// back: the worker must see how the connection ends, or that the port is reused.
    /// Persistent services stay on the worker (their templates live by its packets).
    #[allow(clippy::too_many_arguments)]
    fn offer(
        &mut self,
        snap: &Snapshot,
        svc: &Service,
        index: usize,
        p: &Parsed,
        dest: DestId,
        d: &Dest,
        mac: [u8; 6],
    ) {
        if svc.persistence.is_some() {
            return;
        }
        let flow = self.flows.get_mut(index);
        let key = FastKey::of(&p.key);
        let ttl = if p.key.proto == PROTO_TCP {
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
                tun_daddr: d.addr.octets(),
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
    fn track(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        p: &Parsed,
        now: u32,
    ) -> Result<(DestId, usize), DropReason> {
        let k = &p.key;
        let mut found = self.flows.lookup(k, now);
        // As IPVS without sloppy_tcp: only a SYN opens a TCP connection the director has
        // not seen (a known one whose server left is rescheduled whatever the packet).
        if found.is_err()
            && k.proto == PROTO_TCP
            && !snap.services[svc_idx].sloppy_tcp
            && p.tcp_flags & (FLAG_SYN | FLAG_ACK | FLAG_RST | FLAG_FIN) != FLAG_SYN
        {
            return Err(DropReason::NoFlow);
        }
        if let Ok(index) = found {
            let flow = *self.flows.get(index);
            let new_conn = k.proto == PROTO_TCP
                && p.tcp_flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN
                && flow.tcp_state().reusable(Direction::InputOnly);
            let gone = snap.dest(flow.dest).is_none();
            if gone {
                match self.nodest {
                    NodestPolicy::Drop => return Err(DropReason::DestUnavailable),
                    NodestPolicy::Expire => {
                        if flow.flags & FLAG_OFFLOADED != 0 {
                            self.fast.remove(FastKey::of(k));
                        }
                        uncount(&self.counters, &flow);
                        self.flows.remove(index);
                        return Err(DropReason::DestUnavailable);
                    }
                    NodestPolicy::Reschedule => self.counters.flows_rescheduled.inc(),
                }
            }
            if gone || new_conn {
                // A new connection on this tuple (reused, or its server left): free the
                // entry first, then treat the packet as a miss.
                if flow.flags & FLAG_OFFLOADED != 0 {
                    self.fast.remove(FastKey::of(k));
                }
                uncount(&self.counters, &flow);
                self.flows.remove(index);
                found = Err(Slot {
                    index,
                    evicts: false,
                });
            }
        }
        let index = match found {
            Ok(index) => index,
            Err(_) => {
                let dest = self.schedule(snap, svc_idx, k, now)?;
                // Scheduling may have put a persistence template in this very bucket, so
                // a persistent service looks again; otherwise the miss's slot stands.
                let slot = match (found, snap.services[svc_idx].persistence) {
                    (Err(slot), None) => slot,
                    _ => match self.flows.lookup(k, now) {
                        Err(slot) => slot,
                        Ok(index) => Slot {
                            index,
                            evicts: false,
                        },
                    },
                };
                self.reclaim(slot);
                self.start(slot.index, k, dest, now);
                slot.index
            }
        };

        let flow = self.flows.get_mut(index);
        let old = flow.tcp_state();
        let ttl = if k.proto == PROTO_TCP {
            let s = old.next(Direction::InputOnly, p.tcp_flags);
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
        flow.expires = now.saturating_add(ttl.max(1));
        let dest = flow.dest;

        // Keep the client's persistence template alive while its connections are: at most
        // one template lookup per connection every half timeout.
        if let Some(pers) = snap.services[svc_idx].persistence {
            if now.saturating_sub(flow.template_seen) >= (pers.timeout / 2).max(1) {
                flow.template_seen = now;
                self.refresh_template(&pers, &snap.services[svc_idx], k.saddr, dest, now);
            }
        }
        Ok((dest, index))
    }

    /// Accounts for whatever connection occupies `slot` before it is overwritten: an
    /// eviction if it was live, an expiry otherwise.
    fn reclaim(&mut self, slot: Slot) {
        let old = *self.flows.get(slot.index);
        if old.occupied() && old.flags & FLAG_OFFLOADED != 0 {
            self.fast.remove(FastKey::of(&old.key));
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
    fn start(&mut self, index: usize, k: &FlowKey, dest: DestId, now: u32) {
        let c = &self.counters.dests[dest as usize];
        c.conns.inc();
        c.inactive.inc();
        self.counters.flows_created.inc();
        self.flows.insert(
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

    fn refresh_template(
        &mut self,
        pers: &Persistence,
        svc: &Service,
        saddr: u32,
        dest: DestId,
        now: u32,
    ) {
        let tk = template_key(pers, svc, saddr);
        let expires = now.saturating_add(pers.timeout.max(1));
        match self.flows.lookup(&tk, now) {
            Ok(i) => self.flows.get_mut(i).expires = expires,
            Err(slot) => {
                self.reclaim(slot);
                self.flows.insert(
                    slot,
                    Flow {
                        key: tk,
                        dest,
                        expires,
                        flags: FLAG_TEMPLATE,
                        ..Flow::default()
                    },
                );
            }
        }
    }

    /// The real server for a new connection: the client's persistence template if it has
    /// a live one to a server still present, else the scheduler's pick.
    fn schedule(
        &mut self,
        snap: &Snapshot,
        svc_idx: usize,
        k: &FlowKey,
        now: u32,
    ) -> Result<DestId, DropReason> {
        let svc = &snap.services[svc_idx];
        if let Some(pers) = svc.persistence {
            let tk = template_key(&pers, svc, k.saddr);
            if let Ok(i) = self.flows.lookup(&tk, now) {
                let d = self.flows.get(i).dest;
                // As IPVS (expire_quiescent_template=0): a quiescent server keeps its
                // persistent clients; one that left does not.
                if crate::sched::reachable(snap, d) {
                    self.flows.get_mut(i).expires = now.saturating_add(pers.timeout.max(1));
                    return Ok(d);
                }
            }
        }
        self.rand = mix64(self.rand);
        let ctx = PickCtx {
            key: k,
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
            self.refresh_template(&pers, svc, k.saddr, dest, now);
        }
        Ok(dest)
    }
}

/// Takes a connection out of its real server's active/inactive gauge.
fn uncount(counters: &WorkerCounters, f: &Flow) {
    let c = &counters.dests[f.dest as usize];
    if f.tcp_state().is_active() {
        c.active.dec();
    } else {
        c.inactive.dec();
    }
}
