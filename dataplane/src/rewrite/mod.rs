//! In-place frame rewrites, one file per forwarding method.

pub mod dr;
