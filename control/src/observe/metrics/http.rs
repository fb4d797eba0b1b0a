//! `/metrics` over HTTP: each scrape asks the control loop for a rendering (through a
//! channel) and answers in the format the scraper accepts. A client gets a bounded time
//! for its whole exchange, a bounded request head (`request.rs`), and one of a bounded
//! number of connections: slow, huge or many clients cost the control loop nothing but
//! the renderings they asked for.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

use super::request::{self, Head};
use super::text::to_openmetrics;

/// A scrape waiting for the control loop to render.
pub type Request = oneshot::Sender<String>;

/// Connections served at once; one more is answered 503 and closed.
pub const MAX_CLIENTS: usize = 64;
/// A client's whole exchange, request to last byte of the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/metrics` on `listener`.
pub async fn serve(listener: TcpListener, ask: mpsc::Sender<Request>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(async move {
                let busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(busy)).await;
            });
            continue;
        };
        let ask = ask.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, ask)).await {
                Ok(Err(e)) => debug!("metrics: {e}"),
                Err(_) => debug!("metrics: a client took longer than {CLIENT_TIMEOUT:?}"),
                Ok(Ok(())) => {}
            }
            drop(permit);
        });
    }
}

/// Reads until the request head is whole (or cannot be one), then answers it.
async fn read_head(s: &mut TcpStream) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Malformed);
        }
        // At most MAX_HEAD + one chunk: parse says TooLarge past MAX_HEAD.
        buf.extend_from_slice(&chunk[..n]);
        match request::parse(&buf) {
            Head::Incomplete => continue,
            head => return Ok(head),
        }
    }
}

async fn answer(mut s: TcpStream, ask: mpsc::Sender<Request>) -> std::io::Result<()> {
    let head = read_head(&mut s).await?;
    let (open, body) = match head {
        Head::Metrics { openmetrics } => {
            let (tx, rx) = oneshot::channel();
            if ask.send(tx).await.is_err() {
                return Ok(());
            }
            let text = rx.await.unwrap_or_default();
            (
                openmetrics,
                if openmetrics {
                    to_openmetrics(&text)
                } else {
                    text
                },
            )
        }
        Head::OtherPath => (false, "try /metrics\n".to_string()),
        ref h => (false, format!("{}\n", h.status())),
    };
    let kind = if open {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        head.status(),
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
