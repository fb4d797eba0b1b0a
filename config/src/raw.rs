//! The file as written: serde types with spans, before any semantic check. The doc comment
//! of each field is its documentation: the JSON Schema (`xvs schema`) and
//! `docs/configuration.md` are generated from these types.

use std::net::{IpAddr, Ipv4Addr};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::{
    AuthType, CheckType, FastPath, Forwarding, NodestPolicy, Protocol, SchedFlag, Scheduler,
    SloppyTcp, SynGuardMode, VrrpState, XdpMode,
};
use crate::spanned::Spanned;

/// An xvs director: the interface it serves, its virtual servers and VRRP instances.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "xvs configuration")]
pub struct RawConfig {
    /// The interface clients reach the virtual servers on (as `ip link` names it). The
    /// steering XDP program is attached here. Restart-only.
    pub interface: Spanned<String>,
    /// Two-arm NAT: the interface towards the real servers; `interface` then faces the
    /// clients only. Restart-only.
    #[serde(default)]
    pub internal_interface: Option<Spanned<String>>,
    /// How the XDP program is attached: `auto` (native, else generic), `native` or
    /// `generic`. Default `auto`. Restart-only.
    #[serde(default)]
    pub xdp_mode: Option<XdpMode>,
    /// Worker threads, one per RX queue served (1 to 256). Default: every RX queue of the
    /// interface. Restart-only.
    #[serde(default)]
    pub workers: Option<Spanned<i64>>,
    /// The CPUs the workers are pinned to, in queue order: worker q runs on
    /// `cpus[q % len]`. Default: every CPU the process may use. Restart-only.
    #[serde(default)]
    pub cpus: Option<Vec<Spanned<i64>>>,
    /// AF_XDP sockets per worker: `frames` (UMEM frames of 4 KiB, 64 to 65536, default
    /// 4096), `rx_ring` and `tx_ring` (descriptors, 64 to 16384 and at most `frames`,
    /// default 2048), powers of two; `busy_poll` (µs, default 0: off) and
    /// `busy_poll_budget`; `batch` (frames per batch, 1 to 64, default 64). Restart-only.
    #[serde(default)]
    pub af_xdp: Option<RawAfXdp>,
    /// Flows (connections and persistence templates) each worker tracks, 1024 to 2^28;
    /// 32 bytes each. Default 1048576. Restart-only.
    #[serde(default)]
    pub flow_table_size: Option<Spanned<i64>>,
    /// Connection timeouts in seconds, as `ipvsadm --set` and IPVS's TCP states.
    /// Restart-only.
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
    /// What happens to connections whose real server left the configuration (or failed
    /// its check): `reschedule` (default), `expire` or `drop`. Restart-only.
    #[serde(default)]
    pub expire_nodest_conn: Option<NodestPolicy>,
    /// `auto` (default): as `xdp` while the interface delivers what XDP sends; when its
    /// driver counts `XDP_TX` frames undelivered (a veth whose peer runs no XDP program),
    /// as `off` from then on, said once in the log and shown by `xvs status --dataplane`
    /// and `xvs_fast_path_active`. `xdp`: established DR flows, and TUN and NAT ones over
    /// IPv4, are forwarded by the steering program itself, in XDP, with the decision their
    /// worker made (SYN, FIN, RST and every packet of a changed or idle flow still go to
    /// the workers), and NAT replies leave with `XDP_TX`, whatever the driver says. On a
    /// two-arm director, NAT requests take it only with `xdp`, redirected to the internal
    /// interface (which must take XDP's frames; `auto` cannot tell, and keeps them on
    /// the workers). `off`: every packet
    /// goes to a worker, NAT replies too once translated. Persistent and FullNAT services
    /// always stay on the workers. Restart-only.
    #[serde(default)]
    pub fast_path: Option<FastPath>,
    /// Which TCP packets may open a connection the director has not seen (IPVS's
    /// `sloppy_tcp`): `off`, only a SYN, as IPVS by default; `on`, any valid packet;
    /// `auto` (default), `on` for the schedulers every director agrees on (sh, dh, mh,
    /// fo), so that after a failover the backup sends an established connection to the
    /// real server that already has it, and `off` for the others, whose pick would reset
    /// it. Reloadable.
    #[serde(default)]
    pub sloppy_tcp: Option<SloppyTcp>,
    /// The SYN guard, against spoofed SYN floods: while it is on, a new TCP connection's
    /// SYN reaches the workers only on its retransmission (the same addresses, ports and
    /// sequence number, which a real client sends again after a second or three and a
    /// spoofed flood does not), within 4.3 to 8.6 s; the others are dropped in XDP and
    /// counted (`xvs_xdp_packets_total{outcome="drop_syn_guard"}`). `auto` (default): on
    /// for an RX queue once its worker has been overloaded for 10 ms (its ring a quarter
    /// full, or new flows evicting live ones) with new flows a quarter or more of what it
    /// took, for about a second after the last time it saw that, twice as long each time
    /// it comes back at once, up to 16 s
    /// (`xvs_syn_guard_engaged_total`); known flows' packets are never shed. `on`:
    /// always, for every new connection (each waits for its first retransmission). `off`:
    /// never. Reloadable (docs/input.md).
    #[serde(default)]
    pub syn_guard: Option<SynGuardMode>,
    /// Flows the fast path's map holds (1024 to 67108864; default 1048576). It is kernel
    /// memory allocated at start, about 100 bytes a flow: size it to the established
    /// flows a director carries, or a full map sends the least recent ones back through
    /// the workers. Restart-only.
    #[serde(default)]
    pub fast_path_flows: Option<Spanned<i64>>,
    /// Path MTU towards TUN real servers (576 to 65535); larger packets get ICMP
    /// fragmentation-needed with 20 bytes less (IPv6: Packet Too Big with 40 less, at
    /// least 1280). Default: the interface's MTU. Restart-only.
    #[serde(default)]
    pub tun_mtu: Option<Spanned<i64>>,
    /// Where `/metrics` is served, `address:port`, or `off`. Default `127.0.0.1:9147`.
    /// Names put the unit last, as Prometheus asks; since 0.1.0's first release these
    /// were renamed: `xvs_real_server_{bytes,packets}_{in,out}_total` are
    /// `xvs_real_server_{in,out}_{bytes,packets}_total`, `xvs_vrrp_advert_delay_max_seconds`
    /// is `xvs_vrrp_advert_max_delay_seconds` (the Grafana dashboard follows).
    /// Restart-only.
    #[serde(default)]
    pub metrics_listen: Option<Spanned<String>>,
    /// Path of the control socket (`xvs status`, `xvs reload`). Default
    /// `/run/xvs/xvs-net<network namespace inode>.sock`. Restart-only.
    #[serde(default)]
    pub control_socket: Option<String>,
    /// Reload by itself whenever the file's content changes (as `xvs reload` or SIGHUP
    /// would), besides SIGHUP and `xvs reload`. Default false. Restart-only.
    #[serde(default)]
    pub watch_config: Option<bool>,
    /// The services: keepalived's `virtual_server` blocks.
    #[serde(default)]
    pub virtual_servers: Vec<RawVirtualServer>,
    /// The real-time priority of the thread that runs every VRRP instance (`SCHED_FIFO`,
    /// 1 to 99), keepalived's `vrrp_rt_priority`; `0`: normal scheduling. Default 10: a
    /// host busy with other work then cannot delay an advert past a backup's
    /// Master_Down_Interval (at `advert_int: 0.01` only 36 ms), which would be a false
    /// failover. Needs CAP_SYS_NICE. Restart-only.
    #[serde(default)]
    pub vrrp_realtime_priority: Option<Spanned<i64>>,
    /// The user (and group, as `user:group`) notify and misc scripts run as, keepalived's
    /// `script_user`. Default: when xvs runs as root, `nobody` (not `xvs`, whose group
    /// reads this file and the sync key); otherwise xvs's own user. Scripts run without
    /// xvs's capabilities, in a clean environment, in a process group of their own.
    /// Restart-only.
    #[serde(default)]
    pub script_user: Option<Spanned<String>>,
    /// keepalived's `enable_script_security`: a script that anyone but root could change
    /// (the file, or any directory on its path, writable by another user) is not run.
    /// Off: such a script runs, and a warning says so at start. Restart-only.
    #[serde(default)]
    pub enable_script_security: Option<bool>,
    /// VRRP routers that own the virtual addresses: keepalived's `vrrp_instance` blocks.
    /// Restart-only.
    #[serde(default)]
    pub vrrp_instances: Vec<RawVrrpInstance>,
    /// keepalived's `vrrp_sync_group`: instances that change state together.
    #[serde(default)]
    pub vrrp_sync_groups: Vec<RawSyncGroup>,
    /// Connection sync between directors (what IPVS's sync daemon does): each director
    /// sends the connections and persistence templates it creates, and their changes, to
    /// its peers, so that whichever holds the VIPs forwards an established connection to
    /// the real server that has it. Restart-only.
    #[serde(default)]
    pub connection_sync: Option<RawConnectionSync>,
    /// E-mail alerts, as keepalived's `notification_email`: a message on each VRRP
    /// transition and each real server going out of the pool or back, sent in the
    /// background (a dead SMTP server delays nothing; a failed send is logged).
    #[serde(default)]
    pub email_alerts: Option<RawEmailAlerts>,
    /// Route health injection, for several active directors behind a router's ECMP: a
    /// host route for each VIP in a kernel routing table (that BIRD or FRR exports by
    /// BGP) while this director can serve it, none while it cannot. Reloadable.
    #[serde(default)]
    pub announce: Option<Spanned<RawAnnounce>>,
}

/// `announce`: top-level, the table the VIPs' routes go in and when a VIP counts as
/// servable; in a virtual server, its own settings in place of the top-level ones.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAnnounce {
    /// The kernel routing table (a number, 1 to 252 or above 255) the routes are
    /// written to; the routing daemon exports it. Not main (254), local (255) or
    /// default (253): those route the host's own traffic. Top-level only, required.
    #[serde(default)]
    pub table: Option<Spanned<i64>>,
    /// Least real servers up (weight above 0, not drained) for a virtual server to
    /// count as servable. Default 1.
    #[serde(default)]
    pub min_healthy: Option<Spanned<i64>>,
    /// Least fraction (0 to 1) of a virtual server's configured weight up. Default 0:
    /// the count alone.
    #[serde(default)]
    pub min_weight_fraction: Option<Spanned<f64>>,
    /// Seconds after start before anything is announced, so that health checks and
    /// connection sync have run (0 to 600). Default 5. A takeover skips it.
    #[serde(default)]
    pub warmup: Option<Spanned<f64>>,
    /// Seconds between withdrawing the routes and detaching at stop, so that the
    /// routers move the flows first (0 to 20). Default 2.
    #[serde(default)]
    pub withdraw_delay: Option<Spanned<f64>>,
    /// This virtual server counts towards its VIP's announcement (virtual servers
    /// only). Default true.
    #[serde(default)]
    pub enabled: Option<Spanned<bool>>,
}

/// `email_alerts`: who gets them, through which SMTP server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmailAlerts {
    /// Recipients (keepalived's `notification_email`), at least one.
    pub to: Vec<Spanned<String>>,
    /// The sender (keepalived's `notification_email_from`). Default: xvs@ the host name.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// The SMTP server's address (keepalived's `smtp_server`); no authentication, no
    /// TLS, as keepalived: a relay on the management network.
    pub smtp_server: Spanned<IpAddr>,
    /// Its port, 1 to 65535. Default 25.
    #[serde(default)]
    pub smtp_port: Option<Spanned<i64>>,
    /// Seconds (1 to 300) to connect and for each answer (keepalived's
    /// `smtp_connect_timeout`). Default 30.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<f64>>,
    /// The name given in HELO (keepalived's `smtp_helo_name`). Default: the host name.
    #[serde(default)]
    pub helo_name: Option<Spanned<String>>,
    /// Alerts on VRRP transitions (keepalived's `smtp_alert_vrrp`). Default false, as
    /// keepalived's.
    #[serde(default)]
    pub vrrp: Option<bool>,
    /// Alerts on real servers leaving the pool and coming back (keepalived's
    /// `smtp_alert_checker`). Default true, as keepalived's.
    #[serde(default)]
    pub checker: Option<bool>,
    /// The name in each subject's brackets (keepalived's `router_id`). Default: the
    /// host name.
    #[serde(default)]
    pub router_id: Option<Spanned<String>>,
}

/// `connection_sync`: where the directors meet, and the key their messages carry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConnectionSync {
    /// The interface sync messages go out and come in on; its first IPv4 address is
    /// their source.
    pub interface: Spanned<String>,
    /// The other directors' addresses (unicast). Default: none, and messages go to the
    /// multicast `group`, as IPVS's sync daemon sends them. With peers, a message from
    /// any other address is rejected.
    #[serde(default)]
    pub peers: Vec<Spanned<IpAddr>>,
    /// The shared secret (16 to 256 characters, the same on every director): each
    /// message carries an HMAC-SHA256 of it, so no one without the key can install or
    /// change a connection. Give it here or in `key_file`.
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    /// A file holding the key (its first line), by absolute path, readable by no one but
    /// its owner and group (mode 0640 or tighter, owner root): the key then stays out of
    /// the configuration file, which `xvs status` users and backups may read.
    #[serde(default)]
    pub key_file: Option<Spanned<String>>,
    /// UDP port, 1 to 65535. Default 8848 (IPVS's).
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// The IPv4 multicast group when there are no `peers`. Default 224.0.0.81 (IPVS's).
    #[serde(default)]
    pub group: Option<Spanned<std::net::Ipv4Addr>>,
    /// Seconds (0 to 60) a VRRP instance about to preempt a lower-priority master waits
    /// for this director's resync to finish before it takes over. Default 5. A backup
    /// taking over from a master that went silent never waits.
    #[serde(default)]
    pub resync_timeout: Option<Spanned<f64>>,
    /// Entries per second a resync is sent at (1000 to 10000000). Default 100000.
    #[serde(default)]
    pub resync_rate: Option<Spanned<i64>>,
}

/// keepalived's `vrrp_sync_group`: instances that change state together.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSyncGroup {
    /// The group's name.
    pub name: Spanned<String>,
    /// Names of the VRRP instances in the group.
    pub group: Vec<Spanned<String>>,
}

/// keepalived's `vrrp_instance`, in YAML.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVrrpInstance {
    /// The instance's name (logs, metrics, notify scripts, `quorum_vrrp`).
    pub name: Spanned<String>,
    /// The interface adverts are sent and received on.
    pub interface: Spanned<String>,
    /// The VRID, 1 to 255; the same on every router of the group, unique per interface.
    pub virtual_router_id: Spanned<i64>,
    /// 1 to 255; the highest priority is master. 255 means the address owner.
    pub priority: Spanned<i64>,
    /// `MASTER` or `BACKUP` (default), keepalived's hint. As in keepalived 2.x, every
    /// instance below priority 255 starts as backup and becomes master only after
    /// Master_Down_Interval without hearing a higher priority, so a restarted director
    /// never claims VIPs a higher-priority master holds; priority 255 starts as master.
    #[serde(default)]
    pub state: Option<Spanned<VrrpState>>,
    /// Seconds between adverts: whole seconds 1 to 255 with version 2; 0.01 to 40.95 with
    /// version 3. Default 1.
    #[serde(default)]
    pub advert_int: Option<Spanned<f64>>,
    /// VRRP version: 2 (RFC 3768, default) or 3 (RFC 5798).
    #[serde(default)]
    pub version: Option<Spanned<i64>>,
    /// Whether a higher priority takes over from a running master. Default true.
    #[serde(default)]
    pub preempt: Option<bool>,
    /// Seconds to wait before preempting (0 to 1000). Default 0.
    #[serde(default)]
    pub preempt_delay: Option<Spanned<i64>>,
    /// Version 2 only: simple password authentication.
    #[serde(default)]
    pub authentication: Option<Spanned<RawAuth>>,
    /// Unicast VRRP: the source address of adverts (of the VIPs' family).
    #[serde(default)]
    pub unicast_src_ip: Option<Spanned<IpAddr>>,
    /// Unicast VRRP: the peers adverts are sent to (instead of 224.0.0.18, or ff02::12
    /// for IPv6), of the VIPs' family.
    #[serde(default)]
    pub unicast_peers: Vec<Spanned<IpAddr>>,
    /// keepalived's `check_unicast_src`: with `unicast_peers`, an advert from any other
    /// source is refused (counted `unknown_source`). Default true with unicast peers
    /// (keepalived's is false: a forged advert from elsewhere on the network could
    /// otherwise take the VIPs).
    #[serde(default)]
    pub check_unicast_src: Option<bool>,
    /// The virtual addresses, `a.b.c.d[/len]` or, all of them, IPv6 `x::y[/len]` (VRRP
    /// version 3 over IPv6, RFC 5798, with unsolicited neighbour advertisements), added to
    /// `interface` while master.
    pub virtual_ipaddresses: Vec<Spanned<String>>,
    /// Gratuitous ARPs sent per address on becoming master. Default 5.
    #[serde(default)]
    pub garp_master_repeat: Option<Spanned<i64>>,
    /// Seconds between repeated gratuitous ARP bursts while master; 0 (default): none.
    #[serde(default)]
    pub garp_master_refresh: Option<Spanned<i64>>,
    /// Seconds between the gratuitous ARPs of one burst (0 to 10). Default 0.
    #[serde(default)]
    pub garp_interval: Option<Spanned<f64>>,
    /// Script run on becoming master.
    #[serde(default)]
    pub notify_master: Option<Spanned<String>>,
    /// Script run on becoming backup.
    #[serde(default)]
    pub notify_backup: Option<Spanned<String>>,
    /// Script run on entering fault.
    #[serde(default)]
    pub notify_fault: Option<Spanned<String>>,
    /// Script run on every change, with `INSTANCE name state priority` as arguments.
    #[serde(default)]
    pub notify: Option<Spanned<String>>,
    /// Interfaces whose link going down puts the instance in fault.
    #[serde(default)]
    pub track_interfaces: Vec<Spanned<String>>,
}

/// keepalived's `authentication` block.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// `PASS`: a clear-text password in each advert.
    pub auth_type: AuthType,
    /// The password, 1 to 8 characters.
    pub auth_pass: String,
}

/// AF_XDP socket sizes per worker.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAfXdp {
    /// UMEM frames (4 KiB each), a power of two from 64 to 65536. Default 4096.
    pub frames: Option<Spanned<i64>>,
    /// RX ring descriptors, a power of two from 64 to 16384, at most `frames`. Default 2048.
    pub rx_ring: Option<Spanned<i64>>,
    /// TX ring descriptors, a power of two from 64 to 16384, at most `frames`. Default 2048.
    pub tx_ring: Option<Spanned<i64>>,
    /// Busy polling, in microseconds (0 to 1000; 0, the default: off): the worker's poll
    /// drives the device's NAPI itself (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`).
    pub busy_poll: Option<Spanned<i64>>,
    /// Packets one busy poll may handle (1 to 1024; default 64, `SO_BUSY_POLL_BUDGET`).
    pub busy_poll_budget: Option<Spanned<i64>>,
    /// Frames a worker takes from its RX ring per batch, 1 to 64. Default 64.
    pub batch: Option<Spanned<i64>>,
}

/// Seconds. tcp, tcpfin and udp as `ipvsadm --set`; the rest name IPVS's TCP states.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// ESTABLISHED TCP connections. Default 900.
    pub tcp: Option<Spanned<i64>>,
    /// TCP connections after a FIN (FIN_WAIT). Default 120.
    pub tcpfin: Option<Spanned<i64>>,
    /// UDP flows. Default 300.
    pub udp: Option<Spanned<i64>>,
    /// SYN_SENT. Default 120.
    pub syn_sent: Option<Spanned<i64>>,
    /// SYN_RECV. Default 60.
    pub syn_recv: Option<Spanned<i64>>,
    /// TIME_WAIT. Default 120.
    pub time_wait: Option<Spanned<i64>>,
    /// CLOSE (after a RST). Default 10.
    pub close: Option<Spanned<i64>>,
    /// CLOSE_WAIT. Default 60.
    pub close_wait: Option<Spanned<i64>>,
    /// LAST_ACK. Default 30.
    pub last_ack: Option<Spanned<i64>>,
    /// LISTEN. Default 120.
    pub listen: Option<Spanned<i64>>,
    /// SYNACK. Default 120.
    pub synack: Option<Spanned<i64>>,
}

/// `persistence_granularity`: a netmask (IPv4) or a prefix length.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum Granularity {
    Netmask(Ipv4Addr),
    Prefix(i64),
}

/// A service: keepalived's `virtual_server` block, `ipvsadm -A`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualServer {
    /// A name of your choice, unique: `xvs status` and the metrics' `virtual_server` label.
    pub name: Spanned<String>,
    /// The virtual IP (VIP), IPv4 or IPv6; its real servers are of its family.
    pub address: Spanned<IpAddr>,
    /// The port; 0 stands for every port of the address. Give `port` or `ports`.
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// Several ports as one service (persistence spans them), as a firewall mark would.
    #[serde(default)]
    pub ports: Option<Vec<Spanned<i64>>>,
    /// `tcp` or `udp`.
    pub protocol: Spanned<Protocol>,
    /// The scheduler, named as ipvsadm names it. Default `wrr`.
    #[serde(default)]
    pub scheduler: Option<Spanned<Scheduler>>,
    /// `sh-port`, `sh-fallback` (with sh), `mh-port`, `mh-fallback` (with mh).
    #[serde(default)]
    pub scheduler_flags: Vec<Spanned<SchedFlag>>,
    /// Maglev lookup table size, a prime (mh only). Default 65537.
    #[serde(default)]
    pub mh_table_size: Option<Spanned<i64>>,
    /// Persistence: seconds a client sticks to its real server after its last connection.
    #[serde(default)]
    pub persistence_timeout: Option<Spanned<i64>>,
    /// Persistence: what groups clients: a netmask for IPv4 (default 255.255.255.255), a
    /// prefix length for IPv6 (default 128, as ipvsadm's `-6 -M`; IPv4 takes one too).
    #[serde(default)]
    pub persistence_granularity: Option<Spanned<Granularity>>,
    /// One-packet scheduling (UDP): every datagram is scheduled on its own.
    #[serde(default)]
    pub ops: Option<Spanned<bool>>,
    /// `dr` (default), `tun`, `nat` (keepalived's `lb_kind`) or `fullnat`.
    #[serde(default)]
    pub forwarding: Option<Spanned<Forwarding>>,
    /// FullNAT: the director's own addresses its requests to the real servers leave
    /// from (of the VIP's family; each in one pool only). Required with `fullnat`.
    #[serde(default)]
    pub local_addresses: Option<Vec<Spanned<IpAddr>>>,
    /// FullNAT: the ports handed out on each local address, `"LOW-HIGH"`. Default
    /// `"1024-65535"`.
    #[serde(default)]
    pub local_ports: Option<Spanned<String>>,
    /// The real servers.
    #[serde(default)]
    pub real_servers: Vec<RawRealServer>,
    /// The check of every real server that has none of its own.
    #[serde(default)]
    pub health_check: Option<Spanned<RawHealthCheck>>,
    /// A failed real server keeps its place with weight 0 (its connections go on)
    /// instead of leaving the pool. Default false.
    #[serde(default)]
    pub inhibit_on_failure: Option<bool>,
    /// Least total weight of live real servers for the service to be up. Default 1.
    #[serde(default)]
    pub quorum: Option<Spanned<i64>>,
    /// Weight tolerance around the quorum before its state changes. Default 0.
    #[serde(default)]
    pub hysteresis: Option<Spanned<i64>>,
    /// Script run when the quorum is gained.
    #[serde(default)]
    pub quorum_up: Option<Spanned<String>>,
    /// Script run when the quorum is lost.
    #[serde(default)]
    pub quorum_down: Option<Spanned<String>>,
    /// Takes the new connections while no real server is up.
    #[serde(default)]
    pub sorry_server: Option<RawSorryServer>,
    /// While below quorum, this VRRP instance advertises this priority instead.
    #[serde(default)]
    pub quorum_vrrp: Option<RawQuorumVrrp>,
    /// The top-level `announce` settings overridden for this virtual server.
    #[serde(default)]
    pub announce: Option<Spanned<RawAnnounce>>,
}

/// A VRRP instance to demote while the service is below quorum.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuorumVrrp {
    /// The VRRP instance's name.
    pub instance: Spanned<String>,
    /// The priority it advertises meanwhile (1 to 254).
    pub priority: Spanned<i64>,
}

/// keepalived's `sorry_server`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSorryServer {
    /// Its address, of the virtual server's family.
    pub address: Spanned<IpAddr>,
    /// Its port. Default: the virtual server's.
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
}

/// keepalived's TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK and a UDP check, as one map.
#[derive(Debug, Deserialize, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// `tcp`, `http`, `https`, `misc` or `udp`.
    #[serde(rename = "type")]
    pub kind: Spanned<CheckType>,
    /// Seconds between checks. Default 60.
    #[serde(default)]
    pub delay_loop: Option<Spanned<f64>>,
    /// Seconds an attempt may take. Default 5.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<f64>>,
    /// Attempts after a failure before the real server is declared down. Default 1.
    #[serde(default)]
    pub retry: Option<Spanned<i64>>,
    /// Seconds between those attempts. Default 1.
    #[serde(default)]
    pub delay_before_retry: Option<Spanned<f64>>,
    /// The first check waits a random time up to this many seconds. Default 0.
    #[serde(default)]
    pub warmup: Option<Spanned<f64>>,
    /// Start down until the first success (keepalived's `alpha`). Default false.
    #[serde(default)]
    pub alpha: Option<bool>,
    /// Check this address instead of the real server's: IPv4 or IPv6 (a dual-stack real
    /// server checked over IPv6).
    #[serde(default)]
    pub connect_ip: Option<Spanned<IpAddr>>,
    /// Check this port instead of the real server's.
    #[serde(default)]
    pub connect_port: Option<Spanned<i64>>,
    /// The source address of the checks, of the checked address's family.
    #[serde(default)]
    pub bindto: Option<Spanned<IpAddr>>,
    /// http/https: the path requested. Default `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// http/https: the status codes that mean up. Default: any 2xx.
    #[serde(default)]
    pub status_code: Vec<Spanned<i64>>,
    /// http/https: the MD5 of the body, in hex, as keepalived's genhash prints it.
    #[serde(default)]
    pub digest: Option<Spanned<String>>,
    /// http/https: the Host header (and the TLS server name).
    #[serde(default)]
    pub virtualhost: Option<String>,
    /// https: verify the certificate against the web PKI. Default false, as keepalived.
    #[serde(default)]
    pub ssl_verify: Option<bool>,
    /// misc: the command to run; exit 0 means up (with `misc_dynamic`, 2 to 255 set the
    /// weight to the code minus 2).
    #[serde(default)]
    pub misc_path: Option<Spanned<String>>,
    /// misc: seconds the command may run. Default 5.
    #[serde(default)]
    pub misc_timeout: Option<Spanned<f64>>,
    /// misc: the exit code sets the weight (keepalived's `misc_dynamic`).
    #[serde(default)]
    pub misc_dynamic: Option<bool>,
    /// udp: the datagram sent; any answer means up.
    #[serde(default)]
    pub payload: Option<String>,
}

/// A real server: keepalived's `real_server` block, `ipvsadm -a`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRealServer {
    /// Its address (RIP), of the virtual server's family.
    pub address: Spanned<IpAddr>,
    /// Its port. Default: the virtual server's; only NAT may map to another port.
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// 0 to 65535. Default 1. Weight 0 takes no new connections.
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    /// Its own check, instead of the virtual server's.
    #[serde(default)]
    pub health_check: Option<Spanned<RawHealthCheck>>,
    /// As the virtual server's `inhibit_on_failure`, for this real server.
    #[serde(default)]
    pub inhibit_on_failure: Option<bool>,
    /// Connections (active and inactive) at which it takes no new ones until it is back
    /// below `lthreshold`, as keepalived's `uthreshold` and `ipvsadm -x`. Checked every
    /// 100 ms. Default: no limit.
    #[serde(default)]
    pub uthreshold: Option<Spanned<i64>>,
    /// Below this many connections an overloaded real server takes new ones again, as
    /// keepalived's `lthreshold` and `ipvsadm -y`. Default: three quarters of
    /// `uthreshold`.
    #[serde(default)]
    pub lthreshold: Option<Spanned<i64>>,
    /// Script run when it comes up.
    #[serde(default)]
    pub notify_up: Option<Spanned<String>>,
    /// Script run when it goes down.
    #[serde(default)]
    pub notify_down: Option<Spanned<String>>,
}
