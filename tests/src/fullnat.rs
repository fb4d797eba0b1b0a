//! The FullNAT lab: the real servers on a subnet of their own behind a router (their
//! default route is the router, never the director), the client and the director on
//! another. The director's requests reach the real servers from its local addresses,
//! which the router reaches on the director's link; nothing on the real servers knows
//! the VIP.
//!
//! ```text
//!  cl 172.16.0.1 ─┐                         ┌─ rs1 10.20.0.11
//!  lb 172.16.0.2 ─┤ br0 ── rt ── br1 ───────┼─ rs2 10.20.0.12
//!     VIP .100    │   .254   10.20.0.254    └─ rs3 10.20.0.13
//!     local .201, .202
//! ```

use anyhow::Result;

use crate::dr::{rs_name, DrLab, Prep, Switch};
use crate::lab::Lab;
use crate::tools;

pub const VIP: &str = "172.16.0.100";
pub const CLIENT: &str = "172.16.0.1";
pub const DIRECTOR: &str = "172.16.0.2";
pub const ROUTER_FRONT: &str = "172.16.0.254";
pub const ROUTER_BACK: &str = "10.20.0.254";
/// The director's local addresses, on its link as /32s.
pub const LOCALS: [&str; 2] = ["172.16.0.201", "172.16.0.202"];

/// IPv6: the same layout on 2001:db8:f0::/64 in front, 2001:db8:f1::/64 behind.
pub const VIP6: &str = "2001:db8:f0::100";
pub const CLIENT6: &str = "2001:db8:f0::1";
pub const DIRECTOR6: &str = "2001:db8:f0::2";
pub const ROUTER_FRONT6: &str = "2001:db8:f0::254";
pub const ROUTER_BACK6: &str = "2001:db8:f1::254";
pub const LOCAL6: &str = "2001:db8:f0::201";

pub fn rs_addr(i: usize) -> String {
    format!("10.20.0.{}", 11 + i)
}

pub fn rs_addr6(i: usize) -> String {
    format!("2001:db8:f1::{}", 11 + i)
}

/// Builds the lab with `real_servers` real servers (nginx not started: `start_web`).
pub fn build(real_servers: usize) -> Result<DrLab> {
    tools::require(&["ip", "ethtool", "sysctl"])?;
    let mut lab = Lab::new()?;
    DrLab::add_bridge(&mut lab)?;
    lab.sh("sw", "ip link add br1 type bridge && ip link set br1 up")?;
    for (host, addr) in [("cl", CLIENT), ("lb", DIRECTOR), ("rt", ROUTER_FRONT)] {
        DrLab::add_host(&mut lab, host, addr, 1, false)?;
    }
    for i in 0..real_servers {
        // `two_arm` puts an "rs" host on br1.
        DrLab::add_host(&mut lab, &rs_name(i), &rs_addr(i), 1, true)?;
        lab.sh(
            &rs_name(i),
            &format!("ip route add default via {ROUTER_BACK}"),
        )?;
    }
    // The router's second leg, and forwarding on.
    let rt = lab.ns("rt");
    lab.sh(
        "sw",
        &format!("ip link add rtb type veth peer name eth1 netns {rt} && ip link set rtb master br1 && ip link set rtb up"),
    )?;
    lab.sh(
        "rt",
        &format!("ip link set eth1 up && ip addr add {ROUTER_BACK}/24 dev eth1 && sysctl -qw net.ipv4.ip_forward=1"),
    )?;
    // The director: the VIP (as keepalived would give it), its local addresses, and
    // the real servers' subnet through the router.
    lab.sh("lb", &format!("ip addr add {VIP}/32 dev eth0"))?;
    for a in LOCALS {
        lab.sh("lb", &format!("ip addr add {a}/32 dev eth0"))?;
    }
    lab.sh(
        "lb",
        &format!("ip route add 10.20.0.0/24 via {ROUTER_FRONT}"),
    )?;
    DrLab::prepare_switch(&lab, Switch::Prepared)?;
    DrLab::write_scripts(&lab)?;
    Ok(DrLab {
        lab,
        real_servers,
        vip: VIP,
        client: CLIENT,
        prep: Prep::Nat,
    })
}

/// Adds IPv6 to every host of `lab` (no DAD), the IPv6 VIP and local address on the
/// director, the routes through the router, and forwarding on it.
pub fn add_ipv6(lab: &DrLab) -> Result<()> {
    let l = &lab.lab;
    let add = |host: &str, dev: &str, addr: &str| {
        l.sh(host, &format!("ip -6 addr add {addr}/64 dev {dev} nodad"))
    };
    add("cl", "eth0", CLIENT6)?;
    add("lb", "eth0", DIRECTOR6)?;
    add("rt", "eth0", ROUTER_FRONT6)?;
    add("rt", "eth1", ROUTER_BACK6)?;
    l.sh("rt", "sysctl -qw net.ipv6.conf.all.forwarding=1")?;
    for i in 0..lab.real_servers {
        add(&rs_name(i), "eth0", &rs_addr6(i))?;
        l.sh(
            &rs_name(i),
            &format!("ip -6 route add default via {ROUTER_BACK6}"),
        )?;
    }
    l.sh("lb", &format!("ip -6 addr add {VIP6}/128 dev eth0 nodad && ip -6 addr add {LOCAL6}/128 dev eth0 nodad"))?;
    l.sh(
        "lb",
        &format!("ip -6 route add 2001:db8:f1::/64 via {ROUTER_FRONT6}"),
    )?;
    Ok(())
}

/// The lab's xvs configuration: one FullNAT virtual server on VIP:port, wrr over the
/// real servers (`weights`) on port 80, from both local addresses (`ports` of them).
/// Ended connections give their pairs back within seconds (short FIN timeouts).
pub fn config(port: u16, weights: &[u32], ports: &str) -> String {
    let rs: String = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!(
                "      - {{ address: {}, port: 80, weight: {w} }}\n",
                rs_addr(i)
            )
        })
        .collect();
    format!(
        "interface: eth0\nflow_table_size: 65536\ntimeouts: {{ tcpfin: 2, time_wait: 2, close: 2 }}\nvirtual_servers:\n  - name: web\n    address: {VIP}\n    port: {port}\n    protocol: tcp\n    scheduler: wrr\n    forwarding: fullnat\n    local_addresses: [{}]\n    local_ports: \"{ports}\"\n    health_check: {{ type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }}\n    real_servers:\n{rs}",
        LOCALS.join(", ")
    )
}

/// The second director of a VRRP pair, on the clients' link.
pub const DIRECTOR2: &str = "172.16.0.3";

/// A VRRP pair: as `build`, plus `lb2`, with the VIP and the local addresses left to
/// VRRP (on neither director at first). The router reaches the local addresses on the
/// link, wherever VRRP puts them.
pub fn build_pair(real_servers: usize) -> Result<DrLab> {
    let mut lab = build(real_servers)?;
    for a in std::iter::once(VIP).chain(LOCALS) {
        lab.lab.sh("lb", &format!("ip addr del {a}/32 dev eth0"))?;
    }
    DrLab::add_host(&mut lab.lab, "lb2", DIRECTOR2, 1, false)?;
    // As for `lb` (`Switch::Prepared`): XDP on the bridge port, its TX checksums whole.
    let pass = lab.lab.dir.join("pass.bpf.o");
    lab.lab.sh(
        "sw",
        &format!(
            "ip link set dev lb2 xdpdrv obj {} sec xdp && ethtool -K lb2 tx off >/dev/null",
            pass.display()
        ),
    )?;
    lab.lab.sh(
        "lb2",
        &format!("ip route add 10.20.0.0/24 via {ROUTER_FRONT}"),
    )?;
    // As xvs's start-up warning asks: a new master's first replies go to clients whose
    // MAC it has not learned, through the kernel's FIB, which needs forwarding on.
    for host in ["lb", "lb2"] {
        lab.lab.sh(host, "sysctl -qw net.ipv4.ip_forward=1")?;
    }
    Ok(lab)
}

/// One director of the pair's configuration: `config`'s, with a VRRP instance moving
/// the VIP and the local addresses, and connection sync (with `key`).
pub fn pair_config(state: &str, priority: u8, key: Option<&str>) -> String {
    let mut c = config(80, &[1, 1, 1], "1024-65535");
    c += &format!(
        "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: {state}\n    virtual_router_id: 52\n    priority: {priority}\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddresses: [{VIP}, {}]\n",
        LOCALS.join(", ")
    );
    if let Some(key) = key {
        c += &format!("connection_sync:\n  interface: eth0\n  key: \"{key}\"\n");
    }
    c
}

/// The IPv6 lab's configuration (after `add_ipv6`): one FullNAT virtual server on
/// [VIP6]:port, rr over the real servers' IPv6 addresses, from `LOCAL6`.
pub fn config6(port: u16, real_servers: usize) -> String {
    let rs: String = (0..real_servers)
        .map(|i| format!("      - {{ address: \"{}\", port: 80 }}\n", rs_addr6(i)))
        .collect();
    format!(
        "interface: eth0\nflow_table_size: 65536\nvirtual_servers:\n  - name: web6\n    address: \"{VIP6}\"\n    port: {port}\n    protocol: tcp\n    scheduler: rr\n    forwarding: fullnat\n    local_addresses: [\"{LOCAL6}\"]\n    health_check: {{ type: tcp, delay_loop: 0.5, connect_timeout: 1, retry: 0 }}\n    real_servers:\n{rs}"
    )
}
