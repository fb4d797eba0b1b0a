//! `xvs status`: the virtual and real servers as `ipvsadm -Ln` shows them, with the
//! `--stats` (totals), `--rate` (per second, over the last seconds), `--connections`
//! (`ipvsadm -Lnc`) and `--drops` (what was refused, by reason) views, as text or JSON. Everything is summed over the workers' own
//! counters at the moment of asking.
//!
//! - `request.rs`: the command line; `rows.rs`: the rows and totals; `rates.rs`: the
//!   samples behind `--rate`; `connections.rs`: the flow rows; `drops.rs`: the drop counters;
//!   `render.rs`: the text; `sync.rs`: `--sync`, connection sync's state; `announce.rs`: `--announce`, the VIP routes; `notes.rs`:
//!   since when each real server is in its state, and its last check.

mod announce;
mod connections;
mod drops;
mod notes;
mod rates;
mod render;
pub mod request;
mod rows;
mod sync;

pub use announce::render_announce;
pub use connections::{connection_rows, render_connections, CONNECTIONS_LIMIT};
pub use drops::render_drops;
pub use notes::Notes;
pub use rates::{Rates, RATE_SAMPLE};
pub use render::render;
pub use request::{Request, View};
pub use rows::{rows, Pool, RealServerRow, Steered, VirtualServerRow};
pub use sync::render_sync;

/// Labelled counts as a JSON object (`--drops`, `--sync`).
fn counts_object(rows: &[(&str, u64)]) -> serde_json::Map<String, serde_json::Value> {
    rows.iter()
        .map(|(l, n)| (l.to_string(), serde_json::Value::from(*n)))
        .collect()
}
