//! Descriptors systemd passes at start (`LISTEN_FDS`, `LISTEN_FDNAMES`): those a
//! process of this unit left in its fd store before a restart.

use std::os::fd::{FromRawFd, OwnedFd};

/// The descriptor systemd passed under `name`, if any; every other one passed is
/// closed. The environment's LISTEN_* variables are cleared, so no child sees them.
pub fn take_named(name: &str) -> Option<OwnedFd> {
    // Checks LISTEN_PID: the variables are for this process, not inherited.
    let fds = sd_notify::listen_fds_with_names(true).ok()?;
    let mut found = None;
    for (raw, n) in fds {
        // SAFETY: systemd passed this descriptor to this process (LISTEN_PID is ours),
        // and nothing else here owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if n == name && found.is_none() {
            found = Some(fd);
        }
    }
    found
}
