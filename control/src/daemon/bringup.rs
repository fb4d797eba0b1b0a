//! Bring-up: the first snapshot, the steering program loaded and its maps filled, one
//! worker per queue, each registered in the XSK map once it owns its socket, and the
//! program attached — after the workers over a program a killed or handed-over xvs
//! left (which goes on forwarding until then), before them over nothing (so that VIP
//! traffic is dropped, not reset by the kernel, while they start).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tracing::{info, warn};
use xvs_bpf::Steer;
use xvs_config::Config;
use xvs_dataplane::fullnat::Share;
use xvs_dataplane::sync::SyncChannel;
use xvs_dataplane::worker::WorkerConfig;
use xvs_dataplane::{PipelineConfig, SharedSnapshot};

use super::drain::Drains;
use super::flow_state::FlowState;
use super::ifaces::Ifaces;
use super::lb::{quorums, Lb};
use super::overload::Overload;
use super::publish::{self, Local};
use super::resolve::{resolve, Macs};
use super::steer_maps::SteerMaps;
use super::takeover::{map_sizes, Prior, Takeover};
use super::translate;
use super::workers::{WorkerMaps, Workers};
use super::xdp_tx::TxWatch;
use crate::health::{initial_health, HealthMap};
use crate::ids::DestRegistry;
use crate::sys::random;

impl Lb {
    /// Brings the load balancer up, taking over what `prior` allows.
    pub fn start(path: &Path, cfg: &Config, ifaces: &Ifaces, prior: Prior) -> Result<Lb> {
        let locked = prior.locked;
        let mut takeover = Takeover::find(cfg, ifaces, prior);
        let mut state = FlowState::new(ifaces.external.ifindex, locked);
        let restored = state.registry(cfg);
        let (generation, fast_kept) = takeover.generation(state.ids_restored());
        if fast_kept {
            info!("the fast path's entries carry on at their generation ({generation})");
        }
        let First {
            mut registry,
            local,
            macs,
            health,
            drains,
            overload,
            shared,
        } = first_snapshot(cfg, ifaces, generation, restored)?;
        let (mut steer, maps) =
            load_steering(cfg, ifaces, generation, local, &mut registry, &mut takeover)?;
        // Before any worker reads the first snapshot: what its flows name is on file.
        state.record(cfg, &registry);
        let queues = queues(cfg, ifaces);
        // Over a program that is attached (a killed or handed-over xvs's), the workers
        // first: it goes on forwarding (and drops what has no socket) until the new
        // program replaces it and finds every worker ready. Over nothing, the program
        // first: VIP traffic then meets a program that drops it, never a kernel that
        // would reset it, while the workers start.
        let over_running = xvs_bpf::attached(ifaces.external.ifindex as i32);
        if !over_running {
            attach(&mut steer, cfg, ifaces)?;
        }
        let (workers, channels) = start_workers(
            cfg,
            ifaces,
            &steer,
            &shared,
            (queues, fast_kept),
            &mut state,
        )?;
        if over_running {
            attach(&mut steer, cfg, ifaces)?;
        }
        // Only once attached: a start that fails earlier leaves the other files alone.
        state.prune(queues);
        log_running(path, cfg, queues);
        let tx_watch = tx_watch(cfg, ifaces);
        Ok(Lb {
            tx_watch,
            sync: match &cfg.connection_sync {
                Some(cs) => Some(start_sync(cs, channels, workers.counters(), &shared)?),
                None => None,
            },
            steer,
            workers,
            shared,
            registry,
            local,
            macs,
            health,
            drains,
            overload,
            quorum: quorums(cfg, &HashMap::new()),
            generation,
            maps,
            queues,
            state,
        })
    }
}

/// The first snapshot, published, and what it was built from.
struct First {
    registry: DestRegistry,
    local: Local,
    macs: Macs,
    health: HealthMap,
    drains: Drains,
    overload: Overload,
    shared: SharedSnapshot,
}

/// `registry`: the real servers' ids so far (the last process's, when its flows are
/// recovered).
fn first_snapshot(
    cfg: &Config,
    ifaces: &Ifaces,
    generation: u64,
    mut registry: DestRegistry,
) -> Result<First> {
    let local = translate::local_side(cfg, ifaces)?;
    let macs = resolve(cfg, ifaces, &HashMap::new());
    let health = initial_health(cfg);
    let (drains, overload) = (Drains::default(), Overload::default());
    let snap = publish::build(
        generation,
        cfg,
        local,
        &macs,
        &health,
        publish::Quiet {
            drains: &drains,
            overload: &overload,
        },
        &mut registry,
    )?;
    let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snap));
    Ok(First {
        registry,
        local,
        macs,
        health,
        drains,
        overload,
        shared,
    })
}

/// The steering program, loaded, with its settings and maps written (not attached yet).
fn load_steering(
    cfg: &Config,
    ifaces: &Ifaces,
    generation: u64,
    local: Local,
    registry: &mut DestRegistry,
    takeover: &mut Takeover,
) -> Result<(Steer, SteerMaps)> {
    let iface = &ifaces.external;
    let (fast, nat) = map_sizes(cfg, ifaces);
    let (mut steer, taken) = match takeover.preloaded.take() {
        // Loaded before the handover, over the same maps.
        Some(p) => (p.steer, p.taken),
        None => Steer::load_taking(fast, nat, takeover.leftover.as_ref())
            .context("loading the steering program")?,
    };
    if taken > 0 {
        info!(
            "took over the connection state left on {} ({taken} maps: fast-path flows, NAT connections and clients, the workers' sockets)",
            iface.name
        );
    }
    steer.set_owner(takeover.owner)?;
    steer.set_fast_generation(publish::fast_generation(cfg, generation, local.xdp_tx))?;
    steer.set_nat_relay(publish::nat_relay(cfg, local.xdp_tx), local.partial_csums)?;
    steer.set_syn_guard(
        cfg.syn_guard == xvs_config::SynGuardMode::On,
        cfg.syn_guard == xvs_config::SynGuardMode::Auto,
    )?;
    let maps = SteerMaps::build(cfg, ifaces, registry)?;
    maps.write(&steer)?;
    Ok((steer, maps))
}

/// The number of workers to run: one per queue (and per queue of the internal
/// interface, when there is one).
fn queues(cfg: &Config, ifaces: &Ifaces) -> u32 {
    let iface = &ifaces.external;
    let queues = cfg.workers.unwrap_or(iface.rx_queues).min(iface.rx_queues);
    match &ifaces.internal {
        // Each worker's internal socket needs a queue of its own there.
        Some(int) if int.rx_queues < queues => {
            warn!(
                "{} has {} queue(s): running {} worker(s) instead of {queues}",
                int.name, int.rx_queues, int.rx_queues
            );
            int.rx_queues
        }
        _ => queues,
    }
}

/// Attaches the steering program to every interface (over what is attached there, in
/// one step).
fn attach(steer: &mut Steer, cfg: &Config, ifaces: &Ifaces) -> Result<()> {
    let mode = translate::attach_mode(cfg.xdp_mode);
    if let Some(int) = &ifaces.internal {
        // Services on the clients' side only; the internal side gets NAT replies, and
        // NAT requests the fast path forwards leave there.
        steer.set_external_ifindex(ifaces.external.ifindex)?;
        steer.set_internal_ifindex(int.ifindex)?;
    }
    for i in ifaces.all() {
        steer.set_local_mac(i.ifindex, i.mac)?;
        let got = steer.attach(i.ifindex as i32, mode)?;
        info!(
            "attached xvs_steer to {} (ifindex {}) in {} mode",
            i.name,
            i.ifindex,
            got.as_str()
        );
    }
    Ok(())
}

/// One worker per queue, each registered in the XSK map once it owns its socket, its
/// flow tables in `state`'s file for its queue when there is one; and with connection
/// sync, the queues each shares with the sync thread.
fn start_workers(
    cfg: &Config,
    ifaces: &Ifaces,
    steer: &Steer,
    shared: &SharedSnapshot,
    // How many, and whether the fast path's entries carry on (`Takeover::generation`).
    (queues, fast_kept): (u32, bool),
    state: &mut FlowState,
) -> Result<(Workers, Vec<Arc<SyncChannel>>)> {
    let cpus = cfg
        .cpus
        .clone()
        .unwrap_or_else(xvs_dataplane::sys::allowed_cpus);
    let xsk = translate::xsk_config(cfg);
    let mut workers = Workers::new();
    let mut channels = Vec::new();
    let pipeline = translate::pipeline(cfg, random::seed());
    for q in 0..queues {
        let wc = WorkerConfig {
            queue: q,
            cpu: cpus.get(q as usize % cpus.len().max(1)).copied(),
            pipeline: PipelineConfig {
                // FullNAT's ports: each worker hands out its own residue class.
                share: Share {
                    worker: q as u16,
                    workers: queues as u16,
                },
                ..pipeline.clone()
            },
            batch: cfg.af_xdp.batch,
            flow_file: state.open(cfg, q, queues, pipeline.hash_seed),
            fast_kept,
        };
        let maps = worker_maps(cfg, steer)?;
        let channel = cfg
            .connection_sync
            .as_ref()
            .map(|_| Arc::new(SyncChannel::default()));
        channels.extend(channel.clone());
        let fd = workers.start(ifaces, &wc, &xsk, shared, maps, channel)?;
        // Registered once the worker owns the socket: from here its queue's VIP
        // traffic goes to the worker.
        steer.register_xsk(q, fd)?;
    }
    Ok((workers, channels))
}

/// The steering program's maps a worker shares: the fast path's (when it is on) and the
/// NAT connections'.
fn worker_maps(cfg: &Config, steer: &Steer) -> Result<WorkerMaps> {
    Ok(WorkerMaps {
        fast: match cfg.fast_path {
            xvs_config::FastPath::Auto | xvs_config::FastPath::Xdp => Some(steer.fast_flows_fds()?),
            xvs_config::FastPath::Off => None,
        },
        nat_conns: steer.nat_conns_fds()?,
        fnat_conns: steer.fnat_conns_fds()?,
        syn_guard: steer.syn_guard_fd()?,
    })
}

fn log_running(path: &Path, cfg: &Config, queues: u32) {
    info!(
        "xvs running: {} virtual server(s), {} worker(s), fast path {}, config {}",
        cfg.virtual_servers.len(),
        queues,
        match cfg.fast_path {
            xvs_config::FastPath::Auto => "auto",
            xvs_config::FastPath::Xdp => "xdp",
            xvs_config::FastPath::Off => "off",
        },
        path.display()
    );
}

/// `fast_path: auto`'s watch over what XDP sends, its notes logged.
fn tx_watch(cfg: &Config, ifaces: &Ifaces) -> Option<TxWatch> {
    (cfg.fast_path == xvs_config::FastPath::Auto).then(|| {
        let (w, notes) = TxWatch::new(ifaces);
        for n in notes {
            info!("{n}");
        }
        w
    })
}

/// Connection sync's thread, fed by every worker's queues; its readiness is what a
/// preempting VRRP instance waits for.
fn start_sync(
    cs: &xvs_config::ConnectionSync,
    channels: Vec<Arc<SyncChannel>>,
    workers: &[Arc<xvs_dataplane::WorkerCounters>],
    shared: &SharedSnapshot,
) -> Result<super::lb::SyncLink> {
    let name = &cs.interface.value;
    let iface = crate::sys::iface::Iface::lookup(name)?.with_context(|| {
        format!(
            "connection_sync interface {name} does not exist (line {}): `ip link` lists them",
            cs.interface.line
        )
    })?;
    let own = crate::sys::netlink::addresses()?
        .into_iter()
        .find(|(i, a, p)| *i == iface.ifindex && *p < 32 && !a.is_loopback())
        .map(|(_, a, _)| a)
        .with_context(|| format!("connection_sync: {name} has no IPv4 address to send from"))?;
    let (ready, ready_rx) = tokio::sync::watch::channel(false);
    let thread = crate::sync::SyncThread::spawn(
        cs,
        iface.ifindex,
        own,
        crate::sync::Wiring {
            channels,
            workers: workers.to_vec(),
            snapshot: Arc::clone(shared),
            ready,
        },
    )?;
    Ok(super::lb::SyncLink {
        thread,
        ready: ready_rx,
        resync_timeout: std::time::Duration::from_millis(cs.resync_timeout_ms),
    })
}
