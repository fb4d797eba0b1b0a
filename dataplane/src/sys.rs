//! Small syscall wrappers the worker needs outside the socket.

use std::io;

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bitmask; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`, bounds-checked by the libc macro port.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is valid for its size.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as in `pin_to_cpu`; sched_getaffinity fills `set`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; `set` is valid for its size.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc < 0 {
        return vec![0];
    }
    // SAFETY: CPU_ISSET reads one bit of an initialised set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Asks the CPU to bring the cache line at `p` closer; a hint only.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing architecturally, whatever the
    // address; SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `union bpf_attr` for the map element and batch commands (the kernel reads only the
/// fields its command uses; the rest must be zero).
#[repr(C)]
#[derive(Default)]
struct BpfMapAttr {
    /// elem: map_fd; batch: in_batch (unused: 0).
    a: u64,
    /// elem: key; batch: out_batch.
    b: u64,
    /// elem: value; batch: keys.
    c: u64,
    /// elem: flags; batch: values.
    d: u64,
    /// batch: count (u32), then map_fd (u32).
    e: u64,
    /// batch: elem_flags.
    f: u64,
    /// batch: flags.
    g: u64,
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

fn bpf(cmd: libc::c_long, attr: &mut BpfMapAttr) -> libc::c_long {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of the size passed; the
    // pointers inside it are the caller's live buffers of the sizes the map expects.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BpfMapAttr,
            std::mem::size_of::<BpfMapAttr>() as libc::c_uint,
        )
    }
}

/// Writes `keys[i] → values[i]` into the map `fd` in one syscall; returns how many the
/// kernel wrote (all of them, unless the map refused one).
pub fn bpf_map_update_batch<K, V>(fd: i32, keys: &[K], values: &[V]) -> usize {
    let n = keys.len().min(values.len());
    if n == 0 {
        return 0;
    }
    let mut attr = BpfMapAttr {
        c: keys.as_ptr() as u64,
        d: values.as_ptr() as u64,
        e: u64::from(n as u32) | (u64::from(fd as u32) << 32),
        ..BpfMapAttr::default()
    };
    let rc = bpf(BPF_MAP_UPDATE_BATCH, &mut attr);
    // The kernel writes back how many it processed, also on error.
    let done = (attr.e & 0xffff_ffff) as usize;
    if rc < 0 {
        done.min(n)
    } else {
        n
    }
}

/// Removes `key` from the map `fd`; false if it was not there (or the call failed).
pub fn bpf_map_delete<K>(fd: i32, key: &K) -> bool {
    let mut attr = BpfMapAttr {
        a: fd as u32 as u64,
        b: key as *const K as u64,
        ..BpfMapAttr::default()
    };
    bpf(BPF_MAP_DELETE_ELEM, &mut attr) == 0
}

/// Reads `key`'s value from the map `fd` into `value`; false if absent.
pub fn bpf_map_lookup<K, V>(fd: i32, key: &K, value: &mut V) -> bool {
    let mut attr = BpfMapAttr {
        a: fd as u32 as u64,
        b: key as *const K as u64,
        c: value as *mut V as u64,
        ..BpfMapAttr::default()
    };
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) == 0
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the clock `bpf_ktime_get_coarse_ns` reads.
pub fn monotonic_coarse_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
