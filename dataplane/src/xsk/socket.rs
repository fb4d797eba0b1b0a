//! The AF_XDP socket: registers the UMEM, sizes and maps the four rings, binds to one
//! (interface, queue), zero-copy when the driver supports it, copy mode otherwise.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use thiserror::Error;

use super::ring::{ConsRing, ProdRing, RingMem};
use super::umem::Umem;

#[derive(Debug, Error)]
pub enum XskError {
    #[error(
        "failed to {what} for AF_XDP on interface index {ifindex} queue {queue}: {source}{}",
        privilege_hint(what, source)
    )]
    Setup {
        what: &'static str,
        ifindex: u32,
        queue: u32,
        source: io::Error,
    },
    #[error("invalid AF_XDP sizes: {0}")]
    Config(&'static str),
}

/// The privilege a failed step most likely lacked, named so the admin can grant it.
fn privilege_hint(what: &str, e: &io::Error) -> &'static str {
    match (what, e.raw_os_error()) {
        ("create the socket", Some(libc::EPERM)) => " (an AF_XDP socket needs CAP_NET_RAW)",
        ("register the UMEM", Some(libc::ENOBUFS | libc::EPERM | libc::ENOMEM)) => {
            " (the UMEM's pages count against RLIMIT_MEMLOCK unless the process holds CAP_IPC_LOCK)"
        }
        _ => "",
    }
}

impl XskError {
    /// The queue has a socket already: another program's, or one being released (the
    /// kernel frees a closed socket's hold on its queue a little after the close).
    pub fn is_busy(&self) -> bool {
        matches!(self, XskError::Setup { what: "bind" | "bind (shared UMEM)", source, .. } if source.raw_os_error() == Some(libc::EBUSY))
    }

    /// A `map_err` adapter: the step `what` failed on `ifindex` queue `queue`.
    fn setup(what: &'static str, ifindex: u32, queue: u32) -> impl Fn(io::Error) -> XskError {
        move |source| XskError::Setup {
            what,
            ifindex,
            queue,
            source,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy if the driver supports it, else copy.
    Auto,
    ZeroCopy,
    Copy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundMode {
    ZeroCopy,
    Copy,
}

impl BoundMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BoundMode::ZeroCopy => "zero-copy",
            BoundMode::Copy => "copy",
        }
    }
}

#[derive(Clone, Debug)]
pub struct XskConfig {
    pub frame_count: u32,
    pub frame_size: u32,
    pub rx_size: u32,
    pub tx_size: u32,
    pub bind: BindMode,
    /// Busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` µs, `SO_BUSY_POLL_BUDGET`):
    /// the worker's own poll() drives the device's NAPI instead of its interrupt. 0: off.
    pub busy_poll_usecs: u32,
    pub busy_poll_budget: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_count: 4096,
            frame_size: 4096,
            rx_size: 2048,
            tx_size: 2048,
            bind: BindMode::Auto,
            busy_poll_usecs: 0,
            busy_poll_budget: 64,
        }
    }
}

impl XskConfig {
    fn check(&self) -> Result<(), XskError> {
        for n in [self.frame_count, self.rx_size, self.tx_size] {
            if !n.is_power_of_two() {
                return Err(XskError::Config(
                    "ring sizes and frame count must be powers of two",
                ));
            }
        }
        if self.rx_size > self.frame_count || self.tx_size > self.frame_count {
            return Err(XskError::Config(
                "rings cannot be larger than the frame count",
            ));
        }
        Ok(())
    }
}

/// The kernel's socket counters (XDP_STATISTICS).
#[derive(Clone, Copy, Debug, Default)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// One mmap'd ring region, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map_ring` mapped; the rings pointing into it are
        // dropped with the same `Xsk` (fields drop before this list, see `Xsk`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: a mapping is plain memory owned by the socket; it may move with it.
unsafe impl Send for Mapping {}

/// An AF_XDP socket with its own UMEM. The fill ring is as large as the frame count, so a
/// frame user space owns always has a place to go back to.
pub struct Xsk {
    pub rx: ConsRing<libc::xdp_desc>,
    pub tx: ProdRing<libc::xdp_desc>,
    pub fill: ProdRing<u64>,
    pub comp: ConsRing<u64>,
    pub umem: Umem,
    mode: BoundMode,
    // Declared after the rings so they are dropped after them.
    _maps: Vec<Mapping>,
    fd: OwnedFd,
}

impl Xsk {
    /// Opens a socket on (ifindex, queue) and primes the fill ring with every frame.
    pub fn open(ifindex: u32, queue: u32, cfg: &XskConfig) -> Result<Self, XskError> {
        cfg.check()?;
        match cfg.bind {
            BindMode::ZeroCopy => Self::open_mode(ifindex, queue, cfg, BoundMode::ZeroCopy),
            BindMode::Copy => Self::open_mode(ifindex, queue, cfg, BoundMode::Copy),
            // A failed bind leaves the socket's rings consumed: retry from scratch. A busy
            // queue is no sign the driver lacks zero-copy: that error is the caller's (it
            // may wait for the queue), not a reason to settle for copy mode.
            BindMode::Auto => match Self::open_mode(ifindex, queue, cfg, BoundMode::ZeroCopy) {
                Err(e) if !e.is_busy() => Self::open_mode(ifindex, queue, cfg, BoundMode::Copy),
                r => r,
            },
        }
    }

    fn open_mode(
        ifindex: u32,
        queue: u32,
        cfg: &XskConfig,
        mode: BoundMode,
    ) -> Result<Self, XskError> {
        let err = |what| XskError::setup(what, ifindex, queue);
        let fd = new_socket().map_err(err("create the socket"))?;

        let umem = Umem::new(cfg.frame_count, cfg.frame_size).map_err(err("map the UMEM"))?;
        let reg = libc::xdp_umem_reg {
            addr: umem.as_ptr() as u64,
            len: umem.len() as u64,
            chunk_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&fd, libc::XDP_UMEM_REG, &reg).map_err(err("register the UMEM"))?;
        let fill_size = cfg.frame_count;
        let comp_size = cfg.frame_count;
        size_umem_rings(&fd, fill_size, comp_size).map_err(|(what, e)| err(what)(e))?;
        setsockopt(&fd, libc::XDP_RX_RING, &cfg.rx_size).map_err(err("size the RX ring"))?;
        setsockopt(&fd, libc::XDP_TX_RING, &cfg.tx_size).map_err(err("size the TX ring"))?;

        let off = mmap_offsets(&fd).map_err(err("read the ring offsets"))?;

        let mut maps = Vec::with_capacity(4);
        let rx_mem = map_ring::<libc::xdp_desc>(
            &fd,
            &off.rx,
            cfg.rx_size,
            libc::XDP_PGOFF_RX_RING as u64,
            &mut maps,
        )
        .map_err(err("map the RX ring"))?;
        let tx_mem = map_ring::<libc::xdp_desc>(
            &fd,
            &off.tx,
            cfg.tx_size,
            libc::XDP_PGOFF_TX_RING as u64,
            &mut maps,
        )
        .map_err(err("map the TX ring"))?;
        let (fill_mem, comp_mem) = map_umem_rings(&fd, &off, fill_size, comp_size, &mut maps)
            .map_err(|(what, e)| err(what)(e))?;

        bind_queue(&fd, ifindex, queue, mode).map_err(err("bind"))?;
        set_busy_poll(&fd, cfg).map_err(err("set busy polling"))?;

        // SAFETY: each RingMem points into a mapping kept alive in `maps` for the socket's
        // lifetime, sized by the kernel's offsets for `size` descriptors; the kernel is the
        // only other party.
        let mut xsk = unsafe {
            Xsk {
                rx: ConsRing::new(rx_mem),
                tx: ProdRing::new(tx_mem),
                fill: ProdRing::new(fill_mem),
                comp: ConsRing::new(comp_mem),
                umem,
                mode,
                _maps: maps,
                fd,
            }
        };
        xsk.prime_fill();
        Ok(xsk)
    }

    /// Gives every frame to the kernel for receiving.
    fn prime_fill(&mut self) {
        let n = self.umem.frame_count();
        self.fill.free(n);
        let size = u64::from(self.umem.frame_size());
        let written = (0..n)
            .take_while(|&i| self.fill.write(i, u64::from(i) * size))
            .count();
        self.fill.submit(written as u32);
    }

    pub fn mode(&self) -> BoundMode {
        self.mode
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Asks the kernel to send what the TX ring holds. In copy mode this is what moves
    /// frames at all. Returns false when the kernel was busy (try again next batch).
    pub fn kick_tx(&self) -> bool {
        kick(&self.fd)
    }

    /// Kicks until the TX ring is empty, at most `max_kicks` times: in copy mode the kernel
    /// sends a bounded batch per `sendto()` (`TX_BATCH_SIZE`, 32, in net/xdp/xsk.c) and
    /// leaves the rest. Stops early when a kick moved nothing (the link is busy or down:
    /// the next turn tries again). Returns the kicks made.
    pub fn drain_tx(&mut self, max_kicks: u32) -> u32 {
        let mut pending = self.tx.pending();
        let mut kicks = 0;
        while pending > 0 && kicks < max_kicks {
            self.kick_tx();
            kicks += 1;
            let left = self.tx.pending();
            if left >= pending {
                break;
            }
            pending = left;
        }
        kicks
    }

    /// Wakes the kernel to refill from the fill ring when it asked for it.
    pub fn wake_fill(&self) {
        // SAFETY: a zero-length non-blocking recvfrom into no buffer only triggers the
        // driver's RX processing for this socket.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Waits up to `timeout_ms` for received frames.
    pub fn wait_rx(&self, timeout_ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; EINTR and timeouts are both fine to ignore here.
        unsafe {
            libc::poll(&mut pfd, 1, timeout_ms);
        }
    }

    /// The kernel's counters for this socket (a syscall: for the control thread).
    pub fn stats(&self) -> io::Result<XskStats> {
        stats_of(self.fd.as_raw_fd())
    }
}

/// A transmit-only socket on another (interface, queue) sharing an [`Xsk`]'s UMEM
/// (XDP_SHARED_UMEM): frames received on the first socket leave by this one without a
/// copy. It has fill and completion rings of its own (the kernel wants them for another
/// device); its completions go back to the first socket's fill ring.
pub struct XskTx {
    pub tx: ProdRing<libc::xdp_desc>,
    pub comp: ConsRing<u64>,
    // Declared after the rings so they are dropped after them.
    _maps: Vec<Mapping>,
    fd: OwnedFd,
}

impl XskTx {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// As [`Xsk::kick_tx`].
    pub fn kick_tx(&self) -> bool {
        kick(&self.fd)
    }
}

impl Xsk {
    /// Opens a transmit-only socket on (ifindex, queue) sharing this socket's UMEM. It
    /// inherits this socket's copy or zero-copy mode.
    pub fn open_shared_tx(
        &self,
        ifindex: u32,
        queue: u32,
        tx_size: u32,
    ) -> Result<XskTx, XskError> {
        let err = |what| XskError::setup(what, ifindex, queue);
        if !tx_size.is_power_of_two() {
            return Err(XskError::Config(
                "ring sizes and frame count must be powers of two",
            ));
        }
        let fd = new_socket().map_err(err("create the socket"))?;
        // A small fill ring: nothing is ever redirected to this socket.
        let (fill_size, comp_size) = (64u32, self.umem.frame_count());
        size_umem_rings(&fd, fill_size, comp_size).map_err(|(what, e)| err(what)(e))?;
        setsockopt(&fd, libc::XDP_TX_RING, &tx_size).map_err(err("size the TX ring"))?;
        let off = mmap_offsets(&fd).map_err(err("read the ring offsets"))?;
        let mut maps = Vec::with_capacity(3);
        let tx_mem = map_ring::<libc::xdp_desc>(
            &fd,
            &off.tx,
            tx_size,
            libc::XDP_PGOFF_TX_RING as u64,
            &mut maps,
        )
        .map_err(err("map the TX ring"))?;
        // The fill ring must exist for the kernel; nothing is ever received here.
        let (_fill_mem, comp_mem) = map_umem_rings(&fd, &off, fill_size, comp_size, &mut maps)
            .map_err(|(what, e)| err(what)(e))?;
        // The kernel refuses mode flags on a shared socket: it takes the first one's.
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_SHARED_UMEM,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: self.fd.as_raw_fd() as u32,
        };
        bind(&fd, &sa).map_err(err("bind (shared UMEM)"))?;
        // SAFETY: as in `open_mode`: the RingMems point into mappings kept in `maps`.
        Ok(unsafe {
            XskTx {
                tx: ProdRing::new(tx_mem),
                comp: ConsRing::new(comp_mem),
                _maps: maps,
                fd,
            }
        })
    }
}

/// A failed set-up step: what was being done, and the error.
type SetupStep = (&'static str, io::Error);

/// Binds `fd` to the interface's queue in `mode`, waking the kernel only when it asks.
fn bind_queue(fd: &OwnedFd, ifindex: u32, queue: u32, mode: BoundMode) -> io::Result<()> {
    let flags = libc::XDP_USE_NEED_WAKEUP
        | match mode {
            BoundMode::ZeroCopy => libc::XDP_ZEROCOPY,
            BoundMode::Copy => libc::XDP_COPY,
        };
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    bind(fd, &sa)
}

/// The socket's busy-polling options, when the configuration asks for them.
fn set_busy_poll(fd: &OwnedFd, cfg: &XskConfig) -> io::Result<()> {
    if cfg.busy_poll_usecs == 0 {
        return Ok(());
    }
    for (opt, val) in [
        (libc::SO_PREFER_BUSY_POLL, 1),
        (libc::SO_BUSY_POLL, cfg.busy_poll_usecs as libc::c_int),
        (
            libc::SO_BUSY_POLL_BUDGET,
            cfg.busy_poll_budget as libc::c_int,
        ),
    ] {
        setsockopt_level(fd, libc::SOL_SOCKET, opt, &val)?;
    }
    Ok(())
}

/// A fresh AF_XDP socket.
fn new_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Sizes a socket's fill and completion rings (every socket on its own device and queue
/// has them, shared UMEM or not).
fn size_umem_rings(fd: &OwnedFd, fill: u32, comp: u32) -> Result<(), SetupStep> {
    setsockopt(fd, libc::XDP_UMEM_FILL_RING, &fill).map_err(|e| ("size the fill ring", e))?;
    setsockopt(fd, libc::XDP_UMEM_COMPLETION_RING, &comp)
        .map_err(|e| ("size the completion ring", e))
}

/// Maps the fill and completion rings sized by `size_umem_rings`.
fn map_umem_rings(
    fd: &OwnedFd,
    off: &libc::xdp_mmap_offsets,
    fill: u32,
    comp: u32,
    maps: &mut Vec<Mapping>,
) -> Result<(RingMem<u64>, RingMem<u64>), SetupStep> {
    let f = map_ring::<u64>(fd, &off.fr, fill, libc::XDP_UMEM_PGOFF_FILL_RING, maps)
        .map_err(|e| ("map the fill ring", e))?;
    let c = map_ring::<u64>(
        fd,
        &off.cr,
        comp,
        libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        maps,
    )
    .map_err(|e| ("map the completion ring", e))?;
    Ok((f, c))
}

fn bind(fd: &OwnedFd, sa: &libc::sockaddr_xdp) -> io::Result<()> {
    // SAFETY: `sa` is a valid sockaddr_xdp of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (sa as *const libc::sockaddr_xdp).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn kick(fd: &OwnedFd) -> bool {
    // SAFETY: a zero-length sendto with no buffer and no address only triggers
    // transmission on our own socket.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    // EAGAIN/EBUSY/ENOBUFS: the kernel is still sending; ENETDOWN: link down. Either way
    // the descriptors stay queued and the next kick retries.
    rc >= 0
}

fn mmap_offsets(fd: &OwnedFd) -> io::Result<libc::xdp_mmap_offsets> {
    let mut off: libc::xdp_mmap_offsets = zeroed();
    let mut optlen = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: `off` is a writable buffer of `optlen` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&mut off as *mut libc::xdp_mmap_offsets).cast(),
            &mut optlen,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(off)
}

/// XDP_STATISTICS of any AF_XDP socket descriptor.
pub fn stats_of(fd: RawFd) -> io::Result<XskStats> {
    let mut s: libc::xdp_statistics = zeroed();
    let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
    // SAFETY: `s` is a writable buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&mut s as *mut libc::xdp_statistics).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(XskStats {
        rx_dropped: s.rx_dropped,
        rx_invalid_descs: s.rx_invalid_descs,
        tx_invalid_descs: s.tx_invalid_descs,
        rx_ring_full: s.rx_ring_full,
        rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
        tx_ring_empty_descs: s.tx_ring_empty_descs,
    })
}

fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for the kernel's plain-integer structs, for which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, val: &T) -> io::Result<()> {
    setsockopt_level(fd, libc::SOL_XDP, opt, val)
}

fn setsockopt_level<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: &T,
) -> io::Result<()> {
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

fn map_ring<T>(
    fd: &OwnedFd,
    off: &libc::xdp_ring_offset,
    size: u32,
    pgoff: u64,
    maps: &mut Vec<Mapping>,
) -> io::Result<RingMem<T>> {
    let len = off.desc as usize + size as usize * size_of::<T>();
    // SAFETY: maps the kernel's ring for this socket at its documented page offset; the
    // length covers the descriptors per the offsets the kernel reported.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            pgoff as libc::off_t,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base: *mut u8 = ptr.cast();
    maps.push(Mapping {
        ptr: NonNull::new(base).expect("mmap returned non-null"),
        len,
    });
    // SAFETY: the offsets are within the mapping (the kernel laid it out so).
    unsafe {
        Ok(RingMem {
            producer: base.add(off.producer as usize).cast(),
            consumer: base.add(off.consumer as usize).cast(),
            flags: base.add(off.flags as usize).cast(),
            descs: base.add(off.desc as usize).cast(),
            size,
        })
    }
}
