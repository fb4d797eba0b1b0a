//! A worker's flow tables in a file that outlives the process (`/run/xvs`, tmpfs on a
//! systemd host): after a crash or a `kill -9`, the next xvs maps the same file and its
//! worker carries on with every connection the last one knew.
//!
//! The layout is fixed: a 4 KiB header, then the IPv4 table's entries, then (page
//! aligned) the IPv6 table's. The header says what wrote it (layout version, entry
//! sizes, the hash seed, the table clock's epoch, the host's boot, the interface, queue
//! and worker count); a file whose header does not match what this process would write
//! is never read as flows: it is refused with the reason, and replaced by a fresh one.
//!
//! Space is reserved (`fallocate`) before a region is used, so a full tmpfs is an error
//! at start, not a SIGBUS in a worker. The IPv6 region is reserved only once a snapshot
//! has IPv6 services (`reserve_v6`): until then it costs no memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::table::{Flow, FlowKey, FlowKey6, FlowTable, Key};
use crate::sys::{bytes_of, bytes_of_mut, Entries, MappedFile};

/// Bumped whenever the header or an entry changes meaning.
pub const LAYOUT: u32 = 1;
const MAGIC: [u8; 8] = *b"XVSFLOWS";
const HEADER_LEN: usize = 4096;
const PAGE: usize = 4096;
/// Recoveries within `CRASH_WINDOW_SECS` after which a file is started afresh.
pub const CRASH_LOOP: u32 = 3;
pub const CRASH_WINDOW_SECS: u64 = 60;

/// What the file is for: a file written for anything else is not recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// `flow_table_size`: each family's table holds at least this many flows.
    pub capacity: usize,
    /// The hash seed a fresh file's tables are keyed with (a recovered one keeps its own).
    pub seed: u64,
    pub ifindex: u32,
    pub queue: u32,
    /// Workers on the interface: with another count, flows reach other workers.
    pub queues: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Header {
    magic: [u8; 8],
    layout: u32,
    header_len: u32,
    entry4: u32,
    ways4: u32,
    entry6: u32,
    ways6: u32,
    buckets4: u64,
    buckets6: u64,
    seed: u64,
    /// CLOCK_MONOTONIC_COARSE, in ns, at the tables' second 0.
    epoch_ns: u64,
    boot_id: [u8; 16],
    ifindex: u32,
    queue: u32,
    queues: u32,
    /// 1 once the IPv6 table was handed out: its region holds flows.
    v6_used: u32,
    file_len: u64,
    /// Recoveries since `recovered_since_ns`: a crash loop is not fed the same flows
    /// again and again (`CRASH_LOOP`).
    recoveries: u32,
    _pad: u32,
    recovered_since_ns: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_LEN);

/// Why an existing file was not recovered (it is replaced by a fresh one).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("it is truncated ({got} bytes, {want} expected)")]
    Truncated { got: u64, want: u64 },
    #[error("it is not an xvs flow-state file")]
    Magic,
    #[error("it has layout version {0}, this xvs writes version {LAYOUT}")]
    Layout(u32),
    #[error("its entries are of another build's size")]
    Entries,
    #[error("it is for interface {ifindex} queue {queue}, not this one")]
    Interface { ifindex: u32, queue: u32 },
    #[error("it was written with {0} workers, now there are {1}: flows would reach other workers")]
    Workers(u32, u32),
    #[error("it was written for another flow_table_size")]
    Capacity,
    #[error("it was written before the host's last boot (or the boot id cannot be read)")]
    Boot,
    #[error("it was recovered {0} times within {CRASH_WINDOW_SECS} s: a crash loop is not fed the same flows again")]
    CrashLoop(u32),
    #[error("its IPv6 flows no longer fit ({0})")]
    NoRoom6(String),
    #[error("its clock is ahead of this host's")]
    Clock,
}

/// A file that could not be used at all: the tables go on the heap.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path} is not a regular file of this user with one link: left alone")]
    Unsafe { path: String },
    #[error("cannot reserve {bytes} bytes for {path} ({source}): is its file system full?")]
    Reserve {
        path: String,
        bytes: u64,
        source: io::Error,
    },
    #[error("cannot map {path}: {source}")]
    Map { path: String, source: io::Error },
    #[error("{path} would take {need} bytes of its file system's {avail} free of {total}, leaving less than a quarter of it free (make the file system larger, or flow_table_size smaller)")]
    Space {
        path: String,
        need: u64,
        avail: u64,
        total: u64,
    },
}

/// How `FlowFile::open` found the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// There was none (or it was empty): a fresh one.
    Fresh,
    /// The last process's flows are in it.
    Recovered,
    /// There was one that could not be recovered, for this reason: a fresh one.
    Replaced(Refusal),
}

/// One worker's flow-state file, mapped.
pub struct FlowFile {
    file: File,
    map: Arc<MappedFile>,
    geo: Geometry,
    seed: u64,
    epoch_ns: u64,
    v6_reserved: AtomicBool,
    taken4: AtomicBool,
    taken6: AtomicBool,
    recovered: bool,
}

impl std::fmt::Debug for FlowFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowFile")
            .field("len", &self.map.len())
            .field("seed", &self.seed)
            .finish()
    }
}

/// The file's geometry for a spec: buckets of each table and where each region lies.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    buckets4: usize,
    buckets6: usize,
    off6: usize,
    len: usize,
}

impl Geometry {
    fn of(capacity: usize) -> Geometry {
        let buckets = |ways: usize| capacity.div_ceil(ways).max(1).next_power_of_two();
        let (buckets4, buckets6) = (buckets(FlowKey::WAYS), buckets(FlowKey6::WAYS));
        let end4 = HEADER_LEN + buckets4 * FlowKey::WAYS * std::mem::size_of::<Flow>();
        let off6 = end4.next_multiple_of(PAGE);
        let len6 = buckets6 * FlowKey6::WAYS * std::mem::size_of::<Flow<FlowKey6>>();
        Geometry {
            buckets4,
            buckets6,
            off6,
            len: off6 + len6,
        }
    }
}

impl FlowFile {
    /// Opens (or makes) the file at `path` for `spec`; recovers what it holds when its
    /// header matches, else starts it afresh and says why.
    pub fn open(path: &Path, spec: &FileSpec) -> Result<(FlowFile, Opened), StateFileError> {
        let name = || path.display().to_string();
        let file = open_private(path)?;
        let geo = Geometry::of(spec.capacity);
        let opened = match settle(&file, spec, &geo) {
            Ok(opened) => opened,
            Err(source) => {
                return Err(forget(
                    &file,
                    StateFileError::Open {
                        path: name(),
                        source,
                    },
                ))
            }
        };
        let recovered = opened == Opened::Recovered;
        let mapped = room(&file, geo.off6 as u64)
            .map_err(|(need, avail, total)| StateFileError::Space {
                path: name(),
                need,
                avail,
                total,
            })
            .and_then(|()| {
                reserve(&file, 0, geo.off6).map_err(|source| StateFileError::Reserve {
                    path: name(),
                    bytes: geo.off6 as u64,
                    source,
                })
            })
            .and_then(|()| {
                MappedFile::map(&file, geo.len).map_err(|source| StateFileError::Map {
                    path: name(),
                    source,
                })
            });
        let map = mapped.map_err(|e| forget(&file, e))?;
        map.populate(HEADER_LEN, geo.off6 - HEADER_LEN);
        let header: Header = map.read(0).unwrap_or_default();
        let flow_file = FlowFile {
            file,
            map: Arc::new(map),
            geo,
            seed: header.seed,
            epoch_ns: header.epoch_ns,
            // A recovered file's IPv6 region was reserved by `settle`.
            v6_reserved: AtomicBool::new(recovered && header.v6_used != 0),
            taken4: AtomicBool::new(false),
            taken6: AtomicBool::new(false),
            recovered,
        };
        Ok((flow_file, opened))
    }

    /// Says the flows in it were handed over, not left by a crash: the next process's
    /// recovery does not count toward `CRASH_LOOP`. Call once no worker writes it.
    pub fn handed_over(&self) {
        self.map
            .write(std::mem::offset_of!(Header, recoveries), 0u32);
    }

    /// Whether it holds the last process's flows (for `Pipeline::recover`).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// The hash seed the tables are keyed with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// CLOCK_MONOTONIC_COARSE (ns) at the tables' second 0: the worker's clock starts
    /// there, so recovered deadlines mean what they meant.
    pub fn epoch_ns(&self) -> u64 {
        self.epoch_ns
    }

    /// Whether the IPv6 table's flows are in the file (it was used before this start).
    pub fn holds_v6(&self) -> bool {
        self.header().v6_used != 0 && self.v6_reserved.load(Ordering::Acquire)
    }

    /// Reserves the IPv6 region, so a worker may put its IPv6 table there (control calls
    /// it before publishing the first snapshot with an IPv6 service).
    pub fn reserve_v6(&self) -> io::Result<()> {
        if self.v6_reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let off6 = self.geo.off6;
        room(&self.file, self.map.len() as u64).map_err(|(need, avail, total)| {
            io::Error::other(format!(
                "{need} bytes more of {avail} free of {total} would leave less than a quarter free"
            ))
        })?;
        reserve(&self.file, off6, self.map.len() - off6)?;
        self.v6_reserved.store(true, Ordering::Release);
        Ok(())
    }

    /// The IPv4 table, over the file's region: once only (a second call gets `None`).
    pub fn take_table4(&self) -> Option<FlowTable<FlowKey>> {
        if self.taken4.swap(true, Ordering::AcqRel) {
            return None;
        }
        let len = self.geo.buckets4 * FlowKey::WAYS;
        let entries = Entries::in_file(Arc::clone(&self.map), HEADER_LEN, len)?;
        Some(FlowTable::in_entries(entries, self.seed))
    }

    /// The IPv6 table, over the file's region, once it is reserved: once only.
    pub fn take_table6(&self) -> Option<FlowTable<FlowKey6>> {
        if !self.v6_reserved.load(Ordering::Acquire) || self.taken6.swap(true, Ordering::AcqRel) {
            return None;
        }
        let (off6, len) = (self.geo.off6, self.geo.buckets6 * FlowKey6::WAYS);
        let entries = Entries::in_file(Arc::clone(&self.map), off6, len)?;
        self.map.write(std::mem::offset_of!(Header, v6_used), 1u32);
        Some(FlowTable::in_entries(entries, self.seed))
    }

    fn header(&self) -> Header {
        self.map.read(0).unwrap_or_default()
    }
}

// No implicit padding (so it may be `sys::Pod`): the size is the fields' sum.
const _: () =
    assert!(std::mem::size_of::<Header>() == 8 + 4 * 6 + 8 * 4 + 16 + 4 * 4 + 8 + 4 * 2 + 8);

fn read_header(file: &File) -> io::Result<Header> {
    let mut h = Header::default();
    file.read_exact_at(bytes_of_mut(&mut h), 0)?;
    Ok(h)
}

/// The header this process would write for `spec`, seeded and stamped now.
fn header_for(spec: &FileSpec, geo: &Geometry) -> Header {
    Header {
        magic: MAGIC,
        layout: LAYOUT,
        header_len: HEADER_LEN as u32,
        entry4: std::mem::size_of::<Flow>() as u32,
        ways4: FlowKey::WAYS as u32,
        entry6: std::mem::size_of::<Flow<FlowKey6>>() as u32,
        ways6: FlowKey6::WAYS as u32,
        buckets4: geo.buckets4 as u64,
        buckets6: geo.buckets6 as u64,
        seed: spec.seed,
        epoch_ns: crate::sys::monotonic_coarse_ns(),
        // Zeros when unknown: such a file is never recovered (see `check`).
        boot_id: boot_id().unwrap_or_default(),
        ifindex: spec.ifindex,
        queue: spec.queue,
        queues: spec.queues,
        v6_used: 0,
        file_len: geo.len as u64,
        recoveries: 0,
        _pad: 0,
        recovered_since_ns: 0,
    }
}

/// Opens (or makes) `path` for reading and writing: never through a link, and only a
/// regular file of this user with one name.
fn open_private(path: &Path) -> Result<File, StateFileError> {
    let name = || path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| StateFileError::Open {
            path: name(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| StateFileError::Open {
        path: name(),
        source,
    })?;
    if !meta.is_file() || meta.uid() != crate::sys::euid() || meta.nlink() != 1 {
        return Err(StateFileError::Unsafe { path: name() });
    }
    Ok(file)
}

/// Decides what the file holds, and leaves it so: a recovered one counted (and its
/// IPv6 region reserved, if it has flows there), anything else emptied with a fresh
/// header.
fn settle(file: &File, spec: &FileSpec, geo: &Geometry) -> io::Result<Opened> {
    let len = file.metadata()?.len();
    let mut opened = match len {
        0 => Opened::Fresh,
        got => match check(file, got, spec, geo) {
            Ok(()) => Opened::Recovered,
            Err(why) => Opened::Replaced(why),
        },
    };
    if opened == Opened::Recovered {
        let h = read_header(file)?;
        if h.v6_used != 0 {
            if let Err(e) = reserve(file, geo.off6, geo.len - geo.off6) {
                opened = Opened::Replaced(Refusal::NoRoom6(e.to_string()));
            }
        }
        if opened == Opened::Recovered {
            count_recovery(file, h)?;
            return Ok(opened);
        }
    }
    fresh_header(file, spec, geo)?;
    Ok(opened)
}

/// A file this process could not use is emptied, so that no later start recovers what
/// it held (its flows would be older than the ones this process makes).
fn forget(file: &File, e: StateFileError) -> StateFileError {
    let _ = file.set_len(0);
    e
}

/// Empties the file and writes a fresh header at its new length.
fn fresh_header(file: &File, spec: &FileSpec, geo: &Geometry) -> io::Result<()> {
    file.set_len(0)?;
    file.set_len(geo.len as u64)?;
    file.write_all_at(bytes_of(&header_for(spec, geo)), 0)
}

/// Whether the file at `len` bytes holds flows this process may use as its own.
fn check(file: &File, len: u64, spec: &FileSpec, geo: &Geometry) -> Result<(), Refusal> {
    let want = header_for(spec, geo);
    if len < HEADER_LEN as u64 {
        return Err(Refusal::Truncated {
            got: len,
            want: want.file_len,
        });
    }
    let h = read_header(file).map_err(|_| Refusal::Truncated {
        got: len,
        want: want.file_len,
    })?;
    if h.magic != MAGIC {
        return Err(Refusal::Magic);
    }
    if h.layout != LAYOUT {
        return Err(Refusal::Layout(h.layout));
    }
    if (h.header_len, h.entry4, h.ways4, h.entry6, h.ways6)
        != (
            want.header_len,
            want.entry4,
            want.ways4,
            want.entry6,
            want.ways6,
        )
    {
        return Err(Refusal::Entries);
    }
    if (h.ifindex, h.queue) != (want.ifindex, want.queue) {
        return Err(Refusal::Interface {
            ifindex: h.ifindex,
            queue: h.queue,
        });
    }
    if h.queues != want.queues {
        return Err(Refusal::Workers(h.queues, want.queues));
    }
    if (h.buckets4, h.buckets6, h.file_len) != (want.buckets4, want.buckets6, want.file_len) {
        return Err(Refusal::Capacity);
    }
    if len != h.file_len {
        return Err(Refusal::Truncated {
            got: len,
            want: h.file_len,
        });
    }
    if boot_id().is_none() || h.boot_id != want.boot_id {
        return Err(Refusal::Boot);
    }
    if h.epoch_ns > want.epoch_ns {
        return Err(Refusal::Clock);
    }
    let window = CRASH_WINDOW_SECS * 1_000_000_000;
    if h.recoveries >= CRASH_LOOP && want.epoch_ns.saturating_sub(h.recovered_since_ns) < window {
        return Err(Refusal::CrashLoop(h.recoveries));
    }
    Ok(())
}

/// Counts one more recovery in the header (a new window once the last has passed).
fn count_recovery(file: &File, mut h: Header) -> io::Result<()> {
    let now = crate::sys::monotonic_coarse_ns();
    if now.saturating_sub(h.recovered_since_ns) >= CRASH_WINDOW_SECS * 1_000_000_000 {
        h.recovered_since_ns = now;
        h.recoveries = 0;
    }
    h.recoveries += 1;
    file.write_all_at(bytes_of(&h), 0)
}

/// Whether reserving the first `len` bytes of `file` leaves at least a quarter of its
/// file system free (`/run` is shared with the rest of the host); else (what it would
/// take, what is free, the whole).
fn room(file: &File, len: u64) -> Result<(), (u64, u64, u64)> {
    let held = file
        .metadata()
        .map_or(0, |m| m.blocks().saturating_mul(512));
    let need = len.saturating_sub(held);
    match crate::sys::fs_space(file) {
        Ok((total, avail)) if avail.saturating_sub(need) < total / 4 => Err((need, avail, total)),
        _ => Ok(()),
    }
}

/// Allocates the file's blocks for `len` bytes from `offset`: writes to the mapping can
/// then not fail for want of space.
fn reserve(file: &File, offset: usize, len: usize) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    crate::sys::fallocate(file, offset as u64, len as u64)
}

/// The kernel's id of this boot, if it can be read (16 bytes, never all zeros).
fn boot_id() -> Option<[u8; 16]> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let hex: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    if hex.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        id[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    (id != [0; 16]).then_some(id)
}
