//! The generator where the kernel refuses BPF_PROG_RUN's live frames (some platforms'
//! kernels do, EPERM): the same frames as `xvs_trafgen` writes them (flow i from source
//! address base + (i & 0xfffff), source port 1024 + (i >> 20), checksums whole), rewritten
//! in userspace and sent from an AF_PACKET socket, 64 to a `sendmmsg`, past the qdisc.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use xvs_dataplane::wire::checksum;

/// Frames per `sendmmsg`.
const BATCH: usize = 64;
const ETH: usize = 14;
const TCP: u8 = 6;
const UDP: u8 = 17;

pub struct PacketGen {
    fd: OwnedFd,
    ifindex: u32,
    flows: u32,
    saddr_base: u32,
    seq: u64,
    frames: Vec<Vec<u8>>,
}

impl PacketGen {
    /// A generator of `flows` flows out of `ifindex`, from `template` (an IPv4 or IPv6
    /// TCP or UDP frame without options or payload, as `xvs_bpf::bench::template` makes).
    pub fn open(ifindex: u32, template: &[u8], flows: u32, saddr_base: u32) -> Result<Self> {
        if template.len() < ETH + 40 {
            bail!("template frame too short");
        }
        // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("an AF_PACKET socket");
        }
        // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: setsockopt(2) reads `one`, a c_int that outlives the call.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        Ok(PacketGen {
            fd,
            ifindex,
            flows: flows.max(1),
            saddr_base,
            seq: 0,
            frames: vec![template.to_vec(); BATCH],
        })
    }

    /// Sends `n` frames (each the next flow's); blocks until the kernel took them.
    pub fn send(&mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            let k = (n as usize).min(BATCH);
            for f in 0..k {
                let i = (self.seq % u64::from(self.flows)) as u32;
                self.seq += 1;
                let saddr = self.saddr_base.wrapping_add(i & 0xfffff);
                let sport = (1024 + (i >> 20)) as u16;
                rewrite(&mut self.frames[f], saddr, sport);
            }
            self.send_batch(k)?;
            n -= k as u64;
        }
        Ok(())
    }

    fn send_batch(&mut self, k: usize) -> Result<()> {
        // SAFETY: sockaddr_ll is plain data; all zeros is a valid value.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_ifindex = self.ifindex as i32;
        to.sll_halen = 6;
        let mut iov: Vec<libc::iovec> = self.frames[..k]
            .iter_mut()
            .map(|f| libc::iovec {
                iov_base: f.as_mut_ptr().cast(),
                iov_len: f.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain data; all zeros is a valid value, filled in below.
        let mut msgs: Vec<libc::mmsghdr> = (0..k).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_name = (&mut to as *mut libc::sockaddr_ll).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < k {
            // SAFETY: `msgs[done..]` point at `to`, `iov` and `self.frames`, all alive and
            // unmoved for the call; the kernel only reads them.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs[done..].as_mut_ptr(),
                    (k - done) as u32,
                    0,
                )
            };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ENOBUFS)
                    || e.kind() == std::io::ErrorKind::WouldBlock
                {
                    std::thread::yield_now();
                    continue;
                }
                return Err(e).context("sendmmsg");
            }
            done += r as usize;
        }
        Ok(())
    }
}

/// Gives `frame` source address `saddr` (IPv4's whole, IPv6's last 32 bits) and source
/// port `sport`, with the checksums recomputed whole.
fn rewrite(frame: &mut [u8], saddr: u32, sport: u16) {
    let v6 = frame[12..14] == [0x86, 0xdd];
    let (l4, proto) = if v6 {
        frame[ETH + 20..ETH + 24].copy_from_slice(&saddr.to_be_bytes());
        (ETH + 40, frame[ETH + 6])
    } else {
        frame[ETH + 12..ETH + 16].copy_from_slice(&saddr.to_be_bytes());
        frame[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&frame[ETH..ETH + 20]);
        frame[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        (ETH + 20, frame[ETH + 9])
    };
    frame[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
    let at = match proto {
        TCP => l4 + 16,
        UDP => l4 + 6,
        _ => return,
    };
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    if proto == UDP && !v6 {
        return; // optional over IPv4: left 0, as xvs_trafgen leaves it
    }
    // From the IP header: the frame may be padded to Ethernet's 60 bytes.
    let len = if v6 {
        usize::from(u16::from_be_bytes([frame[ETH + 4], frame[ETH + 5]]))
    } else {
        usize::from(u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]])) - 20
    }
    .min(frame.len() - l4);
    let acc = if v6 {
        let src: [u8; 16] = frame[ETH + 8..ETH + 24].try_into().unwrap_or_default();
        let dst: [u8; 16] = frame[ETH + 24..ETH + 40].try_into().unwrap_or_default();
        checksum::pseudo_header_v6(src, dst, proto, len as u32)
    } else {
        let src: [u8; 4] = frame[ETH + 12..ETH + 16].try_into().unwrap_or_default();
        let dst: [u8; 4] = frame[ETH + 16..ETH + 20].try_into().unwrap_or_default();
        checksum::pseudo_header(src, dst, proto, len as u16)
    };
    let mut c = !checksum::fold(checksum::sum(acc, &frame[l4..l4 + len]));
    if proto == UDP && c == 0 {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rewritten frames are what etherparse calls valid, for both families.
    #[test]
    fn rewritten_frames_carry_valid_checksums() {
        use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
        let mac = [2, 0, 0, 0, 0, 1];
        for (syn, v6) in [(true, false), (false, false), (true, true), (false, true)] {
            let mut f = if v6 {
                xvs_bpf::bench::template6(mac, mac, "2001:db8::100".parse().unwrap(), 80, syn)
            } else {
                xvs_bpf::bench::template(mac, mac, "10.0.0.100".parse().unwrap(), 80, syn)
            };
            rewrite(&mut f, 0x0a80_0007, 1025);
            let p = PacketHeaders::from_ethernet_slice(&f).unwrap();
            let payload = p.payload.slice();
            match (&p.net, &p.transport) {
                (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Tcp(t))) => {
                    assert_eq!(ip.source, [10, 128, 0, 7]);
                    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                    assert_eq!(t.source_port, 1025);
                    assert_eq!(t.checksum, t.calc_checksum_ipv4(ip, payload).unwrap());
                }
                (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Udp(u))) => {
                    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                    assert_eq!((u.source_port, u.checksum), (1025, 0));
                }
                (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Tcp(t))) => {
                    assert_eq!(&ip.source[12..], &[10, 128, 0, 7]);
                    assert_eq!(t.checksum, t.calc_checksum_ipv6(ip, payload).unwrap());
                }
                (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Udp(u))) => {
                    assert_eq!(u.checksum, u.calc_checksum_ipv6(ip, payload).unwrap());
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
