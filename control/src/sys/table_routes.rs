//! Host routes in a routing table of their own (route health injection): written,
//! replaced, removed and listed by rtnetlink, each marked with xvs's protocol number so
//! that a listing tells xvs's routes from anyone else's.

use std::io;
use std::net::IpAddr;

use super::netlink::{
    attrs, ip, u32_at, Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    RTA_DST, RTA_OIF, RTM_GETROUTE, RTM_NEWROUTE,
};

const RTM_DELROUTE: u16 = 25;
const RTA_TABLE: u16 = 15;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
/// The `proto` of xvs's routes (`ip route show table T proto 77`); not one the kernel,
/// BIRD (12) or iproute2's names use, so BIRD's `learn` takes the routes as alien ones.
pub const RTPROT_XVS: u8 = 77;

/// A host route of xvs's in a table: its address and the device it points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRoute {
    pub dst: IpAddr,
    pub oif: u32,
}

/// rtmsg for a host route to `dst` in `table` (the attribute carries it; the byte only
/// up to 255).
fn rtmsg(dst: IpAddr, table: u32) -> [u8; 12] {
    let mut m = [0u8; 12];
    let (family, bits) = match dst {
        IpAddr::V4(_) => (libc::AF_INET as u8, 32),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, 128),
    };
    m[0] = family;
    m[1] = bits;
    m[4] = u8::try_from(table).unwrap_or(0);
    m[5] = RTPROT_XVS;
    m[6] = RT_SCOPE_LINK;
    m[7] = RTN_UNICAST;
    m
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Writes `dst` → device `oif` in `table`; `replace`: in place of a route to `dst`
/// there already (another process's: a takeover), else a route there is an error.
pub fn add(table: u32, dst: IpAddr, oif: u32, replace: bool) -> io::Result<()> {
    let flags = NLM_F_CREATE | NLM_F_ACK | if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
    Msg::new(RTM_NEWROUTE, flags, &rtmsg(dst, table))
        .attr(RTA_TABLE, &table.to_ne_bytes())
        .attr(RTA_DST, &octets(dst))
        .attr(RTA_OIF, &oif.to_ne_bytes())
        .exchange(|_, _| {})
}

/// Removes xvs's route to `dst` through `oif` from `table`; false if there was none.
pub fn del(table: u32, dst: IpAddr, oif: u32) -> io::Result<bool> {
    match Msg::new(RTM_DELROUTE, NLM_F_ACK, &rtmsg(dst, table))
        .attr(RTA_TABLE, &table.to_ne_bytes())
        .attr(RTA_DST, &octets(dst))
        .attr(RTA_OIF, &oif.to_ne_bytes())
        .exchange(|_, _| {})
    {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// xvs's host routes in `table`, both families.
pub fn list(table: u32) -> io::Result<Vec<TableRoute>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        let mut m = [0u8; 12];
        m[0] = family;
        Msg::new(RTM_GETROUTE, NLM_F_DUMP, &m).exchange(|kind, p| {
            if let Some(r) = ours(kind, p, table) {
                out.push(r);
            }
        })?;
    }
    Ok(out)
}

/// A dumped route, if it is one of xvs's host routes in `table`.
fn ours(kind: u16, p: &[u8], table: u32) -> Option<TableRoute> {
    if kind != RTM_NEWROUTE || p.len() < 12 || p[5] != RTPROT_XVS {
        return None;
    }
    let (family, bits) = (p[0], p[1]);
    let mut in_table = u32::from(p[4]);
    let (mut dst, mut oif) = (None, 0);
    for (t, d) in attrs(p, 12) {
        match t {
            RTA_TABLE => in_table = u32_at(d, 0)?,
            RTA_DST => dst = ip(family, d),
            RTA_OIF => oif = u32_at(d, 0)?,
            _ => {}
        }
    }
    let dst = dst?;
    let host = bits == if dst.is_ipv4() { 32 } else { 128 };
    (in_table == table && host).then_some(TableRoute { dst, oif })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dumped route: rtmsg then attributes, as the kernel sends it.
    fn dumped(proto: u8, table: u32, dst: [u8; 4], bits: u8) -> Vec<u8> {
        let mut p = vec![
            libc::AF_INET as u8,
            bits,
            0,
            0,
            252,
            proto,
            253,
            1,
            0,
            0,
            0,
            0,
        ];
        for (t, d) in [
            (RTA_TABLE, table.to_ne_bytes().to_vec()),
            (RTA_DST, dst.to_vec()),
            (RTA_OIF, 7u32.to_ne_bytes().to_vec()),
        ] {
            p.extend_from_slice(&((4 + d.len()) as u16).to_ne_bytes());
            p.extend_from_slice(&t.to_ne_bytes());
            p.extend_from_slice(&d);
        }
        p
    }

    #[test]
    fn only_xvss_host_routes_in_the_table_are_listed() {
        let mine = dumped(RTPROT_XVS, 100, [10, 0, 0, 100], 32);
        assert_eq!(
            ours(RTM_NEWROUTE, &mine, 100),
            Some(TableRoute {
                dst: "10.0.0.100".parse().unwrap(),
                oif: 7
            })
        );
        assert_eq!(ours(RTM_NEWROUTE, &mine, 101), None, "another table");
        let bird = dumped(12, 100, [10, 0, 0, 100], 32);
        assert_eq!(ours(RTM_NEWROUTE, &bird, 100), None, "another protocol");
        let net = dumped(RTPROT_XVS, 100, [10, 0, 0, 0], 24);
        assert_eq!(ours(RTM_NEWROUTE, &net, 100), None, "not a host route");
        for cut in 0..mine.len() {
            // Truncated input ends the parse, never panics.
            let _ = ours(RTM_NEWROUTE, &mine[..cut], 100);
        }
    }
}
