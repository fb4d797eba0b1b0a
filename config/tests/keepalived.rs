//! `xvs import-keepalived` on complete keepalived.conf files: seed 000's and seed 004's
//! directors, and one with every checker. The YAML must validate and mean what the
//! keepalived.conf meant; what cannot be converted must be named with its line.

use std::path::Path;

use xvs_config::*;

fn fixture(name: &str) -> (String, keepalived::Import) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keepalived");
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let import = keepalived::import(&text, None);
    // The converted file is kept next to its source, for review; XVS_BLESS rewrites it.
    let yaml_path = dir.join(name.replace(".conf", ".yaml"));
    if std::env::var_os("XVS_BLESS").is_some() {
        std::fs::write(&yaml_path, &import.yaml).unwrap();
    }
    let kept = std::fs::read_to_string(&yaml_path).unwrap_or_default();
    assert_eq!(
        kept,
        import.yaml,
        "{} is out of date (XVS_BLESS=1)",
        yaml_path.display()
    );
    (name.to_string(), import)
}

fn load(name: &str, i: &keepalived::Import) -> Config {
    parse(name, &i.yaml).unwrap_or_else(|e| panic!("{e}\n---\n{}", i.yaml))
}

#[test]
fn seed_000_master() {
    let (name, i) = fixture("seed000-master.conf");
    let c = load(&name, &i);
    assert_eq!(c.interface.value, "enp1s0", "the VRRP instance's interface");
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.address.to_string(), vs.port()),
        ("172.17.13.252".into(), 80)
    );
    assert_eq!(vs.scheduler, Scheduler::Rr);
    assert_eq!(vs.forwarding, Forwarding::Dr);
    assert_eq!(vs.persistence.unwrap().timeout, 50);
    assert_eq!(vs.real_servers.len(), 2);
    for rs in &vs.real_servers {
        assert_eq!((rs.port, rs.weight), (80, 1));
        let hc = rs.health_check.as_ref().expect("TCP_CHECK");
        assert_eq!(hc.kind, CheckKind::Tcp);
        assert_eq!(
            (
                hc.delay_loop_ms,
                hc.timeout_ms,
                hc.retry,
                hc.delay_before_retry_ms
            ),
            (3000, 10_000, 3, 3000)
        );
        assert_eq!(hc.connect_port, Some(80));
    }
    let vi = &c.vrrp_instances[0];
    assert_eq!((vi.vrid, vi.priority, vi.advert_int_cs), (62, 200, 100));
    assert!(vi.start_as_master);
    assert_eq!(vi.password.as_deref(), Some("1111"));
    assert_eq!(vi.virtual_ipaddresses[0].0.to_string(), "172.17.13.252");
    assert_eq!(i.warnings, Vec::<String>::new(), "all of it converts");
}

#[test]
fn seed_004_lvs_dr() {
    let (name, i) = fixture("seed004-lvs-dr.conf");
    let c = load(&name, &i);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.real_servers.iter().map(|r| r.weight).collect::<Vec<_>>(),
        [3, 3]
    );
    assert_eq!(
        vs.real_servers[0].health_check.as_ref().unwrap().retry,
        3,
        "nb_get_retry"
    );
    assert_eq!(c.vrrp_instances[0].password.as_deref(), Some("forlvs"));
    // The e-mail settings, with keepalived's defaults: real servers' alerts on (no
    // smtp_alert anywhere), VRRP's off; the subjects' name is the router_id.
    let e = c.email_alerts.as_ref().expect("email_alerts");
    assert_eq!(e.to, ["admin@tarena.com.cn"]);
    assert_eq!(e.from.as_deref(), Some("ka@localhost"));
    assert_eq!(e.server, "192.168.20.1:25".parse().unwrap());
    assert_eq!(e.timeout_ms, 30_000);
    assert_eq!((e.vrrp, e.checker), (false, true));
    assert_eq!(e.router_id.as_deref(), Some("LVS_devel"));
    assert_eq!(i.warnings, Vec::<String>::new(), "all of it converts");
}

#[test]
fn smtp_alert_keywords_turn_each_kind_on_or_off() {
    let conf = |extra_global: &str, instance: &str| {
        format!(
            "global_defs {{\n notification_email {{\n a@example.org\n }}\n smtp_server 10.0.0.9 2525\n {extra_global}\n}}\n\
             vrrp_instance VI_1 {{\n state MASTER\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {{\n 10.0.0.100\n }}\n {instance}\n}}\n"
        )
    };
    let alerts = |text: String| {
        let i = keepalived::import(&text, None);
        let c = parse("t", &i.yaml).unwrap_or_else(|e| panic!("{e}\n{}", i.yaml));
        assert_eq!(i.warnings, Vec::<String>::new());
        let e = c.email_alerts.expect("email_alerts");
        assert_eq!(e.server, "10.0.0.9:2525".parse().unwrap());
        (e.vrrp, e.checker)
    };
    assert_eq!(alerts(conf("", "")), (false, true), "keepalived's defaults");
    assert_eq!(
        alerts(conf("", "smtp_alert")),
        (true, true),
        "the instance's"
    );
    assert_eq!(alerts(conf("smtp_alert false", "")), (false, false));
    assert_eq!(alerts(conf("smtp_alert", "")), (true, true));
    assert_eq!(alerts(conf("smtp_alert_checker off", "")), (false, false));
    // No recipient: keepalived sends nothing, and neither section is written.
    let none = keepalived::import("global_defs {\n smtp_server 10.0.0.9\n}\n", None);
    assert!(!none.yaml.contains("email_alerts"), "{}", none.yaml);
}

#[test]
fn every_checker_and_what_cannot_be_converted() {
    let (name, i) = fixture("checkers-nat.conf");
    let c = load(&name, &i);
    let web = &c.virtual_servers[0];
    assert_eq!(
        (web.forwarding, web.scheduler),
        (Forwarding::Nat, Scheduler::Wlc)
    );
    assert_eq!((web.quorum, web.hysteresis), (2, 1));
    assert_eq!(web.sorry_server, Some(("10.1.0.50".parse().unwrap(), 80)));
    let [http, https, misc] = &web.real_servers[..] else {
        panic!("three real servers: {web:?}")
    };
    assert!(http.inhibit_on_failure);
    let hc = http.health_check.as_ref().unwrap();
    assert!(hc.alpha, "the virtual server's alpha");
    assert_eq!(hc.delay_loop_ms, 5000, "the virtual server's delay_loop");
    match &hc.kind {
        CheckKind::Http {
            path,
            status_codes,
            virtualhost,
            tls: None,
            ..
        } => {
            assert_eq!(path, "/health");
            assert_eq!(status_codes, &[200]);
            assert_eq!(virtualhost.as_deref(), Some("www.example.test"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &https.health_check.as_ref().unwrap().kind,
        CheckKind::Http { tls: Some(_), digest: Some(d), .. } if d == "9b3a0c85a887a256d6939da88aabd8cd"
    ));
    assert!(matches!(
        &misc.health_check.as_ref().unwrap().kind,
        CheckKind::Misc { script, dynamic: true } if script == "/usr/local/bin/check 10.1.0.13"
    ));
    let dns = &c.virtual_servers[1];
    assert_eq!(
        (dns.protocol, dns.scheduler, dns.ops),
        (Protocol::Udp, Scheduler::Sh, true)
    );
    assert!(matches!(
        dns.real_servers[0].health_check.as_ref().unwrap().kind,
        CheckKind::Udp { .. }
    ));
    assert!(
        dns.real_servers[1].health_check.is_none(),
        "DNS_CHECK is not converted"
    );
    let ext = &c.vrrp_instances[0];
    assert_eq!(
        (ext.version, ext.advert_int_cs, ext.preempt),
        (3, 50, false)
    );
    assert_eq!(
        ext.unicast_peers,
        ["192.0.2.3".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(ext.track_interfaces[0].value, "eth1");
    assert_eq!(ext.sync_group.as_deref(), Some("VG_1"));
    assert_eq!(c.vrrp_instances[1].sync_group.as_deref(), Some("VG_1"));

    let w = i.warnings.join("\n");
    for needle in [
        "line 9: `vrrp_script chk_haproxy` not converted: xvs has no vrrp_script",
        "line 33: `192.0.2.100/24 dev eth0 label eth0:vip` keeps only its address",
        "line 38: `track_script` not converted",
        "line 76: `url` not converted: xvs checks one URL per real server",
        "line 99: `user nobody` not converted",
        "line 112: `payload ping` in UDP_CHECK: not converted",
        "line 116: `DNS_CHECK` not converted",
        "line 123: `virtual_server fwmark 1` not converted: no firewall marks in xvs",
    ] {
        assert!(w.contains(needle), "{needle:?} in\n{w}");
    }
    assert_eq!(i.warnings.len(), 8, "nothing else is lost:\n{w}");
}

#[test]
fn scheduler_names_are_the_configs() {
    for s in Scheduler::ALL.map(Scheduler::as_str) {
        let yaml = format!(
            "interface: eth0\nvirtual_servers:\n  - {{ name: a, address: 10.0.0.1, port: 80, protocol: tcp, scheduler: {s} }}\n"
        );
        assert!(parse("t.yaml", &yaml).is_ok(), "{s}");
    }
}

/// Any prefix of a real file (an unclosed block, half a word, a lone quote) converts
/// without panicking, and the structural walk survives every prefix of a YAML file too.
#[test]
fn truncated_files_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "seed000-master.conf",
        "seed004-lvs-dr.conf",
        "checkers-nat.conf",
    ] {
        let text = std::fs::read_to_string(dir.join("tests/keepalived").join(name)).unwrap();
        for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            let i = keepalived::import(&text[..cut], Some("eth0"));
            let _ = parse("cut.yaml", &i.yaml);
        }
    }
    let yaml = std::fs::read_to_string(dir.join("examples/vrrp-dr.yaml")).unwrap();
    for cut in (0..yaml.len()).filter(|&i| yaml.is_char_boundary(i)) {
        let _ = parse("cut.yaml", &yaml[..cut]);
    }
}

/// keepalived runs an instance of IPv6 addresses as VRRPv3 over IPv6: the conversion
/// says `version: 3` whatever `vrrp_version` is, and keeps the peers.
#[test]
fn an_ipv6_instance_converts_as_version_3() {
    let text = "global_defs {\n  vrrp_version 2\n}\nvrrp_instance VI_6 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 61\n  priority 100\n  unicast_src_ip 2001:db8::2\n  unicast_peer {\n    2001:db8::3\n  }\n  virtual_ipaddress {\n    2001:db8::100/64\n  }\n}\n";
    let i = keepalived::import(text, None);
    let c = load("ipv6.conf", &i);
    let v = &c.vrrp_instances[0];
    assert_eq!(v.version, 3);
    assert_eq!(
        v.virtual_ipaddresses,
        [("2001:db8::100".parse().unwrap(), 64)]
    );
    assert_eq!(
        v.unicast_peers,
        ["2001:db8::3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn an_ipv6_director_converts() {
    let (name, i) = fixture("ipv6-dr.conf");
    let c = load(&name, &i);
    assert_eq!(c.virtual_servers.len(), 2);
    assert_eq!(c.virtual_servers[1].forwarding, Forwarding::Nat, "NAT66");
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.name, "[2001:db8::100]:80/tcp");
    assert_eq!(
        vs.address,
        "2001:db8::100".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(vs.persistence.unwrap().prefix6, 64);
    assert_eq!(vs.sorry_server, Some(("2001:db8::99".parse().unwrap(), 80)));
    assert_eq!(
        vs.real_servers
            .iter()
            .map(|r| (r.address.to_string(), r.weight))
            .collect::<Vec<_>>(),
        [("2001:db8::11".into(), 3), ("2001:db8::12".into(), 1)]
    );
    assert!(vs.real_servers[0].health_check.is_some());
    assert_eq!(c.vrrp_instances[0].version, 3, "IPv6 VRRP is VRRPv3");
    let w = i.warnings.join("\n");
    assert!(
        w.contains(
            "line 34: `real_server 10.0.0.13 80` needs an address of the virtual server's family"
        ),
        "{w}"
    );
    assert_eq!(i.warnings.len(), 1, "{w}");
}

/// keepalived's `vrrp_rt_priority` carries over; without it xvs's own default (10)
/// applies, and `0` turns real-time scheduling off.
#[test]
fn the_vrrp_realtime_priority_converts() {
    let inst = "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  virtual_ipaddress {\n    10.0.0.100\n  }\n}\n";
    let i = keepalived::import(
        &format!("global_defs {{\n  vrrp_rt_priority 50\n}}\n{inst}"),
        None,
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    assert_eq!(load("rt.conf", &i).vrrp_realtime_priority, Some(50));
    let plain = keepalived::import(inst, None);
    assert_eq!(load("plain.conf", &plain).vrrp_realtime_priority, Some(10));
    let off =
        xvs_config::parse("off.yaml", "interface: eth0\nvrrp_realtime_priority: 0\n").unwrap();
    assert_eq!(off.vrrp_realtime_priority, None);
}

/// keepalived's `script_user` and `enable_script_security` carry over.
#[test]
fn script_user_and_security_convert() {
    let inst = "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  virtual_ipaddress {\n    10.0.0.100\n  }\n  notify_master \"/etc/keepalived/master.sh 'two words'\"\n}\n";
    let i = keepalived::import(
        &format!("global_defs {{\n  script_user keepalived_script adm\n  enable_script_security\n}}\n{inst}"),
        None,
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    let c = load("scripts.conf", &i);
    assert_eq!(
        c.script_user,
        Some(xvs_config::ScriptUser {
            user: "keepalived_script".into(),
            group: Some("adm".into())
        })
    );
    assert!(c.enable_script_security);
    let script = c.vrrp_instances[0].notify_master.clone().unwrap();
    assert_eq!(
        xvs_config::script::argv(&script).unwrap(),
        ["/etc/keepalived/master.sh", "two words"],
        "the script keeps keepalived's meaning"
    );
}
