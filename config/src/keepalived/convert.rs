//! keepalived.conf's statements into xvs YAML, saying what could not be converted.

use std::net::{IpAddr, Ipv4Addr};

use super::tree::Stmt;

/// The YAML being written and what was left behind.
struct Out {
    yaml: String,
    warnings: Vec<String>,
}

impl Out {
    fn warn(&mut self, s: &Stmt, why: &str) {
        self.warnings
            .push(format!("line {}: `{}` {why}", s.line, s.words.join(" ")));
    }

    fn line(&mut self, indent: usize, text: &str) {
        self.yaml.push_str(&" ".repeat(indent));
        self.yaml.push_str(text);
        self.yaml.push('\n');
    }
}

use crate::import::quote;

/// A number as written, when it is one; keepalived writes seconds as `3` or `0.5`.
fn number(s: &Stmt, out: &mut Out) -> Option<String> {
    match s.arg(0) {
        Some(v) if v.parse::<f64>().is_ok_and(f64::is_finite) => Some(v.to_string()),
        _ => {
            out.warn(s, "has no number: not converted");
            None
        }
    }
}

fn whole(s: &Stmt, out: &mut Out) -> Option<String> {
    match s.arg(0) {
        Some(v) if v.parse::<i64>().is_ok() => Some(v.to_string()),
        _ => {
            out.warn(s, "has no whole number: not converted");
            None
        }
    }
}

fn addr(word: Option<&str>) -> Option<Ipv4Addr> {
    word?.parse().ok()
}

fn ip(word: Option<&str>) -> Option<IpAddr> {
    word?.parse().ok()
}

/// The statements inside a block, for the other converters.
pub(super) fn inner_of(s: &Stmt) -> &[Stmt] {
    inner(s)
}

/// The statements inside a block (none when it has no block).
fn inner(s: &Stmt) -> &[Stmt] {
    s.block.as_deref().unwrap_or(&[])
}

/// Converts a whole file. `interface` overrides the director's interface (otherwise the
/// first VRRP instance's).
pub fn convert(stmts: &[Stmt], interface: Option<&str>) -> (String, Vec<String>) {
    let mut out = Out {
        yaml: String::new(),
        warnings: Vec::new(),
    };
    let mut version = None;
    let mut router_id = None;
    let mut rt_priority = None;
    let mut script_user = None;
    let mut script_security = false;
    let mut email = super::email::Email::default();
    let mut instances = Vec::new();
    let mut groups = Vec::new();
    let mut services = Vec::new();
    for s in stmts {
        match s.keyword() {
            "global_defs" => {
                for g in inner(s) {
                    match g.keyword() {
                        "router_id" => router_id = g.arg(0).map(str::to_string),
                        "vrrp_version" => version = whole(g, &mut out),
                        "vrrp_rt_priority" => rt_priority = whole(g, &mut out),
                        "script_user" => {
                            script_user = match g.args() {
                                [user] => Some(user.to_string()),
                                [user, group] => Some(format!("{user}:{group}")),
                                _ => {
                                    out.warn(g, "not converted: script_user takes a user and a group at most");
                                    None
                                }
                            }
                        }
                        "enable_script_security" => script_security = true,
                        _ if email.global(g, &mut |s, why| out.warn(s, why)) => {}
                        _ => out.warn(g, "in global_defs: not converted"),
                    }
                }
            }
            "vrrp_instance" => instances.push(s),
            "vrrp_sync_group" => groups.push(s),
            "virtual_server" => services.push(s),
            "vrrp_script" => out.warn(
                s,
                "not converted: xvs has no vrrp_script; a misc health check with `quorum_vrrp` lowers a priority instead",
            ),
            "virtual_server_group" => out.warn(
                s,
                "not converted: list the addresses as virtual servers, or several ports as `ports`",
            ),
            "include" => out.warn(s, "not followed: convert the included file too"),
            _ => out.warn(s, "not converted"),
        }
    }

    out.line(
        0,
        "# Converted from keepalived.conf by `xvs import-keepalived`.",
    );
    if let Some(id) = &router_id {
        out.line(0, &format!("# keepalived router_id: {id}"));
    }
    let iface = interface.map(str::to_string).or_else(|| {
        instances
            .iter()
            .find_map(|i| inner(i).iter().find(|s| s.keyword() == "interface"))
            .and_then(|s| s.arg(0).map(str::to_string))
    });
    let iface = iface.unwrap_or_else(|| {
        out.warnings.push(
            "no interface: keepalived.conf names none outside vrrp_instance; `eth0` written, pass --interface".into(),
        );
        "eth0".into()
    });
    out.line(0, &format!("interface: {}", quote(&iface)));
    if let Some(p) = &rt_priority {
        out.line(0, &format!("vrrp_realtime_priority: {p}"));
    }
    if let Some(u) = &script_user {
        out.line(0, &format!("script_user: {}", quote(u)));
    }
    if script_security {
        out.line(0, "enable_script_security: true");
    }
    if !services.is_empty() {
        out.line(0, "virtual_servers:");
        for s in services {
            virtual_server(s, &mut out);
        }
    }
    if !instances.is_empty() {
        out.line(0, "vrrp_instances:");
        for s in instances {
            vrrp_instance(s, version.as_deref(), &mut out);
        }
    }
    if !groups.is_empty() {
        out.line(0, "vrrp_sync_groups:");
        for s in groups {
            sync_group(s, &mut out);
        }
    }
    email.write(router_id.as_deref(), stmts, &mut out.yaml);
    (out.yaml, out.warnings)
}

fn sync_group(s: &Stmt, out: &mut Out) {
    out.line(
        2,
        &format!("- name: {}", quote(s.arg(0).unwrap_or("group"))),
    );
    for g in inner(s) {
        match g.keyword() {
            "group" => {
                out.line(4, "group:");
                for m in inner(g) {
                    for w in &m.words {
                        out.line(6, &format!("- {}", quote(w)));
                    }
                }
            }
            // Turns `email_alerts: { vrrp: true }` on (email.rs).
            "smtp_alert" => {}
            _ => out.warn(
                g,
                "in vrrp_sync_group: not converted (notify on the instances instead)",
            ),
        }
    }
}

fn vrrp_instance(s: &Stmt, version: Option<&str>, out: &mut Out) {
    out.line(2, &format!("- name: {}", quote(s.arg(0).unwrap_or("VI"))));
    // keepalived runs an instance of IPv6 addresses as VRRPv3 over IPv6, whatever
    // vrrp_version says.
    let ipv6 = inner(s)
        .iter()
        .filter(|i| i.keyword() == "virtual_ipaddress")
        .flat_map(inner)
        .any(|a| a.keyword().contains(':'));
    if ipv6 {
        out.line(4, "version: 3");
    } else if let Some(v) = version {
        out.line(4, &format!("version: {v}"));
    }
    for i in inner(s) {
        let k = i.keyword();
        match k {
            "state" => match i.arg(0).map(str::to_ascii_uppercase).as_deref() {
                Some(st @ ("MASTER" | "BACKUP")) => out.line(4, &format!("state: {st}")),
                _ => out.warn(i, "is neither MASTER nor BACKUP: not converted"),
            },
            "interface" => {
                if let Some(v) = i.arg(0) {
                    out.line(4, &format!("interface: {}", quote(v)));
                }
            }
            "virtual_router_id"
            | "priority"
            | "preempt_delay"
            | "garp_master_repeat"
            | "garp_master_refresh" => {
                if let Some(v) = whole(i, out) {
                    out.line(4, &format!("{k}: {v}"));
                }
            }
            "advert_int" => {
                if let Some(v) = number(i, out) {
                    out.line(4, &format!("advert_int: {v}"));
                }
            }
            "garp_interval" => {
                if let Some(v) = number(i, out) {
                    out.line(4, &format!("garp_interval: {v}"));
                }
            }
            "nopreempt" => out.line(4, "preempt: false"),
            "preempt" => out.line(4, "preempt: true"),
            "authentication" => {
                let get = |key: &str| {
                    inner(i)
                        .iter()
                        .find(|a| a.keyword() == key)
                        .and_then(|a| a.arg(0))
                };
                match (
                    get("auth_type").map(str::to_ascii_uppercase),
                    get("auth_pass"),
                ) {
                    (Some(t), Some(p)) if t == "PASS" => {
                        out.line(4, "authentication:");
                        out.line(6, "auth_type: PASS");
                        out.line(6, &format!("auth_pass: {}", quote(p)));
                    }
                    _ => out.warn(
                        i,
                        "is not `auth_type PASS` with a password: not converted (AH is deprecated)",
                    ),
                }
            }
            "virtual_ipaddress" => {
                out.line(4, "virtual_ipaddresses:");
                for a in inner(i) {
                    let ip = a.keyword();
                    if !a.args().is_empty() {
                        out.warn(
                            a,
                            "keeps only its address: xvs puts VIPs on the instance's interface",
                        );
                    }
                    out.line(6, &format!("- {}", quote(ip)));
                }
            }
            "unicast_src_ip" => match i.arg(0).and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
                Some(a) => out.line(4, &format!("unicast_src_ip: {}", quote(&a.to_string()))),
                None => out.warn(i, "is no IP address: not converted"),
            },
            // xvs checks by default (keepalived does not): said explicitly all the same.
            "check_unicast_src" => out.line(4, "check_unicast_src: true"),
            "unicast_peer" => {
                out.line(4, "unicast_peers:");
                for p in inner(i) {
                    out.line(6, &format!("- {}", quote(p.keyword())));
                }
            }
            "track_interface" => {
                out.line(4, "track_interfaces:");
                for t in inner(i) {
                    out.line(6, &format!("- {}", quote(t.keyword())));
                }
            }
            "notify_master" | "notify_backup" | "notify_fault" | "notify" => {
                if !i.args().is_empty() {
                    out.line(4, &format!("{k}: {}", quote(&i.args().join(" "))));
                }
            }
            "track_script" => out.warn(
                i,
                "not converted: xvs has no vrrp_script; see `quorum_vrrp`",
            ),
            // Turns `email_alerts: { vrrp: true }` on (email.rs).
            "smtp_alert" => {}
            _ => out.warn(i, "in vrrp_instance: not converted"),
        }
    }
}

/// keepalived's checker block as xvs's `health_check` lines, or None.
fn checker(c: &Stmt, delay_loop: Option<&str>, alpha: bool, out: &mut Out) -> Option<Vec<String>> {
    let kind = match c.keyword() {
        "TCP_CHECK" => "tcp",
        "HTTP_GET" => "http",
        "SSL_GET" => "https",
        "MISC_CHECK" => "misc",
        "UDP_CHECK" => "udp",
        _ => {
            out.warn(
                c,
                "not converted: xvs checks with TCP, HTTP_GET, SSL_GET, MISC_CHECK or UDP",
            );
            return None;
        }
    };
    let mut lines = vec![format!("type: {kind}")];
    let mut has_delay = false;
    let mut urls = 0;
    for f in inner(c) {
        let k = f.keyword();
        match k {
            "connect_timeout" | "delay_before_retry" | "warmup" | "misc_timeout" | "delay_loop" => {
                if let Some(v) = number(f, out) {
                    has_delay |= k == "delay_loop";
                    lines.push(format!("{k}: {v}"));
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(v) = whole(f, out) {
                    lines.push(format!("retry: {v}"));
                }
            }
            "connect_port" => {
                if let Some(v) = whole(f, out) {
                    lines.push(format!("connect_port: {v}"));
                }
            }
            "connect_ip" | "bindto" => {
                match f.arg(0).and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
                    Some(a) => lines.push(format!("{k}: {}", quote(&a.to_string()))),
                    None => out.warn(f, "is no IP address: not converted"),
                }
            }
            "misc_path" => lines.push(format!("misc_path: {}", quote(&f.args().join(" ")))),
            "misc_dynamic" => lines.push("misc_dynamic: true".into()),
            "virtualhost" => {
                if let Some(v) = f.arg(0) {
                    lines.push(format!("virtualhost: {}", quote(v)));
                }
            }
            "url" => {
                urls += 1;
                if urls > 1 {
                    out.warn(f, "not converted: xvs checks one URL per real server");
                    continue;
                }
                let mut codes = Vec::new();
                for u in inner(f) {
                    match (u.keyword(), u.arg(0)) {
                        ("path", Some(p)) => lines.push(format!("path: {}", quote(p))),
                        ("digest", Some(d)) => lines.push(format!("digest: {}", quote(d))),
                        ("status_code", Some(_)) => codes.extend(
                            u.args()
                                .iter()
                                .filter(|c| c.parse::<u16>().is_ok())
                                .cloned(),
                        ),
                        _ => out.warn(u, "in url: not converted"),
                    }
                }
                if !codes.is_empty() {
                    lines.push(format!("status_code: [{}]", codes.join(", ")));
                }
            }
            "user" if kind == "misc" => {
                out.warn(f, "not converted: misc scripts run as the xvs user (root)")
            }
            _ => out.warn(f, &format!("in {}: not converted", c.keyword())),
        }
    }
    if !has_delay {
        if let Some(d) = delay_loop {
            lines.insert(1, format!("delay_loop: {d}"));
        }
    }
    if alpha {
        lines.push("alpha: true".into());
    }
    Some(lines)
}

fn virtual_server(s: &Stmt, out: &mut Out) {
    let (Some(vip), Some(port)) = (ip(s.arg(0)), s.arg(1).and_then(|p| p.parse::<u16>().ok()))
    else {
        let why = if s.arg(0) == Some("fwmark") {
            "not converted: no firewall marks in xvs; give the ports as `ports: [80, 443]`"
        } else {
            "needs an address and a port: not converted"
        };
        return out.warn(s, why);
    };
    let body = inner(s);
    let get = |key: &str| body.iter().find(|f| f.keyword() == key);
    let proto = match get("protocol")
        .and_then(|p| p.arg(0))
        .map(str::to_ascii_lowercase)
    {
        Some(p) if p == "udp" => "udp",
        Some(p) if p != "tcp" => {
            out.warn(
                get("protocol").expect("found"),
                "is neither TCP nor UDP: TCP written",
            );
            "tcp"
        }
        _ => "tcp",
    };
    let kind = get("lb_kind")
        .or_else(|| get("lvs_method"))
        .and_then(|k| k.arg(0))
        .map(str::to_ascii_uppercase);
    let forwarding = match kind.as_deref() {
        None | Some("DR") => "dr",
        Some("NAT") => "nat",
        Some("TUN") => "tun",
        Some(_) => {
            let k = get("lb_kind").or_else(|| get("lvs_method")).expect("found");
            return out.warn(
                k,
                "is no method xvs has (DR, NAT, TUN): virtual server not converted",
            );
        }
    };
    let endpoint = match vip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    out.line(
        2,
        &format!("- name: {}", quote(&format!("{endpoint}/{proto}"))),
    );
    out.line(4, &format!("address: {vip}"));
    out.line(4, &format!("port: {port}"));
    out.line(4, &format!("protocol: {proto}"));
    out.line(4, &format!("forwarding: {forwarding}"));
    let delay_loop = get("delay_loop").and_then(|d| number(d, out));
    let alpha = get("alpha").is_some();
    let vs_inhibit = get("inhibit_on_failure").is_some();
    let mut real_servers = Vec::new();
    for f in body {
        let k = f.keyword();
        match k {
            "delay_loop" | "protocol" | "lb_kind" | "lvs_method" | "alpha" | "real_server"
            | "inhibit_on_failure" => {}
            "omega" => out.warn(
                f,
                "not converted: quorum scripts run on every crossing already",
            ),
            "lb_algo" | "lvs_sched" => match f.arg(0) {
                Some(a) if crate::model::Scheduler::from_name(a).is_some() => {
                    out.line(4, &format!("scheduler: {a}"))
                }
                _ => out.warn(f, "names no scheduler xvs has: wrr (the default) is used"),
            },
            "persistence_timeout" | "quorum" | "hysteresis" => {
                if let Some(v) = whole(f, out) {
                    out.line(4, &format!("{k}: {v}"));
                }
            }
            // keepalived takes a netmask for IPv4, a prefix length for IPv6.
            "persistence_granularity" => match (
                vip,
                addr(f.arg(0)),
                f.arg(0).and_then(|a| a.parse::<u8>().ok()),
            ) {
                (IpAddr::V4(_), Some(m), _) => {
                    out.line(4, &format!("persistence_granularity: {m}"))
                }
                (IpAddr::V6(_), None, Some(p)) if p <= 128 => {
                    out.line(4, &format!("persistence_granularity: {p}"))
                }
                (IpAddr::V4(_), ..) => out.warn(f, "is no IPv4 netmask: not converted"),
                (IpAddr::V6(_), ..) => out.warn(f, "is no IPv6 prefix length: not converted"),
            },
            "ops" => out.line(4, "ops: true"),
            "quorum_up" | "quorum_down" => {
                out.line(4, &format!("{k}: {}", quote(&f.args().join(" "))))
            }
            "sorry_server" => match ip(f.arg(0)).filter(|a| a.is_ipv6() == vip.is_ipv6()) {
                Some(a) => {
                    out.line(4, "sorry_server:");
                    out.line(6, &format!("address: {a}"));
                    if let Some(p) = f.arg(1).and_then(|p| p.parse::<u16>().ok()) {
                        out.line(6, &format!("port: {p}"));
                    }
                }
                None => out.warn(
                    f,
                    "is no address of the virtual server's family: not converted",
                ),
            },
            // Given to each HTTP and SSL check below.
            "virtualhost" => {}
            "ha_suspend" => out.warn(f, "not converted: xvs checks whether or not it is master"),
            // Turns `email_alerts: { checker: true }` on (email.rs).
            "smtp_alert" => {}
            _ => out.warn(f, "in virtual_server: not converted"),
        }
    }
    if vs_inhibit {
        out.line(4, "inhibit_on_failure: true");
    }
    let vhost = get("virtualhost").and_then(|v| v.arg(0));
    for r in body.iter().filter(|f| f.keyword() == "real_server") {
        if let Some(rs) = real_server(r, vip, delay_loop.as_deref(), alpha, vhost, out) {
            real_servers.push(rs);
        }
    }
    if real_servers.is_empty() {
        return;
    }
    // One check shared by every real server is written once, on the virtual server.
    let shared = real_servers[0].1.clone();
    let hoist = shared.is_some() && real_servers.iter().all(|r| r.1 == shared);
    if let (true, Some(check)) = (hoist, &shared) {
        out.line(4, "health_check:");
        for l in check {
            out.line(6, l);
        }
    }
    out.line(4, "real_servers:");
    for (lines, check) in real_servers {
        for (i, l) in lines.iter().enumerate() {
            out.line(
                if i == 0 { 6 } else { 8 },
                &format!("{}{l}", if i == 0 { "- " } else { "" }),
            );
        }
        if let (false, Some(check)) = (hoist, check) {
            out.line(8, "health_check:");
            for l in check {
                out.line(10, &l);
            }
        }
    }
}

/// A real server's own lines, and its check's.
type RealServerLines = (Vec<String>, Option<Vec<String>>);

fn real_server(
    r: &Stmt,
    vip: IpAddr,
    delay_loop: Option<&str>,
    alpha: bool,
    vhost: Option<&str>,
    out: &mut Out,
) -> Option<RealServerLines> {
    let Some(a) = ip(r.arg(0)).filter(|a| a.is_ipv6() == vip.is_ipv6()) else {
        out.warn(
            r,
            "needs an address of the virtual server's family: not converted",
        );
        return None;
    };
    let mut lines = vec![format!("address: {a}")];
    if let Some(p) = r.arg(1).and_then(|p| p.parse::<u16>().ok()) {
        lines.push(format!("port: {p}"));
    }
    let mut check = None;
    for f in inner(r) {
        let k = f.keyword();
        match k {
            "weight" => {
                if let Some(w) = whole(f, out) {
                    lines.push(format!("weight: {w}"));
                }
            }
            "inhibit_on_failure" => lines.push("inhibit_on_failure: true".into()),
            "uthreshold" | "lthreshold" => {
                if let Some(v) = whole(f, out) {
                    lines.push(format!("{k}: {v}"));
                }
            }
            "notify_up" | "notify_down" => {
                lines.push(format!("{k}: {}", quote(&f.args().join(" "))))
            }
            // Turns `email_alerts: { checker: true }` on (email.rs).
            "smtp_alert" => {}
            k if k.ends_with("_CHECK") || k == "HTTP_GET" || k == "SSL_GET" => {
                if check.is_some() {
                    out.warn(f, "not converted: xvs runs one check per real server");
                    continue;
                }
                check = checker(f, delay_loop, alpha, out).map(|mut c| {
                    if let Some(v) = vhost {
                        if matches!(k, "HTTP_GET" | "SSL_GET")
                            && !c.iter().any(|l| l.starts_with("virtualhost:"))
                        {
                            c.push(format!("virtualhost: {}", quote(v)));
                        }
                    }
                    c
                });
            }
            _ => out.warn(f, "in real_server: not converted"),
        }
    }
    Some((lines, check))
}
