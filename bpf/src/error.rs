use thiserror::Error;

/// Errors from loading, attaching and talking to the BPF programs.
#[derive(Debug, Error)]
pub enum BpfError {
    #[error("failed to load the BPF object {object}: {source}. Check that the kernel has BPF and that xvs holds CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (root has them)")]
    Load {
        object: &'static str,
        source: libbpf_rs::Error,
    },
    #[error("the BPF object has no {kind} named {name}: the build is inconsistent")]
    Missing {
        kind: &'static str,
        name: &'static str,
    },
    #[error("failed to attach XDP to interface index {ifindex} in {mode} mode: {source}")]
    Attach {
        ifindex: i32,
        mode: &'static str,
        source: libbpf_rs::Error,
    },
    #[error("failed to {op} map {map}: {source}")]
    Map {
        op: &'static str,
        map: &'static str,
        source: libbpf_rs::Error,
    },
    #[error("RX queue {0} is beyond the {max} queues xvs supports", max = crate::abi::MAX_QUEUES)]
    QueueOutOfRange(u32),
    #[error("too many services: {0} (the steering map holds {max})", max = crate::abi::MAX_SERVICES)]
    TooManyServices(usize),
    #[error("a connection's two addresses are of different families")]
    FamilyMismatch,
    #[error("too many {what}: {count} (the steering program holds {max})")]
    TooMany {
        what: &'static str,
        count: usize,
        max: u32,
    },
}

impl BpfError {
    /// For `map_err`: the failure of `op` on map `map`.
    pub(crate) fn map(
        op: &'static str,
        map: &'static str,
    ) -> impl FnOnce(libbpf_rs::Error) -> BpfError {
        move |source| BpfError::Map { op, map, source }
    }
}
