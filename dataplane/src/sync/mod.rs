//! Connection sync, the workers' side: what a worker tells the sync thread about its
//! flows, and what it installs from the peers. No I/O here: the sync thread (control's
//! `sync/`) owns the socket, the wire format and the authentication.
//!
//! - [`record`]: one flow's or template's state, as the workers hand it over.
//! - [`channel`]: the lock-free queues between one worker and the sync thread.
//!
//! The pipeline sends a connection when it becomes established (UDP: when it is
//! created), on every later TCP state change, and again when half its timeout has gone
//! by since it was last sent, so the peer's copy never expires while the flow lives;
//! a template when it is created or refreshed past half its timeout. A worker installs
//! what the sync thread received into its own tables (`Pipeline::install_synced`), and
//! walks its tables into the bulk queue when a peer asks for all of them
//! (`Pipeline::resync_walk`).

pub mod channel;
pub mod record;

pub use channel::SyncChannel;
pub use record::{SyncKey, SyncRecord};
