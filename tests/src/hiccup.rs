//! A hiccup meter: one real-time thread pinned to each CPU, sleeping 1 ms at a time and
//! noting every time it woke much later than asked. A stall it sees is one that no
//! thread of the machine could have avoided, real-time or not (a hypervisor taking the
//! virtual CPU away, a long non-preemptible stretch of kernel), so a test of timing that
//! fails can tell the host's stalls from the program's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The meter's own priority: that of the VRRP threads it stands beside (xvs's default,
/// and keepalived's when given one), so it measures what they could not escape either.
const PRIORITY: i32 = 10;
/// A meter never runs longer than this, whatever its owner does.
const MAX_RUN: Duration = Duration::from_secs(600);

/// One stall: when it ended (milliseconds since the epoch), how long it was, on which
/// CPU.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    pub at_unix_ms: u64,
    pub length: Duration,
    pub cpu: usize,
}

pub struct Meter {
    stop: Arc<AtomicBool>,
    stalls: Arc<Mutex<Vec<Stall>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Meter {
    /// Starts a thread on each CPU this process may use; it records stalls of at least
    /// `min`. Without the privilege for real-time scheduling its threads run at normal
    /// priority (and then see the scheduler's delays too, which only makes it lenient
    /// in the direction of reporting more).
    pub fn start(min: Duration) -> Meter {
        let stop = Arc::new(AtomicBool::new(false));
        let stalls = Arc::new(Mutex::new(Vec::new()));
        let threads = xvs_dataplane::sys::allowed_cpus()
            .into_iter()
            .map(|cpu| {
                let (stop, stalls) = (Arc::clone(&stop), Arc::clone(&stalls));
                std::thread::spawn(move || watch(cpu, min, &stop, &stalls))
            })
            .collect();
        Meter {
            stop,
            stalls,
            threads,
        }
    }

    /// Stops the threads and returns the stalls they saw, longest first.
    pub fn stop(mut self) -> Vec<Stall> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let mut s = self.stalls.lock().map(|s| s.clone()).unwrap_or_default();
        s.sort_by_key(|s| std::cmp::Reverse(s.length));
        s
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(cpu: usize, min: Duration, stop: &AtomicBool, stalls: &Mutex<Vec<Stall>>) {
    // Unpinned, it would measure whichever CPU it was moved to; a refusal is unlikely
    // for a CPU from this process's own affinity.
    let _ = xvs_dataplane::sys::pin_to_cpu(cpu);
    // A refusal leaves it at normal priority, which the doc of `Meter::start` allows for.
    let _ = xvs_dataplane::sys::set_fifo(PRIORITY);
    let tick = Duration::from_millis(1);
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) && t0.elapsed() < MAX_RUN {
        let before = Instant::now();
        std::thread::sleep(tick);
        let late = before.elapsed().saturating_sub(tick);
        if late >= min {
            let at_unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            if let Ok(mut s) = stalls.lock() {
                s.push(Stall {
                    at_unix_ms,
                    length: late,
                    cpu,
                });
            }
        }
    }
}
