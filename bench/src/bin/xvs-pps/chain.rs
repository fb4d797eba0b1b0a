//! The bench lab: client → bridge → director → real server, each in a namespace of its
//! own, and every path the director can take. `Chain` builds the namespaces (and removes
//! them when dropped, through `xvs_lab::Lab`); `Path::start` sets up the director.
//!
//! ```text
//!  cl 10.0.0.1 (generator) ─┐
//!  lb 10.0.0.2 (director)  ─┤ br0 in "sw" (xvs_pass on every port: XDP_TX into a veth
//!  rs 10.0.0.11 (sink)     ─┘   arrives only when its peer runs XDP)
//! ```

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xvs_lab::Lab;

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The IPv6 path's addresses (`Path::XvsDr6`), on the same links.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
pub const RS6: &str = "2001:db8::11";
pub const PORT: u16 = 80;
pub const RS: &str = "10.0.0.11";
/// NAT maps the port too, as in the labs.
pub const NAT_PORT: u16 = 8080;
/// FullNAT's local addresses (10.0.0.201 on): 17 × 64512 pairs, a million flows' worth.
pub const LOCALS: u32 = 17;

/// A way through the director.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    /// No director: the client sends to the sink itself (the chain's own cost).
    Direct,
    /// (a) the in-kernel XDP_TX forwarder with DR's rewrite: the baseline.
    Fwd,
    /// (b) a bare AF_XDP loop (rx → MAC rewrite → tx) with xvs's socket settings.
    Bare,
    /// (c) the kernel's ip_forward with a route.
    IpForward,
    /// (d) nftables DNAT with conntrack.
    Nft,
    /// (d') nftables DNAT and SNAT to FullNAT's local addresses (both addresses: FullNAT's
    /// kernel twin, given the same addresses, so the same number of source pairs).
    NftMasq,
    /// (e), (f), (g): xvs with `fast_path: xdp`, named (the default `auto` keeps it on this
    /// chain too: its bridge ports run XDP, the generator writes whole checksums).
    XvsDr,
    XvsTun,
    XvsNat,
    /// (h) xvs FullNAT, from `LOCALS` local addresses.
    XvsFnat,
    /// xvs DR, TUN and NAT with `fast_path: off`: every packet through a worker.
    XvsDrWorkers,
    XvsTunWorkers,
    XvsNatWorkers,
    /// xvs DR, `fast_path: off`, two RX queues and two workers (queue scaling).
    XvsDrWorkers2q,
    /// xvs DR over IPv6, with the fast path and without.
    XvsDr6,
    XvsDr6Workers,
}

impl Path {
    pub const ALL: [Path; 16] = [
        Path::Direct,
        Path::Fwd,
        Path::Bare,
        Path::IpForward,
        Path::Nft,
        Path::NftMasq,
        Path::XvsDr,
        Path::XvsTun,
        Path::XvsNat,
        Path::XvsFnat,
        Path::XvsDrWorkers,
        Path::XvsTunWorkers,
        Path::XvsNatWorkers,
        Path::XvsDrWorkers2q,
        Path::XvsDr6,
        Path::XvsDr6Workers,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Path::Direct => "client → sink, no director",
            Path::Fwd => "(a) in-kernel XDP_TX forwarder (DR rewrite)",
            Path::Bare => "(b) bare AF_XDP loop (xvs's socket settings)",
            Path::IpForward => "(c) kernel ip_forward + route",
            Path::Nft => "(d) nftables DNAT + conntrack",
            Path::NftMasq => "(d') nftables DNAT + SNAT to the same local addresses",
            Path::XvsDr => "(e) xvs DR",
            Path::XvsTun => "(f) xvs TUN",
            Path::XvsNat => "(g) xvs NAT",
            Path::XvsFnat => "(h) xvs FullNAT",
            Path::XvsDrWorkers => "(e) xvs DR, fast_path: off",
            Path::XvsTunWorkers => "(f) xvs TUN, fast_path: off",
            Path::XvsNatWorkers => "(g) xvs NAT, fast_path: off",
            Path::XvsDrWorkers2q => "(e) xvs DR, fast_path: off, 2 queues, 2 workers",
            Path::XvsDr6 => "(e6) xvs DR over IPv6",
            Path::XvsDr6Workers => "(e6) xvs DR over IPv6, fast_path: off",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Fwd => "fwd",
            Path::Bare => "bare",
            Path::IpForward => "ipfwd",
            Path::Nft => "nft",
            Path::NftMasq => "nft-masq",
            Path::XvsDr => "xvs-dr",
            Path::XvsTun => "xvs-tun",
            Path::XvsNat => "xvs-nat",
            Path::XvsFnat => "xvs-fnat",
            Path::XvsDrWorkers => "xvs-dr-off",
            Path::XvsTunWorkers => "xvs-tun-off",
            Path::XvsNatWorkers => "xvs-nat-off",
            Path::XvsDrWorkers2q => "xvs-dr-off-2q",
            Path::XvsDr6 => "xvs-dr6",
            Path::XvsDr6Workers => "xvs-dr6-off",
        }
    }

    pub fn parse(s: &str) -> Option<Path> {
        Path::ALL.into_iter().find(|p| p.short() == s)
    }

    pub fn is_xvs(self) -> bool {
        matches!(
            self,
            Path::XvsDr
                | Path::XvsTun
                | Path::XvsNat
                | Path::XvsFnat
                | Path::XvsDrWorkers
                | Path::XvsTunWorkers
                | Path::XvsNatWorkers
                | Path::XvsDrWorkers2q
                | Path::XvsDr6
                | Path::XvsDr6Workers
        )
    }

    pub fn is_ipv6(self) -> bool {
        matches!(self, Path::XvsDr6 | Path::XvsDr6Workers)
    }

    /// The destination the generator sends to: the IPv6 VIP for the IPv6 path.
    pub fn vip(self) -> IpAddr {
        if self.is_ipv6() {
            VIP6.into()
        } else {
            VIP.into()
        }
    }

    /// RX queues of the director's interface.
    pub fn queues(self) -> u32 {
        if self == Path::XvsDrWorkers2q {
            2
        } else {
            1
        }
    }
}

/// The CPUs this process may run on (at least 1).
fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A role (`xvs-pps <role> …`) or xvs running in one of the chain's namespaces. Dropping
/// it closes its standard input (a lasting role undoes what it attached and exits), then
/// waits, then kills.
pub struct Running {
    child: Child,
    out: BufReader<ChildStdout>,
    pub what: String,
}

impl Running {
    fn start(ns: &str, what: &str, argv: &[String]) -> Result<Running> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let out = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Running {
            child,
            out,
            what: what.to_string(),
        })
    }

    /// The next line that starts with `prefix` (others are skipped); an error if the
    /// process ends first.
    pub fn line(&mut self, prefix: &str) -> Result<String> {
        let mut l = String::new();
        loop {
            l.clear();
            if self.out.read_line(&mut l)? == 0 {
                bail!("{} ended before saying {prefix:?}", self.what);
            }
            if l.starts_with(prefix) {
                return Ok(l.trim_end().to_string());
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks it to stop (SIGTERM: xvs detaches and removes its state) and waits, at most
    /// 5 s, before the kill of `drop`.
    pub fn terminate(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let t0 = Instant::now();
        while self.exited().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Chain {
    pub lab: Lab,
    pub lb_mac: String,
    pub rs_mac: String,
    exe: String,
}

impl Chain {
    /// The chain, the director's link with `queues` RX/TX queues.
    pub fn build(queues: u32) -> Result<Chain> {
        let mut lab = Lab::new()?;
        lab.add_ns("sw")?;
        lab.sh("sw", "ip link add br0 type bridge && ip link set br0 up")?;
        let pass = lab.write("pass.bpf.o", xvs_bpf::PASS_OBJECT)?;
        let mut macs = Vec::new();
        for (host, addr, addr6) in [
            ("cl", "10.0.0.1", "2001:db8::1"),
            ("lb", "10.0.0.2", "2001:db8::2"),
            ("rs", RS, RS6),
        ] {
            let ns = lab.add_ns(host)?;
            lab.sh(
                "sw",
                &format!(
                    "ip link add {host} numtxqueues {q} numrxqueues {q} type veth peer name eth0 netns {ns} numtxqueues {q} numrxqueues {q} && ip link set {host} master br0 && ip link set {host} up && ip link set dev {host} xdpdrv obj {} sec xdp",
                    pass.display(),
                    q = if host == "lb" { queues } else { 1 }
                ),
            )?;
            lab.sh(
                host,
                &format!("sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 && ip link set eth0 up && ip addr add {addr}/24 dev eth0 && ip -6 addr add {addr6}/64 dev eth0 nodad && sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0"),
            )?;
            let mac = lab
                .sh(host, "cat /sys/class/net/eth0/address")?
                .trim()
                .to_string();
            // The bridge knows every host from the start: no frame is flooded.
            lab.sh(
                "sw",
                &format!("bridge fdb replace {mac} dev {host} master static"),
            )?;
            macs.push(mac);
        }
        // One placement for every path: every packet of the chain is handled on the
        // generator's CPU (the last), by RPS on every veth of the chain. A veth handles
        // a frame on the CPU that sent it, so without this, what an AF_XDP worker sends
        // would carry the rest of the chain over to the worker's CPU, and the kernel
        // paths, which have no worker, would not get that second CPU. Only an AF_XDP
        // path's own loop (xvs's workers, `cpus: [0]`; the bare loop) runs on the first
        // CPU: the user-space half a kernel path does not have. (Both halves on one
        // CPU was tried: a worker sharing its CPU with the softirq that feeds it fell to
        // a tenth of its rate.)
        let mask = format!("{:x}", 1u64 << (num_cpus() - 1));
        let every =
            format!("for q in /sys/class/net/*/queues/rx-*; do echo {mask} > $q/rps_cpus; done");
        for host in ["sw", "cl", "lb", "rs"] {
            lab.sh(host, &every)?;
        }
        // The director knows the real server without asking (the sink answers ARP, but
        // nothing should depend on its timing).
        lab.sh(
            "lb",
            &format!(
                "ip neigh replace {RS} lladdr {m} dev eth0 nud permanent && ip -6 neigh replace {RS6} lladdr {m} dev eth0 nud permanent",
                m = macs[2]
            ),
        )?;
        let exe = std::env::current_exe()?.display().to_string();
        Ok(Chain {
            lab,
            lb_mac: macs[1].clone(),
            rs_mac: macs[2].clone(),
            exe,
        })
    }

    /// Starts role `args[0]` in namespace `host`; waits for its `ready` when it lasts.
    /// The generator runs on the last CPU, where every path's kernel and XDP work runs
    /// too (`build`); an AF_XDP director's own loop on the first, as xvs pins its
    /// workers.
    pub fn role(&self, host: &str, args: &[&str], wait_ready: bool) -> Result<Running> {
        let last = num_cpus() - 1;
        let cpu = match args[0] {
            "gen" => Some(last),
            "bare" => Some(0),
            _ => None,
        };
        let mut argv = match cpu {
            Some(c) => vec!["taskset".to_string(), "-c".into(), c.to_string()],
            None => Vec::new(),
        };
        argv.push(self.exe.clone());
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut r = Running::start(&self.lab.ns(host), args[0], &argv)?;
        if wait_ready {
            r.line("ready")?;
        }
        Ok(r)
    }

    /// The generator on the client: `flows` flows to `path`'s VIP for `secs` seconds,
    /// `extra` arguments after (`--syn`, a rate).
    pub fn start_gen(&self, path: Path, flows: u32, secs: f64, extra: &[&str]) -> Result<Running> {
        let dst = self.first_hop(path).to_string();
        let (vip, port) = (path.vip().to_string(), PORT.to_string());
        let (flows, secs) = (flows.to_string(), secs.to_string());
        let mut args = vec![
            "gen",
            "--dev",
            "eth0",
            "--dst-mac",
            &dst,
            "--vip",
            &vip,
            "--port",
            &port,
            "--flows",
            &flows,
            "--secs",
            &secs,
        ];
        args.extend_from_slice(extra);
        self.role("cl", &args, false)
    }

    /// Sets the director up for `path`; what it returns keeps it running. `extra` is
    /// YAML appended to xvs's configuration (settings under test).
    pub fn start(&mut self, path: Path, syn: bool, extra: &str) -> Result<Option<Running>> {
        match path {
            Path::Direct => Ok(None),
            Path::Fwd | Path::Bare => Ok(Some(self.start_loop(path)?)),
            Path::IpForward => {
                self.start_ip_forward()?;
                Ok(None)
            }
            Path::Nft | Path::NftMasq => {
                self.start_nft(syn, path == Path::NftMasq)?;
                Ok(None)
            }
            // Every other path is one of xvs's (`Path::is_xvs`).
            _ => Ok(Some(self.start_xvs(path, extra)?)),
        }
    }

    /// `Fwd` and `Bare`: the director's own loop, the XDP_TX forwarder or the bare AF_XDP
    /// one (which matches the port too).
    fn start_loop(&self, path: Path) -> Result<Running> {
        let vip = VIP.to_string();
        let port = PORT.to_string();
        if path == Path::Fwd {
            self.role(
                "lb",
                &[
                    "fwd",
                    "--dev",
                    "eth0",
                    "--vip",
                    &vip,
                    "--rs-mac",
                    &self.rs_mac,
                ],
                true,
            )
        } else {
            self.role(
                "lb",
                &[
                    "bare",
                    "--dev",
                    "eth0",
                    "--vip",
                    &vip,
                    "--port",
                    &port,
                    "--rs-mac",
                    &self.rs_mac,
                ],
                true,
            )
        }
    }

    /// `IpForward`: the kernel forwards to the real server by a route to the VIP.
    fn start_ip_forward(&self) -> Result<()> {
        self.lab.sh(
            "lb",
            &format!("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 && ip route add {VIP}/32 via {RS} dev eth0"),
        )?;
        Ok(())
    }

    /// `Nft`: an nftables DNAT of the VIP's port (TCP for `syn`, else UDP) to the real
    /// server; `NftMasq` (`snat`) the source too, to xvs FullNAT's local addresses (one
    /// address's 64k ports would cap a million flows: an unfair baseline).
    fn start_nft(&self, syn: bool, snat: bool) -> Result<()> {
        let proto = if syn { "tcp" } else { "udp" };
        let post = if snat {
            self.add_locals()?;
            let last = format!("10.0.0.{}", 200 + LOCALS);
            format!("  chain post {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip daddr {RS} {proto} dport {PORT} snat to 10.0.0.201-{last}\n  }}\n")
        } else {
            String::new()
        };
        let rules = format!(
            "table ip xvsbench {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr {VIP} {proto} dport {PORT} dnat to {RS}\n  }}\n{post}}}\n"
        );
        let f = self.lab.write("bench.nft", rules)?;
        self.lab.sh(
            "lb",
            &format!("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 && nft -f {}", f.display()),
        )?;
        Ok(())
    }

    /// xvs's paths: its configuration for `path` (`extra` appended), xvs started, ready
    /// when its metrics endpoint answers.
    /// FullNAT's local addresses (and nftables SNAT's), on the director's link as /32s.
    fn add_locals(&self) -> Result<()> {
        let add: Vec<String> = (1..=LOCALS)
            .map(|i| format!("ip addr add 10.0.0.{}/32 dev eth0", 200 + i))
            .collect();
        self.lab.sh("lb", &add.join(" && "))?;
        Ok(())
    }

    fn start_xvs(&self, path: Path, extra: &str) -> Result<Running> {
        if path == Path::XvsFnat {
            self.add_locals()?;
        }
        let cfg = self
            .lab
            .write("xvs.yaml", xvs_config(path, extra))?
            .display()
            .to_string();
        let bin = xvs_lab::tools::xvs_bin()?.display().to_string();
        let mut argv = vec![bin, "run".into(), "-c".into(), cfg];
        argv.insert(0, "env".into());
        argv.insert(1, xvs_log());
        let mut r = Running::start(&self.lab.ns("lb"), "xvs", &argv)?;
        self.wait_xvs_up(&mut r)?;
        Ok(r)
    }

    /// A second xvs with the running one's configuration, taking its place (`xvs run
    /// --takeover`); not waited for.
    pub fn takeover_xvs(&self) -> Result<Running> {
        let cfg = self.lab.dir.join("xvs.yaml").display().to_string();
        let bin = xvs_lab::tools::xvs_bin()?.display().to_string();
        let log = xvs_log();
        let argv = ["env", &log, &bin, "run", "--takeover", "-c", &cfg];
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        Running::start(&self.lab.ns("lb"), "xvs --takeover", &argv)
    }

    /// Waits for xvs (`r`) to come up: it logs to stderr (inherited); its readiness is the
    /// metrics endpoint.
    pub fn wait_xvs_up(&self, r: &mut Running) -> Result<()> {
        let t0 = Instant::now();
        loop {
            let up = self
                .lab
                .sh(
                    "lb",
                    "curl -sf -m 1 -o /dev/null http://127.0.0.1:9147/metrics",
                )
                .is_ok();
            if up {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(20) {
                bail!("xvs did not come up in 20 s");
            }
            if let Ok(Some(st)) = r.child.try_wait() {
                bail!("xvs exited: {st}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The generator's destination: the director, or for `Direct` the real server.
    pub fn first_hop(&self, path: Path) -> &str {
        if path == Path::Direct {
            &self.rs_mac
        } else {
            &self.lb_mac
        }
    }

    /// A few of xvs's counters after a run (`/metrics`): TX ring full, the kernel's RX
    /// ring full and fill ring empty.
    pub fn xvs_counters(&self) -> Result<Vec<(String, u64)>> {
        let text = self
            .lab
            .sh("lb", "curl -sf -m 5 http://127.0.0.1:9147/metrics")?;
        let wanted = [
            "xvs_worker_tx_ring_full_total",
            "xvs_xsk_rx_ring_full_total",
            "xvs_xsk_fill_ring_empty_total",
            "xvs_worker_rx_packets_total",
            "xvs_worker_tx_kicks_total",
        ];
        Ok(wanted
            .iter()
            .map(|w| {
                let n = text
                    .lines()
                    .filter(|l| l.starts_with(w))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum();
                (w.to_string(), n)
            })
            .collect())
    }
}

/// xvs's log level in the bench: warnings, or `XVS_PPS_LOG`'s (`info` to see a
/// takeover's steps).
fn xvs_log() -> String {
    format!(
        "XVS_LOG={}",
        std::env::var("XVS_PPS_LOG").unwrap_or_else(|_| "warn".into())
    )
}

/// xvs's configuration for one of its paths: a TCP and a UDP service on the VIP (the IPv6
/// one for the IPv6 paths) with the path's forwarding and fast path, then `extra`.
fn xvs_config(path: Path, extra: &str) -> String {
    let (fwd, rs_port) = match path {
        Path::XvsDr
        | Path::XvsDrWorkers
        | Path::XvsDrWorkers2q
        | Path::XvsDr6
        | Path::XvsDr6Workers => ("dr", String::new()),
        Path::XvsTun | Path::XvsTunWorkers => ("tun", String::new()),
        Path::XvsFnat => ("fullnat", format!(", port: {NAT_PORT}")),
        _ => ("nat", format!(", port: {NAT_PORT}")),
    };
    // FullNAT: a pair per flow, so enough addresses for a million UDP flows.
    let locals = if path == Path::XvsFnat {
        let a: Vec<String> = (1..=LOCALS)
            .map(|i| format!("10.0.0.{}", 200 + i))
            .collect();
        format!("    local_addresses: [{}]\n", a.join(", "))
    } else {
        String::new()
    };
    let fast = match path {
        Path::XvsDrWorkers
        | Path::XvsTunWorkers
        | Path::XvsNatWorkers
        | Path::XvsDrWorkers2q
        | Path::XvsDr6Workers => "off",
        _ => "xdp",
    };
    // Room for a million flows in the flow table and the fast path's map, so that none is
    // evicted. The SYN guard off: the SYN rates measure what the workers open, and the
    // guard would shed the generator's SYNs, each sent once (tests/tests/flood.rs
    // measures the guard).
    let mut y = format!(
        "interface: eth0\ncpus: [0]\nmetrics_listen: 127.0.0.1:9147\nfast_path: {fast}\nfast_path_flows: 2097152\nflow_table_size: 4194304\nsyn_guard: off\nvirtual_servers:\n"
    );
    let (vip, rs) = if path.is_ipv6() {
        (format!("\"{VIP6}\""), format!("\"{RS6}\""))
    } else {
        (VIP.to_string(), RS.to_string())
    };
    for proto in ["udp", "tcp"] {
        y.push_str(&format!(
            "  - name: bench-{proto}\n    address: {vip}\n    port: {PORT}\n    protocol: {proto}\n    scheduler: mh\n    forwarding: {fwd}\n{locals}    real_servers:\n      - {{ address: {rs}{rs_port} }}\n"
        ));
    }
    y.push_str(extra);
    y
}
