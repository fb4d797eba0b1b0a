//! What the pipeline's integration tests share: a pipeline, and services on the
//! fixtures' VIP.

use std::sync::Arc;

use xvs_dataplane::fixtures::VIP;
use xvs_dataplane::flow::Timeouts;
use xvs_dataplane::pipeline::NodestPolicy;
use xvs_dataplane::snapshot::MAX_DESTS;
use xvs_dataplane::*;

/// A pipeline of 4096 flows (hash seed 7, default timeouts) that treats a flow whose
/// real server is gone as `nodest` says.
pub fn pipeline_with(nodest: NodestPolicy) -> Pipeline {
    let cfg = PipelineConfig {
        flow_capacity: 4096,
        hash_seed: 7,
        timeouts: Timeouts::default(),
        nodest,
        ..PipelineConfig::default()
    };
    Pipeline::new(&cfg, Arc::new(WorkerCounters::new(MAX_DESTS)))
}

/// As `pipeline_with`, rescheduling such flows.
pub fn pipeline() -> Pipeline {
    pipeline_with(NodestPolicy::Reschedule)
}

/// Service `s{port}` on the fixtures' VIP, rr over real server 0, forwarding as
/// `forwarding` says.
pub fn rr_service(port: u16, proto: u8, forwarding: Forwarding) -> Service {
    Service::new(
        format!("s{port}"),
        ServiceKey {
            addr: VIP.into(),
            port,
            proto,
        },
        SchedulerKind::Rr,
        forwarding,
        vec![0],
    )
}
