//! In-place frame rewrites, one file per forwarding method (and family), and the ICMP
//! replies TUN needs.

pub mod dr;
pub mod frag_needed;
pub mod nat;
pub mod nat6;
pub mod partial;
pub mod tun;
pub mod tun6;
