//! Real-time scheduling for the calling thread (the VRRP thread), as keepalived's
//! `vrrp_rt_priority` and `vrrp_rlimit_rttime` do for its VRRP process.

use std::io;
use std::time::Duration;

/// CPU time a real-time thread may use without blocking before the kernel sends the
/// process SIGXCPU. The VRRP thread blocks between adverts after a few microseconds of
/// work; one that spins this long is a bug that would starve a CPU, and a daemon stopped
/// (and restarted by its supervisor) is the better outcome.
pub const RTTIME_LIMIT: Duration = Duration::from_secs(1);

/// Puts the calling thread under `SCHED_FIFO` at `priority` (1 to 99). Threads and
/// processes it starts later (notify scripts, a runtime's helpers) begin at normal
/// scheduling (`SCHED_RESET_ON_FORK`). Fails without CAP_SYS_NICE (EPERM).
pub fn realtime(priority: u8) -> io::Result<()> {
    limit_rttime()?;
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param that outlives
    // the call, which only reads it.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets RLIMIT_RTTIME's soft limit to `RTTIME_LIMIT` when none is set; one already set
/// (by the admin, or a unit's `LimitRTTIME=`) is kept.
fn limit_rttime() -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur != libc::RLIM_INFINITY {
        return Ok(());
    }
    let us = RTTIME_LIMIT.as_micros() as libc::rlim_t;
    lim.rlim_cur = us.min(lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit the call only reads; lowering a soft limit needs
    // no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (without the reset-on-fork flag) and
    /// priority.
    fn current() -> (i32, i32) {
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is valid and writable.
        unsafe { libc::sched_getparam(0, &mut param) };
        // SAFETY: no pointer; pid 0 is the calling thread.
        let policy = unsafe { libc::sched_getscheduler(0) };
        (policy & !libc::SCHED_RESET_ON_FORK, param.sched_priority)
    }

    /// On a thread of its own (the policy is the thread's); as root the switch takes, and
    /// a thread that thread starts is back at normal scheduling.
    #[test]
    fn a_realtime_thread_and_its_children() {
        std::thread::spawn(|| {
            match realtime(5) {
                Ok(()) => {}
                // Without CAP_SYS_NICE: the kernel's refusal, named.
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                    return;
                }
            }
            assert_eq!(current(), (libc::SCHED_FIFO, 5));
            let child = std::thread::spawn(current).join().unwrap();
            assert_eq!(child, (libc::SCHED_OTHER, 0), "reset on fork");
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `lim` is valid and writable.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) }, 0);
            assert_ne!(lim.rlim_cur, libc::RLIM_INFINITY, "a runaway is bounded");
        })
        .join()
        .unwrap();
    }
}
