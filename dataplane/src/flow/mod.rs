//! Connection tracking: the bounded flow table and the per-protocol state that sets each
//! flow's timeout.

pub mod dump;
pub mod state_file;
pub mod table;
pub mod tcp_state;

pub use state_file::{FileSpec, FlowFile, Opened, Refusal, StateFileError};
pub use table::{Flow, FlowKey, FlowKey6, FlowTable};
pub use tcp_state::{Direction, TcpState, Timeouts};
