//! inotify over one directory, as a blocking, safe handle: the file watch's kernel side.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tracing::warn;

/// Events that mean a file in the directory may have changed: written and closed,
/// renamed in, created, deleted, or its metadata (a symlink swap) changed.
const MASK: u32 =
    libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE | libc::IN_DELETE | libc::IN_ATTRIB;

pub struct DirWatch {
    fd: OwnedFd,
    buf: [u8; 4096],
}

impl DirWatch {
    /// Watches `dir` for changes to any file in it.
    pub fn new(dir: &Path) -> Result<DirWatch> {
        // SAFETY: inotify_init1 takes flags only; the fd it returns is owned below.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: raw is a fresh, open descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let cdir = CString::new(dir.as_os_str().as_bytes()).context("directory name")?;
        // SAFETY: fd is a valid inotify descriptor and cdir a NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cdir.as_ptr(), MASK) } < 0 {
            bail!(
                "watching {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(DirWatch { fd, buf: [0; 4096] })
    }

    /// Waits for events (at most `timeout`; None: forever) and consumes them; false when
    /// none came in time, or the descriptor failed (logged; the caller then stops).
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: pfd is one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return true;
            }
            warn!("config watch stopped: poll: {e}");
            return false;
        }
        // SAFETY: buf is writable for its whole length; the kernel writes whole events.
        let r = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
            )
        };
        if r < 0 {
            warn!(
                "config watch stopped: read: {}",
                std::io::Error::last_os_error()
            );
            return false;
        }
        true
    }
}
