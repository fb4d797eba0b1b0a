//! The VRRP lab: two directors on one segment, xvs on d1 and keepalived (VRRP only) on
//! d2, sharing a virtual router for the VIP.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::{tools, Lab};

pub const VIP: &str = "10.0.0.100";
pub const D1: &str = "10.0.0.2";
pub const D2: &str = "10.0.0.3";
/// The IPv6 side of the same segment.
pub const VIP6: &str = "2001:db8::100";
pub const D1_6: &str = "2001:db8::2";
pub const D2_6: &str = "2001:db8::3";

pub struct VrrpLab {
    pub lab: Lab,
}

/// An instance's settings, written as xvs YAML or keepalived.conf.
#[derive(Clone, Debug)]
pub struct Peer {
    pub master: bool,
    pub priority: u8,
    pub password: &'static str,
    pub version: u8,
    /// Seconds.
    pub advert_int: f64,
}

impl Peer {
    pub fn xvs_yaml(&self) -> String {
        let auth = if self.version == 2 {
            format!(
                "    authentication: {{ auth_type: PASS, auth_pass: \"{}\" }}\n",
                self.password
            )
        } else {
            String::new()
        };
        format!(
            "interface: eth0\nvrrp_instances:\n  - name: VI_1\n    interface: eth0\n    state: {}\n    virtual_router_id: 51\n    priority: {}\n    version: {}\n    advert_int: {}\n{auth}    virtual_ipaddresses: [{VIP}]\n",
            if self.master { "MASTER" } else { "BACKUP" },
            self.priority,
            self.version,
            self.advert_int
        )
    }

    /// An IPv6 instance (VRRPv3 over IPv6, RFC 5798) for `VIP6`.
    pub fn xvs_yaml6(&self) -> String {
        format!(
            "interface: eth0\nvrrp_instances:\n  - name: VI_6\n    interface: eth0\n    state: {}\n    virtual_router_id: 61\n    priority: {}\n    version: 3\n    advert_int: {}\n    virtual_ipaddresses: [\"{VIP6}/64\"]\n",
            if self.master { "MASTER" } else { "BACKUP" },
            self.priority,
            self.advert_int
        )
    }

    /// keepalived's IPv6 instance: its addresses make it VRRPv3 over IPv6.
    pub fn keepalived_conf6(&self) -> String {
        format!(
            "global_defs {{\n  router_id d2\n}}\nvrrp_instance VI_6 {{\n  state {}\n  interface eth0\n  virtual_router_id 61\n  priority {}\n  advert_int {}\n  virtual_ipaddress {{\n    {VIP6}/64\n  }}\n}}\n",
            if self.master { "MASTER" } else { "BACKUP" },
            self.priority,
            self.advert_int
        )
    }

    pub fn keepalived_conf(&self) -> String {
        let auth = if self.version == 2 {
            format!(
                "  authentication {{\n    auth_type PASS\n    auth_pass {}\n  }}\n",
                self.password
            )
        } else {
            String::new()
        };
        format!(
            "global_defs {{\n  router_id d2\n  vrrp_version {}\n}}\nvrrp_instance VI_1 {{\n  state {}\n  interface eth0\n  virtual_router_id 51\n  priority {}\n  advert_int {}\n{auth}  virtual_ipaddress {{\n    {VIP}/32\n  }}\n}}\n",
            self.version,
            if self.master { "MASTER" } else { "BACKUP" },
            self.priority,
            self.advert_int
        )
    }
}

impl VrrpLab {
    pub fn build() -> Result<VrrpLab> {
        tools::require(&["ip", "keepalived"])?;
        let mut lab = Lab::new()?;
        lab.add_ns("sw")?;
        lab.sh("sw", "ip link add br0 type bridge && ip link set br0 up")?;
        for (host, addr, addr6) in [("d1", D1, D1_6), ("d2", D2, D2_6)] {
            let ns = lab.add_ns(host)?;
            // IPv6 addresses usable at once, link-local included: no DAD in a lab.
            lab.sh(
                host,
                "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0",
            )?;
            lab.sh("sw", &format!("ip link add {host} type veth peer name eth0 netns {ns} && ip link set {host} master br0 && ip link set {host} up"))?;
            lab.sh(
                host,
                &format!("ip link set eth0 up && ip addr add {addr}/24 dev eth0 && ip -6 addr add {addr6}/64 dev eth0 nodad"),
            )?;
        }
        Ok(VrrpLab { lab })
    }

    pub fn start_xvs(&mut self, peer: &Peer) -> Result<()> {
        let path = self.lab.write("xvs.yaml", peer.xvs_yaml())?;
        let bin = tools::xvs_bin()?.display().to_string();
        let cfg = path.display().to_string();
        self.lab.spawn("d1", "xvs", &[&bin, "run", "-c", &cfg])?;
        Ok(())
    }

    pub fn start_xvs6(&mut self, peer: &Peer) -> Result<()> {
        let path = self.lab.write("xvs.yaml", peer.xvs_yaml6())?;
        let bin = tools::xvs_bin()?.display().to_string();
        let cfg = path.display().to_string();
        self.lab.spawn("d1", "xvs", &[&bin, "run", "-c", &cfg])?;
        Ok(())
    }

    pub fn start_keepalived6(&mut self, peer: &Peer) -> Result<()> {
        self.lab.spawn_keepalived("d2", &peer.keepalived_conf6())?;
        Ok(())
    }

    /// Whether `host` holds the IPv6 VIP on eth0.
    pub fn holds_vip6(&self, host: &str) -> bool {
        self.lab
            .sh(host, "ip -6 -o addr show dev eth0")
            .is_ok_and(|o| o.contains(&format!(" {VIP6}/")))
    }

    pub fn start_keepalived(&mut self, peer: &Peer) -> Result<()> {
        self.lab.spawn_keepalived("d2", &peer.keepalived_conf())?;
        Ok(())
    }

    /// Whether `host` holds the VIP on eth0.
    pub fn holds_vip(&self, host: &str) -> bool {
        self.lab
            .sh(host, "ip -4 -o addr show dev eth0")
            .is_ok_and(|o| o.contains(&format!(" {VIP}/")))
    }

    /// Waits until `host` holds (or not) the VIP; returns how long it took.
    pub fn wait_vip(&self, host: &str, held: bool, timeout: Duration) -> Result<Duration> {
        self.wait_held(host, held, timeout, Self::holds_vip, "the VIP")
    }

    /// As `wait_vip`, for the IPv6 VIP.
    pub fn wait_vip6(&self, host: &str, held: bool, timeout: Duration) -> Result<Duration> {
        self.wait_held(host, held, timeout, Self::holds_vip6, "the IPv6 VIP")
    }

    fn wait_held(
        &self,
        host: &str,
        held: bool,
        timeout: Duration,
        holds: fn(&Self, &str) -> bool,
        what: &str,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if holds(self, host) == held {
                return Ok(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!(
            "{host} {} {what} after {timeout:?}",
            if held { "still lacks" } else { "still holds" }
        )
    }

    pub fn log(&mut self, name: &str) -> String {
        self.lab.proc(name).map(|p| p.output()).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.lab.dir.join(name)
    }

    /// Kills `name` outright (no goodbye), as a crash would.
    pub fn kill(&mut self, name: &str) {
        if let Some(p) = self.lab.proc(name) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(p.pid() as i32, libc::SIGKILL) };
            p.wait(Duration::from_secs(5));
        }
    }
}
