//! In-place frame rewrites, one file per forwarding method (and family), the ICMP
//! replies TUN needs, FullNAT's client-address option (`toa`), and `forward`, which
//! picks one for a scheduled frame.

pub mod dr;
pub mod forward;
pub mod frag_needed;
pub mod fullnat;
pub mod nat;
pub mod nat6;
pub mod partial;
pub mod toa;
pub mod tun;
pub mod tun6;
