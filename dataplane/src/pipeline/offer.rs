//! What a worker tells the steering program it may carry on its own: a DR, TUN or NAT
//! flow's requests (the XDP fast path), and a NAT connection's replies (translated in
//! XDP).

use std::net::IpAddr;

use super::{FamilyKey, Parsed, Pipeline};
use crate::flow::table::{FLAG_NAT_KNOWN, FLAG_OFFLOADED};
use crate::flow::TcpState;
use crate::offload::FastValue;
use crate::rewrite::forward::Target;
use crate::snapshot::{DestId, Forwarding, Service, Snapshot};
use crate::wire::ipv4::PROTO_TCP;
use crate::wire::tcp::{FLAG_FIN, FLAG_RST, FLAG_SYN};

/// The packet of a UDP flow from which the fast path carries it (`offer`): the second,
/// so a spoofed flood (a packet per source) never enters the shared map.
pub const UDP_OFFLOAD_AT: u8 = 2;

impl Pipeline {
    /// Tells the steering program a NAT flow's replies (once per flow, `FLAG_NAT_KNOWN`):
    /// only those it translates. A one-packet datagram (no flow) is told every time.
    pub(super) fn know_nat<K: FamilyKey>(
        &mut self,
        flow: Option<usize>,
        k: &K,
        rip: IpAddr,
        rport: u16,
    ) {
        if let Some(index) = flow {
            let f = K::table_mut(&mut self.tables).get_mut(index);
            if f.flags & FLAG_NAT_KNOWN != 0 {
                return;
            }
            f.flags |= FLAG_NAT_KNOWN;
        }
        self.nat_conns.push(k.nat_reply_key(rip, rport));
    }

    /// Hands a DR, TUN or NAT flow to the XDP fast path once it is established (UDP
    /// from its second packet; TCP in ESTABLISHED), and again whenever a packet of it
    /// reaches the worker all the same (the entry was missing, idle or stale). SYN, FIN
    /// and RST take it back: the worker must see how the connection ends, or that the
    /// port is reused. Persistent services (templates live by the worker's packets), and
    /// IPv6 tunnels and NAT66 (the steering program rewrites those in IPv4 only), stay
    /// on the worker.
    pub(super) fn offer<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        svc: &Service,
        index: usize,
        p: &Parsed<K>,
        dest: DestId,
        to: &Target,
    ) {
        let (tun, nat) = (
            svc.forwarding == Forwarding::Tun,
            svc.forwarding == Forwarding::Nat,
        );
        if snap.fast_generation == 0
            || !matches!(
                svc.forwarding,
                Forwarding::Dr | Forwarding::Tun | Forwarding::Nat
            )
            || svc.persistence.is_some()
            || (K::IS_V6 && (tun || nat))
            || (nat && !snap.fast_nat)
        {
            return;
        }
        let Some(ttl) = self.offer_ttl(index, p) else {
            return;
        };
        // TUN's outer destination, NAT's real server (both IPv4 here); unused by DR.
        let daddr = match to.addr {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        self.fast.upsert(
            p.key.fast_key(),
            FastValue {
                dst_mac: to.mac,
                tun: u8::from(tun),
                nat: u8::from(nat),
                tun_saddr: snap.local_addr.octets(),
                daddr,
                nat_port: to.port.to_be_bytes(),
                mtu: snap.mtu,
                stats_slot: dest,
                generation: snap.fast_generation,
                timeout: ttl,
                ..FastValue::default()
            },
        );
    }

    /// The fast-path timeout of a flow this packet makes ready for it (marked offloaded),
    /// or `None`: not yet, or no longer (taken back).
    #[inline]
    fn offer_ttl<K: FamilyKey>(&mut self, index: usize, p: &Parsed<K>) -> Option<u32> {
        let flow = K::table_mut(&mut self.tables).get_mut(index);
        let ttl = if p.key.proto() == PROTO_TCP {
            if p.tcp_flags & (FLAG_SYN | FLAG_FIN | FLAG_RST) != 0 {
                if flow.flags & FLAG_OFFLOADED != 0 {
                    flow.flags &= !FLAG_OFFLOADED;
                    self.fast.remove(p.key.fast_key());
                }
                return None;
            }
            if flow.tcp_state() != TcpState::Established {
                return None;
            }
            self.timeouts.tcp(TcpState::Established)
        } else {
            // A UDP flow is handed over from its `UDP_OFFLOAD_AT`th packet, once it has
            // shown it carries traffic: a spoofed flood (a packet per source) never
            // reaches the shared map, so it never evicts established flows from it.
            if flow.udp_seen() + 1 < UDP_OFFLOAD_AT {
                flow.count_udp();
                return None;
            }
            self.timeouts.udp
        };
        flow.flags |= FLAG_OFFLOADED;
        Some(ttl)
    }
}
