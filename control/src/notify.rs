//! Notify scripts — keepalived's `notify_master`…, `notify_up`/`notify_down`,
//! `quorum_up`/`quorum_down` — run one way for VRRP and health checks alike: `sh -c`, in
//! the background on the calling runtime, bounded in time (killed after), a failure
//! logged and never fatal.

use std::time::Duration;

use tracing::{debug, warn};

/// The longest a notify script may run.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `script` for `who` ("VRRP VI_1", "10.0.0.12:80 of web") and returns at once.
pub fn spawn(who: String, script: String) {
    tokio::spawn(async move {
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(mut c) => match tokio::time::timeout(TIMEOUT, c.wait()).await {
                Ok(Ok(st)) if st.success() => debug!("{who}: notify `{script}` done"),
                Ok(Ok(st)) => warn!("{who}: notify `{script}` exited with {st}"),
                Ok(Err(e)) => warn!("{who}: notify `{script}`: {e}"),
                Err(_) => warn!("{who}: notify `{script}` still running after {TIMEOUT:?}: killed"),
            },
            Err(e) => warn!("{who}: cannot run notify `{script}`: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_script_in_the_background() {
        let dir = std::env::temp_dir().join(format!("xvs-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mark = dir.join("ran");
        spawn("test".into(), format!("echo $0 > {}", mark.display()));
        let t0 = std::time::Instant::now();
        while !mark.exists() && t0.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(mark.exists(), "the script ran");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
