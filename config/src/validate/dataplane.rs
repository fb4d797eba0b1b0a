//! The packet path's settings: the workers and their CPUs, the fast path's and the flow
//! table's sizes, the AF_XDP rings and the timeouts.

use super::checker::Checker;
use crate::model::*;
use crate::raw::*;
use crate::spanned::Spanned;

/// The checked packet path's settings, for `Config`.
pub(super) struct Dataplane {
    pub workers: Option<u32>,
    pub fast_path_flows: u32,
    pub cpus: Option<Vec<usize>>,
    pub af_xdp: AfXdp,
    pub flow_table_size: usize,
    pub timeouts: Timeouts,
}

pub(super) fn check(ck: &mut Checker, raw: &RawConfig) -> Dataplane {
    Dataplane {
        workers: raw.workers.as_ref().map(|w| {
            ck.range(
                w,
                "workers",
                1,
                256,
                "one worker serves one RX queue; omit the key to use every queue",
            ) as u32
        }),
        fast_path_flows: raw.fast_path_flows.as_ref().map_or(1 << 20, |v| {
            ck.range(
                v,
                "fast_path_flows",
                1024,
                1 << 26,
                "flows the XDP fast path holds; about 100 bytes of kernel memory each",
            ) as u32
        }),
        cpus: raw.cpus.as_ref().map(|list| cpus(ck, list, &raw.interface)),
        af_xdp: raw
            .af_xdp
            .as_ref()
            .map_or_else(AfXdp::default, |a| af_xdp(ck, a)),
        flow_table_size: raw
            .flow_table_size
            .as_ref()
            .map_or(DEFAULT_FLOW_TABLE_SIZE, |s| {
                ck.range(
                    s,
                    "flow_table_size",
                    1024,
                    1 << 28,
                    "flows tracked per worker; 32 bytes each",
                ) as usize
            }),
        timeouts: raw
            .timeouts
            .as_ref()
            .map_or_else(Timeouts::default, |t| timeouts(ck, t)),
    }
}

/// `cpus`: the CPUs the workers are pinned to. `interface` stands for the position of an
/// empty list.
fn cpus(ck: &mut Checker, list: &[Spanned<i64>], interface: &Spanned<String>) -> Vec<usize> {
    if list.is_empty() {
        // An empty list pins nothing: say so rather than run unpinned silently.
        ck.error(
            interface,
            "cpus is empty".into(),
            "list the CPUs the workers run on (`cpus: [0, 1]`), or omit the key",
        );
    }
    list.iter()
        .map(|c| {
            ck.range(
                c,
                "cpu",
                0,
                4095,
                "a CPU number, as in /sys/devices/system/cpu",
            ) as usize
        })
        .collect::<Vec<usize>>()
}

/// `af_xdp`: the UMEM's frames and the rings (powers of two, no ring longer than the
/// frames), busy polling and the batch.
fn af_xdp(ck: &mut Checker, a: &RawAfXdp) -> AfXdp {
    let mut af_xdp = AfXdp::default();
    if let Some(v) = &a.frames {
        af_xdp.frames = pow2(ck, v, "af_xdp frames", 64, 65536);
    }
    for (field, slot, what) in [
        (&a.rx_ring, &mut af_xdp.rx_ring, "af_xdp rx_ring"),
        (&a.tx_ring, &mut af_xdp.tx_ring, "af_xdp tx_ring"),
    ] {
        if let Some(v) = field {
            *slot = pow2(ck, v, what, 64, 16384);
        }
    }
    if let Some(v) = &a.busy_poll {
        af_xdp.busy_poll = ck.range(
            v,
            "af_xdp busy_poll",
            0,
            1000,
            "microseconds; 0 turns busy polling off",
        ) as u32;
    }
    if let Some(v) = &a.batch {
        af_xdp.batch = ck.range(v, "af_xdp batch", 1, 64, "frames a worker takes per batch") as u32;
    }
    if let Some(v) = &a.busy_poll_budget {
        af_xdp.busy_poll_budget = ck.range(
            v,
            "af_xdp busy_poll_budget",
            1,
            1024,
            "packets per busy poll",
        ) as u32;
    }
    rings_fit(ck, a, &af_xdp);
    af_xdp
}

/// A ring's or the UMEM's size: within `lo..=hi`, and a power of two.
fn pow2(ck: &mut Checker, v: &Spanned<i64>, what: &str, lo: i64, hi: i64) -> u32 {
    let n = ck.range(v, what, lo, hi, "a power of two") as u32;
    if !n.is_power_of_two() {
        ck.error(
            v,
            format!("{what} {n} is not a power of two"),
            "the kernel's rings take powers of two: 1024, 2048, 4096…",
        );
    }
    n
}

/// Each ring given is no longer than the UMEM's frames.
fn rings_fit(ck: &mut Checker, a: &RawAfXdp, af_xdp: &AfXdp) {
    for (field, n, what) in [
        (&a.rx_ring, af_xdp.rx_ring, "rx_ring"),
        (&a.tx_ring, af_xdp.tx_ring, "tx_ring"),
    ] {
        if let (Some(v), true) = (field, n > af_xdp.frames) {
            ck.error(
                v,
                format!("af_xdp {what} {n} is larger than frames {}", af_xdp.frames),
                "a ring cannot hold more descriptors than the UMEM has frames",
            );
        }
    }
}

/// `timeouts`: seconds, up to a week each.
fn timeouts(ck: &mut Checker, t: &RawTimeouts) -> Timeouts {
    let hint = "seconds; tcp, tcpfin and udp are `ipvsadm --set`'s three values";
    let mut tm = Timeouts::default();
    for (field, slot) in [
        (&t.tcp, &mut tm.tcp),
        (&t.tcpfin, &mut tm.tcpfin),
        (&t.udp, &mut tm.udp),
        (&t.syn_sent, &mut tm.syn_sent),
        (&t.syn_recv, &mut tm.syn_recv),
        (&t.time_wait, &mut tm.time_wait),
        (&t.close, &mut tm.close),
        (&t.close_wait, &mut tm.close_wait),
        (&t.last_ack, &mut tm.last_ack),
        (&t.listen, &mut tm.listen),
        (&t.synack, &mut tm.synack),
    ] {
        if let Some(v) = field {
            *slot = ck.range(v, "timeout", 1, 86400 * 7, hint) as u32;
        }
    }
    tm
}
