//! A TUN device that lives exactly as long as this process: not persistent, so the
//! kernel deletes it (and every route through it) when its descriptor closes, at exit
//! or at a `kill -9`. Route health injection points its routes at one, so that a
//! crashed director stops being announced without anyone cleaning up.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// struct ifreq, as TUNSETIFF and SIOC[GS]IFFLAGS read it.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

// The ioctls read and write the kernel's struct ifreq: the same size, or no call.
const _: () = assert!(std::mem::size_of::<IfReq>() == std::mem::size_of::<libc::ifreq>());

pub struct Tun {
    /// Held, never read: closing its last copy deletes the device.
    fd: OwnedFd,
    pub name: String,
    pub ifindex: u32,
}

impl Tun {
    /// Creates the device `name` (at most 15 bytes; a `%d` in it is the kernel's first
    /// free number) and sets it up.
    pub fn create(name: &str) -> io::Result<Tun> {
        let mut req = request(name)?;
        req.flags = IFF_TUN | IFF_NO_PI;
        // SAFETY: open(2) of a constant NUL-terminated path; checked below.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is, for its size.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        set_up(&mut req)?;
        // SAFETY: `req.name` is NUL-terminated (`request` leaves its last byte 0).
        let ifindex = unsafe { libc::if_nametoindex(req.name.as_ptr().cast()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tun {
            fd,
            name: name_in(&req),
            ifindex,
        })
    }

    /// The device another process made, from its descriptor (kept for this one in
    /// systemd's fd store).
    pub fn adopt(fd: OwnedFd) -> io::Result<Tun> {
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        // SAFETY: TUNGETIFF writes an ifreq, which `req` is, for its size.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if req.flags & IFF_TUN == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a TUN device",
            ));
        }
        // The kernel NUL-terminates the name; the last byte stays 0 whatever it wrote.
        req.name[libc::IFNAMSIZ - 1] = 0;
        let name = name_in(&req);
        // SAFETY: `req.name` is NUL-terminated (just above).
        let ifindex = unsafe { libc::if_nametoindex(req.name.as_ptr().cast()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tun { fd, name, ifindex })
    }

    /// The descriptor, to hand to systemd's fd store.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The name the kernel wrote into `req` (its last byte is always 0).
fn name_in(req: &IfReq) -> String {
    let len = req.name.iter().position(|&b| b == 0).unwrap_or(0);
    String::from_utf8_lossy(&req.name[..len]).into_owned()
}

fn request(name: &str) -> io::Result<IfReq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("device name {name:?}: 1 to 15 bytes"),
        ));
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    Ok(req)
}

/// IFF_UP on the device `req` names, through an ordinary socket's ioctls.
fn set_up(req: &mut IfReq) -> io::Result<()> {
    // SAFETY: plain socket(2); checked below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: SIOCGIFFLAGS fills the flags of an ifreq, which `req` is.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut *req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads an ifreq, which `req` is.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &*req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
