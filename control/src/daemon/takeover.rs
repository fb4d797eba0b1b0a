//! A start over the steering program a killed xvs left attached: its connection state
//! (the fast path's flows, the known NAT connections, NAT clients' MACs) is taken over
//! when it was written by this version's steering program with this configuration. With
//! the real servers' ids restored the fast path's entries keep their generation (they
//! name what this process's snapshot names); without, the first snapshot is of the next
//! one: each flow's next packet reaches a worker, which adopts it once its entry names a
//! real server as this process sees it (`pipeline/adopt.rs`). Anything else left
//! behind is replaced, with a log line.
//!
//! A planned handover loads its steering program before it asks (`Preloaded`), over the
//! running program's maps: the verifier's time is then spent while the old workers
//! still serve, not in the gap between theirs and this process's.

use anyhow::{Context, Result};
use tracing::info;
use xvs_bpf::{Leftover, Steer};
use xvs_config::Config;

use super::ifaces::Ifaces;

/// What a start may take from the xvs before it.
pub struct Prior {
    /// This process holds every instance lock: what is attached to the interface is no
    /// running xvs's, and may be taken over.
    pub locked: bool,
    /// The steering program a handover loaded before it asked.
    pub preloaded: Option<Preloaded>,
}

/// What this process may take over, and who it is for the next one.
pub struct Takeover {
    pub leftover: Option<Leftover>,
    /// This process's fingerprint, written into the steering program's settings.
    pub owner: u64,
    /// A program loaded before the handover, over this same leftover's maps (or over
    /// none, when there is no leftover to take).
    pub preloaded: Option<Preloaded>,
}

/// A steering program loaded, not attached, before a running xvs was asked to hand
/// over: over its program's state maps when that program is ours.
pub struct Preloaded {
    pub steer: Steer,
    /// How many state maps it took over.
    pub taken: usize,
    /// The program whose maps it took and its fast-path generation then (`None`: it
    /// took none): whether the fast path's maps were taken depends on it.
    from: Option<(u32, u32)>,
}

impl Preloaded {
    /// Loads the steering program as `load_steering` would, over the maps of the xvs
    /// still running on the interface when it is this build with this configuration.
    /// Not locked: whether the same program is still there is checked once locked
    /// (`Takeover::find`).
    pub fn load(cfg: &Config, ifaces: &Ifaces) -> Result<Preloaded> {
        let leftover = Leftover::find(ifaces.external.ifindex as i32)
            .ok()
            .flatten()
            .filter(|l| l.owner() == owner(cfg));
        let (fast, nat) = map_sizes(cfg, ifaces);
        let (steer, taken) = Steer::load_taking(fast, nat, leftover.as_ref())
            .context("loading the steering program")?;
        Ok(Preloaded {
            steer,
            taken,
            from: leftover.as_ref().map(|l| (l.id(), l.fast_generation())),
        })
    }
}

impl Takeover {
    /// Looks at what is attached to the external interface. A preloaded program is kept
    /// when it took the maps of what is attached now (or none, and none is ours).
    pub fn find(cfg: &Config, ifaces: &Ifaces, prior: Prior) -> Takeover {
        let Prior { locked, preloaded } = prior;
        let owner = owner(cfg);
        let name = &ifaces.external.name;
        if !locked {
            info!("without every instance lock another xvs may run on {name}: what is attached there is replaced, not taken over");
            return Takeover {
                leftover: None,
                owner,
                preloaded: None,
            };
        }
        let leftover = match Leftover::find(ifaces.external.ifindex as i32) {
            Ok(found) => found,
            Err(why) => {
                info!("{why} on {name}: its connections are not taken over");
                None
            }
        };
        let leftover = leftover.filter(|l| {
            let ours = l.owner() == owner;
            if !ours {
                info!("the steering program left on {name} is another version's or configuration's: its connections are not taken over");
            }
            ours
        });
        let now = leftover.as_ref().map(|l| (l.id(), l.fast_generation()));
        let preloaded = preloaded.and_then(|p| {
            let same = p.from == now;
            if !same {
                info!("the program on {name} changed during the handover: loading the steering program again");
            }
            same.then_some(p)
        });
        Takeover {
            leftover,
            owner,
            preloaded,
        }
    }

    /// The first snapshot's generation, and whether it is the taken-over fast-path
    /// entries' own. Kept when the entries are this build's with this configuration and
    /// the real servers have their ids back (`ids_restored`): they then name what this
    /// process's snapshot names, and a fast-path flow goes on in XDP without a trip
    /// through a worker (measured: 100k such flows at 100k pps made a gap of 14–26 ms).
    /// Otherwise past theirs, so that none is used before a worker has checked it.
    pub fn generation(&self, ids_restored: bool) -> (u64, bool) {
        match &self.leftover {
            Some(l) if ids_restored && l.fast_generation() != 0 => {
                (u64::from(l.fast_generation()), true)
            }
            Some(l) => (u64::from(l.fast_generation()) + 1, false),
            None => (1, false),
        }
    }
}

/// The fast path's and the known NAT connections' map sizes: `fast_path_flows` (none
/// with the fast path off: it cannot be turned on without a restart, and a preallocated
/// map of millions of entries costs the kernel hundreds of milliseconds and of megabytes);
/// room for the flows the workers can hold (none without a NAT service; a flow table's
/// for each queue, at most `MAX_NAT_CONNS`).
pub fn map_sizes(cfg: &Config, ifaces: &Ifaces) -> (u32, u32) {
    let nat = cfg.virtual_servers.iter().any(|v| {
        matches!(
            v.forwarding,
            xvs_config::Forwarding::Nat | xvs_config::Forwarding::FullNat
        )
    });
    let queues = ifaces.external.rx_queues.max(1) as usize;
    let nat_conns = if nat {
        let want = cfg.flow_table_size.saturating_mul(queues);
        want.min(xvs_bpf::abi::layout::MAX_NAT_CONNS as usize) as u32
    } else {
        1
    };
    let fast = match cfg.fast_path {
        xvs_config::FastPath::Off => 1,
        xvs_config::FastPath::Auto | xvs_config::FastPath::Xdp => cfg.fast_path_flows,
    };
    (fast, nat_conns)
}

/// A fingerprint of the steering object, xvs's version and the configuration (FNV-1a, 64
/// bits): equal only for the same version running the same file's settings.
pub fn owner(cfg: &Config) -> u64 {
    let text = format!("{} {cfg:?}", env!("CARGO_PKG_VERSION"));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in xvs_bpf::STEER_OBJECT.iter().chain(text.as_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // 0 is what a program from before fingerprints holds.
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_configuration() {
        let a = xvs_config::parse("a", "interface: eth0\nworkers: 1\n").unwrap();
        let b = xvs_config::parse("b", "interface: eth0\nworkers: 2\n").unwrap();
        assert_eq!(owner(&a), owner(&a.clone()));
        assert_ne!(owner(&a), owner(&b));
        assert_ne!(owner(&a), 0);
    }
}
