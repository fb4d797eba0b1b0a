//! `xvs import-ipvsadm`: the rules `ipvsadm-save -n` prints (the file the ipvsadm
//! service keeps, `/etc/sysconfig/ipvsadm`), or the same `-A`/`-a` lines typed by hand,
//! as xvs YAML. A firewall-mark service gets its addresses and ports from the iptables
//! mangle rules that set its mark (`iptables-save` output), as `ports:`.
//!
//! - `rules.rs`: ipvsadm's lines, applied in order to a table of services
//! - `marks.rs`: the MARK rules of iptables

mod marks;
mod rules;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::import::{in_file_order, quote, Import};
use crate::model::Scheduler;
use marks::{MarkRule, Proto};
use rules::{Method, Service, ServiceKey};

/// One xvs virtual server to write: an ipvsadm service, or a part of a firewall-mark one.
struct Vs<'a> {
    name: String,
    addr: IpAddr,
    proto: &'static str,
    /// One port (0: every port), or several as `ports:`.
    ports: Vec<u16>,
    svc: &'a Service,
}

/// Per (address, protocol) a firewall mark's MARK rules name: their ports (`None`: every
/// port).
type Groups = BTreeMap<(IpAddr, &'static str), Option<Vec<u16>>>;

/// The virtual servers a firewall-mark service stands for: one per (address, protocol)
/// its MARK rules name, with the union of their ports.
fn fwmark_parts<'a>(
    svc: &'a Service,
    mark: u32,
    rules: &[MarkRule],
    warnings: &mut Vec<String>,
) -> Vec<Vs<'a>> {
    let groups = mark_groups(mark, rules);
    if groups.is_empty() {
        warnings.push(format!(
            "line {}: firewall mark {mark}: no iptables MARK rule sets it (give `--iptables` the `iptables-save` output): not converted",
            svc.line
        ));
        return Vec::new();
    }
    if groups.len() > 1 && svc.persistent.is_some() {
        warnings.push(format!(
            "line {}: firewall mark {mark} spans {} address/protocol pairs: each is a virtual server, and persistence spans only the ports of one",
            svc.line,
            groups.len()
        ));
    }
    let single = groups.len() == 1;
    groups
        .into_iter()
        .map(|((addr, proto), ports)| Vs {
            name: if single {
                format!("fwmark-{mark}")
            } else {
                format!("fwmark-{mark}-{addr}/{proto}")
            },
            addr,
            proto,
            ports: port_list(ports),
            svc,
        })
        .collect()
}

/// The MARK rules setting `mark`, grouped.
fn mark_groups(mark: u32, rules: &[MarkRule]) -> Groups {
    let mut groups = Groups::new();
    for r in rules.iter().filter(|r| r.mark == mark) {
        let protos: &[&'static str] = match r.proto {
            Some(Proto::Tcp) => &["tcp"],
            Some(Proto::Udp) => &["udp"],
            None => &["tcp", "udp"],
        };
        for &p in protos {
            let slot = groups.entry((r.addr.into(), p)).or_insert(Some(Vec::new()));
            match (slot.as_mut(), r.ports.is_empty()) {
                // A rule for every port covers the others.
                (_, true) => *slot = None,
                (Some(list), false) => list.extend(&r.ports),
                (None, false) => {}
            }
        }
    }
    groups
}

/// A group's ports, sorted, each once; `[0]` (every port) when it names none.
fn port_list(ports: Option<Vec<u16>>) -> Vec<u16> {
    let mut ports = ports.unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        ports.push(0);
    }
    ports
}

/// The forwarding of a service: xvs has one per virtual server, ipvsadm one per real
/// server; those that differ from the first are left out, and said.
fn forwarding(svc: &Service, warnings: &mut Vec<String>) -> Method {
    let first = svc.servers.first().map_or(Method::Dr, |r| r.method);
    for r in svc.servers.iter().filter(|r| r.method != first) {
        warnings.push(format!(
            "line {}: real server {} is {} while the service's first is {}: xvs forwards a virtual server's real servers one way; it is left out",
            r.line,
            r.addr,
            r.method.as_str(),
            first.as_str()
        ));
    }
    first
}

/// `-b`'s flags in xvs's names, for sh and mh.
fn flags(svc: &Service, warnings: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for f in &svc.flags {
        let name = match (svc.scheduler.as_str(), f.as_str()) {
            (s @ ("sh" | "mh"), "flag-1") => format!("{s}-fallback"),
            (s @ ("sh" | "mh"), "flag-2") => format!("{s}-port"),
            ("sh", "sh-port" | "sh-fallback") | ("mh", "mh-port" | "mh-fallback") => f.clone(),
            _ => {
                warnings.push(format!(
                    "line {}: scheduler flag `{f}` with {}: xvs has sh-port, sh-fallback (sh) and mh-port, mh-fallback (mh): not converted",
                    svc.line, svc.scheduler
                ));
                continue;
            }
        };
        out.push(name);
    }
    out
}

/// What a range of the written YAML came from, so that a validation error there can be
/// traced back to an ipvsadm line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Elem {
    Timeouts,
    Vs(usize),
    Rs(usize, usize),
}

/// The YAML being written, and the element each line belongs to.
#[derive(Default)]
struct Writer {
    yaml: String,
    lines: Vec<Option<Elem>>,
}

impl Writer {
    fn put(&mut self, elem: Option<Elem>, text: &str) {
        self.yaml.push_str(text);
        self.yaml.push('\n');
        self.lines.push(elem);
    }

    /// The innermost element that wrote (1-based) YAML line `n`.
    fn at(&self, n: u64) -> Option<Elem> {
        self.lines
            .get((n as usize).checked_sub(1)?)
            .copied()
            .flatten()
    }
}

/// How one virtual server is written, decided once (so a rewrite warns once).
struct Plan {
    method: Method,
    scheduler: &'static str,
    flags: Vec<String>,
}

fn plan(svc: &Service, warnings: &mut Vec<String>) -> Plan {
    let method = forwarding(svc, warnings);
    let scheduler = match Scheduler::from_name(&svc.scheduler) {
        Some(s) => s.as_str(),
        None => {
            warnings.push(format!(
                "line {}: scheduler `{}` is none xvs has: wlc (ipvsadm's default) written",
                svc.line, svc.scheduler
            ));
            "wlc"
        }
    };
    Plan {
        method,
        scheduler,
        flags: flags(svc, warnings),
    }
}

fn write_vs(i: usize, vs: &Vs, plan: &Plan, dropped: &[Elem], w: &mut Writer) {
    let e = Some(Elem::Vs(i));
    write_service(e, vs, plan, w);
    write_persistence(e, vs.svc, w);
    write_real_servers(i, vs, plan, dropped, w);
}

/// The keys that name the service and say how it schedules and forwards.
fn write_service(e: Option<Elem>, vs: &Vs, plan: &Plan, w: &mut Writer) {
    w.put(e, &format!("  - name: {}", quote(&vs.name)));
    w.put(e, &format!("    address: {}", vs.addr));
    match vs.ports.as_slice() {
        [p] => w.put(e, &format!("    port: {p}")),
        many => {
            let list: Vec<String> = many.iter().map(u16::to_string).collect();
            w.put(e, &format!("    ports: [{}]", list.join(", ")));
        }
    }
    w.put(e, &format!("    protocol: {}", vs.proto));
    w.put(e, &format!("    forwarding: {}", plan.method.as_str()));
    w.put(e, &format!("    scheduler: {}", plan.scheduler));
    if !plan.flags.is_empty() {
        w.put(
            e,
            &format!("    scheduler_flags: [{}]", plan.flags.join(", ")),
        );
    }
}

/// `-p`, `-M` and `-o`.
fn write_persistence(e: Option<Elem>, svc: &Service, w: &mut Writer) {
    if let Some(t) = svc.persistent {
        w.put(e, &format!("    persistence_timeout: {t}"));
    }
    match svc.netmask {
        Some(crate::raw::Granularity::Netmask(m)) => {
            w.put(e, &format!("    persistence_granularity: {m}"))
        }
        Some(crate::raw::Granularity::Prefix(p)) => {
            w.put(e, &format!("    persistence_granularity: {p}"))
        }
        None => {}
    }
    if svc.ops {
        w.put(e, "    ops: true");
    }
}

/// The real servers forwarded the service's way and not `dropped`.
fn write_real_servers(i: usize, vs: &Vs, plan: &Plan, dropped: &[Elem], w: &mut Writer) {
    let servers: Vec<(usize, &rules::Server)> = vs
        .svc
        .servers
        .iter()
        .enumerate()
        .filter(|(j, r)| r.method == plan.method && !dropped.contains(&Elem::Rs(i, *j)))
        .collect();
    let e = Some(Elem::Vs(i));
    if servers.is_empty() {
        w.put(e, "    real_servers: []");
        return;
    }
    w.put(e, "    real_servers:");
    for (j, r) in servers {
        let e = Some(Elem::Rs(i, j));
        w.put(e, &format!("      - address: {}", r.addr));
        // A several-port service's real servers take the port each packet came to.
        if let (Some(p), [_]) = (r.port, vs.ports.as_slice()) {
            w.put(e, &format!("        port: {p}"));
        }
        w.put(e, &format!("        weight: {}", r.weight));
        // ipvsadm's 0 is no threshold.
        if r.upper > 0 {
            w.put(e, &format!("        uthreshold: {}", r.upper));
            if r.lower > 0 {
                w.put(e, &format!("        lthreshold: {}", r.lower));
            }
        }
    }
}

/// The YAML without the `dropped` elements.
fn write(
    iface: &str,
    timeouts: Option<(usize, [u32; 3])>,
    all: &[Vs],
    plans: &[Plan],
    dropped: &[Elem],
) -> Writer {
    let mut w = Writer::default();
    w.put(
        None,
        "# Converted from ipvsadm rules by `xvs import-ipvsadm`.",
    );
    w.put(None, &format!("interface: {}", quote(iface)));
    if let Some((line, [tcp, tcpfin, udp])) =
        timeouts.filter(|_| !dropped.contains(&Elem::Timeouts))
    {
        let set: Vec<String> = [("tcp", tcp), ("tcpfin", tcpfin), ("udp", udp)]
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if !set.is_empty() {
            w.put(None, &format!("# --set, line {line}"));
            w.put(
                Some(Elem::Timeouts),
                &format!("timeouts: {{ {} }}", set.join(", ")),
            );
        }
    }
    let kept: Vec<usize> = (0..all.len())
        .filter(|i| !dropped.contains(&Elem::Vs(*i)))
        .collect();
    if !kept.is_empty() {
        w.put(None, "virtual_servers:");
        for i in kept {
            write_vs(i, &all[i], &plans[i], dropped, &mut w);
        }
    }
    w
}

/// Writes the YAML; each element the validator refuses is left out, with its error as
/// the warning on its ipvsadm line, until what is left validates. The validator stays the
/// one judge of what xvs accepts.
fn write_valid(
    iface: &str,
    timeouts: Option<(usize, [u32; 3])>,
    all: &[Vs],
    plans: &[Plan],
    warnings: &mut Vec<String>,
) -> String {
    let mut dropped = Vec::new();
    loop {
        let w = write(iface, timeouts, all, plans, &dropped);
        let Err(errors) = crate::parse("converted.yaml", &w.yaml) else {
            return w.yaml;
        };
        let before = dropped.len();
        for d in &errors.diagnostics {
            let Some(elem) = w.at(d.line) else { continue };
            if dropped.contains(&elem) {
                continue;
            }
            let (line, what) = match elem {
                Elem::Timeouts => (timeouts.map_or(0, |t| t.0), "--set".to_string()),
                Elem::Vs(i) => (all[i].svc.line, format!("service {}", all[i].name)),
                Elem::Rs(i, j) => {
                    let r = &all[i].svc.servers[j];
                    (r.line, format!("real server {} of {}", r.addr, all[i].name))
                }
            };
            warnings.push(format!(
                "line {line}: {what} not converted: xvs refuses it: {}",
                d.message
            ));
            dropped.push(elem);
        }
        // An error outside every element (none is expected): give the YAML as it is,
        // and the caller's validation shows the error.
        if dropped.len() == before {
            return w.yaml;
        }
    }
}

/// The `iptables-save` output giving firewall marks their addresses, and its name for
/// the warnings about its lines.
pub struct Marks<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// Converts `ipvsadm` rules, with `iptables` for firewall-mark services. `interface`
/// names the director's interface.
pub fn import(ipvsadm: &str, iptables: Option<Marks>, interface: Option<&str>) -> Import {
    let (table, mut warnings) = rules::read(ipvsadm);
    let (marks, mark_warnings) = iptables
        .as_ref()
        .map(|m| marks::read(m.text))
        .unwrap_or_default();
    let iface = interface.unwrap_or_else(|| {
        warnings
            .push("no interface: ipvsadm rules name none; `eth0` written, pass --interface".into());
        "eth0"
    });
    let mut all = Vec::new();
    for svc in &table.services {
        let proto = match svc.key {
            ServiceKey::Tcp(..) => "tcp",
            _ => "udp",
        };
        match svc.key {
            ServiceKey::Tcp(a, p) | ServiceKey::Udp(a, p) => all.push(Vs {
                name: match a {
                    IpAddr::V4(v4) => format!("{v4}:{p}/{proto}"),
                    IpAddr::V6(v6) => format!("[{v6}]:{p}/{proto}"),
                },
                addr: a,
                proto,
                ports: vec![p],
                svc,
            }),
            ServiceKey::Fwmark(m) => all.extend(fwmark_parts(svc, m, &marks, &mut warnings)),
        }
    }
    let plans: Vec<Plan> = all.iter().map(|v| plan(v.svc, &mut warnings)).collect();
    let yaml = write_valid(iface, table.timeouts, &all, &plans, &mut warnings);
    in_file_order(&mut warnings);
    // A firewall mark's parts share their service's line and its warnings.
    warnings.dedup();
    // The iptables file's lines are another file's: they come last, named.
    if let Some(m) = &iptables {
        warnings.extend(
            mark_warnings
                .into_iter()
                .map(|w| format!("{}, {w}", m.name)),
        );
    }
    Import { yaml, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_marks(ipvs: &str, iptables: &str) -> Import {
        let marks = Marks {
            name: "m",
            text: iptables,
        };
        import(ipvs, Some(marks), Some("eth0"))
    }

    fn valid(i: &Import) -> crate::Config {
        crate::parse("converted.yaml", &i.yaml)
            .unwrap_or_else(|e| panic!("{e}\n{}\n{:?}", i.yaml, i.warnings))
    }

    #[test]
    fn services_and_their_options_convert() {
        let i = import(
            "-A -t 10.0.0.100:80 -s wrr -p 120 -M 255.255.255.0\n-a -t 10.0.0.100:80 -r 10.0.0.2:80 -g -w 3 -x 100 -y 50\n-a -t 10.0.0.100:80 -r 10.0.0.3 -g -w 0\n-A -u 10.0.0.100:53 -s sh -b flag-2,sh-fallback -o\n-a -u 10.0.0.100:53 -r 10.0.0.2:5353 -m\n--set 600 0 60\n",
            None,
            Some("bond0"),
        );
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        let c = valid(&i);
        assert_eq!(c.interface.value, "bond0");
        let web = &c.virtual_servers[0];
        assert_eq!(web.scheduler, Scheduler::Wrr);
        assert_eq!(web.persistence.unwrap().timeout, 120);
        assert_eq!(web.real_servers[0].weight, 3);
        assert_eq!(web.real_servers[1].weight, 0);
        let t = web.real_servers[0].thresholds.unwrap();
        assert_eq!((t.upper, t.lower), (100, 50));
        assert_eq!(web.real_servers[1].thresholds, None);
        let dns = &c.virtual_servers[1];
        assert_eq!(dns.forwarding, crate::Forwarding::Nat);
        assert!(dns.ops && dns.scheduler_flags.port && dns.scheduler_flags.fallback);
        assert_eq!(dns.real_servers[0].port, 5353);
        assert_eq!(c.timeouts.tcp, 600);
        assert_eq!(c.timeouts.udp, 60);
    }

    #[test]
    fn no_scheduler_is_ipvsadms_wlc_and_no_interface_is_said() {
        let i = import(
            "-A -t 1.1.1.1:80\n-a -t 1.1.1.1:80 -r 2.2.2.2\n",
            None,
            None,
        );
        assert_eq!(valid(&i).virtual_servers[0].scheduler, Scheduler::Wlc);
        assert!(
            i.warnings[0].contains("pass --interface"),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn a_firewall_mark_takes_its_addresses_and_ports_from_iptables() {
        let ipvs = "-A -f 99 -s rr -p 300\n-a -f 99 -r 172.17.1.7:0 -g -w 1\n-a -f 99 -r 172.17.22.22:0 -g -w 1\n";
        let ipt = "*mangle\n-A PREROUTING -d 172.17.100.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x63/0xffffffff\n-A PREROUTING -d 172.17.100.100/32 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x63/0xffffffff\nCOMMIT\n";
        let i = with_marks(ipvs, ipt);
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        let c = valid(&i);
        let vs = &c.virtual_servers[0];
        assert_eq!(vs.name, "fwmark-99");
        assert_eq!(vs.ports, vec![80, 443]);
        assert_eq!(vs.persistence.unwrap().timeout, 300);
        assert_eq!(vs.real_servers.len(), 2);
        // Without the marks there is nothing to serve: said, not guessed.
        let i = import(ipvs, None, Some("eth0"));
        assert!(i.warnings[0].contains("--iptables"), "{:?}", i.warnings);
        valid(&i);
    }

    #[test]
    fn a_mark_on_two_addresses_is_two_virtual_servers() {
        let ipvs = "-A -f 7 -s rr -p\n-a -f 7 -r 10.0.0.2 -g\n";
        let ipt = "*mangle\n-A PREROUTING -d 10.0.0.100 -p tcp --dport 80 -j MARK --set-mark 7\n-A PREROUTING -d 10.0.0.101 -j MARK --set-mark 7\n";
        let i = with_marks(ipvs, ipt);
        let c = valid(&i);
        let names: Vec<&str> = c.virtual_servers.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fwmark-7-10.0.0.100/tcp",
                "fwmark-7-10.0.0.101/tcp",
                "fwmark-7-10.0.0.101/udp"
            ]
        );
        assert_eq!(c.virtual_servers[1].ports, vec![0]);
        assert!(
            i.warnings[0].contains("persistence spans"),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn mixed_methods_and_unknown_flags_are_said() {
        let i = import(
            "-A -t 1.1.1.1:80 -s rr -b sh-port\n-a -t 1.1.1.1:80 -r 2.2.2.2 -g\n-a -t 1.1.1.1:80 -r 2.2.2.3 -m\n",
            None,
            Some("eth0"),
        );
        let c = valid(&i);
        assert_eq!(c.virtual_servers[0].real_servers.len(), 1);
        let w = i.warnings.join("\n");
        assert!(
            w.contains("line 1: scheduler flag `sh-port` with rr"),
            "{w}"
        );
        assert!(w.contains("line 3: real server 2.2.2.3 is nat"), "{w}");
    }
}
