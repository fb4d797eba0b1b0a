//! The text of the table, `--stats`, `--rate` and `--thresholds` views, as `ipvsadm -Ln`
//! prints them (its header lines, column widths, flags and order: services by family,
//! protocol, address and port, real servers by address and port), and their JSON. The
//! widths are ipvsadm's printf formats (ipvsadm.c's print_title and print_service_entry);
//! the tests hold its output for the same tables.

use std::fmt::Write;

use super::request::{Request, View};
use super::rows::{RealServerRow, VirtualServerRow};

/// ipvsadm's first line reports the kernel's IPVS version and connection table size;
/// xvs answers with the version whose output it follows and its flow table's size.
const IPVS_VERSION: &str = "1.2.1";

/// The answer to a `status` request; `table_size` is the flow table's.
pub fn render(rows: &[VirtualServerRow], req: Request, table_size: usize) -> String {
    if req.json {
        return match serde_json::to_string_pretty(&serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "virtual_servers": rows,
        })) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
        };
    }
    let mut s = format!("IP Virtual Server version {IPVS_VERSION} (size={table_size})\n");
    s += title(req.view);
    let mut sorted: Vec<&VirtualServerRow> = rows.iter().collect();
    sorted.sort_by_key(|v| {
        (
            v.address.is_ipv6(),
            v.protocol != "tcp",
            v.address,
            v.ports.first().copied(),
        )
    });
    for vs in sorted {
        service(&mut s, vs, req);
        let mut dests: Vec<&RealServerRow> = vs
            .real_servers
            .iter()
            // Out of the pool (its check failed) is not in IPVS's table: not listed.
            .filter(|r| r.weight.is_some())
            .collect();
        dests.sort_by_key(|r| (r.address, r.port));
        for rs in dests {
            dest(&mut s, vs, rs, req);
        }
    }
    s
}

fn title(view: View) -> &'static str {
    match view {
        View::Stats => "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n",
        View::Rate => "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n",
        View::Thresholds => "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n",
        _ => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    }
}

/// "TCP  10.0.0.100:80": ipvsadm cuts an IPv4 one at 33 characters.
fn service_name(vs: &VirtualServerRow) -> String {
    let ports: Vec<String> = vs.ports.iter().map(u16::to_string).collect();
    let name = format!(
        "{}  {}",
        vs.protocol.to_uppercase(),
        crate::ids::endpoint(vs.address, ports.join(","))
    );
    cut(name, if vs.address.is_ipv6() { usize::MAX } else { 33 })
}

/// "10.0.0.11:80": ipvsadm cuts an IPv4 one at 28 characters.
fn dest_name(vs: &VirtualServerRow, rs: &RealServerRow) -> String {
    let name = crate::ids::endpoint(rs.address, rs.port);
    cut(name, if vs.address.is_ipv6() { usize::MAX } else { 28 })
}

fn cut(mut s: String, at: usize) -> String {
    if s.len() > at {
        s.truncate(at);
    }
    s
}

fn service(s: &mut String, vs: &VirtualServerRow, req: Request) {
    let name = service_name(vs);
    match req.view {
        View::Stats => {
            let _ = writeln!(s, "{name:<33}{}", stats(vs.totals, req.exact));
        }
        View::Rate => {
            let r = vs.rate.unwrap_or_default();
            let n = [r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps].map(whole);
            let _ = writeln!(s, "{name:<33}{}", nums(&n, req.exact));
        }
        // --thresholds shows the table's service line, as ipvsadm does.
        _ => {
            let mut line = format!("{name} {}", vs.scheduler);
            if !vs.scheduler_flags.is_empty() {
                let _ = write!(line, " ({})", vs.scheduler_flags.join(","));
            }
            if let Some(t) = vs.persistence_timeout {
                let _ = write!(line, " persistent {t}");
                if let Some(m) = &vs.persistence_mask {
                    let _ = write!(line, " mask {m}");
                }
            }
            if vs.ops {
                line += " ops";
            }
            let _ = writeln!(s, "{line}");
            // FullNAT's local addresses (no ipvsadm line has them: a line of their own,
            // which `->` parsers pass over).
            for l in &vs.local_addresses {
                let _ = writeln!(
                    s,
                    "  local {}: {} of {} ports in use",
                    l.address, l.ports_in_use, l.ports
                );
            }
        }
    }
}

fn dest(s: &mut String, vs: &VirtualServerRow, rs: &RealServerRow, req: Request) {
    let name = dest_name(vs, rs);
    match req.view {
        View::Stats => {
            let _ = writeln!(s, "  -> {name:<28}{}", stats(rs.totals, req.exact));
        }
        View::Rate => {
            let r = rs.rate.unwrap_or_default();
            let _ = writeln!(
                s,
                "  -> {name:<28} {:>8} {:>8} {:>8}{}",
                whole(r.cps),
                whole(r.in_pps),
                whole(r.out_pps),
                nums(&[whole(r.in_bps), whole(r.out_bps)], req.exact)
            );
        }
        View::Thresholds => {
            let (upper, lower) = rs.thresholds.unwrap_or((0, 0));
            let _ = writeln!(
                s,
                "  -> {name:<28} {upper:<10} {lower:<10} {:<10} {:<10}",
                rs.active_conns, rs.inactive_conns
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
                vs.forwarding,
                rs.weight.unwrap_or(0),
                rs.active_conns,
                rs.inactive_conns
            );
        }
    }
}

/// The five columns of `--stats`.
fn stats(t: super::rows::Totals, exact: bool) -> String {
    let n = [
        t.conns,
        t.in_packets,
        t.out_packets,
        t.in_bytes,
        t.out_bytes,
    ];
    nums(&n, exact)
}

/// A rate as the whole number IPVS keeps.
fn whole(x: f64) -> u64 {
    x.round() as u64
}

/// Numbers as ipvsadm prints its large ones: nine wide, or with K, M, G or T past a
/// hundred million; `exact`: every digit, one space before.
fn nums(n: &[u64], exact: bool) -> String {
    n.iter().map(|&i| largenum(i, exact)).collect()
}

fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let digits = i.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{digits:>width$}");
    }
    match i {
        0..100_000_000 => format!("{i:>9}"),
        100_000_000..1_000_000_000 => format!("{:>8}K", i / 1_000),
        1_000_000_000..100_000_000_000 => format!("{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => format!("{:>8}G", i / 1_000_000_000),
        _ => format!("{:>8}T", i / 1_000_000_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rates::Rate;
    use super::super::rows::Totals;
    use super::*;

    fn rs(addr: &str, port: u16, weight: Option<u32>, active: u64, inactive: u64) -> RealServerRow {
        RealServerRow {
            address: addr.parse().unwrap(),
            port,
            in_pool: weight.is_some(),
            weight,
            drained: false,
            overloaded: false,
            active_conns: active,
            inactive_conns: inactive,
            thresholds: None,
            sorry: false,
            state: if weight.is_some() { "up" } else { "down" },
            since: None,
            last_check: None,
            totals: Totals::default(),
            rate: None,
        }
    }

    fn vs(
        proto: &'static str,
        addr: &str,
        port: u16,
        sched: &'static str,
        fwd: &'static str,
        dests: Vec<RealServerRow>,
    ) -> VirtualServerRow {
        VirtualServerRow {
            name: "t".into(),
            protocol: proto,
            address: addr.parse().unwrap(),
            ports: vec![port],
            scheduler: sched,
            persistence_timeout: None,
            persistence_mask: None,
            scheduler_flags: vec![],
            ops: false,
            forwarding: fwd,
            local_addresses: vec![],
            totals: Totals::default(),
            rate: None,
            real_servers: dests,
        }
    }

    fn req(view: View) -> Request {
        Request {
            view,
            json: false,
            exact: false,
        }
    }

    /// `ipvsadm -Ln` for the same table, as it prints it (trailing spaces included:
    /// ipvsadm pads the last column too).
    #[test]
    fn the_table_is_ipvsadm_ln() {
        let mut web = vs(
            "tcp",
            "192.168.10.200",
            8080,
            "rr",
            "Route",
            vec![
                rs("192.168.10.111", 8080, Some(1), 0, 0),
                rs("192.168.10.100", 8080, Some(1), 3, 12),
                rs("192.168.10.120", 8080, None, 0, 0),
            ],
        );
        web.persistence_timeout = Some(360);
        web.persistence_mask = Some("255.255.255.0".into());
        let mut dns = vs(
            "udp",
            "10.0.0.10",
            53,
            "sh",
            "Masq",
            vec![rs("172.17.0.2", 53, Some(2), 0, 1)],
        );
        dns.scheduler_flags = vec!["sh-fallback", "sh-port"];
        dns.ops = true;
        let six = vs(
            "tcp",
            "2001:db8::100",
            80,
            "wlc",
            "Tunnel",
            vec![rs("2001:db8::11", 80, Some(5), 1, 0)],
        );
        let text = render(&[six, dns, web], req(View::Table), 4096);
        assert_eq!(
            text,
            "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.10.200:8080 rr persistent 360 mask 255.255.255.0
  -> 192.168.10.100:8080          Route   1      3          12        
  -> 192.168.10.111:8080          Route   1      0          0         
UDP  10.0.0.10:53 sh (sh-fallback,sh-port) ops
  -> 172.17.0.2:53                Masq    2      0          1         
TCP  [2001:db8::100]:80 wlc
  -> [2001:db8::11]:80            Tunnel  5      1          0         
"
        );
    }

    /// `ipvsadm -Ln --stats` and `--exact`, `--rate` and `--thresholds`.
    #[test]
    fn stats_rate_and_thresholds_are_ipvsadms() {
        let mut d = rs("10.0.0.11", 80, Some(1), 2, 0);
        d.totals = Totals {
            conns: 12,
            in_packets: 345,
            out_packets: 0,
            in_bytes: 123_456_789_012,
            out_bytes: 0,
        };
        d.rate = Some(Rate {
            cps: 1.4,
            in_pps: 20.0,
            out_pps: 0.0,
            in_bps: 2_000.0,
            out_bps: 0.0,
        });
        d.thresholds = Some((100, 80));
        let mut web = vs("tcp", "10.0.0.100", 80, "wrr", "Route", vec![d]);
        web.totals = web.real_servers[0].totals;
        web.rate = web.real_servers[0].rate;
        let rows = [web];
        assert_eq!(
            render(&rows, req(View::Stats), 4096),
            "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                      12      345        0     123G        0
  -> 10.0.0.11:80                       12      345        0     123G        0
"
        );
        let exact = Request {
            exact: true,
            ..req(View::Stats)
        };
        assert!(render(&rows, exact, 4096)
            .contains("\nTCP  10.0.0.100:80                      12      345        0 123456789012        0\n"));
        assert_eq!(
            render(&rows, req(View::Rate), 4096),
            "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       1       20        0     2000        0
  -> 10.0.0.11:80                        1       20        0     2000        0
"
        );
        assert_eq!(
            render(&rows, req(View::Thresholds), 4096),
            "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  10.0.0.100:80 wrr
  -> 10.0.0.11:80                 100        80         2          0         
"
        );
    }

    #[test]
    fn large_numbers_as_ipvsadm_shortens_them() {
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(5_000_000_000, false), "    5000M");
        assert_eq!(largenum(200_000_000_000_000, false), "     200T");
        assert_eq!(largenum(7, true), "        7");
        assert_eq!(largenum(1_234_567_890, true), " 1234567890");
    }
}
