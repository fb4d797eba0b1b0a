//! Loading the steering program, attaching it to an interface, and filling its maps.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use libbpf_rs::{
    Map, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, Program, ProgramMut, Xdp, XdpFlags,
};

use crate::abi::{SvcKey, XdpCounters, MAX_QUEUES, MAX_SERVICES};
use crate::BpfError;

const PROG: &str = "xvs_steer";
const MAP_SERVICES: &str = "xvs_services";
const MAP_XSKS: &str = "xvs_xsks";
const MAP_COUNTERS: &str = "xvs_counters";

/// How the operator asked for the program to be attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic when the driver lacks XDP.
    Auto,
    Native,
    Generic,
}

/// The mode the program ended up attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    Native,
    Generic,
}

impl XdpMode {
    fn flags(self) -> XdpFlags {
        match self {
            XdpMode::Native => XdpFlags::DRV_MODE,
            XdpMode::Generic => XdpFlags::SKB_MODE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// The loaded steering program and handles on its maps. Dropping it detaches the program.
pub struct Steer {
    obj: Object,
    prog_fd: OwnedFd,
    services: MapHandle,
    xsks: MapHandle,
    counters: MapHandle,
    attached: Option<(i32, XdpMode)>,
}

pub(crate) fn map_handle(obj: &Object, name: &'static str) -> Result<MapHandle, BpfError> {
    let map: Map<'_> = obj
        .maps()
        .find(|m| m.name() == name)
        .ok_or(BpfError::Missing { kind: "map", name })?;
    MapHandle::try_from(&map).map_err(|source| BpfError::Map {
        op: "open",
        map: name,
        source,
    })
}

impl Steer {
    /// Loads the program into the kernel; nothing is attached yet.
    pub fn load() -> Result<Self, BpfError> {
        let load_err = |source| BpfError::Load {
            object: "steer.bpf.o",
            source,
        };
        let open = ObjectBuilder::default()
            .open_memory(crate::STEER_OBJECT)
            .map_err(load_err)?;
        let obj = open.load().map_err(load_err)?;
        let prog_fd = {
            let prog = find_prog(&obj)?;
            prog.as_fd()
                .try_clone_to_owned()
                .map_err(|e| load_err(e.into()))?
        };
        Ok(Steer {
            services: map_handle(&obj, MAP_SERVICES)?,
            xsks: map_handle(&obj, MAP_XSKS)?,
            counters: map_handle(&obj, MAP_COUNTERS)?,
            prog_fd,
            obj,
            attached: None,
        })
    }

    /// The loaded program, for BPF_PROG_TEST_RUN.
    pub fn program(&self) -> ProgramMut<'_> {
        self.obj
            .progs_mut()
            .find(|p| p.name() == PROG)
            .expect("found at load")
    }

    /// Attaches to `ifindex`, replacing any XDP program there (a crashed run leaves its
    /// program behind). Returns the mode it got.
    pub fn attach(&mut self, ifindex: i32, mode: AttachMode) -> Result<XdpMode, BpfError> {
        self.detach();
        let xdp = Xdp::new(self.prog_fd.as_fd());
        let try_mode = |m: XdpMode| {
            xdp.attach(ifindex, m.flags())
                .map_err(|source| BpfError::Attach {
                    ifindex,
                    mode: m.as_str(),
                    source,
                })
        };
        let got = match mode {
            AttachMode::Native => try_mode(XdpMode::Native).map(|_| XdpMode::Native)?,
            AttachMode::Generic => try_mode(XdpMode::Generic).map(|_| XdpMode::Generic)?,
            AttachMode::Auto => match try_mode(XdpMode::Native) {
                Ok(()) => XdpMode::Native,
                Err(_) => try_mode(XdpMode::Generic).map(|_| XdpMode::Generic)?,
            },
        };
        self.attached = Some((ifindex, got));
        Ok(got)
    }

    /// Detaches from the interface, if attached. Idempotent.
    pub fn detach(&mut self) {
        if let Some((ifindex, mode)) = self.attached.take() {
            // Nothing to do on failure: the interface may be gone already.
            let _ = Xdp::new(self.prog_fd.as_fd()).detach(ifindex, mode.flags());
        }
    }

    pub fn attached(&self) -> Option<(i32, XdpMode)> {
        self.attached
    }

    /// Makes the steering map hold exactly `keys`: new ones are added before stale ones go,
    /// so a service present in both the old and new set is never missing.
    pub fn set_services(&self, keys: &[SvcKey]) -> Result<(), BpfError> {
        if keys.len() > MAX_SERVICES as usize {
            return Err(BpfError::TooManyServices(keys.len()));
        }
        let map_err = |op| {
            move |source| BpfError::Map {
                op,
                map: MAP_SERVICES,
                source,
            }
        };
        let wanted: HashSet<SvcKey> = keys.iter().copied().collect();
        let value = [0u8; crate::abi::layout::SVC_VALUE_SIZE];
        for k in &wanted {
            self.services
                .update(&k.to_bytes(), &value, MapFlags::ANY)
                .map_err(map_err("update"))?;
        }
        let stale: Vec<Vec<u8>> = self
            .services
            .keys()
            .filter(|raw| SvcKey::from_bytes(raw).is_none_or(|k| !wanted.contains(&k)))
            .collect();
        for raw in stale {
            self.services.delete(&raw).map_err(map_err("delete"))?;
        }
        Ok(())
    }

    /// The services the steering map holds now.
    pub fn services(&self) -> Vec<SvcKey> {
        self.services
            .keys()
            .filter_map(|raw| SvcKey::from_bytes(&raw))
            .collect()
    }

    /// Points RX queue `queue` at the AF_XDP socket `fd`.
    pub fn register_xsk(&self, queue: u32, fd: RawFd) -> Result<(), BpfError> {
        if queue >= MAX_QUEUES {
            return Err(BpfError::QueueOutOfRange(queue));
        }
        self.xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                op: "update",
                map: MAP_XSKS,
                source,
            })
    }

    /// Removes queue `queue`'s socket: its packets go to the kernel again.
    pub fn unregister_xsk(&self, queue: u32) {
        // Absent already is fine.
        let _ = self.xsks.delete(&queue.to_ne_bytes());
    }

    /// The steering counters, summed over CPUs.
    pub fn counters(&self) -> Result<XdpCounters, BpfError> {
        let per_cpu = self
            .counters
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                op: "read",
                map: MAP_COUNTERS,
                source,
            })?;
        let mut sum = XdpCounters::default();
        for cpu in per_cpu.iter().flatten() {
            sum.add_raw(cpu);
        }
        Ok(sum)
    }

    pub fn prog_fd(&self) -> RawFd {
        self.prog_fd.as_raw_fd()
    }
}

impl Drop for Steer {
    fn drop(&mut self) {
        self.detach();
    }
}

fn find_prog(obj: &Object) -> Result<Program<'_>, BpfError> {
    obj.progs()
        .find(|p| p.name() == PROG)
        .ok_or(BpfError::Missing {
            kind: "program",
            name: PROG,
        })
}
