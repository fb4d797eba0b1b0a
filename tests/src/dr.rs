//! The DR lab of the seeds: a client, a director and real servers on one bridge. Real
//! servers hold the VIP on lo with arp_ignore=1 / arp_announce=2 and answer the client
//! directly.
//!
//! ```text
//!  client 10.0.0.1 ─┐
//!  director 10.0.0.2 (+VIP 10.0.0.100) ─┤ br0 (namespace "sw")
//!  rsN 10.0.0.1N (VIP on lo) ─┘
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{tools, Lab};

pub const VIP: &str = "10.0.0.100";
pub const CLIENT: &str = "10.0.0.1";
pub const DIRECTOR: &str = "10.0.0.2";
pub const BIG_FILE_BYTES: usize = 20 * 1024 * 1024;

const UDP_ECHO: &str = include_str!("udp_echo.py");
const UDP_CLIENT: &str = include_str!("udp_client.py");
const UDP_STREAM: &str = include_str!("udp_stream.py");
const RAW_SEND: &str = include_str!("raw_send.py");
const SYNC_REPLAY: &str = include_str!("sync_replay.py");
const HTTP_LOOP: &str = include_str!("http_loop.py");
const SMTP_SINK: &str = include_str!("smtp_sink.py");

/// The second director of a VRRP pair.
pub const DIRECTOR2: &str = "10.0.0.3";

pub fn rs_addr(i: usize) -> String {
    format!("10.0.0.{}", 11 + i)
}

/// The same hosts' IPv6 addresses (`DrLab::add_ipv6`), one /64 on the same bridge.
pub const VIP6: &str = "2001:db8::100";
pub const CLIENT6: &str = "2001:db8::1";
pub const DIRECTOR6: &str = "2001:db8::2";

/// The NAT66 lab's client side (`DrLab::add_ipv6_nat`).
pub const NAT_VIP6: &str = "2001:db8:1::100";
pub const NAT_CLIENT6: &str = "2001:db8:1::1";
pub const NAT_DIRECTOR6: &str = "2001:db8:1::2";

pub fn rs_addr6(i: usize) -> String {
    format!("2001:db8::{}", 11 + i)
}

pub fn rs_name(i: usize) -> String {
    format!("rs{}", i + 1)
}

pub struct DrLab {
    pub lab: Lab,
    pub real_servers: usize,
    /// The VIP and client address of this lab (NAT puts them on their own subnet).
    pub vip: &'static str,
    pub client: &'static str,
    /// How the real servers were prepared.
    pub prep: Prep,
}

/// NAT lab addresses: clients and VIP on 172.16.0.0/24, real servers on 10.0.0.0/24
/// behind the director (their default gateway), one arm.
pub const NAT_VIP: &str = "172.16.0.100";
pub const NAT_CLIENT: &str = "172.16.0.1";
pub const NAT_DIRECTOR: &str = "172.16.0.2";
/// A NAT pair's second director on the clients' side, and the real servers' gateway
/// that VRRP moves between them (`DrLab::build_pair_with`).
pub const NAT_DIRECTOR2: &str = "172.16.0.3";
pub const NAT_GATEWAY: &str = "10.0.0.254";

/// How the switch side of the director's link is prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// An XDP program on the director's bridge port and TX checksum offload off there.
    Prepared,
    /// Nothing: a bridge and veths as `ip link` makes them.
    Bare,
}

/// How the real servers get ready for the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prep {
    /// As the seeds' shell script: VIP on lo, arp_ignore=1, arp_announce=2.
    Script,
    /// `xvs realserver up --mode dr`.
    XvsDr,
    /// `xvs realserver up --mode tun --dev eth0` (IPIP decap by xvs's BPF program).
    XvsTun,
    /// NAT: no VIP on the real servers; their default route goes through the director.
    Nat,
    /// Two-arm NAT: as `Nat`, with the real servers on a second bridge behind the
    /// director's eth1.
    Nat2,
}

impl DrLab {
    /// Builds the namespaces and links. The director's link has `queues` RX queues (one
    /// xvs worker each).
    pub fn build(real_servers: usize, queues: u32) -> Result<DrLab> {
        Self::build_with(real_servers, queues, Prep::Script)
    }

    /// As `build`, preparing the real servers as `prep` says.
    pub fn build_with(real_servers: usize, queues: u32, prep: Prep) -> Result<DrLab> {
        Self::build_switch(real_servers, queues, prep, Switch::Prepared)
    }

    /// As `build`, with the switch side left as a new user leaves it (`Switch::Bare`).
    pub fn build_bare(real_servers: usize, queues: u32) -> Result<DrLab> {
        Self::build_switch(real_servers, queues, Prep::Script, Switch::Bare)
    }

    /// As `build_with`, the switch side prepared as `switch` says.
    pub fn build_switch(
        real_servers: usize,
        queues: u32,
        prep: Prep,
        switch: Switch,
    ) -> Result<DrLab> {
        tools::require(&["ip", "ethtool", "sysctl"])?;
        let mut lab = Lab::new()?;
        Self::add_bridge(&mut lab)?;
        let nat = matches!(prep, Prep::Nat | Prep::Nat2);
        let two_arm = prep == Prep::Nat2;
        let (vip, client) = if nat {
            (NAT_VIP, NAT_CLIENT)
        } else {
            (VIP, CLIENT)
        };
        let director = if two_arm { NAT_DIRECTOR } else { DIRECTOR };
        if two_arm {
            lab.sh("sw", "ip link add br1 type bridge && ip link set br1 up")?;
        }
        let mut hosts = vec![
            ("cl".to_string(), client.to_string()),
            ("lb".to_string(), director.to_string()),
        ];
        hosts.extend((0..real_servers).map(|i| (rs_name(i), rs_addr(i))));
        for (host, addr) in &hosts {
            Self::add_host(&mut lab, host, addr, queues, two_arm)?;
        }
        // The director owns the VIP, as keepalived would give it.
        lab.sh("lb", &format!("ip addr add {vip}/32 dev eth0"))?;
        if two_arm {
            Self::add_internal_arm(&lab, queues)?;
        }
        if prep == Prep::Nat {
            // One arm: the director also on the clients' subnet.
            lab.sh("lb", &format!("ip addr add {NAT_DIRECTOR}/24 dev eth0"))?;
        }
        Self::prepare_switch(&lab, switch)?;
        Self::prepare_real_servers(&lab, real_servers, prep)?;
        Self::write_scripts(&lab)?;
        Ok(DrLab {
            lab,
            real_servers,
            vip,
            client,
            prep,
        })
    }

    /// The switch: namespace "sw" with bridge br0, the bridge's netfilter hooks off.
    pub(crate) fn add_bridge(lab: &mut Lab) -> Result<()> {
        lab.add_ns("sw")?;
        lab.sh("sw", "ip link add br0 type bridge && ip link set br0 up")?;
        // A switch forwards frames; with br_netfilter loaded the kernel's bridge would also
        // validate and filter IPv4 (dropping the malformed frames tests send on purpose).
        lab.sh(
            "sw",
            "if [ -d /proc/sys/net/bridge ]; then sysctl -qw net.bridge.bridge-nf-call-iptables=0 \\
             net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0; fi",
        )?;
        Ok(())
    }

    /// Host `host` in a namespace of its own, its eth0 (`queues` queues for the director)
    /// on br0 (br1 for a two-arm lab's real servers) with address `addr`/24.
    pub fn add_host(
        lab: &mut Lab,
        host: &str,
        addr: &str,
        queues: u32,
        two_arm: bool,
    ) -> Result<()> {
        let ns = lab.add_ns(host)?;
        let q = if host == "lb" { queues } else { 1 };
        let br = if two_arm && host.starts_with("rs") {
            "br1"
        } else {
            "br0"
        };
        lab.sh(
            "sw",
            &format!(
                "ip link add {host} numtxqueues {q} numrxqueues {q} type veth peer name eth0 netns {ns} numtxqueues {q} numrxqueues {q} \
                 && ip link set {host} master {br} && ip link set {host} up"
            ),
        )?;
        lab.sh(
            host,
            &format!("ip link set eth0 up && ip addr add {addr}/24 dev eth0"),
        )?;
        Ok(())
    }

    /// The internal arm: eth1 on the real servers' bridge, same queue count.
    fn add_internal_arm(lab: &Lab, queues: u32) -> Result<()> {
        let ns = lab.ns("lb");
        lab.sh(
            "sw",
            &format!(
                "ip link add lb2 numtxqueues {queues} numrxqueues {queues} type veth peer name eth1 netns {ns} \
                 numtxqueues {queues} numrxqueues {queues} && ip link set lb2 master br1 && ip link set lb2 up \
                 && ethtool -K lb2 tx off >/dev/null"
            ),
        )?;
        lab.sh(
            "lb",
            &format!("ip link set eth1 up && ip addr add {DIRECTOR}/24 dev eth1"),
        )?;
        Ok(())
    }

    /// Writes the pass program; for `Switch::Prepared`, attaches it to the director's
    /// bridge port and turns that port's TX checksum offload off.
    pub(crate) fn prepare_switch(lab: &Lab, switch: Switch) -> Result<()> {
        let pass = lab.write("pass.bpf.o", xvs_bpf::PASS_OBJECT)?;
        if switch == Switch::Prepared {
            // What the director sends with XDP_TX (NAT replies; DR and TUN flows on the
            // fast path) a veth delivers only when its peer runs XDP too (`fast_path:
            // auto` finds out and falls back; these labs keep the fast path).
            lab.sh(
                "sw",
                &format!("ip link set dev lb xdpdrv obj {} sec xdp", pass.display()),
            )?;
            // veth hands TCP from the client over with only the pseudo-header checksum
            // (CHECKSUM_PARTIAL); a bridge port without TX checksum offload completes it
            // before the director sees the frame, as a real wire would.
            lab.sh("sw", "ethtool -K lb tx off >/dev/null")?;
            // Two arms: the internal port too takes what XDP redirects there (NAT
            // requests on the fast path).
            if lab
                .sh("sw", "ip link show lb2 >/dev/null 2>&1 && echo yes || true")?
                .trim()
                == "yes"
            {
                lab.sh(
                    "sw",
                    &format!("ip link set dev lb2 xdpdrv obj {} sec xdp", pass.display()),
                )?;
            }
        }
        Ok(())
    }

    /// Gets each real server ready for the VIP as `prep` says.
    fn prepare_real_servers(lab: &Lab, real_servers: usize, prep: Prep) -> Result<()> {
        for i in 0..real_servers {
            let script = match prep {
                Prep::Script => format!(
                    "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                     net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 && ip addr add {VIP}/32 dev lo"
                ),
                Prep::XvsDr => format!("{} realserver up --vip {VIP} --mode dr --dev eth0", tools::xvs_bin()?.display()),
                Prep::XvsTun => format!("{} realserver up --vip {VIP} --mode tun --dev eth0", tools::xvs_bin()?.display()),
                Prep::Nat | Prep::Nat2 => format!("ip route add default via {DIRECTOR}"),
            };
            lab.sh(&rs_name(i), &script)?;
        }
        Ok(())
    }

    /// The helper scripts the tests run in the namespaces.
    pub fn write_scripts(lab: &Lab) -> Result<()> {
        lab.write("udp_echo.py", UDP_ECHO)?;
        lab.write("udp_client.py", UDP_CLIENT)?;
        lab.write("udp_stream.py", UDP_STREAM)?;
        lab.write("raw_send.py", RAW_SEND)?;
        lab.write("sync_replay.py", SYNC_REPLAY)?;
        lab.write("http_loop.py", HTTP_LOOP)?;
        lab.write("smtp_sink.py", SMTP_SINK)?;
        Ok(())
    }

    /// A VRRP pair: as `build`, plus a second director `lb2`, and the VIP left to VRRP
    /// (on neither director at first).
    pub fn build_pair(real_servers: usize) -> Result<DrLab> {
        Self::build_pair_with(real_servers, Prep::Script)
    }

    /// As `build_pair`, the real servers prepared as `prep` says. For one-arm NAT
    /// (`Prep::Nat`) the second director is on the clients' subnet too
    /// (`NAT_DIRECTOR2`), and the real servers' gateway is `NAT_GATEWAY`, an address VRRP
    /// moves with the VIP, as LVS-NAT pairs have it.
    pub fn build_pair_with(real_servers: usize, prep: Prep) -> Result<DrLab> {
        anyhow::ensure!(prep != Prep::Nat2, "a two-arm NAT pair is not built here");
        let mut lab = Self::build_with(real_servers, 1, prep)?;
        let vip = lab.vip;
        lab.lab
            .sh("lb", &format!("ip addr del {vip}/32 dev eth0"))?;
        let ns = lab.lab.add_ns("lb2")?;
        lab.lab.sh(
            "sw",
            &format!("ip link add lb2 type veth peer name eth0 netns {ns} && ip link set lb2 master br0 && ip link set lb2 up && ethtool -K lb2 tx off >/dev/null"),
        )?;
        // As for `lb`: the second director's XDP_TX frames need XDP on its peer.
        let pass = lab.lab.dir.join("pass.bpf.o");
        lab.lab.sh(
            "sw",
            &format!("ip link set dev lb2 xdpdrv obj {} sec xdp", pass.display()),
        )?;
        lab.lab.sh(
            "lb2",
            &format!("ip link set eth0 up && ip addr add {DIRECTOR2}/24 dev eth0"),
        )?;
        if prep == Prep::Nat {
            lab.lab
                .sh("lb2", &format!("ip addr add {NAT_DIRECTOR2}/24 dev eth0"))?;
            // As LVS-NAT directors are set up (the seeds' `net.ipv4.ip_forward = 1`): the
            // steering program's FIB lookup for a client it has not learned (the new
            // master after a failover) refuses to route with forwarding off.
            for host in ["lb", "lb2"] {
                lab.lab.sh(host, "sysctl -qw net.ipv4.ip_forward=1")?;
            }
            for i in 0..real_servers {
                lab.lab.sh(
                    &rs_name(i),
                    &format!("ip route replace default via {NAT_GATEWAY}"),
                )?;
            }
        }
        Ok(lab)
    }

    /// Gives every host its IPv6 address on the bridge (2001:db8::/64, no DAD), the
    /// director the IPv6 VIP on eth0, and, when the real servers were prepared by the
    /// script (`Prep::Script`), each of them the IPv6 VIP on lo as /128, as `xvs
    /// realserver up` does (Linux answers neighbour solicitations only for the addresses
    /// of the interface they arrive on: nothing else is needed). Otherwise the test runs
    /// `xvs realserver up` for the IPv6 VIP itself.
    pub fn add_ipv6(&mut self) -> Result<()> {
        let mut hosts = vec![("cl".to_string(), CLIENT6.to_string())];
        hosts.push(("lb".to_string(), DIRECTOR6.to_string()));
        hosts.extend((0..self.real_servers).map(|i| (rs_name(i), rs_addr6(i))));
        self.ipv6_addrs(&hosts)?;
        self.lab
            .sh("lb", &format!("ip -6 addr add {VIP6}/128 dev eth0 nodad"))?;
        for i in (0..self.real_servers).filter(|_| self.prep == Prep::Script) {
            self.lab.sh(
                &rs_name(i),
                &format!("ip -6 addr add {VIP6}/128 dev lo nodad"),
            )?;
        }
        Ok(())
    }

    /// (host, address): each /64 on the host's eth0, usable at once (no DAD), and no
    /// router solicitations on the wire. Then waits out the duplicate address detection
    /// of the link-local addresses, which began when the links came up: a real server
    /// whose link-local address is still tentative cannot solicit its first client's
    /// MAC (the kernel sends no neighbour solicitation without a usable source), so its
    /// first SYN-ACK left a second late, and the client's retransmitted SYN — another
    /// flow hash, so on veth another RX queue and worker — was scheduled afresh.
    fn ipv6_addrs(&self, hosts: &[(String, String)]) -> Result<()> {
        for (host, addr) in hosts {
            self.lab.sh(
                host,
                &format!(
                    "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0 \
                     net.ipv6.conf.eth0.router_solicitations=0 && ip -6 addr add {addr}/64 dev eth0 nodad"
                ),
            )?;
        }
        let t0 = std::time::Instant::now();
        for (host, _) in hosts {
            while !self
                .lab
                .sh(host, "ip -6 addr show tentative")?
                .trim()
                .is_empty()
            {
                anyhow::ensure!(
                    t0.elapsed() < std::time::Duration::from_secs(5),
                    "{host}: IPv6 addresses still tentative after 5 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// IPv6 for a NAT lab (`Prep::Nat`, `Prep::Nat2`), as IPv4's: the client and the
    /// NAT66 VIP on 2001:db8:1::/64, the real servers on 2001:db8::/64 with the director
    /// (2001:db8::2, on the internal arm when there are two) as their default gateway.
    pub fn add_ipv6_nat(&mut self) -> Result<()> {
        let mut hosts = vec![
            ("cl".to_string(), NAT_CLIENT6.to_string()),
            ("lb".to_string(), NAT_DIRECTOR6.to_string()),
        ];
        hosts.extend((0..self.real_servers).map(|i| (rs_name(i), rs_addr6(i))));
        self.ipv6_addrs(&hosts)?;
        // The real servers' gateway: on eth0 (one arm) or the internal arm, eth1 (two).
        let internal = if self.prep == Prep::Nat2 {
            "eth1"
        } else {
            "eth0"
        };
        self.lab.sh(
            "lb",
            &format!(
                "sysctl -qw net.ipv6.conf.{internal}.accept_dad=0 && ip -6 addr add {DIRECTOR6}/64 dev {internal} nodad"
            ),
        )?;
        self.lab.sh(
            "lb",
            &format!("ip -6 addr add {NAT_VIP6}/128 dev eth0 nodad"),
        )?;
        for i in 0..self.real_servers {
            self.lab.sh(
                &rs_name(i),
                &format!("ip -6 route add default via {DIRECTOR6}"),
            )?;
        }
        Ok(())
    }

    /// As `http_gets`, to the IPv6 VIP.
    pub fn http_gets6(&self, n: usize, path: &str) -> Result<Vec<String>> {
        let out = self.lab.sh(
            "cl",
            &format!(
                "for i in $(seq {n}); do curl -s -g -m 5 'http://[{VIP6}]{path}' || echo FAIL; done"
            ),
        )?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Starts `xvs run` on director `host` under process name `name` and waits until it
    /// runs.
    pub fn start_xvs_on(&mut self, host: &str, name: &str, config: &std::path::Path) -> Result<()> {
        let bin = tools::xvs_bin()?.display().to_string();
        let cfg = config.display().to_string();
        let p = self.lab.spawn(host, name, &[&bin, "run", "-c", &cfg])?;
        p.wait_for_log("xvs running", Duration::from_secs(20))?;
        Ok(())
    }

    /// Runs the client loop for `secs` seconds in the background (process "loop"), a
    /// request every 20 ms with a 300 ms timeout; `loop_results` reads what it saw.
    pub fn start_http_loop(&mut self, secs: f64) -> Result<()> {
        self.start_http_loop_paced(secs, 0.02, 0.3)
    }

    /// As `start_http_loop`, a request every `pace` seconds, each bounded by `timeout`.
    pub fn start_http_loop_paced(&mut self, secs: f64, pace: f64, timeout: f64) -> Result<()> {
        let script = self.lab.dir.join("http_loop.py").display().to_string();
        let vip = self.vip.to_string();
        let (secs, pace, timeout) = (secs.to_string(), pace.to_string(), timeout.to_string());
        self.lab.spawn(
            "cl",
            "loop",
            &["python3", "-u", &script, &vip, "80", &secs, &pace, &timeout],
        )?;
        Ok(())
    }

    /// Crashes the director in `host` whose xvs runs as process `name`: SIGKILL, then its
    /// link down (the failover tests' "master crashes"). Returns the moment, in seconds
    /// since the epoch, as the client loop stamps its requests.
    pub fn crash(&mut self, host: &str, name: &str) -> Result<f64> {
        let crash = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        let pid = self.lab.proc(name).context("no such process")?.pid();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        self.lab.sh(host, "ip link set eth0 down")?;
        Ok(crash)
    }

    /// The client loop's answers around `crash`: the last answered request before it and
    /// the first answered after it (their difference is the interruption).
    pub fn around(results: &[(f64, bool)], crash: f64) -> Option<(f64, f64)> {
        let before = results
            .iter()
            .filter(|(t, ok)| *ok && *t < crash)
            .map(|r| r.0)
            .fold(f64::MIN, f64::max);
        let after = results.iter().find(|(t, ok)| *ok && *t > crash)?.0;
        Some((before, after))
    }

    /// (time, ok) per request of the client loop, once it has finished.
    pub fn loop_results(&mut self, timeout: Duration) -> Result<Vec<(f64, bool)>> {
        let p = self.lab.proc("loop").context("no client loop")?;
        p.wait(timeout).context("client loop did not finish")?;
        Ok(p.output()
            .lines()
            .filter_map(|l| {
                let (t, ok) = l.split_once(' ')?;
                Some((t.parse().ok()?, ok == "1"))
            })
            .collect())
    }

    /// Starts nginx on every real server: `/` answers its name, `/big.bin` is the same
    /// 20 MB on all of them, and whatever is under `/slow/` is sent at 500 kB/s. Access logs record the client address.
    pub fn start_web(&mut self) -> Result<()> {
        tools::require(&["nginx"])?;
        let big = self.lab.dir.join("big.bin");
        let mut data = vec![0u8; BIG_FILE_BYTES];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(&big, &data)?;
        for i in 0..self.real_servers {
            let name = rs_name(i);
            let root = self.lab.dir.join(&name);
            let www = root.join("www");
            std::fs::create_dir_all(&www)?;
            std::fs::write(www.join("index.html"), format!("{name}\n"))?;
            std::fs::hard_link(&big, www.join("big.bin"))?;
            std::fs::create_dir_all(www.join("upload"))?;
            let d = root.display();
            let conf = format!(
                "daemon off; user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 512; }}
http {{
  log_format xvs '$remote_addr $request_uri $status';
  access_log {d}/access.log xvs;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_timeout 0;
  server {{
    listen 80; listen [::]:80; root {d}/www;
    location /upload/ {{ dav_methods PUT; create_full_put_path on; client_max_body_size 64m; }}
    location /slow/ {{ limit_rate 500k; }}
  }}
}}
"
            );
            let conf_path = root.join("nginx.conf");
            std::fs::write(&conf_path, conf)?;
            let prefix = format!("{d}/");
            let conf_s = conf_path.display().to_string();
            let err = format!("{d}/error.log");
            self.lab.spawn(
                &name,
                &format!("nginx-{name}"),
                &["nginx", "-p", &prefix, "-e", &err, "-c", &conf_s],
            )?;
        }
        for i in 0..self.real_servers {
            self.wait_port(&rs_name(i), &rs_addr(i), 80)?;
        }
        Ok(())
    }

    /// The first `bytes` of big.bin as `/slow/NAME` on every real server (sent at nginx's
    /// 500 kB/s), for downloads that outlast what a test does meanwhile. Returns them.
    pub fn put_slow(&self, name: &str, bytes: usize) -> Result<Vec<u8>> {
        let mut big = std::fs::read(self.lab.dir.join("big.bin"))?;
        big.truncate(bytes);
        for i in 0..self.real_servers {
            let slow = self.lab.dir.join(rs_name(i)).join("www/slow");
            std::fs::create_dir_all(&slow)?;
            std::fs::write(slow.join(name), &big)?;
        }
        Ok(big)
    }

    /// Stops nginx on real server `i`.
    pub fn stop_web(&mut self, i: usize) {
        self.lab.stop(&format!("nginx-{}", rs_name(i)));
    }

    /// Starts nginx again on real server `i` (after `start_web` set it up).
    pub fn restart_web(&mut self, i: usize) -> Result<()> {
        let name = rs_name(i);
        let root = self.lab.dir.join(&name);
        let d = root.display().to_string();
        let (prefix, err, conf) = (
            format!("{d}/"),
            format!("{d}/error.log"),
            format!("{d}/nginx.conf"),
        );
        self.lab.spawn(
            &name,
            &format!("nginx-{name}"),
            &["nginx", "-p", &prefix, "-e", &err, "-c", &conf],
        )?;
        self.wait_port(&name, &rs_addr(i), 80)
    }

    /// Starts the UDP echo on every real server, bound to VIP:port.
    pub fn start_udp_echo(&mut self, port: u16) -> Result<()> {
        tools::require(&["python3"])?;
        let script = self.lab.dir.join("udp_echo.py").display().to_string();
        for i in 0..self.real_servers {
            let name = rs_name(i);
            let p = self.lab.spawn(
                &name,
                &format!("udp-{name}"),
                &["python3", "-u", &script, &name, VIP, &port.to_string()],
            )?;
            p.wait_for_log("listening", Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Waits until something listens on addr:port in namespace `host` (10 s at most).
    pub fn wait_port(&self, host: &str, addr: &str, port: u16) -> Result<()> {
        for _ in 0..100 {
            let out = self
                .lab
                .sh_output(host, &format!("ss -Hltn 'sport = :{port}'"))?;
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("nothing listens on {addr}:{port} in {host}")
    }

    pub fn write_config(&self, yaml: &str) -> Result<PathBuf> {
        self.lab.write("xvs.yaml", yaml)
    }

    /// Starts `xvs run` on the director and waits until its workers run.
    pub fn start_xvs(&mut self, config: &std::path::Path) -> Result<()> {
        let bin = tools::xvs_bin()?.display().to_string();
        let cfg = config.display().to_string();
        let p = self.lab.spawn("lb", "xvs", &[&bin, "run", "-c", &cfg])?;
        p.wait_for_log("xvs running", Duration::from_secs(20))?;
        // Real servers whose MAC xvs is still resolving are not scheduled yet.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let log = self.lab.proc("xvs").map(|p| p.output()).unwrap_or_default();
            let pending = log.contains("not scheduled, resolving");
            if !pending || log.contains("published snapshot generation") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("xvs did not resolve the real servers")
    }

    /// Stops xvs with SIGTERM; returns its exit status and everything it printed.
    pub fn stop_xvs(&mut self) -> Result<(ExitStatus, String)> {
        let out = self.lab.proc("xvs").context("xvs is not running")?.output();
        let status = self.lab.stop("xvs").context("xvs did not exit")?;
        let log = std::fs::read_to_string(self.lab.dir.join("xvs.log")).unwrap_or(out);
        Ok((status, log))
    }

    /// Stops xvs and checks it left cleanly: exit status 0 and no XDP program on the
    /// director. Returns everything it printed.
    pub fn stop_clean(&mut self) -> Result<String> {
        let (status, log) = self.stop_xvs()?;
        if !status.success() {
            bail!("xvs exit status {status:?}:\n{log}");
        }
        if self.director_has_xdp()? {
            bail!("XDP left attached after exit:\n{log}");
        }
        Ok(log)
    }

    /// True when the director's eth0 has an XDP program attached.
    pub fn director_has_xdp(&self) -> Result<bool> {
        Ok(self.lab.sh("lb", "ip link show dev eth0")?.contains("xdp"))
    }

    /// Whether director `host`'s eth0 holds `VIP` (VRRP made it master).
    pub fn holds_vip(&self, host: &str) -> Result<bool> {
        Ok(self
            .lab
            .sh(host, "ip -4 -o addr show dev eth0")?
            .contains(VIP))
    }

    /// Waits, looking every 50 ms, until director `host` holds `VIP`; panics with
    /// `failure` once `timeout` has passed.
    pub fn wait_vip(&self, host: &str, timeout: Duration, failure: &str) {
        let t0 = std::time::Instant::now();
        while !self.holds_vip(host).unwrap() {
            assert!(t0.elapsed() < timeout, "{failure}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After an upload of the lab's big file as `/upload/{name}`: its SHA-256 as the
    /// client computes it, and that of the copy on each real server that holds one.
    pub fn upload_sums(&self, name: &str) -> Result<(String, Vec<String>)> {
        let dir = self.lab.dir.display().to_string();
        let want = self.lab.sh("cl", &format!("sha256sum < {dir}/big.bin"))?;
        let got: Vec<String> = (0..self.real_servers)
            .filter_map(|i| {
                self.lab
                    .sh(
                        &rs_name(i),
                        &format!("sha256sum < {dir}/{}/www/upload/{name}", rs_name(i)),
                    )
                    .ok()
            })
            .collect();
        Ok((want, got))
    }

    /// `n` HTTP GETs of `path` from the client, a new connection each; the bodies (or
    /// "FAIL" for a failed request), in order.
    pub fn http_gets(&self, n: usize, path: &str) -> Result<Vec<String>> {
        let out = self.lab.sh(
            "cl",
            &format!(
                "for i in $(seq {n}); do curl -s -m 5 http://{}{path} || echo FAIL; done",
                self.vip
            ),
        )?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// How many times each answer occurs.
    pub fn tally(answers: &[String]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for a in answers {
            *m.entry(a.clone()).or_insert(0) += 1;
        }
        m
    }

    /// The lines of real server `i`'s access log: "client uri status".
    pub fn access_log(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.lab.dir.join(rs_name(i)).join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `n` UDP datagrams to VIP:port from new sockets; who answered each.
    pub fn udp_queries(&self, port: u16, n: usize) -> Result<Vec<String>> {
        let script = self.lab.dir.join("udp_client.py").display().to_string();
        let out = self
            .lab
            .sh("cl", &format!("python3 {script} {VIP} {port} {n}"))?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Sends raw frames (hex) from the client's eth0.
    pub fn send_raw(&self, frames_hex: &[String]) -> Result<()> {
        let script = self.lab.dir.join("raw_send.py").display().to_string();
        self.lab
            .sh("cl", &format!("python3 {script} {}", frames_hex.join(" ")))?;
        Ok(())
    }

    /// MAC of eth0 in namespace `host`.
    pub fn mac(&self, host: &str) -> Result<String> {
        Ok(self
            .lab
            .sh(host, "cat /sys/class/net/eth0/address")?
            .trim()
            .to_string())
    }
}

/// How many ICMP fragmentation-needed (over IPv6: Packet Too Big) messages the director
/// sent, from the report xvs prints when it stops (`stop_clean`).
pub fn frag_needed_sent(log: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_prefix("icmp frag needed sent "))
        .and_then(|n| n.trim().parse().ok())
}

/// Checks the report of a NAT director (`stop_clean`): the replies went through the
/// steering program, and no real server went down. `nat` ("NAT", "NAT66") names the
/// translation in the message.
pub fn assert_nat_report(log: &str, nat: &str) {
    assert!(
        log.contains("nat_reply"),
        "replies went through the steering program:\n{log}"
    );
    // The real servers' answers to the director's own health checks are not NAT replies.
    assert!(
        !log.contains(" down: "),
        "health checks through {nat}:\n{log}"
    );
}

/// `config` (or `config_dual`) with every service forwarding by TUN, scheduled rr.
pub fn tun_config(config: &str) -> String {
    config
        .replace("forwarding: dr", "forwarding: tun")
        .replace("wrr", "rr")
}

/// The lab's xvs configuration: web (TCP 80, wrr with `weights`) and, if `udp_port` is
/// given, an rr UDP service on it, both over every real server.
pub fn config(weights: &[u32], udp_port: Option<u16>) -> String {
    let rs = |with_weights: bool| {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if with_weights {
                    format!(
                        "      - {{ address: {}, port: 80, weight: {w} }}\n",
                        rs_addr(i)
                    )
                } else {
                    format!("      - {{ address: {} }}\n", rs_addr(i))
                }
            })
            .collect::<String>()
    };
    let mut s = format!(
        "interface: eth0\nflow_table_size: 65536\nvirtual_servers:\n  - name: web\n    address: {VIP}\n    port: 80\n    protocol: tcp\n    scheduler: wrr\n    forwarding: dr\n    real_servers:\n{}",
        rs(true)
    );
    if let Some(p) = udp_port {
        s += &format!(
            "  - name: dns\n    address: {VIP}\n    port: {p}\n    protocol: udp\n    scheduler: rr\n    forwarding: dr\n    real_servers:\n{}",
            rs(false)
        );
    }
    s
}

/// `config`, and the same services on the IPv6 VIP over the real servers' IPv6
/// addresses (`web6`, `dns6`): a dual-stack director.
pub fn config_dual(weights: &[u32], udp_port: Option<u16>) -> String {
    let rs6 = |with_weights: bool| {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let weight = if with_weights {
                    format!(", port: 80, weight: {w}")
                } else {
                    String::new()
                };
                format!("      - {{ address: \"{}\"{weight} }}\n", rs_addr6(i))
            })
            .collect::<String>()
    };
    let mut s = config(weights, udp_port);
    s += &format!(
        "  - name: web6\n    address: \"{VIP6}\"\n    port: 80\n    protocol: tcp\n    scheduler: wrr\n    forwarding: dr\n    real_servers:\n{}",
        rs6(true)
    );
    if let Some(p) = udp_port {
        s += &format!(
            "  - name: dns6\n    address: \"{VIP6}\"\n    port: {p}\n    protocol: udp\n    scheduler: rr\n    forwarding: dr\n    real_servers:\n{}",
            rs6(false)
        );
    }
    s
}
