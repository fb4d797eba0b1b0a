//! The benchmark's programs (`make bench`), never loaded by xvs itself: the traffic
//! generator (`trafgen.bpf.c`, run with BPF_PROG_RUN in live-frame mode), the counting
//! real server (`sink.bpf.c`) and the in-kernel DR forwarder every path is compared with
//! (`fwd.bpf.c`). Attaching and the generator's ifindex act in the calling thread's
//! network namespace.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::{
    MapCore, MapFlags, MapHandle, Object, ObjectBuilder, OpenObject, ProgramInput, Xdp,
};

use crate::abi::layout as l;
use crate::steer::{map_handle, sum_per_cpu};
use crate::{BpfError, XdpMode};

/// The compiled benchmark programs.
const TRAFGEN_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trafgen.bpf.o"));
const SINK_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sink.bpf.o"));
const FWD_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fwd.bpf.o"));

/// `BPF_F_TEST_XDP_LIVE_FRAMES`: frames the program returns XDP_TX for are sent for real.
const LIVE_FRAMES: u32 = 1 << 1;

fn open(object: &'static str, mem: &[u8]) -> Result<OpenObject, BpfError> {
    ObjectBuilder::default()
        .open_memory(mem)
        .map_err(|source| BpfError::Load { object, source })
}

/// Writes `cfg` as the object's `.rodata` (its one `volatile const`), then loads it.
fn load_with(object: &'static str, mem: &[u8], cfg: &[u8]) -> Result<Object, BpfError> {
    let mut open = open(object, mem)?;
    let mut written = false;
    for mut m in open.maps_mut() {
        if m.name().to_string_lossy().ends_with(".rodata") {
            if let Some(v) = m.initial_value_mut() {
                if v.len() >= cfg.len() {
                    v[..cfg.len()].copy_from_slice(cfg);
                    written = true;
                }
            }
        }
    }
    if !written {
        return Err(BpfError::Missing {
            kind: "map",
            name: ".rodata (the program's settings)",
        });
    }
    open.load()
        .map_err(|source| BpfError::Load { object, source })
}

/// Program `name`'s descriptor, owned (the object stays loaded beside it).
fn prog_fd(object: &'static str, obj: &Object, name: &'static str) -> Result<OwnedFd, BpfError> {
    let prog = obj
        .progs()
        .find(|p| p.name() == name)
        .ok_or(BpfError::Missing {
            kind: "program",
            name,
        })?;
    prog.as_fd()
        .try_clone_to_owned()
        .map_err(|e| BpfError::Load {
            object,
            source: e.into(),
        })
}

/// An XDP program attached natively to one interface until dropped.
struct Attached<'o> {
    xdp: Xdp<'o>,
    ifindex: i32,
}

impl<'o> Attached<'o> {
    fn new(fd: &'o OwnedFd, ifindex: u32) -> Result<Self, BpfError> {
        let xdp = Xdp::new(fd.as_fd());
        let ifindex = ifindex as i32;
        xdp.attach(ifindex, XdpMode::Native.flags())
            .map_err(|source| BpfError::Attach {
                ifindex,
                mode: "native",
                source,
            })?;
        Ok(Attached { xdp, ifindex })
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        // The interface may be gone already (its namespace deleted): nothing to undo then.
        let _ = self.xdp.detach(self.ifindex, XdpMode::Native.flags());
    }
}

/// The traffic generator: `send` transmits `repeat` frames built from a template.
pub struct TrafGen {
    obj: Object,
}

impl TrafGen {
    /// Cycles through `flows` flows (source addresses from `saddr_base`, then ports).
    pub fn load(flows: u32, saddr_base: Ipv4Addr) -> Result<TrafGen, BpfError> {
        let mut cfg = [0u8; l::TRAFGEN_CONFIG_SIZE];
        cfg[l::TRAFGEN_CONFIG_FLOWS..l::TRAFGEN_CONFIG_FLOWS + 4]
            .copy_from_slice(&flows.max(1).to_ne_bytes());
        cfg[l::TRAFGEN_CONFIG_SADDR_BASE..l::TRAFGEN_CONFIG_SADDR_BASE + 4]
            .copy_from_slice(&u32::from(saddr_base).to_ne_bytes());
        Ok(TrafGen {
            obj: load_with("trafgen.bpf.o", TRAFGEN_OBJECT, &cfg)?,
        })
    }

    fn program(&self) -> Result<libbpf_rs::ProgramMut<'_>, BpfError> {
        self.obj
            .progs_mut()
            .find(|p| p.name() == "xvs_trafgen")
            .ok_or(BpfError::Missing {
                kind: "program",
                name: "xvs_trafgen",
            })
    }

    /// Sends `repeat` frames out of `ifindex` (in the calling thread's namespace), each
    /// `template` rewritten for the next flow. Blocks until they are sent.
    pub fn send(&self, ifindex: u32, template: &[u8], repeat: u32) -> Result<(), BpfError> {
        let prog = self.program()?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex. The kernel wants data_end = the frame's length; live frames
        // leave by the ingress interface.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(template.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let input = ProgramInput {
            context_in: Some(&mut ctx),
            data_in: Some(template),
            flags: LIVE_FRAMES,
            repeat,
            ..Default::default()
        };
        prog.test_run(input).map(|_| ()).map_err(BpfError::map(
            "run (BPF_PROG_RUN, live frames)",
            "xvs_trafgen",
        ))
    }

    /// One run without live frames (BPF_PROG_TEST_RUN): the frame the generator would
    /// send next, in `out`; returns the XDP action. For tests.
    pub fn program_run(&self, template: &[u8], out: &mut [u8]) -> Result<u32, BpfError> {
        let prog = self.program()?;
        let input = ProgramInput {
            data_in: Some(template),
            data_out: Some(out),
            ..Default::default()
        };
        prog.test_run(input)
            .map(|o| o.return_value)
            .map_err(BpfError::map("run (BPF_PROG_TEST_RUN)", "xvs_trafgen"))
    }
}

/// What reached the sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCount {
    pub packets: u64,
    pub bytes: u64,
}

/// The counting real server: attached to an interface, it counts and drops every IPv4
/// frame, and every IPv6 one but ICMPv6 (neighbour discovery goes on to the kernel).
pub struct Sink {
    _obj: Object,
    fd: OwnedFd,
    counts: MapHandle,
    gap: MapHandle,
}

/// The longest time between two frames at the sink (`Sink::load_gaps`), and when it
/// ended (CLOCK_MONOTONIC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkGap {
    pub longest_ns: u64,
    pub ended_at_ns: u64,
}

impl Sink {
    pub fn load() -> Result<Sink, BpfError> {
        Self::load_prog("xvs_sink")
    }

    /// As `load`, keeping the longest time between two frames too (`gap`).
    pub fn load_gaps() -> Result<Sink, BpfError> {
        Self::load_prog("xvs_sink_gaps")
    }

    fn load_prog(prog: &'static str) -> Result<Sink, BpfError> {
        let obj = open("sink.bpf.o", SINK_OBJECT)?
            .load()
            .map_err(|source| BpfError::Load {
                object: "sink.bpf.o",
                source,
            })?;
        Ok(Sink {
            counts: map_handle(&obj, "xvs_sink_counts")?,
            gap: map_handle(&obj, "xvs_sink_gap")?,
            fd: prog_fd("sink.bpf.o", &obj, prog)?,
            _obj: obj,
        })
    }

    /// Forgets the longest gap so far (the start of a stream is no gap of interest).
    pub fn reset_gap(&self) -> Result<(), BpfError> {
        // last_ns kept (a frame in between moves it by microseconds), the rest zero.
        let [last, _, _] = self.read_gap()?;
        let mut value = [0u8; 24];
        value[..8].copy_from_slice(&last.to_ne_bytes());
        self.gap
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(BpfError::map("write", "xvs_sink_gap"))
    }

    /// The longest gap so far (zero with `load`'s program).
    pub fn gap(&self) -> Result<SinkGap, BpfError> {
        let [_, longest_ns, ended_at_ns] = self.read_gap()?;
        Ok(SinkGap {
            longest_ns,
            ended_at_ns,
        })
    }

    /// `struct xvs_sink_gap`'s three words: last_ns, max_gap_ns, max_at_ns.
    fn read_gap(&self) -> Result<[u64; 3], BpfError> {
        let raw = self
            .gap
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(BpfError::map("read", "xvs_sink_gap"))?
            .unwrap_or_default();
        let word = |i: usize| {
            raw.get(i * 8..i * 8 + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_ne_bytes)
        };
        Ok([word(0), word(1), word(2)])
    }

    /// Attaches to `ifindex` (the calling thread's namespace) until the guard drops.
    pub fn attach(&self, ifindex: u32) -> Result<impl Drop + '_, BpfError> {
        Attached::new(&self.fd, ifindex)
    }

    /// Summed over the CPUs, now.
    pub fn count(&self) -> Result<SinkCount, BpfError> {
        // The same two words as a NAT-out slot: read them the same way.
        let mut n = crate::abi::NatOut::default();
        sum_per_cpu(&self.counts, "xvs_sink_counts", 0, |raw| n.add_raw(raw))?;
        Ok(SinkCount {
            packets: n.packets,
            bytes: n.bytes,
        })
    }
}

const _: () = assert!(l::SINK_COUNT_SIZE == 16);
const _: () = assert!(l::SINK_GAP_SIZE == 24);

/// The in-kernel DR forwarder: a TCP or UDP packet to `vip` leaves again by XDP_TX with
/// the real server's MAC.
pub struct Forwarder {
    obj: Object,
    fd: OwnedFd,
}

impl Forwarder {
    pub fn load(vip: Ipv4Addr, rs_mac: [u8; 6], own_mac: [u8; 6]) -> Result<Forwarder, BpfError> {
        let mut cfg = [0u8; l::FWD_CONFIG_SIZE];
        cfg[l::FWD_CONFIG_VIP..l::FWD_CONFIG_VIP + 4].copy_from_slice(&vip.octets());
        cfg[l::FWD_CONFIG_RS_MAC..l::FWD_CONFIG_RS_MAC + 6].copy_from_slice(&rs_mac);
        cfg[l::FWD_CONFIG_OWN_MAC..l::FWD_CONFIG_OWN_MAC + 6].copy_from_slice(&own_mac);
        let obj = load_with("fwd.bpf.o", FWD_OBJECT, &cfg)?;
        Ok(Forwarder {
            fd: prog_fd("fwd.bpf.o", &obj, "xvs_fwd")?,
            obj,
        })
    }

    /// Attaches to `ifindex` (the calling thread's namespace) until the guard drops.
    pub fn attach(&self, ifindex: u32) -> Result<impl Drop + '_, BpfError> {
        Attached::new(&self.fd, ifindex)
    }

    /// The loaded program, for BPF_PROG_TEST_RUN.
    pub fn program(&self) -> Option<libbpf_rs::ProgramMut<'_>> {
        self.obj.progs_mut().find(|p| p.name() == "xvs_fwd")
    }
}

/// A frame for the generator: Ethernet, IPv4 (no options), and UDP with a payload or
/// a bare TCP SYN, padded to 60 bytes (64 on the wire with the FCS). Checksums are the
/// generator's to write.
pub fn template(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    dst: Ipv4Addr,
    dport: u16,
    syn: bool,
) -> Vec<u8> {
    let l4 = if syn { 20 } else { 8 + 18 };
    let ip_len = 20 + l4;
    let mut f = vec![0u8; (14 + ip_len).max(60)];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = if syn { 6 } else { 17 };
    ip[16..20].copy_from_slice(&dst.octets());
    transport(&mut ip[20..], dport, syn, l4);
    f
}

/// The template's TCP SYN or UDP header (`l4` bytes with the payload), source port and
/// checksum left to the generator.
fn transport(t: &mut [u8], dport: u16, syn: bool, l4: usize) {
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    if syn {
        t[4..8].copy_from_slice(&1u32.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = 0x02; // SYN
        t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    } else {
        t[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
    }
}

/// The IPv6 benchmark source: the generator writes the last 32 bits of it (the base and
/// flow number, as IPv4's address).
pub const TEMPLATE6_SOURCE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0);

/// As `template`, over IPv6 (no extension headers): Ethernet, IPv6, and a UDP header
/// without payload or a bare TCP SYN (62 and 74 bytes). Checksums are the generator's.
pub fn template6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    dst: Ipv6Addr,
    dport: u16,
    syn: bool,
) -> Vec<u8> {
    let l4 = if syn { 20 } else { 8 };
    let mut f = vec![0u8; 14 + 40 + l4];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
    ip[6] = if syn { 6 } else { 17 };
    ip[7] = 64;
    ip[8..24].copy_from_slice(&TEMPLATE6_SOURCE.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    transport(&mut ip[40..], dport, syn, l4);
    f
}
