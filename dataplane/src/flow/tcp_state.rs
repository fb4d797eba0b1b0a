//! TCP connection state as a director that sees only the client's half of the
//! conversation (DR and TUN: replies bypass it) can track it, and the timeouts per state.

use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// Not a TCP flow (UDP), or nothing seen yet.
    None = 0,
    SynRecv,
    Established,
    FinWait,
    TimeWait,
    Close,
}

impl TcpState {
    pub fn from_u8(v: u8) -> TcpState {
        match v {
            1 => TcpState::SynRecv,
            2 => TcpState::Established,
            3 => TcpState::FinWait,
            4 => TcpState::TimeWait,
            5 => TcpState::Close,
            _ => TcpState::None,
        }
    }

    /// The state after a client segment with `flags`. RST wins over FIN, FIN over SYN, SYN
    /// over ACK, as IPVS picks the event from a segment.
    pub fn next(self, flags: u8) -> TcpState {
        use TcpState::*;
        if flags & FLAG_RST != 0 {
            return Close;
        }
        if flags & FLAG_FIN != 0 {
            return match self {
                FinWait | TimeWait => TimeWait,
                Close => Close,
                _ => FinWait,
            };
        }
        if flags & FLAG_SYN != 0 {
            return match self {
                Established => Established,
                _ => SynRecv,
            };
        }
        if flags & FLAG_ACK != 0 {
            return match self {
                None | SynRecv | Established => Established,
                s => s,
            };
        }
        self
    }

    /// True when a new SYN on this flow starts a new connection (the old one is over).
    pub fn reusable(self) -> bool {
        matches!(self, TcpState::TimeWait | TcpState::Close)
    }
}

/// Timeouts in seconds. Defaults as IPVS's (`ipvsadm --set 900 120 300`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_established: u32,
    pub tcp_syn_recv: u32,
    pub tcp_fin_wait: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 900,
            tcp_syn_recv: 60,
            tcp_fin_wait: 120,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp: 300,
        }
    }
}

impl Timeouts {
    pub fn tcp(&self, s: TcpState) -> u32 {
        match s {
            TcpState::None | TcpState::SynRecv => self.tcp_syn_recv,
            TcpState::Established => self.tcp_established,
            TcpState::FinWait => self.tcp_fin_wait,
            TcpState::TimeWait => self.tcp_time_wait,
            TcpState::Close => self.tcp_close,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TcpState::*;
    use super::*;

    #[test]
    fn handshake_data_close() {
        let s = None.next(FLAG_SYN);
        assert_eq!(s, SynRecv);
        let s = s.next(FLAG_ACK);
        assert_eq!(s, Established);
        let s = s.next(FLAG_ACK | crate::wire::tcp::FLAG_PSH);
        assert_eq!(s, Established);
        let s = s.next(FLAG_FIN | FLAG_ACK);
        assert_eq!(s, FinWait);
        let s = s.next(FLAG_ACK);
        assert_eq!(s, FinWait);
        let s = s.next(FLAG_FIN | FLAG_ACK);
        assert_eq!(s, TimeWait);
        assert!(s.reusable());
    }

    #[test]
    fn rst_closes_from_anywhere() {
        for s in [None, SynRecv, Established, FinWait, TimeWait, Close] {
            assert_eq!(s.next(FLAG_RST | FLAG_ACK), Close);
            assert_eq!(TcpState::from_u8(s as u8), s);
        }
    }

    #[test]
    fn timeouts_follow_state() {
        let t = Timeouts::default();
        assert_eq!(t.tcp(Established), 900);
        assert_eq!(t.tcp(FinWait), 120);
        assert_eq!(t.udp, 300);
    }
}
