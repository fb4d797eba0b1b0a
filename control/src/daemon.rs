//! `xvs run`: attach, start the workers, keep the snapshot current, and undo everything
//! on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};
use xvs_bpf::abi::SvcKey;
use xvs_bpf::{AttachMode, Steer};
use xvs_config::{Config, XdpMode};
use xvs_dataplane::flow::{TcpState, Timeouts};
use xvs_dataplane::pipeline::NodestPolicy;
use xvs_dataplane::snapshot::MAX_DESTS;
use xvs_dataplane::worker::{Worker, WorkerConfig};
use xvs_dataplane::xsk::{Xsk, XskConfig};
use xvs_dataplane::{PipelineConfig, SharedSnapshot, WorkerCounters};

use crate::iface::Iface;
use crate::publish::{self, DestRegistry};
use crate::{netlink, report};

/// How often unresolved real servers are retried, and resolved ones re-read.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);
const RESOLVE_REFRESH: Duration = Duration::from_secs(30);

/// The worker threads; dropping this stops and joins them.
struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<std::io::Result<()>>>,
    counters: Vec<Arc<WorkerCounters>>,
}

impl Workers {
    fn stop(&mut self) {
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

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        // Not secret, only unpredictable enough to spread flows: time will do.
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    }
    u64::from_ne_bytes(b)
}

pub async fn run(path: &Path, cfg: Config, iface: Iface) -> Result<()> {
    let mut registry = DestRegistry::default();
    let mut macs = resolve(&cfg, &iface, &HashMap::new());
    let mut generation = 1;
    let snap = publish::build(generation, &cfg, iface.mac, &macs, &mut registry)?;
    let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snap));

    let mut steer = Steer::load().context("loading the steering program")?;
    let keys: Vec<SvcKey> = cfg
        .virtual_servers
        .iter()
        .flat_map(|vs| {
            vs.ports
                .iter()
                .map(|&p| SvcKey::new(vs.address, p, vs.protocol.number()))
        })
        .collect();
    steer.set_services(&keys)?;
    let mode = match cfg.xdp_mode {
        XdpMode::Auto => AttachMode::Auto,
        XdpMode::Native => AttachMode::Native,
        XdpMode::Generic => AttachMode::Generic,
    };
    let got = steer.attach(iface.ifindex as i32, mode)?;
    info!(
        "attached xvs_steer to {} (ifindex {}) in {} mode",
        iface.name,
        iface.ifindex,
        got.as_str()
    );

    let queues = cfg.workers.unwrap_or(iface.rx_queues).min(iface.rx_queues);
    let cpus = xvs_dataplane::sys::allowed_cpus();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Workers {
        stop: Arc::clone(&stop),
        handles: Vec::new(),
        counters: Vec::new(),
    };
    let hash_seed = seed();
    for q in 0..queues {
        let xsk = Xsk::open(iface.ifindex, q, &XskConfig::default())?;
        info!(
            "queue {q}: AF_XDP socket bound in {} mode",
            xsk.mode().as_str()
        );
        let counters = Arc::new(WorkerCounters::new(MAX_DESTS));
        let wc = WorkerConfig {
            queue: q,
            cpu: cpus.get(q as usize % cpus.len().max(1)).copied(),
            pipeline: PipelineConfig {
                flow_capacity: cfg.flow_table_size,
                hash_seed,
                timeouts: timeouts(&cfg.timeouts),
                nodest: match cfg.expire_nodest_conn {
                    xvs_config::NodestPolicy::Reschedule => NodestPolicy::Reschedule,
                    xvs_config::NodestPolicy::Expire => NodestPolicy::Expire,
                    xvs_config::NodestPolicy::Drop => NodestPolicy::Drop,
                },
            },
        };
        let fd = xsk.fd();
        let worker = Worker::new(
            xsk,
            &wc,
            Arc::clone(&shared),
            Arc::clone(&stop),
            Arc::clone(&counters),
        );
        workers.handles.push(
            worker
                .spawn(q, wc.cpu)
                .context("starting a worker thread")?,
        );
        workers.counters.push(counters);
        // Registered after the worker owns the socket: from here its queue's VIP traffic
        // goes to the worker instead of the kernel.
        steer.register_xsk(q, fd)?;
    }
    info!(
        "xvs running: {} virtual server(s), {} worker(s), config {}",
        cfg.virtual_servers.len(),
        queues,
        path.display()
    );

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut next_resolve = if publish::unresolved(&cfg, &macs).is_empty() {
        RESOLVE_REFRESH
    } else {
        RESOLVE_RETRY
    };
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => {
                warn!("SIGHUP: live reload is not implemented yet; the running configuration is unchanged");
            }
            _ = tokio::time::sleep(next_resolve) => {
                let fresh = resolve(&cfg, &iface, &macs);
                if fresh != macs {
                    macs = fresh;
                    generation += 1;
                    match publish::build(generation, &cfg, iface.mac, &macs, &mut registry) {
                        Ok(s) => {
                            shared.store(Arc::new(s));
                            info!("published snapshot generation {generation} (neighbours changed)");
                        }
                        Err(e) => error!("{e:#}"),
                    }
                }
                next_resolve = if publish::unresolved(&cfg, &macs).is_empty() { RESOLVE_REFRESH } else { RESOLVE_RETRY };
            }
        }
    }

    // Give the kernel its traffic back first, then stop the workers.
    steer.detach();
    for q in 0..queues {
        steer.unregister_xsk(q);
    }
    workers.stop();
    let xdp = steer.counters().ok();
    print!(
        "{}",
        report::render(&cfg, &mut registry, &workers.counters, xdp.as_ref())
    );
    info!("detached from {}; bye", iface.name);
    Ok(())
}

/// The configuration's timeouts in the dataplane's per-state form.
fn timeouts(t: &xvs_config::Timeouts) -> Timeouts {
    let mut out = Timeouts {
        udp: t.udp,
        ..Timeouts::default()
    };
    for (state, secs) in [
        (TcpState::Established, t.tcp),
        (TcpState::FinWait, t.tcpfin),
        (TcpState::SynSent, t.syn_sent),
        (TcpState::SynRecv, t.syn_recv),
        (TcpState::TimeWait, t.time_wait),
        (TcpState::Close, t.close),
        (TcpState::CloseWait, t.close_wait),
        (TcpState::LastAck, t.last_ack),
        (TcpState::Listen, t.listen),
        (TcpState::SynAck, t.synack),
    ] {
        out.set_tcp(state, secs);
    }
    out
}

/// Reads the neighbour table; nudges and logs real servers still unresolved. `known` is
/// kept for an address whose entry disappeared only for a moment (netlink failed).
fn resolve(
    cfg: &Config,
    iface: &Iface,
    known: &HashMap<Ipv4Addr, [u8; 6]>,
) -> HashMap<Ipv4Addr, [u8; 6]> {
    let macs = match netlink::neighbours(iface.ifindex) {
        Ok(m) => m,
        Err(e) => {
            warn!(
                "reading the neighbour table of {} failed: {e}; keeping the last one",
                iface.name
            );
            return known.clone();
        }
    };
    let wanted: HashMap<Ipv4Addr, [u8; 6]> = cfg
        .virtual_servers
        .iter()
        .flat_map(|vs| vs.real_servers.iter())
        .filter_map(|rs| macs.get(&rs.address).map(|m| (rs.address, *m)))
        .collect();
    for addr in publish::unresolved(cfg, &wanted) {
        if known.contains_key(&addr) {
            warn!("real server {addr} lost its neighbour entry on {}: not scheduled until it answers ARP", iface.name);
        } else {
            info!(
                "real server {addr}: no MAC on {} yet; not scheduled, resolving",
                iface.name
            );
        }
        netlink::nudge(addr);
    }
    wanted
}
