//! One measurement: a path set up in a fresh chain, the generator running past a warm-up,
//! the sink counting over a window, and the CPU the machine (and the director's process)
//! spent in that window.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::chain::{Chain, Path};

#[derive(Clone, Debug)]
pub struct Sample {
    pub path: Path,
    pub flows: u32,
    pub syn: bool,
    /// Frames per second reaching the real server.
    pub pps: f64,
    /// Frames per second the generator sent.
    pub offered: f64,
    /// CPU time the whole machine was busy, in CPUs (0..=cores), over the window.
    pub busy_cpus: f64,
    /// CPU time of the director's own process (xvs, the bare loop), in CPUs.
    pub director_cpus: Option<f64>,
    /// How busy the first CPU was (0..=1): where every path's director, the bridge and
    /// the sink run (`Chain::build`), the generator alone elsewhere.
    pub first_cpu: f64,
    /// The repetition, and the run's place in it (pairs are adjacent runs).
    pub rep: usize,
    pub seq: usize,
    /// xvs's counters after the run.
    pub xvs: Vec<(String, u64)>,
}

impl Sample {
    /// Busy CPU nanoseconds per delivered packet.
    pub fn busy_ns(&self) -> f64 {
        if self.pps > 0.0 {
            self.busy_cpus * 1e9 / self.pps
        } else {
            f64::NAN
        }
    }

    /// The first CPU's busy nanoseconds per delivered packet.
    pub fn first_cpu_ns(&self) -> f64 {
        if self.pps > 0.0 {
            self.first_cpu * 1e9 / self.pps
        } else {
            f64::NAN
        }
    }

    pub fn director_ns(&self) -> Option<f64> {
        self.director_cpus
            .filter(|_| self.pps > 0.0)
            .map(|c| c * 1e9 / self.pps)
    }
}

/// Busy and total jiffies of all CPUs (`cpu`) or of one (`cpu0`), from /proc/stat.
fn cpu_jiffies(which: &str) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(which))
        .with_context(|| format!("no {which} in /proc/stat"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Ok((busy, busy + get(3) + get(4)))
}

/// utime + stime of a process (all its threads), in clock ticks.
fn proc_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture xvs runs on.
    100.0
}

pub struct Window {
    pub warmup: f64,
    pub secs: f64,
    /// YAML appended to every xvs configuration (`--xvs-extra`).
    pub xvs_extra: String,
    /// The UDP frames' size (`--size`, bytes without the FCS); None: the smallest.
    pub size: Option<usize>,
}

impl Window {
    /// The warm-up for `flows`: long enough for every flow to have reached the director
    /// twice at the slowest path's rate (~120k pps with the generator sharing its CPU
    /// with the chain), so a path with per-flow state is measured in its steady state,
    /// not while it learns the flows.
    pub fn warmup_for(&self, flows: u32) -> f64 {
        // Twice round: a UDP flow enters xvs's fast path at its second packet.
        self.warmup
            .max((2.0 * f64::from(flows) / 120_000.0).min(20.0))
    }
}

/// Where a run stands in its repetition: the repetition, and the run's place in it.
pub type Place = (usize, usize);

pub fn run(path: Path, flows: u32, syn: bool, w: &Window, (rep, seq): Place) -> Result<Sample> {
    let mut chain = Chain::build(path.queues()).context("building the bench lab")?;
    let warmup = if syn { w.warmup } else { w.warmup_for(flows) };
    let warm = warmup.to_string();
    let secs = w.secs.to_string();
    let mut director = chain.start(path, syn, &w.xvs_extra)?;
    // After the director is up, so the sink's window is the CPU window below.
    let mut sink = chain.role(
        "rs",
        &["sink", "--dev", "eth0", "--warmup", &warm, "--secs", &secs],
        true,
    )?;
    let size = w.size.map(|n| n.to_string());
    let extra: Vec<&str> = match (syn, &size) {
        (true, _) => vec!["--syn"],
        (false, Some(n)) => vec!["--size", n],
        (false, None) => Vec::new(),
    };
    let mut gen = chain.start_gen(path, flows, warmup + w.secs + 0.5, &extra)?;
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let dpid = director
        .as_ref()
        .filter(|_| matches!(path, Path::Bare) || path.is_xvs())
        .map(|d| d.pid());
    let (b0, t0) = cpu_jiffies("cpu")?;
    let (f0, ft0) = cpu_jiffies("cpu0")?;
    let p0 = dpid.and_then(proc_ticks);
    std::thread::sleep(Duration::from_secs_f64(w.secs));
    let (b1, t1) = cpu_jiffies("cpu")?;
    let (f1, ft1) = cpu_jiffies("cpu0")?;
    let p1 = dpid.and_then(proc_ticks);
    let delivered = sink.line("delivered")?;
    let sent = gen.line("sent")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy_cpus = if t1 > t0 {
        (b1 - b0) as f64 / (t1 - t0) as f64 * cores
    } else {
        0.0
    };
    let first_cpu = if ft1 > ft0 {
        (f1 - f0) as f64 / (ft1 - ft0) as f64
    } else {
        0.0
    };
    let num = |s: &str, i: usize| -> Result<f64> {
        s.split_whitespace()
            .nth(i)
            .and_then(|x| x.parse().ok())
            .with_context(|| format!("unexpected line {s:?}"))
    };
    let pps = num(&delivered, 1)? / num(&delivered, 3)?;
    let offered = num(&sent, 1)? / num(&sent, 3)?;
    let director_cpus = match (p0, p1) {
        (Some(a), Some(b)) => Some((b - a) as f64 / ticks_per_second() / w.secs),
        _ => None,
    };
    let xvs = if path.is_xvs() {
        chain.xvs_counters().unwrap_or_default()
    } else {
        Vec::new()
    };
    // xvs stops on SIGTERM, not on its input closing: asked, not waited out.
    if let Some(d) = director.as_mut() {
        d.terminate();
    }
    drop(director);
    Ok(Sample {
        path,
        flows,
        syn,
        pps,
        offered,
        busy_cpus,
        director_cpus,
        first_cpu,
        rep,
        seq,
        xvs,
    })
}
