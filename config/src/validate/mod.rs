//! Semantic checks: everything the YAML types alone cannot say. Collects every problem,
//! section by section: the top-level settings here, then `virtual_server.rs` (with
//! `health.rs`), `vrrp.rs`; `checker.rs` holds what they share.

mod checker;
mod email;
mod health;
mod sync;
mod virtual_server;
mod vrrp;

use std::collections::HashMap;

use checker::{at, Checker};

use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;
use crate::spanned::Spanned;

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
    let fast_path_flows = raw.fast_path_flows.as_ref().map_or(1 << 20, |v| {
        ck.range(
            v,
            "fast_path_flows",
            1024,
            1 << 26,
            "flows the XDP fast path holds; about 100 bytes of kernel memory each",
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
        if let Some(v) = &a.busy_poll {
            af_xdp.busy_poll = ck.range(
                v,
                "af_xdp busy_poll",
                0,
                1000,
                "microseconds; 0 turns busy polling off",
            ) as u32;
        }
        if let Some(v) = &a.batch {
            af_xdp.batch =
                ck.range(v, "af_xdp batch", 1, 64, "frames a worker takes per batch") as u32;
        }
        if let Some(v) = &a.busy_poll_budget {
            af_xdp.busy_poll_budget = ck.range(
                v,
                "af_xdp busy_poll_budget",
                1,
                1024,
                "packets per busy poll",
            ) as u32;
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
    let vrrp_realtime_priority = raw.vrrp_realtime_priority.as_ref().map_or(Some(10), |p| {
        let p = ck.range(
            p,
            "vrrp_realtime_priority",
            0,
            99,
            "a SCHED_FIFO priority, as keepalived's vrrp_rt_priority; 0 for normal scheduling",
        ) as u8;
        (p > 0).then_some(p)
    });
    let script_user = raw
        .script_user
        .as_ref()
        .and_then(|u| script_user(&mut ck, u));
    let mut seen = virtual_server::Seen::default();
    let virtual_servers: Vec<VirtualServer> = raw
        .virtual_servers
        .iter()
        .map(|vs| virtual_server::check(&mut ck, vs, &mut seen, &raw.vrrp_instances))
        .collect();
    let mut vrids = HashMap::new();
    let mut vrrp_instances: Vec<VrrpInstance> = raw
        .vrrp_instances
        .iter()
        .map(|vi| vrrp::instance(&mut ck, vi, &mut seen.names, &mut vrids))
        .collect();
    vrrp::sync_groups(&mut ck, &raw.vrrp_sync_groups, &mut vrrp_instances);
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
    let connection_sync = raw
        .connection_sync
        .as_ref()
        .and_then(|cs| sync::check(&mut ck, cs));
    let email_alerts = raw
        .email_alerts
        .as_ref()
        .and_then(|e| email::check(&mut ck, e));
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
        sloppy_tcp: raw.sloppy_tcp.unwrap_or_default(),
        fast_path_flows,
        cpus,
        af_xdp,
        tun_mtu,
        metrics_listen,
        control_socket: raw.control_socket.clone(),
        watch_config: raw.watch_config.unwrap_or(false),
        vrrp_realtime_priority,
        script_user,
        enable_script_security: raw.enable_script_security.unwrap_or(false),
        vrrp_instances,
        virtual_servers,
        connection_sync,
        email_alerts,
    })
}

/// `script_user`: `user` or `user:group`, each a name a system account may have.
fn script_user(ck: &mut Checker, u: &Spanned<String>) -> Option<ScriptUser> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && !n.starts_with('-')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
    };
    let (user, group) = match u.value.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (u.value.as_str(), None),
    };
    if !name_ok(user) || group.is_some_and(|g| !name_ok(g)) {
        ck.error(
            u,
            format!("script_user {:?} is no user name", u.value),
            "a user, or `user:group` (keepalived's `script_user USER GROUP`)",
        );
        return None;
    }
    Some(ScriptUser {
        user: user.to_string(),
        group: group.map(str::to_string),
    })
}
