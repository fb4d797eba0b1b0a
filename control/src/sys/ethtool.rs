//! A driver's own statistics (`ethtool -S`), read with the SIOCETHTOOL ioctl: names once
//! per count of them, values on each read. Needs no capability.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
/// More than any driver has (mlx5 has some thousands): a bound on what is allocated.
const MAX_STATS: usize = 1 << 16;

/// `struct ifreq` with the `ifr_data` member of its union.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// One interface's statistics: its names, and a socket to ask through.
pub struct DriverStats {
    name: String,
    sock: OwnedFd,
    names: Vec<String>,
}

impl DriverStats {
    /// Opens `ifname`'s statistics; an error when it has none (no driver support).
    pub fn open(ifname: &str) -> io::Result<DriverStats> {
        if ifname.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name too long",
            ));
        }
        // SAFETY: socket(2) with constant arguments; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a socket just opened and owned by nothing else.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut s = DriverStats {
            name: ifname.to_string(),
            sock,
            names: Vec::new(),
        };
        s.names = s.read_names()?;
        Ok(s)
    }

    /// Every statistic's name and value now. The names are read again when the driver's
    /// count changed (queues added).
    pub fn read(&mut self) -> io::Result<Vec<(String, u64)>> {
        let mut values = self.read_values()?;
        if values.len() != self.names.len() {
            self.names = self.read_names()?;
            values = self.read_values()?;
            if values.len() != self.names.len() {
                return Err(io::Error::other("statistics changed while read"));
            }
        }
        Ok(self.names.iter().cloned().zip(values).collect())
    }

    /// How many statistics the driver has now.
    fn count(&self) -> io::Result<usize> {
        // struct ethtool_sset_info { cmd, reserved, sset_mask: u64, data[] } with one
        // set asked: the answer's count follows the mask.
        let mut buf = [0u32; 5];
        buf[0] = ETHTOOL_GSSET_INFO;
        let mask = 1u64 << ETH_SS_STATS;
        buf[2..4].copy_from_slice(&split(mask));
        // SAFETY: the buffer holds the header and room for the one set's count asked.
        unsafe { self.ioctl(buf.as_mut_ptr().cast())? };
        if join([buf[2], buf[3]]) & mask == 0 {
            return Ok(0);
        }
        Ok(buf[4] as usize)
    }

    /// Room for `n` items, and for some more: the kernel writes as many as the driver
    /// has at the moment of the call, whatever the buffer says (queues added meanwhile).
    fn room(n: usize) -> io::Result<usize> {
        if n > MAX_STATS {
            return Err(io::Error::other(format!(
                "{n} driver statistics: too many to read"
            )));
        }
        Ok(n * 2 + 256)
    }

    fn read_names(&self) -> io::Result<Vec<String>> {
        let room = Self::room(self.count()?)?;
        // struct ethtool_gstrings { cmd, string_set, len, data[len * 32] }
        let mut buf = vec![0u8; 12 + room * ETH_GSTRING_LEN];
        buf[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
        buf[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
        // SAFETY: the buffer has a header and `room` strings, more than the driver has.
        unsafe { self.ioctl(buf.as_mut_ptr().cast())? };
        let got = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if got > room {
            return Err(io::Error::other("statistics changed while read"));
        }
        Ok(buf[12..12 + got * ETH_GSTRING_LEN]
            .chunks_exact(ETH_GSTRING_LEN)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(&c[..end]).into_owned()
            })
            .collect())
    }

    /// The values, as many as the driver has (a count unlike the names' means they
    /// changed).
    fn read_values(&self) -> io::Result<Vec<u64>> {
        let room = Self::room(self.count()?)?;
        // struct ethtool_stats { cmd: u32, n_stats: u32, data[n_stats]: u64 }
        let mut buf = vec![0u64; 1 + room];
        buf[0] = join([ETHTOOL_GSTATS, 0]);
        // SAFETY: the buffer has a header and `room` values, more than the driver has.
        unsafe { self.ioctl(buf.as_mut_ptr().cast())? };
        let got = split(buf[0])[1] as usize;
        if got > room {
            return Err(io::Error::other("statistics changed while read"));
        }
        Ok(buf[1..1 + got].to_vec())
    }

    /// SIOCETHTOOL with `data` as the command's buffer.
    ///
    /// # Safety
    /// `data` must point at a buffer laid out for the command its first word names,
    /// large enough for everything the kernel writes back for this interface.
    unsafe fn ioctl(&self, data: *mut libc::c_void) -> io::Result<()> {
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data,
            _pad: [0; 16],
        };
        for (d, s) in req.name.iter_mut().zip(self.name.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: `req` is a valid ifreq (the name NUL-terminated: shorter than
        // IFNAMSIZ); its data buffer is the caller's promise.
        let r = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A u64 as the two u32 words it is in memory (native order), and back.
fn split(v: u64) -> [u32; 2] {
    let b = v.to_ne_bytes();
    [
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
    ]
}

fn join(w: [u32; 2]) -> u64 {
    let (a, b) = (w[0].to_ne_bytes(), w[1].to_ne_bytes());
    u64::from_ne_bytes([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        assert_eq!(join(split(0x1234_5678_9abc_def0)), 0x1234_5678_9abc_def0);
        assert_eq!(split(join([ETHTOOL_GSTATS, 7])), [ETHTOOL_GSTATS, 7]);
    }

    #[test]
    fn loopback_has_no_driver_statistics_and_says_so() {
        // `lo` has no ethtool statistics: an error or an empty list, never a panic.
        if let Ok(mut s) = DriverStats::open("lo") {
            assert!(s.read().map(|v| v.is_empty()).unwrap_or(true));
        }
        assert!(DriverStats::open("a-name-far-too-long-for-linux").is_err());
    }
}
