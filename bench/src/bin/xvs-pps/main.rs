//! `xvs-pps`: the side-by-side packet-rate harness of `make bench`. `xvs-pps run` builds
//! a namespace chain (client → bridge → director → real server) for each path through
//! the director — the in-kernel XDP_TX forwarder, a bare AF_XDP loop, ip_forward,
//! nftables DNAT, xvs DR/TUN/NAT — drives it with a live-frame BPF generator well past
//! its capacity, counts what reaches a BPF sink, measures the CPU it took, repeats, and
//! writes the medians to `bench/RESULTS.md`. `xvs-pps takeover` adds what a planned
//! handover costs a paced stream (`takeover.rs`). The other subcommands are the roles
//! they run inside the namespaces.

mod chain;
mod measure;
mod packet_gen;
mod results;
mod roles;
mod takeover;

use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};

use chain::Path;
use roles::{parse_mac, Args};

const USAGE: &str = "usage: xvs-pps run [--secs S] [--warmup S] [--reps N] [--flows 1,1048576] [--paths fwd,bare,...] [--syn-flows N] [--size BYTES] [--xvs-extra YAML] [--out FILE]
       xvs-pps takeover [--flows N] [--pps N] [--reps N] [--out FILE]
       xvs-pps gen|sink|sink-gaps|fwd|bare ... (the roles they start inside the namespaces)";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xvs-pps: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        bail!("{USAGE}");
    };
    let a = Args::new(argv[1..].to_vec());
    let ip = |name: &str| -> Result<Ipv4Addr> {
        a.get(name)?
            .parse()
            .with_context(|| format!("--{name} is not an IPv4 address"))
    };
    match cmd.as_str() {
        "run" => run(&a),
        "takeover" => takeover::run(&a),
        "sink-gaps" => roles::sink_gaps(
            a.get("dev")?,
            a.get("from")?.parse()?,
            a.get("secs")?.parse()?,
        ),
        "gen" => roles::generate(
            a.get("dev")?,
            parse_mac(a.get("dst-mac")?)?,
            a.get("vip")?
                .parse()
                .context("--vip is not an IP address")?,
            a.get("port")?.parse()?,
            a.get("flows")?.parse()?,
            a.has("syn"),
            a.get("secs")?.parse()?,
            a.opt("pps")?,
            a.opt("count")?,
            a.opt("tick-us")?.map(std::time::Duration::from_micros),
            a.has("rt"),
            a.opt("size")?,
        ),
        "sink" => roles::sink(
            a.get("dev")?,
            a.get("warmup")?.parse()?,
            a.get("secs")?.parse()?,
        ),
        "fwd" => roles::forward(a.get("dev")?, ip("vip")?, parse_mac(a.get("rs-mac")?)?),
        "bare" => roles::bare(
            a.get("dev")?,
            ip("vip")?,
            a.get("port")?.parse()?,
            parse_mac(a.get("rs-mac")?)?,
        ),
        _ => bail!("{USAGE}"),
    }
}

/// The host's conntrack limit, raised for the run so that nftables can track a million
/// flows, and put back afterwards (also on error).
struct ConntrackMax(Option<String>);

impl ConntrackMax {
    const PATH: &'static str = "/proc/sys/net/netfilter/nf_conntrack_max";

    fn raise(to: u64) -> ConntrackMax {
        let old = std::fs::read_to_string(Self::PATH).ok();
        if let Some(o) = &old {
            if o.trim().parse::<u64>().is_ok_and(|v| v < to) {
                let _ = std::fs::write(Self::PATH, to.to_string());
            }
        }
        ConntrackMax(old)
    }
}

impl Drop for ConntrackMax {
    fn drop(&mut self) {
        if let Some(o) = &self.0 {
            let _ = std::fs::write(Self::PATH, o.trim());
        }
    }
}

fn machine() -> String {
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "Kernel {}, {} CPUs ({}), {} memory; {}",
        sh("uname -r"),
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'"),
        sh("free -h | awk '/Mem:/ {print $2}'"),
        sh("date -u +%Y-%m-%dT%H:%MZ"),
    )
}

fn run(a: &Args) -> Result<()> {
    let num = |name: &str, default: f64| -> Result<f64> {
        match a.get(name) {
            Ok(v) => Ok(v.parse()?),
            Err(_) => Ok(default),
        }
    };
    let w = measure::Window {
        warmup: num("warmup", 1.0)?,
        secs: num("secs", 3.0)?,
        xvs_extra: a
            .get("xvs-extra")
            .map(|e| format!("{}\n", e.replace("\\n", "\n")))
            .unwrap_or_default(),
        size: a.opt("size")?,
    };
    let frame = w.size.unwrap_or(roles::MIN_FRAME);
    let reps = num("reps", 3.0)? as usize;
    let flows: Vec<u32> = match a.get("flows") {
        Ok(v) => v.split(',').map(|f| f.parse()).collect::<Result<_, _>>()?,
        Err(_) => vec![1, 1 << 20],
    };
    let paths: Vec<Path> = match a.get("paths") {
        Ok(v) => v
            .split(',')
            .map(|p| Path::parse(p).with_context(|| format!("no path {p:?}")))
            .collect::<Result<_>>()?,
        Err(_) => Path::ALL.to_vec(),
    };
    let syn_flows: u32 = num("syn-flows", f64::from(1u32 << 24))? as u32;
    let out = a.get("out").unwrap_or("bench/RESULTS.md").to_string();
    let _ct = ConntrackMax::raise(u64::from(flows.iter().copied().max().unwrap_or(1)) * 2);

    let mut samples = Vec::new();
    let syn_paths: Vec<Path> = [
        Path::Direct,
        Path::XvsDr,
        Path::XvsNat,
        Path::XvsFnat,
        Path::Nft,
        Path::NftMasq,
    ]
    .into_iter()
    .filter(|p| paths.contains(p))
    .collect();
    // Repetition outermost; within one, for each flow count, (a) runs between every two
    // paths (a, P1, a, P2, …, a), and each path's ratio is taken to its two neighbours
    // (`results::pair_ratios`), so the VM's drift over minutes cancels. The paths'
    // order turns by one each repetition.
    for rep in 1..=reps {
        let mut seq = 0;
        let others: Vec<Path> = paths.iter().copied().filter(|p| *p != Path::Fwd).collect();
        let turn = if others.is_empty() {
            0
        } else {
            (rep - 1) % others.len()
        };
        let order: Vec<Path> = others[turn..]
            .iter()
            .chain(&others[..turn])
            .copied()
            .collect();
        let jobs = flows
            .iter()
            .flat_map(|f| {
                let mut v = vec![(Path::Fwd, *f, false)];
                for p in &order {
                    v.push((*p, *f, false));
                    v.push((Path::Fwd, *f, false));
                }
                v
            })
            .chain(syn_paths.iter().map(|p| (*p, syn_flows, true)));
        for (p, f, syn) in jobs {
            seq += 1;
            let s = measure::run(p, f, syn, &w, (rep, seq))
                .with_context(|| format!("{} with {f} flows", p.short()))?;
            eprintln!(
                "rep {rep}/{reps} {:<8} {:>8} flows{}: {:>9.0} pps delivered of {:>9.0} offered, {:.2} CPUs busy, first CPU {:.0} ns/packet{}",
                p.short(),
                f,
                if syn { " (SYN)" } else { "" },
                s.pps,
                s.offered,
                s.busy_cpus,
                s.first_cpu_ns(),
                s.director_ns().map_or(String::new(), |d| format!(", process {d:.0} ns/packet"))
            );
            samples.push(s);
        }
    }
    let rows = results::group(&samples);
    let crit = results::criterion(std::path::Path::new("target/criterion"));
    let header = format!(
        "# xvs benchmark results\n\nWritten by `make bench` (`xvs-pps run --secs {secs} --warmup {warmup} --reps {reps}`{size}{paths}). {machine}.\n\nThe chain: client → bridge → director → real server, veth pairs in network namespaces on one host; the generator (BPF_PROG_RUN's live frames, or an AF_PACKET socket where the kernel refuses them: see `Offered` below, and docs/design.md) sends UDP from the client ({wire} bytes a frame on the wire, with the FCS), past what any path delivers when it can; a BPF sink counts what reaches the real server. The generator, the bridge, the director and the sink share the machine's CPUs, so the ratios are the chain's, not the director's alone: the director's own cost per packet is estimated beside them. Each measurement has a fresh chain and a warm-up long enough for every flow to reach the director twice, as xvs's fast path takes a UDP flow at its second packet (1 s, or 2 × flows / 120k s, at most 20 s).\n\n**Placement, the same for every path:** the generator and every packet of the chain — the bridge, the director's kernel or XDP work (the kernel's forwarding and nftables, the forwarder (a), xvs's steering program and fast path), the sink — on the last CPU, by RPS on every veth of the chain (a veth handles a frame on the CPU that sent it, so what an AF_XDP worker sends would otherwise carry the chain over to the worker's CPU, a CPU the kernel paths would not get). An AF_XDP path's user-space loop (xvs's workers, `cpus: [0]`; the bare loop) runs on the first CPU: the half a kernel path does not have. (Both halves on one CPU was tried: a worker sharing its CPU with the softirq that feeds it fell to a tenth of its rate.) The first CPU's busy time per packet is the AF_XDP loop's own cost; the kernel paths leave it idle.\n\n**Pairs:** within each of {reps} repetitions, (a) runs between every two paths (a, P1, a, P2, …, a; the paths' order turns each repetition), and a path's ratio is its rate over the geometric mean of its two neighbouring (a) runs: min / median / max over the repetitions. The figures of one run vary by ±10 % or more on this VM; a ratio to an (a) run made minutes apart would carry that drift.\n",
        secs = w.secs,
        warmup = w.warmup,
        // Named: positional arguments once went to the wrong places here.
        size = match a.get("size") {
            Ok(n) => format!(" `--size {n}`"),
            Err(_) => String::new(),
        },
        paths = match a.get("paths") {
            Ok(p) => format!(" `--paths {p}`"),
            Err(_) => String::new(),
        },
        machine = machine(),
        wire = frame + 4,
    );
    let text = results::render(&rows, &crit, &header, frame) + &results::targets(&rows, &flows);
    print!("{text}");
    std::fs::write(&out, &text).with_context(|| format!("writing {out}"))?;
    eprintln!("written to {out}");
    Ok(())
}
