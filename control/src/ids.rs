//! Who is who across snapshots: a real server's identity within its virtual service, and
//! the ids that stay the same for the life of the process, so flows and counters follow
//! a real server from one snapshot to the next.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use xvs_dataplane::snapshot::{DestId, ServiceKey};

/// An address and port (or port list) as people write them: `10.0.0.1:80`,
/// `[2001:db8::1]:80`, `10.0.0.100:80,443`.
pub fn endpoint(addr: IpAddr, port: impl std::fmt::Display) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Identity of a real server within its virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DestKey {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
}

impl DestKey {
    /// A configured real server of a configured virtual server.
    pub fn of(vs: &xvs_config::VirtualServer, rs: &xvs_config::RealServer) -> DestKey {
        DestKey {
            service: service_key(vs),
            addr: rs.address,
            port: rs.port,
        }
    }
}

/// Hands out `DestId`s: the same real server of the same service keeps its id while it
/// is configured, so flows and counters follow it across snapshots. Services get counter
/// slots the same way.
///
/// A real server that leaves the configuration keeps its id for a while (retired): its
/// flows may still name it, and a persistence template for as long as its timeout. Once
/// none can (`reclaim`), the id is free for a newcomer, so that a director whose
/// configuration is generated never runs out of the `MAX_DESTS` ids.
#[derive(Clone, Default, Debug)]
pub struct DestRegistry {
    ids: HashMap<DestKey, DestId>,
    next: DestId,
    services: HashMap<ServiceKey, u32>,
    /// Left the configuration: since when, and how long a template may still name it.
    retired: HashMap<DestKey, Retired>,
    free: Vec<DestId>,
    /// FullNAT's local addresses, an id each for the process's life (the workers'
    /// flows hold the id, `xvs_dataplane::fullnat::LocalPort`).
    locals: Vec<IpAddr>,
}

/// The least time a retired id stays unused: a worker in the middle of a batch on the
/// previous snapshot, or a sync entry translated under it, may still name it for a
/// moment after the snapshot that dropped it is published.
pub const RECLAIM_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
struct Retired {
    id: DestId,
    since: Instant,
    hold: Duration,
}

impl DestRegistry {
    /// Every FullNAT local address `cfg` names, with those of earlier configurations,
    /// in id order; an error past `MAX_LOCAL_ADDRS` over the process's life.
    pub fn local_addrs(&mut self, cfg: &xvs_config::Config) -> anyhow::Result<Vec<IpAddr>> {
        for a in cfg
            .virtual_servers
            .iter()
            .filter_map(|vs| vs.local.as_ref())
            .flat_map(|l| &l.addresses)
        {
            if !self.locals.contains(a) {
                if self.locals.len() >= xvs_dataplane::snapshot::MAX_LOCAL_ADDRS {
                    anyhow::bail!(
                        "FullNAT local address {a} is one more than the {} this process can name over its life; restart xvs to start the count again",
                        xvs_dataplane::snapshot::MAX_LOCAL_ADDRS
                    );
                }
                self.locals.push(*a);
            }
        }
        Ok(self.locals.clone())
    }

    /// The FullNAT local addresses named so far, in id order.
    pub fn local_ids(&self) -> &[IpAddr] {
        &self.locals
    }

    /// The service's slot in the per-worker service counters (never reused).
    pub fn service_id(&mut self, key: ServiceKey) -> u32 {
        let n = self.services.len() as u32;
        *self.services.entry(key).or_insert(n)
    }

    /// `key`'s id: its own, the one it had if it left lately and came back, else a free
    /// one, else a new one.
    pub fn id(&mut self, key: DestKey) -> DestId {
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = match self.retired.remove(&key) {
            Some(r) => r.id,
            None => self.free.pop().unwrap_or_else(|| {
                self.next += 1;
                self.next - 1
            }),
        };
        self.ids.insert(key, id);
        id
    }

    /// The real servers (and sorry servers) that `old` had and `new` has not are retired
    /// as of `now`; a persistent service's keep theirs for its persistence timeout in
    /// `old` (its templates may name them that long).
    pub fn retire_absent(
        &mut self,
        old: &xvs_config::Config,
        new: &xvs_config::Config,
        now: Instant,
    ) {
        let hold: HashMap<ServiceKey, Duration> = old
            .virtual_servers
            .iter()
            .map(|vs| {
                let secs = vs.persistence.map_or(0, |p| u64::from(p.timeout));
                (service_key(vs), Duration::from_secs(secs))
            })
            .collect();
        let mut present = std::collections::HashSet::new();
        for vs in &new.virtual_servers {
            let key = service_key(vs);
            for rs in &vs.real_servers {
                present.insert(DestKey::of(vs, rs));
            }
            if let Some((addr, port)) = vs.sorry_server {
                present.insert(DestKey {
                    service: key,
                    addr,
                    port,
                });
            }
        }
        let gone: Vec<DestKey> = self
            .ids
            .keys()
            .filter(|k| !present.contains(k))
            .copied()
            .collect();
        for k in gone {
            let id = self.ids.remove(&k).expect("listed above");
            let hold = hold.get(&k.service).copied().unwrap_or_default();
            self.retired.insert(
                k,
                Retired {
                    id,
                    since: now,
                    hold,
                },
            );
        }
    }

    /// Frees the retired ids that nothing can name any more: held long enough for the
    /// templates, and at least `RECLAIM_AFTER` (by then every worker works on a snapshot
    /// without them, and no queued sync entry names them), and `in_use` (the workers'
    /// connection gauges) says no flow has them. Returns them: their counters must be
    /// zeroed before a newcomer takes one.
    pub fn reclaim(&mut self, now: Instant, in_use: impl Fn(DestId) -> bool) -> Vec<DestId> {
        let done: Vec<DestKey> = self
            .retired
            .iter()
            .filter(|(_, r)| {
                now.saturating_duration_since(r.since) >= r.hold.max(RECLAIM_AFTER) && !in_use(r.id)
            })
            .map(|(k, _)| *k)
            .collect();
        let mut freed = Vec::with_capacity(done.len());
        for k in done {
            let id = self.retired.remove(&k).expect("listed above").id;
            self.free.push(id);
            freed.push(id);
        }
        freed
    }

    /// A registry that gives each real server of `ids` (the last process's) that id
    /// again when it is configured; those that are not stay retired for `hold`, as the
    /// flows recovered from the last process may still name them.
    pub fn restored(ids: Vec<(DestKey, DestId)>, hold: Duration) -> DestRegistry {
        let mut r = DestRegistry {
            next: ids.iter().map(|(_, id)| id + 1).max().unwrap_or(0),
            ..DestRegistry::default()
        };
        let used: std::collections::HashSet<DestId> = ids.iter().map(|(_, id)| *id).collect();
        // Gaps are free, the highest first out last (ids stay small).
        r.free = (0..r.next).rev().filter(|id| !used.contains(id)).collect();
        let since = Instant::now();
        for (key, id) in ids {
            r.retired.insert(key, Retired { id, since, hold });
        }
        r
    }

    /// Every id a flow may name: the configured real servers' and the retired ones'.
    pub fn every(&self) -> impl Iterator<Item = (&DestKey, DestId)> {
        self.ids
            .iter()
            .map(|(k, id)| (k, *id))
            .chain(self.retired.iter().map(|(k, r)| (k, r.id)))
    }

    /// How many ids were handed out: they are `0..len`.
    pub fn issued(&self) -> usize {
        self.next as usize
    }

    /// Every configured real server with its id.
    pub fn all(&self) -> impl Iterator<Item = (&DestKey, &DestId)> {
        self.ids.iter()
    }

    #[cfg(test)]
    pub fn key_of(&self, id: DestId) -> Option<DestKey> {
        self.ids.iter().find(|(_, v)| **v == id).map(|(k, _)| *k)
    }
}

pub fn service_key(vs: &xvs_config::VirtualServer) -> ServiceKey {
    ServiceKey {
        addr: vs.address,
        port: vs.port(),
        proto: vs.protocol.number(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(servers: &[u8], persistence: bool) -> xvs_config::Config {
        let mut y = String::from(
            "interface: lo\nvirtual_servers:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n",
        );
        if persistence {
            y += "    persistence_timeout: 300\n";
        }
        y += "    real_servers:\n";
        for s in servers {
            y += &format!("      - address: 10.0.1.{s}\n        port: 80\n");
        }
        xvs_config::parse("t.yaml", &y).unwrap()
    }

    fn ids(r: &mut DestRegistry, c: &xvs_config::Config) -> Vec<DestId> {
        let vs = &c.virtual_servers[0];
        vs.real_servers
            .iter()
            .map(|rs| r.id(DestKey::of(vs, rs)))
            .collect()
    }

    #[test]
    fn ids_of_real_servers_that_left_are_reused_once_nothing_names_them() {
        let t = Instant::now();
        let mut r = DestRegistry::default();
        let a = cfg(&[1, 2, 3], false);
        assert_eq!(ids(&mut r, &a), [0, 1, 2]);
        let b = cfg(&[3, 4], false);
        r.retire_absent(&a, &b, t);
        // 1 and 2 retired; 2's id still has a flow.
        let in_use = |id: DestId| id == 1;
        assert!(r.reclaim(t, |_| false).is_empty(), "not at once");
        let later = t + RECLAIM_AFTER;
        assert_eq!(r.reclaim(later, in_use), [0]);
        assert_eq!(
            ids(&mut r, &b),
            [2, 0],
            "3 keeps its id, 4 takes a freed one"
        );
        assert_eq!(r.reclaim(later, |_| false), [1]);
        let c = cfg(&[3, 4, 5, 6], false);
        assert_eq!(ids(&mut r, &c), [2, 0, 1, 3]);
        assert_eq!(r.issued(), 4, "no new id while freed ones were there");
    }

    #[test]
    fn a_real_server_back_before_its_id_was_freed_gets_it_again() {
        let t = Instant::now();
        let mut r = DestRegistry::default();
        let a = cfg(&[1, 2], false);
        ids(&mut r, &a);
        let b = cfg(&[2], false);
        r.retire_absent(&a, &b, t);
        assert_eq!(ids(&mut r, &a), [0, 1], "its flows go on to it");
        assert!(r.reclaim(t + RECLAIM_AFTER, |_| false).is_empty());
    }

    /// A persistent service's templates (not counted in the gauges) may name a real
    /// server for its persistence timeout after it left.
    #[test]
    fn a_persistent_services_ids_are_held_for_its_timeout() {
        let t = Instant::now();
        let mut r = DestRegistry::default();
        let a = cfg(&[1, 2], true);
        ids(&mut r, &a);
        let b = cfg(&[2], true);
        r.retire_absent(&a, &b, t);
        assert!(r
            .reclaim(t + Duration::from_secs(299), |_| false)
            .is_empty());
        assert_eq!(r.reclaim(t + Duration::from_secs(300), |_| false), [0]);
    }

    /// A generated configuration: 20 reloads of 1000 real servers never seen before
    /// stay within a few thousand ids (`MAX_DESTS` is 16384).
    #[test]
    fn a_restored_registry_gives_each_real_server_its_last_id() {
        let c = cfg(&[1, 2, 3], false);
        let mut first = DestRegistry::default();
        let before = ids(&mut first, &c);
        // The next process's configuration lists them in another order, with one gone.
        let listed: Vec<(DestKey, DestId)> = first.every().map(|(k, id)| (*k, id)).collect();
        let mut next = DestRegistry::restored(listed, Duration::from_secs(60));
        let c2 = cfg(&[3, 1, 4], false);
        let after = ids(&mut next, &c2);
        assert_eq!(after[0], before[2], "server 3 keeps its id");
        assert_eq!(after[1], before[0], "server 1 keeps its id");
        assert!(
            !before.contains(&after[2]),
            "a newcomer does not take server 2's"
        );
        assert_eq!(next.every().count(), 4, "server 2's id is held, retired");
    }

    #[test]
    fn generated_configurations_do_not_run_out_of_ids() {
        let t = Instant::now();
        let mut r = DestRegistry::default();
        let mut old = cfg(&[1], false);
        let vs = old.virtual_servers[0].clone();
        for round in 0..20u32 {
            let mut new = old.clone();
            let mut v = vs.clone();
            v.real_servers = (0..1000u32)
                .map(|i| {
                    let mut rs = vs_real_server();
                    rs.address = std::net::Ipv4Addr::from(0x0a00_0000 + round * 1000 + i).into();
                    rs
                })
                .collect();
            new.virtual_servers = vec![v];
            // Generated configurations come a second or more apart.
            let t = t + RECLAIM_AFTER * round;
            r.retire_absent(&old, &new, t);
            r.reclaim(t, |_| false);
            let got = ids(&mut r, &new);
            assert!(got.iter().all(|&id| (id as usize) < 3000), "round {round}");
            old = new;
        }
        assert!(r.issued() <= 3000, "{}", r.issued());
    }

    fn vs_real_server() -> xvs_config::RealServer {
        cfg(&[1], false).virtual_servers[0].real_servers[0].clone()
    }
}
