//! xvs's dataplane: everything a worker does per packet, and the AF_XDP plumbing under it.
//!
//! - [`wire`]: zero-copy header views.
//! - [`snapshot`]: the immutable service set control publishes.
//! - [`flow`], [`sched`], [`rewrite`], [`pipeline`]: the per-frame decision, sans I/O.
//! - [`xsk`]: AF_XDP sockets (the only module with `unsafe`), [`worker`]: the loop.
//!
//! No tokio, no lock and no allocation per packet.

pub mod counters;
pub mod flow;
pub mod hash;
pub mod packet;
pub mod pipeline;
pub mod rewrite;
pub mod sched;
pub mod snapshot;
pub mod verdict;
pub mod wire;

pub use counters::WorkerCounters;
pub use pipeline::{Pipeline, PipelineConfig};
pub use snapshot::{
    Dest, DestId, Forwarding, SchedulerKind, Service, ServiceKey, SharedSnapshot, Snapshot,
};
pub use verdict::{DropReason, Verdict};
pub mod fixtures;
pub mod sys;
pub mod worker;
pub mod xsk;
