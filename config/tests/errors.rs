//! Every example validates, and every kind of mistake is reported at its line:column.

use xvs_config::*;

fn errors(yaml: &str) -> String {
    parse("t.yaml", yaml).unwrap_err().to_string()
}

const GOOD: &str = "interface: eth0
virtual_servers:
  - name: web
    address: 10.0.0.100
    port: 80
    protocol: tcp
    scheduler: wrr
    forwarding: dr
    real_servers:
      - { address: 10.0.0.11, port: 80, weight: 3 }
      - { address: 10.0.0.12, weight: 0 }
";

#[test]
fn examples_validate() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut n = 0;
    // The examples and those in their folders (ecmp/).
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
    }
    assert!(n >= 6);
}

#[test]
fn the_issue_shape_parses() {
    let c = parse("t.yaml", GOOD).unwrap();
    assert_eq!(c.interface.value, "eth0");
    assert_eq!((c.interface.line, c.interface.column), (1, 12));
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.scheduler, Scheduler::Wrr);
    assert_eq!(vs.real_servers[1].port, 80, "port defaults to the VIP's");
    assert_eq!(vs.real_servers[1].weight, 0);
    assert_eq!(c.flow_table_size, DEFAULT_FLOW_TABLE_SIZE);
    assert_eq!(c.timeouts, Timeouts::default());
    assert_eq!(
        c.metrics_listen,
        Some("127.0.0.1:9147".parse().unwrap()),
        "documented default"
    );
    assert_eq!(
        parse("t.yaml", &format!("{GOOD}metrics_listen: \"off\"\n"))
            .unwrap()
            .metrics_listen,
        None
    );
    assert!(errors(&format!("{GOOD}metrics_listen: nowhere\n")).contains("not an address:port"));
}

#[test]
fn unknown_scheduler() {
    let e = errors(&GOOD.replace("scheduler: wrr", "scheduler: fastest"));
    assert!(e.starts_with("t.yaml:7:16: error:"), "{e}");
    assert!(e.contains("fastest") && e.contains("wrr"), "{e}");
    assert!(e.contains("hint:"), "{e}");
}

#[test]
fn negative_weight() {
    let e = errors(&GOOD.replace("weight: 3", "weight: -3"));
    assert!(
        e.starts_with("t.yaml:10:49: error: weight -3 is out of range 0..=65535"),
        "{e}"
    );
    assert!(e.contains("hint: 0 takes no new connections"), "{e}");
}

#[test]
fn health_checks_over_ipv6() {
    let c = parse(
        "t.yaml",
        &GOOD.replace(
            "weight: 3 }",
            "weight: 3, health_check: { type: tcp, connect_ip: \"2001:db8::11\", bindto: \"2001:db8::2\" } }",
        ),
    )
    .unwrap();
    let hc = c.virtual_servers[0].real_servers[0]
        .health_check
        .as_ref()
        .unwrap();
    assert_eq!(hc.connect_ip, Some("2001:db8::11".parse().unwrap()));
    let e = errors(&GOOD.replace(
        "weight: 3 }",
        "weight: 3, health_check: { type: tcp, bindto: \"2001:db8::2\" } }",
    ));
    assert!(
        e.contains("bindto 2001:db8::2 is not of the checked address's family (IPv4)"),
        "{e}"
    );
    let e = errors(&GOOD.replace(
        "weight: 3 }",
        "weight: 3, health_check: { type: tcp, connect_ip: \"2001:db8::11\", bindto: 10.0.0.2 } }",
    ));
    assert!(e.contains("(IPv6 connect_ip)"), "{e}");
}

#[test]
fn connection_thresholds() {
    let c = parse(
        "t.yaml",
        &GOOD.replace(
            "weight: 3 }",
            "weight: 3, uthreshold: 100, lthreshold: 60 }",
        ),
    )
    .unwrap();
    let t = c.virtual_servers[0].real_servers[0].thresholds.unwrap();
    assert_eq!((t.upper, t.lower), (100, 60));
    assert_eq!(c.virtual_servers[0].real_servers[1].thresholds, None);
    let e = errors(&GOOD.replace("weight: 3 }", "weight: 3, uthreshold: 10, lthreshold: 20 }"));
    assert!(e.contains("10:"), "{e}");
    assert!(e.contains("lthreshold 20 is above uthreshold 10"), "{e}");
    let e = errors(&GOOD.replace("weight: 0 }", "weight: 0, lthreshold: 5 }"));
    assert!(e.contains("lthreshold without uthreshold"), "{e}");
    let e = errors(&GOOD.replace("weight: 3 }", "weight: 3, uthreshold: 0 }"));
    assert!(e.contains("uthreshold 0 is out of range"), "{e}");
}

#[test]
fn missing_interface() {
    let e = errors(&GOOD.replace("interface: eth0\n", ""));
    assert!(e.contains("lacks the key `interface`"), "{e}");
    assert!(e.starts_with("t.yaml:1:1:"), "{e}");
    assert!(
        e.contains("hint: interface: The interface clients reach"),
        "{e}"
    );
}

#[test]
fn duplicate_service_and_real_server_all_reported() {
    let twice = format!(
        "{GOOD}  - name: web2\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    real_servers:\n      - {{ address: 10.0.0.11 }}\n      - {{ address: 10.0.0.11 }}\n"
    );
    let e = errors(&twice);
    let lines: Vec<&str> = e.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].starts_with(
            "t.yaml:13:14: error: virtual server 10.0.0.100:80/tcp is already defined at line 4"
        ),
        "{e}"
    );
    assert!(
        lines[1].starts_with(
            "t.yaml:18:20: error: real server 10.0.0.11:80 is already listed at line 17"
        ),
        "{e}"
    );
}

#[test]
fn wrong_types_and_keys() {
    assert!(errors(&GOOD.replace("port: 80\n", "port: http\n")).starts_with("t.yaml:5:11:"));
    assert!(
        errors(&GOOD.replace("address: 10.0.0.100", "address: 10.0.0.300"))
            .starts_with("t.yaml:4:14:")
    );
    let e = errors(&GOOD.replace("    protocol: tcp", "    protocl: tcp"));
    assert!(
        e.contains("t.yaml:6:5: error: unknown key `protocl` in virtual_servers[0]"),
        "{e}"
    );
    assert!(e.contains("hint: did you mean `protocol`?"), "{e}");
    assert!(
        e.contains("t.yaml:3:5: error: virtual_servers[0] lacks the key `protocol`"),
        "the misspelt key's absence is said too: {e}"
    );
    let e = errors(&GOOD.replace("protocol: tcp", "protocol: sctp"));
    assert!(e.contains("sctp"), "{e}");
}

#[test]
fn dr_cannot_map_ports() {
    let e = errors(&GOOD.replace("10.0.0.11, port: 80", "10.0.0.11, port: 8080"));
    assert!(e.contains("which DR cannot do"), "{e}");
    let e = errors(
        &GOOD
            .replace("forwarding: dr", "forwarding: tun")
            .replace("10.0.0.11, port: 80", "10.0.0.11, port: 8080"),
    );
    assert!(e.contains("which TUN cannot do"), "{e}");
    let c = parse(
        "t.yaml",
        &format!(
            "{}tun_mtu: 1400\n",
            GOOD.replace("forwarding: dr", "forwarding: tun")
        ),
    )
    .unwrap();
    assert_eq!(
        (c.virtual_servers[0].forwarding, c.tun_mtu),
        (Forwarding::Tun, Some(1400))
    );
}

#[test]
fn duplicate_yaml_keys() {
    let e = errors(&GOOD.replace("    port: 80\n", "    port: 80\n    port: 81\n"));
    assert!(e.to_lowercase().contains("duplicate"), "{e}");
}

#[test]
fn every_ipvs_scheduler_parses() {
    for s in [
        "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "lblc", "lblcr", "mh", "fo", "ovf",
        "twos",
    ] {
        let c = parse(
            "t.yaml",
            &GOOD.replace("scheduler: wrr", &format!("scheduler: {s}")),
        )
        .unwrap();
        assert_eq!(c.virtual_servers[0].scheduler.as_str(), s);
    }
}

#[test]
fn the_examples_mean_what_they_say() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let shop = load(std::path::Path::new(&format!("{dir}/persistence.yaml"))).unwrap();
    let vs = &shop.virtual_servers[0];
    assert_eq!(vs.ports, vec![80, 443]);
    assert_eq!(vs.persistence.unwrap().timeout, 600);
    assert_eq!(
        vs.real_servers[0].port, 0,
        "multi-port: packets keep their port"
    );
    let mh = load(std::path::Path::new(&format!("{dir}/maglev.yaml"))).unwrap();
    assert_eq!(
        mh.virtual_servers[0].scheduler_flags,
        SchedFlags {
            port: true,
            fallback: true
        }
    );
    assert_eq!(mh.virtual_servers[0].mh_table_size, 65537);
    assert!(mh.virtual_servers[1].ops);
    assert_eq!(mh.expire_nodest_conn, NodestPolicy::Reschedule);
}

#[test]
fn scheduler_options_are_checked() {
    let e = errors(&GOOD.replace(
        "scheduler: wrr\n",
        "scheduler: wrr\n    scheduler_flags: [mh-port]\n",
    ));
    assert!(e.contains("does not apply to scheduler wrr"), "{e}");
    let e = errors(&GOOD.replace(
        "scheduler: wrr\n",
        "scheduler: mh\n    mh_table_size: 65536\n",
    ));
    assert!(e.contains("65536 is not a prime"), "{e}");
    let e = errors(&GOOD.replace("scheduler: wrr\n", "scheduler: rr\n    ops: true\n"));
    assert!(e.contains("UDP only"), "{e}");
    let e = errors(&GOOD.replace(
        "scheduler: wrr\n",
        "scheduler: rr\n    persistence_granularity: 255.0.255.0\n",
    ));
    assert!(e.contains("without persistence_timeout"), "{e}");
    let e = errors(&GOOD.replace(
        "scheduler: wrr\n",
        "scheduler: rr\n    persistence_timeout: 60\n    persistence_granularity: 255.0.255.0\n",
    ));
    assert!(e.contains("is not a netmask"), "{e}");
    let e = errors(&GOOD.replace("    port: 80\n", "    port: 80\n    ports: [80, 443]\n"));
    assert!(e.contains("either `port` or `ports`"), "{e}");
    let e = errors(&GOOD.replace("    port: 80\n", "    ports: [80, 443]\n"));
    assert!(e.contains("multi-port service takes no port"), "{e}");
    let e = errors(&GOOD.replace("    port: 80\n", ""));
    assert!(e.contains("has no `port`"), "{e}");
}

#[test]
fn per_state_timeouts() {
    let c = parse(
        "t.yaml",
        &format!("{GOOD}timeouts: {{ tcp: 600, close_wait: 5, udp: 30 }}\n"),
    )
    .unwrap();
    assert_eq!(
        (
            c.timeouts.tcp,
            c.timeouts.close_wait,
            c.timeouts.udp,
            c.timeouts.tcpfin
        ),
        (600, 5, 30, 120)
    );
    let e = errors(&format!("{GOOD}timeouts: {{ tcp: 0 }}\n"));
    assert!(e.contains("timeout 0 is out of range"), "{e}");
}

#[test]
fn nat_maps_ports_and_refuses_ambiguity() {
    let nat = GOOD
        .replace("forwarding: dr", "forwarding: nat")
        .replace("10.0.0.11, port: 80", "10.0.0.11, port: 8080");
    let c = parse("t.yaml", &nat).unwrap();
    assert_eq!(c.virtual_servers[0].real_servers[0].port, 8080);
    let e = errors(&nat.replace("    port: 80\n", "    port: 0\n"));
    assert!(e.contains("cannot serve every port"), "{e}");
    let twice = format!(
        "{nat}  - name: web2\n    address: 10.0.0.101\n    port: 80\n    protocol: tcp\n    forwarding: nat\n    real_servers:\n      - {{ address: 10.0.0.11, port: 8080 }}\n"
    );
    let e = errors(&twice);
    assert!(
        e.contains("already serves the virtual server at line"),
        "{e}"
    );
}

#[test]
fn internal_interface_is_for_two_arm_nat() {
    let nat = GOOD.replace("forwarding: dr", "forwarding: nat");
    let c = parse(
        "t.yaml",
        &nat.replace(
            "interface: eth0\n",
            "interface: eth0\ninternal_interface: eth1\n",
        ),
    )
    .unwrap();
    assert_eq!(c.internal_interface.unwrap().value, "eth1");
    let e = errors(&GOOD.replace(
        "interface: eth0\n",
        "interface: eth0\ninternal_interface: eth1\n",
    ));
    assert!(
        e.contains("no virtual server uses `forwarding: nat`"),
        "{e}"
    );
    let e = errors(&nat.replace(
        "interface: eth0\n",
        "interface: eth0\ninternal_interface: eth0\n",
    ));
    assert!(e.contains("must be another valid interface"), "{e}");
}

const VRRP: &str = "interface: eth0
vrrp_instances:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    priority: 100
    virtual_ipaddresses: [10.0.0.100, 10.0.0.101/24]
";

#[test]
fn vrrp_instances_in_keepalived_terms() {
    let c = parse("t.yaml", VRRP).unwrap();
    let v = &c.vrrp_instances[0];
    assert_eq!(
        (v.vrid, v.priority, v.version, v.advert_int_cs, v.preempt),
        (51, 100, 2, 100, true)
    );
    assert_eq!(
        v.virtual_ipaddresses,
        vec![
            ("10.0.0.100".parse().unwrap(), 32),
            ("10.0.0.101".parse().unwrap(), 24)
        ]
    );
    let v3 = parse(
        "t.yaml",
        &VRRP.replace(
            "priority: 100",
            "priority: 100\n    version: 3\n    advert_int: 0.1",
        ),
    )
    .unwrap();
    assert_eq!(v3.vrrp_instances[0].advert_int_cs, 10);
}

#[test]
fn vrrp_mistakes() {
    let e = errors(&VRRP.replace("priority: 100", "priority: 100\n    advert_int: 0.1"));
    assert!(
        e.contains("advert_int 0.1 is not valid for VRRP version 2"),
        "{e}"
    );
    let e = errors(&VRRP.replace("virtual_router_id: 51", "virtual_router_id: 300"));
    assert!(e.contains("virtual_router_id 300 is out of range"), "{e}");
    let e = errors(&VRRP.replace(
        "priority: 100",
        "priority: 100\n    version: 3\n    authentication: { auth_type: PASS, auth_pass: secret }",
    ));
    assert!(e.contains("version 2 only"), "{e}");
    let e = errors(&VRRP.replace("10.0.0.101/24", "10.0.0.301"));
    assert!(e.contains("not an IP address"), "{e}");
    // IPv6: version 3 only, one family per instance, peers of the VIPs' family.
    let mixed = VRRP.replace("10.0.0.101/24", "2001:db8::100/64");
    let e = errors(&mixed);
    assert!(
        e.contains("is not of the instance's first address's family"),
        "{e}"
    );
    let v2 = mixed.replace("10.0.0.100,", "2001:db8::101,");
    assert!(
        errors(&v2).contains("it needs version 3"),
        "{}",
        errors(&v2)
    );
    let v6only = VRRP
        .replace("10.0.0.100", "2001:db8::101")
        .replace("10.0.0.101/24", "2001:db8::100/64")
        .replace(
            "priority: 100",
            "priority: 100\n    version: 3\n    unicast_peers: [10.0.0.3]",
        );
    let e = errors(&v6only);
    assert!(e.contains("10.0.0.3 is not of the VIPs' family"), "{e}");
    let ok = parse("t.yaml", &v6only.replace("[10.0.0.3]", "[\"2001:db8::3\"]")).unwrap();
    assert_eq!(
        ok.vrrp_instances[0].virtual_ipaddresses,
        [
            ("2001:db8::101".parse().unwrap(), 128),
            ("2001:db8::100".parse().unwrap(), 64)
        ]
    );
    let twice = format!("{VRRP}  - name: VI_2\n    interface: eth0\n    virtual_router_id: 51\n    priority: 90\n    virtual_ipaddresses: [10.0.0.102]\n");
    let e = errors(&twice);
    assert!(
        e.contains("virtual_router_id 51 on eth0 is already used at line 5"),
        "{e}"
    );
}

#[test]
fn sync_groups_name_existing_instances_once() {
    let two = format!("{VRRP}  - name: VI_2\n    interface: eth0\n    virtual_router_id: 52\n    priority: 90\n    garp_interval: 0.05\n    virtual_ipaddresses: [10.0.0.102]\n");
    let c = parse(
        "t.yaml",
        &format!("{two}vrrp_sync_groups:\n  - {{ name: G1, group: [VI_1, VI_2] }}\n"),
    )
    .unwrap();
    assert!(c
        .vrrp_instances
        .iter()
        .all(|v| v.sync_group.as_deref() == Some("G1")));
    assert_eq!(c.vrrp_instances[1].garp_interval_ms, 50);
    let e = errors(&format!(
        "{two}vrrp_sync_groups:\n  - {{ name: G1, group: [VI_1, VI_9] }}\n"
    ));
    assert!(e.contains("names no VRRP instance \"VI_9\""), "{e}");
    let e = errors(&format!("{two}vrrp_sync_groups:\n  - {{ name: G1, group: [VI_1] }}\n  - {{ name: G2, group: [VI_1] }}\n"));
    assert!(e.contains("already in a sync group"), "{e}");
}

#[test]
fn health_checks_in_keepalived_terms() {
    let hc = GOOD.replace(
        "    real_servers:\n",
        "    health_check: { type: tcp, delay_loop: 6, connect_timeout: 3, retry: 3, delay_before_retry: 3 }\n    quorum: 2\n    sorry_server: { address: 10.0.0.50 }\n    real_servers:\n",
    ) + "      - { address: 10.0.0.13, health_check: { type: http, path: /health, status_code: [200, 204], digest: 5D41402ABC4B2A76B9719D911017C592 }, inhibit_on_failure: true, notify_down: /bin/true }\n";
    let c = parse("t.yaml", &hc).unwrap();
    let vs = &c.virtual_servers[0];
    let tcp = vs.real_servers[0].health_check.as_ref().unwrap();
    assert_eq!(
        (
            tcp.delay_loop_ms,
            tcp.timeout_ms,
            tcp.retry,
            tcp.delay_before_retry_ms
        ),
        (6000, 3000, 3, 3000)
    );
    let http = vs.real_servers[2].health_check.as_ref().unwrap();
    assert!(
        matches!(&http.kind, CheckKind::Http { status_codes, digest: Some(d), .. } if status_codes == &vec![200, 204] && d == "5d41402abc4b2a76b9719d911017c592")
    );
    assert!(vs.real_servers[2].inhibit_on_failure && !vs.real_servers[0].inhibit_on_failure);
    assert_eq!(
        (vs.quorum, vs.sorry_server),
        (2, Some(("10.0.0.50".parse().unwrap(), 80)))
    );
}

#[test]
fn quorum_lowers_a_vrrp_priority() {
    let cfg = VRRP.to_string()
        + &GOOD.replace("interface: eth0\n", "").replace(
            "    real_servers:\n",
            "    quorum: 2\n    quorum_vrrp: { instance: VI_1, priority: 50 }\n    real_servers:\n",
        );
    let c = parse("t.yaml", &cfg).unwrap();
    assert_eq!(c.virtual_servers[0].quorum_vrrp, Some(("VI_1".into(), 50)));
    let e = errors(&cfg.replace(
        "instance: VI_1, priority: 50",
        "instance: VI_9, priority: 50",
    ));
    assert!(e.contains("no VRRP instance \"VI_9\""), "{e}");
}

#[test]
fn health_check_mistakes() {
    let with = |h: &str| {
        GOOD.replace(
            "    real_servers:\n",
            &format!("    health_check: {h}\n    real_servers:\n"),
        )
    };
    let c = parse(
        "t.yaml",
        &with("{ type: https, ssl_verify: true, virtualhost: www.example }"),
    )
    .unwrap();
    let hc = c.virtual_servers[0].real_servers[0]
        .health_check
        .as_ref()
        .unwrap();
    assert!(
        matches!(
            &hc.kind,
            CheckKind::Http {
                tls: Some(TlsCheck { verify: true }),
                ..
            }
        ),
        "{hc:?}"
    );
    let e = errors(&with("{ type: misc }"));
    assert!(e.contains("needs `misc_path`"), "{e}");
    let e = errors(&with("{ type: http, digest: nothex }"));
    assert!(e.contains("MD5 in hex"), "{e}");
    let e = errors(&with("{ type: tcp, delay_loop: 0 }"));
    assert!(e.contains("delay_loop 0 is out of range"), "{e}");
    let e = errors(&with("{ type: tcp, conect_timeout: 3 }"));
    assert!(
        e.contains("unknown key `conect_timeout` in virtual_servers[0].health_check"),
        "{e}"
    );
    assert!(e.contains("hint: did you mean `connect_timeout`?"), "{e}");
}

/// The parser stops at the first mistake; `xvs check` reports them all, each at its
/// place, with the closest valid key or value.
#[test]
fn every_structural_mistake_at_once() {
    let yaml = "interface: eth0
workers: two
virtual_servers:
  - name: web
    address: 10.0.0.300
    port: 80
    protocol: tcp
    schedular: wrr
    lb_kind: dr
    forwarding: dsr
    real_servers:
      - { address: 10.0.0.11, weight: heavy }
      - address: 10.0.0.12
        address: 10.0.0.13
    health_check: { type: tcp, delay_loop: soon, retry: 1, retyr: 2 }
vrrp_instances: none
";
    let e = errors(yaml);
    let lines: Vec<&str> = e.lines().filter(|l| l.contains(": error: ")).collect();
    let expect = [
        "t.yaml:2:10: error: workers must be a whole number, not `two`",
        "t.yaml:5:14: error: virtual_servers[0].address must be an IP address, not `10.0.0.300`",
        "t.yaml:8:5: error: unknown key `schedular` in virtual_servers[0]",
        "t.yaml:9:5: error: unknown key `lb_kind` in virtual_servers[0]",
        "t.yaml:10:17: error: virtual_servers[0].forwarding: `dsr` is not one of `dr`, `tun`, `nat`, `fullnat`",
        "t.yaml:12:39: error: virtual_servers[0].real_servers[0].weight must be a whole number, not `heavy`",
        "t.yaml:14:9: error: virtual_servers[0].real_servers[1]: key `address` is already given at line 13",
        "t.yaml:15:44: error: virtual_servers[0].health_check.delay_loop must be a number, not `soon`",
        "t.yaml:15:60: error: unknown key `retyr` in virtual_servers[0].health_check",
        "t.yaml:16:17: error: vrrp_instances must be a list, not `none`",
    ];
    assert_eq!(lines, expect, "{e}");
    assert!(e.contains("hint: did you mean `scheduler`?"), "{e}");
    assert!(
        e.contains("hint: keepalived's `lb_kind` is `forwarding` here"),
        "{e}"
    );
    assert!(e.contains("hint: did you mean `retry`?"), "{e}");
}

#[test]
fn addresses_that_fit_no_host() {
    let e = errors(
        &GOOD
            .replace("address: 10.0.0.100", "address: 224.0.0.18")
            .replace("address: 10.0.0.11,", "address: 127.0.0.1,"),
    );
    assert!(
        e.contains("t.yaml:4:14: error: 224.0.0.18 is a multicast address, which cannot be a virtual server's address"),
        "{e}"
    );
    assert!(
        e.contains("t.yaml:10:20: error: 127.0.0.1 is a loopback address, which cannot be a real server's address"),
        "{e}"
    );
    let e = errors(&GOOD.replace("address: 10.0.0.12,", "address: 10.0.0.100,"));
    assert!(
        e.contains(
            "t.yaml:11:20: error: real server 10.0.0.100 is the virtual server's own address"
        ),
        "{e}"
    );
    assert!(e.contains("reached by their own address (RIP)"), "{e}");
}

#[test]
fn worker_cpus_socket_sizes_and_fast_path() {
    let cfg = parse(
        "t.yaml",
        &format!("{GOOD}cpus: [1, 0]\naf_xdp: {{ frames: 8192, rx_ring: 4096, batch: 16, busy_poll: 50 }}\nfast_path: off\n"),
    )
    .unwrap();
    assert_eq!(cfg.cpus, Some(vec![1, 0]));
    assert_eq!(
        (cfg.af_xdp.frames, cfg.af_xdp.rx_ring, cfg.af_xdp.tx_ring),
        (8192, 4096, 2048)
    );
    assert_eq!((cfg.af_xdp.batch, cfg.af_xdp.busy_poll), (16, 50));
    assert_eq!(cfg.fast_path, FastPath::Off);
    let d = parse("t.yaml", GOOD).unwrap();
    assert_eq!((d.cpus, d.fast_path), (None, FastPath::Auto), "defaults");
    let x = parse("t.yaml", &format!("{GOOD}fast_path: xdp\n")).unwrap();
    assert_eq!(x.fast_path, FastPath::Xdp);

    let e = errors(&format!(
        "{GOOD}af_xdp: {{ frames: 1000, tx_ring: 8192 }}\n"
    ));
    assert!(
        e.contains("t.yaml:12:19: error: af_xdp frames 1000 is not a power of two"),
        "{e}"
    );
    assert!(
        e.contains("af_xdp tx_ring 8192 is larger than frames 1000"),
        "{e}"
    );
    let e = errors(&format!("{GOOD}cpus: [0, -1]\n"));
    assert!(
        e.contains("t.yaml:12:11: error: cpu -1 is out of range"),
        "{e}"
    );
    let e = errors(&format!("{GOOD}fast_path_flows: 100\n"));
    assert!(
        e.contains("fast_path_flows 100 is out of range 1024..=67108864"),
        "{e}"
    );
    assert_eq!(parse("t.yaml", GOOD).unwrap().fast_path_flows, 1 << 20);
    let e = errors(&format!("{GOOD}af_xdp: {{ batch: 65 }}\n"));
    assert!(e.contains("af_xdp batch 65 is out of range 1..=64"), "{e}");
    let e = errors(&format!("{GOOD}fast_path: ebpf\n"));
    assert!(e.contains("fast_path"), "{e}");
}

const GOOD6: &str = "interface: eth0
virtual_servers:
  - name: web6
    address: 2001:db8::100
    port: 80
    protocol: tcp
    scheduler: wrr
    real_servers:
      - { address: \"2001:db8::11\", weight: 3 }
      - { address: \"2001:db8::12\" }
";

#[test]
fn ipv6_virtual_servers() {
    let c = parse("t.yaml", GOOD6).unwrap();
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.address,
        "2001:db8::100".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(vs.forwarding, Forwarding::Dr);
    assert_eq!(vs.real_servers[1].port, 80);
    // A prefix length groups IPv6 clients, as ipvsadm -6 -M does.
    let c = parse(
        "t.yaml",
        &GOOD6.replace(
            "scheduler: wrr\n",
            "scheduler: wrr\n    persistence_timeout: 60\n    persistence_granularity: 64\n",
        ),
    )
    .unwrap();
    assert_eq!(c.virtual_servers[0].persistence.unwrap().prefix6, 64);
    // IPv4 takes a prefix length too.
    let c = parse(
        "t.yaml",
        &GOOD.replace(
            "scheduler: wrr\n",
            "scheduler: wrr\n    persistence_timeout: 60\n    persistence_granularity: 24\n",
        ),
    )
    .unwrap();
    assert_eq!(
        c.virtual_servers[0].persistence.unwrap().granularity,
        std::net::Ipv4Addr::new(255, 255, 255, 0)
    );
}

#[test]
fn ipv6_mistakes_are_located() {
    // A real server of the other family, at its line and column.
    let e = errors(&GOOD6.replace("\"2001:db8::12\"", "10.0.0.12"));
    assert!(
        e.contains("t.yaml:10:20")
            && e.contains("10.0.0.12 is IPv4, and the virtual server 2001:db8::100 is IPv6"),
        "{e}"
    );
    let e = errors(&GOOD.replace("10.0.0.11", "\"2001:db8::11\""));
    assert!(
        e.contains("is IPv6, and the virtual server 10.0.0.100 is IPv4"),
        "{e}"
    );
    // Every forwarding method over IPv6, NAT66 with its port mapping.
    for f in ["tun", "nat"] {
        parse(
            "t.yaml",
            &GOOD6.replace(
                "scheduler: wrr\n",
                &format!("scheduler: wrr\n    forwarding: {f}\n"),
            ),
        )
        .unwrap();
    }
    // A netmask is IPv4's; a prefix past 128 is no prefix.
    let pers = |g: &str| {
        GOOD6.replace(
            "scheduler: wrr\n",
            &format!(
                "scheduler: wrr\n    persistence_timeout: 60\n    persistence_granularity: {g}\n"
            ),
        )
    };
    let e = errors(&pers("255.255.255.0"));
    assert!(
        e.contains("is an IPv4 netmask") && e.contains("-6 -M"),
        "{e}"
    );
    assert!(errors(&pers("129")).contains("prefix length 129 is out of 0 to 128"));
    let e = errors(&GOOD.replace(
        "scheduler: wrr\n",
        "scheduler: wrr\n    persistence_timeout: 60\n    persistence_granularity: 33\n",
    ));
    assert!(e.contains("out of 0 to 32"), "{e}");
    // A sorry server of the other family.
    let e = errors(&format!(
        "{GOOD6}    sorry_server: {{ address: 10.0.0.99 }}\n"
    ));
    assert!(
        e.contains("a sorry server is of its virtual server's family"),
        "{e}"
    );
}

#[test]
fn connection_sync_defaults_and_mistakes() {
    let ok =
        format!("{GOOD}connection_sync:\n  interface: eth0\n  key: \"0123456789abcdef0123\"\n");
    let cs = parse("t.yaml", &ok).unwrap().connection_sync.unwrap();
    assert_eq!(cs.port, DEFAULT_SYNC_PORT);
    assert_eq!(cs.group, DEFAULT_SYNC_GROUP);
    assert!(cs.peers.is_empty(), "multicast by default");
    assert_eq!(cs.resync_timeout_ms, 5000);
    assert_eq!(cs.resync_rate, DEFAULT_RESYNC_RATE);
    assert_eq!((cs.interface.line, cs.interface.column), (13, 14));
    let unicast = format!("{ok}  peers: [10.0.0.3]\n  resync_timeout: 0.5\n");
    let cs = parse("t.yaml", &unicast).unwrap().connection_sync.unwrap();
    assert_eq!(
        cs.peers,
        vec!["10.0.0.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(cs.resync_timeout_ms, 500);

    let e = errors(&format!(
        "{GOOD}connection_sync:\n  interface: eth0\n  key: short\n"
    ));
    assert!(e.contains("14:8") && e.contains("not 16 to 256"), "{e}");
    let e = errors(&format!("{ok}  peers: [\"2001:db8::3\", 224.0.0.5]\n"));
    assert!(
        e.contains("travel over IPv4") && e.contains("multicast address"),
        "{e}"
    );
    let e = errors(&format!("{ok}  group: 10.0.0.9\n"));
    assert!(e.contains("not an IPv4 multicast address"), "{e}");
    let e = errors(&format!("{ok}  group: 224.0.0.82\n  peers: [10.0.0.3]\n"));
    assert!(e.contains("both `group` and `peers`"), "{e}");
    let e = errors(&format!(
        "{ok}  resync_timeout: 90\n  resync_rate: 5\n  port: 0\n"
    ));
    assert!(
        e.contains("resync_timeout 90 is out of range")
            && e.contains("resync_rate 5 is out of range")
            && e.contains("port 0 is out of range"),
        "{e}"
    );
    let e = errors(&format!("{ok}  bogus: 1\n"));
    assert!(e.contains("bogus"), "{e}");
    let e = errors(&format!("{GOOD}connection_sync:\n  interface: eth0\n"));
    assert!(e.contains("key"), "the key is required: {e}");
}

#[test]
fn realtime_priority_out_of_range() {
    let e = errors(&format!("vrrp_realtime_priority: 100\n{GOOD}"));
    assert!(
        e.starts_with("t.yaml:1:25: error: vrrp_realtime_priority 100 is out of range 0..=99"),
        "{e}"
    );
    assert!(e.contains("0 for normal scheduling"), "{e}");
}

#[test]
fn script_user_and_unreadable_scripts_point_at_their_line() {
    let e = errors(&format!("script_user: \"no body\"\n{GOOD}"));
    assert!(
        e.starts_with("t.yaml:1:14: error: script_user \"no body\" is no user name"),
        "{e}"
    );
    let ok = parse(
        "t.yaml",
        &format!("script_user: \"xvs:adm\"\nenable_script_security: true\n{GOOD}"),
    )
    .unwrap();
    assert_eq!(
        ok.script_user,
        Some(ScriptUser {
            user: "xvs".into(),
            group: Some("adm".into())
        })
    );
    assert!(ok.enable_script_security);
    let vrrp = "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    virtual_router_id: 51\n    priority: 100\n    virtual_ipaddresses: [10.0.0.100]\n    notify_master: \"/etc/xvs/up.sh 'unclosed\"\n";
    let e = errors(&format!("{GOOD}{vrrp}"));
    assert!(
        e.contains("error: notify_master cannot be read: a ' quote is not closed"),
        "{e}"
    );
}

/// `key_file` keeps the sync key out of the configuration: an absolute path to a file
/// of root's that no one else may read or change; one of `key` and `key_file`.
#[test]
fn the_sync_key_from_a_file_of_roots_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("xvs-keyfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("sync.key");
    std::fs::write(&f, "0123456789abcdef0123456789\nignored second line\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let with = |line: &str| format!("{GOOD}connection_sync:\n  interface: eth0\n{line}");
    let root = std::fs::metadata(&dir).map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root.unwrap_or(false) {
        let c = parse("t.yaml", &with(&format!("  key_file: {}\n", f.display()))).unwrap();
        assert_eq!(c.connection_sync.unwrap().key, "0123456789abcdef0123456789");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = errors(&with(&format!("  key_file: {}\n", f.display())));
        assert!(
            e.contains("mode 0644") && e.contains("others could read or change the key"),
            "{e}"
        );
        assert!(e.contains("chmod 0640"), "{e}");
    }
    let e = errors(&with("  key_file: sync.key\n"));
    assert!(e.contains("not an absolute path"), "{e}");
    let e = errors(&with(&format!(
        "  key: \"0123456789abcdef0123\"\n  key_file: {}\n",
        f.display()
    )));
    assert!(e.contains("both `key` and `key_file`"), "{e}");
    let e = errors(&with("  port: 8848\n"));
    assert!(e.contains("needs a `key` or a `key_file`"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `check_unicast_src` is on by default with unicast peers (keepalived's default is
/// off), and can be turned off; without peers it means nothing.
#[test]
fn unicast_sources_are_checked_by_default() {
    let vrrp = |extra: &str| {
        format!("{GOOD}vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    virtual_router_id: 51\n    priority: 100\n    virtual_ipaddresses: [10.0.0.100]\n{extra}")
    };
    let c = parse("t.yaml", &vrrp("    unicast_peers: [10.0.0.3]\n")).unwrap();
    assert!(c.vrrp_instances[0].check_unicast_src);
    let c = parse(
        "t.yaml",
        &vrrp("    unicast_peers: [10.0.0.3]\n    check_unicast_src: false\n"),
    )
    .unwrap();
    assert!(!c.vrrp_instances[0].check_unicast_src);
    let c = parse("t.yaml", &vrrp("")).unwrap();
    assert!(
        !c.vrrp_instances[0].check_unicast_src,
        "multicast: any source"
    );
}

#[test]
fn email_alerts_refuse_what_could_leave_its_smtp_line() {
    let ok = parse(
        "t.yaml",
        &format!("{GOOD}email_alerts: {{ to: [ops@example.org], smtp_server: 10.0.0.9 }}\n"),
    )
    .unwrap();
    let e = ok.email_alerts.unwrap();
    assert_eq!((e.server.port(), e.timeout_ms), (25, 30_000));
    assert_eq!((e.vrrp, e.checker), (false, true), "keepalived's defaults");
    let e = errors(&format!(
        "{GOOD}email_alerts:\n  to: [\"ops@example.org>\\r\\nRCPT TO:<x@evil.test\", nobody]\n  smtp_server: 0.0.0.0\n  connect_timeout: 0\n"
    ));
    for needle in [
        "is not an e-mail address xvs sends to",
        "\"nobody\" is not an e-mail address",
        "smtp_server 0.0.0.0 is not a host's address",
        "email_alerts connect_timeout 0 is out of range 1..=300",
    ] {
        assert!(e.contains(needle), "{needle:?} in {e}");
    }
    assert!(e.contains("t.yaml:13:"), "line:column: {e}");
}

#[test]
fn announce_refuses_the_hosts_own_tables_and_overrides_its_defaults() {
    let c = parse(
        "t.yaml",
        &format!("{GOOD}    announce: {{ min_healthy: 2, withdraw_delay: 5 }}\nannounce: {{ table: 100, warmup: 1, min_weight_fraction: 0.5 }}\n"),
    )
    .unwrap();
    assert_eq!(c.announce, Some(Announce { table: 100 }));
    let g = c.virtual_servers[0].announce.unwrap();
    assert_eq!(
        (
            g.enabled,
            g.min_healthy,
            g.min_weight_permille,
            g.warmup_ms,
            g.withdraw_delay_ms
        ),
        (true, 2, 500, 1000, 5000),
        "its own where given, the top-level's otherwise"
    );
    let plain = parse("t.yaml", &format!("{GOOD}announce: {{ table: 7 }}\n")).unwrap();
    let g = plain.virtual_servers[0].announce.unwrap();
    assert_eq!(
        (g.min_healthy, g.warmup_ms, g.withdraw_delay_ms),
        (1, 5000, 2000),
        "defaults"
    );
    assert_eq!(
        parse("t.yaml", GOOD).unwrap().virtual_servers[0].announce,
        None
    );
    for (table, says) in [
        ("254", "the kernel's main table"),
        ("255", "local"),
        ("253", "default"),
        ("0", "unspec"),
        ("-3", "out of range"),
    ] {
        let e = errors(&format!("{GOOD}announce: {{ table: {table} }}\n"));
        assert!(e.contains(says) && e.contains("t.yaml:12:"), "{table}: {e}");
    }
    let e = errors(&format!(
        "{GOOD}    announce: {{ warmup: 900 }}\nannounce: {{ table: 100, min_weight_fraction: 1.5, withdraw_delay: 60 }}\n"
    ));
    for needle in [
        "announce warmup 900 is out of range",
        "min_weight_fraction 1.5 is out of range 0..=1",
        "withdraw_delay 60 is out of range 0..=20",
    ] {
        assert!(e.contains(needle), "{needle:?} in {e}");
    }
    let e = errors(&format!("{GOOD}    announce: {{ min_healthy: 1 }}\n"));
    assert!(e.contains("no top-level `announce`"), "{e}");
    let e = errors(&format!(
        "{GOOD}    announce: {{ table: 5 }}\nannounce: {{ enabled: true }}\n"
    ));
    for needle in [
        "names an announce table",
        "announce has no `table`",
        "`enabled` is for a virtual server's",
    ] {
        assert!(e.contains(needle), "{needle:?} in {e}");
    }
}

const FULLNAT: &str = "interface: eth0
virtual_servers:
  - name: web
    address: 10.0.0.100
    port: 80
    protocol: tcp
    forwarding: fullnat
    local_addresses: [10.0.0.201, 10.0.0.202]
    local_ports: \"2000-2999\"
    real_servers:
      - { address: 10.20.0.11, port: 8080 }
";

#[test]
fn fullnat_takes_local_addresses_and_ports() {
    let c = parse("t.yaml", FULLNAT).unwrap();
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.forwarding, Forwarding::FullNat);
    let l = vs.local.as_ref().unwrap();
    assert_eq!(l.ports, (2000, 2999));
    assert_eq!(l.addresses.len(), 2);
    assert_eq!(vs.real_servers[0].port, 8080, "ports may be mapped");
    let c = parse(
        "t.yaml",
        &FULLNAT.replace("    local_ports: \"2000-2999\"\n", ""),
    )
    .unwrap();
    assert_eq!(
        c.virtual_servers[0].local.as_ref().unwrap().ports,
        DEFAULT_LOCAL_PORTS
    );
    // Two virtual servers may share a pool given alike.
    let shared = format!(
        "{FULLNAT}  - name: web2\n    address: 10.0.0.101\n    port: 80\n    protocol: tcp\n    forwarding: fullnat\n    local_addresses: [10.0.0.201, 10.0.0.202]\n    local_ports: \"2000-2999\"\n    real_servers:\n      - {{ address: 10.20.0.11, port: 8080 }}\n"
    );
    parse("t.yaml", &shared).unwrap();
}

#[test]
fn fullnat_mistakes_are_reported_at_their_place() {
    let cases: &[(String, &str)] = &[
        (
            FULLNAT.replace("    local_addresses: [10.0.0.201, 10.0.0.202]\n", ""),
            "t.yaml:3:11: error: FullNAT virtual server \"web\" has no local_addresses",
        ),
        (
            FULLNAT.replace("2000-2999", "3000-2000"),
            "t.yaml:9:18: error: local_ports \"3000-2000\" is no port range",
        ),
        (
            FULLNAT.replace("2000-2999", "0-10"),
            "local_ports \"0-10\" is no port range",
        ),
        (
            FULLNAT.replace("10.0.0.202]", "10.0.0.100]"),
            "t.yaml:8:35: error: local address 10.0.0.100 is the virtual server's own address",
        ),
        (
            FULLNAT.replace("10.0.0.202]", "10.20.0.11]"),
            "local address 10.20.0.11 is one of its real servers",
        ),
        (
            FULLNAT.replace("10.0.0.202]", "10.0.0.201]"),
            "local address 10.0.0.201 is listed twice",
        ),
        (
            FULLNAT.replace("10.0.0.202]", "2001:db8::1]"),
            "2001:db8::1 is IPv6, and the virtual server 10.0.0.100 is IPv4",
        ),
        (
            FULLNAT.replace("10.0.0.202]", "224.0.0.5]"),
            "224.0.0.5 is a multicast address, which cannot be a local address",
        ),
        (
            FULLNAT.replace("forwarding: fullnat", "forwarding: dr"),
            "t.yaml:8:23: error: local_addresses without `forwarding: fullnat`",
        ),
        (
            FULLNAT.replace("protocol: tcp", "protocol: udp\n    ops: true"),
            "ops (one-packet scheduling) cannot go with FullNAT",
        ),
        (
            FULLNAT.replace("    port: 80\n", "    port: 0\n"),
            "a FULLNAT virtual server cannot serve every port (port 0)",
        ),
        (
            format!(
                "{FULLNAT}  - name: dns\n    address: 10.0.0.202\n    port: 53\n    protocol: udp\n    real_servers:\n      - {{ address: 10.0.0.11 }}\n"
            ),
            "t.yaml:8:35: error: local address 10.0.0.202 is also a virtual server's address",
        ),
        (
            format!(
                "{FULLNAT}  - name: dns\n    address: 10.0.0.99\n    port: 53\n    protocol: udp\n    real_servers:\n      - {{ address: 10.0.0.201 }}\n"
            ),
            "t.yaml:8:23: error: local address 10.0.0.201 is also a real server's address",
        ),
        (
            format!(
                "{FULLNAT}  - name: web2\n    address: 10.0.0.101\n    port: 80\n    protocol: tcp\n    forwarding: fullnat\n    local_addresses: [10.0.0.202]\n    real_servers:\n      - {{ address: 10.20.0.11, port: 8080 }}\n"
            ),
            "t.yaml:17:23: error: local address 10.0.0.202 is in another pool (line 8) with other addresses or ports",
        ),
    ];
    for (yaml, want) in cases {
        let e = errors(yaml);
        assert!(e.contains(want), "want {want:?} in:\n{e}");
    }
}
