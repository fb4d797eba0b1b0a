//! The report: medians per path, ratios to the in-kernel forwarder (a), the director's
//! own cost per packet, the criterion figures of the same run, as a table on stdout and
//! as `bench/RESULTS.md`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::chain::Path;
use crate::measure::Sample;

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Medians of one (path, flows, syn) group.
#[derive(Clone, Debug)]
pub struct Row {
    pub pps: f64,
    pub offered: f64,
    pub busy_ns: f64,
    pub director_ns: Option<f64>,
    pub runs: Vec<f64>,
    pub tx_ring_full: u64,
    pub rx_ring_full: u64,
    /// The first CPU's busy ns per delivered packet (median): the director's CPU.
    pub first_cpu_ns: f64,
    /// Its rate over its neighbouring (a) runs', one per repetition (`pair_ratios`).
    pub ratios: Vec<f64>,
}

impl Row {
    /// The median of its pair ratios.
    pub fn ratio(&self) -> Option<f64> {
        (!self.ratios.is_empty()).then(|| median(&mut self.ratios.clone()))
    }

    /// `median (min–max, n)` of its pair ratios.
    pub fn ratio_text(&self) -> String {
        let Some(m) = self.ratio() else {
            return "—".into();
        };
        let min = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self
            .ratios
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        format!("{m:.2}× ({min:.2}–{max:.2}, n={})", self.ratios.len())
    }
}

/// Each path's rate over the geometric mean of the (a) runs just before and after it in
/// the same repetition (one, at an end), per (flows, path).
pub fn pair_ratios(samples: &[Sample]) -> BTreeMap<Key, Vec<f64>> {
    let mut runs: BTreeMap<(usize, u32), Vec<&Sample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.syn) {
        runs.entry((s.rep, s.flows)).or_default().push(s);
    }
    let mut out: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for (_, mut v) in runs {
        v.sort_by_key(|s| s.seq);
        for (i, s) in v.iter().enumerate().filter(|(_, s)| s.path != Path::Fwd) {
            let around = [i.checked_sub(1).and_then(|j| v.get(j)), v.get(i + 1)];
            let fwd: Vec<f64> = around
                .into_iter()
                .flatten()
                .filter(|n| n.path == Path::Fwd && n.pps > 0.0)
                .map(|n| n.pps)
                .collect();
            if fwd.is_empty() {
                continue;
            }
            let geo = fwd.iter().product::<f64>().powf(1.0 / fwd.len() as f64);
            out.entry((false, s.flows, s.path))
                .or_default()
                .push(s.pps / geo);
        }
    }
    out
}

pub type Key = (bool, u32, Path);

pub fn group(samples: &[Sample]) -> BTreeMap<Key, Row> {
    let mut pairs = pair_ratios(samples);
    let mut by: BTreeMap<Key, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by.entry((s.syn, s.flows, s.path)).or_default().push(s);
    }
    by.into_iter()
        .map(|(k, v)| {
            let mut pps: Vec<f64> = v.iter().map(|s| s.pps).collect();
            let runs = pps.clone();
            let mut off: Vec<f64> = v.iter().map(|s| s.offered).collect();
            let mut busy: Vec<f64> = v.iter().map(|s| s.busy_ns()).collect();
            let mut dir: Vec<f64> = v.iter().filter_map(|s| s.director_ns()).collect();
            let mut first: Vec<f64> = v.iter().map(|s| s.first_cpu_ns()).collect();
            let counter = |name: &str| {
                v.iter()
                    .flat_map(|s| s.xvs.iter())
                    .filter(|(n, _)| n == name)
                    .map(|(_, c)| *c)
                    .sum()
            };
            let row = Row {
                pps: median(&mut pps),
                offered: median(&mut off),
                busy_ns: median(&mut busy),
                director_ns: (!dir.is_empty()).then(|| median(&mut dir)),
                runs,
                tx_ring_full: counter("xvs_worker_tx_ring_full_total"),
                rx_ring_full: counter("xvs_xsk_rx_ring_full_total"),
                first_cpu_ns: median(&mut first),
                ratios: pairs.remove(&k).unwrap_or_default(),
            };
            (k, row)
        })
        .collect()
}

fn flows_label(n: u32) -> String {
    match n {
        1 => "1 flow".into(),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M flows", n >> 20),
        n => format!("{n} flows"),
    }
}

/// The tables, as Markdown.
/// `frame`: the UDP frames' bytes without the FCS.
pub fn render(
    rows: &BTreeMap<Key, Row>,
    criterion: &[(String, f64)],
    header: &str,
    frame: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}");
    let flow_counts: Vec<u32> = {
        let mut v: Vec<u32> = rows.keys().filter(|k| !k.0).map(|k| k.1).collect();
        v.dedup();
        v
    };
    render_summary(&mut s, rows, &flow_counts, frame);
    let _ = writeln!(
        s,
        "\n## Every path: delivered pps (median), ratio to (a), CPU per packet\n"
    );
    let _ = writeln!(
        s,
        "Busy ns/packet: the whole machine's busy CPU time over the window per delivered packet. Director ≈: that minus the same for the client sending straight to the sink (the chain's own cost). Process ns/packet: the director's own process (xvs, the bare loop), from /proc/PID/stat.\n"
    );
    for f in &flow_counts {
        render_paths(&mut s, rows, *f, frame);
    }
    render_syn(&mut s, rows);
    render_criterion(&mut s, criterion);
    s
}

/// The summary: each xvs path's and the bare loop's ratio to (a), per flow count.
fn render_summary(s: &mut String, rows: &BTreeMap<Key, Row>, flow_counts: &[u32], frame: usize) {
    let _ = writeln!(
        s,
        "## xvs against the in-kernel XDP_TX forwarder (a), {}-byte UDP\n",
        frame + 4
    );
    let _ = write!(s, "| path |");
    for f in flow_counts {
        let _ = write!(s, " {} |", flows_label(*f));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|{}", "---|".repeat(flow_counts.len()));
    let summary = Path::ALL.into_iter().filter(|p| p.is_xvs()).chain([
        Path::Bare,
        Path::IpForward,
        Path::Nft,
        Path::NftMasq,
    ]);
    for p in summary {
        let _ = write!(s, "| {} |", p.label());
        for f in flow_counts {
            match rows.get(&(false, *f, p)) {
                Some(r) => {
                    let _ = write!(s, " {} |", r.ratio_text());
                }
                None => {
                    let _ = write!(s, " — |");
                }
            }
        }
        let _ = writeln!(s);
    }
}

/// Every path's table with `f` flows, then what the generator offered.
fn render_paths(s: &mut String, rows: &BTreeMap<Key, Row>, f: u32, frame: usize) {
    let _ = writeln!(s, "### {}\n", flows_label(f));
    let _ = writeln!(s, "| path | delivered pps | Gbit/s | runs | ratio to (a), per pair | busy ns/packet | first CPU ns/packet | director ≈ ns/packet | process ns/packet | tx_ring_full | rx_ring_full |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for p in Path::ALL {
        let Some(r) = rows.get(&(false, f, p)) else {
            continue;
        };
        render_path(s, rows, (f, frame), p, r);
    }
    if let Some(r) = rows.get(&(false, f, Path::Direct)) {
        let _ = writeln!(s, "\nOffered by the generator: {:.0} pps.\n", r.offered);
    }
}

/// Path `p`'s row (`r`) with `f` flows of `frame`-byte frames.
fn render_path(
    s: &mut String,
    rows: &BTreeMap<Key, Row>,
    (f, frame): (u32, usize),
    p: Path,
    r: &Row,
) {
    let direct = rows.get(&(false, f, Path::Direct)).map(|r| r.busy_ns);
    let ratio = match p {
        Path::Fwd => "1 (the pairs' base)".to_string(),
        _ => r.ratio_text(),
    };
    let est = match (p, direct) {
        (Path::Direct, _) => "—".to_string(),
        (_, Some(d)) => format!("{:.0}", r.busy_ns - d),
        _ => "—".into(),
    };
    let runs: Vec<String> = r.runs.iter().map(|x| format!("{:.0}k", x / 1e3)).collect();
    let _ = writeln!(
        s,
        "| {} | {:.0} | {:.2} | {} | {ratio} | {:.0} | {:.0} | {est} | {} | {} | {} |",
        p.label(),
        r.pps,
        gbits(r.pps, frame),
        runs.join(" "),
        r.busy_ns,
        r.first_cpu_ns,
        r.director_ns.map_or("—".into(), |d| format!("{d:.0}")),
        if p.is_xvs() {
            r.tx_ring_full.to_string()
        } else {
            "—".into()
        },
        if p.is_xvs() {
            r.rx_ring_full.to_string()
        } else {
            "—".into()
        },
    );
}

/// Gigabits a second of `pps` frames of `frame` bytes, counted with the FCS (not the
/// preamble and gap).
pub fn gbits(pps: f64, frame: usize) -> f64 {
    pps * (frame as f64 + 4.0) * 8.0 / 1e9
}

/// New TCP connections per second, if any SYN run was made.
fn render_syn(s: &mut String, rows: &BTreeMap<Key, Row>) {
    let syn: Vec<(&Key, &Row)> = rows.iter().filter(|(k, _)| k.0).collect();
    if syn.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## New TCP connections per second (each SYN a new flow)\n"
    );
    let _ = writeln!(
        s,
        "| path | flows | SYNs delivered per second | busy ns/SYN |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for (k, r) in syn {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.0} |",
            k.2.label(),
            flows_label(k.1),
            r.pps,
            r.busy_ns
        );
    }
    let _ = writeln!(s);
}

/// Criterion's figures of the same run, if any.
fn render_criterion(s: &mut String, criterion: &[(String, f64)]) {
    if criterion.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Criterion, the same run (`cargo bench -p xvs-bench`)\n"
    );
    let _ = writeln!(s, "| benchmark | ns per iteration (median) |");
    let _ = writeln!(s, "|---|---|");
    for (name, ns) in criterion {
        let _ = writeln!(s, "| {name} | {ns:.1} |");
    }
    let _ = writeln!(s);
}

/// Criterion's medians from `target/criterion/*/…/new/estimates.json`.
pub fn criterion(dir: &std::path::Path) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    if let Ok(text) = std::fs::read_to_string(p.join("estimates.json")) {
                        let v: serde_json::Value = match serde_json::from_str(&text) {
                            Ok(v) => v,
                            Err(_) => continue,
                        };
                        if let (Some(ns), Ok(rel)) = (
                            v["median"]["point_estimate"].as_f64(),
                            p.parent().unwrap_or(&p).strip_prefix(dir),
                        ) {
                            out.push((rel.display().to_string(), ns));
                        }
                    }
                } else if p.file_name().is_none_or(|n| n != "base" && n != "report") {
                    stack.push(p);
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The targets, each said met or not with the figures behind it.
pub fn targets(rows: &BTreeMap<Key, Row>, flows: &[u32]) -> String {
    let mut s = String::from("## Targets\n\n");
    let Some(&many) = flows.iter().max() else {
        return s;
    };
    throughput_targets(&mut s, rows, many);
    cost_targets(&mut s, rows, many);
    syn_targets(&mut s, rows);
    let full: u64 = rows
        .iter()
        .filter(|(k, _)| k.2.is_xvs())
        .map(|(_, r)| r.tx_ring_full)
        .sum();
    let _ = writeln!(
        s,
        "- tx_ring_full drops over every xvs run: {full} (the generator offers more than any path delivers, so this is the overloaded case)"
    );
    s
}

/// One target's line: `what` measured `got`, met if at least (`higher`) or at most `goal`.
fn target(s: &mut String, what: &str, got: Option<f64>, goal: f64, higher: bool) {
    let verdict = match got {
        Some(g) if (higher && g >= goal) || (!higher && g <= goal) => "met",
        Some(_) => "not met",
        None => "not measured",
    };
    let _ = writeln!(
        s,
        "- {what}: {} (goal {} {goal:.2}) — **{verdict}**",
        got.map_or("—".into(), |g| format!("{g:.2}")),
        if higher { "≥" } else { "≤" }
    );
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

/// The delivered-pps targets, with `many` flows.
fn throughput_targets(s: &mut String, rows: &BTreeMap<Key, Row>, many: u32) {
    // Each path by its pairs' median ratio to (a), which is 1 for (a) itself.
    let pps = |p: Path| match p {
        Path::Fwd => Some(1.0),
        _ => rows.get(&(false, many, p)).and_then(Row::ratio),
    };
    target(
        s,
        &format!("xvs DR / (a) at {}", flows_label(many)),
        ratio(pps(Path::XvsDr), pps(Path::Fwd)),
        1.00,
        true,
    );
    target(
        s,
        "xvs TUN / (a)",
        ratio(pps(Path::XvsTun), pps(Path::Fwd)),
        0.95,
        true,
    );
    target(
        s,
        "xvs NAT / (a)",
        ratio(pps(Path::XvsNat), pps(Path::Fwd)),
        0.95,
        true,
    );
    for (p, name) in [
        (Path::XvsDr, "xvs DR / kernel ip_forward"),
        (Path::XvsTun, "xvs TUN / kernel ip_forward"),
        (Path::XvsNat, "xvs NAT / kernel ip_forward"),
    ] {
        target(s, name, ratio(pps(p), pps(Path::IpForward)), 1.10, true);
    }
    target(
        s,
        "xvs DR over IPv6 / xvs DR over IPv4",
        ratio(pps(Path::XvsDr6), pps(Path::XvsDr)),
        0.90,
        true,
    );
    target(
        s,
        "without the fast path: xvs DR over IPv6 / over IPv4",
        ratio(pps(Path::XvsDr6Workers), pps(Path::XvsDrWorkers)),
        0.90,
        true,
    );
    target(
        s,
        "without the fast path: xvs DR / bare AF_XDP loop (b)",
        ratio(pps(Path::XvsDrWorkers), pps(Path::Bare)),
        0.97,
        true,
    );
}

/// The director's CPU cost targets (the chain's own cost taken off), with `many` flows.
fn cost_targets(s: &mut String, rows: &BTreeMap<Key, Row>, many: u32) {
    let cost = |p: Path| {
        let d = rows.get(&(false, many, Path::Direct))?.busy_ns;
        Some(rows.get(&(false, many, p))?.busy_ns - d)
    };
    target(
        s,
        "director cost, xvs NAT / nftables DNAT",
        ratio(cost(Path::XvsNat), cost(Path::Nft)),
        2.0 / 3.0,
        false,
    );
    target(
        s,
        "director cost, xvs DR / in-kernel forwarder",
        ratio(cost(Path::XvsDr), cost(Path::Fwd)),
        1.1,
        false,
    );
    target(
        s,
        "director cost, xvs FullNAT / xvs NAT",
        ratio(cost(Path::XvsFnat), cost(Path::XvsNat)),
        1.0,
        false,
    );
}

/// New connections: xvs FullNAT's SYNs per second over nftables DNAT + SNAT's.
fn syn_targets(s: &mut String, rows: &BTreeMap<Key, Row>) {
    let rate = |p: Path| {
        rows.iter()
            .find(|(k, _)| k.0 && k.2 == p)
            .map(|(_, r)| r.pps)
    };
    target(
        s,
        "new connections per second, xvs FullNAT / nftables DNAT + SNAT",
        ratio(rate(Path::XvsFnat), rate(Path::NftMasq)),
        2.0,
        true,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: Path, rep: usize, seq: usize, pps: f64) -> Sample {
        Sample {
            path,
            flows: 1,
            syn: false,
            pps,
            offered: pps,
            busy_cpus: 1.0,
            director_cpus: None,
            first_cpu: 0.0,
            rep,
            seq,
            xvs: Vec::new(),
        }
    }

    #[test]
    fn gigabits_count_the_frame_with_its_fcs() {
        // 1M frames of 1514 bytes (1518 on the wire) a second: 12.144 Gbit/s.
        assert!((gbits(1e6, 1514) - 12.144).abs() < 1e-9);
        assert!((gbits(1e6, 60) - 0.512).abs() < 1e-9);
    }

    #[test]
    fn a_path_is_divided_by_its_neighbouring_forwarder_runs() {
        let samples = vec![
            // Repetition 2, listed out of order: the sequence decides who is adjacent.
            run(Path::Fwd, 2, 3, 200.0),
            run(Path::XvsDr, 2, 2, 150.0),
            run(Path::Fwd, 2, 1, 200.0),
            // Repetition 1: (a) drifts from 100 to 144 around xvs DR.
            run(Path::Fwd, 1, 1, 100.0),
            run(Path::XvsDr, 1, 2, 90.0),
            run(Path::Fwd, 1, 3, 144.0),
            run(Path::Nft, 1, 4, 72.0),
            // A SYN run has no pair.
            Sample {
                syn: true,
                ..run(Path::XvsDr, 1, 5, 10.0)
            },
        ];
        let r = pair_ratios(&samples);
        let dr = &r[&(false, 1, Path::XvsDr)];
        // 90 / √(100 × 144) = 0.75, then 150 / 200.
        assert_eq!(dr.len(), 2);
        assert!(dr.iter().all(|x| (x - 0.75).abs() < 1e-9), "{dr:?}");
        // At the end of its repetition: its one neighbour.
        assert_eq!(r[&(false, 1, Path::Nft)], vec![0.5]);
        assert!(!r.contains_key(&(false, 1, Path::Fwd)));
        let rows = group(&samples);
        assert_eq!(rows[&(false, 1, Path::XvsDr)].ratio(), Some(0.75));
        assert!(rows[&(false, 1, Path::XvsDr)]
            .ratio_text()
            .starts_with("0.75× (0.75–0.75, n=2)"));
    }
}
