//! A raw IPv6 socket gives the message alone: what RFC 5798 needs beside it, the hop
//! limit (it must be 255) and the destination (the checksum's pseudo-header), comes as
//! control messages of recvmsg (IPV6_HOPLIMIT, IPV6_PKTINFO), enabled once per socket.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::Ipv6Addr;
use std::os::fd::RawFd;

/// One datagram and what came beside it.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub len: usize,
    pub src: Ipv6Addr,
    pub dst: Option<Ipv6Addr>,
    pub hop_limit: Option<u8>,
}

fn set_on(fd: RawFd, opt: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call, and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            opt,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel for each datagram's hop limit and destination.
pub fn enable(fd: RawFd) -> io::Result<()> {
    set_on(fd, libc::IPV6_RECVHOPLIMIT)?;
    set_on(fd, libc::IPV6_RECVPKTINFO)
}

/// Receives one datagram without blocking (EWOULDBLOCK when there is none).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is a valid sockaddr_in6 and msghdr.
    let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>();
    // SAFETY: every pointer in `msg` points at a live buffer of the length given with it.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Received {
        len: n as usize,
        src: Ipv6Addr::from(from.sin6_addr.s6_addr),
        dst: None,
        hop_limit: None,
    };
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk its control buffer
    // within msg_controllen, and each data pointer is read only for its type's size
    // after checking the header's length covers it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            let data = libc::CMSG_DATA(c);
            let room = h.cmsg_len as usize - (data as usize - c as usize);
            if h.cmsg_level == libc::IPPROTO_IPV6 {
                if h.cmsg_type == libc::IPV6_HOPLIMIT && room >= size_of::<libc::c_int>() {
                    let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    out.hop_limit = u8::try_from(v).ok();
                } else if h.cmsg_type == libc::IPV6_PKTINFO
                    && room >= size_of::<libc::in6_pktinfo>()
                {
                    let p = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    out.dst = Some(Ipv6Addr::from(p.ipi6_addr.s6_addr));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(out)
}
