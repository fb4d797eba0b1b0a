//! Notify scripts — keepalived's `notify_master`…, `notify_up`/`notify_down`,
//! `quorum_up`/`quorum_down` — run one way for VRRP and health checks alike, through
//! `crate::script` (argv, `script_user`, no capabilities): in the background on the
//! calling runtime, bounded in time (their process group killed after), a failure
//! logged and never fatal.

use std::time::Duration;

use tracing::{debug, warn};

/// The longest a notify script may run.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `script` with `extra` arguments appended, for `who` ("VRRP VI_1", "10.0.0.12:80
/// of web"), and returns at once.
pub fn spawn(who: String, script: String, extra: Vec<String>) {
    tokio::spawn(async move {
        match crate::script::run(&script, &extra, TIMEOUT).await {
            Ok(st) if st.success() => debug!("{who}: notify `{script}` done"),
            Ok(st) => warn!("{who}: notify `{script}` exited with {st}"),
            Err(e) => warn!("{who}: notify `{script}`: {e}"),
        }
    });
}
