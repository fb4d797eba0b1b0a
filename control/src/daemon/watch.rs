//! The optional file watch (`watch_config: true`): a reload whenever the file's content
//! changes. inotify watches the file's directory, so a write in place, an editor's rename
//! over the file and a symlink swap (a Kubernetes ConfigMap) are all seen; events are
//! debounced (an editor writes in steps) and the content compared, so a touch, or a save
//! of the same text, reloads nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use crate::sys::inotify::DirWatch;

/// Quiet time after the last event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Starts watching `path`; each message on the receiver is a changed content.
pub fn spawn(path: &Path) -> Result<mpsc::Receiver<()>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watch = DirWatch::new(&dir)?;
    let (tx, rx) = mpsc::channel(1);
    let file = path.to_path_buf();
    let mut last = std::fs::read(&file).ok();
    std::thread::Builder::new()
        .name("xvs-watch".into())
        .spawn(move || loop {
            if !watch.wait(None) {
                return;
            }
            // Let the writer finish: read on only after a quiet spell.
            while watch.wait(Some(DEBOUNCE)) {}
            let now = std::fs::read(&file).ok();
            if now.is_some() && now != last {
                last = now;
                if tx.blocking_send(()).is_err() {
                    return;
                }
            }
        })
        .context("starting the watch thread")?;
    Ok(rx)
}
