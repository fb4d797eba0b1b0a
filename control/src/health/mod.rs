//! Health checks, keepalived's "check" half: the checkers (`check.rs`), the pure retry
//! and transition policy (`policy.rs`) and quorum (`quorum.rs`), the task that runs a
//! checker for one real server (`task.rs`), the set of running monitors and their
//! migration across reloads (`monitors.rs`), and what the configuration asks to check
//! (`targets.rs`).

pub mod check;
mod monitors;
pub mod policy;
pub mod quorum;
pub mod stats;
mod targets;
pub mod task;

use std::collections::HashMap;

use crate::ids::DestKey;

pub use monitors::Monitors;
pub use targets::{health_targets, initial_health};

/// What the checks say of a real server now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    /// MISC dynamic weight, overriding the configured one.
    pub weight: Option<u32>,
}

/// Every checked real server's health; an unchecked one is absent (and up).
pub type HealthMap = HashMap<DestKey, Health>;
