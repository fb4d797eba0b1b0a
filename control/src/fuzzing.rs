//! The sans-IO parts the fuzz targets drive (as quinn-proto's `fuzzing`): parsers and
//! state machines that take bytes and a clock and do no I/O of their own.

pub use crate::observe::metrics::request as metrics_request;
pub use crate::observe::status::request as status_request;
pub use crate::sync::wire as sync_wire;
pub use crate::sync::{auth as sync_auth, engine as sync_engine, stats as sync_stats};
pub use crate::vrrp::advert as vrrp_advert;
