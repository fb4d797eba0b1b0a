//! Semantic checks: everything the YAML types alone cannot say. Collects every problem.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::spanned::Spanned;

use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;

struct Checker {
    out: Vec<Diagnostic>,
}

fn at<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

impl Checker {
    fn error<T>(&mut self, s: &Spanned<T>, message: String, hint: &str) {
        let (l, c) = at(s);
        self.out.push(Diagnostic::new(l, c, message).hint(hint));
    }

    /// An address a host can be given: not 0.0.0.0, broadcast, multicast or loopback.
    fn unicast(&mut self, a: &Spanned<Ipv4Addr>, what: &str) {
        let v = a.value;
        let class = if v.is_unspecified() {
            "unspecified"
        } else if v.is_broadcast() {
            "broadcast"
        } else if v.is_multicast() {
            "multicast"
        } else if v.is_loopback() {
            "loopback"
        } else {
            return;
        };
        self.error(
            a,
            format!("{v} is a {class} address, which cannot be {what}"),
            "give a unicast address of the network",
        );
    }

    /// An integer field within `lo..=hi`.
    fn range(&mut self, s: &Spanned<i64>, what: &str, lo: i64, hi: i64, hint: &str) -> i64 {
        if s.value < lo || s.value > hi {
            self.error(
                s,
                format!("{what} {} is out of range {lo}..={hi}", s.value),
                hint,
            );
            return lo;
        }
        s.value
    }
}

pub fn validate(raw: RawConfig) -> Result<Config, Vec<Diagnostic>> {
    let mut ck = Checker { out: Vec::new() };

    if raw.interface.value.is_empty() || raw.interface.value.len() > 15 {
        ck.error(
            &raw.interface,
            format!(
                "interface name {:?} is not a valid Linux interface name",
                raw.interface.value
            ),
            "give the name as `ip link` shows it, 1 to 15 characters",
        );
    }
    let workers = raw.workers.as_ref().map(|w| {
        ck.range(
            w,
            "workers",
            1,
            256,
            "one worker serves one RX queue; omit the key to use every queue",
        ) as u32
    });
    let cpus = raw.cpus.as_ref().map(|list| {
        if list.is_empty() {
            // An empty list pins nothing: say so rather than run unpinned silently.
            ck.error(
                &raw.interface,
                "cpus is empty".into(),
                "list the CPUs the workers run on (`cpus: [0, 1]`), or omit the key",
            );
        }
        list.iter()
            .map(|c| {
                ck.range(
                    c,
                    "cpu",
                    0,
                    4095,
                    "a CPU number, as in /sys/devices/system/cpu",
                ) as usize
            })
            .collect::<Vec<usize>>()
    });
    let mut af_xdp = AfXdp::default();
    if let Some(a) = &raw.af_xdp {
        let pow2 = |ck: &mut Checker, v: &Spanned<i64>, what: &str, lo: i64, hi: i64| -> u32 {
            let n = ck.range(v, what, lo, hi, "a power of two") as u32;
            if !n.is_power_of_two() {
                ck.error(
                    v,
                    format!("{what} {n} is not a power of two"),
                    "the kernel's rings take powers of two: 1024, 2048, 4096…",
                );
            }
            n
        };
        if let Some(v) = &a.frames {
            af_xdp.frames = pow2(&mut ck, v, "af_xdp frames", 64, 65536);
        }
        for (field, slot, what) in [
            (&a.rx_ring, &mut af_xdp.rx_ring, "af_xdp rx_ring"),
            (&a.tx_ring, &mut af_xdp.tx_ring, "af_xdp tx_ring"),
        ] {
            if let Some(v) = field {
                *slot = pow2(&mut ck, v, what, 64, 16384);
            }
        }
        for (field, n, what) in [
            (&a.rx_ring, af_xdp.rx_ring, "rx_ring"),
            (&a.tx_ring, af_xdp.tx_ring, "tx_ring"),
        ] {
            if let (Some(v), true) = (field, n > af_xdp.frames) {
                ck.error(
                    v,
                    format!("af_xdp {what} {n} is larger than frames {}", af_xdp.frames),
                    "a ring cannot hold more descriptors than the UMEM has frames",
                );
            }
        }
    }
    let flow_table_size = raw
        .flow_table_size
        .as_ref()
        .map_or(DEFAULT_FLOW_TABLE_SIZE, |s| {
            ck.range(
                s,
                "flow_table_size",
                1024,
                1 << 28,
                "flows tracked per worker; 32 bytes each",
            ) as usize
        });
    let mut timeouts = Timeouts::default();
    if let Some(t) = &raw.timeouts {
        let hint = "seconds; tcp, tcpfin and udp are `ipvsadm --set`'s three values";
        let tm = &mut timeouts;
        for (field, slot) in [
            (&t.tcp, &mut tm.tcp),
            (&t.tcpfin, &mut tm.tcpfin),
            (&t.udp, &mut tm.udp),
            (&t.syn_sent, &mut tm.syn_sent),
            (&t.syn_recv, &mut tm.syn_recv),
            (&t.time_wait, &mut tm.time_wait),
            (&t.close, &mut tm.close),
            (&t.close_wait, &mut tm.close_wait),
            (&t.last_ack, &mut tm.last_ack),
            (&t.listen, &mut tm.listen),
            (&t.synack, &mut tm.synack),
        ] {
            if let Some(v) = field {
                *slot = ck.range(v, "timeout", 1, 86400 * 7, hint) as u32;
            }
        }
    }

    let metrics_listen = match &raw.metrics_listen {
        None => DEFAULT_METRICS_LISTEN.parse().ok(),
        Some(m) if m.value == "off" => None,
        Some(m) => match m.value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                ck.error(
                    m,
                    format!("metrics_listen {:?} is not an address:port", m.value),
                    "such as 127.0.0.1:9147, or `off`",
                );
                None
            }
        },
    };
    let tun_mtu = raw.tun_mtu.as_ref().map(|m| {
        ck.range(
            m,
            "tun_mtu",
            576,
            65535,
            "the path MTU to tunnelled real servers; omit it to use the interface's",
        ) as u16
    });
    let mut seen_services: HashMap<(Ipv4Addr, u16, Protocol), u64> = HashMap::new();
    let mut seen_names: HashMap<String, u64> = HashMap::new();
    let mut seen_nat: HashMap<(Ipv4Addr, u16, Protocol), u64> = HashMap::new();
    let mut virtual_servers = Vec::new();
    for vs in &raw.virtual_servers {
        if let Some(first) = seen_names.insert(vs.name.value.clone(), at(&vs.name).0) {
            ck.error(
                &vs.name,
                format!(
                    "virtual server name {:?} is already used at line {first}",
                    vs.name.value
                ),
                "give each virtual server its own name: metrics and `xvs status` use it",
            );
        }
        let port_hint = "0 stands for every port of the address";
        let ports: Vec<u16> = match (&vs.port, &vs.ports) {
            (Some(p), None) => vec![ck.range(p, "port", 0, 65535, port_hint) as u16],
            (None, Some(list)) if !list.is_empty() => list
                .iter()
                .map(|p| ck.range(p, "port", 1, 65535, "list the ports one by one"))
                .map(|p| p as u16)
                .collect(),
            (None, Some(_)) => {
                ck.error(
                    &vs.name,
                    format!(
                        "virtual server {:?} has an empty `ports` list",
                        vs.name.value
                    ),
                    "list at least one port",
                );
                vec![0]
            }
            (Some(p), Some(_)) => {
                ck.error(
                    p,
                    "give either `port` or `ports`, not both".into(),
                    "`ports: [80, 443]` serves several ports as one service",
                );
                vec![0]
            }
            (None, None) => {
                ck.error(
                    &vs.name,
                    format!("virtual server {:?} has no `port`", vs.name.value),
                    "add `port: 80` (0: every port) or `ports: [80, 443]`",
                );
                vec![0]
            }
        };
        for (i, &port) in ports.iter().enumerate() {
            let key = (vs.address.value, port, vs.protocol.value);
            let span = vs
                .ports
                .as_ref()
                .and_then(|l| l.get(i))
                .map_or_else(|| at(&vs.address), at);
            if let Some(first) = seen_services.insert(key, span.0) {
                ck.out.push(
                    Diagnostic::new(
                        span.0,
                        span.1,
                        format!("virtual server {}:{port}/{} is already defined at line {first}", vs.address.value, vs.protocol.value.as_str()),
                    )
                    .hint("each address, port and protocol may have one virtual server; merge the two"),
                );
            }
        }
        let scheduler = vs.scheduler.as_ref().map_or(Scheduler::Wrr, |s| s.value);
        let mut flags = SchedFlags::default();
        for f in &vs.scheduler_flags {
            let (fits, port) = match f.value {
                SchedFlag::ShPort => (scheduler == Scheduler::Sh, true),
                SchedFlag::ShFallback => (scheduler == Scheduler::Sh, false),
                SchedFlag::MhPort => (scheduler == Scheduler::Mh, true),
                SchedFlag::MhFallback => (scheduler == Scheduler::Mh, false),
            };
            if !fits {
                ck.error(
                    f,
                    format!(
                        "this flag does not apply to scheduler {}",
                        scheduler.as_str()
                    ),
                    "sh-* flags go with sh, mh-* flags with mh",
                );
            }
            if port {
                flags.port = true;
            } else {
                flags.fallback = true;
            }
        }
        let mh_table_size = match &vs.mh_table_size {
            None => MH_DEFAULT_TABLE_SIZE,
            Some(m) => {
                let v = ck.range(
                    m,
                    "mh_table_size",
                    2,
                    MH_MAX_TABLE_SIZE,
                    "a prime such as 65537 (the default) or 251",
                );
                if scheduler != Scheduler::Mh {
                    ck.error(
                        m,
                        "mh_table_size applies to scheduler mh only".into(),
                        "remove it, or use `scheduler: mh`",
                    );
                } else if v >= 2 && !is_prime(v as u64) {
                    ck.error(m, format!("mh_table_size {v} is not a prime"), "Maglev needs a prime table size: 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071");
                }
                v as u32
            }
        };
        let persistence = match (&vs.persistence_timeout, &vs.persistence_granularity) {
            (None, None) => None,
            (None, Some(g)) => {
                ck.error(
                    g,
                    "persistence_granularity without persistence_timeout".into(),
                    "add `persistence_timeout: 300` (seconds)",
                );
                None
            }
            (Some(t), g) => {
                let timeout = ck.range(
                    t,
                    "persistence_timeout",
                    1,
                    86400 * 31,
                    "seconds a client keeps its real server",
                ) as u32;
                let granularity = g.as_ref().map_or(Ipv4Addr::BROADCAST, |g| g.value);
                if let Some(g) = g {
                    let m = u32::from(g.value);
                    if m.leading_ones() + m.trailing_zeros() != 32 {
                        ck.error(
                            g,
                            format!("{} is not a netmask", g.value),
                            "a contiguous netmask, such as 255.255.255.0",
                        );
                    }
                }
                Some(Persistence {
                    timeout,
                    granularity,
                })
            }
        };
        let ops = vs.ops.as_ref().is_some_and(|o| o.value);
        if let Some(o) = vs
            .ops
            .as_ref()
            .filter(|o| o.value && vs.protocol.value != Protocol::Udp)
        {
            ck.error(
                o,
                "ops (one-packet scheduling) applies to UDP only".into(),
                "remove it, or use `protocol: udp`",
            );
        }
        let forwarding = vs.forwarding.as_ref().map_or(Forwarding::Dr, |f| f.value);
        ck.unicast(&vs.address, "a virtual server's address");
        let multi = ports.len() > 1;
        if forwarding == Forwarding::Nat && ports.contains(&0) {
            let span = vs.port.as_ref().map_or_else(|| at(&vs.address), at);
            ck.out.push(
                Diagnostic::new(
                    span.0,
                    span.1,
                    "a NAT virtual server cannot serve every port (port 0)".to_string(),
                )
                .hint("list the ports: NAT must know which port each reply came from"),
            );
        }
        let mut seen_rs: HashMap<(Ipv4Addr, u16), u64> = HashMap::new();
        let mut real_servers = Vec::new();
        for rs in &vs.real_servers {
            let rport = match &rs.port {
                Some(p) if multi => {
                    ck.error(
                        p,
                        "a real server of a multi-port service takes no port".into(),
                        "packets keep their destination port; remove `port`",
                    );
                    0
                }
                Some(p) => ck.range(
                    p,
                    "real server port",
                    0,
                    65535,
                    "omit it to use the virtual server's port",
                ) as u16,
                None if multi => 0,
                None => ports[0],
            };
            if forwarding != Forwarding::Nat && !multi && rport != ports[0] {
                let p = rs.port.as_ref().expect("differs only when given");
                let m = forwarding.as_str().to_uppercase();
                ck.error(
                    p,
                    format!("real server port {rport} differs from the virtual server's port {}, which {m} cannot do", ports[0]),
                    "DR and TUN deliver the client's packet unchanged: use the same port, or omit it",
                );
            }
            let weight = rs.weight.as_ref().map_or(1, |w| {
                ck.range(
                    w,
                    "weight",
                    0,
                    MAX_WEIGHT,
                    "0 takes no new connections (quiescent); higher gets more",
                ) as u32
            });
            ck.unicast(&rs.address, "a real server's address");
            if rs.address.value == vs.address.value {
                ck.error(
                    &rs.address,
                    format!("real server {} is the virtual server's own address", rs.address.value),
                    match forwarding {
                        Forwarding::Nat => "NAT real servers have addresses of their own, behind the director",
                        _ => "real servers hold the VIP on lo, but are reached by their own address (RIP)",
                    },
                );
            }
            if let Some(first) = seen_rs.insert((rs.address.value, rport), at(&rs.address).0) {
                ck.error(
                    &rs.address,
                    format!(
                        "real server {}:{rport} is already listed at line {first}",
                        rs.address.value
                    ),
                    "list each real server once per virtual server; use weight for a bigger share",
                );
            }
            let hc = rs
                .health_check
                .as_ref()
                .or(vs.health_check.as_ref())
                .and_then(|h| health_check(&mut ck, h));
            real_servers.push(RealServer {
                address: rs.address.value,
                port: rport,
                weight,
                health_check: hc,
                inhibit_on_failure: rs
                    .inhibit_on_failure
                    .or(vs.inhibit_on_failure)
                    .unwrap_or(false),
                notify_up: rs.notify_up.clone(),
                notify_down: rs.notify_down.clone(),
            });
        }
        if forwarding == Forwarding::Nat {
            for (rs, raw_rs) in real_servers.iter().zip(&vs.real_servers) {
                let rports: Vec<u16> = if rs.port == 0 {
                    ports.clone()
                } else {
                    vec![rs.port]
                };
                for rp in rports {
                    if let Some(first) =
                        seen_nat.insert((rs.address, rp, vs.protocol.value), at(&raw_rs.address).0)
                    {
                        ck.error(
                            &raw_rs.address,
                            format!("NAT real server {}:{rp} already serves the virtual server at line {first}", rs.address),
                            "its replies could not be told apart: give it another port in one of them",
                        );
                    }
                }
            }
        }
        let first_port = ports[0];
        virtual_servers.push(VirtualServer {
            name: vs.name.value.clone(),
            address: vs.address.value,
            ports,
            protocol: vs.protocol.value,
            scheduler,
            scheduler_flags: flags,
            mh_table_size,
            persistence,
            ops,
            forwarding,
            real_servers,
            quorum: vs.quorum.as_ref().map_or(1, |q| {
                ck.range(
                    q,
                    "quorum",
                    0,
                    1 << 24,
                    "least total weight of live real servers",
                ) as u32
            }),
            hysteresis: vs.hysteresis.as_ref().map_or(0, |q| {
                ck.range(
                    q,
                    "hysteresis",
                    0,
                    1 << 24,
                    "weight tolerance around the quorum",
                ) as u32
            }),
            quorum_up: vs.quorum_up.clone(),
            quorum_down: vs.quorum_down.clone(),
            quorum_vrrp: vs.quorum_vrrp.as_ref().map(|q| {
                let p = ck.range(
                    &q.priority,
                    "quorum_vrrp priority",
                    1,
                    254,
                    "the priority to advertise while below quorum",
                ) as u8;
                if !raw
                    .vrrp_instances
                    .iter()
                    .any(|v| v.name.value == q.instance.value)
                {
                    ck.error(
                        &q.instance,
                        format!("no VRRP instance {:?}", q.instance.value),
                        "name one of vrrp_instances",
                    );
                }
                (q.instance.value.clone(), p)
            }),
            sorry_server: vs.sorry_server.as_ref().map(|s| {
                ck.unicast(&s.address, "a sorry server's address");
                let p = s.port.as_ref().map_or(first_port, |p| {
                    ck.range(
                        p,
                        "sorry_server port",
                        0,
                        65535,
                        "omit it to use the virtual server's port",
                    ) as u16
                });
                (s.address.value, p)
            }),
        });
    }

    let mut vrrp_instances = Vec::new();
    let mut seen_vrid: HashMap<(String, u8), u64> = HashMap::new();
    for vi in &raw.vrrp_instances {
        if let Some(first) = seen_names.insert(format!("vrrp {}", vi.name.value), at(&vi.name).0) {
            ck.error(
                &vi.name,
                format!(
                    "VRRP instance name {:?} is already used at line {first}",
                    vi.name.value
                ),
                "give each instance its own name",
            );
        }
        let vrid = ck.range(
            &vi.virtual_router_id,
            "virtual_router_id",
            1,
            255,
            "1 to 255; the same on every director of the pair",
        ) as u8;
        if let Some(first) = seen_vrid.insert(
            (vi.interface.value.clone(), vrid),
            at(&vi.virtual_router_id).0,
        ) {
            ck.error(
                &vi.virtual_router_id,
                format!(
                    "virtual_router_id {vrid} on {} is already used at line {first}",
                    vi.interface.value
                ),
                "each virtual router on a link needs its own id",
            );
        }
        let priority = ck.range(
            &vi.priority,
            "priority",
            1,
            255,
            "1 to 254; 255 only for the owner of the addresses",
        ) as u8;
        let version = vi.version.as_ref().map_or(2, |v| {
            ck.range(v, "version", 2, 3, "2 (RFC 3768) or 3 (RFC 5798)") as u8
        });
        let advert_int_cs = match &vi.advert_int {
            None => 100,
            Some(a) => {
                let cs = (a.value * 100.0).round();
                let ok = if version == 2 {
                    (100.0..=25500.0).contains(&cs) && cs % 100.0 == 0.0
                } else {
                    (1.0..=4095.0).contains(&cs)
                };
                if !ok {
                    let (l, c) = at(a);
                    ck.out.push(
                        Diagnostic::new(
                            l,
                            c,
                            format!(
                                "advert_int {} is not valid for VRRP version {version}",
                                a.value
                            ),
                        )
                        .hint(
                            "version 2: whole seconds 1 to 255; version 3: 0.01 to 40.95 seconds",
                        ),
                    );
                }
                cs.clamp(1.0, 4095.0) as u16
            }
        };
        let preempt_delay = vi.preempt_delay.as_ref().map_or(0, |d| {
            ck.range(d, "preempt_delay", 0, 1000, "seconds") as u32
        });
        let password = vi.authentication.as_ref().map(|a| {
            // PASS is the only type offered (AH is deprecated by RFC 3768).
            let AuthType::Pass = a.value.auth_type;
            if version != 2 {
                ck.error(
                    a,
                    "authentication exists in VRRP version 2 only".into(),
                    "remove it, or use `version: 2`",
                );
            }
            if a.value.auth_pass.is_empty() || a.value.auth_pass.len() > 8 {
                ck.error(
                    a,
                    "auth_pass must be 1 to 8 characters".into(),
                    "VRRPv2 carries 8 bytes of password",
                );
            }
            a.value.auth_pass.clone()
        });
        let mut vips = Vec::new();
        for v in &vi.virtual_ipaddresses {
            let (addr, len) = v
                .value
                .split_once('/')
                .map_or((v.value.as_str(), "32"), |(a, l)| (a, l));
            match (addr.trim().parse::<Ipv4Addr>(), len.trim().parse::<u8>()) {
                (Ok(a), Ok(l)) if l <= 32 => vips.push((a, l)),
                _ => ck.error(
                    v,
                    format!(
                        "{:?} is not an IPv4 address (with an optional /prefix)",
                        v.value
                    ),
                    "as keepalived: 10.0.0.100 or 10.0.0.100/24",
                ),
            }
        }
        if vips.is_empty() {
            ck.error(
                &vi.name,
                format!(
                    "VRRP instance {:?} has no virtual_ipaddresses",
                    vi.name.value
                ),
                "list the addresses the master holds",
            );
        }
        let garp_master_repeat = vi.garp_master_repeat.as_ref().map_or(5, |g| {
            ck.range(
                g,
                "garp_master_repeat",
                1,
                100,
                "gratuitous ARPs per address on becoming master",
            ) as u32
        });
        let garp_master_refresh = vi.garp_master_refresh.as_ref().map_or(0, |g| {
            ck.range(
                g,
                "garp_master_refresh",
                0,
                86400,
                "seconds between refreshes; 0 for none",
            ) as u32
        });
        let garp_interval_ms = vi.garp_interval.as_ref().map_or(0, |g| {
            if !(0.0..=10.0).contains(&g.value) {
                let (l, c) = at(g);
                ck.out.push(
                    Diagnostic::new(
                        l,
                        c,
                        format!("garp_interval {} is out of range 0..=10", g.value),
                    )
                    .hint("seconds between the gratuitous ARPs of one burst"),
                );
            }
            (g.value.clamp(0.0, 10.0) * 1000.0) as u32
        });
        let loc = |s: &Spanned<String>| {
            let (line, column) = at(s);
            Located {
                value: s.value.clone(),
                line,
                column,
            }
        };
        vrrp_instances.push(VrrpInstance {
            name: vi.name.value.clone(),
            interface: loc(&vi.interface),
            vrid,
            priority,
            start_as_master: vi
                .state
                .as_ref()
                .is_some_and(|s| s.value == VrrpState::Master),
            advert_int_cs,
            version,
            preempt: vi.preempt.unwrap_or(true),
            preempt_delay,
            password,
            unicast_src_ip: vi.unicast_src_ip.as_ref().map(|u| u.value),
            unicast_peers: vi
                .unicast_peers
                .iter()
                .map(|p| {
                    ck.unicast(p, "a unicast VRRP peer");
                    p.value
                })
                .collect(),
            virtual_ipaddresses: vips,
            garp_master_repeat,
            garp_master_refresh,
            garp_interval_ms,
            sync_group: None,
            notify_master: vi.notify_master.clone(),
            notify_backup: vi.notify_backup.clone(),
            notify_fault: vi.notify_fault.clone(),
            notify: vi.notify.clone(),
            track_interfaces: vi.track_interfaces.iter().map(loc).collect(),
        });
    }

    let mut grouped: HashMap<String, u64> = HashMap::new();
    for g in &raw.vrrp_sync_groups {
        for m in &g.group {
            match vrrp_instances.iter_mut().find(|v| v.name == m.value) {
                None => ck.error(
                    m,
                    format!(
                        "sync group {:?} names no VRRP instance {:?}",
                        g.name.value, m.value
                    ),
                    "list names from vrrp_instances",
                ),
                Some(v) => {
                    if let Some(first) = grouped.insert(m.value.clone(), at(m).0) {
                        ck.error(
                            m,
                            format!(
                                "VRRP instance {:?} is already in a sync group at line {first}",
                                m.value
                            ),
                            "an instance belongs to one sync group at most",
                        );
                    }
                    v.sync_group = Some(g.name.value.clone());
                }
            }
        }
    }
    if let Some(int) = &raw.internal_interface {
        if int.value == raw.interface.value || int.value.is_empty() || int.value.len() > 15 {
            ck.error(
                int,
                format!(
                    "internal_interface {:?} must be another valid interface than `interface`",
                    int.value
                ),
                "two-arm NAT: `interface` faces the clients, `internal_interface` the real servers",
            );
        } else if !virtual_servers
            .iter()
            .any(|v: &VirtualServer| v.forwarding == Forwarding::Nat)
        {
            ck.error(int, "internal_interface is for two-arm NAT, and no virtual server uses `forwarding: nat`".into(), "remove it, or use NAT");
        }
    }
    if !ck.out.is_empty() {
        ck.out.sort_by_key(|d| (d.line, d.column));
        return Err(ck.out);
    }
    let (line, column) = at(&raw.interface);
    Ok(Config {
        interface: Located {
            value: raw.interface.value,
            line,
            column,
        },
        internal_interface: raw.internal_interface.map(|i| {
            let (line, column) = at(&i);
            Located {
                value: i.value,
                line,
                column,
            }
        }),
        xdp_mode: raw.xdp_mode.unwrap_or_default(),
        workers,
        flow_table_size,
        timeouts,
        expire_nodest_conn: raw.expire_nodest_conn.unwrap_or_default(),
        fast_path: raw.fast_path.unwrap_or_default(),
        cpus,
        af_xdp,
        tun_mtu,
        metrics_listen,
        control_socket: raw.control_socket.clone(),
        watch_config: raw.watch_config.unwrap_or(false),
        vrrp_instances,
        virtual_servers,
    })
}

/// Seconds (fractions allowed) to milliseconds within `lo..=hi` seconds.
fn secs(
    ck: &mut Checker,
    v: &Option<Spanned<f64>>,
    what: &str,
    default: f64,
    lo: f64,
    hi: f64,
) -> u64 {
    match v {
        None => (default * 1000.0) as u64,
        Some(s) if (lo..=hi).contains(&s.value) => (s.value * 1000.0) as u64,
        Some(s) => {
            let (l, c) = at(s);
            ck.out.push(
                Diagnostic::new(
                    l,
                    c,
                    format!("{what} {} is out of range {lo}..={hi}", s.value),
                )
                .hint("seconds"),
            );
            (default * 1000.0) as u64
        }
    }
}

fn health_check(ck: &mut Checker, h: &Spanned<RawHealthCheck>) -> Option<HealthCheck> {
    let r = &h.value;
    let kind = match r.kind.value {
        CheckType::Tcp => CheckKind::Tcp,
        CheckType::Http | CheckType::Https => {
            let mut status_codes = Vec::new();
            for c in &r.status_code {
                status_codes.push(ck.range(
                    c,
                    "status_code",
                    100,
                    599,
                    "an HTTP status code such as 200",
                ) as u16);
            }
            if let Some(d) = &r.digest {
                if d.value.len() != 32 || !d.value.chars().all(|c| c.is_ascii_hexdigit()) {
                    ck.error(
                        d,
                        "digest must be an MD5 in hex (32 characters)".into(),
                        "as keepalived's genhash prints it",
                    );
                }
            }
            CheckKind::Http {
                path: r.path.clone().unwrap_or_else(|| "/".into()),
                status_codes,
                digest: r.digest.as_ref().map(|d| d.value.to_lowercase()),
                virtualhost: r.virtualhost.clone(),
                tls: (r.kind.value == CheckType::Https).then(|| TlsCheck {
                    verify: r.ssl_verify.unwrap_or(false),
                }),
            }
        }
        CheckType::Misc => match &r.misc_path {
            Some(p) if !p.value.trim().is_empty() => CheckKind::Misc {
                script: p.value.clone(),
                dynamic: r.misc_dynamic.unwrap_or(false),
            },
            _ => {
                ck.error(
                    &r.kind,
                    "a misc check needs `misc_path`".into(),
                    "the script to run; exit 0 means up",
                );
                return None;
            }
        },
        CheckType::Udp => CheckKind::Udp {
            payload: r.payload.clone().unwrap_or_default().into_bytes(),
        },
    };
    let timeout = if matches!(kind, CheckKind::Misc { .. }) {
        &r.misc_timeout
    } else {
        &r.connect_timeout
    };
    Some(HealthCheck {
        kind,
        delay_loop_ms: secs(ck, &r.delay_loop, "delay_loop", 60.0, 0.1, 86400.0),
        timeout_ms: secs(ck, timeout, "timeout", 5.0, 0.01, 3600.0),
        retry: r.retry.as_ref().map_or(1, |v| {
            ck.range(v, "retry", 0, 100, "attempts after the first failure") as u32
        }),
        delay_before_retry_ms: secs(
            ck,
            &r.delay_before_retry,
            "delay_before_retry",
            1.0,
            0.0,
            3600.0,
        ),
        warmup_ms: secs(ck, &r.warmup, "warmup", 0.0, 0.0, 3600.0),
        alpha: r.alpha.unwrap_or(false),
        connect_ip: r.connect_ip.as_ref().map(|a| a.value),
        connect_port: r
            .connect_port
            .as_ref()
            .map(|p| ck.range(p, "connect_port", 1, 65535, "the port to check") as u16),
        bindto: r.bindto.as_ref().map(|a| a.value),
    })
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}
