//! The real server's FullNAT programs (`toa.bpf.c`): loading, the director's local
//! addresses they trust, and attaching them to tc ingress and egress of a device so
//! that they stay attached after the loading process exits.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::{
    MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramMut, TcHook, TcHookBuilder,
    TC_EGRESS, TC_INGRESS,
};

use crate::abi::layout::MAX_TOA_TRUSTED;
use crate::abi::{toa_trusted_key, ToaCounters};
use crate::BpfError;

const PROG_IN: &str = "xvs_toa_in";
const PROG_OUT: &str = "xvs_toa_out";
const MAP_TRUSTED: &str = "xvs_toa_trusted";
const MAP_COUNTERS: &str = "xvs_toa_counters";
/// xvs's FullNAT tc filters: their own handle and priority (beside the decap filter's),
/// so that a later `xvs realserver down` finds them.
pub const TC_HANDLE: u32 = 0x5857;
pub const TC_PRIORITY: u32 = 0x5857;

pub struct Toa {
    obj: Object,
    in_fd: OwnedFd,
    out_fd: OwnedFd,
    trusted: MapHandle,
    counters: MapHandle,
}

impl Toa {
    pub fn load() -> Result<Self, BpfError> {
        let load_err = |source| BpfError::Load {
            object: "toa.bpf.o",
            source,
        };
        let obj = ObjectBuilder::default()
            .open_memory(crate::TOA_OBJECT)
            .map_err(load_err)?
            .load()
            .map_err(load_err)?;
        let fd = |name: &'static str| -> Result<OwnedFd, BpfError> {
            let prog = obj
                .progs()
                .find(|p| p.name() == name)
                .ok_or(BpfError::Missing {
                    kind: "program",
                    name,
                })?;
            prog.as_fd()
                .try_clone_to_owned()
                .map_err(|e| load_err(e.into()))
        };
        Ok(Toa {
            in_fd: fd(PROG_IN)?,
            out_fd: fd(PROG_OUT)?,
            trusted: crate::steer::map_handle(&obj, MAP_TRUSTED)?,
            counters: crate::steer::map_handle(&obj, MAP_COUNTERS)?,
            obj,
        })
    }

    /// The loaded programs (ingress, egress), for BPF_PROG_TEST_RUN.
    pub fn program(&self, ingress: bool) -> ProgramMut<'_> {
        let name = if ingress { PROG_IN } else { PROG_OUT };
        self.obj
            .progs_mut()
            .find(|p| p.name() == name)
            .expect("found at load")
    }

    /// The director's local addresses whose option is believed (added).
    pub fn trust(&self, locals: &[IpAddr]) -> Result<(), BpfError> {
        if locals.len() > MAX_TOA_TRUSTED as usize {
            return Err(BpfError::TooMany {
                what: "trusted local addresses",
                count: locals.len(),
                max: MAX_TOA_TRUSTED,
            });
        }
        for a in locals {
            self.trusted
                .update(&toa_trusted_key(*a), &[1], MapFlags::ANY)
                .map_err(BpfError::map("update", MAP_TRUSTED))?;
        }
        Ok(())
    }

    pub fn counters(&self) -> Result<ToaCounters, BpfError> {
        let mut sum = ToaCounters::new();
        crate::steer::sum_per_cpu(&self.counters, MAP_COUNTERS, 0, |cpu| sum.add_raw(cpu))?;
        Ok(sum)
    }

    /// The tc hook of one program on `ifindex` (`replace`: over an earlier one).
    fn hook(&self, ifindex: i32, ingress: bool, replace: bool) -> TcHook {
        let (fd, point) = if ingress {
            (self.in_fd.as_fd(), TC_INGRESS)
        } else {
            (self.out_fd.as_fd(), TC_EGRESS)
        };
        TcHookBuilder::new(fd)
            .ifindex(ifindex)
            .replace(replace)
            .handle(TC_HANDLE)
            .priority(TC_PRIORITY)
            .hook(point)
    }

    fn point(ingress: bool) -> &'static str {
        if ingress {
            "tc ingress"
        } else {
            "tc egress"
        }
    }

    /// Attaches both programs to `ifindex` (adding the clsact qdisc if missing),
    /// replacing earlier xvs FullNAT filters. The kernel keeps them after this process
    /// exits.
    pub fn attach(&self, ifindex: i32) -> Result<(), BpfError> {
        for ingress in [true, false] {
            let attach_err = |source| BpfError::Attach {
                ifindex,
                mode: Self::point(ingress),
                source,
            };
            let mut hook = self.hook(ifindex, ingress, true);
            hook.create().map_err(attach_err)?;
            hook.attach().map_err(attach_err)?;
        }
        Ok(())
    }

    /// Removes xvs's FullNAT filters from `ifindex`; false if there were none.
    pub fn detach(&self, ifindex: i32) -> Result<bool, BpfError> {
        let mut any = false;
        for ingress in [true, false] {
            let mut hook = self.hook(ifindex, ingress, false);
            if hook.query().is_err() {
                continue;
            }
            hook.detach().map_err(|source| BpfError::Attach {
                ifindex,
                mode: Self::point(ingress),
                source,
            })?;
            any = true;
        }
        Ok(any)
    }

    /// Whether both of xvs's FullNAT filters are on `ifindex`.
    pub fn attached(&self, ifindex: i32) -> bool {
        [true, false]
            .into_iter()
            .all(|ingress| self.hook(ifindex, ingress, false).query().is_ok())
    }
}
