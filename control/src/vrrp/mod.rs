//! VRRP (RFC 3768, RFC 5798), interoperable with keepalived: the advertisement codec, the
//! sans-IO state machine, and the edge that runs an instance (socket, VIPs, ARP).

mod garp;
pub mod machine;
pub mod packet;
mod runner;
mod socket;

pub use runner::{run, SyncMsg, VrrpStats};
