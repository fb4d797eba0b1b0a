//! `fast_path: auto`: whether what the steering program sends (`XDP_TX`, redirects) is
//! delivered, read from the drivers' own counters. A veth counts the frames its peer
//! could not take (`rx_queue_N_xdp_tx_errors`, `tx_queue_N_xdp_xmit_errors`: its peer
//! runs no XDP program). Only veths are watched: a NIC delivers what XDP sends whatever
//! is on the wire, and its counters of errors count other things. When everything XDP
//! sent in a sample was lost, the director falls back for good: established flows and
//! NAT replies go through the workers' sockets, which a veth delivers. A sample in which
//! some frames got through is a full ring under load (a flood, a burst), not a missing
//! peer: it changes nothing, so no client can switch the fast path off by sending more.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::daemon::Ifaces;
use crate::sys::ethtool::DriverStats;

/// How often the counters are read while the fast path is on.
pub const SAMPLE: Duration = Duration::from_millis(250);

/// What XDP sent and what was lost, summed over an interface's queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub frames: u64,
    pub lost: u64,
}

/// Whether a driver statistic counts XDP frames lost on the way out, or sent.
fn kind(name: &str) -> Option<bool> {
    let n = name.to_ascii_lowercase();
    if n.contains("xdp_tx_err") || n.contains("xdp_xmit_err") {
        Some(true)
    } else if n.ends_with("xdp_tx") || n.ends_with("xdp_xmit") {
        Some(false)
    } else {
        None
    }
}

/// Sums an interface's statistics; None when it has none about XDP's frames.
pub fn sent(stats: &[(String, u64)]) -> Option<Sent> {
    let mut s = Sent::default();
    let mut any_lost = false;
    for (name, v) in stats {
        match kind(name) {
            Some(true) => {
                any_lost = true;
                s.lost = s.lost.saturating_add(*v);
            }
            Some(false) => s.frames = s.frames.saturating_add(*v),
            None => {}
        }
    }
    any_lost.then_some(s)
}

/// Whether the sample from `before` to `now` says XDP's frames are not delivered: some
/// were sent and every one was lost (a peer with no XDP program loses all).
pub fn undelivered(before: Sent, now: Sent) -> bool {
    let lost = now.lost.saturating_sub(before.lost);
    let sent = now.frames.saturating_sub(before.frames);
    lost > 0 && lost >= sent
}

/// Why the director fell back, for the log, `xvs status --dataplane` and /metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Every frame XDP sent out of `interface` in a sample was lost (`lost` of them).
    Undelivered { interface: String, lost: u64 },
    /// The workers had to complete partial checksums (`completed` of them): frames
    /// from a veth peer with TX checksum offload on, which the fast path would forward
    /// as they are.
    PartialChecksums { completed: u64 },
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::Undelivered { interface, lost } => write!(
                f,
                "{lost} frame(s) sent by XDP out of {interface} not delivered (its driver's xdp_tx_errors/xdp_xmit_errors): a veth delivers them only when its peer runs an XDP program"
            ),
            Fallback::PartialChecksums { completed } => write!(
                f,
                "{completed} TCP/UDP checksum(s) arrived partial (a veth peer with TX checksum offload on): the workers complete them, the XDP fast path would forward them as they are (`ethtool -K <peer> tx off` keeps it usable)"
            ),
        }
    }
}

/// How the dataplane sends now, for `xvs status --dataplane` and /metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct View {
    /// The configured `fast_path`.
    pub configured: &'static str,
    /// Established DR, TUN and NAT flows leave by XDP.
    pub active: bool,
    /// NAT replies are sent by the workers, not with `XDP_TX`.
    pub nat_relay: bool,
    /// Partial checksums (a veth's) are completed before forwarding.
    pub complete_partial: bool,
    /// Why `auto` fell back, if it did.
    pub fell_back: Option<String>,
    /// Frames XDP sent that each watched interface's driver counted lost, since start.
    pub undelivered: BTreeMap<String, u64>,
}

impl View {
    /// The text of `xvs status --dataplane`.
    pub fn render(&self) -> String {
        let fast = match (&self.fell_back, self.active) {
            (Some(why), _) => format!("off (fell back: {why})"),
            (None, true) => format!("xdp ({})", self.configured),
            (None, false) => format!("off ({})", self.configured),
        };
        let mut s = format!(
            "fast path: {fast}
"
        );
        s += if self.nat_relay {
            "NAT replies: translated in XDP, sent by the workers
"
        } else {
            "NAT replies: translated and sent in XDP (XDP_TX)
"
        };
        s += if self.complete_partial {
            "checksums: partial ones (a veth's) completed before forwarding
"
        } else {
            "checksums: forwarded as received
"
        };
        for (i, n) in &self.undelivered {
            s += &format!(
                "undelivered XDP frames on {i}: {n}
"
            );
        }
        s
    }
}

struct Watched {
    name: String,
    stats: DriverStats,
    last: Sent,
}

/// The watch over every interface the program sends from.
pub struct TxWatch {
    watched: Vec<Watched>,
    /// Lost frames counted per interface since the start.
    pub lost: BTreeMap<String, u64>,
    base: BTreeMap<String, u64>,
    pub fallback: Option<Fallback>,
}

impl TxWatch {
    /// The interfaces whose drivers count XDP's lost frames; the others are named in
    /// the returned notes (nothing to watch there: a NIC delivers what XDP sends).
    pub fn new(ifaces: &Ifaces) -> (TxWatch, Vec<String>) {
        let mut notes = Vec::new();
        let mut w = TxWatch {
            watched: Vec::new(),
            lost: BTreeMap::new(),
            base: BTreeMap::new(),
            fallback: None,
        };
        for i in ifaces.all() {
            if !crate::sys::iface::is_veth(&i.name) {
                notes.push(format!(
                    "{}: not a veth, whose XDP_TX needs nothing of the far side; fast_path auto keeps the fast path there",
                    i.name
                ));
                continue;
            }
            let opened = DriverStats::open(&i.name).and_then(|mut s| {
                let now = s.read()?;
                Ok((s, now))
            });
            match opened {
                Ok((stats, now)) => match sent(&now) {
                    Some(last) => {
                        w.base.insert(i.name.clone(), last.lost);
                        w.lost.insert(i.name.clone(), 0);
                        w.watched.push(Watched {
                            name: i.name.clone(),
                            stats,
                            last,
                        });
                    }
                    None => notes.push(format!(
                        "{}: its driver counts no lost XDP frames; fast_path auto keeps the fast path there",
                        i.name
                    )),
                },
                Err(e) => notes.push(format!(
                    "{}: no driver statistics ({e}); fast_path auto keeps the fast path there",
                    i.name
                )),
            }
        }
        (w, notes)
    }

    /// Whether there is anything to watch: a veth (its counters, its checksums) and no
    /// fallback yet.
    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    /// Reads the counters; the fallback, the first time a sample decides one.
    /// `completed`: the partial checksums the workers have completed so far.
    pub fn sample(&mut self, completed: u64) -> Option<Fallback> {
        let mut decided = (completed > 0 && self.fallback.is_none())
            .then_some(Fallback::PartialChecksums { completed });
        for w in &mut self.watched {
            let Ok(now) = w.stats.read() else { continue };
            let Some(now) = sent(&now) else { continue };
            let base = self.base.get(&w.name).copied().unwrap_or(0);
            self.lost
                .insert(w.name.clone(), now.lost.saturating_sub(base));
            if self.fallback.is_none() && decided.is_none() && undelivered(w.last, now) {
                decided = Some(Fallback::Undelivered {
                    interface: w.name.clone(),
                    lost: now.lost.saturating_sub(w.last.lost),
                });
            }
            w.last = now;
        }
        if let Some(f) = &decided {
            self.fallback = Some(f.clone());
        }
        decided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn a_veths_counters_are_summed_over_its_queues() {
        let s = stats(&[
            ("rx_queue_0_xdp_packets", 90),
            ("rx_queue_0_xdp_tx", 10),
            ("rx_queue_0_xdp_tx_errors", 10),
            ("rx_queue_1_xdp_tx", 5),
            ("rx_queue_1_xdp_tx_errors", 4),
            ("tx_queue_0_xdp_xmit", 7),
            ("tx_queue_0_xdp_xmit_errors", 1),
        ]);
        assert_eq!(
            sent(&s),
            Some(Sent {
                frames: 22,
                lost: 15
            })
        );
        assert_eq!(
            sent(&stats(&[("rx_packets", 3), ("rx_queue_0_xdp_tx", 1)])),
            None
        );
    }

    #[test]
    fn a_missing_peer_falls_back_and_a_busy_ring_does_not() {
        let zero = Sent::default();
        // No peer: every frame lost.
        assert!(undelivered(zero, Sent { frames: 3, lost: 3 }));
        // A full ring now and then, or most of it under a flood: some got through.
        for lost in [12, 9_999] {
            let s = Sent {
                frames: 10_000,
                lost,
            };
            assert!(!undelivered(zero, s));
        }
        // Nothing new.
        let s = Sent { frames: 5, lost: 5 };
        assert!(!undelivered(s, s));
        // A counter that went back (a driver reset) is no loss.
        assert!(!undelivered(s, Sent { frames: 1, lost: 0 }));
    }
}
