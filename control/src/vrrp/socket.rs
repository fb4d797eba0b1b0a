//! The VRRP socket: raw IP protocol 112 on one interface. IPv4: in the multicast group
//! 224.0.0.18 (a raw socket sees the group only after joining it), the IP header
//! delivered with each datagram. IPv6 (RFC 5798): bound to the interface's link-local
//! address, in ff02::12, the hop limit and destination beside each message
//! (`sys::ip6msg`). Sent with TTL/hop limit 255 as the RFCs require, DSCP CS6, and
//! without looping our own adverts back. Registering with tokio is
//! `sys::async_socket`'s.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::advert::{MULTICAST_GROUP, MULTICAST_GROUP_V6, PROTO_VRRP};
use crate::sys::ip6msg;

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    /// An IPv6 socket: its messages come with their addresses beside them.
    v6: bool,
}

/// What one receive gave: an IPv4 datagram (header included) in the buffer, or an IPv6
/// message with its addresses and hop limit.
#[derive(Clone, Copy, Debug)]
pub enum Incoming {
    V4 {
        len: usize,
    },
    V6 {
        len: usize,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
    },
}

impl VrrpSocket {
    /// Opens the socket on `ifname`, sending from `src` (its family is the socket's);
    /// joins the group unless all peers are unicast.
    pub fn open(ifname: &str, ifindex: u32, src: IpAddr, multicast: bool) -> io::Result<Self> {
        let domain = if src.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let sock = Socket::new(
            domain,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(PROTO_VRRP))),
        )?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        match src {
            IpAddr::V4(src) => {
                // A bound raw socket only receives datagrams to its address: bind for
                // unicast peers only. Multicast adverts take their source from the
                // multicast interface.
                if !multicast {
                    sock.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
                } else {
                    sock.join_multicast_v4_n(
                        &MULTICAST_GROUP,
                        &InterfaceIndexOrAddress::Index(ifindex),
                    )?;
                    // Only the groups this socket joined, not every group of the host.
                    sock.set_multicast_all_v4(false)?;
                }
                sock.set_multicast_if_v4(&src)?;
                sock.set_multicast_ttl_v4(255)?;
                sock.set_multicast_loop_v4(false)?;
                sock.set_ttl_v4(255)?;
                sock.set_tos_v4(0xc0)?;
            }
            IpAddr::V6(src) => {
                // The source of every advert: the link-local address (RFC 5798 5.1.2.1).
                let scope = if is_link_local(src) { ifindex } else { 0 };
                sock.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, scope)))?;
                if multicast {
                    sock.join_multicast_v6(&MULTICAST_GROUP_V6, ifindex)?;
                    sock.set_multicast_all_v6(false)?;
                }
                sock.set_multicast_if_v6(ifindex)?;
                sock.set_multicast_hops_v6(255)?;
                sock.set_multicast_loop_v6(false)?;
                sock.set_unicast_hops_v6(255)?;
                sock.set_tclass_v6(0xc0)?;
                ip6msg::enable(sock.as_raw_fd())?;
            }
        }
        Ok(VrrpSocket {
            fd: crate::sys::async_socket::register(sock)?,
            ifindex,
            v6: src.is_ipv6(),
        })
    }

    /// The next datagram.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Incoming> {
        let v6 = self.v6;
        loop {
            let mut guard = self.fd.readable().await?;
            let got = guard.try_io(|s| {
                if v6 {
                    let r = ip6msg::recv(s.get_ref().as_raw_fd(), buf)?;
                    Ok(Incoming::V6 {
                        len: r.len,
                        src: r.src,
                        // Without the control messages, no check can pass: say so.
                        dst: r.dst.unwrap_or(Ipv6Addr::UNSPECIFIED),
                        hop_limit: r.hop_limit.unwrap_or(0),
                    })
                } else {
                    let mut sock: &Socket = s.get_ref();
                    sock.read(buf).map(|len| Incoming::V4 { len })
                }
            });
            match got {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    pub fn send_to(&self, msg: &[u8], dst: IpAddr) -> io::Result<()> {
        let to = match dst {
            IpAddr::V4(d) => SockAddr::from(SocketAddrV4::new(d, 0)),
            IpAddr::V6(d) => {
                let scope = if is_link_local(d) || d.is_multicast() {
                    self.ifindex
                } else {
                    0
                };
                SockAddr::from(SocketAddrV6::new(d, 0, 0, scope))
            }
        };
        self.fd.get_ref().send_to(msg, &to).map(|_| ())
    }
}

/// fe80::/10.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}
