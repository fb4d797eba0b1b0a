//! The validated configuration.

use std::net::{IpAddr, Ipv4Addr};

use schemars::JsonSchema;
use serde::Deserialize;

/// A value with the place it was written, for checks only the host can make (does this
/// interface exist?).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
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

/// The schedulers, named as ipvsadm (and keepalived's lb_algo) name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    Sh,
    Dh,
    Lblc,
    Lblcr,
    Mh,
    Fo,
    Ovf,
    Twos,
}

impl Scheduler {
    /// Every scheduler, in ipvsadm's order.
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Sh,
        Scheduler::Dh,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Mh,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Twos,
    ];

    /// The scheduler the config (and ipvsadm) names `name`.
    pub fn from_name(name: &str) -> Option<Scheduler> {
        Scheduler::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Sh => "sh",
            Scheduler::Dh => "dh",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Mh => "mh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Twos => "twos",
        }
    }
}

/// Scheduler flags, with keepalived's names (ipvsadm's `-b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SchedFlag {
    #[serde(rename = "sh-port")]
    ShPort,
    #[serde(rename = "sh-fallback")]
    ShFallback,
    #[serde(rename = "mh-port")]
    MhPort,
    #[serde(rename = "mh-fallback")]
    MhFallback,
}

/// AF_XDP socket sizes per worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfXdp {
    pub frames: u32,
    pub rx_ring: u32,
    pub tx_ring: u32,
    /// Microseconds; 0: off.
    pub busy_poll: u32,
    pub busy_poll_budget: u32,
    /// Frames per worker batch.
    pub batch: u32,
}

impl Default for AfXdp {
    fn default() -> Self {
        AfXdp {
            frames: 4096,
            rx_ring: 2048,
            tx_ring: 2048,
            busy_poll: 0,
            busy_poll_budget: 64,
            batch: 64,
        }
    }
}

/// Whether established DR, TUN and NAT flows are forwarded in XDP (see `fast_path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FastPath {
    /// As `xdp` while the interface delivers what XDP sends (`XDP_TX`); once its driver
    /// counts such frames undelivered (a veth whose peer runs no XDP program), as `off`,
    /// said once in the log and shown in `xvs status --dataplane` and /metrics.
    #[default]
    Auto,
    /// The steering program forwards established DR, TUN and NAT (IPv4) flows itself and
    /// sends NAT replies with `XDP_TX`, whatever the driver says.
    Xdp,
    /// Every packet goes to a worker; NAT replies, translated by the steering program,
    /// are sent by the workers too.
    Off,
}

/// When new connections' SYNs must be retransmitted to pass (see `syn_guard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SynGuardMode {
    /// On for an RX queue while its worker's ring backs up.
    #[default]
    Auto,
    /// On for every queue, always.
    On,
    Off,
}

/// Which TCP packets may open a connection (see `sloppy_tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SloppyTcp {
    /// `on` for sh, dh, mh and fo; `off` for the other schedulers.
    #[default]
    Auto,
    /// Any valid TCP packet opens a connection.
    On,
    /// Only a SYN does (IPVS's default).
    Off,
}

impl SloppyTcp {
    /// Whether a virtual server scheduled by `scheduler` lets any packet open a flow.
    pub fn applies_to(self, scheduler: Scheduler) -> bool {
        match self {
            SloppyTcp::On => true,
            SloppyTcp::Off => false,
            SloppyTcp::Auto => matches!(
                scheduler,
                Scheduler::Sh | Scheduler::Dh | Scheduler::Mh | Scheduler::Fo
            ),
        }
    }
}

/// What happens to connections whose real server left the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodestPolicy {
    /// The connection's next packet is scheduled to another real server.
    #[default]
    Reschedule,
    /// As IPVS's expire_nodest_conn=1: the packet is dropped and the connection forgotten.
    Expire,
    /// As IPVS's expire_nodest_conn=0: packets are dropped until the connection times out.
    Drop,
}

/// Hash the client's port too / fall back to another server when the hashed one cannot
/// take the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedFlags {
    pub port: bool,
    pub fallback: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Seconds.
    pub timeout: u32,
    /// Netmask over an IPv4 client address.
    pub granularity: Ipv4Addr,
    /// Prefix length over an IPv6 client address (128: per client).
    pub prefix6: u8,
}

/// Forwarding methods (keepalived's `lb_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// Direct routing: real servers on the director's segment, VIP on their lo.
    Dr,
    /// IP-in-IP tunnel: real servers anywhere routable, decapsulating to the VIP.
    Tun,
    /// Masquerading: the director is the real servers' gateway; ports may be mapped.
    Nat,
    /// Full NAT: requests leave from the director's local addresses, so real servers
    /// anywhere routable answer the director; ports may be mapped.
    #[serde(rename = "fullnat")]
    FullNat,
}

impl Forwarding {
    pub fn as_str(self) -> &'static str {
        match self {
            Forwarding::Dr => "dr",
            Forwarding::Tun => "tun",
            Forwarding::Nat => "nat",
            Forwarding::FullNat => "fullnat",
        }
    }
}

/// How the steering program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    #[default]
    Auto,
    Native,
    Generic,
}

/// Seconds, IPVS's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED (`ipvsadm --set` first value).
    pub tcp: u32,
    /// FIN_WAIT (second value).
    pub tcpfin: u32,
    /// UDP (third value).
    pub udp: u32,
    pub syn_sent: u32,
    pub syn_recv: u32,
    pub time_wait: u32,
    pub close: u32,
    pub close_wait: u32,
    pub last_ack: u32,
    pub listen: u32,
    pub synack: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
            syn_sent: 120,
            syn_recv: 60,
            time_wait: 120,
            close: 10,
            close_wait: 60,
            last_ack: 30,
            listen: 120,
            synack: 120,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    /// Of its virtual server's family.
    pub address: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// Its own check, or the virtual server's; `None`: never checked, always up.
    pub health_check: Option<HealthCheck>,
    /// Down means weight 0 (existing connections go on) instead of leaving the pool.
    pub inhibit_on_failure: bool,
    /// `uthreshold`/`lthreshold`: the connection limit, if any.
    pub thresholds: Option<Thresholds>,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
}

/// IPVS's connection thresholds (`ipvsadm -x/-y`): a real server with `upper` or more
/// connections (active and inactive) is overloaded, and takes no new one until it has
/// fewer than `lower`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub upper: u32,
    pub lower: u32,
}

impl Thresholds {
    /// `lthreshold` 0 or absent means three quarters of `upper`, as in IPVS.
    pub fn new(upper: u32, lower: u32) -> Thresholds {
        let lower = if lower == 0 {
            (u64::from(upper) * 3).div_ceil(4) as u32
        } else {
            lower
        };
        Thresholds { upper, lower }
    }

    /// Whether a real server with `conns` connections is overloaded, given whether it was.
    pub fn overloaded(&self, was: bool, conns: u64) -> bool {
        if was {
            conns >= u64::from(self.lower)
        } else {
            conns >= u64::from(self.upper)
        }
    }
}

/// keepalived's checker types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// TCP_CHECK: a connection opens.
    Tcp,
    /// HTTP_GET: status code (and body digest).
    Http,
    /// SSL_GET: HTTP over TLS.
    Https,
    /// MISC_CHECK: a script's exit code.
    Misc,
    /// A datagram gets an answer.
    Udp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http {
        path: String,
        /// Empty: any 2xx.
        status_codes: Vec<u16>,
        /// MD5 of the body, lowercase hex.
        digest: Option<String>,
        virtualhost: Option<String>,
        /// SSL_GET: over TLS, verifying the certificate or not.
        tls: Option<TlsCheck>,
    },
    Misc {
        script: String,
        dynamic: bool,
    },
    Udp {
        payload: Vec<u8>,
    },
}

/// SSL_GET's TLS settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsCheck {
    /// Verify the certificate against the web PKI and the server name (`virtualhost`).
    pub verify: bool,
}

/// A real server's check. Durations in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: CheckKind,
    pub delay_loop_ms: u64,
    /// Per attempt; for MISC, `misc_timeout`.
    pub timeout_ms: u64,
    /// Attempts after the first before the real server is declared down.
    pub retry: u32,
    pub delay_before_retry_ms: u64,
    /// The first check waits a random time up to this.
    pub warmup_ms: u64,
    /// Start down until the first success.
    pub alpha: bool,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub name: String,
    /// IPv4 or IPv6 (then forwarded by DR).
    pub address: IpAddr,
    /// One or more; the first is the service's identity. [0]: every port.
    pub ports: Vec<u16>,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub scheduler_flags: SchedFlags,
    /// Maglev table size (prime); mh only.
    pub mh_table_size: u32,
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (UDP).
    pub ops: bool,
    pub forwarding: Forwarding,
    /// FullNAT's local addresses and ports (`None` for the other methods).
    pub local: Option<LocalAddresses>,
    pub real_servers: Vec<RealServer>,
    /// Least total weight of live real servers for the service to be up.
    pub quorum: u32,
    /// Tolerance around the quorum before its state changes.
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// Takes the connections when no real server is up.
    pub sorry_server: Option<(IpAddr, u16)>,
    /// When its VIP may be announced; None without a top-level `announce`.
    pub announce: Option<AnnounceGate>,
    /// While below quorum, (VRRP instance, priority it advertises): a healthier director
    /// takes over.
    pub quorum_vrrp: Option<(String, u8)>,
}

/// FullNAT's local addresses (the director's own) and the ports handed out on each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalAddresses {
    pub addresses: Vec<IpAddr>,
    /// Inclusive.
    pub ports: (u16, u16),
}

/// `local_ports`' default: every port above the well-known ones.
pub const DEFAULT_LOCAL_PORTS: (u16, u16) = (1024, 65535);

/// The most distinct local addresses a file may name (the steering program's map).
pub const MAX_LOCAL_ADDRESSES: usize = 256;

impl VirtualServer {
    /// The first port: with the address and protocol, the service's identity.
    pub fn port(&self) -> u16 {
        self.ports[0]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub interface: Located<String>,
    /// Two-arm NAT: the interface towards the real servers (`interface` faces clients).
    pub internal_interface: Option<Located<String>>,
    pub xdp_mode: XdpMode,
    /// Workers (RX queues served); `None`: every RX queue of the interface.
    pub workers: Option<u32>,
    /// CPUs the workers are pinned to, in queue order (`None`: every allowed CPU).
    pub cpus: Option<Vec<usize>>,
    pub af_xdp: AfXdp,
    /// Flows each worker tracks.
    pub flow_table_size: usize,
    pub timeouts: Timeouts,
    pub expire_nodest_conn: NodestPolicy,
    pub fast_path: FastPath,
    pub sloppy_tcp: SloppyTcp,
    pub syn_guard: SynGuardMode,
    /// Entries of the fast path's map.
    pub fast_path_flows: u32,
    /// Path MTU towards TUN real servers; `None`: the interface's MTU.
    pub tun_mtu: Option<u16>,
    /// Where `/metrics` is served; `None`: not at all.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The control socket's path (`None`: one per network namespace under /run/xvs).
    pub control_socket: Option<String>,
    /// Reload when the file's content changes.
    pub watch_config: bool,
    pub virtual_servers: Vec<VirtualServer>,
    /// The VRRP thread's `SCHED_FIFO` priority; `None`: normal scheduling.
    pub vrrp_realtime_priority: Option<u8>,
    /// Who scripts run as (`script_user`); None: the default (see `RawConfig`).
    pub script_user: Option<ScriptUser>,
    pub enable_script_security: bool,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub connection_sync: Option<ConnectionSync>,
    pub email_alerts: Option<EmailAlerts>,
    /// Route health injection (`announce`); None: no routes written.
    pub announce: Option<Announce>,
}

/// `announce`, checked: the kernel table the VIPs' host routes go in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub table: u32,
}

/// When a virtual server lets its VIP be announced (`announce`, with its override).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceGate {
    /// False: this virtual server does not count towards its VIP's announcement.
    pub enabled: bool,
    pub min_healthy: u32,
    /// Of the configured weight, in thousandths.
    pub min_weight_permille: u32,
    pub warmup_ms: u64,
    pub withdraw_delay_ms: u64,
}

pub const DEFAULT_ANNOUNCE_WARMUP_S: f64 = 5.0;
pub const DEFAULT_WITHDRAW_DELAY_S: f64 = 2.0;

/// `email_alerts`, checked: addresses hold no line breaks or angle brackets, so nothing
/// can be smuggled into the SMTP dialogue or the headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAlerts {
    pub to: Vec<String>,
    /// None: xvs@ the host name.
    pub from: Option<String>,
    pub server: std::net::SocketAddr,
    pub timeout_ms: u64,
    pub helo_name: Option<String>,
    pub vrrp: bool,
    pub checker: bool,
    pub router_id: Option<String>,
}

pub const DEFAULT_SMTP_PORT: u16 = 25;
pub const DEFAULT_SMTP_TIMEOUT_S: f64 = 30.0;

/// `connection_sync`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSync {
    pub interface: Located<String>,
    /// Empty: multicast to `group`.
    pub peers: Vec<IpAddr>,
    pub key: String,
    pub port: u16,
    pub group: std::net::Ipv4Addr,
    pub resync_timeout_ms: u64,
    /// Entries per second.
    pub resync_rate: u32,
}

pub const DEFAULT_SYNC_PORT: u16 = 8848;
pub const DEFAULT_SYNC_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 81);
pub const DEFAULT_RESYNC_TIMEOUT_S: f64 = 5.0;
pub const DEFAULT_RESYNC_RATE: u32 = 100_000;

/// keepalived's initial `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum VrrpState {
    #[serde(rename = "MASTER", alias = "master")]
    Master,
    #[serde(rename = "BACKUP", alias = "backup")]
    Backup,
}

/// keepalived's `auth_type` (VRRPv2 only). AH is deprecated (RFC 3768) and not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum AuthType {
    #[serde(rename = "PASS", alias = "pass")]
    Pass,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: Located<String>,
    pub vrid: u8,
    /// 1–254; 255 for the address owner.
    pub priority: u8,
    pub start_as_master: bool,
    /// Centiseconds.
    pub advert_int_cs: u16,
    /// 2 or 3.
    pub version: u8,
    pub preempt: bool,
    /// Seconds.
    pub preempt_delay: u32,
    /// v2 simple password (`auth_type: PASS`).
    pub password: Option<String>,
    pub unicast_src_ip: Option<IpAddr>,
    /// Empty: multicast to 224.0.0.18 (ff02::12 for IPv6).
    pub unicast_peers: Vec<IpAddr>,
    /// Refuse adverts from sources not in `unicast_peers` (only with peers).
    pub check_unicast_src: bool,
    /// Address and prefix length (default /32, /128): all IPv4, or all IPv6.
    pub virtual_ipaddresses: Vec<(IpAddr, u8)>,
    /// Gratuitous ARPs per VIP on becoming master.
    pub garp_master_repeat: u32,
    /// Seconds between repeated gratuitous ARPs while master (0: none).
    pub garp_master_refresh: u32,
    /// Milliseconds between the gratuitous ARPs of one burst.
    pub garp_interval_ms: u32,
    /// The `vrrp_sync_groups` entry this instance belongs to.
    pub sync_group: Option<String>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    /// Called as `notify INSTANCE NAME STATE PRIORITY` on every transition.
    pub notify: Option<String>,
    pub track_interfaces: Vec<Located<String>>,
}

pub const MH_DEFAULT_TABLE_SIZE: u32 = 65537;
/// `/metrics` by default: loopback only, port 9147.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9147";
pub const MH_MAX_TABLE_SIZE: i64 = 1 << 20;
pub const DEFAULT_FLOW_TABLE_SIZE: usize = 1 << 20;
pub const MAX_WEIGHT: i64 = 65535;
/// The largest connection threshold: more than a director's flow table could hold.
pub const MAX_THRESHOLD: i64 = 1 << 30;

/// `script_user`: a user, and a group when it is not the user's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}
