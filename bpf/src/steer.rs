//! Loading the steering program, attaching it to an interface, and filling its maps.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use libbpf_rs::{
    Map, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, Program, ProgramMut, Xdp, XdpFlags,
};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::abi::{
    NatKey, NatOut, NatValue, Svc6Key, SvcKey, XdpCounters, MAX_NAT_BACKENDS, MAX_QUEUES,
    MAX_SERVICES,
};
use crate::leftover::Leftover;
use crate::BpfError;

pub(crate) const PROG: &str = "xvs_steer";
const MAP_SERVICES: &str = "xvs_services";
const MAP_SERVICES6: &str = "xvs_services6";
pub(crate) const MAP_XSKS: &str = "xvs_xsks";
const MAP_COUNTERS: &str = "xvs_counters";
const MAP_NAT_BACKENDS: &str = "xvs_nat_backends";
const MAP_NAT_BACKENDS6: &str = "xvs_nat_backends6";
pub(crate) const MAP_NAT_CLIENTS: &str = "xvs_nat_clients";
pub(crate) const MAP_NAT_CLIENTS6: &str = "xvs_nat_clients6";
const MAP_NAT_OUT: &str = "xvs_nat_out";
pub(crate) const MAP_NAT_CONNS: &str = "xvs_nat_conns";
pub(crate) const MAP_NAT_CONNS6: &str = "xvs_nat_conns6";
const MAP_NAT_ADDRS: &str = "xvs_nat_addrs";
const MAP_FNAT_LIPS: &str = "xvs_fnat_lips";
const MAP_FNAT_LIPS6: &str = "xvs_fnat_lips6";
pub(crate) const MAP_FNAT_CONNS: &str = "xvs_fnat_conns";
pub(crate) const MAP_FNAT_CONNS6: &str = "xvs_fnat_conns6";
const MAP_NAT_ADDRS6: &str = "xvs_nat_addrs6";
pub(crate) const MAP_FAST_FLOWS: &str = "xvs_fast_flows";
pub(crate) const MAP_FAST_FLOWS6: &str = "xvs_fast_flows6";
const MAP_FAST_STATS: &str = "xvs_fast_stats";
pub(crate) const MAP_CONFIG: &str = "xvs_steer_config";
const MAP_LOCAL_MACS: &str = "xvs_local_macs";
const MAP_LOCAL_ADDRS: &str = "xvs_local_addrs";
const MAP_LOCAL_ADDRS6: &str = "xvs_local_addrs6";
const MAP_SYN_GUARD: &str = "xvs_syn_guard";
const MAP_SYN_KEY: &str = "xvs_syn_key";

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
    pub(crate) fn flags(self) -> XdpFlags {
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
    services6: MapHandle,
    xsks: MapHandle,
    counters: MapHandle,
    nat_backends: MapHandle,
    nat_backends6: MapHandle,
    nat_clients: MapHandle,
    nat_clients6: MapHandle,
    nat_out: MapHandle,
    nat_conns: MapHandle,
    nat_conns6: MapHandle,
    nat_addrs: MapHandle,
    nat_addrs6: MapHandle,
    fnat_lips: MapHandle,
    fnat_lips6: MapHandle,
    fnat_conns: MapHandle,
    fnat_conns6: MapHandle,
    config: MapHandle,
    /// What `config` holds: (external ifindex, fast-path generation, flags, owner).
    config_value: crate::abi::SteerConfig,
    fast_flows: MapHandle,
    fast_flows6: MapHandle,
    fast_stats: MapHandle,
    local_macs: MapHandle,
    local_addrs: MapHandle,
    local_addrs6: MapHandle,
    syn_guard: MapHandle,
    attached: Vec<(i32, XdpMode)>,
}

/// An address set's map entries (the address → 1), per family, sorted and deduplicated;
/// refused when a family has more than `max`.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;
fn address_sets(
    addrs: &[IpAddr],
    what: &'static str,
    max: u32,
) -> Result<(Entries, Entries), BpfError> {
    let set = |v6: bool| -> Entries {
        let mut v: Entries = addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| match a {
                IpAddr::V4(a) => (a.octets().to_vec(), vec![1u8]),
                IpAddr::V6(a) => (a.octets().to_vec(), vec![1u8]),
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (v4, v6) = (set(false), set(true));
    let count = v4.len().max(v6.len());
    if count > max as usize {
        return Err(BpfError::TooMany { what, count, max });
    }
    Ok((v4, v6))
}

pub(crate) fn map_handle(obj: &Object, name: &'static str) -> Result<MapHandle, BpfError> {
    let map: Map<'_> = obj
        .maps()
        .find(|m| m.name() == name)
        .ok_or(BpfError::Missing { kind: "map", name })?;
    MapHandle::try_from(&map).map_err(BpfError::map("open", name))
}

impl Steer {
    /// Loads the program into the kernel; nothing is attached yet.
    pub fn load() -> Result<Self, BpfError> {
        Self::load_sized(
            crate::abi::MAX_FAST_FLOWS,
            crate::abi::layout::MAX_NAT_CONNS,
        )
    }

    /// As `load`, with room for `fast_flows` flows in the fast path's maps and
    /// `nat_conns` NAT connections in the known NAT connections' maps, and as many
    /// FullNAT ones in theirs (preallocated kernel memory, about 100 bytes an entry:
    /// size them to the flows a director carries).
    pub fn load_sized(fast_flows: u32, nat_conns: u32) -> Result<Self, BpfError> {
        Self::load_taking(fast_flows, nat_conns, None).map(|(steer, _)| steer)
    }

    /// As `load_sized`, over the state maps `leftover` holds where they are of the same
    /// kind and size (see `Leftover`). Returns how many it took over.
    pub fn load_taking(
        fast_flows: u32,
        nat_conns: u32,
        leftover: Option<&Leftover>,
    ) -> Result<(Self, usize), BpfError> {
        let load_err = |source| BpfError::Load {
            object: "steer.bpf.o",
            source,
        };
        let mut open = ObjectBuilder::default()
            .open_memory(crate::STEER_OBJECT)
            .map_err(load_err)?;
        for mut m in open
            .maps_mut()
            .filter(|m| m.name() == MAP_FAST_FLOWS || m.name() == MAP_FAST_FLOWS6)
        {
            m.set_max_entries(fast_flows.max(1)).map_err(load_err)?;
        }
        for mut m in open.maps_mut().filter(|m| {
            [
                MAP_NAT_CONNS,
                MAP_NAT_CONNS6,
                MAP_FNAT_CONNS,
                MAP_FNAT_CONNS6,
            ]
            .iter()
            .any(|n| m.name() == *n)
        }) {
            m.set_max_entries(nat_conns.max(1)).map_err(load_err)?;
        }
        let mut taken = 0;
        if let Some(l) = leftover {
            for mut m in open.maps_mut() {
                taken += usize::from(l.reuse(&mut m));
            }
        }
        let obj = open.load().map_err(load_err)?;
        let prog_fd = {
            let prog = find_prog(&obj)?;
            prog.as_fd()
                .try_clone_to_owned()
                .map_err(|e| load_err(e.into()))?
        };
        let steer = Steer {
            services: map_handle(&obj, MAP_SERVICES)?,
            services6: map_handle(&obj, MAP_SERVICES6)?,
            xsks: map_handle(&obj, MAP_XSKS)?,
            counters: map_handle(&obj, MAP_COUNTERS)?,
            nat_backends: map_handle(&obj, MAP_NAT_BACKENDS)?,
            nat_backends6: map_handle(&obj, MAP_NAT_BACKENDS6)?,
            nat_clients: map_handle(&obj, MAP_NAT_CLIENTS)?,
            nat_clients6: map_handle(&obj, MAP_NAT_CLIENTS6)?,
            nat_out: map_handle(&obj, MAP_NAT_OUT)?,
            nat_conns: map_handle(&obj, MAP_NAT_CONNS)?,
            nat_conns6: map_handle(&obj, MAP_NAT_CONNS6)?,
            nat_addrs: map_handle(&obj, MAP_NAT_ADDRS)?,
            nat_addrs6: map_handle(&obj, MAP_NAT_ADDRS6)?,
            fnat_lips: map_handle(&obj, MAP_FNAT_LIPS)?,
            fnat_lips6: map_handle(&obj, MAP_FNAT_LIPS6)?,
            fnat_conns: map_handle(&obj, MAP_FNAT_CONNS)?,
            fnat_conns6: map_handle(&obj, MAP_FNAT_CONNS6)?,
            config: map_handle(&obj, MAP_CONFIG)?,
            config_value: crate::abi::SteerConfig::default(),
            fast_flows: map_handle(&obj, MAP_FAST_FLOWS)?,
            fast_flows6: map_handle(&obj, MAP_FAST_FLOWS6)?,
            fast_stats: map_handle(&obj, MAP_FAST_STATS)?,
            local_macs: map_handle(&obj, MAP_LOCAL_MACS)?,
            local_addrs: map_handle(&obj, MAP_LOCAL_ADDRS)?,
            local_addrs6: map_handle(&obj, MAP_LOCAL_ADDRS6)?,
            syn_guard: map_handle(&obj, MAP_SYN_GUARD)?,
            prog_fd,
            obj,
            attached: Vec::new(),
        };
        steer.write_syn_key()?;
        Ok((steer, taken))
    }

    /// A fresh random key for the SYN guard's hash, so where a SYN's bits fall cannot be
    /// worked out from outside.
    fn write_syn_key(&self) -> Result<(), BpfError> {
        use std::io::Read;
        let mut key = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| BpfError::Map {
                op: "key (reading /dev/urandom)",
                map: MAP_SYN_KEY,
                source: e.into(),
            })?;
        map_handle(&self.obj, MAP_SYN_KEY)?
            .update(&0u32.to_ne_bytes(), &key, MapFlags::ANY)
            .map_err(BpfError::map("update", MAP_SYN_KEY))
    }

    /// Turns every queue's SYN guard entry off (`syn_guard` left `auto`: the flag already
    /// stops the program reading them; cleared, a later `auto` starts from none).
    pub fn clear_syn_guards(&self) -> Result<(), BpfError> {
        let keys: Vec<u8> = (0..MAX_QUEUES).flat_map(u32::to_ne_bytes).collect();
        let values = vec![0u8; MAX_QUEUES as usize * 8];
        self.syn_guard
            .update_batch(&keys, &values, MAX_QUEUES, MapFlags::ANY, MapFlags::ANY)
            .map_err(BpfError::map("update", MAP_SYN_GUARD))
    }

    /// The loaded program, for BPF_PROG_TEST_RUN.
    pub fn program(&self) -> ProgramMut<'_> {
        self.obj
            .progs_mut()
            .find(|p| p.name() == PROG)
            .expect("found at load")
    }

    /// Attaches to `ifindex` (one more interface), replacing any XDP program there (a
    /// crashed run leaves its program behind). Returns the mode it got.
    pub fn attach(&mut self, ifindex: i32, mode: AttachMode) -> Result<XdpMode, BpfError> {
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
        self.attached.push((ifindex, got));
        Ok(got)
    }

    /// Detaches from every interface it is attached to. Idempotent.
    pub fn detach(&mut self) {
        for (ifindex, mode) in self.attached.drain(..) {
            // Nothing to do on failure: the interface may be gone already.
            let _ = Xdp::new(self.prog_fd.as_fd()).detach(ifindex, mode.flags());
        }
    }

    pub fn attached(&self) -> &[(i32, XdpMode)] {
        &self.attached
    }

    /// The director's MAC on `ifindex`: unicast frames to other MACs there are left to
    /// the kernel.
    pub fn set_local_mac(&self, ifindex: u32, mac: [u8; 6]) -> Result<(), BpfError> {
        self.local_macs
            .update(
                &ifindex.to_ne_bytes(),
                &crate::abi::local_mac_value(mac),
                MapFlags::ANY,
            )
            .map_err(BpfError::map("update", MAP_LOCAL_MACS))
    }

    /// The director's own addresses: packets to them are never NAT replies.
    pub fn set_local_addrs(&self, addrs: &[Ipv4Addr]) -> Result<(), BpfError> {
        let keys = addrs.iter().map(|a| a.octets().to_vec()).collect();
        set_addrs(
            &self.local_addrs,
            MAP_LOCAL_ADDRS,
            "director addresses",
            keys,
        )
    }

    /// The director's own IPv6 addresses and VIPs: martian as a source.
    pub fn set_local_addrs6(&self, addrs: &[Ipv6Addr]) -> Result<(), BpfError> {
        let keys = addrs.iter().map(|a| a.octets().to_vec()).collect();
        set_addrs(
            &self.local_addrs6,
            MAP_LOCAL_ADDRS6,
            "director IPv6 addresses",
            keys,
        )
    }

    /// Steers services only on `ifindex` (0: on any interface the program is on).
    pub fn set_external_ifindex(&mut self, ifindex: u32) -> Result<(), BpfError> {
        self.config_value.external_ifindex = ifindex;
        self.write_config()
    }

    /// Two-arm NAT: the fast path sends NAT requests out of `ifindex`, the internal
    /// interface (0: one arm, by `XDP_TX`).
    pub fn set_internal_ifindex(&mut self, ifindex: u32) -> Result<(), BpfError> {
        self.config_value.internal_ifindex = ifindex;
        self.write_config()
    }

    /// The fast path's generation: entries written under another are ignored (0: the
    /// fast path is off). Moved on after each published snapshot.
    pub fn set_fast_generation(&mut self, generation: u32) -> Result<(), BpfError> {
        self.config_value.fast_generation = generation;
        self.write_config()
    }

    /// NAT replies arriving on the external interface go to the workers' sockets once
    /// translated, not out with `XDP_TX` (`XVS_CFG_NAT_RELAY`); with `partial`, partial
    /// checksums are moved as such for the workers to complete (`XVS_CFG_PARTIAL_CSUM`).
    pub fn set_nat_relay(&mut self, on: bool, partial: bool) -> Result<(), BpfError> {
        use crate::abi::layout::{CFG_NAT_RELAY, CFG_PARTIAL_CSUM};
        let relay = match (on, partial) {
            (false, _) => 0,
            (true, false) => CFG_NAT_RELAY,
            (true, true) => CFG_NAT_RELAY | CFG_PARTIAL_CSUM,
        };
        self.config_value.flags =
            (self.config_value.flags & !(CFG_NAT_RELAY | CFG_PARTIAL_CSUM)) | relay;
        self.write_config()
    }

    /// Sets the SYN guard: on for every queue (`syn_guard: on`, `XVS_CFG_SYN_GUARD`), on
    /// for each queue while its worker asks (`auto`, `XVS_CFG_SYN_GUARD_AUTO`, through
    /// `syn_guard_fd`), or off (neither), in one write.
    pub fn set_syn_guard(&mut self, always: bool, auto: bool) -> Result<(), BpfError> {
        use crate::abi::layout::{CFG_SYN_GUARD, CFG_SYN_GUARD_AUTO};
        let mut flags = self.config_value.flags & !(CFG_SYN_GUARD | CFG_SYN_GUARD_AUTO);
        if always {
            flags |= CFG_SYN_GUARD;
        }
        if auto {
            flags |= CFG_SYN_GUARD_AUTO;
        }
        self.config_value.flags = flags;
        self.write_config()
    }

    /// A descriptor of `xvs_syn_guard` for a worker to turn its queue's guard on through.
    pub fn syn_guard_fd(&self) -> Result<OwnedFd, BpfError> {
        dup_map(&self.syn_guard, MAP_SYN_GUARD)
    }

    /// Records who writes the maps (`Leftover::owner` to a later process).
    pub fn set_owner(&mut self, owner: u64) -> Result<(), BpfError> {
        self.config_value.owner = owner;
        self.write_config()
    }

    fn write_config(&self) -> Result<(), BpfError> {
        self.config
            .update(
                &0u32.to_ne_bytes(),
                &self.config_value.value(),
                MapFlags::ANY,
            )
            .map_err(BpfError::map("update", MAP_CONFIG))
    }

    /// Descriptors of `xvs_fast_flows` and `xvs_fast_flows6` for a worker to write its
    /// entries through.
    pub fn fast_flows_fds(&self) -> Result<(OwnedFd, OwnedFd), BpfError> {
        Ok((
            dup_map(&self.fast_flows, MAP_FAST_FLOWS)?,
            dup_map(&self.fast_flows6, MAP_FAST_FLOWS6)?,
        ))
    }

    /// The known NAT connections' maps (IPv4, IPv6), duplicated for a worker to write.
    pub fn nat_conns_fds(&self) -> Result<(OwnedFd, OwnedFd), BpfError> {
        Ok((
            dup_map(&self.nat_conns, MAP_NAT_CONNS)?,
            dup_map(&self.nat_conns6, MAP_NAT_CONNS6)?,
        ))
    }

    /// The FullNAT reply maps (IPv4, IPv6), duplicated for a worker to write.
    pub fn fnat_conns_fds(&self) -> Result<(OwnedFd, OwnedFd), BpfError> {
        Ok((
            dup_map(&self.fnat_conns, MAP_FNAT_CONNS)?,
            dup_map(&self.fnat_conns6, MAP_FNAT_CONNS6)?,
        ))
    }

    /// Makes FullNAT's local address sets hold exactly `addrs` (each family in its
    /// map): a real server's packet to one of them is looked up as a reply.
    pub fn set_fnat_locals(&self, addrs: &[IpAddr]) -> Result<(), BpfError> {
        let max = crate::abi::layout::MAX_FNAT_LOCALS;
        let (v4, v6) = address_sets(addrs, "FullNAT local addresses", max)?;
        replace_all(&self.fnat_lips, MAP_FNAT_LIPS, &v4)?;
        replace_all(&self.fnat_lips6, MAP_FNAT_LIPS6, &v6)
    }

    /// Writes a FullNAT reply entry (tests; the workers do it in life): `key` and
    /// `value` as the map holds them (`xvs_fast_key` or `xvs_fast6_key`, and
    /// `xvs_fnat_value`).
    pub fn add_fnat_conn(&self, v6: bool, key: &[u8], value: &[u8]) -> Result<(), BpfError> {
        let (map, name) = if v6 {
            (&self.fnat_conns6, MAP_FNAT_CONNS6)
        } else {
            (&self.fnat_conns, MAP_FNAT_CONNS)
        };
        map.update(key, value, MapFlags::ANY)
            .map_err(BpfError::map("update", name))
    }

    /// Makes a NAT connection known (tests; the workers do it in life): its replies go
    /// from `raddr:rport` to `caddr:cport` over `proto`.
    pub fn add_nat_conn(
        &self,
        reply_from: (IpAddr, u16),
        reply_to: (IpAddr, u16),
        proto: u8,
    ) -> Result<(), BpfError> {
        let (map, name, key) = self.nat_conn_key(reply_from, reply_to, proto)?;
        map.update(&key, &0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(BpfError::map("update", name))
    }

    /// Whether a NAT connection is known: its replies from `raddr:rport` to
    /// `caddr:cport` would be translated.
    pub fn nat_conn_known(
        &self,
        reply_from: (IpAddr, u16),
        reply_to: (IpAddr, u16),
        proto: u8,
    ) -> Result<bool, BpfError> {
        let (map, name, key) = self.nat_conn_key(reply_from, reply_to, proto)?;
        map.lookup(&key, MapFlags::ANY)
            .map(|v| v.is_some())
            .map_err(BpfError::map("lookup", name))
    }

    /// A NAT connection's reply key (`xvs_fast_key` or `xvs_fast6_key`) and its map.
    fn nat_conn_key(
        &self,
        (raddr, rport): (IpAddr, u16),
        (caddr, cport): (IpAddr, u16),
        proto: u8,
    ) -> Result<(&MapHandle, &'static str, Vec<u8>), BpfError> {
        let (map, name, mut key) = match (raddr, caddr) {
            (IpAddr::V4(r), IpAddr::V4(c)) => (
                &self.nat_conns,
                MAP_NAT_CONNS,
                [r.octets(), c.octets()].concat(),
            ),
            (IpAddr::V6(r), IpAddr::V6(c)) => (
                &self.nat_conns6,
                MAP_NAT_CONNS6,
                [r.octets(), c.octets()].concat(),
            ),
            _ => return Err(BpfError::FamilyMismatch),
        };
        key.extend_from_slice(&rport.to_be_bytes());
        key.extend_from_slice(&cport.to_be_bytes());
        key.extend_from_slice(&[proto, 0, 0, 0]);
        Ok((map, name, key))
    }

    /// Makes the NAT real servers' address sets hold exactly `addrs` (each family in
    /// its map): a fragment from one is dropped rather than passed on untranslated.
    pub fn set_nat_addrs(&self, addrs: &[IpAddr]) -> Result<(), BpfError> {
        let (v4, v6) = address_sets(addrs, "NAT real server addresses", MAX_NAT_BACKENDS)?;
        replace_all(&self.nat_addrs, MAP_NAT_ADDRS, &v4)?;
        replace_all(&self.nat_addrs6, MAP_NAT_ADDRS6, &v6)
    }

    /// What the fast path forwarded for real server `slot` (its id), over every CPU.
    pub fn fast_in(&self, slot: u32) -> Result<NatOut, BpfError> {
        let mut sum = NatOut::default();
        if slot < crate::abi::MAX_NAT_OUT_SLOTS {
            sum_per_cpu(&self.fast_stats, MAP_FAST_STATS, slot, |cpu| {
                sum.add_raw(cpu)
            })?;
        }
        Ok(sum)
    }

    /// Makes the steering map hold exactly `services` (key, `SVC_F_*` flags); a service
    /// in both sets is never missing (`replace_all`).
    pub fn set_services(&self, services: &[(SvcKey, u32)]) -> Result<(), BpfError> {
        let keys = services.iter().map(|(k, f)| (k.to_bytes().to_vec(), *f));
        set_service_map(&self.services, MAP_SERVICES, keys.collect())
    }

    /// As `set_services`, for the IPv6 services' map.
    pub fn set_services6(&self, services: &[(Svc6Key, u32)]) -> Result<(), BpfError> {
        let keys = services.iter().map(|(k, f)| (k.to_bytes().to_vec(), *f));
        set_service_map(&self.services6, MAP_SERVICES6, keys.collect())
    }

    /// The IPv6 services the steering map holds now.
    pub fn services6(&self) -> Vec<Svc6Key> {
        self.services6
            .keys()
            .filter_map(|raw| Svc6Key::from_bytes(&raw))
            .collect()
    }

    /// Makes the NAT maps hold exactly `backends` (each in its family's map).
    pub fn set_nat_backends(&self, backends: &[(NatKey, NatValue)]) -> Result<(), BpfError> {
        if backends.len() > MAX_NAT_BACKENDS as usize {
            return Err(BpfError::TooManyServices(backends.len()));
        }
        let entries = |v6: bool| -> Vec<(Vec<u8>, Vec<u8>)> {
            backends
                .iter()
                .filter(|(k, _)| k.addr.is_ipv6() == v6)
                .map(|(k, v)| (k.to_bytes(), v.to_bytes()))
                .collect()
        };
        replace_all(&self.nat_backends, MAP_NAT_BACKENDS, &entries(false))?;
        replace_all(&self.nat_backends6, MAP_NAT_BACKENDS6, &entries(true))
    }

    fn nat_clients_of(&self, client: IpAddr) -> (&MapHandle, &'static str, Vec<u8>) {
        match client {
            IpAddr::V4(a) => (&self.nat_clients, MAP_NAT_CLIENTS, a.octets().to_vec()),
            IpAddr::V6(a) => (&self.nat_clients6, MAP_NAT_CLIENTS6, a.octets().to_vec()),
        }
    }

    /// The MAC the steering program learned for a NAT client.
    pub fn nat_client(&self, client: impl Into<IpAddr>) -> Option<[u8; 6]> {
        let (map, _, key) = self.nat_clients_of(client.into());
        let v = map.lookup(&key, MapFlags::ANY).ok()??;
        crate::abi::nat_client_mac(&v)
    }

    /// Teaches the steering program a NAT client's MAC (tests; requests do it in life).
    pub fn set_nat_client(&self, client: impl Into<IpAddr>, mac: [u8; 6]) -> Result<(), BpfError> {
        let (map, name, key) = self.nat_clients_of(client.into());
        map.update(&key, &crate::abi::nat_client_value(mac), MapFlags::ANY)
            .map_err(BpfError::map("update", name))
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
            .map_err(BpfError::map("update", MAP_XSKS))
    }

    /// Removes queue `queue`'s socket: its packets go to the kernel again.
    pub fn unregister_xsk(&self, queue: u32) {
        // Absent already is fine.
        let _ = self.xsks.delete(&queue.to_ne_bytes());
    }

    /// The steering counters, summed over CPUs.
    pub fn counters(&self) -> Result<XdpCounters, BpfError> {
        let mut sum = XdpCounters::new();
        sum_per_cpu(&self.counters, MAP_COUNTERS, 0, |cpu| sum.add_raw(cpu))?;
        Ok(sum)
    }

    /// A NAT real server's outbound packets and bytes (its slot's, summed over CPUs).
    /// A slot out of range reads as nothing sent.
    pub fn nat_out(&self, slot: u32) -> Result<NatOut, BpfError> {
        let mut sum = NatOut::default();
        if slot < crate::abi::MAX_NAT_OUT_SLOTS {
            sum_per_cpu(&self.nat_out, MAP_NAT_OUT, slot, |cpu| sum.add_raw(cpu))?;
        }
        Ok(sum)
    }

    /// Real server `slot`'s counters (NAT out, fast path in) back to 0 on every CPU: its
    /// id is being given to a newcomer, which must not start with its predecessor's.
    pub fn clear_slot(&self, slot: u32) -> Result<(), BpfError> {
        if slot >= crate::abi::MAX_NAT_OUT_SLOTS {
            return Ok(());
        }
        for (map, name) in [
            (&self.nat_out, MAP_NAT_OUT),
            (&self.fast_stats, MAP_FAST_STATS),
        ] {
            let key = slot.to_ne_bytes();
            let per_cpu = map
                .lookup_percpu(&key, MapFlags::ANY)
                .map_err(BpfError::map("read", name))?;
            let zeros: Vec<Vec<u8>> = per_cpu
                .into_iter()
                .flatten()
                .map(|v| vec![0; v.len()])
                .collect();
            if !zeros.is_empty() {
                map.update_percpu(&key, &zeros, MapFlags::ANY)
                    .map_err(BpfError::map("clear", name))?;
            }
        }
        Ok(())
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

/// Hands each CPU's copy of entry `key` of a per-CPU array to `add`.
pub(crate) fn sum_per_cpu(
    map: &MapHandle,
    name: &'static str,
    key: u32,
    mut add: impl FnMut(&[u8]),
) -> Result<(), BpfError> {
    let per_cpu = map
        .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
        .map_err(BpfError::map("read", name))?;
    for cpu in per_cpu.iter().flatten() {
        add(cpu);
    }
    Ok(())
}

/// A descriptor of `map` that the caller owns (a worker writes the map through it).
fn dup_map(map: &MapHandle, name: &'static str) -> Result<OwnedFd, BpfError> {
    map.as_fd().try_clone_to_owned().map_err(|e| BpfError::Map {
        op: "duplicate",
        map: name,
        source: e.into(),
    })
}

/// A service map holding exactly `services` (key bytes, `SVC_F_*` flags).
fn set_service_map(
    map: &MapHandle,
    name: &'static str,
    services: Vec<(Vec<u8>, u32)>,
) -> Result<(), BpfError> {
    if services.len() > MAX_SERVICES as usize {
        return Err(BpfError::TooManyServices(services.len()));
    }
    let entries: Vec<(Vec<u8>, Vec<u8>)> = services
        .into_iter()
        .map(|(k, f)| (k, f.to_ne_bytes().to_vec()))
        .collect();
    replace_all(map, name, &entries)
}

/// An address set (key bytes → 1) holding exactly `keys`.
fn set_addrs(
    map: &MapHandle,
    name: &'static str,
    what: &'static str,
    keys: Vec<Vec<u8>>,
) -> Result<(), BpfError> {
    if keys.len() > crate::abi::MAX_LOCAL_ADDRS as usize {
        return Err(BpfError::TooMany {
            what,
            count: keys.len(),
            max: crate::abi::MAX_LOCAL_ADDRS,
        });
    }
    let entries: Vec<(Vec<u8>, Vec<u8>)> = keys.into_iter().map(|k| (k, vec![1u8])).collect();
    replace_all(map, name, &entries)
}

/// Makes `map` hold exactly `entries`: the keys that are not wanted go first, so that
/// a map that holds the new set (its size is checked beforehand) never overflows with
/// the old and new sets together; a key in both is overwritten in place (an update is
/// atomic), never missing.
fn replace_all(
    map: &MapHandle,
    name: &'static str,
    entries: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), BpfError> {
    let wanted: HashSet<&[u8]> = entries.iter().map(|(k, _)| k.as_slice()).collect();
    let stale: Vec<Vec<u8>> = map
        .keys()
        .filter(|k| !wanted.contains(k.as_slice()))
        .collect();
    for k in stale {
        map.delete(&k).map_err(BpfError::map("delete", name))?;
    }
    for (k, v) in entries {
        map.update(k, v, MapFlags::ANY)
            .map_err(BpfError::map("update", name))?;
    }
    Ok(())
}

fn find_prog(obj: &Object) -> Result<Program<'_>, BpfError> {
    obj.progs()
        .find(|p| p.name() == PROG)
        .ok_or(BpfError::Missing {
            kind: "program",
            name: PROG,
        })
}
