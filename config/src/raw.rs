//! The file as written: serde types with spans, before any semantic check.

use std::net::Ipv4Addr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::{Forwarding, NodestPolicy, Protocol, SchedFlag, Scheduler, XdpMode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub interface: Spanned<String>,
    #[serde(default)]
    pub internal_interface: Option<Spanned<String>>,
    #[serde(default)]
    pub xdp_mode: Option<XdpMode>,
    #[serde(default)]
    pub workers: Option<Spanned<i64>>,
    #[serde(default)]
    pub flow_table_size: Option<Spanned<i64>>,
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
    #[serde(default)]
    pub expire_nodest_conn: Option<NodestPolicy>,
    #[serde(default)]
    pub tun_mtu: Option<Spanned<i64>>,
    #[serde(default)]
    pub virtual_servers: Vec<RawVirtualServer>,
}

/// Seconds. tcp, tcpfin and udp as `ipvsadm --set`; the rest name IPVS's TCP states.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub tcp: Option<Spanned<i64>>,
    pub tcpfin: Option<Spanned<i64>>,
    pub udp: Option<Spanned<i64>>,
    pub syn_sent: Option<Spanned<i64>>,
    pub syn_recv: Option<Spanned<i64>>,
    pub time_wait: Option<Spanned<i64>>,
    pub close: Option<Spanned<i64>>,
    pub close_wait: Option<Spanned<i64>>,
    pub last_ack: Option<Spanned<i64>>,
    pub listen: Option<Spanned<i64>>,
    pub synack: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualServer {
    pub name: Spanned<String>,
    pub address: Spanned<Ipv4Addr>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// Several ports as one service (persistence spans them).
    #[serde(default)]
    pub ports: Option<Vec<Spanned<i64>>>,
    pub protocol: Spanned<Protocol>,
    #[serde(default)]
    pub scheduler: Option<Spanned<Scheduler>>,
    #[serde(default)]
    pub scheduler_flags: Vec<Spanned<SchedFlag>>,
    #[serde(default)]
    pub mh_table_size: Option<Spanned<i64>>,
    #[serde(default)]
    pub persistence_timeout: Option<Spanned<i64>>,
    #[serde(default)]
    pub persistence_granularity: Option<Spanned<Ipv4Addr>>,
    #[serde(default)]
    pub ops: Option<Spanned<bool>>,
    #[serde(default)]
    pub forwarding: Option<Spanned<Forwarding>>,
    #[serde(default)]
    pub real_servers: Vec<RawRealServer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealServer {
    pub address: Spanned<Ipv4Addr>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
}
