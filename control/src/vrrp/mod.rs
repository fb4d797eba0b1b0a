//! VRRP (RFC 3768, RFC 5798), interoperable with keepalived: the advertisement codec, the
//! sans-IO state machine, the edge that runs an instance (socket, VIPs, ARP), and the
//! thread of its own they all run on.

pub mod advert;
mod garp;
pub mod machine;
mod runner;
mod socket;
mod stats;
mod thread;

pub use runner::SyncGate;
pub use stats::VrrpStats;
pub use thread::VrrpThread;
