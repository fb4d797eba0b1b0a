//! A start over the steering program a killed xvs left attached: its connection state
//! (the fast path's flows, the known NAT connections, NAT clients' MACs) is taken over
//! when it was written by this version's steering program with this configuration. The
//! first snapshot is of the next fast-path generation: each flow's next packet reaches
//! a worker, which adopts it once its entry names a real server as this process sees it
//! (`pipeline/adopt.rs`). Anything else left behind is replaced, with a log line.

use tracing::info;
use xvs_bpf::Leftover;
use xvs_config::Config;

use super::ifaces::Ifaces;

/// What this process may take over, and who it is for the next one.
pub struct Takeover {
    pub leftover: Option<Leftover>,
    /// This process's fingerprint, written into the steering program's settings.
    pub owner: u64,
}

impl Takeover {
    /// Looks at what is attached to the external interface; `locked`: no other xvs can
    /// be running there (this process holds every instance lock).
    pub fn find(cfg: &Config, ifaces: &Ifaces, locked: bool) -> Takeover {
        let owner = owner(cfg);
        let name = &ifaces.external.name;
        if !locked {
            info!("without every instance lock another xvs may run on {name}: what is attached there is replaced, not taken over");
            return Takeover {
                leftover: None,
                owner,
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
        Takeover { leftover, owner }
    }

    /// The first snapshot's generation: past the taken-over fast-path entries' own, so
    /// none is used before a worker has checked it.
    pub fn generation(&self) -> u64 {
        self.leftover
            .as_ref()
            .map_or(1, |l| u64::from(l.fast_generation()) + 1)
    }
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
