//! Health checks: keepalived's checkers and their consequences for scheduling.

pub mod check;
