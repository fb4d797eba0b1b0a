//! Just enough rtnetlink: the IPv4 neighbour table, addresses, and route lookups.
//! Replies are parsed defensively: malformed input ends a parse, never panics.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
pub(super) const RTM_NEWROUTE: u16 = 24;
pub(super) const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 1;
pub(super) const NLM_F_ACK: u16 = 4;
pub(super) const NLM_F_REPLACE: u16 = 0x100;
pub(super) const NLM_F_EXCL: u16 = 0x200;
pub(super) const NLM_F_CREATE: u16 = 0x400;
pub(super) const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
pub(super) const RTA_DST: u16 = 1;
pub(super) const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
/// NUD states whose link-layer address is usable: reachable, stale, delay, probe, noarp,
/// permanent (not incomplete, failed or none).
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;

fn open() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ipv4(data: &[u8]) -> Option<Ipv4Addr> {
    let o: [u8; 4] = data.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn ipv6(data: &[u8]) -> Option<Ipv6Addr> {
    let o: [u8; 16] = data.try_into().ok()?;
    Some(Ipv6Addr::from(o))
}

/// An address attribute of `family`'s size.
pub(super) fn ip(family: u8, data: &[u8]) -> Option<IpAddr> {
    match i32::from(family) {
        libc::AF_INET => ipv4(data).map(IpAddr::V4),
        libc::AF_INET6 => ipv6(data).map(IpAddr::V6),
        _ => None,
    }
}

/// A request: header, fixed part, then attributes.
pub(super) struct Msg(Vec<u8>);

impl Msg {
    pub(super) fn new(kind: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut b = vec![0u8; NLMSG_HDR];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        b[8..12].copy_from_slice(&1u32.to_ne_bytes());
        b.extend_from_slice(fixed);
        Msg(b)
    }

    pub(super) fn attr(mut self, kind: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize((self.0.len() + 3) & !3, 0);
        self
    }

    /// Sends it and calls `on_msg(type, payload)` for each reply until the kernel is done.
    /// Returns the kernel's error for a refused request.
    pub(super) fn exchange(mut self, mut on_msg: impl FnMut(u16, &[u8])) -> io::Result<()> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        let fd = open()?;
        // SAFETY: sends our buffer, valid for its length, to the kernel (address 0).
        if unsafe { libc::send(fd.as_raw_fd(), self.0.as_ptr().cast(), self.0.len(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let dump = u16_at(&self.0, 6).unwrap_or(0) & NLM_F_DUMP == NLM_F_DUMP;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receives into `buf`, writable for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut b = &buf[..n as usize];
            while b.len() >= NLMSG_HDR {
                let mlen = u32_at(b, 0).unwrap_or(0) as usize;
                if mlen < NLMSG_HDR || mlen > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed netlink reply",
                    ));
                }
                let kind = u16_at(b, 4).unwrap_or(0);
                let payload = &b[NLMSG_HDR..mlen];
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let errno = u32_at(payload, 0).map_or(0, |e| -(e as i32));
                        return if errno == 0 {
                            Ok(())
                        } else {
                            Err(io::Error::from_raw_os_error(errno))
                        };
                    }
                    _ => on_msg(kind, payload),
                }
                b = b.get((mlen + 3) & !3..).unwrap_or(&[]);
            }
            if !dump {
                return Ok(());
            }
        }
    }
}

/// Attributes after a fixed part of `fixed` bytes: (type, data).
pub(super) fn attrs(payload: &[u8], fixed: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = payload.get(fixed..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let alen = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & 0x3fff;
        if alen < 4 || alen > rest.len() {
            return None;
        }
        let data = &rest[4..alen];
        rest = rest.get((alen + 3) & !3..).unwrap_or(&[]);
        Some((kind, data))
    })
}

/// The usable neighbours on `ifindex`, IPv4's (ARP) and IPv6's (NDP): address → MAC.
pub fn neighbours(ifindex: u32) -> io::Result<HashMap<IpAddr, [u8; 6]>> {
    let mut out = HashMap::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let mut ndmsg = [0u8; 12];
        ndmsg[0] = family as u8;
        Msg::new(RTM_GETNEIGH, NLM_F_DUMP, &ndmsg)
            .exchange(|kind, p| parse_neigh(kind, p, ifindex, &mut out))?;
    }
    Ok(out)
}

fn parse_neigh(kind: u16, p: &[u8], ifindex: u32, out: &mut HashMap<IpAddr, [u8; 6]>) {
    if kind != RTM_NEWNEIGH || p.len() < 12 {
        return;
    }
    if u32_at(p, 4) != Some(ifindex) || u16_at(p, 8).unwrap_or(0) & NUD_USABLE == 0 {
        return;
    }
    let (mut dst, mut mac) = (None, None);
    for (t, d) in attrs(p, 12) {
        match t {
            NDA_DST => dst = ip(p[0], d),
            NDA_LLADDR => mac = <[u8; 6]>::try_from(d).ok(),
            _ => {}
        }
    }
    // NOARP entries (lo's 0.0.0.0) carry an all-zero MAC: no next hop.
    if let (Some(d), Some(m)) = (dst, mac.filter(|m| *m != [0; 6])) {
        out.insert(d, m);
    }
}

/// IPv4 addresses: (ifindex, address, prefix length).
pub fn addresses() -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
    let mut ifa = [0u8; 8];
    ifa[0] = libc::AF_INET as u8;
    let mut out = Vec::new();
    Msg::new(RTM_GETADDR, NLM_F_DUMP, &ifa).exchange(|kind, p| {
        if kind != RTM_NEWADDR || p.len() < 8 {
            return;
        }
        let (prefix, ifindex) = (p[1], u32_at(p, 4).unwrap_or(0));
        let local = attrs(p, 8)
            .find(|(t, _)| *t == IFA_LOCAL)
            .and_then(|(_, d)| ipv4(d));
        let addr = local.or_else(|| {
            attrs(p, 8)
                .find(|(t, _)| *t == IFA_ADDRESS)
                .and_then(|(_, d)| ipv4(d))
        });
        if let Some(a) = addr {
            out.push((ifindex, a, prefix));
        }
    })?;
    Ok(out)
}

/// IPv6 addresses: (ifindex, address, prefix length).
pub fn addresses6() -> io::Result<Vec<(u32, Ipv6Addr, u8)>> {
    let mut ifa = [0u8; 8];
    ifa[0] = libc::AF_INET6 as u8;
    let mut out = Vec::new();
    Msg::new(RTM_GETADDR, NLM_F_DUMP, &ifa).exchange(|kind, p| {
        if kind != RTM_NEWADDR || p.len() < 8 || p[0] != libc::AF_INET6 as u8 {
            return;
        }
        let (prefix, ifindex) = (p[1], u32_at(p, 4).unwrap_or(0));
        if let Some(a) = attrs(p, 8)
            .find(|(t, _)| *t == IFA_ADDRESS)
            .and_then(|(_, d)| ipv6(d))
        {
            out.push((ifindex, a, prefix));
        }
    })?;
    Ok(out)
}

/// ifaddrmsg's flag: no duplicate address detection, so an IPv6 address is usable at
/// once (a VIP on lo has no one to collide with).
const IFA_F_NODAD: u8 = 0x02;

fn addr_msg(kind: u16, flags: u16, ifindex: u32, addr: IpAddr, prefix: u8) -> Msg {
    let mut ifa = [0u8; 8];
    ifa[1] = prefix;
    ifa[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    match addr {
        IpAddr::V4(a) => {
            ifa[0] = libc::AF_INET as u8;
            Msg::new(kind, flags | NLM_F_ACK, &ifa)
                .attr(IFA_LOCAL, &a.octets())
                .attr(IFA_ADDRESS, &a.octets())
        }
        // IPv6 takes IFA_ADDRESS alone (with IFA_LOCAL too it would be a peer address).
        IpAddr::V6(a) => {
            ifa[0] = libc::AF_INET6 as u8;
            ifa[2] = IFA_F_NODAD;
            Msg::new(kind, flags | NLM_F_ACK, &ifa).attr(IFA_ADDRESS, &a.octets())
        }
    }
}

/// Adds `addr/prefix` to `ifindex` (IPv6 without DAD); false if it was there already.
pub fn add_address(ifindex: u32, addr: impl Into<IpAddr>, prefix: u8) -> io::Result<bool> {
    match addr_msg(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_EXCL,
        ifindex,
        addr.into(),
        prefix,
    )
    .exchange(|_, _| {})
    {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes `addr/prefix` from `ifindex`; false if it was not there.
pub fn del_address(ifindex: u32, addr: impl Into<IpAddr>, prefix: u8) -> io::Result<bool> {
    match addr_msg(RTM_DELADDR, 0, ifindex, addr.into(), prefix).exchange(|_, _| {}) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the kernel would do with a packet to some address (`ip route get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    /// The next hop when it is not the destination itself.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would pick.
    pub prefsrc: Option<IpAddr>,
}

pub fn route_get(dst: impl Into<IpAddr>) -> io::Result<Route> {
    let dst: IpAddr = dst.into();
    let mut rtm = [0u8; 12];
    let (family, octets) = match dst {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    rtm[0] = family;
    rtm[1] = (octets.len() * 8) as u8; // dst_len
    let mut route = None;
    Msg::new(RTM_GETROUTE, 0, &rtm)
        .attr(RTA_DST, &octets)
        .exchange(|kind, p| {
            if kind != RTM_NEWROUTE {
                return;
            }
            let mut r = Route {
                oif: 0,
                gateway: None,
                prefsrc: None,
            };
            for (t, d) in attrs(p, 12) {
                match t {
                    RTA_OIF => r.oif = u32_at(d, 0).unwrap_or(0),
                    RTA_GATEWAY => r.gateway = ip(family, d),
                    RTA_PREFSRC => r.prefsrc = ip(family, d),
                    _ => {}
                }
            }
            route = Some(r);
        })?;
    route.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no route to {dst}")))
}

/// Has the kernel resolve `addr`'s link-layer address on `ifindex` now (an ARP request,
/// or a neighbour solicitation), as if a packet were waiting for it: `ip neigh replace
/// ADDR dev DEV nud none use`. Nothing but the resolution itself is sent; an entry that
/// is already valid is left as it is.
pub fn resolve_neighbour(ifindex: u32, addr: IpAddr) -> io::Result<()> {
    const NTF_USE: u8 = 0x01;
    let (family, octets) = match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    // struct ndmsg: family, pad, pad, ifindex, state (NUD_NONE), flags, type.
    let mut ndm = [0u8; 12];
    ndm[0] = family;
    ndm[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    ndm[10] = NTF_USE;
    Msg::new(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, &ndm)
        .attr(NDA_DST, &octets)
        .exchange(|_, _| {})
}

/// Makes the kernel resolve `addr` by sending it an empty UDP datagram (discard port):
/// resolution happens as a side effect, and the datagram itself is harmless.
pub fn nudge(addr: IpAddr) {
    let any: IpAddr = match addr {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    if let Ok(s) = std::net::UdpSocket::bind((any, 0)) {
        let _ = s.send_to(&[], (addr, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neigh_payload(ifindex: u32, state: u16, dst: [u8; 4], mac: [u8; 6]) -> Vec<u8> {
        let mut m = vec![0u8; 12];
        m[0] = libc::AF_INET as u8;
        m[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        m[8..10].copy_from_slice(&state.to_ne_bytes());
        Msg(m).attr(NDA_DST, &dst).attr(NDA_LLADDR, &mac).0
    }

    #[test]
    fn parses_usable_entries_of_the_interface() {
        let mut out = HashMap::new();
        parse_neigh(
            RTM_NEWNEIGH,
            &neigh_payload(5, 0x02, [10, 0, 0, 11], [2, 0, 0, 0, 0, 11]),
            5,
            &mut out,
        );
        parse_neigh(
            RTM_NEWNEIGH,
            &neigh_payload(5, 0x01, [10, 0, 0, 12], [2; 6]),
            5,
            &mut out,
        );
        parse_neigh(
            RTM_NEWNEIGH,
            &neigh_payload(6, 0x02, [10, 0, 0, 13], [2; 6]),
            5,
            &mut out,
        );
        parse_neigh(
            RTM_NEWNEIGH,
            &neigh_payload(5, 0x40, [0, 0, 0, 0], [0; 6]),
            5,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[&IpAddr::from(Ipv4Addr::new(10, 0, 0, 11))],
            [2, 0, 0, 0, 0, 11]
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut out = HashMap::new();
        for n in 0..200u32 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 7919 % 251) as u8).collect();
            parse_neigh(RTM_NEWNEIGH, &junk, 5, &mut out);
            let mut m = neigh_payload(5, 0x02, [1, 2, 3, 4], [9; 6]);
            m.truncate(n as usize % m.len());
            parse_neigh(RTM_NEWNEIGH, &m, 5, &mut out);
            assert!(attrs(&junk, 0).count() <= junk.len() / 4 + 1);
        }
    }

    #[test]
    fn talks_to_the_kernel() {
        // Loopback has no usable neighbours, but the dump itself must work.
        assert!(neighbours(1).unwrap().is_empty());
        assert!(addresses()
            .unwrap()
            .iter()
            .any(|(i, a, p)| *i == 1 && a.is_loopback() && *p == 8));
        let r = route_get(Ipv4Addr::LOCALHOST).unwrap();
        assert_eq!(r.oif, 1);
    }
}
