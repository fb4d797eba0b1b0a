//! Rust mirrors of `bpf/include/xvs_abi.h`, asserted against the C layout at compile time.

use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Constants generated from the C header by `build.rs` (`abi_probe.c`).
pub mod layout {
    include!(concat!(env!("OUT_DIR"), "/abi_layout.rs"));
}

pub use layout::{
    MAX_FAST_FLOWS, MAX_LOCAL_ADDRS, MAX_LOCAL_MACS, MAX_NAT_BACKENDS, MAX_NAT_CLIENTS,
    MAX_NAT_OUT_SLOTS, MAX_QUEUES, MAX_SERVICES, SVC_F_FAST, SVC_F_NAT, XDP_STAT_LABELS,
};

/// `struct xvs_svc_key`: what the steering program matches.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SvcKey {
    /// Network byte order.
    pub addr: [u8; 4],
    /// Network byte order; 0 = every port.
    pub port: [u8; 2],
    pub proto: u8,
    pub pad: u8,
}

const _: () = assert!(size_of::<SvcKey>() == layout::SVC_KEY_SIZE);
const _: () = assert!(offset_of!(SvcKey, addr) == layout::SVC_KEY_ADDR);
const _: () = assert!(offset_of!(SvcKey, port) == layout::SVC_KEY_PORT);
const _: () = assert!(offset_of!(SvcKey, proto) == layout::SVC_KEY_PROTO);
const _: () = assert!(layout::SVC_VALUE_SIZE == 4);
// The worker writes its queue's SYN guard entry as the program reads it.
const _: () = assert!(layout::SYN_GUARD_SIZE == size_of::<xvs_dataplane::syn_guard::GuardValue>());
const _: () = assert!(layout::SYN_SEEN_SLOTS.is_power_of_two());
const _: () = assert!(layout::XDP_COUNTERS_SIZE == 8 * XDP_STAT_LABELS.len());
const _: () = assert!(layout::DECAP_COUNTERS_SIZE == 8 * layout::DECAP_STAT_LABELS.len());
// The steering program and the pipeline accept the same TCP flags.
const _: () = assert!(layout::TCP_VALID_FLAGS == xvs_dataplane::screen::TCP_VALID_FLAGS);
const _: () = assert!(layout::TCP_FLAGS_MASK == xvs_dataplane::screen::TCP_FLAGS_MASK);

impl SvcKey {
    pub fn new(addr: Ipv4Addr, port: u16, proto: u8) -> Self {
        SvcKey {
            addr: addr.octets(),
            port: port.to_be_bytes(),
            proto,
            pad: 0,
        }
    }

    /// The key as the map stores it.
    pub fn to_bytes(self) -> [u8; layout::SVC_KEY_SIZE] {
        let mut b = [0u8; layout::SVC_KEY_SIZE];
        b[layout::SVC_KEY_ADDR..layout::SVC_KEY_ADDR + 4].copy_from_slice(&self.addr);
        b[layout::SVC_KEY_PORT..layout::SVC_KEY_PORT + 2].copy_from_slice(&self.port);
        b[layout::SVC_KEY_PROTO] = self.proto;
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != layout::SVC_KEY_SIZE {
            return None;
        }
        let mut k = SvcKey::default();
        k.addr
            .copy_from_slice(&b[layout::SVC_KEY_ADDR..layout::SVC_KEY_ADDR + 4]);
        k.port
            .copy_from_slice(&b[layout::SVC_KEY_PORT..layout::SVC_KEY_PORT + 2]);
        k.proto = b[layout::SVC_KEY_PROTO];
        Some(k)
    }
}

/// `struct xvs_svc6_key`: an IPv6 service as the steering program matches it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Svc6Key {
    /// Network byte order.
    pub addr: [u8; 16],
    /// Network byte order; 0 = every port.
    pub port: [u8; 2],
    pub proto: u8,
    pub pad: u8,
}

const _: () = assert!(size_of::<Svc6Key>() == layout::SVC6_KEY_SIZE);
const _: () = assert!(offset_of!(Svc6Key, addr) == layout::SVC6_KEY_ADDR);
const _: () = assert!(offset_of!(Svc6Key, port) == layout::SVC6_KEY_PORT);
const _: () = assert!(offset_of!(Svc6Key, proto) == layout::SVC6_KEY_PROTO);
// The steering program and the pipeline walk the same number of extension headers.
const _: () = assert!(layout::MAX_EXT_HEADERS == xvs_dataplane::wire::ipv6::MAX_EXT_HEADERS);

impl Svc6Key {
    pub fn new(addr: Ipv6Addr, port: u16, proto: u8) -> Self {
        Svc6Key {
            addr: addr.octets(),
            port: port.to_be_bytes(),
            proto,
            pad: 0,
        }
    }

    /// The key as the map stores it.
    pub fn to_bytes(self) -> [u8; layout::SVC6_KEY_SIZE] {
        let mut b = [0u8; layout::SVC6_KEY_SIZE];
        b[layout::SVC6_KEY_ADDR..layout::SVC6_KEY_ADDR + 16].copy_from_slice(&self.addr);
        b[layout::SVC6_KEY_PORT..layout::SVC6_KEY_PORT + 2].copy_from_slice(&self.port);
        b[layout::SVC6_KEY_PROTO] = self.proto;
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != layout::SVC6_KEY_SIZE {
            return None;
        }
        let mut k = Svc6Key::default();
        k.addr
            .copy_from_slice(&b[layout::SVC6_KEY_ADDR..layout::SVC6_KEY_ADDR + 16]);
        k.port
            .copy_from_slice(&b[layout::SVC6_KEY_PORT..layout::SVC6_KEY_PORT + 2]);
        k.proto = b[layout::SVC6_KEY_PROTO];
        Some(k)
    }
}

/// `struct xvs_nat_key` (`xvs_nat6_key` for an IPv6 one): a NAT real server's address,
/// port and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatKey {
    pub addr: IpAddr,
    pub port: u16,
    pub proto: u8,
}

impl NatKey {
    /// The key as its family's map stores it (the layouts of `xvs_svc_key` and
    /// `xvs_svc6_key`).
    pub fn to_bytes(self) -> Vec<u8> {
        match self.addr {
            IpAddr::V4(a) => SvcKey::new(a, self.port, self.proto).to_bytes().to_vec(),
            IpAddr::V6(a) => Svc6Key::new(a, self.port, self.proto).to_bytes().to_vec(),
        }
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if let Some(k) = SvcKey::from_bytes(b) {
            return Some(NatKey {
                addr: Ipv4Addr::from(k.addr).into(),
                port: u16::from_be_bytes(k.port),
                proto: k.proto,
            });
        }
        let k = Svc6Key::from_bytes(b)?;
        Some(NatKey {
            addr: Ipv6Addr::from(k.addr).into(),
            port: u16::from_be_bytes(k.port),
            proto: k.proto,
        })
    }
}

/// `struct xvs_nat_value` (`xvs_nat6_value`): what a NAT real server's replies become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatValue {
    /// Of the real server's family.
    pub vip: IpAddr,
    pub vport: u16,
    /// The director's MAC on the interface the replies leave by.
    pub src_mac: [u8; 6],
    /// That interface; 0: the one they arrive on.
    pub out_ifindex: u32,
    /// The real server's slot in the outbound counters (below `MAX_NAT_OUT_SLOTS`, or
    /// not counted).
    pub stats_slot: u32,
}

impl NatValue {
    /// The value as its family's map stores it.
    pub fn to_bytes(self) -> Vec<u8> {
        use layout as l;
        let (size, vip, vport, mac, out, slot, addr) = match self.vip {
            IpAddr::V4(a) => (
                l::NAT_VALUE_SIZE,
                l::NAT_VALUE_VIP,
                l::NAT_VALUE_VPORT,
                l::NAT_VALUE_SRC_MAC,
                l::NAT_VALUE_OUT_IFINDEX,
                l::NAT_VALUE_STATS_SLOT,
                a.octets().to_vec(),
            ),
            IpAddr::V6(a) => (
                l::NAT6_VALUE_SIZE,
                l::NAT6_VALUE_VIP,
                l::NAT6_VALUE_VPORT,
                l::NAT6_VALUE_SRC_MAC,
                l::NAT6_VALUE_OUT_IFINDEX,
                l::NAT6_VALUE_STATS_SLOT,
                a.octets().to_vec(),
            ),
        };
        let mut b = vec![0u8; size];
        b[vip..vip + addr.len()].copy_from_slice(&addr);
        b[vport..vport + 2].copy_from_slice(&self.vport.to_be_bytes());
        b[mac..mac + 6].copy_from_slice(&self.src_mac);
        b[out..out + 4].copy_from_slice(&self.out_ifindex.to_ne_bytes());
        b[slot..slot + 4].copy_from_slice(&self.stats_slot.to_ne_bytes());
        b
    }
}

/// `struct xvs_nat_out`: one NAT real server's outbound packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatOut {
    pub packets: u64,
    pub bytes: u64,
}

impl NatOut {
    /// Adds one CPU's `struct xvs_nat_out`, as the map returns it.
    pub fn add_raw(&mut self, raw: &[u8]) {
        let word = |i: usize| {
            raw.get(i * 8..i * 8 + 8)
                .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        };
        self.packets += word(0);
        self.bytes += word(1);
    }
}

const _: () = assert!(layout::NAT_OUT_SIZE == 16);

const _: () = assert!(layout::NAT_KEY_SIZE == layout::SVC_KEY_SIZE);
const _: () = assert!(layout::NAT6_KEY_SIZE == layout::SVC6_KEY_SIZE);
const _: () = assert!(layout::NAT_CLIENT_MAC + 6 <= layout::NAT_CLIENT_SIZE);
const _: () = assert!(layout::LOCAL_MAC_MAC + 6 <= layout::LOCAL_MAC_SIZE);
const _: () = assert!(layout::STEER_CONFIG_EXTERNAL_IFINDEX + 4 <= layout::STEER_CONFIG_SIZE);
const _: () = assert!(layout::STEER_CONFIG_INTERNAL_IFINDEX + 4 <= layout::STEER_CONFIG_SIZE);
const _: () = assert!(layout::STEER_CONFIG_OWNER + 8 <= layout::STEER_CONFIG_SIZE);

/// A MAC as the value of `xvs_local_macs` (`struct xvs_local_mac`).
pub fn local_mac_value(mac: [u8; 6]) -> [u8; layout::LOCAL_MAC_SIZE] {
    let mut v = [0u8; layout::LOCAL_MAC_SIZE];
    v[layout::LOCAL_MAC_MAC..layout::LOCAL_MAC_MAC + 6].copy_from_slice(&mac);
    v
}

/// A MAC as the value of `xvs_nat_clients` (`struct xvs_nat_client`).
pub fn nat_client_value(mac: [u8; 6]) -> [u8; layout::NAT_CLIENT_SIZE] {
    let mut v = [0u8; layout::NAT_CLIENT_SIZE];
    v[layout::NAT_CLIENT_MAC..layout::NAT_CLIENT_MAC + 6].copy_from_slice(&mac);
    v
}

/// The MAC of an `xvs_nat_clients` value.
pub fn nat_client_mac(v: &[u8]) -> Option<[u8; 6]> {
    v.get(layout::NAT_CLIENT_MAC..layout::NAT_CLIENT_MAC + 6)?
        .try_into()
        .ok()
}

/// The program-wide settings (`struct xvs_steer_config`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerConfig {
    /// Services are steered only here (0: on any interface).
    pub external_ifindex: u32,
    /// Two-arm NAT: where the fast path sends NAT requests (0: one arm).
    pub internal_ifindex: u32,
    /// Fast-path entries of another generation are ignored (0: fast path off).
    pub fast_generation: u32,
    /// `XVS_CFG_*`.
    pub flags: u32,
    /// The writer's fingerprint (`Leftover::owner`).
    pub owner: u64,
}

impl SteerConfig {
    /// The map's value.
    pub fn value(&self) -> [u8; layout::STEER_CONFIG_SIZE] {
        let mut v = [0u8; layout::STEER_CONFIG_SIZE];
        let mut put = |at: usize, bytes: &[u8]| v[at..at + bytes.len()].copy_from_slice(bytes);
        put(
            layout::STEER_CONFIG_EXTERNAL_IFINDEX,
            &self.external_ifindex.to_ne_bytes(),
        );
        put(
            layout::STEER_CONFIG_INTERNAL_IFINDEX,
            &self.internal_ifindex.to_ne_bytes(),
        );
        put(
            layout::STEER_CONFIG_FAST_GENERATION,
            &self.fast_generation.to_ne_bytes(),
        );
        put(layout::STEER_CONFIG_FLAGS, &self.flags.to_ne_bytes());
        put(layout::STEER_CONFIG_OWNER, &self.owner.to_ne_bytes());
        v
    }
}

/// The writer's fingerprint and fast-path generation in an `xvs_steer_config` value.
pub fn steer_config_owner(v: &[u8]) -> Option<(u64, u32)> {
    let owner = v.get(layout::STEER_CONFIG_OWNER..layout::STEER_CONFIG_OWNER + 8)?;
    let gen =
        v.get(layout::STEER_CONFIG_FAST_GENERATION..layout::STEER_CONFIG_FAST_GENERATION + 4)?;
    Some((
        u64::from_ne_bytes(owner.try_into().ok()?),
        u32::from_ne_bytes(gen.try_into().ok()?),
    ))
}

// The worker writes fast-path entries with the dataplane's own types: they must be the
// C layout, field by field.
mod fast_layout {
    use super::layout as l;
    use std::mem::{offset_of, size_of};
    use xvs_dataplane::fullnat::FnatValue;
    use xvs_dataplane::offload::{FastKey, FastKey6, FastValue};

    const _: () = assert!(size_of::<FastKey>() == l::FAST_KEY_SIZE);
    const _: () = assert!(offset_of!(FastKey, saddr) == l::FAST_KEY_SADDR);
    const _: () = assert!(offset_of!(FastKey, daddr) == l::FAST_KEY_DADDR);
    const _: () = assert!(offset_of!(FastKey, sport) == l::FAST_KEY_SPORT);
    const _: () = assert!(offset_of!(FastKey, dport) == l::FAST_KEY_DPORT);
    const _: () = assert!(offset_of!(FastKey, proto) == l::FAST_KEY_PROTO);
    const _: () = assert!(size_of::<FastKey6>() == l::FAST6_KEY_SIZE);
    const _: () = assert!(offset_of!(FastKey6, saddr) == l::FAST6_KEY_SADDR);
    const _: () = assert!(offset_of!(FastKey6, daddr) == l::FAST6_KEY_DADDR);
    const _: () = assert!(offset_of!(FastKey6, sport) == l::FAST6_KEY_SPORT);
    const _: () = assert!(offset_of!(FastKey6, dport) == l::FAST6_KEY_DPORT);
    const _: () = assert!(offset_of!(FastKey6, proto) == l::FAST6_KEY_PROTO);
    const _: () = assert!(size_of::<FastValue>() == l::FAST_VALUE_SIZE);
    const _: () = assert!(size_of::<FnatValue>() == l::FNAT_VALUE_SIZE);
    const _: () = assert!(offset_of!(FnatValue, caddr) == l::FNAT_VALUE_CADDR);
    const _: () = assert!(offset_of!(FnatValue, vip) == l::FNAT_VALUE_VIP);
    const _: () = assert!(offset_of!(FnatValue, cport) == l::FNAT_VALUE_CPORT);
    const _: () = assert!(offset_of!(FnatValue, vport) == l::FNAT_VALUE_VPORT);
    const _: () = assert!(offset_of!(FnatValue, stats_slot) == l::FNAT_VALUE_STATS_SLOT);
    const _: () = assert!(offset_of!(FastValue, dst_mac) == l::FAST_VALUE_DST_MAC);
    const _: () = assert!(offset_of!(FastValue, tun) == l::FAST_VALUE_TUN);
    const _: () = assert!(offset_of!(FastValue, tun_saddr) == l::FAST_VALUE_TUN_SADDR);
    const _: () = assert!(offset_of!(FastValue, nat) == l::FAST_VALUE_NAT);
    const _: () = assert!(offset_of!(FastValue, daddr) == l::FAST_VALUE_DADDR);
    const _: () = assert!(offset_of!(FastValue, nat_port) == l::FAST_VALUE_NAT_PORT);
    const _: () = assert!(offset_of!(FastValue, mtu) == l::FAST_VALUE_MTU);
    const _: () = assert!(offset_of!(FastValue, stats_slot) == l::FAST_VALUE_STATS_SLOT);
    const _: () = assert!(offset_of!(FastValue, generation) == l::FAST_VALUE_GENERATION);
    const _: () = assert!(offset_of!(FastValue, timeout) == l::FAST_VALUE_TIMEOUT);
    const _: () = assert!(offset_of!(FastValue, last_seen) == l::FAST_VALUE_LAST_SEEN);
}

/// A program's per-CPU counters summed over CPUs, in the order of `labels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters<const N: usize> {
    pub values: [u64; N],
    labels: &'static [&'static str; N],
}

/// The steering program's counters (`enum xvs_xdp_stat`).
pub type XdpCounters = Counters<{ XDP_STAT_LABELS.len() }>;
/// The decap program's counters (`enum xvs_decap_stat`).
pub type DecapCounters = Counters<{ layout::DECAP_STAT_LABELS.len() }>;
/// The real server's FullNAT programs' counters (`enum xvs_toa_stat`).
pub type ToaCounters = Counters<{ layout::TOA_STAT_LABELS.len() }>;

const _: () = assert!(layout::TOA_COUNTERS_SIZE == 8 * layout::TOA_STAT_LABELS.len());
const _: () = assert!(layout::TOA_KEY_SIZE == 24 && layout::TOA_KEY_PORT == 16);
const _: () = assert!(layout::TOA_KEY_OWN_PORT == 18 && layout::TOA_KEY_V6 == 20);
// The option the pipeline writes is the one the real server's program reads.
const _: () = assert!(layout::TOA_KIND == xvs_dataplane::rewrite::toa::KIND);

/// `struct xvs_toa_key` for an address alone (the trusted local addresses' map).
pub fn toa_trusted_key(addr: IpAddr) -> [u8; layout::TOA_KEY_SIZE] {
    let mut k = [0u8; layout::TOA_KEY_SIZE];
    match addr {
        IpAddr::V4(a) => k[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => {
            k[..16].copy_from_slice(&a.octets());
            k[layout::TOA_KEY_V6] = 1;
        }
    }
    k
}

impl ToaCounters {
    pub fn new() -> Self {
        Counters {
            values: [0; layout::TOA_STAT_LABELS.len()],
            labels: &layout::TOA_STAT_LABELS,
        }
    }
}

impl Default for ToaCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl XdpCounters {
    pub fn new() -> Self {
        Counters {
            values: [0; XDP_STAT_LABELS.len()],
            labels: &XDP_STAT_LABELS,
        }
    }
}

impl Default for XdpCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl DecapCounters {
    pub fn new() -> Self {
        Counters {
            values: [0; layout::DECAP_STAT_LABELS.len()],
            labels: &layout::DECAP_STAT_LABELS,
        }
    }
}

impl Default for DecapCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Counters<N> {
    pub fn get(&self, label: &str) -> u64 {
        self.labels
            .iter()
            .position(|l| *l == label)
            .map_or(0, |i| self.values[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.labels.iter().copied().zip(self.values.iter().copied())
    }

    /// Adds one CPU's counter struct, as the map returns it.
    pub fn add_raw(&mut self, raw: &[u8]) {
        for (slot, chunk) in self.values.iter_mut().zip(raw.chunks_exact(8)) {
            *slot += u64::from_ne_bytes(chunk.try_into().expect("chunks_exact(8)"));
        }
    }

    /// What changed since `before`.
    pub fn since(&self, before: &Self) -> Self {
        let mut d = *self;
        for (v, b) in d.values.iter_mut().zip(before.values) {
            *v = v.wrapping_sub(b);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svc_key_round_trip() {
        let k = SvcKey::new(Ipv4Addr::new(10, 0, 0, 100), 80, 6);
        let b = k.to_bytes();
        assert_eq!(b, [10, 0, 0, 100, 0, 80, 6, 0]);
        assert_eq!(SvcKey::from_bytes(&b), Some(k));
        assert_eq!(SvcKey::from_bytes(&b[..7]), None);
    }

    #[test]
    fn counters_sum_cpus() {
        let mut c = XdpCounters::default();
        let mut raw = vec![0u8; layout::XDP_COUNTERS_SIZE];
        raw[0..8].copy_from_slice(&5u64.to_ne_bytes());
        c.add_raw(&raw);
        c.add_raw(&raw);
        assert_eq!(c.get("steered"), 10);
        assert_eq!(c.get("drop_no_socket"), 0);
        assert_eq!(c.get("nonexistent"), 0);
    }
}
