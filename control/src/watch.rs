//! The optional file watch (`watch_config: true`): a reload whenever the file's content
//! changes. inotify watches the file's directory, so a write in place, an editor's rename
//! over the file and a symlink swap (a Kubernetes ConfigMap) are all seen; events are
//! debounced (an editor writes in steps) and the content compared, so a touch, or a save
//! of the same text, reloads nothing.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc;
use tracing::warn;

/// Quiet time after the last event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Starts watching `path`; each message on the receiver is a changed content.
pub fn spawn(path: &Path) -> Result<mpsc::Receiver<()>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // SAFETY: inotify_init1 takes flags only; the fd it returns is owned below.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("inotify_init1");
    }
    // SAFETY: fd is a fresh, open descriptor nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let cdir = CString::new(dir.as_os_str().as_bytes()).context("directory name")?;
    let mask = libc::IN_CLOSE_WRITE
        | libc::IN_MOVED_TO
        | libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_ATTRIB;
    // SAFETY: fd is a valid inotify descriptor and cdir a NUL-terminated path.
    if unsafe { libc::inotify_add_watch(raw(&fd), cdir.as_ptr(), mask) } < 0 {
        bail!(
            "watching {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    let (tx, rx) = mpsc::channel(1);
    let file = path.to_path_buf();
    let mut last = std::fs::read(&file).ok();
    std::thread::Builder::new()
        .name("xvs-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                if !wait_event(&fd, &mut buf, None) {
                    return;
                }
                // Let the writer finish: read on only after a quiet spell.
                while wait_event(&fd, &mut buf, Some(DEBOUNCE)) {}
                let now = std::fs::read(&file).ok();
                if now.is_some() && now != last {
                    last = now;
                    if tx.blocking_send(()).is_err() {
                        return;
                    }
                }
            }
        })
        .context("starting the watch thread")?;
    Ok(rx)
}

fn raw(fd: &std::os::fd::OwnedFd) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

/// Waits for events (at most `timeout`) and consumes them; false when none came in time,
/// or the descriptor failed (logged; the watch then ends).
fn wait_event(fd: &std::os::fd::OwnedFd, buf: &mut [u8], timeout: Option<Duration>) -> bool {
    let mut pfd = libc::pollfd {
        fd: raw(fd),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| t.as_millis() as i32);
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
    let r = unsafe { libc::read(raw(fd), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        warn!(
            "config watch stopped: read: {}",
            std::io::Error::last_os_error()
        );
        return false;
    }
    true
}
