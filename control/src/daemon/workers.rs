//! The worker threads: one per RX queue, each owning its AF_XDP socket(s) and pipeline.
//! Dropping `Workers` stops and joins them.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::{error, info};
use xvs_dataplane::worker::{Worker, WorkerConfig};
use xvs_dataplane::xsk::{Xsk, XskConfig, XskError, XskStats};
use xvs_dataplane::{SharedSnapshot, WorkerCounters};

use super::ifaces::Ifaces;

/// The steering program's maps a worker writes (duplicated descriptors it owns), IPv4's
/// and IPv6's of each.
pub struct WorkerMaps {
    /// The fast path's, when it is on.
    pub fast: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    /// The known NAT connections'.
    pub nat_conns: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    /// FullNAT's reply entries.
    pub fnat_conns: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    /// The SYN guard's, one entry per queue.
    pub syn_guard: std::os::fd::OwnedFd,
}

pub struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<std::io::Result<()>>>,
    counters: Vec<Arc<WorkerCounters>>,
    /// Each worker's AF_XDP socket, for the kernel's counters (the worker owns it).
    fds: Vec<RawFd>,
}

impl Workers {
    pub fn new() -> Workers {
        Workers {
            stop: Arc::new(AtomicBool::new(false)),
            handles: Vec::new(),
            counters: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// Opens queue `wc.queue`'s socket (and, for two-arm NAT, its transmit-only twin on
    /// the internal interface, sharing the UMEM), starts its worker (writing fast-path
    /// entries through `fast`, when on), and returns the socket for the steering
    /// program's XSK map.
    /// Starts the worker of `wc.queue` (its socket bound, its thread running); returns
    /// the socket's descriptor for the XSK map.
    pub fn start(
        &mut self,
        ifaces: &Ifaces,
        wc: &WorkerConfig,
        xsk_cfg: &XskConfig,
        shared: &SharedSnapshot,
        maps: WorkerMaps,
        // Connection sync's queues for this worker, when it is on.
        sync: Option<Arc<xvs_dataplane::sync::SyncChannel>>,
    ) -> Result<RawFd> {
        let q = wc.queue;
        let xsk = open_xsk(ifaces.external.ifindex, q, xsk_cfg)?;
        info!(
            "queue {q}: AF_XDP socket bound in {} mode",
            xsk.mode().as_str()
        );
        let counters = Arc::new(WorkerCounters::new(xvs_dataplane::snapshot::MAX_DESTS));
        let fd = xsk.fd();
        let internal = match &ifaces.internal {
            Some(int) => Some(busy_retry(q, || {
                xsk.open_shared_tx(int.ifindex, q, xsk_cfg.tx_size)
            })?),
            None => None,
        };
        let mut worker = Worker::new(
            xsk,
            wc,
            Arc::clone(shared),
            Arc::clone(&self.stop),
            Arc::clone(&counters),
        );
        if let (Some(tx), Some(int)) = (internal, &ifaces.internal) {
            info!(
                "queue {q}: NAT requests leave by {} queue {q} (shared UMEM, no copy)",
                int.name
            );
            worker = worker.with_internal(tx);
        }
        if let Some((v4, v6)) = maps.fast {
            let map = xvs_dataplane::offload::FastMap::new(v4, v6)
                .context("opening the fast-path maps")?;
            worker = worker.with_fast_path(map);
        }
        let (v4, v6) = maps.nat_conns;
        let map = xvs_dataplane::nat_conns::NatConnMap::new(v4, v6)
            .context("opening the NAT connection maps")?;
        worker = worker.with_nat_conns(map);
        let (v4, v6) = maps.fnat_conns;
        let map = xvs_dataplane::fullnat::ReplyMap::new(v4, v6)
            .context("opening the FullNAT reply maps")?;
        worker = worker.with_fullnat_replies(map);
        let map = xvs_dataplane::syn_guard::GuardMap::new(maps.syn_guard, q)
            .context("opening the SYN guard's map")?;
        worker = worker.with_syn_guard(map);
        if let Some(ch) = sync {
            worker = worker.with_sync(ch);
        }
        self.handles.push(
            worker
                .spawn(q, wc.cpu)
                .context("starting a worker thread")?,
        );
        self.counters.push(counters);
        self.fds.push(fd);
        Ok(fd)
    }

    /// Each worker's counters, by queue.
    pub fn counters(&self) -> &[Arc<WorkerCounters>] {
        &self.counters
    }

    /// The kernel's XDP_STATISTICS of each worker's socket; None for a worker that has
    /// ended (its socket is closed, the descriptor number maybe reused).
    pub fn xsk_stats(&self) -> Vec<Option<XskStats>> {
        self.fds
            .iter()
            .zip(&self.handles)
            .map(|(fd, h)| {
                if h.is_finished() {
                    None
                } else {
                    xvs_dataplane::xsk::stats_of(*fd).ok()
                }
            })
            .collect()
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (q, h) in self.handles.drain(..).enumerate() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!("worker for queue {q} failed: {e}"),
                Err(_) => error!("worker for queue {q} panicked"),
            }
        }
    }
}

/// How long a start waits for a queue whose last socket is being released.
const BUSY_WAIT: Duration = Duration::from_secs(1);

/// Queue `q`'s socket. A handed-over or killed xvs's socket keeps its queue busy for a
/// little while after the process let go of it (the kernel releases it after the close):
/// a busy queue is tried again for `BUSY_WAIT`, then reported.
fn open_xsk(ifindex: u32, q: u32, cfg: &XskConfig) -> Result<Xsk> {
    busy_retry(q, || Xsk::open(ifindex, q, cfg))
}

/// `open` until it does not find queue `q` busy, for `BUSY_WAIT` at most.
fn busy_retry<T>(q: u32, mut open: impl FnMut() -> Result<T, XskError>) -> Result<T> {
    let t0 = Instant::now();
    let mut waited = false;
    loop {
        match open() {
            Err(e) if e.is_busy() && t0.elapsed() < BUSY_WAIT => {
                waited = true;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.is_busy() => {
                return Err(e).with_context(|| format!("queue {q} stayed busy for {BUSY_WAIT:?}: another AF_XDP program holds it (stop it; `ss --xdp` lists AF_XDP sockets)"))
            }
            Ok(x) if waited => {
                info!("queue {q}: its last socket was released after {:?}", t0.elapsed());
                return Ok(x);
            }
            r => return Ok(r?),
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}
