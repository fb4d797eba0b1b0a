//! The parts of the chain that run inside a namespace, each as `xvs-pps <role>` under
//! `ip netns exec`: the generator, the sink, the in-kernel forwarder and the bare AF_XDP
//! loop. A role that lasts prints `ready` once set up and ends when its standard input
//! closes, undoing what it attached.

use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xvs_bpf::abi::SvcKey;
use xvs_bpf::bench::{template, template6, Forwarder, Sink, TrafGen};

use crate::packet_gen::PacketGen;
use xvs_bpf::{AttachMode, Steer};
use xvs_dataplane::xsk::{Xsk, XskConfig};

/// Frames one BPF_PROG_RUN call sends; the generator checks the clock between calls.
const GEN_CHUNK: u32 = 1 << 18;

pub fn ifindex(dev: &str) -> Result<u32> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .with_context(|| format!("no interface {dev} here"))?;
    Ok(s.trim().parse()?)
}

pub fn mac_of(dev: &str) -> Result<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{dev}/address"))
        .with_context(|| format!("no interface {dev} here"))?;
    parse_mac(s.trim())
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{s:?} is not a MAC address"))?;
    parts
        .try_into()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a MAC address"))
}

fn ready() {
    println!("ready");
    let _ = std::io::stdout().flush();
}

/// Blocks until standard input closes (the harness is done with this role).
fn wait_for_eof() {
    let mut line = String::new();
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    while lock.read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
}

/// How frames leave the client: BPF_PROG_RUN's live frames where the kernel allows them,
/// else an AF_PACKET socket (`packet_gen.rs`).
enum Sender {
    Live { gen: TrafGen, frame: Vec<u8> },
    Packet(PacketGen),
}

impl Sender {
    fn open(ifindex: u32, frame: Vec<u8>, flows: u32) -> Result<Sender> {
        let base = Ipv4Addr::new(10, 128, 0, 0);
        let gen = TrafGen::load(flows, base)?;
        match gen.send(ifindex, &frame, 1) {
            Ok(()) => Ok(Sender::Live { gen, frame }),
            Err(e) => {
                eprintln!("generator: live frames refused ({e}): sending from an AF_PACKET socket");
                Ok(Sender::Packet(PacketGen::open(
                    ifindex,
                    &frame,
                    flows,
                    u32::from(base),
                )?))
            }
        }
    }

    fn send(&mut self, ifindex: u32, n: u64) -> Result<()> {
        match self {
            Sender::Live { gen, frame } => Ok(gen.send(ifindex, frame, n as u32)?),
            Sender::Packet(p) => p.send(n),
        }
    }
}

/// Sends frames to `dst_mac` for `secs` seconds (or until `count` are sent), as fast as
/// it can or, with `pps`, at that rate (in bursts every `tick`, 2 ms by default); prints
/// how many.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    dev: &str,
    dst_mac: [u8; 6],
    vip: std::net::IpAddr,
    port: u16,
    flows: u32,
    syn: bool,
    secs: f64,
    pps: Option<u64>,
    count: Option<u64>,
    tick: Option<Duration>,
    realtime: bool,
    size: Option<usize>,
) -> Result<()> {
    let tick = tick.unwrap_or(Duration::from_millis(2));
    if realtime {
        // SCHED_FIFO: a paced generator that the director's processes, on the same
        // CPUs, do not hold up (it sleeps between bursts, so it holds up nothing).
        xvs_dataplane::sys::set_fifo(10).context("SCHED_FIFO for the generator")?;
    }
    let ifindex = ifindex(dev)?;
    let mut frame = match vip {
        std::net::IpAddr::V4(v) => template(mac_of(dev)?, dst_mac, v, port, syn),
        std::net::IpAddr::V6(v) => template6(mac_of(dev)?, dst_mac, v, port, syn),
    };
    if let Some(n) = size {
        pad_udp(&mut frame, n)?;
    }
    let mut gen = Sender::open(ifindex, frame, flows)?;
    let t0 = Instant::now();
    // The longest time between two bursts: the generator's own stalls.
    let (mut last_burst, mut stall) = (t0, Duration::ZERO);
    // The probe that chose the sender sent one frame when live frames were taken.
    let mut sent = u64::from(matches!(gen, Sender::Live { .. }));
    let count = count.unwrap_or(u64::MAX);
    while t0.elapsed().as_secs_f64() < secs && sent < count {
        match pps {
            None => {
                let n = u64::from(GEN_CHUNK).min(count - sent);
                gen.send(ifindex, n)?;
                sent += n;
            }
            Some(rate) => {
                // What is due by now, in bursts of at most 10 ms' worth (one BPF_PROG_RUN
                // call costs too much to make per frame), so a stall is not made up for
                // with a flood.
                let due = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
                let burst = due
                    .saturating_sub(sent)
                    .min(rate / 100 + 1)
                    .min(count - sent);
                if burst > 0 {
                    gen.send(ifindex, burst)?;
                    sent += burst;
                    let now = Instant::now();
                    if sent > burst {
                        stall = stall.max(now - last_burst);
                    }
                    last_burst = now;
                }
                std::thread::sleep(tick);
            }
        }
    }
    println!(
        "sent {sent} in {:.3} s longest_pause_us {}",
        t0.elapsed().as_secs_f64(),
        stall.as_micros()
    );
    Ok(())
}

/// The smallest frame the generator sends: 60 bytes, 64 on the wire with the FCS.
pub const MIN_FRAME: usize = 60;
/// The largest: a 1500-byte IP packet in an Ethernet frame.
pub const MAX_FRAME: usize = 1514;

/// Grows an IPv4 UDP template (`xvs_bpf::bench::template`) to `size` bytes of frame,
/// the UDP payload made longer and both lengths with it (the generator writes the
/// checksums).
pub fn pad_udp(frame: &mut Vec<u8>, size: usize) -> Result<()> {
    const ETH: usize = 14;
    if !(MIN_FRAME..=MAX_FRAME).contains(&size) {
        anyhow::bail!("--size {size}: frames are {MIN_FRAME} to {MAX_FRAME} bytes");
    }
    if frame.get(12..14) != Some(&[0x08, 0x00]) || frame.get(ETH + 9) != Some(&17) {
        anyhow::bail!("--size applies to IPv4 UDP frames only");
    }
    frame.resize(size, 0);
    let ip_len = (size - ETH) as u16;
    frame[ETH + 2..ETH + 4].copy_from_slice(&ip_len.to_be_bytes());
    frame[ETH + 24..ETH + 26].copy_from_slice(&(ip_len - 20).to_be_bytes());
    Ok(())
}

/// Counts what reaches `dev` over `secs` seconds after `warmup`; prints packets and the
/// window's length.
pub fn sink(dev: &str, warmup: f64, secs: f64) -> Result<()> {
    let sink = Sink::load()?;
    let _attached = sink.attach(ifindex(dev)?)?;
    ready();
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let (c0, t0) = (sink.count()?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (c1, t1) = (sink.count()?, Instant::now());
    println!(
        "delivered {} in {:.6} s",
        c1.packets - c0.packets,
        (t1 - t0).as_secs_f64()
    );
    Ok(())
}

/// Counts what reaches `dev` for `secs` seconds, keeping the longest time between two
/// frames from `from` seconds on (in the sink's program: no reader's scheduling enters
/// it); prints the packets, that gap and when it ended (CLOCK_MONOTONIC).
pub fn sink_gaps(dev: &str, from: f64, secs: f64) -> Result<()> {
    let sink = Sink::load_gaps()?;
    let _attached = sink.attach(ifindex(dev)?)?;
    ready();
    std::thread::sleep(Duration::from_secs_f64(from));
    sink.reset_gap()?;
    std::thread::sleep(Duration::from_secs_f64((secs - from).max(0.0)));
    let (n, gap) = (sink.count()?, sink.gap()?);
    println!(
        "delivered {} longest_gap_us {} ended_at_ns {}",
        n.packets,
        gap.longest_ns / 1000,
        gap.ended_at_ns
    );
    Ok(())
}

/// (a): the in-kernel XDP_TX forwarder doing DR's rewrite, until standard input closes.
pub fn forward(dev: &str, vip: Ipv4Addr, rs_mac: [u8; 6]) -> Result<()> {
    let fwd = Forwarder::load(vip, rs_mac, mac_of(dev)?)?;
    let _attached = fwd.attach(ifindex(dev)?)?;
    ready();
    wait_for_eof();
    Ok(())
}

/// (b): a bare AF_XDP loop with xvs's own socket settings and steering program: each
/// frame to the VIP gets the real server's MAC and goes back out; nothing else is done.
pub fn bare(dev: &str, vip: Ipv4Addr, port: u16, rs_mac: [u8; 6]) -> Result<()> {
    const BATCH: u32 = 64;
    let ifindex = ifindex(dev)?;
    let own = mac_of(dev)?;
    let mut steer = Steer::load()?;
    steer.set_services(&[
        (SvcKey::new(vip, port, 17), 0),
        (SvcKey::new(vip, port, 6), 0),
    ])?;
    steer.set_local_mac(ifindex, own)?;
    steer.attach(ifindex as i32, AttachMode::Native)?;
    let mut xsk = Xsk::open(ifindex, 0, &XskConfig::default())?;
    steer.register_xsk(0, xsk.fd())?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            wait_for_eof();
            stop.store(true, Ordering::Relaxed);
        });
    }
    ready();
    let (mut rx_total, mut kicks) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        // Sent frames back to the fill ring.
        let done = xsk.comp.peek(u32::MAX);
        xsk.fill.free(done);
        let mut take = 0;
        while let Some(addr) = xsk.comp.get(take) {
            if !xsk.fill.write(take, xsk.umem.frame_base(addr)) {
                break;
            }
            take += 1;
        }
        xsk.comp.release(take);
        xsk.fill.submit(take);
        let room = xsk.tx.free(BATCH).min(BATCH);
        let n = xsk.rx.peek(room);
        if n == 0 {
            if xsk.tx.pending() > 0 {
                xsk.kick_tx();
                kicks += 1;
            } else {
                xsk.wait_rx(10);
            }
            continue;
        }
        let mut sent = 0;
        while sent < n {
            let Some(desc) = xsk.rx.get(sent) else { break };
            if let Some(f) = xsk.umem.packet_mut(desc.addr, desc.len) {
                if f.len() >= 12 {
                    f[..6].copy_from_slice(&rs_mac);
                    f[6..12].copy_from_slice(&own);
                }
            }
            if !xsk.tx.write(sent, desc) {
                break;
            }
            sent += 1;
        }
        // Never short (n is within the TX room); what is not sent is taken again next.
        xsk.rx.release(sent);
        xsk.tx.submit(sent);
        rx_total += u64::from(sent);
        // Copy mode sends a bounded batch per kick: as the worker, kick while it helps.
        kicks += u64::from(xsk.drain_tx(64));
    }
    steer.detach();
    eprintln!("bare loop: {rx_total} frames, {kicks} kicks");
    Ok(())
}

/// Parses `--name value` pairs of a role's command line.
pub struct Args(Vec<String>);

impl Args {
    pub fn new(v: Vec<String>) -> Args {
        Args(v)
    }

    pub fn get(&self, name: &str) -> Result<&str> {
        let flag = format!("--{name}");
        match self.0.iter().position(|a| *a == flag) {
            Some(i) => self
                .0
                .get(i + 1)
                .map(String::as_str)
                .with_context(|| format!("{flag} needs a value")),
            None => bail!("{flag} is missing"),
        }
    }

    /// An optional `--name value`, parsed.
    pub fn opt<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        if !self.has(name) {
            return Ok(None);
        }
        let v = self.get(name)?;
        v.parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("--{name} {v:?}: not a valid value"))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| *a == format!("--{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A padded frame is what etherparse reads as one UDP datagram of the whole size.
    #[test]
    fn padded_frames_are_one_whole_datagram() {
        use etherparse::{NetSlice, SlicedPacket, TransportSlice};
        let mac = [2, 0, 0, 0, 0, 1];
        for size in [MIN_FRAME, 1000, MAX_FRAME] {
            let mut f = template(mac, mac, "10.0.0.100".parse().unwrap(), 80, false);
            pad_udp(&mut f, size).unwrap();
            assert_eq!(f.len(), size);
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!("not IPv4")
            };
            assert_eq!(usize::from(ip.header().total_len()), size - 14);
            let Some(TransportSlice::Udp(u)) = p.transport else {
                panic!("not UDP")
            };
            assert_eq!(usize::from(u.length()), size - 34);
            assert_eq!(u.payload().len(), size - 42);
        }
    }

    #[test]
    fn sizes_out_of_range_or_other_frames_are_refused() {
        let mac = [2, 0, 0, 0, 0, 1];
        let mut f = template(mac, mac, "10.0.0.100".parse().unwrap(), 80, false);
        assert!(pad_udp(&mut f.clone(), MAX_FRAME + 1).is_err());
        assert!(pad_udp(&mut f, MIN_FRAME - 1).is_err());
        let mut syn = template(mac, mac, "10.0.0.100".parse().unwrap(), 80, true);
        assert!(pad_udp(&mut syn, 1000).is_err());
    }
}
