//! What xvs tells about itself: one counter-reading layer (`counters.rs`) and the flow
//! questions to the workers (`flows.rs`) under every view — `/metrics` (`metrics/`),
//! `xvs status` (`status/`), the status page (`page/`), `xvs explain` (`explain.rs`) and
//! the exit report (`report.rs`); and where the log goes, the journal or stderr (`logging.rs`).

pub mod counters;
pub mod explain;
pub mod flows;
pub mod logging;
pub mod metrics;
pub mod page;
pub mod report;
pub mod status;
