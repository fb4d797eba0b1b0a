//! The VIPs a process that hands over leaves on its interfaces (its master instances'),
//! named in its answer and record (`vip IFACE ADDR/LEN` lines after the roles), so the
//! next process can give up those its configuration no longer has: no instance of its
//! would ever remove them, and a VIP that nobody advertises for is soon a backup's too.

use std::net::IpAddr;

use tracing::{info, warn};
use xvs_config::Config;

/// A VIP left on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftVip {
    pub iface: String,
    pub addr: IpAddr,
    pub len: u8,
}

impl LeftVip {
    /// The answer's line for it.
    pub fn line(&self) -> String {
        format!("vip {} {}/{}\n", self.iface, self.addr, self.len)
    }

    /// A `vip IFACE ADDR/LEN` line; `None` for any other (the roles' line, `at_ms=`) or
    /// one that does not hold an interface name, an address and a prefix that fits it.
    pub fn parse(line: &str) -> Option<LeftVip> {
        let mut w = line.split_whitespace();
        if w.next() != Some("vip") {
            return None;
        }
        let iface = w.next()?;
        let (addr, len) = w.next()?.split_once('/')?;
        let (addr, len): (IpAddr, u8) = (addr.parse().ok()?, len.parse().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let name_ok = !iface.is_empty() && iface.len() < 16 && !iface.contains('/');
        (w.next().is_none() && name_ok && len <= max).then(|| LeftVip {
            iface: iface.to_string(),
            addr,
            len,
        })
    }
}

/// The VIPs of `cfg`'s instances that are `masters`, as left on their interfaces.
pub fn of_masters(cfg: &Config, masters: &[String]) -> Vec<LeftVip> {
    cfg.vrrp_instances
        .iter()
        .filter(|vi| masters.contains(&vi.name))
        .flat_map(|vi| {
            vi.virtual_ipaddresses.iter().map(|&(addr, len)| LeftVip {
                iface: vi.interface.value.clone(),
                addr,
                len,
            })
        })
        .collect()
}

/// The left VIPs no instance of `cfg` has on that interface: removed, each with a log
/// line (one that cannot be removed is warned about: it would be answered for).
pub fn release_orphans(cfg: &Config, left: &[LeftVip]) {
    let kept = of_all(cfg);
    for v in left.iter().filter(|v| !kept.contains(v)) {
        let removed = crate::sys::iface::Iface::lookup(&v.iface)
            .ok()
            .flatten()
            .map(|i| crate::sys::netlink::del_address(i.ifindex, v.addr, v.len));
        match removed {
            Some(Ok(_)) => info!(
                "gave up {}/{} on {}: the last xvs held it for an instance this configuration does not have",
                v.addr, v.len, v.iface
            ),
            Some(Err(e)) => warn!(
                "{}/{} on {} belongs to no instance of this configuration and cannot be removed ({e}): remove it with `ip addr del`",
                v.addr, v.len, v.iface
            ),
            None => {}
        }
    }
}

/// Every VIP of `cfg`'s instances, on its interface.
fn of_all(cfg: &Config) -> Vec<LeftVip> {
    let all: Vec<String> = cfg.vrrp_instances.iter().map(|v| v.name.clone()).collect();
    of_masters(cfg, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vip_line_is_read_back_and_anything_else_is_not_one() {
        let v = LeftVip {
            iface: "eth0".into(),
            addr: "10.0.0.100".parse().unwrap(),
            len: 32,
        };
        assert_eq!(LeftVip::parse(&v.line()), Some(v));
        let v6 = LeftVip::parse("vip eth1 2001:db8::100/128").unwrap();
        assert_eq!((v6.iface.as_str(), v6.len), ("eth1", 128));
        for bad in [
            "handover VI_1=MASTER",
            "at_ms=1",
            "vip eth0 10.0.0.100/33",
            "vip eth0 10.0.0.100",
            "vip eth0 nonsense/32",
            "vip a-name-far-too-long 10.0.0.1/32",
            "vip ../x 10.0.0.1/32",
            "vip eth0 10.0.0.1/32 extra",
            "vip",
        ] {
            assert_eq!(LeftVip::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_vips_no_instance_has_are_orphans() {
        let cfg = xvs_config::parse(
            "t",
            "interface: eth0\nvrrp_instances:\n  - { name: VI_1, interface: eth0, virtual_router_id: 1, priority: 100, virtual_ipaddresses: [10.0.0.100] }\n",
        )
        .unwrap();
        let kept = of_all(&cfg);
        let left = |iface: &str, a: &str| LeftVip {
            iface: iface.into(),
            addr: a.parse().unwrap(),
            len: 32,
        };
        assert!(kept.contains(&left("eth0", "10.0.0.100")));
        assert!(!kept.contains(&left("eth0", "10.0.0.101")), "another VIP");
        assert!(
            !kept.contains(&left("eth1", "10.0.0.100")),
            "another interface"
        );
        assert_eq!(of_masters(&cfg, &[]), vec![]);
        assert_eq!(of_masters(&cfg, &["VI_1".into()]), kept);
    }
}
