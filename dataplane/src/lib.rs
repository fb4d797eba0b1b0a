//! xvs's dataplane: everything a worker does per packet, and the AF_XDP plumbing under it.
//!
//! - [`wire`]: zero-copy header views.
//! - [`snapshot`]: the immutable service set control publishes.
//! - [`flow`], [`sched`], [`rewrite`], [`pipeline`]: the per-frame decision, sans I/O.
//! - [`sync`]: connection sync's records and queues (the workers' side).
//! - [`xsk`]: AF_XDP sockets, [`worker`]: the loop, [`sys`]: CPU pinning and prefetch.
//!
//! No tokio, no lock and no allocation per packet. `unsafe` is denied everywhere but in
//! [`xsk`] and [`sys`], which talk to the kernel and the CPU.

#![deny(unsafe_code)]

pub mod counters;
pub mod flow;
pub mod fullnat;
pub mod hash;
pub mod labelled;
pub mod nat_conns;
pub mod offload;
pub mod packet;
pub mod pipeline;
pub mod rewrite;
pub mod sched;
pub mod screen;
pub mod snapshot;
pub mod syn_guard;
pub mod sync;
pub mod verdict;
pub mod wire;

pub use counters::WorkerCounters;
pub use pipeline::{Pipeline, PipelineConfig};
pub use snapshot::{
    Dest, DestId, Forwarding, SchedulerKind, Service, ServiceKey, SharedSnapshot, Snapshot,
};
pub use verdict::{DropReason, Verdict};
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[allow(unsafe_code)]
pub mod sys;
pub mod worker;
#[allow(unsafe_code)]
pub mod xsk;
