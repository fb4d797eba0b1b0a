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
    MAP_NAT_CONNS6, MAP_XSKS, PROG,
};

/// The maps whose entries are connection state, taken over, and the socket map: the
/// new process's workers register there, so the program still attached forwards to
/// them before the new one replaces it. The others (services, settings, counters) are
/// written afresh by the new process.
const STATE_MAPS: [&str; 7] = [
    MAP_XSKS,
    MAP_FAST_FLOWS,
    MAP_FAST_FLOWS6,
    MAP_NAT_CONNS,
    MAP_NAT_CONNS6,
    MAP_NAT_CLIENTS,
    MAP_NAT_CLIENTS6,
];

/// A steering program found attached, and its maps.
pub struct Leftover {
    /// The program's id: the same id later is the same program, with the same maps.
    id: u32,
    owner: u64,
    fast_generation: u32,
    maps: Vec<MapHandle>,
}

/// Whether any XDP program is attached to `ifindex` (an error reads as yes: the
/// caller then assumes something may be there).
pub fn attached(ifindex: i32) -> bool {
    attached_id(ifindex).map_or(true, |id| id != 0)
}

/// The id of the XDP program attached to `ifindex` (0: none).
fn attached_id(ifindex: i32) -> Result<u32, libbpf_rs::Error> {
    // query_id reads the interface only: any descriptor will do for the handle.
    Xdp::new(std::io::stdin().as_fd()).query_id(ifindex, XdpFlags::NONE)
}

impl Leftover {
    /// The xvs_steer program attached to `ifindex`: `None` when nothing is, an error
    /// saying why when what is there cannot be taken over.
    pub fn find(ifindex: i32) -> Result<Option<Leftover>, &'static str> {
        let id =
            attached_id(ifindex).map_err(|_| "the interface's XDP program cannot be queried")?;
        if id == 0 {
            return Ok(None);
        }
        let opts = ProgInfoQueryOptions::default().include_map_ids(true);
        let prog = ProgInfoIter::with_query_opts(opts)
            .find(|p| p.id == id)
            .ok_or("the attached program cannot be read")?;
        if prog.name.to_str() != Some(PROG) {
            return Err("the attached program is not xvs's");
        }
        let maps: Vec<MapHandle> = prog
            .map_ids
            .iter()
            .filter_map(|&m| MapHandle::from_map_id(m).ok())
            .collect();
        let config = maps
            .iter()
            .find(|m| same_name(m, MAP_CONFIG))
            .ok_or("the attached program's settings cannot be read")?;
        let value = config
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .ok_or("the attached program's settings cannot be read")?;
        let (owner, fast_generation) = crate::abi::steer_config_owner(&value)
            .ok_or("the attached program is from a version without takeover")?;
        Ok(Some(Leftover {
            id,
            owner,
            fast_generation,
            maps,
        }))
    }

    /// The attached program's id.
    pub fn id(&self) -> u32 {
        self.id
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
        // Entries of a fast path that was off (generation 0) may be of any age.
        if self.fast_generation == 0 && (name == MAP_FAST_FLOWS || name == MAP_FAST_FLOWS6) {
            return false;
        }
        // Names cut to 15 bytes may collide (xvs_nat_clients6): the shape tells them apart.
        let old = self.maps.iter().find(|old| {
            same_name(old, name)
                && old.map_type() == map.map_type()
                && old.key_size() == map.key_size()
                && old.value_size() == map.value_size()
                && old.max_entries() == map.max_entries()
        });
        old.is_some_and(|old| map.reuse_fd(old.as_fd()).is_ok())
    }
}

/// Whether a map the kernel lists is the object's map `name`: the kernel keeps the
/// first 15 bytes of a name.
fn same_name(map: &MapHandle, name: &str) -> bool {
    map.name().to_str() == name.get(..name.len().min(BPF_NAME_KEPT))
}

/// BPF_OBJ_NAME_LEN less its terminating NUL.
const BPF_NAME_KEPT: usize = 15;
