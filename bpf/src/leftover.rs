//! The connection state a replaced steering program leaves behind. A killed xvs's
//! program stays attached, and the kernel keeps its maps alive with it; a restarted xvs
//! of the same build and configuration (the `owner` fingerprint in its settings) loads
//! its own program over the same state maps, so the fast path's flows, the known NAT
//! connections and the NAT clients' MACs carry on. Anything else is started afresh.

use std::os::fd::AsFd;

use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
use libbpf_rs::{MapCore, MapFlags, MapHandle, OpenMapMut, Xdp, XdpFlags};

use crate::steer::{
    MAP_CONFIG, MAP_FAST_FLOWS, MAP_FAST_FLOWS6, MAP_NAT_CLIENTS, MAP_NAT_CLIENTS6, MAP_NAT_CONNS,
    MAP_NAT_CONNS6, PROG,
};

/// The maps whose entries are connection state, taken over; the others (services,
/// sockets, settings, counters) are written afresh by the new process.
const STATE_MAPS: [&str; 6] = [
    MAP_FAST_FLOWS,
    MAP_FAST_FLOWS6,
    MAP_NAT_CONNS,
    MAP_NAT_CONNS6,
    MAP_NAT_CLIENTS,
    MAP_NAT_CLIENTS6,
];

/// A steering program found attached, and its maps.
pub struct Leftover {
    owner: u64,
    fast_generation: u32,
    maps: Vec<MapHandle>,
}

impl Leftover {
    /// The xvs_steer program attached to `ifindex`, if one is and its settings can be
    /// read.
    pub fn find(ifindex: i32) -> Option<Leftover> {
        // query_id reads the interface only: any descriptor will do for the handle.
        let id = Xdp::new(std::io::stdin().as_fd())
            .query_id(ifindex, XdpFlags::NONE)
            .ok()
            .filter(|id| *id != 0)?;
        let opts = ProgInfoQueryOptions::default().include_map_ids(true);
        let prog = ProgInfoIter::with_query_opts(opts).find(|p| p.id == id)?;
        if prog.name.to_str() != Some(PROG) {
            return None;
        }
        let maps: Vec<MapHandle> = prog
            .map_ids
            .iter()
            .filter_map(|&m| MapHandle::from_map_id(m).ok())
            .collect();
        let config = maps.iter().find(|m| same_name(m, MAP_CONFIG))?;
        let value = config.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??;
        let (owner, fast_generation) = crate::abi::steer_config_owner(&value)?;
        Some(Leftover {
            owner,
            fast_generation,
            maps,
        })
    }

    /// The fingerprint of the xvs that wrote it (0: one from before fingerprints).
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// The generation its fast-path entries carry: a new process that starts from it
    /// keeps them in use.
    pub fn fast_generation(&self) -> u32 {
        self.fast_generation
    }

    /// Makes `map`, before its object is loaded, use the left-behind map of its name when
    /// that is a state map of the same kind, key, value and size. Returns whether it did.
    pub(crate) fn reuse(&self, map: &mut OpenMapMut<'_>) -> bool {
        let name = map.name().to_str().unwrap_or("");
        if !STATE_MAPS.contains(&name) {
            return false;
        }
        let Some(old) = self.maps.iter().find(|m| same_name(m, name)) else {
            return false;
        };
        let same = old.map_type() == map.map_type()
            && old.key_size() == map.key_size()
            && old.value_size() == map.value_size()
            && old.max_entries() == map.max_entries();
        same && map.reuse_fd(old.as_fd()).is_ok()
    }
}

/// Whether a map the kernel lists is the object's map `name`: the kernel keeps the
/// first 15 bytes of a name.
fn same_name(map: &MapHandle, name: &str) -> bool {
    map.name().to_str() == name.get(..name.len().min(BPF_NAME_KEPT))
}

/// BPF_OBJ_NAME_LEN less its terminating NUL.
const BPF_NAME_KEPT: usize = 15;
