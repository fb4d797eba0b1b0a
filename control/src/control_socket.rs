//! The control socket: a Unix socket, mode 0600, root only (checked on the peer's
//! credentials too), one command per connection (`daemon/command.rs` lists them).
//! Its answer's first line is `ok` or `error`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// A command line from the socket, and where its answer goes.
pub struct Incoming {
    pub line: String,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// The socket's path when the configuration gives none: one per network namespace (the
/// labs run several directors on one host, and `/run` is shared between namespaces).
pub fn default_path() -> PathBuf {
    let id: String = std::fs::read_link("/proc/self/ns/net")
        .map(|p| {
            p.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .unwrap_or_default();
    PathBuf::from(format!("/run/xvs/xvs-net{id}.sock"))
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

/// Accepts connections; each sends one line, gets one answer.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Incoming>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, tx).await {
                debug!("control socket: {e}");
            }
        });
    }
}

async fn answer(mut s: UnixStream, tx: mpsc::Sender<Incoming>) -> std::io::Result<()> {
    // The file mode already keeps others out; the peer's credentials say it again.
    if s.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX) != 0 {
        warn!("control socket: refused a non-root peer");
        return s
            .write_all(b"error\npermission denied: xvs's control socket is for root\n")
            .await;
    }
    let mut line = String::new();
    // A bounded read: a line longer than 4 KiB is not a command.
    let mut r = BufReader::new(AsyncReadExt::take(&mut s, 4096));
    tokio::time::timeout(std::time::Duration::from_secs(5), r.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let (reply, rx) = oneshot::channel();
    if tx
        .send(Incoming {
            line: line.trim().to_string(),
            reply,
        })
        .await
        .is_err()
    {
        return Ok(());
    }
    let out = match rx.await {
        Ok(Ok(text)) => format!("ok\n{text}"),
        Ok(Err(text)) => format!("error\n{text}"),
        Err(_) => "error\nxvs is shutting down\n".into(),
    };
    s.write_all(out.as_bytes()).await
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
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (first, rest) = out.split_once('\n').unwrap_or((&out, ""));
    Ok((first == "ok", rest.to_string()))
}
