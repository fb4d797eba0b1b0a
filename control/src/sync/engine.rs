//! Connection sync without sockets or a clock (quinn's style): `on_datagram` takes what
//! arrived, `on_turn` drains the workers' queues and runs the timers, and both say what
//! to send. The thread (`thread.rs`) owns the sockets and calls them.
//!
//! - Changes go to every peer (the multicast group, or each unicast peer) as soon as a
//!   turn sees them: a turn is at most a few milliseconds.
//! - A resync is asked of the peers at start, and of a peer heard again after 3 s of
//!   silence (it may have carried connections meanwhile). The peer's workers walk their
//!   tables into their bulk queues; this side of it sends them at `resync_rate`, then
//!   `ResyncDone`.
//! - `ready` (what a preempting VRRP instance waits for) turns true when a resync
//!   finishes, or when no peer has answered within `resync_timeout`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xvs_dataplane::sync::SyncChannel;
use xvs_dataplane::{SharedSnapshot, WorkerCounters};

use super::auth::{Key, Replay};
use super::stats::{PeerView, SyncStats};
use super::translate;
use super::wire::{self, Builder, Framed, Header, Kind, Reject};

/// A hello a second; a peer silent for three is gone.
pub const HELLO_EVERY: Duration = Duration::from_secs(1);
pub const PEER_LOST_AFTER: Duration = Duration::from_secs(3);
/// A resync request unanswered for this long is asked again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(1);
/// NAT clients whose next hop was resolved lately are not asked about again for this
/// long; at most this many are remembered.
const RESOLVE_AGAIN_AFTER: Duration = Duration::from_secs(60);
const RESOLVED_MAX: usize = 65536;
/// A resync being served that is still not done after this long (a worker that stopped
/// walking) is ended, so the next peer's is served.
const SERVE_AT_MOST: Duration = Duration::from_secs(120);
/// A peer's resync is not started again sooner than this after its last one began: a
/// peer cannot make this director stream its table without pause (it asks again a
/// second later, and is served then).
const RESYNC_AT_MOST_EVERY: Duration = Duration::from_secs(5);
/// How far a message's time may be from this director's clock (directors keep their
/// clocks by NTP): older, it is a capture sent again.
pub const MAX_SKEW: Duration = Duration::from_secs(60);
/// Peers known at once, the configured ones aside; one silent for `PEER_FORGOTTEN_AFTER`
/// is forgotten (a configured one never). Forgetting it forgets its replay window, so
/// this must be far longer than `MAX_SKEW`: by then its old messages are stale.
const MAX_PEERS: usize = 32;
const PEER_FORGOTTEN_AFTER: Duration = Duration::from_secs(600);

pub struct Settings {
    pub key: Vec<u8>,
    /// This director's address on the sync interface (its messages' source).
    pub own: Ipv4Addr,
    pub port: u16,
    /// Empty: multicast to `group`.
    pub peers: Vec<Ipv4Addr>,
    pub group: Ipv4Addr,
    pub resync_timeout: Duration,
    /// Entries per second of a resync's answer.
    pub resync_rate: u32,
    /// This process's start, ns since the epoch: a restart is a newer boot.
    pub boot: u64,
}

#[derive(Debug)]
pub struct Outgoing {
    pub to: SocketAddrV4,
    pub data: Vec<u8>,
}

struct Peer {
    replay: Replay,
    last_heard: Instant,
    live: bool,
    flows: u64,
    /// When a resync for it last began.
    last_resync: Option<Instant>,
}

/// A resync asked of this director: by whom, and which request (its boot and sequence
/// number, which the `ResyncDone` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Asked {
    by: Ipv4Addr,
    boot: u64,
    seq: u64,
}

/// A resync this director is answering.
struct Serving {
    to: Ipv4Addr,
    asked: Asked,
    /// Each worker's walk number.
    walks: Vec<u64>,
    started: Instant,
    sent: u64,
}

pub struct Engine {
    key: Key,
    s: Settings,
    seq: u64,
    /// The wall clock (ms since the epoch) at `started`, and the latest `Instant` this
    /// engine was given: together its wall clock (`wall_ms`) without asking the system;
    /// the thread sets them anew each turn (`set_clock`), so a stepped clock is followed.
    wall_base: u64,
    started: Instant,
    clock: Instant,
    /// Where changes and hellos go.
    targets: Vec<SocketAddrV4>,
    allowed: Option<HashSet<Ipv4Addr>>,
    peers: HashMap<Ipv4Addr, Peer>,
    channels: Vec<Arc<SyncChannel>>,
    workers: Vec<Arc<WorkerCounters>>,
    snapshot: SharedSnapshot,
    stats: Arc<SyncStats>,
    /// Our own resync: when we last asked, and since when we have been waiting.
    asked: Option<Instant>,
    waiting_since: Option<Instant>,
    /// When the resync under way was asked for: kept past `resync_timeout`, so that one
    /// finishing later is still counted and logged.
    resync_since: Option<Instant>,
    ready: bool,
    serving: Option<Serving>,
    requests: VecDeque<Asked>,
    tokens: f64,
    refilled: Instant,
    last_hello: Option<Instant>,
    /// The first turn asks every peer for its table.
    begun: bool,
    /// NAT clients of received entries: the director's replies to them leave from the
    /// steering program, which needs their next hop's MAC in the kernel's neighbour
    /// table — one this director may never have talked to (`take_resolve`).
    to_resolve: Vec<IpAddr>,
    resolved: HashMap<IpAddr, Instant>,
}

impl Engine {
    pub fn new(
        s: Settings,
        channels: Vec<Arc<SyncChannel>>,
        workers: Vec<Arc<WorkerCounters>>,
        snapshot: SharedSnapshot,
        stats: Arc<SyncStats>,
        now: Instant,
    ) -> Engine {
        let targets = if s.peers.is_empty() {
            vec![SocketAddrV4::new(s.group, s.port)]
        } else {
            s.peers
                .iter()
                .map(|p| SocketAddrV4::new(*p, s.port))
                .collect()
        };
        let allowed = (!s.peers.is_empty()).then(|| s.peers.iter().copied().collect());
        let wall_base = s.boot / 1_000_000;
        Engine {
            key: Key::new(&s.key),
            s,
            seq: 0,
            wall_base,
            started: now,
            clock: now,
            targets,
            allowed,
            peers: HashMap::new(),
            channels,
            workers,
            snapshot,
            stats,
            asked: None,
            waiting_since: Some(now),
            resync_since: Some(now),
            ready: false,
            serving: None,
            requests: VecDeque::new(),
            tokens: 0.0,
            refilled: now,
            last_hello: None,
            begun: false,
            to_resolve: Vec::new(),
            resolved: HashMap::new(),
        }
    }

    /// The NAT clients whose next hop the thread should have the kernel resolve.
    pub fn take_resolve(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.to_resolve)
    }

    /// `client` could not be queued for resolving: forgotten, so that its next entry
    /// asks again; counted.
    pub fn resolve_failed(&mut self, client: IpAddr) {
        self.resolved.remove(&client);
        SyncStats::add(&self.stats.resolves_dropped, 1);
    }

    fn resolve_later(&mut self, now: Instant, client: IpAddr) {
        if self
            .resolved
            .get(&client)
            .is_some_and(|t| now.duration_since(*t) < RESOLVE_AGAIN_AFTER)
        {
            return;
        }
        if self.resolved.len() >= RESOLVED_MAX {
            self.resolved
                .retain(|_, t| now.duration_since(*t) < RESOLVE_AGAIN_AFTER);
            if self.resolved.len() >= RESOLVED_MAX {
                return;
            }
        }
        self.resolved.insert(client, now);
        self.to_resolve.push(client);
    }

    /// The table is in step with the peers: no preemption needs to wait.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// The system's wall clock (ms since the epoch) read at `now`.
    pub fn set_clock(&mut self, now: Instant, wall_ms: u64) {
        self.wall_base = wall_ms;
        self.started = now;
    }

    /// ms since the epoch at `now`.
    fn wall_ms(&self, now: Instant) -> u64 {
        self.wall_base + now.saturating_duration_since(self.started).as_millis() as u64
    }

    fn seal(&mut self, b: Builder, recipient: Ipv4Addr) -> Vec<u8> {
        self.seq += 1;
        let stamp = wire::Stamp {
            boot: self.s.boot,
            seq: self.seq,
            sender: self.s.own,
            sent: self.wall_ms(self.clock),
            recipient,
        };
        let key = &self.key;
        b.seal(stamp, |d| key.sign(d))
    }

    /// Sends `b` to each of `to`, sealed for each (the recipient is signed).
    fn send(&mut self, b: Builder, to: &[SocketAddrV4], out: &mut Vec<Outgoing>) {
        let entries = u64::from(b.count());
        for t in to {
            let data = self.seal(b.clone(), *t.ip());
            SyncStats::add(&self.stats.sent_messages, 1);
            SyncStats::add(&self.stats.sent_bytes, data.len() as u64);
            SyncStats::add(&self.stats.sent_entries, entries);
            out.push(Outgoing { to: *t, data });
        }
    }

    fn peer_addr(&self, ip: Ipv4Addr) -> SocketAddrV4 {
        SocketAddrV4::new(ip, self.s.port)
    }

    /// A datagram from `src`: checked (peer, framing, tag, replay) before anything in
    /// it is believed; every refusal counted by reason.
    pub fn on_datagram(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        data: &[u8],
        out: &mut Vec<Outgoing>,
    ) {
        self.clock = now;
        let ip = *src.ip();
        if ip == self.s.own {
            return;
        }
        if let Err(r) = self.accept(now, ip, data, out) {
            self.stats.reject(r);
            tracing::debug!("sync: message from {ip} rejected: {}", r.label());
        }
    }

    fn accept(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        data: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Result<(), Reject> {
        let f = self.check(now, ip, data)?;
        let rejoined = self.heard(now, ip, &f.header)?;
        SyncStats::add(&self.stats.received_messages, 1);
        SyncStats::add(&self.stats.received_bytes, data.len() as u64);
        match f.header.kind {
            Kind::Hello => self.on_hello(ip, f.body)?,
            Kind::ResyncRequest => self.on_resync_request(now, ip, &f.header)?,
            Kind::ResyncDone => self.on_resync_done(now, ip, f.body)?,
            Kind::Entries => self.install(now, f.body, f.header.count)?,
        }
        let asked_lately = self
            .asked
            .is_some_and(|t| now.duration_since(t) < ASK_AGAIN_AFTER);
        if rejoined && !asked_lately {
            // A peer (back) on the link: it may know connections we do not.
            tracing::info!("sync: peer {ip} heard");
            self.ask(now, &[self.peer_addr(ip)], out);
        }
        Ok(())
    }

    /// The datagram framed, and believed: from a peer allowed, by whom it says, for this
    /// director (or its group), signed with the key, and recent.
    fn check<'d>(&self, now: Instant, ip: Ipv4Addr, data: &'d [u8]) -> Result<Framed<'d>, Reject> {
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&ip)) {
            return Err(Reject::UnknownPeer);
        }
        let f = wire::frame(data)?;
        if f.header.sender != ip {
            return Err(Reject::SenderMismatch);
        }
        let multicast = self.allowed.is_none();
        let to = f.header.recipient;
        if to != self.s.own && !(multicast && to == self.s.group) {
            return Err(Reject::WrongRecipient);
        }
        if !self.key.verify(f.signed, f.tag) {
            return Err(Reject::Authentication);
        }
        if self.wall_ms(now).abs_diff(f.header.sent) > MAX_SKEW.as_millis() as u64 {
            return Err(Reject::Stale);
        }
        Ok(f)
    }

    /// `ip` heard from: a peer (given a place if new) unless the message is a replay.
    /// True when the peer was not live until now (new, or back after silence).
    fn heard(&mut self, now: Instant, ip: Ipv4Addr, header: &Header) -> Result<bool, Reject> {
        self.make_room(ip)?;
        let peer = self.peers.entry(ip).or_insert_with(|| Peer {
            replay: Replay::default(),
            last_heard: now,
            live: false,
            flows: 0,
            last_resync: None,
        });
        if !peer.replay.accept(header.boot, header.seq) {
            return Err(Reject::Replay);
        }
        let rejoined = !peer.live;
        peer.live = true;
        peer.last_heard = now;
        Ok(rejoined)
    }

    /// A hello: the connections the peer tracks.
    fn on_hello(&mut self, ip: Ipv4Addr, body: &[u8]) -> Result<(), Reject> {
        let b: [u8; 4] = body.try_into().map_err(|_| Reject::Malformed)?;
        if let Some(peer) = self.peers.get_mut(&ip) {
            peer.flows = u64::from(u32::from_be_bytes(b));
        }
        Ok(())
    }

    /// A peer asks for this director's table: queued, unless it is served or queued
    /// already; refused when its last resync began too recently.
    fn on_resync_request(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        header: &Header,
    ) -> Result<(), Reject> {
        let busy = self.serving.as_ref().is_some_and(|s| s.to == ip);
        if !busy && !self.requests.iter().any(|r| r.by == ip) {
            if self
                .peers
                .get(&ip)
                .and_then(|p| p.last_resync)
                .is_some_and(|t| now.duration_since(t) < RESYNC_AT_MOST_EVERY)
            {
                return Err(Reject::ResyncTooSoon);
            }
            self.requests.push_back(Asked {
                by: ip,
                boot: header.boot,
                seq: header.seq,
            });
        }
        Ok(())
    }

    /// A peer has sent its whole table (the resync this director asked for): in step.
    fn on_resync_done(&mut self, now: Instant, ip: Ipv4Addr, body: &[u8]) -> Result<(), Reject> {
        let b: [u8; 24] = body.try_into().map_err(|_| Reject::Malformed)?;
        let be64 = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        // It must answer a request of this boot: a captured one of an earlier boot
        // (before a restart, whose replay window is new) would end the wait with
        // the table unsynced. (Within a boot the replay window refuses repeats; an
        // answer to an earlier request of this boot is a real one.)
        if be64(8) != self.s.boot {
            return Err(Reject::Unasked);
        }
        if let Some(since) = self.resync_since.take() {
            let ms = now.duration_since(since).as_millis() as u64;
            SyncStats::add(&self.stats.resync_completed, 1);
            self.stats.resync_last_ms.store(ms, Relaxed);
            tracing::info!(
                "sync: resync from {ip} done in {ms} ms{}",
                if self.ready {
                    " (after resync_timeout, which had made this director ready)"
                } else {
                    ""
                }
            );
        }
        self.waiting_since = None;
        self.asked = None;
        self.set_ready(true);
        Ok(())
    }

    /// A new peer needs a place: the one silent longest gives its place if it is not
    /// live; with every place live, the newcomer is refused. Configured peers are not
    /// counted (they are few, and listed by the operator).
    fn make_room(&mut self, ip: Ipv4Addr) -> Result<(), Reject> {
        if self.peers.contains_key(&ip) || self.allowed.is_some() {
            return Ok(());
        }
        if self.peers.len() < MAX_PEERS {
            return Ok(());
        }
        let oldest = self
            .peers
            .iter()
            .filter(|(_, p)| !p.live)
            .min_by_key(|(_, p)| p.last_heard)
            .map(|(a, _)| *a);
        match oldest {
            Some(a) => {
                self.peers.remove(&a);
                Ok(())
            }
            None => Err(Reject::TooManyPeers),
        }
    }

    fn install(&mut self, now: Instant, body: &[u8], count: u16) -> Result<(), Reject> {
        let entries = wire::entries(body, count)?;
        SyncStats::add(&self.stats.received_entries, entries.len() as u64);
        let snap = self.snapshot.load();
        for e in &entries {
            match translate::record(&snap, e) {
                Ok((rec, forwarding)) => {
                    let translated = matches!(
                        forwarding,
                        xvs_dataplane::Forwarding::Nat | xvs_dataplane::Forwarding::FullNat
                    );
                    if translated && !e.template {
                        self.resolve_later(now, e.client);
                    }
                    // Every worker: which one the flow's packets will reach depends on
                    // the NIC's hash, which this side cannot know.
                    for ch in &self.channels {
                        if ch.inbound.push(rec).is_err() {
                            self.stats.reject(Reject::QueueFull);
                        }
                    }
                }
                Err(r) => self.stats.reject(r),
            }
        }
        Ok(())
    }

    fn ask(&mut self, now: Instant, to: &[SocketAddrV4], out: &mut Vec<Outgoing>) {
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
            self.resync_since = Some(now);
            self.set_ready(false);
        }
        self.asked = Some(now);
        SyncStats::add(&self.stats.resync_requested, 1);
        self.send(Builder::new(Kind::ResyncRequest, false), to, out);
    }

    fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
        self.stats.ready.store(ready, Relaxed);
    }

    /// One turn: the workers' changes out, the resync being served, the timers.
    pub fn on_turn(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        self.clock = now;
        if !self.begun {
            self.begun = true;
            let to = self.targets.clone();
            self.ask(now, &to, out);
        }
        self.send_changes(out);
        self.serve(now, out);
        self.timers(now, out);
    }

    /// Adds `rec` to the message `b` (of entries; `bulk` for a resync's), sending it to
    /// `to` first when it is full. False when the record's real server has left the
    /// snapshot (counted, not sent).
    fn add(
        &mut self,
        snap: &xvs_dataplane::Snapshot,
        rec: &xvs_dataplane::sync::SyncRecord,
        b: &mut Builder,
        bulk: bool,
        to: &[SocketAddrV4],
        out: &mut Vec<Outgoing>,
    ) -> bool {
        let Some(e) = translate::entry(snap, rec) else {
            SyncStats::add(&self.stats.dest_gone, 1);
            return false;
        };
        if !b.push(&e) {
            let full = std::mem::replace(b, Builder::new(Kind::Entries, bulk));
            self.send(full, to, out);
            b.push(&e);
        }
        true
    }

    fn send_changes(&mut self, out: &mut Vec<Outgoing>) {
        let snap = self.snapshot.load();
        let mut b = Builder::new(Kind::Entries, false);
        let targets = self.targets.clone();
        for i in 0..self.channels.len() {
            while let Some(rec) = self.channels[i].changes.pop() {
                self.add(&snap, &rec, &mut b, false, &targets, out);
            }
        }
        if !b.is_empty() {
            self.send(b, &targets, out);
        }
    }

    fn serve(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        if self.serving.is_none() {
            let Some(asked) = self.requests.pop_front() else {
                return;
            };
            self.start_serving(now, asked);
        }
        self.refill(now);
        let sent = self.send_bulk(out);
        let s = self.serving.as_mut().unwrap();
        s.sent += sent;
        let finished = self
            .channels
            .iter()
            .zip(&s.walks)
            .all(|(c, n)| c.walk_finished(*n) && c.bulk.is_empty());
        let stuck = now.duration_since(s.started) >= SERVE_AT_MOST;
        if stuck && !finished {
            tracing::warn!(
                "sync: the resync for {} is not done after {SERVE_AT_MOST:?} ({} entries sent): ended so that others are served",
                s.to,
                s.sent
            );
        }
        if finished || stuck {
            self.finish_serving(now, out);
        }
    }

    /// Begins answering `asked`: every worker walks its table into its bulk queue.
    fn start_serving(&mut self, now: Instant, asked: Asked) {
        let to = asked.by;
        tracing::info!("sync: resync for {to} started");
        if let Some(p) = self.peers.get_mut(&to) {
            p.last_resync = Some(now);
        }
        self.serving = Some(Serving {
            to,
            asked,
            walks: self.channels.iter().map(|c| c.ask_walk()).collect(),
            started: now,
            sent: 0,
        });
        self.tokens = 0.0;
        self.refilled = now;
    }

    /// The tokens `resync_rate` gives since the last turn.
    fn refill(&mut self, now: Instant) {
        let rate = f64::from(self.s.resync_rate);
        // At most 10 ms worth of tokens saved up (and never less than a message's
        // worth): the pace holds over any turn length.
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate)
            .min((rate / 100.0).max(64.0));
        self.refilled = now;
    }

    /// Sends the workers' bulk entries to the peer served, as many as there are tokens;
    /// the entries sent.
    fn send_bulk(&mut self, out: &mut Vec<Outgoing>) -> u64 {
        let snap = self.snapshot.load();
        let serving = self.serving.as_ref().unwrap();
        let to = [self.peer_addr(serving.to)];
        let mut b = Builder::new(Kind::Entries, true);
        let mut sent = 0;
        'drain: for i in 0..self.channels.len() {
            while self.tokens >= 1.0 {
                let Some(rec) = self.channels[i].bulk.pop() else {
                    continue 'drain;
                };
                self.tokens -= 1.0;
                if self.add(&snap, &rec, &mut b, true, &to, out) {
                    sent += 1;
                }
            }
        }
        if !b.is_empty() {
            self.send(b, &to, out);
        }
        sent
    }

    /// The resync served is over: counted, and told to its peer (`ResyncDone`).
    fn finish_serving(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        let s = self.serving.take().unwrap();
        let ms = now.duration_since(s.started).as_millis() as u64;
        SyncStats::add(&self.stats.resync_served, 1);
        self.stats.resync_served_last_ms.store(ms, Relaxed);
        self.stats.resync_served_entries.store(s.sent, Relaxed);
        tracing::info!("sync: resync for {}: {} entries in {ms} ms", s.to, s.sent);
        let mut body = s.sent.to_be_bytes().to_vec();
        body.extend_from_slice(&s.asked.boot.to_be_bytes());
        body.extend_from_slice(&s.asked.seq.to_be_bytes());
        let b = Builder::new(Kind::ResyncDone, false).body(&body);
        self.send(b, &[self.peer_addr(s.to)], out);
    }

    fn timers(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        if self
            .last_hello
            .is_none_or(|t| now.duration_since(t) >= HELLO_EVERY)
        {
            self.last_hello = Some(now);
            let flows = self.local_flows().min(u64::from(u32::MAX)) as u32;
            let targets = self.targets.clone();
            self.send(
                Builder::new(Kind::Hello, false).body(&flows.to_be_bytes()),
                &targets,
                out,
            );
            for (a, p) in self.peers.iter_mut() {
                if p.live && now.duration_since(p.last_heard) >= PEER_LOST_AFTER {
                    p.live = false;
                    tracing::warn!(
                        event = "sync_peer_lost",
                        peer = %a,
                        "sync: peer {a} lost: nothing heard for {PEER_LOST_AFTER:?}"
                    );
                }
            }
            let configured = &self.allowed;
            self.peers.retain(|a, p| {
                configured.as_ref().is_some_and(|c| c.contains(a))
                    || now.duration_since(p.last_heard) < PEER_FORGOTTEN_AFTER
            });
            self.publish_peers();
        }
        if let Some(since) = self.waiting_since {
            let live = self.peers.values().any(|p| p.live);
            if now.duration_since(since) >= self.s.resync_timeout && !self.ready {
                // Nobody answered in time: go on without (a preempting instance has
                // waited as long as it may anyway).
                tracing::info!(
                    "sync: no resync within {:?}{}",
                    self.s.resync_timeout,
                    if live { "" } else { " (no peer heard)" }
                );
                self.set_ready(true);
            }
            if !self.ready
                && self
                    .asked
                    .is_some_and(|t| now.duration_since(t) >= ASK_AGAIN_AFTER)
            {
                let to = self.targets.clone();
                self.ask(now, &to, out);
            }
            if self.ready {
                self.waiting_since = None;
                self.asked = None;
            }
        }
    }

    /// The connections this director's workers track now (their gauges).
    fn local_flows(&self) -> u64 {
        let n = self.snapshot.load().dests.len();
        self.workers
            .iter()
            .map(|w| {
                w.dests[..n.min(w.dests.len())]
                    .iter()
                    .map(|d| d.active.get() + d.inactive.get())
                    .sum::<u64>()
            })
            .sum()
    }

    fn publish_peers(&self) {
        let mut v: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(a, p)| PeerView {
                addr: *a,
                last_heard: p.last_heard,
                live: p.live,
                flows: p.flows,
            })
            .collect();
        v.sort_by_key(|p| p.addr);
        self.stats.peers.store(Arc::new(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwap;
    use xvs_dataplane::flow::FlowKey;
    use xvs_dataplane::snapshot::MAX_DESTS;
    use xvs_dataplane::sync::{SyncKey, SyncRecord};
    use xvs_dataplane::{Dest, Forwarding, SchedulerKind, Service, ServiceKey, Snapshot};

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const KEY: &[u8] = b"a shared secret of the directors";

    fn snapshot() -> SharedSnapshot {
        let dests = (0..3u8)
            .map(|i| {
                Some(Dest {
                    addr: Ipv4Addr::new(10, 0, 0, 11 + i).into(),
                    port: 80,
                    weight: 1,
                    mac: Some([2, 0, 0, 0, 1, i]),
                })
            })
            .collect();
        let svc = Service::new(
            String::from("web"),
            ServiceKey {
                addr: VIP.into(),
                port: 80,
                proto: 6,
            },
            SchedulerKind::Rr,
            Forwarding::Dr,
            vec![0, 1, 2],
        );
        Arc::new(ArcSwap::from_pointee(
            Snapshot::new(1, [2, 0, 0, 0, 0, 2], vec![svc], dests).unwrap(),
        ))
    }

    struct Side {
        e: Engine,
        ch: Arc<SyncChannel>,
        stats: Arc<SyncStats>,
        ip: Ipv4Addr,
    }

    fn side(own: Ipv4Addr, peer: Ipv4Addr, key: &[u8], t: Instant) -> Side {
        let ch = Arc::new(SyncChannel::default());
        let stats = Arc::new(SyncStats::default());
        let e = Engine::new(
            Settings {
                key: key.to_vec(),
                own,
                port: 8848,
                peers: vec![peer],
                group: Ipv4Addr::new(224, 0, 0, 81),
                resync_timeout: Duration::from_secs(5),
                resync_rate: 100_000,
                boot: 1000,
            },
            vec![Arc::clone(&ch)],
            vec![Arc::new(WorkerCounters::new(MAX_DESTS))],
            snapshot(),
            Arc::clone(&stats),
            t,
        );
        Side {
            e,
            ch,
            stats,
            ip: own,
        }
    }

    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);

    /// A director with no `peers`: to the group, from whoever has the key.
    fn multicast_side(own: Ipv4Addr, t: Instant) -> Side {
        let mut s = side(own, own, KEY, t);
        s.e.s.peers.clear();
        s.e.allowed = None;
        s.e.targets = vec![SocketAddrV4::new(GROUP, 8848)];
        s
    }

    fn rec(sport: u16, dest: u32) -> SyncRecord {
        SyncRecord {
            key: SyncKey::V4(FlowKey::new(
                u32::from(Ipv4Addr::new(172, 16, 0, 1)),
                u32::from(VIP),
                sport,
                80,
                6,
            )),
            dest,
            state: 1,
            template: false,
            timeout: 900,
            local: None,
        }
    }

    /// Hands what `from` sent to `to`, as the network would; returns how many.
    fn deliver(out: &mut Vec<Outgoing>, from: Ipv4Addr, to: &mut Side, t: Instant) -> usize {
        let mut back = Vec::new();
        let n = out.len();
        for o in out.drain(..) {
            assert_eq!(*o.to.ip(), to.ip);
            to.e.on_datagram(t, SocketAddrV4::new(from, 40000), &o.data, &mut back);
        }
        *out = back;
        n
    }

    fn begun(t: Instant) -> (Side, Side) {
        let mut a = side(A, B, KEY, t);
        let mut b = side(B, A, KEY, t);
        let (mut oa, mut ob) = (Vec::new(), Vec::new());
        a.e.on_turn(t, &mut oa);
        b.e.on_turn(t, &mut ob);
        // The resync requests and hellos of the first turn, and whatever they cause.
        deliver(&mut oa, A, &mut b, t);
        deliver(&mut ob, B, &mut a, t);
        (a, b)
    }

    #[test]
    fn a_change_reaches_the_peers_workers_with_its_real_server() {
        let t = Instant::now();
        let (mut a, mut b) = begun(t);
        a.ch.changes.push(rec(1234, 2)).unwrap();
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        deliver(&mut out, A, &mut b, t);
        let got: Vec<_> = std::iter::from_fn(|| b.ch.inbound.pop()).collect();
        assert_eq!(got, vec![rec(1234, 2)]);
        assert_eq!(SyncStats::get(&b.stats.received_entries), 1);
    }

    fn one_message(a: &mut Side, t: Instant) -> Vec<u8> {
        a.ch.changes.push(rec(1, 0)).unwrap();
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        // The entries (a first turn also asks for a resync and says hello).
        out.into_iter()
            .map(|o| o.data)
            .find(|d| d[5] == Kind::Entries as u8)
            .unwrap()
    }

    #[test]
    fn forged_replayed_truncated_and_stranger_messages_are_refused_and_counted() {
        let t = Instant::now();
        let (mut a, mut b) = begun(t);
        let msg = one_message(&mut a, t);
        let mut sink = Vec::new();
        let from = SocketAddrV4::new(A, 40000);
        // Forged: any byte changed after signing.
        for at in [9, 20, wire::HEADER_LEN + 5, msg.len() - 1] {
            let mut m = msg.clone();
            m[at] ^= 1;
            b.e.on_datagram(t, from, &m, &mut sink);
        }
        // Signed with another key.
        let mut stranger = side(A, B, b"another secret, not the directors", t);
        let other = one_message(&mut stranger, t);
        b.e.on_datagram(t, from, &other, &mut sink);
        assert_eq!(b.stats.rejected(Reject::Authentication), 5);
        // Truncated.
        b.e.on_datagram(t, from, &msg[..msg.len() - 3], &mut sink);
        b.e.on_datagram(t, from, &msg[..10], &mut sink);
        assert_eq!(b.stats.rejected(Reject::Malformed), 2);
        // From an address that is not a peer.
        b.e.on_datagram(
            t,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 1),
            &msg,
            &mut sink,
        );
        assert_eq!(b.stats.rejected(Reject::UnknownPeer), 1);
        assert!(b.ch.inbound.is_empty(), "nothing refused was installed");
        // The real one, then the same again.
        b.e.on_datagram(t, from, &msg, &mut sink);
        assert_eq!(b.ch.inbound.len(), 1);
        b.e.on_datagram(t, from, &msg, &mut sink);
        assert_eq!(b.stats.rejected(Reject::Replay), 1);
        assert_eq!(b.ch.inbound.len(), 1);
    }

    #[test]
    fn entries_for_services_or_servers_this_director_lacks_are_refused() {
        let t = Instant::now();
        let (mut a, mut b) = begun(t);
        // A real server id that A's snapshot has, but B's service does not list (B's
        // snapshot is the same: give A a record whose real server is unknown to B by
        // sending an entry built by hand).
        let mut builder = Builder::new(Kind::Entries, false);
        let e = translate::entry(&a.e.snapshot.load(), &rec(7, 1)).unwrap();
        builder.push(&wire::Entry { vport: 81, ..e });
        builder.push(&wire::Entry {
            raddr: Ipv4Addr::new(10, 0, 0, 99).into(),
            ..e
        });
        let msg = a.e.seal(builder, B);
        b.e.on_datagram(t, SocketAddrV4::new(A, 1), &msg, &mut Vec::new());
        assert_eq!(b.stats.rejected(Reject::UnknownService), 1);
        assert_eq!(b.stats.rejected(Reject::UnknownRealServer), 1);
        assert!(b.ch.inbound.is_empty());
    }

    #[test]
    fn a_resync_walks_the_peers_table_and_makes_the_asker_ready() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        let mut b = side(B, A, KEY, t);
        let mut oa = Vec::new();
        a.e.on_turn(t, &mut oa);
        // B starts: asks A.
        let mut ob = Vec::new();
        b.e.on_turn(t, &mut ob);
        assert!(!b.e.ready());
        deliver(&mut ob, B, &mut a, t);
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        assert_eq!(a.ch.walk_asked(), 1, "A's worker is asked for a walk");
        // A's worker walks 500 entries into its bulk queue, and is done.
        for i in 0..500 {
            a.ch.bulk.push(rec(1000 + i, u32::from(i % 3))).unwrap();
        }
        a.ch.finish_walk(1);
        // Paced: 100000 entries/s, at most 10 ms' worth a turn.
        let mut turns = 0;
        let mut t2 = t;
        while b.stats.resync_completed.load(Relaxed) == 0 {
            t2 += Duration::from_millis(1);
            a.e.on_turn(t2, &mut out);
            out.retain(|o| *o.to.ip() == B);
            deliver(&mut out, A, &mut b, t2);
            turns += 1;
            assert!(turns < 100);
        }
        assert!(
            turns >= 4,
            "500 entries at 100 a millisecond: {turns} turns"
        );
        assert!(b.e.ready());
        assert_eq!(b.ch.inbound.len(), 500);
        assert_eq!(SyncStats::get(&a.stats.resync_served_entries), 500);
    }

    /// A peer silent for more than 3 s and heard again may have carried connections
    /// meanwhile: it is asked for its table, and until it answers this director is not
    /// ready.
    #[test]
    fn a_peer_heard_again_after_silence_is_asked_for_its_table() {
        let t = Instant::now();
        let (mut a, mut b) = begun(t);
        let mut out = Vec::new();
        let later = t + Duration::from_secs(6);
        a.e.on_turn(t + Duration::from_secs(4), &mut out);
        a.e.on_turn(later, &mut out);
        assert!(a.e.ready());
        out.clear();
        // B says hello again.
        let mut ob = Vec::new();
        b.e.on_turn(later, &mut ob);
        ob.retain(|o| o.data[5] == Kind::Hello as u8);
        assert_eq!(ob.len(), 1);
        let asked = SyncStats::get(&a.stats.resync_requested);
        deliver(&mut ob, B, &mut a, later);
        assert_eq!(SyncStats::get(&a.stats.resync_requested), asked + 1);
        assert!(!a.e.ready(), "waiting for B's table");
        assert_eq!(ob.len(), 1, "a resync request to B");
        assert_eq!(ob[0].data[5], Kind::ResyncRequest as u8);
    }

    /// A resync that outlasts `resync_timeout`: the director was made ready at the
    /// timeout, and the resync's end is still counted, with its whole duration.
    #[test]
    fn a_resync_finishing_after_its_timeout_is_still_counted() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        let mut b = side(B, A, KEY, t);
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        let mut ob = Vec::new();
        b.e.on_turn(t, &mut ob);
        deliver(&mut ob, B, &mut a, t);
        // A's walk is slow; its hellos go on, so B never takes it for a peer rejoining.
        for s in 1..=5 {
            let now = t + Duration::from_secs(s);
            out.clear();
            a.e.on_turn(now, &mut out);
            out.retain(|o| *o.to.ip() == B);
            deliver(&mut out, A, &mut b, now);
            b.e.on_turn(now, &mut ob);
        }
        assert!(b.e.ready(), "ready at the timeout");
        let asked = SyncStats::get(&b.stats.resync_requested);
        out.clear();
        let late = t + Duration::from_secs(6);
        a.e.on_turn(late, &mut out);
        for i in 0..50 {
            a.ch.bulk.push(rec(1000 + i, u32::from(i % 3))).unwrap();
        }
        a.ch.finish_walk(1);
        let mut t2 = late;
        while b.stats.resync_completed.load(Relaxed) == 0 {
            t2 += Duration::from_millis(1);
            assert!(t2 < late + Duration::from_secs(1), "never completed");
            a.e.on_turn(t2, &mut out);
            out.retain(|o| *o.to.ip() == B);
            deliver(&mut out, A, &mut b, t2);
        }
        assert_eq!(b.ch.inbound.len(), 50);
        assert!(b.e.ready());
        assert_eq!(
            SyncStats::get(&b.stats.resync_requested),
            asked,
            "not asked anew"
        );
        assert!(SyncStats::get(&b.stats.resync_last_ms) >= 6000);
    }

    #[test]
    fn with_no_peer_to_answer_the_resync_gives_up_after_its_timeout() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        assert!(!a.e.ready());
        a.e.on_turn(t + Duration::from_secs(2), &mut out);
        assert!(!a.e.ready());
        let asked = SyncStats::get(&a.stats.resync_requested);
        assert!(asked >= 2, "asked again: {asked}");
        a.e.on_turn(t + Duration::from_secs(5), &mut out);
        assert!(a.e.ready());
    }

    /// Datagrams captured on the link and sent again unchanged from other addresses
    /// (a multicast group is seen by anyone on it): refused as not the signer's, nothing
    /// answered, no peer added. Sent again from the signer's own address, a replay.
    #[test]
    fn captured_messages_replayed_from_forged_sources_change_nothing() {
        let t = Instant::now();
        let mut a = multicast_side(A, t);
        let mut b = multicast_side(B, t);
        // B joins: its first turn asks for a resync and says hello; A hears it.
        let mut ob = Vec::new();
        b.e.on_turn(t, &mut ob);
        let captured: Vec<Vec<u8>> = ob.iter().map(|o| o.data.clone()).collect();
        let mut out = Vec::new();
        for d in &captured {
            a.e.on_datagram(t, SocketAddrV4::new(B, 8848), d, &mut out);
        }
        a.e.on_turn(t, &mut out);
        let served = SyncStats::get(&a.stats.resync_served);
        let later = t + Duration::from_secs(10);
        out.clear();
        for i in 0..11u8 {
            let forged = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 200 + i), 8848);
            for d in &captured {
                a.e.on_datagram(later, forged, d, &mut out);
            }
        }
        a.e.on_turn(later, &mut out);
        let to_forged: Vec<_> = out.iter().filter(|o| *o.to.ip() != GROUP).collect();
        assert!(
            to_forged.is_empty(),
            "sent to a forged source: {to_forged:?}"
        );
        assert_eq!(a.stats.rejected(Reject::SenderMismatch), 22);
        assert_eq!(a.e.peers.len(), 1, "only B is a peer");
        assert_eq!(SyncStats::get(&a.stats.resync_served), served);
        // From B's own address: the same messages are replays, or stale later on.
        for d in &captured {
            a.e.on_datagram(t, SocketAddrV4::new(B, 8848), d, &mut out);
        }
        assert_eq!(a.stats.rejected(Reject::Replay), 2);
        let much_later = t + MAX_SKEW + Duration::from_secs(1);
        for d in &captured {
            a.e.on_datagram(much_later, SocketAddrV4::new(B, 8848), d, &mut out);
        }
        assert_eq!(a.stats.rejected(Reject::Stale), 2);
        assert!(a.ch.walk_asked() <= 1, "one resync at most was started");
    }

    /// A message kept back (never delivered) and sent later than the clocks' skew
    /// allows is stale, even to a director that has not heard its sender yet.
    #[test]
    fn a_message_held_back_past_the_skew_is_stale() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        let held = one_message(&mut a, t);
        let mut b = side(B, A, KEY, t);
        let late = t + MAX_SKEW + Duration::from_millis(1);
        b.e.on_datagram(late, SocketAddrV4::new(A, 1), &held, &mut Vec::new());
        assert_eq!(b.stats.rejected(Reject::Stale), 1);
        assert!(b.ch.inbound.is_empty());
        // Within the skew it would have been taken.
        let mut b = side(B, A, KEY, t);
        b.e.on_datagram(
            t + MAX_SKEW,
            SocketAddrV4::new(A, 1),
            &held,
            &mut Vec::new(),
        );
        assert_eq!(b.ch.inbound.len(), 1);
    }

    /// A peer asking again and again is served once every `RESYNC_AT_MOST_EVERY`.
    #[test]
    fn resync_requests_are_served_at_most_every_few_seconds() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        let mut b = side(B, A, KEY, t);
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        let mut asks = 0;
        for ms in (0..12_000).step_by(500) {
            let now = t + Duration::from_millis(ms);
            let mut ob = Vec::new();
            b.e.ask(now, &[SocketAddrV4::new(A, 8848)], &mut ob);
            asks += 1;
            deliver(&mut ob, B, &mut a, now);
            out.clear();
            a.e.on_turn(now, &mut out);
            a.ch.finish_walk(a.ch.walk_asked());
            a.e.on_turn(now, &mut out);
        }
        assert_eq!(asks, 24);
        assert_eq!(
            SyncStats::get(&a.stats.resync_served),
            3,
            "at 0, 5 and 10 s"
        );
        assert_eq!(a.stats.rejected(Reject::ResyncTooSoon), 21);
    }

    /// Peers that only the key admits (multicast): at most `MAX_PEERS` at once; a
    /// newcomer takes the place of one gone silent, and one silent for ten minutes is
    /// forgotten.
    #[test]
    fn peers_are_bounded_and_forgotten() {
        let t = Instant::now();
        let mut a = multicast_side(A, t);
        let hello = |from: Ipv4Addr, a: &mut Side, now: Instant| {
            let mut s = multicast_side(from, now);
            let mut o = Vec::new();
            s.e.on_turn(now, &mut o);
            for d in o.iter().filter(|o| o.data[5] == Kind::Hello as u8) {
                a.e.on_datagram(now, SocketAddrV4::new(from, 8848), &d.data, &mut Vec::new());
            }
        };
        for i in 0..MAX_PEERS as u8 {
            hello(Ipv4Addr::new(10, 1, 0, i), &mut a, t);
        }
        assert_eq!(a.e.peers.len(), MAX_PEERS);
        hello(Ipv4Addr::new(10, 2, 0, 1), &mut a, t);
        assert_eq!(a.stats.rejected(Reject::TooManyPeers), 1);
        assert_eq!(a.e.peers.len(), MAX_PEERS);
        // Four seconds on, every one is silent (not live): a newcomer finds a place.
        let later = t + Duration::from_secs(4);
        a.e.on_turn(later, &mut Vec::new());
        hello(Ipv4Addr::new(10, 2, 0, 1), &mut a, later);
        assert_eq!(a.e.peers.len(), MAX_PEERS);
        assert!(a.e.peers.contains_key(&Ipv4Addr::new(10, 2, 0, 1)));
        // Ten minutes of silence: all forgotten, and gone from the published view.
        a.e.on_turn(later + PEER_FORGOTTEN_AFTER, &mut Vec::new());
        assert!(a.e.peers.is_empty());
        assert!(a.stats.peers.load().is_empty());
    }

    /// A unicast message is signed for its recipient: the resync B served to A, sent on
    /// to C from B's own address, is refused there.
    #[test]
    fn a_message_for_another_director_is_refused() {
        let t = Instant::now();
        let (mut a, mut b) = begun(t);
        let c_ip = Ipv4Addr::new(10, 0, 0, 4);
        let mut c = side(c_ip, B, KEY, t);
        let msg = one_message(&mut b, t);
        assert_eq!(
            wire::frame(&msg).unwrap().header.recipient,
            A,
            "signed for A"
        );
        c.e.on_datagram(t, SocketAddrV4::new(B, 8848), &msg, &mut Vec::new());
        assert_eq!(c.stats.rejected(Reject::WrongRecipient), 1);
        assert!(c.ch.inbound.is_empty());
        // A itself takes it.
        a.e.on_datagram(t, SocketAddrV4::new(B, 8848), &msg, &mut Vec::new());
        assert_eq!(a.ch.inbound.len(), 1);
    }

    /// A `ResyncDone` must answer a request of the asker's own boot: one captured before
    /// it restarted (its replay window is new) does not make it ready.
    #[test]
    fn a_resync_done_from_before_a_restart_does_not_make_a_director_ready() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        let mut b = side(B, A, KEY, t);
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        let mut ob = Vec::new();
        b.e.on_turn(t, &mut ob);
        deliver(&mut ob, B, &mut a, t);
        // B hears A's first turn (its hello), so the answer is no first word from A.
        out.retain(|o| o.data[5] == Kind::Hello as u8);
        deliver(&mut out, A, &mut b, t);
        a.ch.finish_walk(1);
        out.clear();
        a.e.on_turn(t, &mut out);
        let done: Vec<Vec<u8>> = out
            .iter()
            .filter(|o| o.data[5] == Kind::ResyncDone as u8)
            .map(|o| o.data.clone())
            .collect();
        assert_eq!(done.len(), 1);
        deliver(&mut out, A, &mut b, t);
        assert!(b.e.ready(), "the real answer ends the wait");
        // B restarts (a newer boot) and waits for its table; the old answer, captured and
        // sent under a sequence number its new window has not seen, does not count.
        let mut b = side(B, A, KEY, t);
        b.e.s.boot += 1;
        let later = t + Duration::from_secs(2);
        b.e.on_turn(later, &mut Vec::new());
        assert!(!b.e.ready());
        let f = wire::frame(&done[0]).unwrap();
        let replay = Builder::new(Kind::ResyncDone, false).body(f.body);
        let captured = a.e.seal(replay, B);
        b.e.on_datagram(
            later,
            SocketAddrV4::new(A, 8848),
            &captured,
            &mut Vec::new(),
        );
        assert_eq!(b.stats.rejected(Reject::Unasked), 1);
        assert!(!b.e.ready(), "still waiting for an answer of its own boot");
    }

    /// The thread gives the engine the system's clock each turn: a clock stepped by NTP
    /// after start is followed, not frozen at start.
    #[test]
    fn a_stepped_wall_clock_is_followed() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        a.e.set_clock(t, 5_000_000);
        let msg = one_message(&mut a, t);
        assert_eq!(wire::frame(&msg).unwrap().header.sent, 5_000_000);
        let mut b = side(B, A, KEY, t);
        b.e.set_clock(t, 5_000_000 + 30_000);
        b.e.on_datagram(t, SocketAddrV4::new(A, 1), &msg, &mut Vec::new());
        assert_eq!(b.ch.inbound.len(), 1, "within the skew");
    }

    /// The sync fuzzer's seed corpus (`fuzz/corpus/sync/`, checked in): real messages
    /// as they arrive (mode byte 0), and bodies to be signed (mode byte 1). Rewritten by
    /// `XVS_BLESS=1`, otherwise only checked to be there.
    #[test]
    fn fuzz_seeds() {
        let t = Instant::now();
        let mut a = side(A, B, KEY, t);
        a.ch.changes.push(rec(1, 0)).unwrap();
        a.ch.changes.push(rec(2, 1)).unwrap();
        let mut out = Vec::new();
        a.e.on_turn(t, &mut out);
        let mut seeds: Vec<Vec<u8>> = out.iter().map(|o| [&[0u8][..], &o.data].concat()).collect();
        let snap = a.e.snapshot.load();
        let mut b = Builder::new(Kind::Entries, false);
        for r in [rec(3, 2), rec(4, 0)] {
            b.push(&translate::entry(&snap, &r).unwrap());
        }
        let stamp = wire::Stamp {
            boot: 1,
            seq: 1,
            sender: A,
            sent: 0,
            recipient: B,
        };
        let msg = b.seal(stamp, |_| [0; wire::TAG_LEN]);
        let body = &msg[wire::HEADER_LEN..msg.len() - wire::TAG_LEN];
        seeds.push([&[1u8, 0, 0, 2][..], body].concat());
        seeds.push(vec![1, 3, 0, 0, 0, 0, 0, 9]);
        seeds.push(vec![1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        let root =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/sync"));
        for (i, seed) in seeds.iter().enumerate() {
            let path = root.join(format!("seed{i:02}"));
            if std::env::var_os("XVS_BLESS").is_some() {
                std::fs::create_dir_all(root).unwrap();
                std::fs::write(&path, seed).unwrap();
            } else {
                assert!(
                    path.exists(),
                    "{} missing: rerun with XVS_BLESS=1",
                    path.display()
                );
            }
        }
    }
}
