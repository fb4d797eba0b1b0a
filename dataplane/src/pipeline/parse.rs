//! Reading a frame: its flow key and TCP flags, after every check that needs only the
//! frame (`screen`), and the prefetch that parses a batch ahead of its decisions.

use crate::flow::{FlowKey, FlowKey6};
use crate::screen;
use crate::verdict::DropReason;
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::WireError;

/// The fields of a frame the decision needs, read before anything is rewritten.
#[derive(Clone, Copy, Debug)]
pub(super) struct Parsed<K> {
    pub key: K,
    pub tcp_flags: u8,
}

/// A frame's parse, of either family.
#[derive(Clone, Copy, Debug)]
pub(super) enum AnyParsed {
    V4(Parsed<FlowKey>),
    V6(Parsed<FlowKey6>),
}

/// A frame parsed ahead of its batch (`Pipeline::prefetch`): its flow's bucket is on its
/// way into the cache, and `Pipeline::process_packet` does not parse an IPv4 frame
/// again. An IPv6 frame's parse is not kept: its key is over twice IPv4's, and a
/// worker's batch holds one of these per frame (moved around per frame), so keeping it
/// would make IPv4's batches slower (measured: +27 % per prefetched batch). Its bucket
/// is prefetched all the same, and it is parsed again at decision time.
#[derive(Clone, Copy, Debug)]
pub struct Prefetched(pub(super) Result<Parsed<FlowKey>, Early>);

/// What a prefetched frame that is no parsed IPv4 one is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Early {
    Drop(DropReason),
    /// Parsed at decision time (IPv6, or a frame nobody prefetched).
    Unparsed,
}

impl Prefetched {
    /// For a frame that was not prefetched: `process_packet` parses it.
    pub const NONE: Prefetched = Prefetched(Err(Early::Unparsed));
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
/// (`screen`); the director's own addresses are checked against the snapshot later.
#[inline(always)]
pub(super) fn parse(frame: &[u8]) -> Result<AnyParsed, DropReason> {
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
