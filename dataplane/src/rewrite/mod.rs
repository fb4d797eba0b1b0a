//! In-place frame rewrites, one file per forwarding method, and the ICMP reply TUN needs.

pub mod dr;
pub mod frag_needed;
pub mod nat;
pub mod tun;
