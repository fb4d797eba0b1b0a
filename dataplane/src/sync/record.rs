//! One synced entry as the workers see it: a flow-table key, the real server's
//! control-plane id, the TCP state and the seconds it has left. The sync thread turns
//! the id into the real server's address for the wire, and back on the other side.

use crate::flow::{FlowKey, FlowKey6};
use crate::snapshot::DestId;

/// A flow-table key of either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKey {
    V4(FlowKey),
    V6(FlowKey6),
}

impl SyncKey {
    /// The key's protocol byte (a template's has 0x80 set, see `template_key`).
    pub fn proto(&self) -> u8 {
        match self {
            SyncKey::V4(k) => k.proto,
            SyncKey::V6(k) => k.proto,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    pub key: SyncKey,
    pub dest: DestId,
    /// `TcpState` as u8 (0 for UDP and templates).
    pub state: u8,
    /// A persistence template, not a connection.
    pub template: bool,
    /// Seconds the entry has left on the sender.
    pub timeout: u32,
    /// A FullNAT connection's local address and port.
    pub local: Option<(std::net::IpAddr, u16)>,
}

/// Seconds a received entry lives past the timeout it was sent with. A flow the XDP
/// fast path carries is renewed by its worker's sweep only once its own expiry has
/// passed (the sweep visits every bucket within 2 s), and only then re-sent: the margin
/// keeps the peer's copy alive until that refresh arrives.
pub const RECEIVED_GRACE_SECS: u32 = 30;

/// After how many seconds without a send a live entry with `ttl` is sent again: half its
/// timeout, so the peer's copy is refreshed well before it could expire. Capped so that
/// the entry's 16-bit send clock (`Flow::synced`) cannot wrap in between.
#[inline]
pub fn refresh_after(ttl: u32) -> u16 {
    (ttl / 2).clamp(1, 30_000) as u16
}

/// Whether a connection in TCP state `state` is worth sending: an established one and
/// everything after. A handshake in progress is not (its client retransmits the SYN,
/// which the new director schedules afresh).
#[inline]
pub fn tcp_state_synced(state: crate::flow::TcpState) -> bool {
    use crate::flow::TcpState::*;
    !matches!(state, None | SynSent | SynRecv | Listen | SynAck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::TcpState;

    #[test]
    fn refresh_is_half_the_timeout_within_the_clock_range() {
        assert_eq!(refresh_after(900), 450);
        assert_eq!(refresh_after(1), 1, "never 0: that would send every packet");
        assert_eq!(refresh_after(0), 1);
        assert_eq!(
            refresh_after(7 * 86400),
            30_000,
            "the u16 clock never wraps"
        );
    }

    #[test]
    fn handshakes_are_not_sent_established_and_closing_are() {
        assert!(!tcp_state_synced(TcpState::SynRecv));
        assert!(!tcp_state_synced(TcpState::None));
        for s in [
            TcpState::Established,
            TcpState::FinWait,
            TcpState::TimeWait,
            TcpState::Close,
            TcpState::CloseWait,
            TcpState::LastAck,
        ] {
            assert!(tcp_state_synced(s), "{s:?}");
        }
    }
}
