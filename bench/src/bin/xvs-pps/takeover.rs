//! `xvs-pps takeover`: what a planned handover (`xvs run --takeover`) costs the traffic.
//! A paced stream (100k pps over 100k UDP flows by default) runs through an xvs DR
//! director; halfway through, a second xvs takes the first one's place. The sink's XDP
//! program keeps the longest time between two frames; the generator's count against
//! the sink's gives the packets lost. Each measurement has a
//! control beside it, the same run without the takeover, so what the pacing and the
//! chain lose by themselves is not charged to the takeover. Fast-path flows (`fast_path:
//! xdp`) and worker-path flows (`off`) are measured apart.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::chain::{Chain, Path};
use crate::results::median;
use crate::roles::Args;

/// The heading of the section this writes into the results file.
const HEADING: &str = "## A takeover under load";

/// The stream before the takeover: every flow has had two packets (the fast path takes a
/// UDP flow at its second) when it begins.
const BEFORE_SECS: f64 = 3.0;
/// The stream after the takeover has begun.
const AFTER_SECS: f64 = 3.0;

/// The generator's pacing: a burst every 250 µs (20 frames at 100k pps), fine enough
/// for a 1 ms goal.
const TICK_US: &str = "250";

/// One run: a stream, with a takeover or without.
#[derive(Clone, Debug)]
struct Run {
    path: Path,
    takeover: bool,
    sent: u64,
    delivered: u64,
    gap_us: u64,
    /// When the longest gap ended, in ms after `xvs run --takeover` was started.
    gap_end_ms: Option<f64>,
    /// From `xvs run --takeover` to the old process gone and the new one answering.
    took_ms: Option<f64>,
    /// The generator's longest pause between two bursts (its own stall, if any).
    pause_us: u64,
}

impl Run {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.delivered)
    }
}

pub fn run(a: &Args) -> Result<()> {
    let flows: u32 = a.opt("flows")?.unwrap_or(100_000);
    let pps: u64 = a.opt("pps")?.unwrap_or(100_000);
    let reps: usize = a.opt("reps")?.unwrap_or(3);
    let out = a.get("out").unwrap_or("bench/RESULTS.md").to_string();
    // Warm-up as in `xvs-pps run`: every flow twice round before the takeover.
    let before = BEFORE_SECS.max(2.0 * f64::from(flows) / pps as f64 + 0.5);
    let mut runs = Vec::new();
    for rep in 1..=reps {
        for path in [Path::XvsDr, Path::XvsDrWorkers] {
            for takeover in [false, true] {
                let r = measure(path, flows, pps, before, takeover)
                    .with_context(|| format!("{} takeover={takeover}", path.short()))?;
                eprintln!(
                    "rep {rep}/{reps} {:<8} {}: sent {} delivered {} lost {} longest gap {:.1} ms{}{} (generator's longest pause {:.1} ms)",
                    path.short(),
                    if takeover { "takeover" } else { "control " },
                    r.sent,
                    r.delivered,
                    r.lost(),
                    r.gap_us as f64 / 1000.0,
                    r.gap_end_ms.map_or(String::new(), |t| format!(" (ended {t:.0} ms after the takeover began)")),
                    r.took_ms.map_or(String::new(), |t| format!(", took over in {t:.0} ms")),
                    r.pause_us as f64 / 1000.0
                );
                runs.push(r);
            }
        }
    }
    let section = render(&runs, flows, pps, reps);
    print!("{section}");
    write_section(&out, &section)?;
    eprintln!("written to {out}");
    Ok(())
}

fn measure(path: Path, flows: u32, pps: u64, before: f64, takeover: bool) -> Result<Run> {
    let mut chain = Chain::build(1).context("building the bench lab")?;
    let total = before + AFTER_SECS;
    // Counted until after the generator's end (it starts once xvs is up, about a second
    // after the sink); gaps from at least a second before the takeover (the stream's
    // start is none of its: the generator has started by then).
    let sink_secs = (total + 4.0).to_string();
    let from = (before - 1.0).to_string();
    let mut sink = chain.role(
        "rs",
        &[
            "sink-gaps",
            "--dev",
            "eth0",
            "--from",
            &from,
            "--secs",
            &sink_secs,
        ],
        true,
    )?;
    let mut old = chain
        .start(path, false, "")?
        .context("an xvs path runs a director")?;
    let pps = pps.to_string();
    let mut gen = chain.start_gen(
        path,
        flows,
        total,
        &["--pps", &pps, "--tick-us", TICK_US, "--rt"],
    )?;
    std::thread::sleep(Duration::from_secs_f64(before));
    let began_ns = xvs_dataplane::sys::monotonic_ns();
    let (new, took_ms) = match takeover {
        true => {
            let t0 = Instant::now();
            let mut new = chain.takeover_xvs()?;
            wait_replaced(&chain, &mut old, &mut new)?;
            (Some(new), Some(t0.elapsed().as_secs_f64() * 1000.0))
        }
        false => (None, None),
    };
    let sent_line = gen.line("sent")?;
    let sent = count(&sent_line, "sent")?;
    let pause_us = count(&sent_line, "longest_pause_us")?;
    let line = sink.line("delivered")?;
    let delivered = count(&line, "delivered")?;
    let gap_us = count(&line, "longest_gap_us")?;
    let ended = count(&line, "ended_at_ns")?;
    let gap_end_ms = takeover.then(|| (ended as f64 - began_ns as f64) / 1e6);
    for mut p in new.into_iter().chain([old]) {
        p.terminate();
    }
    Ok(Run {
        path,
        takeover,
        sent,
        delivered,
        gap_us,
        gap_end_ms,
        took_ms,
        pause_us,
    })
}

/// Waits until the process that handed over has exited and the new one answers.
fn wait_replaced(
    chain: &Chain,
    old: &mut crate::chain::Running,
    new: &mut crate::chain::Running,
) -> Result<()> {
    let t0 = Instant::now();
    while old.exited().is_none() {
        if let Some(st) = new.exited() {
            bail!("the new xvs exited: {st}");
        }
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("the old xvs did not hand over in 20 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    chain.wait_xvs_up(new)
}

/// The number after `word` in a role's line (`sent 300000 in 3.000 s`).
fn count(line: &str, word: &str) -> Result<u64> {
    let mut w = line.split_whitespace();
    w.position(|x| x == word)
        .and_then(|_| w.next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no {word} in {line:?}"))
}

fn render(runs: &[Run], flows: u32, pps: u64, reps: usize) -> String {
    let mut s = format!(
        "\n{HEADING}\n\nWritten by `xvs-pps takeover` (`make bench`): {pps} pps of 64-byte UDP frames over {flows} flows through an xvs DR director (one queue, one worker); a second xvs takes its place (`xvs run --takeover`) after {BEFORE_SECS:.0} s or more, when every flow has had two packets; {AFTER_SECS:.0} s more. The generator sends a burst every 250 µs at real-time priority; the sink's XDP program keeps the longest time between two frames, from a second before the takeover on (the control's is what the pacing and the machine's scheduling give by themselves). The generator's longest pause between two bursts is beside it: the generator, the director's old and new processes and the sink share two CPUs here, so a pause of the generator is a gap the director did not make. Lost: sent less delivered. Each takeover run has a control beside it, the same run without the takeover. {reps} repetitions: median (min–max).\n\n| flows carried by | run | lost packets | longest gap (ms) | generator's longest pause (ms) | took over in (ms) |\n|---|---|---|---|---|---|\n"
    );
    for path in [Path::XvsDr, Path::XvsDrWorkers] {
        for takeover in [false, true] {
            let of: Vec<&Run> = runs
                .iter()
                .filter(|r| r.path == path && r.takeover == takeover)
                .collect();
            let stat = |f: &dyn Fn(&Run) -> f64, digits: usize| {
                let mut v: Vec<f64> = of.iter().map(|r| f(r)).collect();
                let (lo, hi) = v
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
                let m = median(&mut v);
                format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                match path {
                    Path::XvsDr => "the fast path (`fast_path: xdp`)",
                    _ => "the worker (`fast_path: off`)",
                },
                if takeover { "**takeover**" } else { "control" },
                stat(&|r| r.lost() as f64, 0),
                stat(&|r| r.gap_us as f64 / 1000.0, 1),
                stat(&|r| r.pause_us as f64 / 1000.0, 1),
                if takeover {
                    stat(&|r| r.took_ms.unwrap_or(f64::NAN), 0)
                } else {
                    "—".into()
                },
            );
        }
    }
    s.push_str("\nGoal (issue 27): no established connection lost; a gap of at most 1 ms for fast-path flows and 50 ms for worker-path flows.\n");
    s
}

/// Puts `section` in place of the file's takeover section (the last one), or after it.
fn write_section(out: &str, section: &str) -> Result<()> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let kept = match text.find(&format!("\n{HEADING}\n")) {
        Some(i) => &text[..i],
        None => text.trim_end_matches('\n'),
    };
    std::fs::write(out, format!("{kept}\n{section}")).with_context(|| format!("writing {out}"))
}
