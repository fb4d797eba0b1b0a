//! The dataplane families: per real server and virtual server, per worker, the flow
//! tables, the AF_XDP sockets' kernel counters, drops by reason, the steering program's
//! outcomes. Read through `AllWorkers` at scrape time.

use xvs_bpf::abi::{NatOut, XdpCounters};
use xvs_config::Config;
use xvs_dataplane::counters::DestCounters;
use xvs_dataplane::xsk::XskStats;
use xvs_dataplane::{DropReason, WorkerCounters};

use super::text::{Family, Out, Read};
use crate::ids::{DestKey, DestRegistry};
use crate::observe::counters::AllWorkers;

/// One sample of `name` per real server of every virtual server, valued by its id.
fn per_real_server(
    o: &mut Out,
    cfg: &Config,
    registry: &mut DestRegistry,
    name: &str,
    value: impl Fn(usize) -> u64,
) {
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let id = registry.id(DestKey::of(vs, rs)) as usize;
            let rsl = crate::ids::endpoint(rs.address, rs.port);
            o.sample(
                name,
                &[("virtual_server", &vs.name), ("real_server", &rsl)],
                value(id),
            );
        }
    }
}

/// What the XDP fast path adds to a gauge: nothing.
const NO_FAST: Read<NatOut> = |_| 0;

/// The families per real server, each with what the XDP fast path adds to the workers'
/// count (nothing for gauges).
const PER_REAL_SERVER: [(Family<DestCounters>, Read<NatOut>); 5] = [
    (
        (
            "xvs_real_server_connections_total",
            "counter",
            "Connections scheduled to the real server.",
            |d| d.conns.get(),
        ),
        NO_FAST,
    ),
    (
        (
            "xvs_real_server_active_connections",
            "gauge",
            "ESTABLISHED connections (IPVS ActiveConn).",
            |d| d.active.get(),
        ),
        NO_FAST,
    ),
    (
        (
            "xvs_real_server_inactive_connections",
            "gauge",
            "Other connections (IPVS InActConn).",
            |d| d.inactive.get(),
        ),
        NO_FAST,
    ),
    (
        (
            "xvs_real_server_in_packets_total",
            "counter",
            "Packets forwarded to the real server.",
            |d| d.packets.get(),
        ),
        |n| n.packets,
    ),
    (
        (
            "xvs_real_server_in_bytes_total",
            "counter",
            "Bytes forwarded to the real server.",
            |d| d.bytes.get(),
        ),
        |n| n.bytes,
    ),
];

/// Server to client: only NAT replies cross the director (DR and TUN read 0).
const OUTBOUND: [(&str, &str, Read<NatOut>); 2] = [
    (
        "xvs_real_server_out_packets_total",
        "Reply packets from the real server sent on to clients (NAT only).",
        |n| n.packets,
    ),
    (
        "xvs_real_server_out_bytes_total",
        "Reply bytes from the real server sent on to clients (NAT only).",
        |n| n.bytes,
    ),
];

/// Connections, gauges and traffic per real server; schedule failures per virtual
/// server; NAT replies out per real server.
pub fn servers(
    o: &mut Out,
    cfg: &Config,
    registry: &mut DestRegistry,
    w: AllWorkers<'_>,
    out: &[NatOut],
    fast_in: &[NatOut],
) {
    for ((name, kind, help, f), fast) in PER_REAL_SERVER {
        o.family(name, kind, help);
        per_real_server(o, cfg, registry, name, |id| {
            w.dest(id, f) + fast_in.get(id).map_or(0, fast)
        });
    }
    schedule_failures(o, cfg, registry, w);
    for (name, help, f) in OUTBOUND {
        o.family(name, "counter", help);
        per_real_server(o, cfg, registry, name, |id| out.get(id).map_or(0, f));
    }
}

fn schedule_failures(o: &mut Out, cfg: &Config, registry: &mut DestRegistry, w: AllWorkers<'_>) {
    o.family(
        "xvs_virtual_server_schedule_failures_total",
        "counter",
        "New connections the scheduler could place nowhere (no real server available).",
    );
    for vs in &cfg.virtual_servers {
        let id = registry.service_id(crate::ids::service_key(vs)) as usize;
        o.sample(
            "xvs_virtual_server_schedule_failures_total",
            &[("virtual_server", &vs.name)],
            w.service(id, |s| s.no_dest.get()),
        );
    }
}

/// The counter families per worker.
const PER_WORKER: [(&str, &str, Read<WorkerCounters>); 22] = [
    ("xvs_worker_rx_packets_total", "Frames received.", |c| {
        c.rx_packets.get()
    }),
    ("xvs_worker_tx_packets_total", "Frames sent.", |c| {
        c.tx_packets.get()
    }),
    ("xvs_worker_rx_batches_total", "RX batches.", |c| {
        c.rx_batches.get()
    }),
    (
        "xvs_worker_tx_kicks_total",
        "sendto() kicks of the TX ring.",
        |c| c.tx_kicks.get(),
    ),
    ("xvs_flows_created_total", "Flows created.", |c| {
        c.flows_created.get()
    }),
    ("xvs_flows_expired_total", "Flows that timed out.", |c| {
        c.flows_expired.get()
    }),
    (
        "xvs_flows_evicted_total",
        "Live flows evicted from a full bucket.",
        |c| c.flows_evicted.get(),
    ),
    (
        "xvs_flows_adopted_total",
        "Connections a worker took from the fast path's map after a restart over a killed xvs (their packets were forwarded in XDP meanwhile).",
        |c| c.flows_adopted.get(),
    ),
    (
        "xvs_flows_recovered_total",
        "Connections and persistence templates a worker took up at start from the flow-state file a killed xvs left.",
        |c| c.flows_recovered.get(),
    ),
    (
        "xvs_flows_recovery_cleared_total",
        "Entries of the flow-state file a killed xvs left that a worker cleared at start: expired, or naming a service or real server this process does not have.",
        |c| c.flows_recovery_cleared.get(),
    ),
    (
        "xvs_flows_rescheduled_total",
        "Connections moved to another real server: theirs left (expire_nodest_conn).",
        |c| c.flows_rescheduled.get(),
    ),
    (
        "xvs_worker_tx_ring_full_total",
        "Frames dropped because the TX ring had no room.",
        |c| c.drops(DropReason::TxRingFull),
    ),
    (
        "xvs_icmp_frag_needed_total",
        "ICMP fragmentation-needed, or ICMPv6 Packet Too Big, sent (TUN).",
        |c| c.icmp_frag_needed.get(),
    ),
    (
        "xvs_syn_guard_engaged_total",
        "Times a worker, overloaded by new flows (its RX ring backed up, or live flows evicted), turned its queue's SYN guard on (syn_guard: auto): new connections' SYNs then pass only when retransmitted.",
        |c| c.syn_guard_engaged.get(),
    ),
    (
        "xvs_fast_path_failed_total",
        "Fast-path entries the kernel refused or that did not fit a batch (the flow stays on the worker).",
        |c| c.fast_path_failed.get(),
    ),
    (
        "xvs_nat_conns_failed_total",
        "NAT connections the steering program could not be told of (their replies go to the kernel untranslated).",
        |c| c.nat_conns_failed.get(),
    ),
    (
        "xvs_nat_replies_relayed_total",
        "NAT replies the steering program translated and the worker sent (XDP_TX does not deliver on this link, or fast_path is off).",
        |c| c.nat_relayed.get(),
    ),
    (
        "xvs_checksums_completed_total",
        "TCP and UDP checksums a virtual link (a veth) handed over partial, completed before forwarding.",
        |c| c.checksums_completed.get(),
    ),
    (
        "xvs_fullnat_toa_added_total",
        "FullNAT segments (a SYN, the handshake's ACK) given the client's address option.",
        |c| c.fullnat_toa_added.get(),
    ),
    (
        "xvs_fullnat_toa_no_room_total",
        "FullNAT opening segments without room for the client's address option (40 bytes of options in use, or IPv6 extension headers).",
        |c| c.fullnat_toa_no_room.get(),
    ),
    (
        "xvs_fullnat_toa_scrubbed_total",
        "FullNAT segments that came with an address option of their own (a client's: turned into NOPs).",
        |c| c.fullnat_toa_scrubbed.get(),
    ),
    (
        "xvs_fullnat_replies_failed_total",
        "FullNAT reply entries the steering program could not be told of or rid of (their replies go to the kernel untranslated).",
        |c| c.fullnat_replies_failed.get(),
    ),
];

/// Per FullNAT local address: the pairs in use now (every worker's), and how many its
/// pool has. New connections find none free when the two meet (`fullnat_no_port`).
pub fn fullnat_locals(o: &mut Out, cfg: &Config, registry: &DestRegistry, w: AllWorkers<'_>) {
    let pools: Vec<&xvs_config::LocalAddresses> = cfg
        .virtual_servers
        .iter()
        .filter_map(|v| v.local.as_ref())
        .collect();
    if pools.is_empty() {
        return;
    }
    o.family(
        "xvs_fullnat_local_ports_in_use",
        "gauge",
        "FullNAT local address and port pairs held by connections now, per local address.",
    );
    o.family(
        "xvs_fullnat_local_ports",
        "gauge",
        "FullNAT pairs a local address's pool has (its ports).",
    );
    for (id, addr) in registry.local_ids().iter().enumerate() {
        let Some(pool) = pools.iter().find(|p| p.addresses.contains(addr)) else {
            continue;
        };
        let a = addr.to_string();
        let in_use = w.sum(|c| c.local_ports.get(id).map_or(0, |g| g.get()));
        o.sample(
            "xvs_fullnat_local_ports_in_use",
            &[("local_address", &a)],
            in_use,
        );
        let ports = u64::from(pool.ports.1 - pool.ports.0) + 1;
        o.sample("xvs_fullnat_local_ports", &[("local_address", &a)], ports);
    }
}

/// Per worker: frames, batches, kicks, flows, TX ring full, ICMP sent; the flow tables'
/// fill; drops by reason.
pub fn workers(o: &mut Out, cfg: &Config, w: AllWorkers<'_>) {
    for (name, help, f) in PER_WORKER {
        o.family(name, "counter", help);
        for (q, c) in w.each() {
            o.sample(name, &[("worker", &q.to_string())], f(c));
        }
    }
    flow_tables(o, cfg, w);
    drops(o, w);
}

/// Each worker's flow table: what it holds, and what it can.
fn flow_tables(o: &mut Out, cfg: &Config, w: AllWorkers<'_>) {
    o.family(
        "xvs_flow_table_connections",
        "gauge",
        "Connections the worker's flow table holds now (persistence templates aside).",
    );
    for (q, c) in w.each() {
        o.sample(
            "xvs_flow_table_connections",
            &[("worker", &q.to_string())],
            AllWorkers::connections(c),
        );
    }
    o.family(
        "xvs_flow_table_capacity",
        "gauge",
        "Flows each worker's table can hold (flow_table_size).",
    );
    for (q, _) in w.each() {
        o.sample(
            "xvs_flow_table_capacity",
            &[("worker", &q.to_string())],
            cfg.flow_table_size as u64,
        );
    }
    syn_guard_active(o, cfg, w);
}

/// Whether each worker's queue has its SYN guard on now (always with `syn_guard: on`).
fn syn_guard_active(o: &mut Out, cfg: &Config, w: AllWorkers<'_>) {
    o.family(
        "xvs_syn_guard_active",
        "gauge",
        "1 while the worker's queue sheds new connections' first SYNs (syn_guard: on, or auto while the worker is overloaded by new flows), else 0.",
    );
    let now = xvs_dataplane::sys::monotonic_coarse_ns();
    for (q, c) in w.each() {
        let on = match cfg.syn_guard {
            xvs_config::SynGuardMode::On => true,
            xvs_config::SynGuardMode::Auto => c.syn_guard_until.get() > now,
            xvs_config::SynGuardMode::Off => false,
        };
        o.sample(
            "xvs_syn_guard_active",
            &[("worker", &q.to_string())],
            u64::from(on),
        );
    }
}

fn drops(o: &mut Out, w: AllWorkers<'_>) {
    o.family(
        "xvs_drops_total",
        "counter",
        "Frames dropped by a worker, by reason.",
    );
    for r in DropReason::ALL {
        o.sample("xvs_drops_total", &[("reason", r.label())], w.drops(*r));
    }
}

/// The AF_XDP sockets' counter families.
const XSK: [(&str, &str, Read<XskStats>); 6] = [
    (
        "xvs_xsk_rx_dropped_total",
        "Frames the kernel dropped on the way to the socket (no room in the UMEM).",
        |s| s.rx_dropped,
    ),
    (
        "xvs_xsk_rx_ring_full_total",
        "Frames dropped because the RX ring was full (the worker fell behind).",
        |s| s.rx_ring_full,
    ),
    (
        "xvs_xsk_fill_ring_empty_total",
        "Times the kernel found the fill ring empty (no frame to receive into).",
        |s| s.rx_fill_ring_empty_descs,
    ),
    (
        "xvs_xsk_tx_ring_empty_total",
        "Times the kernel found the TX ring empty when kicked.",
        |s| s.tx_ring_empty_descs,
    ),
    (
        "xvs_xsk_rx_invalid_descs_total",
        "Invalid descriptors on the RX side.",
        |s| s.rx_invalid_descs,
    ),
    (
        "xvs_xsk_tx_invalid_descs_total",
        "Invalid descriptors xvs put on the TX ring.",
        |s| s.tx_invalid_descs,
    ),
];

/// The kernel's counters of each worker's AF_XDP socket (XDP_STATISTICS), read at scrape
/// time with getsockopt: frames the kernel could not hand to xvs, and why.
pub fn xsk(o: &mut Out, xsk: &[Option<XskStats>]) {
    for (name, help, f) in XSK {
        o.family(name, "counter", help);
        for (q, s) in xsk.iter().enumerate() {
            if let Some(s) = s {
                o.sample(name, &[("worker", &q.to_string())], f(s));
            }
        }
    }
}

/// What the steering program did with each packet it saw.
pub fn xdp(o: &mut Out, x: &XdpCounters) {
    o.family(
        "xvs_xdp_packets_total",
        "counter",
        "Packets seen by the steering program, by outcome.",
    );
    for (label, n) in x.iter() {
        o.sample("xvs_xdp_packets_total", &[("outcome", label)], n);
    }
}

/// Whether established flows leave by XDP (`fast_path: auto` falls back when the driver
/// counts XDP's frames undelivered), and what each watched driver counted.
pub fn fast_path(o: &mut Out, v: &crate::daemon::xdp_tx::View) {
    o.family(
        "xvs_fast_path_active",
        "gauge",
        "1 while established DR, TUN and NAT flows leave by the XDP fast path; 0 when it is off or `auto` fell back (xvs status --dataplane says why).",
    );
    o.sample("xvs_fast_path_active", &[], u64::from(v.active));
    o.family(
        "xvs_nat_replies_by_workers",
        "gauge",
        "1 when NAT replies, translated in XDP, are sent by the workers rather than with XDP_TX.",
    );
    o.sample("xvs_nat_replies_by_workers", &[], u64::from(v.nat_relay));
    o.family(
        "xvs_xdp_tx_undelivered_frames_total",
        "counter",
        "Frames XDP sent out of the interface that its driver counted undelivered (a veth's xdp_tx_errors and xdp_xmit_errors), since start; watched under fast_path auto.",
    );
    for (i, n) in &v.undelivered {
        o.sample(
            "xvs_xdp_tx_undelivered_frames_total",
            &[("interface", i)],
            *n,
        );
    }
}
