//! A script's process between fork and exec (`crate::script`): none of xvs's
//! capabilities may reach it (the packaged unit gives xvs ambient ones, which survive
//! execve), nor any of its descriptors (BPF maps, AF_XDP and raw sockets).

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;
/// `close_range(2)`'s flag: mark close-on-exec rather than close now.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Registers the child's set-up on `cmd`: ambient and inheritable capabilities cleared
/// (so execve grants none to a user other than root), every descriptor above stderr
/// close-on-exec.
pub fn harden(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure makes only async-signal-safe system calls (prctl, capget,
    // capset, close_range) on memory of its own stack; it allocates nothing and takes no
    // lock, as a pre_exec closure must.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let hdr = CapHeader {
                version: CAP_VERSION_3,
                pid: 0,
            };
            let mut data = [CapData::default(); 2];
            if libc::syscall(
                libc::SYS_capget,
                &hdr as *const CapHeader,
                data.as_mut_ptr(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            for d in &mut data {
                d.inheritable = 0;
            }
            if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Best effort: a kernel without close_range still has O_CLOEXEC on xvs's own.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
}

/// Sends `sig` to process group `pgid` (a script and what it started).
pub fn signal_group(pgid: i32, sig: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is
        // involved. The group is the script's own (`process_group(0)`).
        unsafe { libc::kill(-pgid, sig) };
    }
}
