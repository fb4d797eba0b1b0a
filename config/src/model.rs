//! The validated configuration.

use std::net::Ipv4Addr;

use serde::Deserialize;

/// A value with the place it was written, for checks only the host can make (does this
/// interface exist?).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// The schedulers xvs implements so far, named as ipvsadm names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
}

impl Scheduler {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
        }
    }
}

/// Forwarding methods (`lb_kind`); DR so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    Dr,
}

impl Forwarding {
    pub fn as_str(self) -> &'static str {
        match self {
            Forwarding::Dr => "dr",
        }
    }
}

/// How the steering program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    #[default]
    Auto,
    Native,
    Generic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP connections, seconds (`ipvsadm --set` first value).
    pub tcp: u32,
    /// TCP after a FIN, seconds.
    pub tcpfin: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub address: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub name: String,
    pub address: Ipv4Addr,
    /// 0: every port.
    pub port: u16,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub forwarding: Forwarding,
    pub real_servers: Vec<RealServer>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub interface: Located<String>,
    pub xdp_mode: XdpMode,
    /// Workers (RX queues served); `None`: every RX queue of the interface.
    pub workers: Option<u32>,
    /// Flows each worker tracks.
    pub flow_table_size: usize,
    pub timeouts: Timeouts,
    pub virtual_servers: Vec<VirtualServer>,
}

pub const DEFAULT_FLOW_TABLE_SIZE: usize = 1 << 20;
pub const MAX_WEIGHT: i64 = 65535;
