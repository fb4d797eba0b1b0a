//! The state a worker's flows need to outlive the process: each queue's flow-state file
//! (`xvs_dataplane::flow::state_file`) and the real servers' ids the flows name, under
//! /run/xvs beside the interface's lock. After a `kill -9` the next xvs maps the same
//! files and gives each real server the id it had, so every connection carries on at
//! its real server. A clean stop removes them: the connections end with it.
//!
//! Used only when this process holds every instance lock (no other xvs can be writing
//! them) and /run/xvs is writable by this user alone.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tracing::{info, warn};
use xvs_config::Config;
use xvs_dataplane::flow::{FileSpec, FlowFile, Opened};
use xvs_dataplane::snapshot::{DestId, ServiceKey, MAX_DESTS};

use crate::control_socket::interface_state_path;
use crate::ids::{DestKey, DestRegistry};

/// The first line of the ids file: what wrote it (then ` hold=SECONDS`: how long an id
/// that left the configuration may still be named by a flow or template).
const IDS_HEADER: &str = "xvs-dest-ids 1";
/// More than any ids file xvs writes (MAX_DESTS lines of at most ~110 bytes).
const IDS_MAX_BYTES: u64 = 16 << 20;

/// This process's state files, when they are used.
pub struct FlowState {
    ifindex: u32,
    /// Each queue's flow file, as opened (`None`: that queue's tables are on the heap).
    files: Vec<Option<Arc<FlowFile>>>,
    used: bool,
    /// The last process's ids were read: only then are its flows recovered (they name
    /// real servers by those ids).
    ids_read: bool,
    /// How long the last process said its retired ids must be held, at least.
    hold: Duration,
}

impl FlowState {
    /// The state of interface `ifindex`; unused (everything on the heap) unless
    /// `locked` and /run/xvs is this user's alone.
    pub fn new(ifindex: u32, locked: bool) -> FlowState {
        let path = interface_state_path(ifindex, "ids");
        let used = locked
            && match private_dir(path.parent().unwrap_or(Path::new("/"))) {
                Ok(()) => true,
                Err(e) => {
                    warn!("flows will not outlive this process: {e:#}");
                    false
                }
            };
        FlowState {
            ifindex,
            files: Vec::new(),
            used,
            ids_read: false,
            hold: Duration::ZERO,
        }
    }

    /// A registry that gives each real server the id the last process gave it (from its
    /// ids file), so that recovered flows name the same servers; empty without one.
    pub fn registry(&mut self, cfg: &Config) -> DestRegistry {
        let path = self.ids_path();
        if !self.used || !path.exists() {
            return DestRegistry::default();
        }
        match read_ids(&path) {
            Ok((ids, hold_then)) => {
                info!(
                    "{} real-server ids taken from {}",
                    ids.len(),
                    path.display()
                );
                self.ids_read = true;
                self.hold = hold_then.max(hold(cfg));
                DestRegistry::restored(ids, self.hold)
            }
            Err(e) => {
                warn!("{} not used ({e:#}): the flows the last process left are not recovered (they name real servers by its ids)", path.display());
                DestRegistry::default()
            }
        }
    }

    /// Whether the last process's real-server ids were read back (`registry`).
    pub fn ids_restored(&self) -> bool {
        self.ids_read
    }

    /// Removes the flow files of queues this start does not have (fewer workers than
    /// the last): their memory would otherwise stay taken until the host reboots.
    pub fn prune(&self, queues: u32) {
        if !self.used {
            return;
        }
        let prefix = interface_state_path(self.ifindex, "q");
        let (Some(dir), Some(stem)) = (prefix.parent(), prefix.file_name()) else {
            return;
        };
        let stem = stem.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let queue = name
                .strip_prefix(&stem)
                .and_then(|r| r.strip_suffix(".flows"))
                .and_then(|q| q.parse::<u32>().ok());
            if queue.is_some_and(|q| q >= queues) {
                info!("removing {name}: no worker of this start has its queue");
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Queue `queue`'s flow file (of `queues`), opened or made, with what it held said.
    pub fn open(
        &mut self,
        cfg: &Config,
        queue: u32,
        queues: u32,
        seed: u64,
    ) -> Option<Arc<FlowFile>> {
        if !self.used {
            return None;
        }
        let path = interface_state_path(self.ifindex, &format!("q{queue}.flows"));
        if !self.ids_read && path.exists() {
            info!("queue {queue}: the flows in {} are not recovered: the real servers' ids they name were not read", path.display());
            let _ = std::fs::remove_file(&path);
        }
        let spec = FileSpec {
            capacity: cfg.flow_table_size,
            seed,
            ifindex: self.ifindex,
            queue,
            queues,
        };
        let file = match FlowFile::open(&path, &spec) {
            Ok((file, opened)) => {
                match opened {
                    Opened::Fresh => {}
                    Opened::Recovered => info!("queue {queue}: recovering the flows the last xvs left in {}", path.display()),
                    Opened::Replaced(why) => info!("queue {queue}: the flows in {} are not recovered: {why}; starting with an empty table", path.display()),
                }
                Some(Arc::new(file))
            }
            Err(e) => {
                warn!("queue {queue}: its flows will not outlive this process: {e}");
                None
            }
        };
        self.files.push(file.clone());
        self.reserve_v6(cfg);
        file
    }

    /// The workers have stopped for a handover: what the files hold is no crash's.
    pub fn handed_over(&self) {
        for f in self.files.iter().flatten() {
            f.handed_over();
        }
    }

    /// Makes room for IPv6 flows in every file once the configuration has an IPv6
    /// service (before its snapshot is published: a worker takes the room then).
    pub fn reserve_v6(&self, cfg: &Config) {
        if !cfg.virtual_servers.iter().any(|v| v.address.is_ipv6()) {
            return;
        }
        for (q, f) in self.files.iter().enumerate() {
            if let Some(f) = f {
                if let Err(e) = f.reserve_v6() {
                    warn!("queue {q}: no room for IPv6 flows in its state file ({e}): they will not outlive this process");
                }
            }
        }
    }

    /// Writes the real servers' ids for the next process: before a snapshot that may
    /// name new ones is published, so a flow never names an id the file lacks.
    pub fn record(&self, cfg: &Config, registry: &DestRegistry) {
        if !self.used {
            return;
        }
        let path = self.ids_path();
        if let Err(e) = write_ids(&path, registry, self.hold.max(hold(cfg))) {
            warn!(
                "writing {}: {e:#}; a restart may not recover every flow",
                path.display()
            );
        }
    }

    /// Removes the files (a clean stop: the connections end with it). Call once the
    /// workers, and with them the mappings, are gone.
    pub fn remove(&mut self) {
        if !self.used {
            return;
        }
        self.used = false;
        let queues = self.files.len();
        self.files.clear();
        for q in 0..queues {
            let _ =
                std::fs::remove_file(interface_state_path(self.ifindex, &format!("q{q}.flows")));
        }
        let _ = std::fs::remove_file(self.ids_path());
    }

    fn ids_path(&self) -> PathBuf {
        interface_state_path(self.ifindex, "ids")
    }
}

/// How long an id the last process gave a real server that is no longer configured
/// stays its own: long enough for any recovered flow or template to end.
fn hold(cfg: &Config) -> Duration {
    let t = &cfg.timeouts;
    let persistence = cfg
        .virtual_servers
        .iter()
        .filter_map(|v| v.persistence.map(|p| p.timeout))
        .max()
        .unwrap_or(0);
    Duration::from_secs(u64::from(t.tcp.max(t.tcpfin).max(t.udp).max(persistence)))
}

/// `dir` is a directory of this user that no one else may write in.
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let m =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !m.is_dir() || m.uid() != xvs_dataplane::sys::euid() || m.mode() & 0o022 != 0 {
        bail!(
            "{} is not a directory of this user that only it may write (chmod go-w, chown it)",
            dir.display()
        );
    }
    Ok(())
}

fn write_ids(path: &Path, registry: &DestRegistry, hold: Duration) -> Result<()> {
    let mut text = format!("{IDS_HEADER} hold={}\n", hold.as_secs());
    for (k, id) in registry.every() {
        let s = &k.service;
        let _ = writeln!(
            text,
            "{id} {} {} {} {} {}",
            s.proto, s.addr, s.port, k.addr, k.port
        );
    }
    replace(path, &text).with_context(|| format!("replacing {}", path.display()))
}

/// Replaces the file at `path` with `text` in one step: written to a new file beside it
/// (never through a link), then renamed over it, so a reader never sees half of it.
pub(super) fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// The ids a file lists; any line that does not parse, an id out of range or given
/// twice, or a real server listed twice refuses the whole file.
fn read_ids(path: &Path) -> Result<(Vec<(DestKey, DestId)>, Duration)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        // Not through a link; and a FIFO put there does not hold the start up.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() || m.uid() != xvs_dataplane::sys::euid() || m.len() > IDS_MAX_BYTES {
        bail!("not a regular file of this user of at most {IDS_MAX_BYTES} bytes");
    }
    let text = std::io::read_to_string(f)?;
    parse_ids(&text)
}

pub(crate) fn parse_ids(text: &str) -> Result<(Vec<(DestKey, DestId)>, Duration)> {
    let mut lines = text.lines();
    let hold = lines
        .next()
        .and_then(|l| l.strip_prefix(IDS_HEADER))
        .and_then(|l| l.strip_prefix(" hold="))
        .and_then(|h| h.parse::<u32>().ok())
        .with_context(|| format!("it does not start with `{IDS_HEADER} hold=SECONDS`"))?;
    let (mut ids, mut keys, mut out) = (HashSet::new(), HashSet::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let (key, id) = parse_line(line).with_context(|| format!("line {}: `{line}`", n + 2))?;
        if id as usize >= MAX_DESTS || !ids.insert(id) || !keys.insert(key) {
            bail!("line {}: id {id} out of range or listed twice", n + 2);
        }
        out.push((key, id));
    }
    Ok((out, Duration::from_secs(u64::from(hold))))
}

fn parse_line(line: &str) -> Result<(DestKey, DestId)> {
    let f: Vec<&str> = line.split(' ').collect();
    let [id, proto, vip, port, addr, rport] = f[..] else {
        bail!("six fields expected");
    };
    let service = ServiceKey {
        addr: vip.parse::<IpAddr>()?,
        port: port.parse()?,
        proto: proto.parse()?,
    };
    let key = DestKey {
        service,
        addr: addr.parse()?,
        port: rport.parse()?,
    };
    Ok((key, id.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_back_as_written_and_bad_files_refused_whole() {
        let good =
            "xvs-dest-ids 1 hold=900\n0 6 10.0.0.100 80 10.1.0.1 80\n3 17 2001:db8::1 0 2001:db8::11 53\n";
        let (ids, hold) = parse_ids(good).unwrap();
        assert_eq!(hold, Duration::from_secs(900));
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1].1, 3);
        assert_eq!(ids[1].0.addr, "2001:db8::11".parse::<IpAddr>().unwrap());
        for bad in [
            "",
            "xvs-dest-ids 1\n",
            "xvs-dest-ids 1 hold=-1\n",
            "xvs-dest-ids 2 hold=1\n",
            "xvs-dest-ids 1 hold=1\n0 6 10.0.0.100 80 10.1.0.1\n",
            "xvs-dest-ids 1 hold=1\n0 6 10.0.0.100 80 10.1.0.1 80\n0 6 10.0.0.100 80 10.1.0.2 80\n",
            "xvs-dest-ids 1 hold=1\n0 6 10.0.0.100 80 10.1.0.1 80\n1 6 10.0.0.100 80 10.1.0.1 80\n",
            "xvs-dest-ids 1 hold=1\n99999999 6 10.0.0.100 80 10.1.0.1 80\n",
            "xvs-dest-ids 1 hold=1\n0 6 10.0.0.100 80 10.1.0.1 99999\n",
        ] {
            assert!(parse_ids(bad).is_err(), "{bad:?}");
        }
    }
}
