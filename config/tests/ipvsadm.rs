//! `xvs import-ipvsadm` on the seeds' rules: seed 002's DR and TUN directors, seed 003's
//! NAT director and its firewall-mark service with the iptables rules that mark 80 and
//! 443. The YAML must validate and mean what the rules meant; what cannot be converted
//! must be named with its line.

use std::path::Path;

use xvs_config::*;

fn read(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipvsadm");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// Converts, checks the kept YAML beside the rules (XVS_BLESS=1 rewrites it), validates.
fn convert(rules: &str, iptables: Option<&str>, kept: &str) -> (Config, Vec<String>) {
    let marks = iptables.map(|name| (name, read(name)));
    let i = ipvsadm::import(
        &read(rules),
        marks
            .as_ref()
            .map(|(name, text)| ipvsadm::Marks { name, text }),
        Some("eth0"),
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ipvsadm")
        .join(kept);
    if std::env::var_os("XVS_BLESS").is_some() {
        std::fs::write(&path, &i.yaml).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        i.yaml,
        "{} is out of date (XVS_BLESS=1)",
        path.display()
    );
    let c = parse(kept, &i.yaml).unwrap_or_else(|e| panic!("{e}\n---\n{}", i.yaml));
    (c, i.warnings)
}

fn addrs(vs: &VirtualServer) -> Vec<String> {
    vs.real_servers
        .iter()
        .map(|r| format!("{}:{}", r.address, r.port))
        .collect()
}

#[test]
fn seed_002_dr_and_tun() {
    let (c, w) = convert("seed002-dr.rules", None, "seed002-dr.yaml");
    assert!(w.is_empty(), "{w:?}");
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.address.to_string(), vs.port()),
        ("172.25.14.100".into(), 80)
    );
    assert_eq!(
        (vs.forwarding, vs.scheduler),
        (Forwarding::Dr, Scheduler::Rr)
    );
    assert_eq!(addrs(vs), ["172.25.14.2:80", "172.25.14.3:80"]);

    let (c, w) = convert("seed002-tun.rules", None, "seed002-tun.yaml");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.virtual_servers[0].forwarding, Forwarding::Tun);
    assert_eq!(c.virtual_servers[0].real_servers.len(), 2);
}

#[test]
fn seed_003_nat() {
    let (c, w) = convert("seed003-nat.rules", None, "seed003-nat.yaml");
    assert!(w.is_empty(), "{w:?}");
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.forwarding, vs.scheduler),
        (Forwarding::Nat, Scheduler::Wrr)
    );
    assert_eq!(addrs(vs), ["192.168.30.107:80", "192.168.30.7:80"]);
    assert!(vs.real_servers.iter().all(|r| r.weight == 1));
}

#[test]
fn seed_003_firewall_mark_with_its_iptables_marks() {
    let (c, w) = convert(
        "seed003-fwmark.rules",
        Some("seed003-fwmark.iptables"),
        "seed003-fwmark.yaml",
    );
    assert!(w.is_empty(), "{w:?}");
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.address.to_string(), "172.17.100.100");
    assert_eq!(vs.ports, vec![80, 443], "both marked ports, one service");
    assert_eq!(vs.persistence.unwrap().timeout, 300, "ipvsadm's -p default");
    assert_eq!(vs.scheduler, Scheduler::Rr);
    assert_eq!(vs.forwarding, Forwarding::Dr);
    assert_eq!(
        vs.real_servers
            .iter()
            .map(|r| r.address.to_string())
            .collect::<Vec<_>>(),
        ["172.17.1.7", "172.17.22.22"]
    );

    // The rules as the seed typed them: the one missing a space is named, the other kept.
    let (c, w) = convert(
        "seed003-fwmark.rules",
        Some("seed003-typed.iptables"),
        "seed003-typed.yaml",
    );
    assert_eq!(c.virtual_servers[0].ports, vec![80]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("seed003-typed.iptables, line 3: ") && w[0].contains("172.17.100.100-p"),
        "{w:?}"
    );
}

mod hostile {
    use proptest::prelude::*;
    use xvs_config::ipvsadm;

    /// Lines of ipvsadm's and iptables' words in any order, with junk among them.
    fn lines() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            Just("-A"),
            Just("-a"),
            Just("-E"),
            Just("-e"),
            Just("-D"),
            Just("-d"),
            Just("-C"),
            Just("--set"),
            Just("-t"),
            Just("-u"),
            Just("-f"),
            Just("-s"),
            Just("-p"),
            Just("-M"),
            Just("-b"),
            Just("-r"),
            Just("-g"),
            Just("-m"),
            Just("-i"),
            Just("-w"),
            Just("-x"),
            Just("-o"),
            Just("10.0.0.1:80"),
            Just("10.0.0.2"),
            Just("[::1]:80"),
            Just("99"),
            Just("0x63/0xffffffff"),
            Just("rr"),
            Just("sh"),
            Just("flag-1,sh-port"),
            Just("-j"),
            Just("MARK"),
            Just("--set-mark"),
            Just("--set-xmark"),
            Just("--dport"),
            Just("80:70"),
            Just("1:65535"),
            Just("*mangle"),
            Just("!"),
            Just("iptables"),
            Just("=")
        ];
        prop::collection::vec(
            prop::collection::vec(prop_oneof![word.prop_map(String::from), ".{0,6}"], 0..10)
                .prop_map(|w| w.join(" ")),
            0..12,
        )
        .prop_map(|l| l.join("\n"))
    }

    /// Services and real servers as an admin writes them: few addresses, so they collide.
    fn services() -> impl Strategy<Value = (String, String)> {
        let svc = prop_oneof![
            (
                0..3u8,
                prop_oneof![Just(80u16), Just(443), Just(0)],
                any::<bool>()
            )
                .prop_map(|(a, p, t)| format!("{} 10.0.0.{a}:{p}", if t { "-t" } else { "-u" })),
            (1..4u8).prop_map(|m| format!("-f {m}")),
        ];
        let opts = (
            prop_oneof![
                Just(""),
                Just("-s rr"),
                Just("-s sh -b sh-port"),
                Just("-s mh -b flag-1")
            ],
            prop_oneof![Just(""), Just("-p"), Just("-p 60 -M 255.255.255.0")],
        );
        let server = (
            1..4u8,
            prop_oneof![Just(""), Just(":80"), Just(":8080"), Just(":0")],
            prop_oneof![Just("-g"), Just("-m"), Just("-i")],
            0..3u32,
            prop_oneof![
                Just(""),
                Just("-x 10"),
                Just("-x 10 -y 20"),
                Just("-y 3"),
                Just("-x 0 -y 0")
            ],
        )
            .prop_map(|(r, p, m, w, t)| format!("-r 10.0.1.{r}{p} {m} -w {w} {t}"));
        let line = prop_oneof![
            (svc.clone(), opts).prop_map(|(s, (a, b))| format!("-A {s} {a} {b}")),
            (svc, server).prop_map(|(s, r)| format!("-a {s} {r}")),
        ];
        let mark = (
            1..4u8,
            0..3u8,
            prop_oneof![
                Just(""),
                Just("-p tcp --dport 80"),
                Just("-p udp -m multiport --dports 53,443")
            ],
        )
            .prop_map(|(m, a, p)| {
                format!("-A PREROUTING -d 10.0.0.{a} {p} -j MARK --set-mark {m}")
            });
        (
            prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n")),
            prop::collection::vec(mark, 0..5).prop_map(|l| format!("*mangle\n{}", l.join("\n"))),
        )
    }

    proptest! {
        #[test]
        fn plausible_rules_convert_into_yaml_that_validates((rules, marks) in services()) {
            let i = ipvsadm::import(
                &rules,
                Some(ipvsadm::Marks { name: "m", text: &marks }),
                Some("eth0"),
            );
            if let Err(e) = xvs_config::parse("converted.yaml", &i.yaml) {
                prop_assert!(false, "{e}\n{rules}\n{marks}\n{}\n{:?}", i.yaml, i.warnings);
            }
        }

        #[test]
        fn any_rules_convert_without_panic_into_yaml_that_validates(
            rules in lines(),
            marks in lines(),
        ) {
            let i = ipvsadm::import(
                &rules,
                Some(ipvsadm::Marks { name: "m", text: &marks }),
                Some("eth0"),
            );
            if let Err(e) = xvs_config::parse("converted.yaml", &i.yaml) {
                prop_assert!(false, "{e}\n{}\n{:?}", i.yaml, i.warnings);
            }
        }
    }
}

/// `-6` services as `ipvsadm-save -n` writes them, beside IPv4 ones: the IPv6 one
/// converts with its prefix-length persistence; its real server of the other family is
/// left out, named with its line.
#[test]
fn a_dual_stack_director() {
    let (c, w) = convert("dual-stack.rules", None, "dual-stack.yaml");
    assert_eq!(c.virtual_servers.len(), 2);
    let v6 = &c.virtual_servers[1];
    assert_eq!(v6.name, "[2001:db8::100]:80/tcp");
    assert!(v6.address.is_ipv6());
    assert_eq!(v6.persistence.map(|p| p.prefix6), Some(64));
    assert_eq!(addrs(v6), ["2001:db8::11:80", "2001:db8::12:80"]);
    assert_eq!(addrs(&c.virtual_servers[0]).len(), 2);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("line 9:"), "{w:?}");
}
