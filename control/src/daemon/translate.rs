//! The configuration in the dataplane's and the steering program's terms.

use anyhow::{Context, Result};
use std::net::Ipv4Addr;
use xvs_bpf::AttachMode;
use xvs_config::{Config, Forwarding, XdpMode};
use xvs_dataplane::flow::{TcpState, Timeouts};
use xvs_dataplane::pipeline::NodestPolicy;
use xvs_dataplane::PipelineConfig;

use super::ifaces::Ifaces;
use super::publish::Local;
use crate::sys::netlink;

/// The configuration's timeouts in the dataplane's per-state form.
pub fn timeouts(t: &xvs_config::Timeouts) -> Timeouts {
    let mut out = Timeouts {
        udp: t.udp,
        ..Timeouts::default()
    };
    for (state, secs) in [
        (TcpState::Established, t.tcp),
        (TcpState::FinWait, t.tcpfin),
        (TcpState::SynSent, t.syn_sent),
        (TcpState::SynRecv, t.syn_recv),
        (TcpState::TimeWait, t.time_wait),
        (TcpState::Close, t.close),
        (TcpState::CloseWait, t.close_wait),
        (TcpState::LastAck, t.last_ack),
        (TcpState::Listen, t.listen),
        (TcpState::SynAck, t.synack),
    ] {
        out.set_tcp(state, secs);
    }
    out
}

/// Each worker's pipeline settings; `hash_seed` is the same for every worker.
pub fn pipeline(cfg: &Config, hash_seed: u64) -> PipelineConfig {
    PipelineConfig {
        flow_capacity: cfg.flow_table_size,
        hash_seed,
        timeouts: timeouts(&cfg.timeouts),
        nodest: match cfg.expire_nodest_conn {
            xvs_config::NodestPolicy::Reschedule => NodestPolicy::Reschedule,
            xvs_config::NodestPolicy::Expire => NodestPolicy::Expire,
            xvs_config::NodestPolicy::Drop => NodestPolicy::Drop,
        },
        // Each worker's share is set as it starts (`bringup::start_workers`).
        share: Default::default(),
    }
}

/// Each worker's AF_XDP socket sizes.
pub fn xsk_config(cfg: &Config) -> xvs_dataplane::xsk::XskConfig {
    xvs_dataplane::xsk::XskConfig {
        frame_count: cfg.af_xdp.frames,
        rx_size: cfg.af_xdp.rx_ring,
        tx_size: cfg.af_xdp.tx_ring,
        busy_poll_usecs: cfg.af_xdp.busy_poll,
        busy_poll_budget: cfg.af_xdp.busy_poll_budget,
        ..Default::default()
    }
}

pub fn attach_mode(mode: XdpMode) -> AttachMode {
    match mode {
        XdpMode::Auto => AttachMode::Auto,
        XdpMode::Native => AttachMode::Native,
        XdpMode::Generic => AttachMode::Generic,
    }
}

/// The director's side of the rewrites: its MACs, its address on the interface (the
/// tunnel source) and the tunnel MTU.
pub fn local_side(cfg: &Config, ifaces: &Ifaces) -> Result<Local> {
    let iface = &ifaces.external;
    let addr = netlink::addresses()
        .context("reading the interface's addresses")?
        .into_iter()
        .find(|(i, a, p)| *i == iface.ifindex && *p < 32 && !a.is_loopback())
        .map(|(_, a, _)| a);
    // A global IPv6 address of its own: not link-local, not a /128 (a VIP).
    let addr6 = netlink::addresses6()
        .context("reading the interface's IPv6 addresses")?
        .into_iter()
        .find(|(i, a, p)| {
            *i == iface.ifindex && *p < 128 && !a.is_loopback() && !a.is_unicast_link_local()
        })
        .map(|(_, a, _)| a);
    let tun = |v6: bool| {
        cfg.virtual_servers
            .iter()
            .any(|vs| vs.forwarding == Forwarding::Tun && vs.address.is_ipv6() == v6)
    };
    let addr = match addr {
        Some(a) => a,
        None if tun(false) => anyhow::bail!(
            "{} has no IPv4 address of its own (other than /32s): TUN needs one as the tunnel source",
            iface.name
        ),
        None => Ipv4Addr::UNSPECIFIED,
    };
    if addr6.is_none() && tun(true) {
        anyhow::bail!(
            "{} has no global IPv6 address of its own (other than /128s): TUN over IPv6 needs one as the tunnel source",
            iface.name
        );
    }
    let mtu = cfg
        .tun_mtu
        .unwrap_or(iface.mtu.min(u32::from(u16::MAX)) as u16);
    Ok(Local {
        internal_mac: ifaces.internal.as_ref().map(|i| i.mac),
        mac: iface.mac,
        addr,
        addr6,
        mtu,
        xdp_tx: true,
        partial_csums: crate::sys::iface::is_veth(&iface.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_timeout_reaches_its_state() {
        let cfg = xvs_config::parse(
            "t.yaml",
            "interface: lo\ntimeouts: { tcp: 111, tcpfin: 22, udp: 33, syn_recv: 44 }\n",
        )
        .unwrap();
        let t = timeouts(&cfg.timeouts);
        assert_eq!(t.udp, 33);
        assert_eq!(t.tcp(TcpState::Established), 111);
        assert_eq!(t.tcp(TcpState::FinWait), 22);
        assert_eq!(t.tcp(TcpState::SynRecv), 44);
        assert_eq!(
            t.tcp(TcpState::Close),
            Timeouts::default().tcp(TcpState::Close)
        );
    }
}
