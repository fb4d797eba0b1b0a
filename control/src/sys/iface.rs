//! Facts about a network interface, read from the kernel.

use std::ffi::CString;
use std::fs;

use anyhow::{bail, Context, Result};

#[derive(Clone, Debug)]
pub struct Iface {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub rx_queues: u32,
    pub mtu: u32,
}

impl Iface {
    /// `None` when no interface has that name.
    pub fn lookup(name: &str) -> Result<Option<Iface>> {
        let Ok(c) = CString::new(name) else {
            return Ok(None);
        };
        // SAFETY: `c` is a valid NUL-terminated string; the call only reads it.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if ifindex == 0 {
            return Ok(None);
        }
        let sys = format!("/sys/class/net/{name}");
        let mac_text = fs::read_to_string(format!("{sys}/address"))
            .with_context(|| format!("reading {sys}/address"))?;
        let mac = parse_mac(mac_text.trim())
            .with_context(|| format!("interface {name} has no Ethernet address"))?;
        let rx_queues = fs::read_dir(format!("{sys}/queues"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count() as u32
            })
            .unwrap_or(1)
            .max(1);
        let mtu = fs::read_to_string(format!("{sys}/mtu"))
            .ok()
            .and_then(|m| m.trim().parse().ok())
            .unwrap_or(1500);
        Ok(Some(Iface {
            name: name.to_string(),
            ifindex,
            mac,
            rx_queues,
            mtu,
        }))
    }
}

/// The link-local IPv6 address of `ifindex` (what VRRP over IPv6 advertises from), from
/// /proc/net/if_inet6: `address ifindex prefix scope flags name`, hex; scope 0x20 is
/// link-local. Tentative addresses (flag 0x40) are not usable yet.
pub fn link_local_v6(ifindex: u32) -> Option<std::net::Ipv6Addr> {
    let text = fs::read_to_string("/proc/net/if_inet6").ok()?;
    link_local_in(&text, ifindex)
}

fn link_local_in(text: &str, ifindex: u32) -> Option<std::net::Ipv6Addr> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [addr, idx, _, scope, flags, ..] = f.as_slice() else {
            return None;
        };
        let usable = u32::from_str_radix(idx, 16).ok()? == ifindex
            && *scope == "20"
            && u8::from_str_radix(flags, 16).ok()? & 0x40 == 0;
        (usable && addr.len() == 32)
            .then(|| {
                u128::from_str_radix(addr, 16)
                    .ok()
                    .map(std::net::Ipv6Addr::from)
            })
            .flatten()
    })
}

/// Whether `name` looks like a veth: no device behind it, and linked to another
/// interface (its peer). A heuristic, for a warning.
/// The name of the interface with index `ifindex`, if there is one.
pub fn name_of(ifindex: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes, NUL included, into `buf`.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

pub fn is_veth(name: &str) -> bool {
    let sys = format!("/sys/class/net/{name}");
    let read = |f: &str| fs::read_to_string(format!("{sys}/{f}")).map(|v| v.trim().to_string());
    let virtual_dev = !std::path::Path::new(&format!("{sys}/device")).exists();
    let linked = matches!((read("iflink"), read("ifindex")), (Ok(a), Ok(b)) if a != b);
    virtual_dev && linked
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("{s:?} is not a MAC address");
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).with_context(|| format!("{s:?} is not a MAC address"))?;
    }
    Ok(mac)
}

#[cfg(test)]
pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_local_address_of_an_interface() {
        let text = "20010db8000000000000000000000003 02 40 00 80     eth0\nfe800000000000003c9c45fffeeb19e3 02 40 20 80     eth0\nfe800000000000000000000000000009 03 40 20 c0     eth1\n00000000000000000000000000000001 01 80 10 80       lo\n";
        assert_eq!(
            link_local_in(text, 2),
            Some("fe80::3c9c:45ff:feeb:19e3".parse().unwrap())
        );
        assert_eq!(link_local_in(text, 3), None, "tentative");
        assert_eq!(link_local_in(text, 1), None, "no link-local");
    }

    #[test]
    fn macs() {
        let m = parse_mac("02:00:0a:ff:00:01").unwrap();
        assert_eq!(m, [2, 0, 10, 255, 0, 1]);
        assert_eq!(format_mac(&m), "02:00:0a:ff:00:01");
        assert!(parse_mac("02:00:0a:ff:00").is_err());
        assert!(parse_mac("02:00:0a:ff:00:zz").is_err());
    }

    #[test]
    fn loopback_exists_and_nonsense_does_not() {
        let lo = Iface::lookup("lo").unwrap().unwrap();
        assert_eq!(lo.ifindex, 1);
        assert!(Iface::lookup("xvs-no-such0").unwrap().is_none());
        assert!(Iface::lookup("bad\0name").unwrap().is_none());
    }
}
