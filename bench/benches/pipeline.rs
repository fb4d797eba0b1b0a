//! Per-packet cost of the dataplane without I/O. Quote results as ratios to `baseline`
//! (a bare MAC rewrite, what the simplest forwarder does) measured in the same run.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use xvs_bench::{frame, frame6, pipeline, snapshot, snapshot6, syn_frame6, SCHEDULERS};
use xvs_dataplane::flow::{Flow, FlowKey, FlowTable};
use xvs_dataplane::packet::Packet;
use xvs_dataplane::pipeline::Prefetched;
use xvs_dataplane::rewrite;
use xvs_dataplane::sched::Maglev;
use xvs_dataplane::snapshot::{SchedulerKind, Snapshot};
use xvs_dataplane::Verdict;

const BATCH: usize = 64;
const FLOWS: u32 = 1 << 20;

fn baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut frames: Vec<Vec<u8>> = (0..BATCH as u32).map(frame).collect();
    g.bench_function("mac_rewrite_batch64", |b| {
        b.iter(|| {
            for f in frames.iter_mut() {
                rewrite::dr::rewrite(black_box(f), [2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 2]);
            }
        })
    });
    g.finish();
}

/// One batch as the worker processes it: every frame's bucket prefetched, then each
/// frame decided.
fn prefetched_batch(p: &mut xvs_dataplane::Pipeline, snap: &Snapshot, batch: &mut [Vec<u8>]) {
    let mut pre = [Prefetched::default(); BATCH];
    for (fr, pr) in batch.iter().zip(pre.iter_mut()) {
        *pr = p.prefetch(fr);
    }
    for (fr, pr) in batch.iter_mut().zip(pre) {
        black_box(p.process_packet(snap, 2, &mut Packet::whole(fr), pr));
    }
}

fn established(c: &mut Criterion) {
    let snap = snapshot(SchedulerKind::Wrr, 64);
    let mut p = pipeline(2 * FLOWS as usize);
    p.prepare(&snap);
    // Fill the table with 1M flows, each opened by its SYN.
    for i in 0..FLOWS {
        assert_eq!(
            p.process(&snap, 1, &mut xvs_bench::syn_frame(i)),
            Verdict::Tx
        );
    }
    let mut g = c.benchmark_group("dr_established");
    g.throughput(Throughput::Elements(BATCH as u64));
    // Batches of 64 flows spread over the million, so lookups miss the cache as in life.
    let mut batches: Vec<Vec<Vec<u8>>> = (0..64u32)
        .map(|b| {
            (0..BATCH as u32)
                .map(|i| frame((b * 7919 + i * 16411) % FLOWS))
                .collect()
        })
        .collect();
    let mut n = 0;
    g.bench_function("batch64_1M_flows_no_prefetch", |b| {
        b.iter(|| {
            let batch = &mut batches[n % 64];
            n += 1;
            for fr in batch.iter_mut() {
                black_box(p.process(&snap, 2, fr));
            }
        })
    });
    // Every one of the million flows in turn (a fixed random order), so no batch finds
    // its buckets in the cache: the DRAM-bound case.
    let mut all: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| frame((i * 16411 + 7919) % FLOWS))
        .collect();
    let mut at = 0usize;
    g.bench_function("batch64_1M_flows_spread", |b| {
        b.iter(|| {
            let start = at;
            at = (at + BATCH) % all.len();
            let batch = &mut all[start..start + BATCH];
            prefetched_batch(&mut p, &snap, batch);
        })
    });
    // As the worker does it: prefetch the batch's buckets, then process.
    g.bench_function("batch64_1M_flows", |b| {
        b.iter(|| {
            let batch = &mut batches[n % 64];
            n += 1;
            prefetched_batch(&mut p, &snap, batch);
        })
    });
    g.finish();
}

/// `dr_established`'s worker case over IPv6: 1M flows in the IPv6 table (64-byte
/// entries, 4 per bucket), batches of 64 prefetched, cached and spread.
fn established6(c: &mut Criterion) {
    let snap = snapshot6(SchedulerKind::Wrr, 64);
    let mut p = pipeline(2 * FLOWS as usize);
    p.prepare(&snap);
    for i in 0..FLOWS {
        assert_eq!(p.process(&snap, 1, &mut syn_frame6(i)), Verdict::Tx);
    }
    let mut g = c.benchmark_group("dr6_established");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut batches: Vec<Vec<Vec<u8>>> = (0..64u32)
        .map(|b| {
            (0..BATCH as u32)
                .map(|i| frame6((b * 7919 + i * 16411) % FLOWS))
                .collect()
        })
        .collect();
    let mut all: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| frame6((i * 16411 + 7919) % FLOWS))
        .collect();
    let mut n = 0;
    let mut at = 0usize;
    g.bench_function("batch64_1M_flows", |b| {
        b.iter(|| {
            let batch = &mut batches[n % 64];
            n += 1;
            prefetched_batch(&mut p, &snap, batch);
        })
    });
    g.bench_function("batch64_1M_flows_spread", |b| {
        b.iter(|| {
            let start = at;
            at = (at + BATCH) % all.len();
            prefetched_batch(&mut p, &snap, &mut all[start..start + BATCH]);
        })
    });
    g.finish();
}

fn new_flows(c: &mut Criterion) {
    let mut g = c.benchmark_group("dr_new_flow");
    g.throughput(Throughput::Elements(1));
    for (name, kind) in SCHEDULERS {
        let snap = snapshot(kind, 64);
        let mut p = pipeline(FLOWS as usize);
        p.prepare(&snap);
        let mut i = 0u32;
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    i = i.wrapping_add(1);
                    xvs_bench::syn_frame(i)
                },
                |fr| black_box(p.process(&snap, 1, fr)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// New connections as the worker meets them: batches of 64 SYNs of flows never seen,
/// their buckets prefetched, spread over a million-entry table (cold in the cache); the
/// clock moves a second a batch, so old half-open flows expire and slots free up.
fn new_flows_batched(c: &mut Criterion) {
    let mut g = c.benchmark_group("dr_new_flow_batch64");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, kind) in [
        ("mh", SchedulerKind::Mh),
        ("rr", SchedulerKind::Rr),
        ("wlc", SchedulerKind::Wlc),
    ] {
        let snap = snapshot(kind, 64);
        let mut p = pipeline(FLOWS as usize);
        p.prepare(&snap);
        let mut i = 0u32;
        let mut now = 1u32;
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    (0..BATCH)
                        .map(|_| {
                            i = i.wrapping_add(1);
                            xvs_bench::syn_frame(i)
                        })
                        .collect::<Vec<_>>()
                },
                |batch| {
                    now += 1;
                    let mut pre = [Prefetched::default(); BATCH];
                    for (fr, pr) in batch.iter().zip(pre.iter_mut()) {
                        *pr = p.prefetch(fr);
                    }
                    for (fr, pr) in batch.iter_mut().zip(pre) {
                        black_box(p.process_packet(&snap, now, &mut Packet::whole(fr), pr));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// Inserts the flows `key(i)` for each `i` of `range` that the table does not hold yet;
/// returns how many it inserted.
fn fill(
    t: &mut FlowTable<FlowKey>,
    range: std::ops::Range<u32>,
    key: impl Fn(u32) -> FlowKey,
) -> u32 {
    let mut n = 0;
    for i in range {
        if let Err(slot) = t.lookup(&key(i), 1) {
            t.insert(
                slot,
                Flow {
                    key: key(i),
                    dest: 1,
                    expires: 1000,
                    ..Flow::default()
                },
            );
            n += 1;
        }
    }
    n
}

fn flow_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    g.throughput(Throughput::Elements(1));
    let mut t = FlowTable::new(FLOWS as usize, 99);
    let key = |i: u32| FlowKey::new(0x0b00_0000 | i, 0x0a00_0064, (i % 50000) as u16, 80, 6);
    fill(&mut t, 0..FLOWS / 2, key);
    let mut i = 0u32;
    g.bench_function("lookup_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % (FLOWS / 2);
            black_box(t.lookup(&key(i), 2).is_ok())
        })
    });
    let mut j = FLOWS;
    g.bench_function("insert", |b| {
        b.iter(|| {
            j = j.wrapping_add(1);
            let k = key(j);
            if let Err(slot) = t.lookup(&k, 2) {
                t.insert(
                    slot,
                    Flow {
                        key: k,
                        dest: 1,
                        expires: 1000,
                        ..Flow::default()
                    },
                );
            }
        })
    });
    g.finish();
}

/// Concurrent sessions: a table holding 1M and 16M live IPv4 flows (32 bytes each, the
/// whole of a worker's state for one), and a lookup of one of them picked at random, so
/// that neither the bucket nor the entry is in a cache, as with a million clients.
fn sessions(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions");
    g.throughput(Throughput::Elements(1));
    let key = |i: u32| FlowKey::new(0x0b00_0000 ^ i, 0x0a00_0064, (i >> 8) as u16 | 1024, 80, 6);
    for (name, flows) in [("1M", 1u32 << 20), ("16M", 1 << 24)] {
        // Room for the flows at 3/4 occupancy: a worker's table sized for them.
        let mut t = FlowTable::new((flows as usize) * 4 / 3, 99);
        let held = fill(&mut t, 0..flows, key);
        assert!(held > flows / 100 * 99, "the table holds the flows");
        let mut x = 0x9e37_79b9_u32;
        g.bench_function(format!("lookup_random_{name}_flows"), |b| {
            b.iter(|| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                black_box(t.lookup(&key(x & (flows - 1)), 2).is_ok())
            })
        });
    }
    g.finish();
}

/// The worker's sweep over a table of 4M slots (128 MiB, as a director sized for 16M
/// flows over 4 workers holds), every slot a live flow: what a SYN flood leaves, and
/// the case where the sweep finds nothing to do but still reads every bucket. One
/// iteration is one of the worker's slices (4096 buckets); throughput in buckets.
fn sweep(c: &mut Criterion) {
    const SWEPT: usize = 4096;
    let mut g = c.benchmark_group("sweep");
    g.throughput(Throughput::Elements(SWEPT as u64));
    let key = |i: u32| FlowKey::new(0x0c00_0000 ^ i, 0x0a00_0064, (i >> 6) as u16 | 1024, 80, 6);
    let mut t = FlowTable::new(1 << 22, 7);
    // Twice the slots in keys, 16 a bucket on average: all but the few buckets the hash
    // gave fewer than 8 end full of live flows (99.8 % of the slots, measured).
    fill(&mut t, 0..1 << 23, key);
    assert!(
        t.count_live(2) >= t.capacity() / 100 * 99,
        "the table is full"
    );
    g.bench_function("live_4M_slots", |b| {
        b.iter(|| {
            t.sweep(2, SWEPT, |f| {
                black_box(f);
            })
        })
    });
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev");
    g.sample_size(20);
    let snap = snapshot(SchedulerKind::Mh, 1000);
    g.bench_function("build_1000_servers_65537", |b| {
        b.iter(|| black_box(Maglev::build(&snap.services[0], &snap.dests, 65537)))
    });
    g.finish();
}

/// rr/wrr across workers: two threads (on CPUs 0 and 1, as two workers) scheduling new
/// connections of one wrr service over 64 real servers. `shared`: one snapshot, one
/// ticket both take turns from (what xvs does); `own_ticket`: a snapshot each, the same
/// code without the contention; `per_worker_state`: each its own wrr position (exact per
/// worker only: what xvs did before). Time per pick and thread.
fn sched_shared(c: &mut Criterion) {
    use std::sync::{Arc, Barrier};
    use xvs_dataplane::sched::{PickCtx, SchedState, SchedTable};
    use xvs_dataplane::WorkerCounters;
    let mut g = c.benchmark_group("sched_shared");
    g.throughput(Throughput::Elements(1));
    for mode in ["shared", "own_ticket", "per_worker_state"] {
        let shared = Arc::new(snapshot(SchedulerKind::Wrr, 64));
        g.bench_function(mode, |b| {
            b.iter_custom(|iters| {
                let barrier = Arc::new(Barrier::new(2));
                let threads: Vec<_> = (0..2usize)
                    .map(|cpu| {
                        let snap = if mode == "shared" {
                            Arc::clone(&shared)
                        } else {
                            Arc::new(snapshot(SchedulerKind::Wrr, 64))
                        };
                        let barrier = Arc::clone(&barrier);
                        std::thread::spawn(move || {
                            let _ = xvs_dataplane::sys::pin_to_cpu(cpu);
                            let svc = &snap.services[0];
                            let mut state = SchedState::new(svc, &snap);
                            let table = match mode {
                                "per_worker_state" => SchedTable::None,
                                _ => snap.tables[0].clone(),
                            };
                            let counters = WorkerCounters::new(xvs_dataplane::snapshot::MAX_DESTS);
                            let key = FlowKey::new(1, 2, 3, 80, 6);
                            let ctx = PickCtx {
                                key: &key,
                                conns: &counters.dests,
                                rand: 0,
                                now: 1,
                            };
                            barrier.wait();
                            let t0 = std::time::Instant::now();
                            for _ in 0..iters {
                                black_box(state.pick(svc, &snap, &table, &ctx));
                            }
                            t0.elapsed()
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().unwrap())
                    .max()
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// lc over 64 real servers as one worker decides it while another worker (CPU 1) opens
/// and closes connections without pause: `own`, its own counts only (what xvs does);
/// `summed`, every worker's counts added, which exact-per-virtual-server lc would need.
/// Time per decision.
fn lc_counts(c: &mut Criterion) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use xvs_dataplane::WorkerCounters;
    const DESTS: usize = 64;
    let mine = Arc::new(WorkerCounters::new(DESTS));
    let other = Arc::new(WorkerCounters::new(DESTS));
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (other, stop) = (Arc::clone(&other), Arc::clone(&stop));
        std::thread::spawn(move || {
            let _ = xvs_dataplane::sys::pin_to_cpu(1);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let d = &other.dests[i % DESTS];
                d.active.add(1);
                d.active.add(u64::MAX);
                i += 1;
            }
        })
    };
    let _ = xvs_dataplane::sys::pin_to_cpu(0);
    let least = |load: &dyn Fn(usize) -> u64| (0..DESTS).min_by_key(|&i| load(i)).unwrap_or(0);
    let mut g = c.benchmark_group("lc_counts");
    g.bench_function("own", |b| {
        b.iter(|| black_box(least(&|i| mine.dests[i].overhead())))
    });
    g.bench_function("summed", |b| {
        b.iter(|| {
            black_box(least(&|i| {
                mine.dests[i].overhead() + other.dests[i].overhead()
            }))
        })
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = churn.join();
}

criterion_group!(batched, new_flows_batched, sched_shared, lc_counts);
criterion_group!(
    benches,
    baseline,
    established,
    established6,
    new_flows,
    flow_table,
    sessions,
    sweep,
    maglev_build
);
criterion_main!(benches, batched);
