//! The VRRP state machine of one virtual router (RFC 5798 section 6.4; RFC 3768 for v2),
//! without I/O or a clock: `start`, `on_advert`, `on_timer`, `on_link`, `on_group` and
//! `shutdown` take `now` and return what to do; `deadline` says when `on_timer` is due.
//! It owns everything an instance decides on: its current priority, its tracked links'
//! state and its part in a sync group.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::advert::{Advert, Version};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Init,
    Backup,
    Master,
    /// A tracked interface is down: no VIPs, no adverts.
    Fault,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0: "I am leaving").
    Advertise { priority: u8 },
    /// Put the virtual addresses on the interface and announce them (gratuitous ARP).
    TakeVips,
    /// Take the virtual addresses off the interface.
    DropVips,
    /// The state changed (log, metrics, notify scripts), at this priority.
    Transition {
        from: State,
        to: State,
        priority: u8,
    },
    /// Tell the other members of our sync group that we moved to `state` (never for a
    /// move the group itself caused, so a group does not echo).
    TellGroup { state: State },
}

#[derive(Clone, Debug)]
pub struct Params {
    pub version: Version,
    /// 1–254, or 255 for the address owner.
    pub priority: u8,
    /// Our advertisement interval, centiseconds.
    pub interval_cs: u16,
    pub preempt: bool,
    /// keepalived's preempt_delay: after start-up or after first seeing a lower-priority
    /// master, wait this long before taking over from it.
    pub preempt_delay: Duration,
    /// Our primary address: breaks priority ties (the higher address wins).
    pub primary: IpAddr,
    /// Whether the instance belongs to a vrrp_sync_group.
    pub sync_group: bool,
    /// Connection sync is on: before preempting a lower-priority master (one still
    /// advertising), wait this long at most for `set_synced(true)`, so that the
    /// connections the master carries are known here before their packets arrive.
    pub failback_wait: Option<Duration>,
}

pub struct Machine {
    p: Params,
    state: State,
    /// The master's advertisement interval, as learned in Backup (v3), centiseconds.
    master_interval_cs: u16,
    /// Master: next advert. Backup: Master_Down_Timer.
    timer: Option<Instant>,
    /// Since when a lower-priority master has been heard (preempt_delay).
    lower_master_since: Option<Instant>,
    started: Option<Instant>,
    /// Our own tracked interfaces are all up.
    links_up: bool,
    /// Inside `on_group`: the transitions are the group's doing.
    following: bool,
    /// When a lower-priority master last advertised (Backup).
    lower_heard: Option<Instant>,
    /// Connection sync's table is in step with the peers'.
    synced: bool,
    /// Since when a preemption has been held back for connection sync.
    holding_since: Option<Instant>,
    /// Starts as master: it takes over from a master that handed over (`resume_as_master`).
    resume: bool,
}

fn cs(v: u32) -> Duration {
    Duration::from_millis(u64::from(v) * 10)
}

impl Machine {
    pub fn new(p: Params) -> Self {
        Machine {
            master_interval_cs: p.interval_cs,
            p,
            state: State::Init,
            timer: None,
            lower_master_since: None,
            started: None,
            links_up: true,
            following: false,
            lower_heard: None,
            synced: false,
            holding_since: None,
            resume: false,
        }
    }

    /// A planned handover (`xvs run --takeover`): the process handing over was master,
    /// so this one starts as master, its first advert at once, before any backup's
    /// Master_Down_Interval could end. (A higher priority's advert still wins, as ever.)
    pub fn resume_as_master(&mut self) {
        self.resume = true;
    }

    /// Connection sync's readiness changed. A preemption held back for it happens now.
    pub fn set_synced(&mut self, now: Instant, synced: bool) -> Vec<Action> {
        self.synced = synced;
        let mut out = Vec::new();
        if synced && self.state == State::Backup && self.holding_since.take().is_some() {
            self.become_master(now, &mut out);
        }
        out
    }

    /// A preemption is being held back for connection sync.
    pub fn holding(&self) -> bool {
        self.holding_since.is_some()
    }

    /// When Master_Down_Timer fires while a lower-priority master still advertises and
    /// connection sync is not ready: until when to wait instead of taking over (re-armed
    /// every master interval, so a master that goes quiet meanwhile is taken over from
    /// at once, as any).
    fn failback_hold(&mut self, now: Instant) -> Option<Instant> {
        let wait = self.p.failback_wait?;
        let preempting = self
            .lower_heard
            .is_some_and(|t| now.duration_since(t) < self.master_down_interval());
        if self.synced || !preempting {
            self.holding_since = None;
            return None;
        }
        let end = *self.holding_since.get_or_insert(now) + wait;
        if now >= end {
            self.holding_since = None;
            return None;
        }
        Some((now + cs(u32::from(self.master_interval_cs))).min(end))
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority advertised now (the configured one, or the one quorum set).
    pub fn priority(&self) -> u8 {
        self.p.priority
    }

    /// When `on_timer` must be called next.
    pub fn deadline(&self) -> Option<Instant> {
        self.timer
    }

    /// Skew_Time: v3 ((256 − priority) × Master_Adver_Interval / 256), v2 ((256 −
    /// priority) / 256 s).
    fn skew(&self) -> Duration {
        let weight = 256 - u32::from(self.p.priority);
        match self.p.version {
            Version::V3 => cs(weight * u32::from(self.master_interval_cs) / 256),
            Version::V2 => Duration::from_micros(u64::from(weight) * 1_000_000 / 256),
        }
    }

    /// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        cs(3 * u32::from(self.master_interval_cs)) + self.skew()
    }

    fn go(&mut self, to: State, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        if from == State::Master {
            out.push(Action::DropVips);
        }
        self.state = to;
        if to == State::Master {
            out.push(Action::TakeVips);
        }
        out.push(Action::Transition {
            from,
            to,
            priority: self.p.priority,
        });
        if self.p.sync_group && !self.following && to != State::Init {
            out.push(Action::TellGroup { state: to });
        }
    }

    fn become_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Advertise {
            priority: self.p.priority,
        });
        self.go(State::Master, out);
        self.timer = Some(now + cs(u32::from(self.p.interval_cs)));
        self.lower_master_since = None;
    }

    fn become_backup(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.go(State::Backup, out);
        self.timer = Some(now + self.master_down_interval());
    }

    /// Initialize → Master for the address owner (priority 255), else Backup: as
    /// keepalived 2.x, even with `state MASTER`, so that a director restarting below the
    /// owner's priority never claims VIPs that a higher-priority master is advertising;
    /// with no one advertising it takes over after Master_Down_Interval.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.started = Some(now);
        self.master_interval_cs = self.p.interval_cs;
        if self.p.priority == 255 || self.resume {
            self.become_master(now, &mut out);
        } else {
            self.become_backup(now, &mut out);
        }
        out
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.timer.is_none_or(|t| now < t) {
            return out;
        }
        match self.state {
            // Master_Down_Timer fired: the master is gone, or a lower-priority one is
            // to be preempted (once connection sync is ready, or has waited enough).
            State::Backup => match self.failback_hold(now) {
                Some(until) => self.timer = Some(until),
                None => self.become_master(now, &mut out),
            },
            State::Master => {
                out.push(Action::Advertise {
                    priority: self.p.priority,
                });
                self.timer = Some(now + cs(u32::from(self.p.interval_cs)));
            }
            State::Init | State::Fault => self.timer = None,
        }
        out
    }

    /// An advertisement that passed every check of `advert::parse`, from `src`.
    pub fn on_advert(&mut self, now: Instant, src: IpAddr, adv: &Advert) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup => {
                if adv.priority == 0 {
                    // The master is leaving: take over after Skew_Time only.
                    self.timer = Some(now + self.skew());
                } else if !self.p.preempt
                    || adv.priority >= self.p.priority
                    || self.holding_back(now)
                {
                    if self.p.version == Version::V3 && adv.interval_cs > 0 {
                        self.master_interval_cs = adv.interval_cs;
                    }
                    self.timer = Some(now + self.master_down_interval());
                    if adv.priority >= self.p.priority {
                        self.lower_master_since = None;
                    }
                }
                // Otherwise a lower-priority master: let Master_Down_Timer run out, then
                // preempt it.
                if adv.priority != 0 && adv.priority < self.p.priority {
                    self.lower_heard = Some(now);
                }
            }
            State::Master => {
                if adv.priority == 0 {
                    out.push(Action::Advertise {
                        priority: self.p.priority,
                    });
                    self.timer = Some(now + cs(u32::from(self.p.interval_cs)));
                } else if adv.priority > self.p.priority
                    || (adv.priority == self.p.priority && src > self.p.primary)
                {
                    if self.p.version == Version::V3 && adv.interval_cs > 0 {
                        self.master_interval_cs = adv.interval_cs;
                    }
                    self.become_backup(now, &mut out);
                }
            }
            State::Init | State::Fault => {}
        }
        out
    }

    /// preempt_delay: true while a lower-priority master must still be tolerated.
    fn holding_back(&mut self, now: Instant) -> bool {
        if self.p.preempt_delay.is_zero() {
            return false;
        }
        let since = *self.lower_master_since.get_or_insert(now);
        let since_start = self
            .started
            .map_or(Duration::ZERO, |s| now.duration_since(s));
        now.duration_since(since) < self.p.preempt_delay || since_start < self.p.preempt_delay
    }

    /// Our tracked interfaces went down (`up == false`: one of them) or all came back.
    pub fn on_link(&mut self, now: Instant, up: bool) -> Vec<Action> {
        self.links_up = up;
        self.fault(now, up)
    }

    /// Enters FAULT (`up == false`) or leaves it as BACKUP.
    fn fault(&mut self, now: Instant, up: bool) -> Vec<Action> {
        let mut out = Vec::new();
        match (up, self.state) {
            (false, State::Fault) | (true, State::Backup | State::Master | State::Init) => {}
            (false, s) => {
                if s == State::Master {
                    out.push(Action::Advertise { priority: 0 });
                }
                self.go(State::Fault, &mut out);
                self.timer = None;
            }
            (true, State::Fault) => self.become_backup(now, &mut out),
        }
        out
    }

    /// Another member of our sync group moved to `to` (keepalived's vrrp_sync_group):
    /// follow it, without telling the group again. A FAULT member takes the group down;
    /// MASTER and BACKUP are followed from BACKUP and MASTER; a member leaving FAULT lets
    /// the others out too, as BACKUP — except one whose own tracked link is still down.
    pub fn on_group(&mut self, now: Instant, to: State) -> Vec<Action> {
        if self.state == State::Fault && !self.links_up {
            return Vec::new();
        }
        self.following = true;
        let out = self.force(now, to);
        self.following = false;
        out
    }

    /// Moves to `to` as a sync group demands.
    fn force(&mut self, now: Instant, to: State) -> Vec<Action> {
        let mut out = Vec::new();
        match (to, self.state) {
            (State::Fault, State::Backup | State::Master) => return self.fault(now, false),
            (State::Master, State::Backup) => self.become_master(now, &mut out),
            (State::Backup, State::Master) => {
                out.push(Action::Advertise { priority: 0 });
                self.become_backup(now, &mut out);
            }
            (State::Backup, State::Fault) => return self.fault(now, true),
            _ => {}
        }
        out
    }

    /// A new priority (a virtual server lost or regained its quorum). A master tells the
    /// others at once, so that a peer that is now higher preempts it.
    pub fn set_priority(&mut self, now: Instant, priority: u8) -> Vec<Action> {
        let mut out = Vec::new();
        if priority == self.p.priority {
            return out;
        }
        self.p.priority = priority;
        if self.state == State::Master {
            out.push(Action::Advertise { priority });
            self.timer = Some(now + cs(u32::from(self.p.interval_cs)));
        }
        out
    }

    /// Graceful stop: a master says priority 0 so a backup takes over after its skew time.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            out.push(Action::Advertise { priority: 0 });
        }
        self.go(State::Init, &mut out);
        self.timer = None;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const PEER_LOW: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const PEER_HIGH: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));

    #[test]
    fn a_resumed_master_advertises_at_once_below_the_owners_priority() {
        let t0 = Instant::now();
        let mut m = Machine::new(params(Version::V3, 100));
        m.resume_as_master();
        let out = m.start(t0);
        assert_eq!(out.first(), Some(&Action::Advertise { priority: 100 }));
        assert_eq!(m.state(), State::Master);
        let mut plain = Machine::new(params(Version::V3, 100));
        plain.start(t0);
        assert_eq!(
            plain.state(),
            State::Backup,
            "without a handover: backup first"
        );
    }

    fn params(version: Version, priority: u8) -> Params {
        Params {
            version,
            priority,
            interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary: ME,
            sync_group: false,
            failback_wait: None,
        }
    }

    /// A machine that started at `t0` as backup, heard nobody and took over; and when.
    fn master(p: Params, t0: Instant) -> (Machine, Instant) {
        let mut m = Machine::new(p);
        m.start(t0);
        let t = t0 + m.master_down_interval();
        assert!(m.on_timer(t).contains(&Action::TakeVips));
        (m, t)
    }

    fn adv(priority: u8, interval_cs: u16) -> Advert {
        Advert {
            vrid: 51,
            priority,
            interval_cs,
            addresses: vec![],
        }
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn timers_follow_the_rfc() {
        let m = Machine::new(params(Version::V3, 100));
        // 3 × 1 s + (256 − 100) × 1 s / 256 = 3.609375 s (v3 rounds to centiseconds).
        assert_eq!(m.master_down_interval(), Duration::from_millis(3600));
        let m = Machine::new(params(Version::V2, 100));
        assert_eq!(m.master_down_interval(), Duration::from_micros(3_609_375));
    }

    #[test]
    fn backup_takes_over_when_adverts_stop() {
        let t0 = Instant::now();
        let mut m = Machine::new(params(Version::V2, 100));
        let a = m.start(t0);
        assert_eq!(
            a,
            [Action::Transition {
                from: State::Init,
                to: State::Backup,
                priority: 100
            }]
        );
        // Adverts from a higher-priority master keep it backup.
        for s in 1..10 {
            assert!(m
                .on_advert(ms(t0, s * 1000), PEER_HIGH, &adv(150, 100))
                .is_empty());
            assert!(m.on_timer(ms(t0, s * 1000 + 500)).is_empty());
        }
        // Silence: Master_Down_Interval after the last advert, it takes over.
        assert!(m.on_timer(ms(t0, 9000 + 3609)).is_empty());
        let a = m.on_timer(ms(t0, 9000 + 3610));
        assert_eq!(a[0], Action::Advertise { priority: 100 });
        assert!(a.contains(&Action::TakeVips));
        assert_eq!(m.state(), State::Master);
        // And advertises every interval.
        assert_eq!(
            m.on_timer(ms(t0, 9000 + 4610)),
            [Action::Advertise { priority: 100 }]
        );
    }

    #[test]
    fn priority_zero_means_take_over_after_skew() {
        let t0 = Instant::now();
        let mut m = Machine::new(params(Version::V3, 200));
        m.start(t0);
        m.on_advert(t0, PEER_HIGH, &adv(250, 100));
        m.on_advert(ms(t0, 500), PEER_HIGH, &adv(0, 100));
        // Skew = (256 − 200) × 1 s / 256 = 210 ms (whole centiseconds: 210).
        assert!(m.on_timer(ms(t0, 500 + 200)).is_empty());
        assert!(m.on_timer(ms(t0, 500 + 210)).contains(&Action::TakeVips));
    }

    #[test]
    fn master_yields_to_higher_priority_and_to_higher_address_on_ties() {
        let t0 = Instant::now();
        let (mut m, t0) = master(params(Version::V2, 100), t0);
        assert!(
            m.on_advert(t0, PEER_LOW, &adv(50, 100)).is_empty(),
            "lower: ignored"
        );
        assert!(
            m.on_advert(t0, PEER_LOW, &adv(100, 100)).is_empty(),
            "tie, lower address: we stay"
        );
        let a = m.on_advert(t0, PEER_HIGH, &adv(100, 100));
        assert_eq!(
            a,
            [
                Action::DropVips,
                Action::Transition {
                    from: State::Master,
                    to: State::Backup,
                    priority: 100
                }
            ]
        );
        // A master that hears priority 0 re-advertises at once.
        let (mut m, t0) = master(params(Version::V2, 100), t0);
        assert_eq!(
            m.on_advert(t0, PEER_LOW, &adv(0, 100)),
            [Action::Advertise { priority: 100 }]
        );
    }

    #[test]
    fn preempt_nopreempt_and_delay() {
        let t0 = Instant::now();
        // preempt: a lower master is not listened to, so we take over after the timer.
        let mut m = Machine::new(params(Version::V2, 150));
        m.start(t0);
        m.on_advert(ms(t0, 1000), PEER_LOW, &adv(100, 100));
        assert!(
            m.on_timer(ms(t0, 3500)).contains(&Action::TakeVips),
            "preempted at start + down interval"
        );
        // nopreempt: a lower master keeps us backup for as long as it advertises.
        let mut m = Machine::new(Params {
            preempt: false,
            ..params(Version::V2, 150)
        });
        m.start(t0);
        for s in 1..20 {
            m.on_advert(ms(t0, s * 1000), PEER_LOW, &adv(100, 100));
            assert!(m.on_timer(ms(t0, s * 1000 + 900)).is_empty());
        }
        assert_eq!(m.state(), State::Backup);
        // preempt_delay 5 s: tolerated for 5 s, then preempted.
        let mut m = Machine::new(Params {
            preempt_delay: Duration::from_secs(5),
            ..params(Version::V2, 150)
        });
        m.start(t0);
        let mut took = None;
        for s in 1..20u64 {
            let t = ms(t0, s * 1000);
            m.on_advert(t, PEER_LOW, &adv(100, 100));
            if m.on_timer(ms(t0, s * 1000 + 900))
                .contains(&Action::TakeVips)
            {
                took = Some(s);
                break;
            }
        }
        let s = took.expect("preempts in the end");
        assert!(
            (8..=10).contains(&s),
            "after the delay plus a down interval, took over at {s} s"
        );
    }

    #[test]
    fn v3_backup_learns_the_masters_interval() {
        let t0 = Instant::now();
        let mut m = Machine::new(params(Version::V3, 100));
        m.start(t0);
        m.on_advert(t0, PEER_HIGH, &adv(200, 10)); // the master advertises every 100 ms
                                                   // 3 × 100 ms + (156 × 10 cs / 256 = 6 cs) = 360 ms.
        assert!(m.on_timer(ms(t0, 350)).is_empty());
        assert!(m.on_timer(ms(t0, 360)).contains(&Action::TakeVips));
    }

    #[test]
    fn a_lowered_master_says_so_at_once() {
        let t0 = Instant::now();
        let (mut m, t0) = master(params(Version::V2, 150), t0);
        assert_eq!(m.set_priority(t0, 50), [Action::Advertise { priority: 50 }]);
        // Now a peer at 100 wins.
        assert!(m
            .on_advert(t0, PEER_LOW, &adv(100, 100))
            .contains(&Action::DropVips));
        assert!(
            m.set_priority(t0, 50).is_empty(),
            "no change, nothing to say"
        );
    }

    #[test]
    fn sync_group_members_follow() {
        let t0 = Instant::now();
        let mut m = Machine::new(Params {
            sync_group: true,
            failback_wait: None,
            ..params(Version::V2, 100)
        });
        assert!(
            m.start(t0).contains(&Action::TellGroup {
                state: State::Backup
            }),
            "its own transitions are told to the group"
        );
        let a = m.on_group(t0, State::Master);
        assert!(a.contains(&Action::TakeVips));
        assert!(
            !a.iter().any(|a| matches!(a, Action::TellGroup { .. })),
            "following the group is not echoed back to it: {a:?}"
        );
        let a = m.on_group(t0, State::Backup);
        assert_eq!(a[0], Action::Advertise { priority: 0 }, "hand over at once");
        assert!(a.contains(&Action::DropVips));
        m.on_group(t0, State::Fault);
        assert_eq!(m.state(), State::Fault);
        assert!(
            m.on_group(t0, State::Master).is_empty(),
            "a faulty member does not follow to MASTER"
        );
        m.on_group(t0, State::Backup);
        assert_eq!(m.state(), State::Backup, "the group's fault is over");
    }

    #[test]
    fn a_member_whose_own_link_is_down_stays_in_fault() {
        let t0 = Instant::now();
        let mut m = Machine::new(Params {
            sync_group: true,
            failback_wait: None,
            ..params(Version::V2, 100)
        });
        m.start(t0);
        let a = m.on_link(t0, false);
        assert!(a.contains(&Action::TellGroup {
            state: State::Fault
        }));
        assert!(
            m.on_group(t0, State::Backup).is_empty(),
            "another member leaving FAULT does not free us"
        );
        assert_eq!(m.state(), State::Fault);
        m.on_link(ms(t0, 10), true);
        assert_eq!(m.state(), State::Backup);
    }

    #[test]
    fn transitions_carry_the_current_priority() {
        let t0 = Instant::now();
        let mut m = Machine::new(params(Version::V2, 150));
        m.start(t0);
        m.set_priority(t0, 60);
        assert_eq!(m.priority(), 60);
        let a = m.on_timer(ms(t0, 10_000));
        assert!(
            a.contains(&Action::Transition {
                from: State::Backup,
                to: State::Master,
                priority: 60
            }),
            "{a:?}"
        );
    }

    #[test]
    fn owner_starts_as_master_and_fault_drops_everything() {
        let t0 = Instant::now();
        let mut m = Machine::new(params(Version::V2, 255));
        assert!(m.start(t0).contains(&Action::TakeVips));
        let a = m.on_link(t0, false);
        assert_eq!(a[0], Action::Advertise { priority: 0 });
        assert!(a.contains(&Action::DropVips));
        assert_eq!((m.state(), m.deadline()), (State::Fault, None));
        assert!(
            m.on_advert(t0, PEER_HIGH, &adv(100, 100)).is_empty(),
            "no state change in FAULT"
        );
        m.on_link(ms(t0, 10), true);
        assert_eq!(m.state(), State::Backup);
        assert_eq!(
            m.shutdown(),
            [Action::Transition {
                from: State::Backup,
                to: State::Init,
                priority: 255
            }]
        );
    }

    /// Connection sync on: a preemption waits for the resync (bounded), a takeover from
    /// a silent master never does.
    #[test]
    fn preemption_waits_for_connection_sync_and_failover_does_not() {
        let t0 = Instant::now();
        let wait = Duration::from_secs(5);
        let gated = || {
            Machine::new(Params {
                failback_wait: Some(wait),
                ..params(Version::V2, 150)
            })
        };
        // A lower-priority master advertises every second; sync turns ready at 6 s.
        let mut m = gated();
        m.start(t0);
        let mut took = None;
        for step in 1..200u64 {
            let t = ms(t0, step * 100);
            if step % 10 == 0 {
                m.on_advert(t, PEER_LOW, &adv(100, 100));
            }
            let mut a = m.on_timer(t);
            if step == 60 {
                assert!(m.holding(), "held back at 6 s");
                a.extend(m.set_synced(t, true));
            }
            if a.contains(&Action::TakeVips) {
                took = Some(step);
                break;
            }
        }
        assert_eq!(took, Some(60), "preempted the moment sync was ready");

        // Sync never ready: preempted after the wait (from the first due takeover).
        let mut m = gated();
        m.start(t0);
        let mut took = None;
        for step in 1..200u64 {
            let t = ms(t0, step * 100);
            if step % 10 == 0 {
                m.on_advert(t, PEER_LOW, &adv(100, 100));
            }
            if m.on_timer(t).contains(&Action::TakeVips) {
                took = Some(t.duration_since(t0));
                break;
            }
        }
        let down = m.master_down_interval();
        let took = took.expect("took over at last");
        assert!(
            took >= down + wait && took <= down + wait + Duration::from_millis(1200),
            "{took:?}"
        );

        // Ready already: no wait.
        let mut m = gated();
        m.start(t0);
        m.set_synced(t0, true);
        m.on_advert(ms(t0, 1000), PEER_LOW, &adv(100, 100));
        assert!(m.on_timer(ms(t0, 3500)).contains(&Action::TakeVips));

        // The master went silent (crashed): the backup takes over at once, sync or not.
        let mut m = Machine::new(Params {
            failback_wait: Some(wait),
            ..params(Version::V2, 100)
        });
        m.start(t0);
        m.on_advert(ms(t0, 1000), PEER_HIGH, &adv(150, 100));
        let a = m.on_timer(ms(t0, 1000) + m.master_down_interval());
        assert!(a.contains(&Action::TakeVips));
        assert!(!m.holding());
    }
}
