//! Least privilege: a DR director with VRRP run by `setpriv` as an unprivileged user
//! holding exactly the capabilities docs/privileges.md lists (those the systemd unit
//! grants) balances, takes the VIP and stops cleanly; with any one of them taken away it
//! refuses to start and names it, and so does the kernel when xvs's own check is off.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use xvs_lab::dr::{self, DrLab, VIP};

/// What `packaging/xvs.service` grants, as setpriv spells it.
const CAPS: [&str; 6] = [
    "net_admin",
    "net_raw",
    "bpf",
    "perfmon",
    "ipc_lock",
    "sys_nice",
];

/// The unit grants exactly this set, in both its lines.
#[test]
fn the_unit_grants_exactly_this_set() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/xvs.service"),
    )
    .unwrap();
    let mut want: Vec<String> = CAPS
        .iter()
        .map(|c| format!("CAP_{}", c.to_uppercase()))
        .collect();
    want.sort();
    for key in ["AmbientCapabilities=", "CapabilityBoundingSet="] {
        let line = unit.lines().find_map(|l| l.strip_prefix(key)).expect(key);
        let mut got: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        got.sort();
        assert_eq!(got, want, "{key}");
    }
}
/// Debian's `nobody`: a user with no privilege and no files.
const UID: &str = "65534";

/// `setpriv ... xvs run -c CFG` holding `caps` only.
fn setpriv(bin: &str, cfg: &str, caps: &[&str]) -> String {
    let set: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    let set = format!("-all,{}", set.join(","));
    format!(
        "setpriv --reuid {UID} --regid {UID} --clear-groups --no-new-privs --inh-caps={set} --ambient-caps={set} --bounding-set={set} {bin} run -c {cfg}"
    )
}

#[test]
fn a_dr_director_with_vrrp_runs_with_exactly_its_capabilities() {
    xvs_lab::tools::require(&["setpriv"]).unwrap();
    let mut lab = DrLab::build_pair(2).expect("build the lab");
    lab.start_web().unwrap();
    // Everything the unprivileged xvs reads or writes, in a directory it may use: its
    // binary, its file, its control socket.
    let dir = lab.lab.dir.join("priv");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.join("xvs");
    std::fs::copy(xvs_lab::tools::xvs_bin().unwrap(), &bin).unwrap();
    let socket = dir.join("xvs.sock");
    let yaml = dr::config(&[1, 1], None)
        + &format!(
            "control_socket: {}\nvrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: MASTER\n    virtual_router_id: 51\n    priority: 150\n    advert_int: 1\n    virtual_ipaddresses: [{VIP}]\n",
            socket.display()
        );
    let cfg = dir.join("xvs.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (bin, cfg) = (bin.display().to_string(), cfg.display().to_string());

    // Exactly the set: it runs, as that user with that set, and does the whole job.
    let run = setpriv(&bin, &cfg, &CAPS);
    let p = lab
        .lab
        .spawn("lb", "xvs", &["sh", "-c", &format!("exec {run}")])
        .unwrap();
    p.wait_for_log("xvs running", Duration::from_secs(20))
        .unwrap();
    let pid = p.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:").get(1), Some(&UID), "{status}");
    // net_admin 12, net_raw 13, ipc_lock 14, sys_nice 23, perfmon 38, bpf 39.
    assert_eq!(field("CapEff:"), ["000000c000807000"], "the effective set");
    lab.wait_vip("lb", Duration::from_secs(10), "never became VRRP master");
    let answers = lab.http_gets(20, "/").unwrap();
    let tally = DrLab::tally(&answers);
    assert_eq!(
        tally.get(&dr::rs_name(0)).zip(tally.get(&dr::rs_name(1))),
        Some((&10, &10)),
        "{tally:?}"
    );
    let status = lab
        .lab
        .sh("lb", &format!("{bin} status --config {cfg}"))
        .unwrap();
    assert!(status.contains(&format!("TCP  {VIP}:80 wrr")), "{status}");
    // The user it runs as may ask too, with no capability at all.
    let own = lab
        .lab
        .sh(
            "lb",
            &format!(
                "setpriv --reuid {UID} --regid {UID} --clear-groups {bin} status --config {cfg}"
            ),
        )
        .unwrap();
    assert!(own.contains(&format!("TCP  {VIP}:80 wrr")), "{own}");
    let (exit, out) = lab.stop_xvs().unwrap();
    assert!(exit.success(), "{out}");
    assert!(!lab.director_has_xdp().unwrap(), "detached");
    assert!(!lab.holds_vip("lb").unwrap(), "the VIP released");

    // Each one taken away: refused before anything is touched, the capability named;
    // and with xvs's check off the kernel refuses too: each one is needed.
    for cap in CAPS {
        let fewer: Vec<&str> = CAPS.iter().copied().filter(|c| *c != cap).collect();
        let name = format!("CAP_{}", cap.to_uppercase());
        for check in ["on", "off"] {
            let script = format!(
                "XVS_PRIVILEGE_CHECK={check} timeout 30 {}",
                setpriv(&bin, &cfg, &fewer)
            );
            let out = lab.lab.sh_output("lb", &script).unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "without {name} (check {check}): ran");
            assert_ne!(out.status.code(), Some(124), "without {name}: hung");
            assert!(err.contains(&name), "without {name} (check {check}): {err}");
            assert!(!lab.director_has_xdp().unwrap(), "without {name}: left XDP");
        }
    }
}
