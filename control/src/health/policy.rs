//! keepalived's checker logic for one real server, sans-IO: a failed probe is retried
//! `retry` times `delay_before_retry` apart before the server is declared down; a probe
//! that passes (or a MISC check that gives another weight) brings it up at once; the
//! next round starts `delay_loop` after the last probe. `on_outcome(now, outcome)` says
//! when to probe next and whether the server changed; the monitor does the probing.

use std::time::{Duration, Instant};

use xvs_config::HealthCheck;

use super::check::Outcome;

/// A change of the real server's health, with the reason for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub up: bool,
    /// MISC dynamic weight, when the script gave one.
    pub weight: Option<u32>,
    pub reason: String,
}

/// What the monitor does after a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// When to probe next.
    pub next: Instant,
    pub transition: Option<Transition>,
}

#[derive(Clone, Debug)]
pub struct Policy {
    retry: u32,
    delay_loop: Duration,
    delay_before_retry: Duration,
    up: bool,
    weight: Option<u32>,
    /// Retries spent on the current failure.
    tries: u32,
}

impl Policy {
    /// Up at start, or down with `alpha` (keepalived's meaning).
    pub fn new(check: &HealthCheck) -> Policy {
        Policy {
            retry: check.retry,
            delay_loop: Duration::from_millis(check.delay_loop_ms),
            delay_before_retry: Duration::from_millis(check.delay_before_retry_ms),
            up: !check.alpha,
            weight: None,
            tries: 0,
        }
    }

    #[cfg(test)]
    pub fn up(&self) -> bool {
        self.up
    }

    pub fn on_outcome(&mut self, now: Instant, outcome: &Outcome) -> Step {
        match outcome {
            Outcome::Up { weight } => {
                self.tries = 0;
                let changed = !self.up || *weight != self.weight;
                self.up = true;
                self.weight = *weight;
                Step {
                    next: now + self.delay_loop,
                    transition: changed.then(|| Transition {
                        up: true,
                        weight: *weight,
                        reason: "check succeeded".into(),
                    }),
                }
            }
            Outcome::Down(_) if self.tries < self.retry => {
                self.tries += 1;
                Step {
                    next: now + self.delay_before_retry,
                    transition: None,
                }
            }
            Outcome::Down(reason) => {
                self.tries = 0;
                let was_up = std::mem::replace(&mut self.up, false);
                let retries = match self.retry {
                    0 => String::new(),
                    n => format!(" after {n} retries"),
                };
                Step {
                    next: now + self.delay_loop,
                    transition: was_up.then(|| Transition {
                        up: false,
                        weight: self.weight,
                        reason: format!("{reason}{retries}"),
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> HealthCheck {
        let cfg = xvs_config::parse(
            "t.yaml",
            &format!("interface: lo\nvirtual_servers:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    health_check: {yaml}\n    real_servers:\n      - {{ address: 10.0.0.11 }}\n"),
        )
        .unwrap();
        cfg.virtual_servers[0].real_servers[0]
            .health_check
            .clone()
            .unwrap()
    }

    fn down() -> Outcome {
        Outcome::Down("connect: Connection refused".into())
    }

    const UP: Outcome = Outcome::Up { weight: None };

    #[test]
    fn down_only_after_every_retry_failed() {
        let t0 = Instant::now();
        let mut p = Policy::new(&check(
            "{ type: tcp, retry: 2, delay_before_retry: 1, delay_loop: 6 }",
        ));
        assert!(p.up());
        let s = p.on_outcome(t0, &down());
        assert_eq!((s.next, s.transition), (t0 + Duration::from_secs(1), None));
        let s = p.on_outcome(t0, &down());
        assert_eq!(s.transition, None, "second retry still to come");
        let s = p.on_outcome(t0, &down());
        assert_eq!(s.next, t0 + Duration::from_secs(6), "back to delay_loop");
        assert_eq!(
            s.transition,
            Some(Transition {
                up: false,
                weight: None,
                reason: "connect: Connection refused after 2 retries".into()
            })
        );
        assert!(!p.up());
        // Still down: the next round's failures report nothing new.
        for _ in 0..3 {
            assert_eq!(p.on_outcome(t0, &down()).transition, None);
        }
        let s = p.on_outcome(t0, &UP);
        assert_eq!(
            s.transition.map(|t| t.up),
            Some(true),
            "up at the first pass"
        );
    }

    #[test]
    fn a_pass_between_failures_resets_the_retries() {
        let t0 = Instant::now();
        let mut p = Policy::new(&check("{ type: tcp, retry: 1 }"));
        p.on_outcome(t0, &down());
        assert_eq!(p.on_outcome(t0, &UP).transition, None, "was never down");
        assert_eq!(
            p.on_outcome(t0, &down()).transition,
            None,
            "a fresh failure gets its retry again"
        );
        assert!(p.on_outcome(t0, &down()).transition.is_some());
    }

    #[test]
    fn alpha_starts_down_and_no_retry_means_at_once() {
        let t0 = Instant::now();
        let mut p = Policy::new(&check("{ type: tcp, alpha: true, retry: 0 }"));
        assert!(!p.up());
        assert_eq!(p.on_outcome(t0, &down()).transition, None, "already down");
        let t = p.on_outcome(t0, &UP).transition.unwrap();
        assert!(t.up);
        let t = p.on_outcome(t0, &down()).transition.unwrap();
        assert_eq!(t.reason, "connect: Connection refused", "no retries said");
    }

    #[test]
    fn a_new_dynamic_weight_is_a_transition_too() {
        let t0 = Instant::now();
        let mut p = Policy::new(&check(
            "{ type: misc, misc_path: /bin/true, misc_dynamic: true }",
        ));
        let t = p.on_outcome(t0, &Outcome::Up { weight: Some(5) });
        assert_eq!(t.transition.map(|t| t.weight), Some(Some(5)));
        assert_eq!(
            p.on_outcome(t0, &Outcome::Up { weight: Some(5) })
                .transition,
            None
        );
        let t = p.on_outcome(t0, &Outcome::Up { weight: Some(9) });
        assert_eq!(t.transition.map(|t| t.weight), Some(Some(9)));
    }
}
