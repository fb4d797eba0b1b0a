//! The VRRP socket: raw IPv4 protocol 112 on one interface, in the multicast group
//! 224.0.0.18 (a raw socket sees the group only after joining it), sending with TTL 255
//! as the RFCs require, and without looping our own adverts back. socket2 covers every
//! call; registering with tokio is `sys::async_socket`'s.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::{MULTICAST_GROUP, PROTO_VRRP};

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
}

impl VrrpSocket {
    /// Opens the socket on `ifname`, sending from `src`; joins the group unless all peers
    /// are unicast.
    pub fn open(ifname: &str, ifindex: u32, src: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(PROTO_VRRP))),
        )?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        // A bound raw socket only receives datagrams to its address: bind for unicast
        // peers only. Multicast adverts take their source from the multicast interface.
        if !multicast {
            sock.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
        }
        if multicast {
            sock.join_multicast_v4_n(&MULTICAST_GROUP, &InterfaceIndexOrAddress::Index(ifindex))?;
            // Only the groups this socket joined, not every group of the host.
            sock.set_multicast_all_v4(false)?;
        }
        sock.set_multicast_if_v4(&src)?;
        sock.set_multicast_ttl_v4(255)?;
        sock.set_multicast_loop_v4(false)?;
        sock.set_ttl_v4(255)?;
        // DSCP CS6, as keepalived and routers mark VRRP.
        sock.set_tos_v4(0xc0)?;
        Ok(VrrpSocket {
            fd: crate::sys::async_socket::register(sock)?,
        })
    }

    /// The next datagram, IP header included.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| {
                let mut sock: &Socket = s.get_ref();
                sock.read(buf)
            }) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    pub fn send_to(&self, msg: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(msg, &SockAddr::from(SocketAddrV4::new(dst, 0)))
            .map(|_| ())
    }
}
