//! `xvs realserver up|down` with an IPv6 VIP, and the Linux behaviour it relies on: the
//! VIP on lo as /128 (no DAD) is never claimed on the wire, because Linux answers a
//! neighbour solicitation only for the addresses of the interface it arrived on (so no
//! `arp_ignore` counterpart is needed), while a packet to the VIP that arrives on eth0
//! with the real server's MAC (as a DR director sends it) is accepted and answered from
//! the VIP.

use std::time::Duration;

use xvs_lab::Lab;

const CLIENT: &str = "2001:db8::1";
const RS: &str = "2001:db8::11";
const VIP: &str = "2001:db8::100";

#[test]
fn an_ipv6_vip_on_lo_is_served_but_never_claimed_on_the_wire() {
    xvs_lab::tools::require(&["ip", "ping", "tcpdump"]).unwrap();
    let mut lab = Lab::new().unwrap();
    let (cl, rs) = (lab.add_ns("cl").unwrap(), lab.add_ns("rs").unwrap());
    for host in ["cl", "rs"] {
        // Addresses usable at once: no duplicate address detection in a lab.
        lab.sh(
            host,
            "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0",
        )
        .unwrap();
    }
    lab.sh(
        "cl",
        &format!("ip link add eth0 netns {cl} type veth peer name eth0 netns {rs}"),
    )
    .unwrap();
    lab.sh(
        "cl",
        &format!("ip -6 addr add {CLIENT}/64 dev eth0 nodad && ip link set eth0 up"),
    )
    .unwrap();
    lab.sh(
        "rs",
        &format!("ip -6 addr add {RS}/64 dev eth0 nodad && ip link set eth0 up"),
    )
    .unwrap();
    let bin = xvs_lab::tools::xvs_bin().unwrap().display().to_string();

    let up = lab
        .sh("rs", &format!("{bin} realserver up --vip {VIP} --mode dr"))
        .unwrap();
    assert_eq!(
        up.trim(),
        format!("added {VIP}/128 to lo"),
        "no sysctl for IPv6 alone"
    );
    assert!(lab
        .sh("rs", "ip -6 addr show dev lo")
        .unwrap()
        .contains(&format!("{VIP}/128")));

    // The client resolves the VIP on the link: the real server hears the solicitation
    // and does not answer it.
    let pcap = lab.dir.join("rs.pcap").display().to_string();
    lab.spawn_tcpdump("rs", "tcpdump", &pcap, "icmp6").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let ping = lab
        .sh_output("cl", &format!("ping -6 -c 2 -W 1 {VIP}"))
        .unwrap();
    assert!(!ping.status.success(), "the VIP answered: {ping:?}");
    let neigh = lab
        .sh("cl", &format!("ip -6 neigh show {VIP} dev eth0"))
        .unwrap();
    assert!(!neigh.contains("lladdr"), "the VIP was resolved: {neigh}");
    lab.stop("tcpdump");
    let seen = lab
        .sh("rs", &format!("tcpdump -r {pcap} -nn 2>/dev/null"))
        .unwrap();
    assert!(
        seen.contains(&format!("neighbor solicitation, who has {VIP}")),
        "no solicitation reached the real server: {seen}"
    );
    assert!(
        !seen.contains(&format!("neighbor advertisement, tgt is {VIP}")),
        "the real server claimed the VIP: {seen}"
    );

    // As a DR director delivers it: to the VIP, with the real server's MAC.
    let mac = lab.sh("rs", "cat /sys/class/net/eth0/address").unwrap();
    lab.sh(
        "cl",
        &format!(
            "ip -6 neigh replace {VIP} lladdr {} dev eth0 nud permanent",
            mac.trim()
        ),
    )
    .unwrap();
    let ping = lab.sh("cl", &format!("ping -6 -c 2 -W 2 {VIP}")).unwrap();
    assert!(ping.contains(&format!("from {VIP}")), "{ping}");

    // Down undoes it: the VIP leaves lo, and the same packets go unanswered.
    let down = lab
        .sh(
            "rs",
            &format!("{bin} realserver down --vip {VIP} --mode dr"),
        )
        .unwrap();
    assert_eq!(down.trim(), format!("removed {VIP}/128 from lo"));
    assert!(!lab
        .sh("rs", "ip -6 addr show dev lo")
        .unwrap()
        .contains(VIP));
    let ping = lab
        .sh_output("cl", &format!("ping -6 -c 1 -W 1 {VIP}"))
        .unwrap();
    assert!(!ping.status.success(), "{ping:?}");
}
