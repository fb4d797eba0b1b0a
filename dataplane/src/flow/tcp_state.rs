//! TCP connection state as IPVS tracks it, and the timeout of each state.
//!
//! The event of a segment is RST, else SYN, else FIN, else ACK (a segment with none of
//! them changes nothing). The transition depends on the direction the director sees:
//! `Input` (client → server) and `Output` (server → client) when both halves cross it
//! (NAT), `InputOnly` when the server answers the client directly (DR, TUN). The tables
//! follow IPVS's (net/netfilter/ipvs/ip_vs_proto_tcp.c), so the states, timeouts and
//! active/inactive counts match what `ipvsadm -Lnc` users know.

use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// Also the state of UDP flows, which have none.
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

pub const STATE_COUNT: usize = 11;

impl TcpState {
    pub const ALL: [TcpState; STATE_COUNT] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    pub fn from_u8(v: u8) -> TcpState {
        *Self::ALL.get(usize::from(v)).unwrap_or(&TcpState::None)
    }

    /// The name `ipvsadm -Lnc` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// A connection on its way out (a FIN or RST seen): evicting it harms no one.
    pub fn is_closing(self) -> bool {
        matches!(
            self,
            TcpState::FinWait
                | TcpState::TimeWait
                | TcpState::Close
                | TcpState::CloseWait
                | TcpState::LastAck
        )
    }

    /// IPVS counts a connection active only while ESTABLISHED; lc, wlc, sed and nq weigh
    /// active connections 256 times an inactive one.
    pub fn is_active(self) -> bool {
        self == TcpState::Established
    }

    /// True when a new SYN on this flow, tracked in `dir`, starts a new connection: the
    /// old one is in TIME_WAIT or CLOSE (IPVS's conn_reuse_mode 1) or, when only the
    /// client's half is seen (DR, TUN), in FIN_WAIT (conn_reuse_mode 2). That half never
    /// reaches TIME_WAIT: after the client's FIN only ACKs follow, so without it a client
    /// reusing its port within the FIN_WAIT timeout would stick to the old real server
    /// and not be counted as a connection.
    pub fn reusable(self, dir: Direction) -> bool {
        match self {
            TcpState::TimeWait | TcpState::Close => true,
            TcpState::FinWait => dir == Direction::InputOnly,
            _ => false,
        }
    }

    /// The state after a segment with `flags` seen in `dir`.
    pub fn next(self, dir: Direction, flags: u8) -> TcpState {
        let event = if flags & FLAG_RST != 0 {
            3
        } else if flags & FLAG_SYN != 0 {
            0
        } else if flags & FLAG_FIN != 0 {
            1
        } else if flags & FLAG_ACK != 0 {
            2
        } else {
            return self;
        };
        TABLES[dir as usize][event][self as usize]
    }
}

/// Which half of the conversation a segment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server, when replies also pass the director (NAT).
    Input = 0,
    /// Server to client (NAT replies).
    Output = 1,
    /// Client to server, when replies bypass the director (DR, TUN).
    InputOnly = 2,
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// [direction][event: syn, fin, ack, rst][current state] → next state. Columns in
/// `TcpState` order: NO ES SS SR FW TW CL CW LA LI SA.
#[rustfmt::skip]
const TABLES: [[[TcpState; STATE_COUNT]; 4]; 3] = {
    [
    [ // input
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    [ // output
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    [ // input only
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
]
};

/// Timeouts in seconds: one per TCP state, and UDP's. Defaults are IPVS's; `ipvsadm
/// --set tcp tcpfin udp` sets ESTABLISHED, FIN_WAIT and UDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: [u32; STATE_COUNT],
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        let mut tcp = [0; STATE_COUNT];
        for s in TcpState::ALL {
            tcp[s as usize] = match s {
                TcpState::None => 2,
                TcpState::Established => 900,
                TcpState::SynSent
                | TcpState::FinWait
                | TcpState::TimeWait
                | TcpState::Listen
                | TcpState::SynAck => 120,
                TcpState::SynRecv | TcpState::CloseWait => 60,
                TcpState::Close => 10,
                TcpState::LastAck => 30,
            };
        }
        Timeouts { tcp, udp: 300 }
    }
}

impl Timeouts {
    #[inline]
    pub fn tcp(&self, s: TcpState) -> u32 {
        self.tcp[s as usize]
    }

    pub fn set_tcp(&mut self, s: TcpState, secs: u32) {
        self.tcp[s as usize] = secs;
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::*;
    use super::*;
    use TcpState::{None as NO, SynAck as SA};

    const SYN: u8 = FLAG_SYN;
    const ACK: u8 = FLAG_ACK;
    const FIN_ACK: u8 = FLAG_FIN | FLAG_ACK;
    const RST: u8 = FLAG_RST;

    fn walk(dir: &[(Direction, u8)]) -> Vec<TcpState> {
        let mut s = NO;
        dir.iter()
            .map(|&(d, f)| {
                s = s.next(d, f);
                s
            })
            .collect()
    }

    #[test]
    fn dr_sees_the_client_half() {
        let states = walk(&[
            (InputOnly, SYN),
            (InputOnly, ACK),
            (InputOnly, ACK),
            (InputOnly, FIN_ACK),
            (InputOnly, ACK),
        ]);
        assert_eq!(states, [SR, ES, ES, FW, FW]);
        assert!(states[1].is_active() && !states[3].is_active());
    }

    #[test]
    fn nat_sees_both_halves() {
        let states = walk(&[
            (Input, SYN),
            (Output, SYN | ACK),
            (Input, ACK),
            (Input, FIN_ACK),  // client closes
            (Output, FIN_ACK), // server closes
            (Input, ACK),
        ]);
        assert_eq!(states, [SR, SR, ES, CW, TW, TW]);
    }

    #[test]
    fn rst_and_reuse() {
        assert_eq!(ES.next(InputOnly, RST | ACK), CL);
        assert!(CL.reusable(Input) && TW.reusable(Input) && !ES.reusable(Input));
        // FIN_WAIT is the end of a connection only when the replies are not seen.
        assert!(!FW.reusable(Input) && FW.reusable(InputOnly) && !ES.reusable(InputOnly));
        // A client's close as seen in DR: FIN, then ACKs; it stays FIN_WAIT.
        assert_eq!(ES.next(InputOnly, FIN_ACK).next(InputOnly, ACK), FW);
        // A segment without SYN/FIN/ACK/RST changes nothing.
        assert_eq!(ES.next(Input, 0), ES);
        // A mid-stream ACK with no history is not trusted as established.
        assert_eq!(NO.next(InputOnly, ACK), CL);
    }

    #[test]
    fn names_and_timeouts() {
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_u8(s as u8), s);
        }
        assert_eq!(TcpState::from_u8(200), NO);
        let t = Timeouts::default();
        assert_eq!((t.tcp(ES), t.tcp(FW), t.udp), (900, 120, 300));
        assert_eq!(SA.name(), "SYNACK");
    }
}
