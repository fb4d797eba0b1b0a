//! What the steering program's maps hold for one configuration (services of both
//! families, NAT backends, FullNAT's local addresses, the director's own addresses), built whole before any map is
//! written: a reload that cannot have them fails before it changes anything, and one
//! whose write fails puts the previous contents back.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};
use xvs_bpf::abi::{NatKey, NatValue, Svc6Key, SvcKey};
use xvs_bpf::Steer;
use xvs_config::Config;

use super::ifaces::Ifaces;
use super::lb::host_addrs;
use super::limits;
use super::publish;
use crate::ids::DestRegistry;

#[derive(Clone, Debug, Default)]
pub struct SteerMaps {
    services: Vec<(SvcKey, u32)>,
    services6: Vec<(Svc6Key, u32)>,
    nat: Vec<(NatKey, NatValue)>,
    /// FullNAT's local addresses: every one this process has named (a connection on an
    /// address a reload removed still has its replies translated until it ends).
    fnat_locals: Vec<std::net::IpAddr>,
    /// The NAT real servers' addresses (a fragment from one is dropped).
    nat_addrs: Vec<std::net::IpAddr>,
    own4: Vec<Ipv4Addr>,
    own6: Vec<Ipv6Addr>,
}

impl SteerMaps {
    /// The maps' contents for `cfg` (NAT backends by their ids in `registry`), checked
    /// against the maps' sizes.
    pub fn build(cfg: &Config, ifaces: &Ifaces, registry: &mut DestRegistry) -> Result<SteerMaps> {
        let (own4, own6) = publish::own_addrs(cfg, host_addrs()?);
        let nat_addrs = cfg
            .virtual_servers
            .iter()
            .filter(|v| v.forwarding == xvs_config::Forwarding::Nat)
            .flat_map(|v| v.real_servers.iter().map(|r| r.address))
            .collect();
        let maps = SteerMaps {
            fnat_locals: registry.local_addrs(cfg)?,
            nat_addrs,
            services: publish::steering_services(cfg),
            services6: publish::steering_services6(cfg),
            nat: publish::nat_backends(cfg, ifaces.external.mac, ifaces.reply_out(), registry),
            own4,
            own6,
        };
        limits::fit(&limits::Counts {
            services: maps.services.len(),
            services6: maps.services6.len(),
            nat_backends: maps.nat.len(),
            own4: maps.own4.len(),
            own6: maps.own6.len(),
            real_servers: 0,
        })
        .map_err(anyhow::Error::msg)?;
        Ok(maps)
    }

    /// Makes the steering program's maps hold exactly these.
    pub fn write(&self, steer: &Steer) -> Result<()> {
        steer
            .set_services(&self.services)
            .context("writing the IPv4 services' map")?;
        steer
            .set_services6(&self.services6)
            .context("writing the IPv6 services' map")?;
        steer
            .set_local_addrs(&self.own4)
            .context("writing the director's IPv4 addresses")?;
        steer
            .set_local_addrs6(&self.own6)
            .context("writing the director's IPv6 addresses")?;
        steer
            .set_nat_backends(&self.nat)
            .context("writing the NAT backends' maps")?;
        steer
            .set_nat_addrs(&self.nat_addrs)
            .context("writing the NAT real servers' addresses")?;
        steer
            .set_fnat_locals(&self.fnat_locals)
            .context("writing FullNAT's local addresses")?;
        Ok(())
    }
}
