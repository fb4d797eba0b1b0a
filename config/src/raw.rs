//! The file as written: serde types with spans, before any semantic check.

use std::net::Ipv4Addr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::{
    AuthType, CheckType, Forwarding, NodestPolicy, Protocol, SchedFlag, Scheduler, VrrpState,
    XdpMode,
};

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
    /// Where `/metrics` is served ("off": nowhere).
    #[serde(default)]
    pub metrics_listen: Option<Spanned<String>>,
    #[serde(default)]
    pub control_socket: Option<String>,
    #[serde(default)]
    pub virtual_servers: Vec<RawVirtualServer>,
    #[serde(default)]
    pub vrrp_instances: Vec<RawVrrpInstance>,
    #[serde(default)]
    pub vrrp_sync_groups: Vec<RawSyncGroup>,
}

/// keepalived's `vrrp_sync_group`: instances that change state together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyncGroup {
    pub name: Spanned<String>,
    pub group: Vec<Spanned<String>>,
}

/// keepalived's `vrrp_instance`, in YAML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVrrpInstance {
    pub name: Spanned<String>,
    pub interface: Spanned<String>,
    pub virtual_router_id: Spanned<i64>,
    pub priority: Spanned<i64>,
    #[serde(default)]
    pub state: Option<Spanned<VrrpState>>,
    /// Seconds; fractions (down to 0.01) with version 3.
    #[serde(default)]
    pub advert_int: Option<Spanned<f64>>,
    #[serde(default)]
    pub version: Option<Spanned<i64>>,
    #[serde(default)]
    pub preempt: Option<bool>,
    #[serde(default)]
    pub preempt_delay: Option<Spanned<i64>>,
    #[serde(default)]
    pub authentication: Option<Spanned<RawAuth>>,
    #[serde(default)]
    pub unicast_src_ip: Option<Spanned<Ipv4Addr>>,
    #[serde(default)]
    pub unicast_peers: Vec<Spanned<Ipv4Addr>>,
    pub virtual_ipaddresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub garp_master_repeat: Option<Spanned<i64>>,
    #[serde(default)]
    pub garp_master_refresh: Option<Spanned<i64>>,
    /// Seconds between the gratuitous ARPs of one burst.
    #[serde(default)]
    pub garp_interval: Option<Spanned<f64>>,
    #[serde(default)]
    pub notify_master: Option<String>,
    #[serde(default)]
    pub notify_backup: Option<String>,
    #[serde(default)]
    pub notify_fault: Option<String>,
    #[serde(default)]
    pub notify: Option<String>,
    #[serde(default)]
    pub track_interfaces: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub auth_type: AuthType,
    pub auth_pass: String,
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
    /// The default check of this virtual server's real servers.
    #[serde(default)]
    pub health_check: Option<Spanned<RawHealthCheck>>,
    #[serde(default)]
    pub inhibit_on_failure: Option<bool>,
    #[serde(default)]
    pub quorum: Option<Spanned<i64>>,
    #[serde(default)]
    pub hysteresis: Option<Spanned<i64>>,
    #[serde(default)]
    pub quorum_up: Option<String>,
    #[serde(default)]
    pub quorum_down: Option<String>,
    #[serde(default)]
    pub sorry_server: Option<RawSorryServer>,
    /// While below quorum, this VRRP instance advertises this priority instead.
    #[serde(default)]
    pub quorum_vrrp: Option<RawQuorumVrrp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuorumVrrp {
    pub instance: Spanned<String>,
    pub priority: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSorryServer {
    pub address: Spanned<Ipv4Addr>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
}

/// keepalived's TCP_CHECK, HTTP_GET, MISC_CHECK and a UDP check, as one map.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    #[serde(rename = "type")]
    pub kind: Spanned<CheckType>,
    #[serde(default)]
    pub delay_loop: Option<Spanned<f64>>,
    #[serde(default)]
    pub connect_timeout: Option<Spanned<f64>>,
    #[serde(default)]
    pub retry: Option<Spanned<i64>>,
    #[serde(default)]
    pub delay_before_retry: Option<Spanned<f64>>,
    #[serde(default)]
    pub warmup: Option<Spanned<f64>>,
    #[serde(default)]
    pub alpha: Option<bool>,
    #[serde(default)]
    pub connect_ip: Option<Spanned<Ipv4Addr>>,
    #[serde(default)]
    pub connect_port: Option<Spanned<i64>>,
    #[serde(default)]
    pub bindto: Option<Spanned<Ipv4Addr>>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status_code: Vec<Spanned<i64>>,
    #[serde(default)]
    pub digest: Option<Spanned<String>>,
    #[serde(default)]
    pub virtualhost: Option<String>,
    #[serde(default)]
    pub ssl_verify: Option<bool>,
    #[serde(default)]
    pub misc_path: Option<Spanned<String>>,
    #[serde(default)]
    pub misc_timeout: Option<Spanned<f64>>,
    #[serde(default)]
    pub misc_dynamic: Option<bool>,
    #[serde(default)]
    pub payload: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealServer {
    pub address: Spanned<Ipv4Addr>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    #[serde(default)]
    pub health_check: Option<Spanned<RawHealthCheck>>,
    #[serde(default)]
    pub inhibit_on_failure: Option<bool>,
    #[serde(default)]
    pub notify_up: Option<String>,
    #[serde(default)]
    pub notify_down: Option<String>,
}
