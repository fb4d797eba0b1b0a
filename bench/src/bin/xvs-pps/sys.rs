//! The system call the harness makes itself, outside the roles' libraries.

use anyhow::{bail, Result};

/// SCHED_FIFO for the calling thread: a paced generator that the director's processes,
/// on the same CPUs, do not hold up (it sleeps between bursts, so it holds up nothing).
pub fn set_realtime() -> Result<()> {
    let p = libc::sched_param { sched_priority: 10 };
    // SAFETY: sched_setscheduler on this thread (0) with a valid sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
    if rc != 0 {
        bail!(
            "SCHED_FIFO for the generator: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
