//! One xvs per interface and per control socket: a lock file for each (under /run/xvs, and
//! beside the socket), held (`flock`) for the life of the process and released by the
//! kernel however it ends, `kill -9` included. A second `xvs run` that finds one held
//! refuses and names the pid that holds it, before it touches the interface or the
//! socket. A lock file that cannot be made at all (an unprivileged run with no /run/xvs
//! of its own) is warned about and done without: it guards against a second instance,
//! not against this one.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The locks this process holds; dropping it releases them.
#[derive(Debug)]
pub struct InstanceLock {
    _files: Vec<File>,
    /// Every lock wanted was taken: no other xvs can be running on these.
    complete: bool,
}

impl InstanceLock {
    /// Whether every lock was taken (none was done without).
    pub fn complete(&self) -> bool {
        self.complete
    }
}

/// Takes every lock of `wanted` ((path, what it guards, for the message)), or none.
pub fn acquire(wanted: &[(PathBuf, String)]) -> Result<InstanceLock> {
    let mut files = Vec::with_capacity(wanted.len());
    for (path, what) in wanted {
        match open(path) {
            Ok(f) => files.push(lock(f, path, what)?),
            Err(e) => tracing::warn!(
                "cannot make the lock file {} ({e:#}): a second xvs on {what} would not be refused",
                path.display()
            ),
        }
    }
    let complete = files.len() == wanted.len();
    Ok(InstanceLock {
        _files: files,
        complete,
    })
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

fn lock(mut f: File, path: &Path, what: &str) -> Result<File> {
    // SAFETY: flock(2) on a descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            bail!(
                "{what} is already served by xvs (pid {}); stop it first (`systemctl stop xvs`, or SIGTERM to that pid) — nothing was changed",
                pid.trim()
            );
        }
        return Err(err).with_context(|| format!("locking {}", path.display()));
    }
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "{}", std::process::id())?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("xvs-lock-{}", std::process::id()));
        let path = dir.join("eth0.lock");
        let want = [(path.clone(), String::from("interface eth0"))];
        let held = acquire(&want).unwrap();
        // flock locks belong to the open file: a second open in this process conflicts
        // as another process's would.
        let e = acquire(&want).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "interface eth0 is already served by xvs (pid {})",
                std::process::id()
            )),
            "{e}"
        );
        drop(held);
        let again = acquire(&want).unwrap();
        drop(again);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_symlink_in_place_of_the_lock_file_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("xvs-lock-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "keep").unwrap();
        let path = dir.join("eth0.lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        // Not opened (warned about), so nothing is written through the link.
        let held = acquire(&[(path, String::from("eth0"))]).unwrap();
        drop(held);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
