//! The limits the steering program's maps and the real-server ids impose, checked by
//! `xvs check` and before a reload changes anything, so that none is discovered half-way.

use xvs_bpf::abi::{MAX_LOCAL_ADDRS, MAX_NAT_BACKENDS, MAX_SERVICES};
use xvs_config::{Config, Forwarding};
use xvs_dataplane::snapshot::MAX_DESTS;

/// What a configuration puts in each bounded place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// (address, port, protocol) entries of each family's service map.
    pub services: usize,
    pub services6: usize,
    /// (real server, port) entries of the NAT maps.
    pub nat_backends: usize,
    /// The director's own addresses of each family: the interfaces' and every VIP.
    pub own4: usize,
    pub own6: usize,
    /// Distinct real servers (and sorry servers) of every virtual server: each an id.
    pub real_servers: usize,
}

impl Counts {
    /// What `cfg` alone needs (the host's own addresses are not counted).
    pub fn of(cfg: &Config) -> Counts {
        let mut c = Counts::default();
        let mut own = std::collections::HashSet::new();
        for vs in &cfg.virtual_servers {
            let ports = vs.ports.len();
            if vs.address.is_ipv6() {
                c.services6 += ports;
            } else {
                c.services += ports;
            }
            own.insert(vs.address);
            let rs = vs.real_servers.len();
            c.real_servers += rs + usize::from(vs.sorry_server.is_some());
            if vs.forwarding == Forwarding::Nat {
                c.nat_backends += rs * ports;
            }
        }
        for v in &cfg.vrrp_instances {
            own.extend(v.virtual_ipaddresses.iter().map(|&(a, _)| a));
        }
        c.own4 = own.iter().filter(|a| a.is_ipv4()).count();
        c.own6 = own.len() - c.own4;
        c
    }
}

/// Every place within its bound, or what is over and by how much.
pub fn fit(c: &Counts) -> Result<(), String> {
    let over: Vec<String> = [
        (
            "IPv4 services (address, port, protocol)",
            c.services,
            MAX_SERVICES as usize,
        ),
        (
            "IPv6 services (address, port, protocol)",
            c.services6,
            MAX_SERVICES as usize,
        ),
        (
            "NAT real servers (times their ports)",
            c.nat_backends,
            MAX_NAT_BACKENDS as usize,
        ),
        (
            "IPv4 addresses of the director and its VIPs",
            c.own4,
            MAX_LOCAL_ADDRS as usize,
        ),
        (
            "IPv6 addresses of the director and its VIPs",
            c.own6,
            MAX_LOCAL_ADDRS as usize,
        ),
        ("real servers and sorry servers", c.real_servers, MAX_DESTS),
    ]
    .into_iter()
    .filter(|(_, n, max)| n > max)
    .map(|(what, n, max)| format!("{n} {what}: at most {max}"))
    .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the configuration does not fit the director's tables: {}",
            over.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize, forwarding: &str) -> Config {
        let mut y = String::from("interface: lo\nvirtual_servers:\n");
        for i in 0..n {
            y += &format!(
                "  - name: v{i}\n    address: 10.{}.{}.1\n    port: 80\n    protocol: tcp\n    forwarding: {forwarding}\n    real_servers:\n      - address: 10.200.{}.{}\n        port: 80\n",
                i / 256,
                i % 256,
                i / 256,
                i % 256
            );
        }
        xvs_config::parse("t.yaml", &y).unwrap()
    }

    #[test]
    fn counts_services_real_servers_and_vips() {
        let c = Counts::of(&cfg(3, "nat"));
        assert_eq!(
            c,
            Counts {
                services: 3,
                nat_backends: 3,
                own4: 3,
                real_servers: 3,
                ..Counts::default()
            }
        );
        assert!(fit(&c).is_ok());
    }

    #[test]
    fn a_configuration_over_a_bound_is_refused_with_the_bound_named() {
        let c = Counts::of(&cfg(MAX_SERVICES as usize + 1, "dr"));
        let e = fit(&c).unwrap_err();
        assert!(
            e.contains("4097 IPv4 services (address, port, protocol): at most 4096"),
            "{e}"
        );
    }
}
