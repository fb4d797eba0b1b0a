//! Just enough rtnetlink: dump the IPv4 neighbour table of one interface.

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const NDMSG: usize = 12;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
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

/// The usable IPv4 neighbours on `ifindex`: address → MAC.
pub fn neighbours(ifindex: u32) -> io::Result<HashMap<Ipv4Addr, [u8; 6]>> {
    let fd = open()?;
    const REQ_LEN: usize = NLMSG_HDR + NDMSG;
    let mut req = [0u8; REQ_LEN];
    req[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[NLMSG_HDR] = libc::AF_INET as u8;
    // SAFETY: sends `req`, a valid buffer of its length, to the kernel (address 0).
    let rc = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receives into `buf`, a writable buffer of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse_dump(&buf[..n as usize], ifindex, &mut out)? {
            return Ok(out);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses one datagram of a neighbour dump into `out`; true once the dump is complete.
/// Malformed input ends the parse of that datagram, never panics.
fn parse_dump(
    mut b: &[u8],
    ifindex: u32,
    out: &mut HashMap<Ipv4Addr, [u8; 6]>,
) -> io::Result<bool> {
    while b.len() >= NLMSG_HDR {
        let len = u32_at(b, 0).unwrap_or(0) as usize;
        let kind = u16_at(b, 4).unwrap_or(0);
        if len < NLMSG_HDR || len > b.len() {
            break;
        }
        let msg = &b[NLMSG_HDR..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(msg, 0).map_or(0, |e| -(e as i32));
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                return Ok(true);
            }
            RTM_NEWNEIGH if msg.len() >= NDMSG => {
                let family = msg[0];
                let idx = u32_at(msg, 4).unwrap_or(0);
                let state = u16_at(msg, 8).unwrap_or(0);
                if family == libc::AF_INET as u8 && idx == ifindex && state & NUD_USABLE != 0 {
                    let (mut dst, mut mac) = (None, None);
                    let mut attrs = &msg[NDMSG..];
                    while attrs.len() >= 4 {
                        let alen = usize::from(u16_at(attrs, 0).unwrap_or(0));
                        let atype = u16_at(attrs, 2).unwrap_or(0);
                        if alen < 4 || alen > attrs.len() {
                            break;
                        }
                        let data = &attrs[4..alen];
                        match (atype, data.len()) {
                            (NDA_DST, 4) => {
                                dst = Some(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
                            }
                            (NDA_LLADDR, 6) => mac = data.try_into().ok(),
                            _ => {}
                        }
                        attrs = attrs.get((alen + 3) & !3..).unwrap_or(&[]);
                    }
                    // NOARP entries (lo's 0.0.0.0) carry an all-zero MAC: no next hop.
                    if let (Some(d), Some(m)) = (dst, mac.filter(|m| *m != [0; 6])) {
                        out.insert(d, m);
                    }
                }
            }
            _ => {}
        }
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or(&[]);
    }
    Ok(false)
}

/// Makes the kernel resolve `addr` by sending it an empty UDP datagram (discard port):
/// resolution happens as a side effect, and the datagram itself is harmless.
pub fn nudge(addr: Ipv4Addr) {
    if let Ok(s) = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) {
        let _ = s.send_to(&[], (addr, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neigh_msg(ifindex: u32, state: u16, dst: [u8; 4], mac: [u8; 6]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR + NDMSG];
        m[4..6].copy_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m[NLMSG_HDR] = libc::AF_INET as u8;
        m[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&ifindex.to_ne_bytes());
        m[NLMSG_HDR + 8..NLMSG_HDR + 10].copy_from_slice(&state.to_ne_bytes());
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&NDA_DST.to_ne_bytes());
        m.extend_from_slice(&dst);
        m.extend_from_slice(&10u16.to_ne_bytes());
        m.extend_from_slice(&NDA_LLADDR.to_ne_bytes());
        m.extend_from_slice(&mac);
        m.extend_from_slice(&[0, 0]); // pad to 4
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn parses_usable_entries_of_the_interface() {
        let mut d = neigh_msg(5, 0x02, [10, 0, 0, 11], [2, 0, 0, 0, 0, 11]);
        d.extend(neigh_msg(5, 0x01, [10, 0, 0, 12], [0; 6])); // incomplete
        d.extend(neigh_msg(6, 0x02, [10, 0, 0, 13], [2, 0, 0, 0, 0, 13])); // other interface
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        d.extend(done);
        let mut out = HashMap::new();
        assert!(parse_dump(&d, 5, &mut out).unwrap());
        assert_eq!(out.len(), 1);
        assert_eq!(out[&Ipv4Addr::new(10, 0, 0, 11)], [2, 0, 0, 0, 0, 11]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut out = HashMap::new();
        for n in 0..200u32 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 7919 % 251) as u8).collect();
            let _ = parse_dump(&junk, 5, &mut out);
            let mut m = neigh_msg(5, 0x02, [1, 2, 3, 4], [9; 6]);
            m.truncate(n as usize % m.len());
            let _ = parse_dump(&m, 5, &mut out);
        }
    }

    #[test]
    fn reads_the_real_table() {
        // Loopback has no neighbours, but the dump itself must work.
        let n = neighbours(1).unwrap();
        assert!(n.is_empty(), "{n:?}");
    }
}
