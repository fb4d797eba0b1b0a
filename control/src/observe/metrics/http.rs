//! `/metrics` over HTTP: each scrape asks the control loop for a rendering (through a
//! channel) and answers in the format the scraper accepts. Requests are bounded in size
//! and time.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::text::{to_openmetrics, wants_openmetrics};

/// A scrape waiting for the control loop to render.
pub type Request = oneshot::Sender<String>;

/// Serves `/metrics` on `listener`.
pub async fn serve(listener: TcpListener, ask: mpsc::Sender<Request>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ask = ask.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, ask).await {
                debug!("metrics: {e}");
            }
        });
    }
}

async fn answer(mut s: TcpStream, ask: mpsc::Sender<Request>) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let request = std::str::from_utf8(&buf[..n]).unwrap_or("");
    let line = request.lines().next().unwrap_or("");
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let open = wants_openmetrics(request);
    let (status, body) =
        if line.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
            let (tx, rx) = oneshot::channel();
            if ask.send(tx).await.is_err() {
                return Ok(());
            }
            let text = rx.await.unwrap_or_default();
            ("200 OK", if open { to_openmetrics(&text) } else { text })
        } else {
            ("404 Not Found", "try /metrics\n".to_string())
        };
    let kind = if open && status.starts_with("200") {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await
}

/// Binds the metrics listener, logging rather than failing: metrics are not worth
/// refusing to balance for.
pub async fn bind(addr: &str) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            warn!("cannot serve /metrics on {addr}: {e}");
            None
        }
    }
}
