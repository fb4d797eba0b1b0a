//! `--rate`: counter samples a few seconds apart, and the per-second rate from the oldest
//! kept sample to now.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use xvs_dataplane::WorkerCounters;

use super::rows::{totals, Steered, Totals};
use crate::ids::DestRegistry;

/// How often the daemon samples the counters for `--rate`.
pub const RATE_SAMPLE: Duration = Duration::from_secs(2);
/// Samples kept: the rate is over the last 8 to 10 seconds.
const RATE_SAMPLES: usize = 5;

/// Per second, over the sampled window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate {
    pub cps: f64,
    pub in_pps: f64,
    pub out_pps: f64,
    /// Bytes per second (IPVS's InBPS, OutBPS).
    pub in_bps: f64,
    pub out_bps: f64,
}

impl Rate {
    pub(super) fn add(self, o: Rate) -> Rate {
        Rate {
            cps: self.cps + o.cps,
            in_pps: self.in_pps + o.in_pps,
            out_pps: self.out_pps + o.out_pps,
            in_bps: self.in_bps + o.in_bps,
            out_bps: self.out_bps + o.out_bps,
        }
    }
}

/// Counter samples, a few seconds apart, for the per-second view. Real-server ids are
/// never reused, so a sample's index is the same real server at every sample.
#[derive(Debug, Default)]
pub struct Rates {
    samples: VecDeque<(Instant, Vec<Totals>)>,
}

impl Rates {
    pub fn sample(
        &mut self,
        now: Instant,
        registry: &DestRegistry,
        workers: &[Arc<WorkerCounters>],
        bpf: Steered<'_>,
    ) {
        let all = (0..registry.issued())
            .map(|id| totals(workers, bpf, id))
            .collect();
        if self.samples.len() == RATE_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, all));
    }

    /// The rate from the oldest kept sample to `current` at `now`; None before any sample.
    pub fn rate(&self, now: Instant, id: usize, current: Totals) -> Option<Rate> {
        let (t0, first) = self.samples.front()?;
        let secs = now.saturating_duration_since(*t0).as_secs_f64();
        // A real server added since that sample started from zero.
        let before = first.get(id).copied().unwrap_or_default();
        if secs < 0.1 {
            return Some(Rate::default());
        }
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        Some(Rate {
            cps: per(current.conns, before.conns),
            in_pps: per(current.in_packets, before.in_packets),
            out_pps: per(current.out_packets, before.out_packets),
            in_bps: per(current.in_bytes, before.in_bytes),
            out_bps: per(current.out_bytes, before.out_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DestKey;
    use std::net::Ipv4Addr;
    use xvs_bpf::abi::NatOut;

    #[test]
    fn rate_is_the_difference_over_the_window() {
        let mut rates = Rates::default();
        assert_eq!(rates.rate(Instant::now(), 0, Totals::default()), None);
        let t0 = Instant::now();
        rates.samples.push_back((
            t0,
            vec![Totals {
                conns: 10,
                in_packets: 100,
                out_packets: 50,
                in_bytes: 1000,
                out_bytes: 9000,
            }],
        ));
        let now = t0 + Duration::from_secs(4);
        let r = rates
            .rate(
                now,
                0,
                Totals {
                    conns: 30,
                    in_packets: 500,
                    out_packets: 250,
                    in_bytes: 3000,
                    out_bytes: 29000,
                },
            )
            .unwrap();
        assert_eq!(
            r,
            Rate {
                cps: 5.0,
                in_pps: 100.0,
                out_pps: 50.0,
                in_bps: 500.0,
                out_bps: 5000.0,
            }
        );
        // A real server unknown at the sample counts from zero.
        let r = rates
            .rate(
                now,
                7,
                Totals {
                    conns: 8,
                    ..Totals::default()
                },
            )
            .unwrap();
        assert_eq!(r.cps, 2.0);
    }

    #[test]
    fn samples_the_workers_and_keeps_a_bounded_window() {
        let mut registry = DestRegistry::default();
        let id = registry.id(DestKey {
            service: xvs_dataplane::ServiceKey {
                addr: Ipv4Addr::new(10, 0, 0, 100).into(),
                port: 80,
                proto: 6,
            },
            addr: Ipv4Addr::new(10, 0, 0, 11).into(),
            port: 80,
        }) as usize;
        let workers = vec![
            Arc::new(WorkerCounters::new(4)),
            Arc::new(WorkerCounters::new(4)),
        ];
        let t0 = Instant::now();
        let mut rates = Rates::default();
        for i in 0..10 {
            rates.sample(
                t0 + Duration::from_secs(i),
                &registry,
                &workers,
                Steered::default(),
            );
        }
        assert_eq!(rates.samples.len(), RATE_SAMPLES);
        // The oldest kept sample is from t0 + 5 s; both workers count.
        workers[0].dests[id].conns.add(3);
        workers[1].dests[id].conns.add(7);
        workers[1].dests[id].bytes.add(100);
        let now = t0 + Duration::from_secs(10);
        // The steering program's outbound count joins in (a NAT real server's replies).
        let out = vec![
            NatOut {
                packets: 20,
                bytes: 2000
            };
            id + 1
        ];
        let bpf = Steered {
            out: &out,
            fast_in: &[],
        };
        let r = rates.rate(now, id, totals(&workers, bpf, id)).unwrap();
        assert_eq!(r.cps, 2.0);
        // Bytes per second, as IPVS's InBPS/OutBPS.
        assert_eq!(r.in_bps, 20.0);
        assert_eq!((r.out_pps, r.out_bps), (4.0, 400.0));
    }
}
