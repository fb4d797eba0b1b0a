//! The `xvs-sync` thread: the sockets around `Engine`. One socket receives on the
//! configured port (bound to the interface, in the multicast group unless peers are
//! listed); one sends from the interface's address, so that the receivers know who
//! speaks. A turn waits at most `TURN` for a datagram, then reads whatever else is
//! queued, then lets the engine drain the workers' queues and run its timers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tracing::{error, info, warn};
use xvs_config::ConnectionSync;
use xvs_dataplane::sync::SyncChannel;
use xvs_dataplane::{SharedSnapshot, WorkerCounters};

use super::engine::{Engine, Outgoing, Settings};
use super::stats::SyncStats;

/// The longest a turn waits for a datagram: the latency of a change on its way out.
const TURN: Duration = Duration::from_millis(2);
/// Datagrams read per turn at most, so the queues are drained between them.
const READS_PER_TURN: usize = 512;
/// Room for a resync's burst in the kernel's receive queue.
const RECV_BUFFER: usize = 8 << 20;

pub struct SyncThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub stats: Arc<SyncStats>,
}

/// What the thread works with: the workers' queues and counters, the snapshot.
pub struct Wiring {
    pub channels: Vec<Arc<SyncChannel>>,
    pub workers: Vec<Arc<WorkerCounters>>,
    pub snapshot: SharedSnapshot,
    /// Told whenever `Engine::ready` changes (VRRP's failback waits for true).
    pub ready: watch::Sender<bool>,
}

impl SyncThread {
    /// Opens the sockets (errors say what to fix) and starts the thread.
    pub fn spawn(
        cfg: &ConnectionSync,
        ifindex: u32,
        own: Ipv4Addr,
        w: Wiring,
    ) -> Result<SyncThread> {
        let iface = &cfg.interface.value;
        let multicast = cfg.peers.is_empty();
        let rx = receiver(cfg, ifindex, multicast)?;
        let tx = sender(own, multicast)?;
        let settings = settings(cfg, own);
        let stats = Arc::new(SyncStats::default());
        let engine = Engine::new(
            settings,
            w.channels,
            w.workers,
            w.snapshot,
            Arc::clone(&stats),
            Instant::now(),
        );
        info!(
            "connection sync on {iface} from {own}, port {}, {}",
            cfg.port,
            if multicast {
                format!("multicast {}", cfg.group)
            } else {
                format!("peers {:?}", cfg.peers)
            }
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let ready = w.ready;
        let resolver = spawn_resolver()?;
        let handle = std::thread::Builder::new()
            .name("xvs-sync".into())
            .spawn(move || run(engine, rx, tx, stop2, ready, resolver))
            .context("starting the sync thread")?;
        Ok(SyncThread {
            stop,
            handle: Some(handle),
            stats,
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                error!("the sync thread panicked");
            }
        }
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The receiving socket: the configured port on the interface, in the group unless
/// peers are listed; a turn's first read waits at most `TURN`.
fn receiver(cfg: &ConnectionSync, ifindex: u32, multicast: bool) -> Result<Socket> {
    let iface = &cfg.interface.value;
    let rx = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    rx.set_reuse_address(true)?;
    rx.bind_device(Some(iface.as_bytes()))
        .with_context(|| format!("connection_sync: binding to {iface} (needs CAP_NET_RAW)"))?;
    rx.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port).into())
        .with_context(|| format!("connection_sync: UDP port {} is taken", cfg.port))?;
    if multicast {
        rx.join_multicast_v4_n(
            &cfg.group,
            &socket2::InterfaceIndexOrAddress::Index(ifindex),
        )
        .with_context(|| format!("connection_sync: joining {} on {iface}", cfg.group))?;
    }
    let _ = rx.set_recv_buffer_size(RECV_BUFFER);
    rx.set_read_timeout(Some(TURN))?;
    Ok(rx)
}

/// The sending socket, from `own`: the receivers know who speaks.
fn sender(own: Ipv4Addr, multicast: bool) -> Result<Socket> {
    let tx = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    tx.bind(&SocketAddrV4::new(own, 0).into())
        .with_context(|| format!("connection_sync: sending from {own}"))?;
    if multicast {
        tx.set_multicast_if_v4(&own)?;
        tx.set_multicast_ttl_v4(1)?;
        tx.set_multicast_loop_v4(false)?;
    }
    let _ = tx.set_send_buffer_size(RECV_BUFFER);
    Ok(tx)
}

/// The engine's settings from the configuration; this process's start is its boot.
fn settings(cfg: &ConnectionSync, own: Ipv4Addr) -> Settings {
    let boot = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    Settings {
        key: cfg.key.as_bytes().to_vec(),
        own,
        port: cfg.port,
        peers: cfg
            .peers
            .iter()
            .filter_map(|p| match p {
                std::net::IpAddr::V4(a) => Some(*a),
                std::net::IpAddr::V6(_) => None,
            })
            .collect(),
        group: cfg.group,
        resync_timeout: Duration::from_millis(cfg.resync_timeout_ms),
        resync_rate: cfg.resync_rate,
        boot,
    }
}

/// NAT clients waiting for their next hop to be resolved: a resync of a million NAT
/// entries brings tens of thousands at once, and the netlink calls must not stall the
/// sync socket's reads (its receive buffer would overflow and the resync lose entries).
const RESOLVE_QUEUE: usize = 4096;

/// The thread that resolves NAT clients' next hops, fed by a bounded queue; a client
/// the queue has no room for is handed back to the engine, which asks again later.
fn spawn_resolver() -> Result<std::sync::mpsc::SyncSender<std::net::IpAddr>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(RESOLVE_QUEUE);
    std::thread::Builder::new()
        .name("xvs-sync-nbr".into())
        .spawn(move || {
            for client in rx {
                resolve_next_hop(client);
            }
        })
        .context("starting the sync thread's resolver")?;
    Ok(tx)
}

/// Has the kernel resolve the next hop towards a NAT client (the client itself, or its
/// router), so that this director's steering program can send the client's replies
/// the moment it takes over. A few netlink calls, per client and minute at most.
fn resolve_next_hop(client: std::net::IpAddr) {
    use crate::sys::netlink;
    match netlink::route_get(client) {
        Ok(r) => {
            let hop = r.gateway.unwrap_or(client);
            if let Err(e) = netlink::resolve_neighbour(r.oif, hop) {
                tracing::debug!("sync: resolving {hop} (next hop to {client}): {e}");
            }
        }
        Err(e) => tracing::debug!("sync: no route to NAT client {client}: {e}"),
    }
}

fn run(
    mut engine: Engine,
    rx: Socket,
    tx: Socket,
    stop: Arc<AtomicBool>,
    ready: watch::Sender<bool>,
    resolver: std::sync::mpsc::SyncSender<std::net::IpAddr>,
) {
    let rx: std::net::UdpSocket = rx.into();
    let tx: std::net::UdpSocket = tx.into();
    let mut buf = vec![0u8; 65536];
    let mut out: Vec<Outgoing> = Vec::new();
    let mut send_errors = 0u64;
    let mut was_ready = None;
    while !stop.load(Ordering::Relaxed) {
        receive(&rx, &mut buf, &mut engine, &mut out);
        turn(&mut engine, &mut out);
        for client in engine.take_resolve() {
            if resolver.try_send(client).is_err() {
                engine.resolve_failed(client);
            }
        }
        send_all(&tx, &mut out, &mut send_errors);
        if was_ready != Some(engine.ready()) {
            was_ready = Some(engine.ready());
            let _ = ready.send(engine.ready());
        }
    }
}

/// Hands the engine the datagrams queued: the first waited for (at most `TURN`), then
/// whatever else is there, `READS_PER_TURN` at most.
fn receive(rx: &std::net::UdpSocket, buf: &mut [u8], engine: &mut Engine, out: &mut Vec<Outgoing>) {
    for i in 0..READS_PER_TURN {
        if i == 1 && rx.set_nonblocking(true).is_err() {
            break;
        }
        match rx.recv_from(buf) {
            Ok((n, SocketAddr::V4(src))) => engine.on_datagram(Instant::now(), src, &buf[..n], out),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => {
                warn!("sync: receiving: {e}");
                break;
            }
        }
    }
    let _ = rx.set_nonblocking(false);
}

/// The engine's turn, on the system's clock.
fn turn(engine: &mut Engine, out: &mut Vec<Outgoing>) {
    // The system's wall clock each turn: messages carry it, and NTP may step it.
    let now = Instant::now();
    if let Ok(d) = SystemTime::now().duration_since(UNIX_EPOCH) {
        engine.set_clock(now, d.as_millis() as u64);
    }
    engine.on_turn(now, out);
}

/// Sends what the engine said to; the errors counted, and some logged.
fn send_all(tx: &std::net::UdpSocket, out: &mut Vec<Outgoing>, send_errors: &mut u64) {
    for o in out.drain(..) {
        if let Err(e) = tx.send_to(&o.data, o.to) {
            *send_errors += 1;
            // The first of a run, then one in a thousand: a peer that is down
            // (ECONNREFUSED, EHOSTUNREACH) must not flood the log.
            if *send_errors % 1000 == 1 {
                warn!(
                    "sync: sending to {}: {e} ({send_errors} errors so far)",
                    o.to
                );
            }
        }
    }
}
