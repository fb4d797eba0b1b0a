//! The flow-state file: a worker's tables that outlive the process. What one pipeline
//! leaves, the next one over the same file recovers; a file written for anything else
//! is refused with its reason and never read as flows.

#[allow(dead_code)] // only `rr_service` is used here
mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use xvs_dataplane::fixtures::{self, CLIENT, DIRECTOR_MAC, VIP, VIP_TCP_PORT};
use xvs_dataplane::flow::table::{FLAG_NAT_KNOWN, FLAG_OFFLOADED};
use xvs_dataplane::flow::{FileSpec, FlowFile, Opened, Refusal};
use xvs_dataplane::pipeline::Prefetched;
use xvs_dataplane::snapshot::MAX_DESTS;
use xvs_dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use xvs_dataplane::*;

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("xvs-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn file(&self) -> PathBuf {
        self.0.join("q0.flows")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec() -> FileSpec {
    FileSpec {
        capacity: 4096,
        seed: 77,
        ifindex: 5,
        queue: 0,
        queues: 2,
    }
}

/// Another service on the VIP, over real server 1 only.
const OTHER_PORT: u16 = 8443;

fn world() -> Snapshot {
    let dest = |i: u8| {
        Some(Dest {
            addr: Ipv4Addr::new(10, 0, 0, 11 + i).into(),
            port: 0,
            weight: 1,
            mac: Some([0x02, 0, 0, 0, 1, i]),
        })
    };
    let svc = common::rr_service(VIP_TCP_PORT, 6, Forwarding::Dr);
    let mut other = common::rr_service(OTHER_PORT, 6, Forwarding::Dr);
    other.dests = vec![1];
    let mut snap =
        Snapshot::new(3, DIRECTOR_MAC, vec![svc, other], vec![dest(0), dest(1)]).unwrap();
    snap.local_addr = Ipv4Addr::new(10, 0, 0, 2);
    snap.mtu = 1500;
    snap
}

fn pipeline_in(file: Arc<FlowFile>) -> Pipeline {
    let cfg = PipelineConfig {
        flow_capacity: 4096,
        ..PipelineConfig::default()
    };
    Pipeline::in_file(&cfg, Arc::new(WorkerCounters::new(MAX_DESTS)), Some(file))
}

fn send(p: &mut Pipeline, snap: &Snapshot, sport: u16, flags: u8, now: u32) -> Verdict {
    p.prepare(snap);
    let frame = fixtures::tcp_frame(CLIENT, sport, VIP, VIP_TCP_PORT, flags, b"");
    let mut buf = vec![0u8; 256 + frame.len()];
    buf[256..].copy_from_slice(&frame);
    let mut pkt = xvs_dataplane::packet::Packet::new(&mut buf, 256, frame.len()).unwrap();
    p.process_packet(snap, now, &mut pkt, Prefetched::NONE)
}

fn open(path: &std::path::Path, spec: &FileSpec) -> (Arc<FlowFile>, Opened) {
    let (f, opened) = FlowFile::open(path, spec).unwrap();
    (Arc::new(f), opened)
}

#[test]
fn a_pipelines_connections_are_recovered_by_the_next_one_over_the_same_file() {
    let dir = Dir::new("recover");
    let snap = world();
    let (file, opened) = open(&dir.file(), &spec());
    assert_eq!(opened, Opened::Fresh);
    let (seed, epoch) = (file.seed(), file.epoch_ns());
    let mut p = pipeline_in(file);
    for sport in 40000..40010 {
        assert_eq!(send(&mut p, &snap, sport, FLAG_SYN, 10), Verdict::Tx);
        assert_eq!(send(&mut p, &snap, sport, FLAG_ACK, 10), Verdict::Tx);
    }
    // An unknown connection's ACK is not taken for one (only a SYN opens a flow).
    assert_ne!(send(&mut p, &snap, 50000, FLAG_ACK, 10), Verdict::Tx);
    drop(p);

    let (file, opened) = open(&dir.file(), &spec());
    assert_eq!(opened, Opened::Recovered);
    assert_eq!(
        (file.seed(), file.epoch_ns()),
        (seed, epoch),
        "the clock and hash carry on"
    );
    let mut p = pipeline_in(file);
    let r = p.recover(&world(), 20, false);
    assert_eq!((r.flows, r.cleared), (10, 0));
    let c = &p.counters().dests[0];
    assert_eq!((c.active.get(), c.inactive.get()), (10, 0));
    assert_eq!(p.counters().flows_recovered.get(), 10);
    for sport in 40000..40010 {
        assert_eq!(
            send(&mut p, &snap, sport, FLAG_ACK, 20),
            Verdict::Tx,
            "{sport}"
        );
    }
    assert_eq!(p.counters().flows_created.get(), 0, "none opened anew");
}

/// An entry's bytes as the IPv4 table lays them out (`Flow<FlowKey>`, 32 bytes).
fn entry(sport: u16, dport: u16, dest: u32, state: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..4].copy_from_slice(&u32::from(CLIENT).to_ne_bytes());
    b[4..8].copy_from_slice(&u32::from(VIP).to_ne_bytes());
    b[8..10].copy_from_slice(&sport.to_ne_bytes());
    b[10..12].copy_from_slice(&dport.to_ne_bytes());
    b[12] = 6;
    b[16..20].copy_from_slice(&dest.to_ne_bytes());
    b[20..24].copy_from_slice(&1000u32.to_ne_bytes()); // expires
    b[28] = state;
    b
}

#[test]
fn entries_no_process_could_have_written_are_cleared_not_used() {
    let dir = Dir::new("garbage");
    let snap = world();
    let (file, _) = open(&dir.file(), &spec());
    let mut p = pipeline_in(file);
    assert_eq!(send(&mut p, &snap, 40000, FLAG_SYN, 10), Verdict::Tx);
    drop(p);
    // Slots at the end of the IPv4 region written by hand (the one real flow is
    // elsewhere: its bucket is found, not assumed).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.file())
        .unwrap();
    let established = 1;
    let bad = [
        // A real-server id past any this process has gauges for.
        entry(1, VIP_TCP_PORT, u32::MAX, established),
        // A state byte that is no TCP state.
        entry(2, VIP_TCP_PORT, 0, 200),
        // Another service's real server: recovered, it would send this service's
        // packets to a backend of another.
        entry(3, VIP_TCP_PORT, 1, established),
        // A destination no service of this snapshot has.
        entry(4, 9999, 0, established),
    ];
    let last = 4096 + 32 * (4096 - 1);
    for (i, e) in bad.iter().enumerate() {
        f.write_all_at(e, last - 32 * i as u64).unwrap();
    }
    // The same real server, by its own service: kept.
    f.write_all_at(&entry(5, OTHER_PORT, 1, established), last - 32 * 4)
        .unwrap();
    drop(f);

    let (file, opened) = open(&dir.file(), &spec());
    assert_eq!(opened, Opened::Recovered);
    let mut p = pipeline_in(file);
    let r = p.recover(&snap, 20, false);
    assert_eq!((r.flows, r.cleared), (2, 4));
    assert_eq!(p.flows().count_live(20), 2);
    assert_eq!(p.counters().flows_recovery_cleared.get(), 4);
    assert_eq!(p.counters().dests[1].active.get(), 1);
}

/// A recovered flow keeps its offloaded mark only when the fast path's entries were
/// kept at their generation (the sweep then asks the fast path when it was last seen);
/// the NAT mark goes either way.
#[test]
fn the_offloaded_mark_is_kept_only_with_the_fast_paths_entries() {
    for kept in [false, true] {
        let dir = Dir::new(if kept { "kept" } else { "new-maps" });
        let (file, _) = open(&dir.file(), &spec());
        drop(pipeline_in(file));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.file())
            .unwrap();
        let mut e = entry(7, VIP_TCP_PORT, 0, 1);
        e[29] = FLAG_OFFLOADED | FLAG_NAT_KNOWN;
        let last = 4096 + 32 * (4096 - 1);
        f.write_all_at(&e, last).unwrap();
        drop(f);

        let (file, opened) = open(&dir.file(), &spec());
        assert_eq!(opened, Opened::Recovered);
        let mut p = pipeline_in(file);
        assert_eq!(p.recover(&world(), 20, kept).flows, 1);
        let want = if kept { FLAG_OFFLOADED } else { 0 };
        assert_eq!(p.flows().get(4095).flags, want, "kept: {kept}");
    }
}

#[test]
fn a_crash_loop_is_not_fed_the_same_flows_again() {
    let dir = Dir::new("loop");
    drop(open(&dir.file(), &spec()));
    for _ in 0..xvs_dataplane::flow::state_file::CRASH_LOOP {
        assert_eq!(open(&dir.file(), &spec()).1, Opened::Recovered);
    }
    assert_eq!(
        open(&dir.file(), &spec()).1,
        Opened::Replaced(Refusal::CrashLoop(3))
    );
    assert_eq!(open(&dir.file(), &spec()).1, Opened::Recovered, "afresh");
}

#[test]
fn a_file_for_anything_else_is_refused_with_its_reason_and_started_afresh() {
    let dir = Dir::new("refuse");
    let path = dir.file();
    let leave = |s: &FileSpec| {
        let (file, _) = open(&path, s);
        let mut p = pipeline_in(file);
        assert_eq!(send(&mut p, &world(), 40000, FLAG_SYN, 10), Verdict::Tx);
    };
    let cases: Vec<(FileSpec, Refusal)> = vec![
        (
            FileSpec { queue: 1, ..spec() },
            Refusal::Interface {
                ifindex: 5,
                queue: 0,
            },
        ),
        (
            FileSpec {
                ifindex: 6,
                ..spec()
            },
            Refusal::Interface {
                ifindex: 5,
                queue: 0,
            },
        ),
        (
            FileSpec {
                queues: 3,
                ..spec()
            },
            Refusal::Workers(2, 3),
        ),
        (
            FileSpec {
                capacity: 8192,
                ..spec()
            },
            Refusal::Capacity,
        ),
    ];
    for (other, why) in cases {
        leave(&spec());
        let (file, opened) = open(&path, &other);
        assert_eq!(opened, Opened::Replaced(why), "{other:?}");
        let mut p = pipeline_in(file);
        assert_eq!(p.recover(&world(), 20, false).flows, 0);
        assert_eq!(
            p.flows().count_live(20),
            0,
            "nothing of the old file is read"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_truncated_foreign_or_other_layout_file_is_refused() {
    let dir = Dir::new("layout");
    let path = dir.file();
    let fresh = || {
        let _ = std::fs::remove_file(&path);
        drop(open(&path, &spec()));
    };
    fresh();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    assert_eq!(
        open(&path, &spec()).1,
        Opened::Replaced(Refusal::Truncated {
            got: len - 4096,
            want: len
        })
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "remade whole");

    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(
        open(&path, &spec()).1,
        Opened::Replaced(Refusal::Truncated { got: 5, .. })
    ));

    std::fs::write(&path, vec![0xa5u8; 8192]).unwrap();
    assert_eq!(open(&path, &spec()).1, Opened::Replaced(Refusal::Magic));

    fresh();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&99u32.to_ne_bytes(), 8).unwrap(); // layout
    drop(f);
    assert_eq!(
        open(&path, &spec()).1,
        Opened::Replaced(Refusal::Layout(99))
    );

    fresh();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0x11; 16], 8 + 4 * 6 + 8 * 4).unwrap(); // boot id
    drop(f);
    assert_eq!(open(&path, &spec()).1, Opened::Replaced(Refusal::Boot));
}

#[test]
fn a_link_in_place_of_the_file_is_not_followed_nor_a_hard_link_written() {
    let dir = Dir::new("links");
    let target = dir.0.join("target");
    std::fs::write(&target, b"keep").unwrap();
    std::os::unix::fs::symlink(&target, dir.file()).unwrap();
    assert!(FlowFile::open(&dir.file(), &spec()).is_err());
    std::fs::remove_file(dir.file()).unwrap();
    std::fs::hard_link(&target, dir.file()).unwrap();
    let e = FlowFile::open(&dir.file(), &spec())
        .unwrap_err()
        .to_string();
    assert!(e.contains("one link"), "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
}

#[test]
fn each_region_is_handed_out_once_and_ipv6s_only_once_reserved() {
    let dir = Dir::new("once");
    let (file, _) = open(&dir.file(), &spec());
    assert!(file.take_table4().is_some());
    assert!(
        file.take_table4().is_none(),
        "a second table over it would alias"
    );
    assert!(file.take_table6().is_none(), "not reserved yet");
    file.reserve_v6().unwrap();
    assert!(file.take_table6().is_some());
    assert!(file.take_table6().is_none());
    drop(file);
    let (file, opened) = open(&dir.file(), &spec());
    assert_eq!(opened, Opened::Recovered);
    assert!(
        file.holds_v6(),
        "the IPv6 region is used, so it is recovered"
    );
}
