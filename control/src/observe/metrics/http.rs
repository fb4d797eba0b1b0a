//! `/metrics` over HTTP: each scrape asks the control loop for a rendering (through a
//! channel) and answers in the format the scraper accepts. A client gets a bounded time
//! for its whole exchange, a bounded request head (`request.rs`), and one of a bounded
//! number of connections, of which one address holds at most `PER_ADDRESS`: slow, huge
//! or many clients cost the control loop nothing but the renderings they asked for, and
//! one client cannot lock the others out. A failing `accept` (out of descriptors) backs
//! off instead of spinning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

use super::request::{self, Head};
use super::text::to_openmetrics;

/// What a client asked the control loop to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// `/metrics`, in the Prometheus text format.
    Metrics,
    /// `/`: the status page (`observe::page`).
    Page,
    /// `/status.json`: its JSON twin.
    Json,
}

/// A request waiting for the control loop to render its view.
pub type Request = (View, oneshot::Sender<String>);

/// The status page's headers: nothing but its own inline style may load or run, and
/// no other site may frame it.
const PAGE_HEADERS: &str =
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n\
Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n";

/// Connections served at once; one more is answered 503 and closed.
pub const MAX_CLIENTS: usize = 64;
/// A client's whole exchange, request to last byte of the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one address holds at once: a Prometheus pair needs two.
pub const PER_ADDRESS: usize = 8;
/// 503 answers under way at once.
const MAX_REFUSING: usize = 4 * MAX_CLIENTS;
/// How long the listener rests after `accept` failed (EMFILE, ENFILE, ENOMEM).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connections each client address holds now.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; given back on drop.
struct Held {
    table: Arc<PerAddress>,
    addr: IpAddr,
}

/// The client an address counts as: IPv4 the address, IPv6 its /64 (one host has many).
fn client(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & !((1u128 << 64) - 1)).into()),
    }
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, addr: IpAddr) -> Option<Held> {
        let addr = client(addr);
        let mut m = table.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(addr).or_default();
        if *n >= PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(Held {
            table: Arc::clone(table),
            addr,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut m = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
    }
}

/// Serves `/metrics` on `listener`.
pub async fn serve(listener: TcpListener, ask: mpsc::Sender<Request>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    // Refusals being answered at once (each holds its descriptor a second at most): past
    // them, a connection is closed unanswered.
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let per_address = Arc::new(PerAddress::default());
    let mut accept_errors = 0u64;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                accept_errors += 1;
                if accept_errors % 100 == 1 {
                    warn!(
                        "metrics: accept: {e} ({accept_errors} so far); resting {ACCEPT_BACKOFF:?}"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (Some(held), Ok(permit)) = (
            PerAddress::take(&per_address, peer.ip()),
            Arc::clone(&slots).try_acquire_owned(),
        ) else {
            if let Ok(r) = Arc::clone(&refusing).try_acquire_owned() {
                tokio::spawn(async move {
                    busy(stream).await;
                    drop(r);
                });
            }
            continue;
        };
        let ask = ask.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, ask)).await {
                Ok(Err(e)) => debug!("metrics: {e}"),
                Err(_) => debug!("metrics: a client took longer than {CLIENT_TIMEOUT:?}"),
                Ok(Ok(())) => {}
            }
            drop((permit, held));
        });
    }
}

/// 503 to a client over its share (or over every slot), within a second. Its request
/// is read and dropped after the answer (at most 8 KiB): a close with unread bytes would
/// reset the connection and lose the answer.
async fn busy(mut stream: TcpStream) {
    let busy =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(busy).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        for _ in 0..8 {
            if stream.read(&mut sink).await? == 0 {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
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
    let view = match head {
        Head::Metrics { .. } => Some(View::Metrics),
        Head::Page { .. } => Some(View::Page),
        Head::Json { .. } => Some(View::Json),
        _ => None,
    };
    let rendered = match view {
        Some(v) => match render(&ask, v).await {
            Some(text) => text,
            // The control loop is gone (shutting down): nothing to answer with.
            None => {
                let gone = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                return s.write_all(gone).await;
            }
        },
        None => String::new(),
    };
    let (kind, extra, body) = match head {
        Head::Metrics { openmetrics, .. } => {
            let text = rendered;
            if openmetrics {
                (
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    "",
                    to_openmetrics(&text),
                )
            } else {
                ("text/plain; version=0.0.4; charset=utf-8", "", text)
            }
        }
        Head::Page { .. } => ("text/html; charset=utf-8", PAGE_HEADERS, rendered),
        Head::Json { .. } => ("application/json", PAGE_HEADERS, rendered),
        Head::OtherPath { .. } => (
            "text/plain; charset=utf-8",
            "",
            "try /, /status.json or /metrics\n".to_string(),
        ),
        ref h => ("text/plain; charset=utf-8", "", format!("{}\n", h.status())),
    };
    let reply = format!(
        "HTTP/1.1 {}\r\nContent-Type: {kind}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        head.status(),
        body.len()
    );
    s.write_all(reply.as_bytes()).await?;
    if head.head_only() {
        return Ok(());
    }
    s.write_all(body.as_bytes()).await
}

/// `view`, rendered by the control loop (`None` when it is gone).
async fn render(ask: &mpsc::Sender<Request>, view: View) -> Option<String> {
    let (tx, rx) = oneshot::channel();
    ask.send((view, tx)).await.ok()?;
    rx.await.ok()
}

/// Binds the metrics listener, logging rather than failing: metrics are not worth
/// refusing to balance for. An address in use is tried again for `patience` (a process
/// that handed over holds it until it has exited).
pub async fn bind(addr: &str, patience: std::time::Duration) -> Option<TcpListener> {
    let t0 = tokio::time::Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && t0.elapsed() < patience => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => {
                warn!("cannot serve /metrics on {addr}: {e}");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// A listener on loopback and a control loop that renders "x 1".
    async fn server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel::<Request>(4);
        tokio::spawn(serve(l, tx));
        tokio::spawn(async move {
            while let Some((_, r)) = rx.recv().await {
                let _ = r.send("x 1\n".into());
            }
        });
        addr
    }

    async fn exchange(from: &str, to: SocketAddr, req: &str) -> String {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut c = s.connect(to).await.unwrap();
        c.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client(a), client(b));
        assert_eq!(client(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client(v4), v4);
    }

    #[tokio::test]
    async fn head_answers_the_headers_alone() {
        let addr = server().await;
        let get = exchange("127.0.0.1", addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(get.ends_with("\r\n\r\nx 1\n"), "{get}");
        let head = exchange("127.0.0.1", addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("Content-Length: 4\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "no body: {head:?}");
    }

    /// One address holding its share of connections (idle ones, here) is told 503 for
    /// more; another address is served all the same.
    #[tokio::test]
    async fn one_address_cannot_hold_every_slot() {
        let addr = server().await;
        let mut idle = Vec::new();
        for _ in 0..PER_ADDRESS {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            idle.push(s.connect(addr).await.unwrap());
        }
        // Let the listener take them all before the next.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let more = exchange("127.0.0.1", addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(more.starts_with("HTTP/1.1 503"), "{more}");
        let other = exchange("127.0.0.2", addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 200 OK"), "{other}");
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let again = exchange("127.0.0.1", addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");
    }
}
