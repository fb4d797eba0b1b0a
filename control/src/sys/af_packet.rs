//! An AF_PACKET socket that sends whole Ethernet frames out of one interface (gratuitous
//! ARP); it receives nothing.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct PacketSocket {
    fd: OwnedFd,
    to: libc::sockaddr_ll,
}

impl PacketSocket {
    /// A socket sending to the broadcast address out of `ifindex`.
    pub fn broadcast(ifindex: u32) -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2); checked below. Protocol 0: this socket receives nothing.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; zeroed is valid before the fields are set.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_ifindex = ifindex as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].fill(0xff);
        Ok(PacketSocket { fd, to })
    }

    /// Sends one frame, Ethernet header included.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sends `frame`, valid for its length, to a valid sockaddr_ll.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&self.to as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
