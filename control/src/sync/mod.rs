//! Connection sync between directors: what IPVS's sync daemon does, authenticated.
//! Each director sends the connections and templates its workers create and change
//! to its peers, and installs theirs, so that whichever holds the VIPs forwards an
//! established connection to the real server that has it; a director that starts or
//! comes back asks for the peers' whole tables first (and a preempting VRRP instance
//! waits for that, `Engine::ready`).
//!
//! - `wire.rs`: the message format; `auth.rs`: HMAC and the replay window
//! - `translate.rs`: workers' records ↔ wire entries, through the snapshot
//! - `engine.rs`: the sans-IO protocol; `thread.rs`: its sockets and thread
//! - `stats.rs`: what `/metrics` and `xvs status --sync` show

pub mod auth;
pub mod engine;
pub mod stats;
pub mod thread;
pub mod translate;
pub mod wire;

pub use stats::SyncStats;
pub use thread::{SyncThread, Wiring};
