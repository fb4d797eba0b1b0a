//! The VRRP thread: every instance runs on a thread and a tokio runtime of its own, so
//! nothing else the daemon does — a reload building thousands of Maglev tables, a
//! `/metrics` render, a netlink call — can delay an advert. keepalived runs VRRP in a
//! process apart for the same reason. The thread runs under `SCHED_FIFO`
//! (`vrrp_realtime_priority`), so that neither can the rest of the host: its work is a
//! few microseconds an advert. The daemon talks to it over channels only: the
//! priority quorum asks for, the stop switch; the instances' statistics are atomics.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::error;
use xvs_config::VrrpInstance;

use super::runner::{self, SyncGate, SyncMsg};
use super::stats::VrrpStats;
use crate::sys::caps::{self, Cap};
use crate::sys::sched;

/// How long the instances get to say goodbye (priority 0) when stopping.
const STOP_GRACE: Duration = Duration::from_secs(2);

pub struct VrrpThread {
    stop: watch::Sender<bool>,
    priorities: HashMap<String, watch::Sender<Option<u8>>>,
    stats: Vec<(String, Arc<VrrpStats>)>,
    handle: Option<JoinHandle<()>>,
}

impl VrrpThread {
    /// Starts the instances on the `xvs-vrrp` thread (none: no thread), at real-time
    /// `priority` (None: normal scheduling). With connection sync, `sync` is what a
    /// preemption waits for.
    pub fn spawn(
        instances: &[VrrpInstance],
        priority: Option<u8>,
        sync: Option<SyncGate>,
        resume: &[String],
    ) -> Result<VrrpThread> {
        let (stop, stopped) = watch::channel(false);
        let mut priorities = HashMap::new();
        let mut stats = Vec::new();
        let mut jobs = Vec::new();
        for vi in instances {
            let (ptx, prx) = watch::channel(None);
            priorities.insert(vi.name.clone(), ptx);
            let s = Arc::new(VrrpStats::default());
            stats.push((vi.name.clone(), Arc::clone(&s)));
            jobs.push(Job {
                vi: vi.clone(),
                stats: s,
                prio: prx,
                resume: resume.contains(&vi.name),
            });
        }
        let handle = if jobs.is_empty() {
            None
        } else {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the VRRP runtime")?;
            // The policy is the thread's own: it sets it, and says whether it could.
            let (told, scheduled) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("xvs-vrrp".into())
                .spawn(move || {
                    let r = priority.map_or(Ok(()), sched::realtime);
                    let ok = r.is_ok();
                    let _ = told.send(r);
                    if ok {
                        rt.block_on(run_all(jobs, stopped, sync));
                    }
                })
                .context("starting the VRRP thread")?;
            match scheduled.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = thread.join();
                    let p = priority.unwrap_or_default();
                    anyhow::bail!(
                        "putting the VRRP thread at real-time priority {p} (SCHED_FIFO): {e}{}; grant it, or set `vrrp_realtime_priority: 0` to run VRRP at normal priority (a busy host can then delay adverts into a false failover)",
                        caps::hint(&e, Cap::SysNice)
                    );
                }
                Err(_) => anyhow::bail!("the VRRP thread ended before it started"),
            }
            Some(thread)
        };
        Ok(VrrpThread {
            stop,
            priorities,
            stats,
            handle,
        })
    }

    /// Each instance's statistics, by name.
    pub fn stats(&self) -> &[(String, Arc<VrrpStats>)] {
        &self.stats
    }

    /// The priority `instance` advertises: `Some(p)` while a quorum is lost, None for its
    /// configured one. An unknown instance is ignored (the config checks the names).
    pub fn set_priority(&self, instance: &str, priority: Option<u8>) {
        if let Some(tx) = self.priorities.get(instance) {
            let _ = tx.send(priority);
        }
    }

    /// Steps every instance down gracefully, waits for the thread, and returns the
    /// one-line summary of each instance.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                error!("the VRRP thread panicked");
            }
        }
        self.stats.iter().map(|(name, s)| s.summary(name)).collect()
    }
}

/// One instance to run: its configuration, statistics, the priority quorum asks for,
/// and whether it resumes as master (a handover).
struct Job {
    vi: VrrpInstance,
    stats: Arc<VrrpStats>,
    prio: watch::Receiver<Option<u8>>,
    resume: bool,
}

/// The thread's body: every instance as a task, until `stop`; then each has
/// `STOP_GRACE` to finish.
async fn run_all(jobs: Vec<Job>, stop: watch::Receiver<bool>, sync: Option<SyncGate>) {
    let (bus, _) = tokio::sync::broadcast::channel::<SyncMsg>(64);
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(
            |Job {
                 vi,
                 stats,
                 prio,
                 resume,
             }| {
                let name = vi.name.clone();
                let task = tokio::spawn(runner::run(
                    vi,
                    stats,
                    stop.clone(),
                    bus.clone(),
                    prio,
                    sync.clone(),
                    resume,
                ));
                (name, task)
            },
        )
        .collect();
    for (name, task) in tasks {
        // An instance that failed ends early (its error is logged now); the others go on.
        let mut task = task;
        let mut stop = stop.clone();
        let result = tokio::select! {
            r = &mut task => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        let result = match result {
            Some(r) => r,
            None => match tokio::time::timeout(STOP_GRACE, task).await {
                Ok(r) => r,
                Err(_) => {
                    error!("VRRP {name}: did not stop in time");
                    continue;
                }
            },
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!("VRRP {name}: {e:#}"),
            Err(e) => error!("VRRP {name}: task failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_instances_no_thread() {
        let t = VrrpThread::spawn(&[], Some(10), None, &[]).unwrap();
        assert!(t.handle.is_none());
        assert!(t.stop().is_empty());
    }

    /// An instance that cannot start (no such interface) is logged and does not hold up
    /// the thread's stop.
    #[test]
    fn a_failed_instance_does_not_hold_up_the_stop() {
        // Interfaces are checked on the host by the daemon, not by the parser.
        let cfg = xvs_config::parse(
            "t.yaml",
            "interface: lo\nvrrp_instances:\n  - name: VI_1\n    interface: xvs-no-such0\n    virtual_router_id: 51\n    priority: 100\n    virtual_ipaddresses: [10.0.0.100]\n",
        )
        .unwrap();
        let t = VrrpThread::spawn(&cfg.vrrp_instances, None, None, &[]).unwrap();
        t.set_priority("VI_1", Some(50));
        t.set_priority("nope", Some(50));
        let started = std::time::Instant::now();
        let summary = t.stop();
        assert!(started.elapsed() < STOP_GRACE * 2);
        assert_eq!(summary.len(), 1);
        assert!(summary[0].starts_with("vrrp VI_1: INIT"), "{summary:?}");
    }
}
