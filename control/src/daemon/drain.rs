//! `xvs drain` and `xvs undrain`: a real server taken out of scheduling for new
//! connections (weight 0, as `ipvsadm -e ... -w 0`) while its established connections
//! finish. The operator's choice, so it is kept across reloads until undrained, and ends
//! only when the real server leaves the configuration.

use std::collections::BTreeSet;
use std::net::IpAddr;

use xvs_config::{Config, RealServer, VirtualServer};

/// One drained real server of one virtual server (by name: what the operator typed).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Drained {
    pub virtual_server: String,
    pub addr: IpAddr,
    pub port: u16,
}

/// What `drain`/`undrain` names: `ADDR[:PORT]`, in one virtual server or in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    pub port: Option<u16>,
    pub virtual_server: Option<String>,
}

impl Target {
    /// `ADDR[:PORT] [--virtual NAME]`, as the CLI sends it.
    pub fn parse(args: &str) -> Result<Target, String> {
        let usage = "ADDR[:PORT] [--virtual NAME]";
        let w: Vec<&str> = args.split_whitespace().collect();
        let (rs, vs) = match w.as_slice() {
            [rs] => (*rs, None),
            [rs, "--virtual", name] => (*rs, Some(name.to_string())),
            _ => return Err(format!("expected {usage}, got {args:?}\n")),
        };
        let (a, p) = match rs.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (rs, None),
        };
        let addr = a
            .parse()
            .map_err(|_| format!("{a:?} is no IPv4 address (expected {usage})\n"))?;
        let port = p
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| format!("{p:?} is no port (expected {usage})\n"))
            })
            .transpose()?;
        Ok(Target {
            addr,
            port,
            virtual_server: vs,
        })
    }

    fn matches(&self, vs: &VirtualServer, rs: &RealServer) -> bool {
        rs.address == self.addr
            && self.port.is_none_or(|p| p == rs.port)
            && self.virtual_server.as_ref().is_none_or(|n| *n == vs.name)
    }

    /// The configured real servers it names; an error saying what exists when none.
    pub fn resolve(&self, cfg: &Config) -> Result<Vec<Drained>, String> {
        let found: Vec<Drained> = cfg
            .virtual_servers
            .iter()
            .flat_map(|vs| {
                vs.real_servers
                    .iter()
                    .filter(|rs| self.matches(vs, rs))
                    .map(|rs| Drained {
                        virtual_server: vs.name.clone(),
                        addr: rs.address,
                        port: rs.port,
                    })
            })
            .collect();
        if found.is_empty() {
            let scope = self
                .virtual_server
                .as_ref()
                .map_or(String::new(), |n| format!(" of virtual server {n:?}"));
            if let Some(n) = &self.virtual_server {
                if !cfg.virtual_servers.iter().any(|v| v.name == *n) {
                    return Err(format!(
                        "no virtual server {n:?} (`xvs status` lists them)\n"
                    ));
                }
            }
            return Err(format!(
                "{}{} is no real server{scope} (`xvs status` lists them)\n",
                self.addr,
                self.port.map_or(String::new(), |p| format!(":{p}"))
            ));
        }
        Ok(found)
    }
}

/// One line of `drain`'s answer: what happened, and the connections still open, so the
/// operator knows when the real server is free.
pub fn answer(d: &Drained, changed: bool, on: bool, (active, inactive): (u64, u64)) -> String {
    let what = match (on, changed) {
        (true, true) => "drained: no new connections",
        (true, false) => "already drained",
        (false, true) => "undrained: scheduled again",
        (false, false) => "was not drained",
    };
    format!(
        "{} of {}: {what}; {active} active and {inactive} inactive connection(s) open\n",
        crate::ids::endpoint(d.addr, d.port),
        d.virtual_server
    )
}

/// The drained real servers.
#[derive(Clone, Debug, Default)]
pub struct Drains(BTreeSet<Drained>);

impl Drains {
    pub fn contains(&self, vs: &VirtualServer, rs: &RealServer) -> bool {
        self.0.contains(&Drained {
            virtual_server: vs.name.clone(),
            addr: rs.address,
            port: rs.port,
        })
    }

    /// Adds (`on`) or removes them; returns those whose state changed.
    pub fn set(&mut self, which: Vec<Drained>, on: bool) -> Vec<Drained> {
        which
            .into_iter()
            .filter(|d| {
                if on {
                    self.0.insert(d.clone())
                } else {
                    self.0.remove(d)
                }
            })
            .collect()
    }

    /// After a reload: a drain ends when its real server left the configuration.
    /// Returns those that ended.
    pub fn retain_configured(&mut self, cfg: &Config) -> Vec<Drained> {
        let (kept, gone): (BTreeSet<Drained>, BTreeSet<Drained>) =
            std::mem::take(&mut self.0).into_iter().partition(|d| {
                cfg.virtual_servers.iter().any(|vs| {
                    vs.name == d.virtual_server
                        && vs
                            .real_servers
                            .iter()
                            .any(|rs| rs.address == d.addr && rs.port == d.port)
                })
            });
        self.0 = kept;
        gone.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        xvs_config::parse(
            "t.yaml",
            "interface: lo\nvirtual_servers:\n  - { name: web, address: 10.0.0.100, port: 80, protocol: tcp, real_servers: [{ address: 10.0.0.11 }, { address: 10.0.0.12 }] }\n  - { name: tls, address: 10.0.0.100, port: 443, protocol: tcp, real_servers: [{ address: 10.0.0.11 }] }\n",
        )
        .unwrap()
    }

    #[test]
    fn a_target_names_a_real_server_in_one_or_every_virtual_server() {
        let c = cfg();
        let every = Target::parse("10.0.0.11").unwrap().resolve(&c).unwrap();
        assert_eq!(every.len(), 2);
        let one = Target::parse("10.0.0.11:443").unwrap().resolve(&c).unwrap();
        assert_eq!(one[0].virtual_server, "tls");
        let named = Target::parse("10.0.0.11 --virtual web")
            .unwrap()
            .resolve(&c)
            .unwrap();
        assert_eq!((named.len(), named[0].port), (1, 80));
        for (bad, says) in [
            ("10.0.0.99", "is no real server"),
            ("10.0.0.12 --virtual tls", "of virtual server \"tls\""),
            ("10.0.0.11 --virtual nope", "no virtual server \"nope\""),
        ] {
            let e = Target::parse(bad).unwrap().resolve(&c).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        for bad in [
            "",
            "x.y",
            "10.0.0.11:http",
            "10.0.0.11 --virtual",
            "a b c d",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn drains_are_set_once_and_end_with_their_real_server() {
        let c = cfg();
        let mut d = Drains::default();
        let all = Target::parse("10.0.0.11").unwrap().resolve(&c).unwrap();
        assert_eq!(d.set(all.clone(), true).len(), 2);
        assert!(d.set(all.clone(), true).is_empty(), "already drained");
        let (web, tls) = (&c.virtual_servers[0], &c.virtual_servers[1]);
        assert!(d.contains(web, &web.real_servers[0]) && d.contains(tls, &tls.real_servers[0]));
        assert!(!d.contains(web, &web.real_servers[1]));
        // A reload that keeps web's 10.0.0.11 and drops tls keeps one drain.
        let smaller = xvs_config::parse(
            "t.yaml",
            "interface: lo\nvirtual_servers:\n  - { name: web, address: 10.0.0.100, port: 80, protocol: tcp, real_servers: [{ address: 10.0.0.11 }] }\n",
        )
        .unwrap();
        let gone = d.retain_configured(&smaller);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].virtual_server, "tls");
        assert_eq!(d.set(all, false).len(), 1);
        assert!(!d.contains(web, &web.real_servers[0]));
    }
}
