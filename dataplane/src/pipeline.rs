//! The per-frame decision, without I/O and without a clock: parse → service → flow →
//! schedule → rewrite. A worker calls `prepare` once per batch with the snapshot it loaded,
//! then `process` per frame. Nothing here allocates, locks or makes a syscall.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::counters::WorkerCounters;
use crate::flow::{Flow, FlowKey, FlowTable, TcpState, Timeouts};
use crate::rewrite;
use crate::sched::SchedState;
use crate::snapshot::{DestId, Forwarding, Snapshot};
use crate::verdict::{DropReason, Verdict};
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4};
use crate::wire::ipv4::{Ipv4Packet, PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::{TcpPacket, FLAG_ACK, FLAG_SYN};
use crate::wire::udp::UdpPacket;
use crate::wire::WireError;

/// Sizing and policy of one worker's pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Flows the worker's table holds (rounded up); allocated once at start.
    pub flow_capacity: usize,
    /// Keys the flow hash (random per process in production).
    pub hash_seed: u64,
    pub timeouts: Timeouts,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flow_capacity: 1 << 20,
            hash_seed: 0x5eed,
            timeouts: Timeouts::default(),
        }
    }
}

/// The fields of a frame the decision needs, read before anything is rewritten.
struct Parsed {
    key: FlowKey,
    tcp_flags: u8,
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::Malformed => DropReason::Malformed,
        }
    }
}

fn parse(frame: &[u8]) -> Result<Parsed, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let (sport, dport, tcp_flags) = match ip.protocol() {
        PROTO_TCP => {
            let tcp = TcpPacket::new_checked(ip.payload())?;
            (tcp.src_port(), tcp.dst_port(), tcp.flags())
        }
        PROTO_UDP => {
            let udp = UdpPacket::new_checked(ip.payload())?;
            (udp.src_port(), udp.dst_port(), 0)
        }
        _ => return Err(DropReason::NoService),
    };
    Ok(Parsed {
        key: FlowKey::new(ip.src_raw(), ip.dst_raw(), sport, dport, ip.protocol()),
        tcp_flags,
    })
}

pub struct Pipeline {
    flows: FlowTable,
    sched: Vec<SchedState>,
    /// The snapshot generation `sched` was built for.
    sched_generation: Option<u64>,
    timeouts: Timeouts,
    counters: Arc<WorkerCounters>,
}

impl Pipeline {
    pub fn new(config: &PipelineConfig, counters: Arc<WorkerCounters>) -> Self {
        Pipeline {
            flows: FlowTable::new(config.flow_capacity, config.hash_seed),
            sched: Vec::new(),
            sched_generation: None,
            timeouts: config.timeouts,
            counters,
        }
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

    /// Decides one frame and rewrites it in place when it is forwarded. `now` is in seconds
    /// on the worker's monotonic clock and must be at least 1. `prepare(snap)` must have
    /// been called for this snapshot.
    #[inline]
    pub fn process(&mut self, snap: &Snapshot, now: u32, frame: &mut [u8]) -> Verdict {
        match self.decide(snap, now, frame) {
            Ok(()) => Verdict::Tx,
            Err(reason) => {
                self.counters.count_drop(reason);
                Verdict::Drop(reason)
            }
        }
    }

    fn decide(&mut self, snap: &Snapshot, now: u32, frame: &mut [u8]) -> Result<(), DropReason> {
        let p = parse(frame)?;
        let k = &p.key;
        let svc_idx = snap
            .lookup(Ipv4Addr::from(k.daddr), k.dport, k.proto)
            .ok_or(DropReason::NoService)?;

        let (index, dest) = match self.flows.lookup(k, now) {
            Ok(index) => {
                let flow = *self.flows.get(index);
                let new_conn =
                    p.tcp_flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN && flow.tcp_state().reusable();
                if snap.dest(flow.dest).is_some() && !new_conn {
                    (index, flow.dest)
                } else {
                    // The real server left the config, or the client reuses the tuple of a
                    // finished connection: schedule it as new, in the same slot.
                    self.counters.flows_rescheduled.inc();
                    let dest = self.schedule(snap, svc_idx)?;
                    *self.flows.get_mut(index) = Flow {
                        dest,
                        state: 0,
                        ..flow
                    };
                    (index, dest)
                }
            }
            Err(slot) => {
                let dest = self.schedule(snap, svc_idx)?;
                if slot.evicts {
                    self.counters.flows_evicted.inc();
                }
                self.counters.flows_created.inc();
                self.flows.insert(
                    slot,
                    Flow {
                        key: *k,
                        dest,
                        ..Flow::default()
                    },
                );
                (slot.index, dest)
            }
        };

        // Flows are scheduled on any packet, not only SYN: after a failover the other
        // director has no flow state, and a consistent scheduler still finds the server.
        let flow = self.flows.get_mut(index);
        let ttl = if k.proto == PROTO_TCP {
            let s = flow.tcp_state().next(p.tcp_flags);
            flow.state = s as u8;
            self.timeouts.tcp(s)
        } else {
            flow.state = TcpState::None as u8;
            self.timeouts.udp
        };
        flow.expires = now.saturating_add(ttl.max(1));

        let d = snap.dest(dest).ok_or(DropReason::NoDestination)?;
        let mac = d.mac.ok_or(DropReason::NoDestination)?;
        match snap.services[svc_idx].forwarding {
            Forwarding::Dr => rewrite::dr::rewrite(frame, mac, snap.local_mac),
        }
        let c = &self.counters.dests[dest as usize];
        c.packets.inc();
        c.bytes.add(frame.len() as u64);
        Ok(())
    }

    fn schedule(&mut self, snap: &Snapshot, svc_idx: usize) -> Result<DestId, DropReason> {
        let svc = &snap.services[svc_idx];
        let dest = self.sched[svc_idx]
            .pick(svc, snap)
            .ok_or(DropReason::NoDestination)?;
        self.counters.dests[dest as usize].conns.inc();
        Ok(dest)
    }
}
