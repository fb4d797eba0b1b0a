//! Semantic checks: everything the YAML types alone cannot say. Collects every problem.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_saphyr::Spanned;

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
        let hint = "seconds, as `ipvsadm --set tcp tcpfin udp`";
        for (field, slot) in [
            (&t.tcp, &mut timeouts.tcp),
            (&t.tcpfin, &mut timeouts.tcpfin),
            (&t.udp, &mut timeouts.udp),
        ] {
            if let Some(v) = field {
                *slot = ck.range(v, "timeout", 1, 86400 * 7, hint) as u32;
            }
        }
    }

    let mut seen_services: HashMap<(Ipv4Addr, i64, Protocol), u64> = HashMap::new();
    let mut seen_names: HashMap<String, u64> = HashMap::new();
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
        let port = ck.range(
            &vs.port,
            "port",
            0,
            65535,
            "0 stands for every port of the address",
        ) as u16;
        let key = (vs.address.value, vs.port.value, vs.protocol.value);
        if let Some(first) = seen_services.insert(key, at(&vs.address).0) {
            ck.error(
                &vs.address,
                format!(
                    "virtual server {}:{}/{} is already defined at line {first}",
                    vs.address.value,
                    vs.port.value,
                    vs.protocol.value.as_str()
                ),
                "each address, port and protocol may have one virtual server; merge the two",
            );
        }
        let forwarding = vs.forwarding.as_ref().map_or(Forwarding::Dr, |f| f.value);
        let mut seen_rs: HashMap<(Ipv4Addr, u16), u64> = HashMap::new();
        let mut real_servers = Vec::new();
        for rs in &vs.real_servers {
            let rport = rs.port.as_ref().map_or(port, |p| {
                ck.range(
                    p,
                    "real server port",
                    0,
                    65535,
                    "omit it to use the virtual server's port",
                ) as u16
            });
            if forwarding == Forwarding::Dr && rport != port {
                let p = rs.port.as_ref().expect("differs only when given");
                ck.error(
                    p,
                    format!("real server port {rport} differs from the virtual server's port {port}, which DR cannot do"),
                    "DR forwards frames unchanged above Ethernet: use the same port, or omit it",
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
            real_servers.push(RealServer {
                address: rs.address.value,
                port: rport,
                weight,
            });
        }
        virtual_servers.push(VirtualServer {
            name: vs.name.value.clone(),
            address: vs.address.value,
            port,
            protocol: vs.protocol.value,
            scheduler: vs.scheduler.as_ref().map_or(Scheduler::Wrr, |s| s.value),
            forwarding,
            real_servers,
        });
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
        xdp_mode: raw.xdp_mode.unwrap_or_default(),
        workers,
        flow_table_size,
        timeouts,
        virtual_servers,
    })
}
