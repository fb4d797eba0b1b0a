//! The control socket: a Unix socket, mode 0600, for root and the user xvs runs as
//! (checked on the peer's credentials too), one command per connection
//! (`daemon/command.rs` lists them).
//! Its answer's first line is `ok` or `error`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

/// A command line from the socket, and where its answer goes.
pub struct Incoming {
    pub line: String,
    /// The peer's uid (root, or the user xvs runs as).
    pub uid: u32,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// The socket's path when the configuration gives none: one per network namespace (the
/// labs run several directors on one host, and `/run` is shared between namespaces).
pub fn default_path() -> PathBuf {
    PathBuf::from(format!("/run/xvs/xvs-net{}.sock", netns_id()))
}

/// The lock file of an interface this process serves (`sys::instance`): in this network
/// namespace's name space under /run/xvs, wherever the control socket is.
pub fn interface_lock_path(ifindex: u32) -> PathBuf {
    PathBuf::from(format!("/run/xvs/xvs-net{}-if{ifindex}.lock", netns_id()))
}

/// A file of state an xvs on interface `ifindex` leaves for the next one (its flow
/// tables, its real servers' ids: `daemon::flow_state`), beside the interface's lock.
pub fn interface_state_path(ifindex: u32, what: &str) -> PathBuf {
    PathBuf::from(format!("/run/xvs/xvs-net{}-if{ifindex}.{what}", netns_id()))
}

/// This process's network namespace, as the digits of its inode.
fn netns_id() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .map(|p| {
            p.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .unwrap_or_default()
}

pub fn bind(path: &PathBuf) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A socket left by a killed run.
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .context("chmod 0600 the control socket")?;
    Ok(l)
}

/// Connections served at once; one more is told so and closed.
pub const MAX_CLIENTS: usize = 64;
/// A command's line must arrive within this; the answer is not bounded (a `status` of a
/// large table takes the loop's time), but a client that stops reading is.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest command line.
pub const MAX_LINE: usize = 4096;

/// Accepts connections; each sends one line, gets one answer.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Incoming>) {
    use std::os::unix::fs::MetadataExt;
    // The socket's owner is the user xvs runs as (`xvs` under the packaged unit).
    let owner = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().and_then(|p| std::fs::metadata(p).ok()))
        .map_or(0, |m| m.uid());
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(async move {
                let busy = format!("error\nbusy: {MAX_CLIENTS} clients are connected; try again\n");
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), stream.write_all(busy.as_bytes()))
                        .await;
            });
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, tx, owner).await {
                debug!("control socket: {e}");
            }
            drop(permit);
        });
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::TimedOut)
}

async fn answer(mut s: UnixStream, tx: mpsc::Sender<Incoming>, owner: u32) -> std::io::Result<()> {
    // The file mode already keeps others out; the peer's credentials say it again.
    let peer = s.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
    if peer != 0 && peer != owner {
        warn!("control socket: refused a peer of uid {peer}");
        return send_answer(
            &mut s,
            "error\npermission denied: xvs's control socket is for root and the user xvs runs as\n",
        )
        .await;
    }
    let mut line = Vec::new();
    // A bounded read: a line longer than MAX_LINE is not a command.
    let mut r = BufReader::new(AsyncReadExt::take(&mut s, MAX_LINE as u64 + 1));
    tokio::time::timeout(READ_TIMEOUT, r.read_until(b'\n', &mut line))
        .await
        .map_err(|_| timed_out())??;
    let line = match std::str::from_utf8(&line) {
        Ok(l) if line.len() <= MAX_LINE => l.trim().to_string(),
        Ok(_) => {
            return send_answer(
                &mut s,
                &format!("error\na command is at most {MAX_LINE} bytes\n"),
            )
            .await
        }
        Err(_) => return send_answer(&mut s, "error\na command is UTF-8 text\n").await,
    };
    let (reply, rx) = oneshot::channel();
    let uid = peer;
    if tx.send(Incoming { line, reply, uid }).await.is_err() {
        return Ok(());
    }
    let out = match rx.await {
        Ok(Ok(text)) => format!("ok\n{text}"),
        Ok(Err(text)) => format!("error\n{text}"),
        Err(_) => "error\nxvs is shutting down\n".into(),
    };
    send_answer(&mut s, &out).await
}

/// Writes the answer, giving up on a client that does not read it.
async fn send_answer(s: &mut UnixStream, out: &str) -> std::io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, s.write_all(out.as_bytes()))
        .await
        .map_err(|_| timed_out())?
}

/// The CLI side: sends `line`, returns (success, text).
pub fn request(path: &PathBuf, line: &str) -> Result<(bool, String)> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {}: is xvs running (and are you root)?",
            path.display()
        )
    })?;
    // A hung daemon still accepts (the kernel's backlog): the answer is not waited for
    // forever.
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))?;
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (first, rest) = out.split_once('\n').unwrap_or((&out, ""));
    Ok((first == "ok", rest.to_string()))
}
