//! The VRRP socket: raw IPv4 protocol 112 on one interface, in the multicast group
//! 224.0.0.18 (a raw socket sees the group only after joining it), sending with TTL 255
//! as the RFCs require, and without looping our own adverts back.

use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::packet::{MULTICAST_GROUP, PROTO_VRRP};

pub struct VrrpSocket {
    fd: AsyncFd<OwnedFd>,
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points at a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

impl VrrpSocket {
    /// Opens the socket on `ifname`, sending from `src`; joins the group unless all peers
    /// are unicast.
    pub fn open(ifname: &str, ifindex: u32, src: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        // SAFETY: plain socket(2); checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(PROTO_VRRP),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(ifname)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: SO_BINDTODEVICE reads `name` up to its length.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.as_bytes_with_nul().len() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // A bound raw socket only receives datagrams to its address: bind for unicast
        // peers only. Multicast adverts take their source from IP_MULTICAST_IF below.
        if !multicast {
            let sa = sockaddr(src);
            // SAFETY: binds to a valid sockaddr_in of the size passed; sets our source.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_in).cast(),
                    size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from(MULTICAST_GROUP).to_be(),
            },
            imr_address: libc::in_addr {
                s_addr: u32::from(src).to_be(),
            },
            imr_ifindex: ifindex as i32,
        };
        if multicast {
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
        }
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &255i32)?;
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &0i32)?;
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_TTL, &255i32)?;
        // DSCP CS6, as keepalived and routers mark VRRP.
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_TOS, &0xc0i32)?;
        // SAFETY: we own `fd` outright and it stays open for as long as the AsyncFd that
        // takes it: nothing else can close or reuse the descriptor while registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(VrrpSocket { fd })
    }

    /// The next datagram, IP header included.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            // SAFETY: receives into `buf`, writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(e);
        }
    }

    pub fn send_to(&self, msg: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let sa = sockaddr(dst);
        // SAFETY: sends `msg`, valid for its length, to a valid sockaddr_in.
        let rc = unsafe {
            libc::sendto(
                self.fd.get_ref().as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
