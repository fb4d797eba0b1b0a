//! Health checks: keepalived's checkers and their consequences for scheduling.

pub mod check;
pub mod monitor;

use std::collections::HashMap;

use crate::publish::DestKey;

/// What the checks say of a real server now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    /// MISC dynamic weight, overriding the configured one.
    pub weight: Option<u32>,
}

/// Every checked real server's health; an unchecked one is absent (and up).
pub type HealthMap = HashMap<DestKey, Health>;
