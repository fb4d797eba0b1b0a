//! The scale-out lab: several active directors behind a router's ECMP, each announcing
//! the VIP through its own BIRD (eBGP with BFD to the router) while its xvs writes the
//! VIP's route in table 100. The BIRD and xvs files are `config/examples/ecmp/`'s. The router's BIRD merges the directors' routes into one
//! multipath route, hashed on ports (`fib_multipath_hash_policy=1`). DR real servers
//! answer the clients through the router.
//!
//! ```text
//!  cl 192.168.7.2 ── rt (192.168.7.1 | 10.0.0.1) ─┐
//!  dN 10.0.0.(2+N), xvs + BIRD ───────────────────┤ br0 (namespace "sw")
//!  rsN 10.0.0.1N (VIP on lo, default via rt) ─────┘
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::dr::{self, DrLab, Prep};
use crate::{tools, Lab};

/// The anycast VIP: on no interface of any director, routed to them by the router.
pub const VIP: &str = "10.10.10.10";
pub const CLIENT: &str = "192.168.7.2";
const CLIENT_GW: &str = "192.168.7.1";
const ROUTER: &str = "10.0.0.1";
/// The example files, run as they are (docs/scale-out.md).
pub const DIRECTOR_XVS: &str = include_str!("../../config/examples/ecmp/xvs.yaml");
const ROUTER_BIRD: &str = include_str!("../../config/examples/ecmp/bird-router.conf");
const DIRECTOR_BIRD: [&str; 3] = [
    include_str!("../../config/examples/ecmp/bird-d1.conf"),
    include_str!("../../config/examples/ecmp/bird-d2.conf"),
    include_str!("../../config/examples/ecmp/bird-d3.conf"),
];

pub fn director(i: usize) -> String {
    format!("d{}", i + 1)
}

pub fn director_addr(i: usize) -> String {
    format!("10.0.0.{}", 2 + i)
}

pub struct EcmpLab {
    /// The real servers, nginx and the client loop, as the DR lab has them (`cl`, `rsN`).
    pub dr: DrLab,
    pub directors: usize,
}

impl EcmpLab {
    /// The namespaces and links; nothing runs yet.
    pub fn build(directors: usize, real_servers: usize) -> Result<EcmpLab> {
        tools::require(&["ip", "ethtool", "sysctl", "bird", "birdc"])?;
        let mut lab = Lab::new()?;
        lab.add_ns("sw")?;
        lab.sh("sw", "ip link add br0 type bridge && ip link set br0 up")?;
        let pass = lab.write("pass.bpf.o", xvs_bpf::PASS_OBJECT)?;
        Self::add_router(&mut lab)?;
        for i in 0..directors {
            let (host, addr) = (director(i), director_addr(i));
            port(&mut lab, &host, &addr)?;
            lab.sh(&host, &format!("ip route add default via {ROUTER}"))?;
            // As the DR lab's director: XDP on its bridge port, so what it sends with
            // XDP_TX is delivered, and TX checksums completed there.
            lab.sh(
                "sw",
                &format!(
                    "ip link set dev {host} xdpdrv obj {} sec xdp && ethtool -K {host} tx off >/dev/null",
                    pass.display()
                ),
            )?;
        }
        for i in 0..real_servers {
            let host = dr::rs_name(i);
            port(&mut lab, &host, &dr::rs_addr(i))?;
            lab.sh(
                &host,
                &format!(
                    "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                     net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 \
                     && ip addr add {VIP}/32 dev lo && ip route add default via {ROUTER}"
                ),
            )?;
        }
        let dr = DrLab {
            lab,
            real_servers,
            vip: VIP,
            client: CLIENT,
            prep: Prep::Script,
        };
        DrLab::write_scripts(&dr.lab)?;
        Ok(EcmpLab { dr, directors })
    }

    /// The router: on br0 and on a link of its own to the client, forwarding, hashing
    /// flows on their ports over the nexthops.
    fn add_router(lab: &mut Lab) -> Result<()> {
        port(lab, "rt", ROUTER)?;
        let cl = lab.add_ns("cl")?;
        lab.sh(
            "rt",
            &format!(
                "ip link add eth1 type veth peer name eth0 netns {cl} && ip link set eth1 up \
                 && ip addr add {CLIENT_GW}/24 dev eth1 \
                 && sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1"
            ),
        )?;
        lab.sh(
            "cl",
            &format!(
                "ip link set eth0 up && ip addr add {CLIENT}/24 dev eth0 && ip route add default via {CLIENT_GW}"
            ),
        )?;
        Ok(())
    }

    /// The router's BIRD, as `config/examples/ecmp/bird-router.conf` has it: a BGP
    /// session with BFD to each of three directors, their routes merged into one
    /// multipath route in the main table.
    pub fn start_router_bird(&mut self) -> Result<()> {
        anyhow::ensure!(
            self.directors <= 3,
            "the example router knows three directors"
        );
        self.start_bird("rt", ROUTER_BIRD)
    }

    /// Director `i`'s BIRD, as `config/examples/ecmp/bird-dN.conf` has it: table 100
    /// learned (xvs's VIP routes) and exported to the router, next hop itself.
    pub fn start_director_bird(&mut self, i: usize) -> Result<()> {
        let conf = DIRECTOR_BIRD
            .get(i)
            .context("the examples have three directors")?;
        self.start_bird(&director(i), conf)
    }

    fn start_bird(&mut self, host: &str, conf: &str) -> Result<()> {
        let lab = &mut self.dr.lab;
        let path = lab.write(&format!("bird-{host}.conf"), conf)?;
        let sock = lab.dir.join(format!("bird-{host}.ctl"));
        let pid = lab.dir.join(format!("bird-{host}.pid"));
        let (path, sock, pid) = (
            path.display().to_string(),
            sock.display().to_string(),
            pid.display().to_string(),
        );
        // -f: in the foreground, a child the lab stops; -d would also log debug.
        let p = lab.spawn(
            host,
            &format!("bird-{host}"),
            &["bird", "-f", "-c", &path, "-s", &sock, "-P", &pid],
        )?;
        // A configuration BIRD refuses ends it at once.
        std::thread::sleep(Duration::from_millis(200));
        if !p.running() {
            bail!("BIRD in {host} stopped: {}", p.output());
        }
        Ok(())
    }

    /// `birdc` in `host`'s BIRD.
    pub fn birdc(&self, host: &str, cmd: &str) -> Result<String> {
        let sock = self.dr.lab.dir.join(format!("bird-{host}.ctl"));
        self.dr
            .lab
            .sh(host, &format!("birdc -s {} {cmd}", sock.display()))
    }

    /// Starts xvs on director `i` (process `xvs-dN`) with configuration `yaml`.
    pub fn start_xvs(&mut self, i: usize, yaml: &str) -> Result<()> {
        let host = director(i);
        let path = self.dr.lab.write(&format!("xvs-{host}.yaml"), yaml)?;
        let bin = tools::xvs_bin()?.display().to_string();
        let path = path.display().to_string();
        self.dr
            .lab
            .spawn(&host, &format!("xvs-{host}"), &[&bin, "run", "-c", &path])?
            .wait_for_log("xvs running", Duration::from_secs(20))
    }

    /// `xvs run --takeover` on director `i` (the new process takes the name `xvs-dN`);
    /// returns the fewest nexthops the router's route had meanwhile (polled every
    /// 20 ms until the new xvs runs and the old one has exited).
    pub fn take_over(&mut self, i: usize) -> Result<usize> {
        let host = director(i);
        let name = format!("xvs-{host}");
        let bin = tools::xvs_bin()?.display().to_string();
        let path = self.dr.lab.dir.join(format!("xvs-{host}.yaml"));
        let path = path.display().to_string();
        let new = format!("{name}-new");
        self.dr
            .lab
            .spawn(&host, &new, &[&bin, "run", "--takeover", "-c", &path])?;
        let mut fewest = usize::MAX;
        let began = Instant::now();
        let mut seen = Vec::new();
        loop {
            let n = self.nexthops()?.len();
            if seen.last().is_none_or(|(_, m)| *m != n) {
                seen.push((began.elapsed(), n));
            }
            fewest = fewest.min(n);
            let old_gone = !self.dr.lab.proc(&name).context("no old xvs")?.running();
            let new_log = self.dr.lab.proc(&new).context("no new xvs")?.output();
            if old_gone && new_log.contains("xvs running") {
                break;
            }
            if began.elapsed() > Duration::from_secs(20) {
                bail!("the takeover did not finish: {new_log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.dr.lab.stop(&name);
        anyhow::ensure!(
            status.and_then(|s| s.code()) == Some(75),
            "the old xvs did not hand over: {status:?}"
        );
        if fewest < self.directors {
            let log = |p: &str| self.dr.lab.dir.join(format!("{p}.log"));
            eprintln!(
                "nexthops during the takeover: {seen:?}\nold:\n{}\nnew:\n{}",
                std::fs::read_to_string(log(&name)).unwrap_or_default(),
                std::fs::read_to_string(log(&new)).unwrap_or_default()
            );
        }
        self.dr.lab.rename(&new, &name);
        Ok(fewest)
    }

    /// `xvs ARGS` against director `i`'s xvs.
    pub fn xvs(&self, i: usize, args: &str) -> Result<String> {
        let host = director(i);
        let bin = tools::xvs_bin()?.display().to_string();
        let path = self.dr.lab.dir.join(format!("xvs-{host}.yaml"));
        self.dr
            .lab
            .sh(&host, &format!("{bin} {args} --config {}", path.display()))
    }

    /// The directors the router's route to the VIP leads to now.
    pub fn nexthops(&self) -> Result<Vec<String>> {
        let out = self.dr.lab.sh("rt", &format!("ip route show {VIP}"))?;
        Ok(out
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_string())
            .collect())
    }

    /// Waits until the router's route leads to exactly `want` directors; returns how
    /// long that took.
    pub fn wait_nexthops(&self, want: usize, timeout: Duration) -> Result<Duration> {
        let began = Instant::now();
        while began.elapsed() < timeout {
            if self.nexthops()?.len() == want {
                return Ok(began.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "the router's route to {VIP} leads to {:?}, not {want} directors, after {timeout:?}:\n{}",
            self.nexthops()?,
            self.birdc("rt", "show protocols all").unwrap_or_default()
        )
    }

    /// New connections director `i` scheduled so far (its `xvs status --json`).
    pub fn connections(&self, i: usize) -> Result<u64> {
        let out = self.xvs(i, "status --json")?;
        let v: serde_json::Value = serde_json::from_str(&out).context("status --json")?;
        Ok(v["virtual_servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|vs| vs["totals"]["conns"].as_u64())
            .sum())
    }
}

/// A namespace `host` with its eth0 on br0, address `addr`/24 (as the DR lab's hosts).
fn port(lab: &mut Lab, host: &str, addr: &str) -> Result<()> {
    DrLab::add_host(lab, host, addr, 1, false)
}
