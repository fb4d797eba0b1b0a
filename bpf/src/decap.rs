//! The real server's tunnel decap program (IPIP, and IPv6-in-IPv6): loading, its VIP
//! maps, and attaching it to tc ingress so that it stays attached after the loading
//! process exits.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::{
    MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramMut, TcHookBuilder, TC_INGRESS,
};

use crate::abi::layout::MAX_DECAP_VIPS;
use crate::abi::DecapCounters;
use crate::BpfError;

const PROG: &str = "xvs_decap";
const MAP_VIPS: &str = "xvs_decap_vips";
const MAP_VIPS6: &str = "xvs_decap_vips6";
const MAP_COUNTERS: &str = "xvs_decap_counters";
/// xvs's tc filter: a fixed handle and priority, so a later `xvs realserver down` finds it.
pub const TC_HANDLE: u32 = 0x5856;
pub const TC_PRIORITY: u32 = 0x5856;

pub struct Decap {
    obj: Object,
    prog_fd: OwnedFd,
    vips: MapHandle,
    vips6: MapHandle,
    counters: MapHandle,
}

impl Decap {
    pub fn load() -> Result<Self, BpfError> {
        let load_err = |source| BpfError::Load {
            object: "decap.bpf.o",
            source,
        };
        let obj = ObjectBuilder::default()
            .open_memory(crate::DECAP_OBJECT)
            .map_err(load_err)?
            .load()
            .map_err(load_err)?;
        let prog_fd = {
            let prog = obj
                .progs()
                .find(|p| p.name() == PROG)
                .ok_or(BpfError::Missing {
                    kind: "program",
                    name: PROG,
                })?;
            prog.as_fd()
                .try_clone_to_owned()
                .map_err(|e| load_err(e.into()))?
        };
        Ok(Decap {
            vips: crate::steer::map_handle(&obj, MAP_VIPS)?,
            vips6: crate::steer::map_handle(&obj, MAP_VIPS6)?,
            counters: crate::steer::map_handle(&obj, MAP_COUNTERS)?,
            prog_fd,
            obj,
        })
    }

    /// The loaded program, for BPF_PROG_TEST_RUN.
    pub fn program(&self) -> ProgramMut<'_> {
        self.obj
            .progs_mut()
            .find(|p| p.name() == PROG)
            .expect("found at load")
    }

    /// The VIPs whose tunnelled packets are decapsulated (added; none removed): IPv4
    /// ones from IPIP, IPv6 ones from IPv6-in-IPv6.
    pub fn add_vips(&self, vips: &[IpAddr]) -> Result<(), BpfError> {
        if vips.len() > MAX_DECAP_VIPS as usize {
            return Err(BpfError::TooManyServices(vips.len()));
        }
        for v in vips {
            let (map, name, key) = match v {
                IpAddr::V4(a) => (&self.vips, MAP_VIPS, a.octets().to_vec()),
                IpAddr::V6(a) => (&self.vips6, MAP_VIPS6, a.octets().to_vec()),
            };
            map.update(&key, &[1], MapFlags::ANY)
                .map_err(BpfError::map("update", name))?;
        }
        Ok(())
    }

    pub fn counters(&self) -> Result<DecapCounters, BpfError> {
        let mut sum = DecapCounters::new();
        crate::steer::sum_per_cpu(&self.counters, MAP_COUNTERS, 0, |cpu| sum.add_raw(cpu))?;
        Ok(sum)
    }

    /// Attaches to tc ingress of `ifindex` (adding the clsact qdisc if missing), replacing
    /// an earlier xvs decap filter. The kernel keeps it after this process exits.
    pub fn attach(&self, ifindex: i32) -> Result<(), BpfError> {
        let attach_err = |source| BpfError::Attach {
            ifindex,
            mode: "tc ingress",
            source,
        };
        let mut hook = TcHookBuilder::new(self.prog_fd.as_fd())
            .ifindex(ifindex)
            .replace(true)
            .handle(TC_HANDLE)
            .priority(TC_PRIORITY)
            .hook(TC_INGRESS);
        hook.create().map_err(attach_err)?;
        hook.attach().map_err(attach_err)?;
        Ok(())
    }

    /// Removes xvs's decap filter from `ifindex`; false if there was none.
    pub fn detach(&self, ifindex: i32) -> Result<bool, BpfError> {
        let mut hook = TcHookBuilder::new(self.prog_fd.as_fd())
            .ifindex(ifindex)
            .handle(TC_HANDLE)
            .priority(TC_PRIORITY)
            .hook(TC_INGRESS);
        if hook.query().is_err() {
            return Ok(false);
        }
        hook.detach().map_err(|source| BpfError::Attach {
            ifindex,
            mode: "tc ingress (detach)",
            source,
        })?;
        Ok(true)
    }

    /// Whether xvs's decap filter is on `ifindex`.
    pub fn attached(&self, ifindex: i32) -> bool {
        TcHookBuilder::new(self.prog_fd.as_fd())
            .ifindex(ifindex)
            .handle(TC_HANDLE)
            .priority(TC_PRIORITY)
            .hook(TC_INGRESS)
            .query()
            .is_ok()
    }
}
