//! The sync message format: a fixed header, a body, and an HMAC-SHA256 over both.
//! Everything is big-endian. Nothing here trusts a length it has not checked.
//!
//! ```text
//!  0  magic "XVSY"            4  version (2)   5  kind   6  flags (bit 0: bulk)  7  0
//!  8  boot: the sender's start, ns since the epoch (a restart is a newer boot)
//! 16  seq: per boot, from 1, never reused
//! 24  count (entries)   26  body length   28  sender: its IPv4 address
//! 32  sent: ms since the epoch
//! 40  recipient: the peer's IPv4 address, or the multicast group
//! 44  body …            then 32 bytes of HMAC-SHA256(key, header ‖ body)
//! ```
//!
//! The sender, the recipient and the time are signed, so a captured message cannot be
//! sent again from another address (the receiver wants the sender to be the datagram's
//! source), to another director (it wants itself or its group as the recipient), nor
//! later (it wants the time within `MAX_SKEW` of its own clock). A `ResyncDone` names the
//! request it answers (the asker's boot and the request's sequence number).
//!
//! An entry is 16 bytes, then its three addresses (client, virtual, real server), 4
//! bytes each for IPv4 or 16 for IPv6, and a FullNAT connection's local address:
//!
//! ```text
//!  0 flags (bit 0: IPv6, bit 1: template, bit 2: FullNAT)  1 protocol  2 TCP state  3 0
//!  4 seconds left   8 client port  10 virtual port  12 real server port
//! 14 local port (FullNAT; else 0)
//! ```
//!
//! The FullNAT bit came after version 2's first release without a new version: only a
//! director with a FullNAT virtual server sends it, and one without FullNAT (an older
//! build) has no such service to take it over for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvs_dataplane::flow::tcp_state::STATE_COUNT;

pub const MAGIC: [u8; 4] = *b"XVSY";
pub const VERSION: u8 = 2;
pub const HEADER_LEN: usize = 44;
pub const TAG_LEN: usize = 32;
/// A message fits one 1500-byte frame with its IPv4 and UDP headers.
pub const MAX_MESSAGE: usize = 1472;
pub const MAX_BODY: usize = MAX_MESSAGE - HEADER_LEN - TAG_LEN;
const ENTRY_FIXED: usize = 16;
/// The shortest and longest entry (IPv4's and IPv6's addresses).
const ENTRY_MIN: usize = ENTRY_FIXED + 12;
const ENTRY_MAX: usize = ENTRY_FIXED + 64;
/// Protocol numbers an entry may carry (a template's has 0x80 set as well).
const TCP: u8 = 6;
const UDP: u8 = 17;
/// The longest timeout an entry may claim: the configuration's largest.
pub const MAX_TIMEOUT: u32 = 7 * 86400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Connections and templates (`count` of them).
    Entries = 1,
    /// "Send me your whole table."
    ResyncRequest = 2,
    /// The end of a resync; the body is the number of entries it sent (u64), then the
    /// request it answers: the asker's boot and the request's sequence number (u64 each).
    ResyncDone = 3,
    /// Once a second: "I am here"; the body is the sender's connection count (u32).
    Hello = 4,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Entries,
            2 => Kind::ResyncRequest,
            3 => Kind::ResyncDone,
            4 => Kind::Hello,
            _ => return None,
        })
    }

    /// Whether a body of `len` bytes with `count` entries can be of this kind: checked
    /// before the tag is computed, so that nonsense costs no HMAC.
    fn fits(self, len: usize, count: u16) -> bool {
        let count = usize::from(count);
        match self {
            Kind::Entries => count > 0 && (count * ENTRY_MIN..=count * ENTRY_MAX).contains(&len),
            Kind::ResyncRequest => len == 0 && count == 0,
            Kind::ResyncDone => len == 24 && count == 0,
            Kind::Hello => len == 4 && count == 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// Entries that answer a resync request.
    pub bulk: bool,
    pub boot: u64,
    pub seq: u64,
    pub count: u16,
    /// Who says it sent this (checked against the datagram's source).
    pub sender: Ipv4Addr,
    /// When, in ms since the epoch by the sender's clock.
    pub sent: u64,
    /// Who it is for: a director's address, or the multicast group.
    pub recipient: Ipv4Addr,
}

/// One connection or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub template: bool,
    /// 6 or 17 (a template's without its 0x80).
    pub proto: u8,
    pub state: u8,
    pub timeout: u32,
    pub client: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub raddr: IpAddr,
    pub rport: u16,
    /// A FullNAT connection's local address and port.
    pub local: Option<(IpAddr, u16)>,
}

impl Entry {
    /// Its size in a message.
    pub fn encoded_len(&self) -> usize {
        let addrs = 3 + usize::from(self.local.is_some());
        ENTRY_FIXED + addrs * if self.client.is_ipv6() { 16 } else { 4 }
    }
}

xvs_dataplane::labelled_enum! {
    /// Why a message was refused: the label of `xvs_sync_rejected_total`.
    pub enum Reject {
        Malformed => "malformed": "Not a sync message of this version, or lengths that do not add up.",
        Authentication => "authentication": "The HMAC does not match: another key, or forged.",
        Replay => "replay": "A sequence number already seen, or an older boot.",
        SenderMismatch => "sender_mismatch": "Signed by a sender other than the datagram's source: a capture sent again.",
        Stale => "stale": "Sent longer ago (or later) than the clocks' allowed skew: a capture sent again, or a peer whose clock is off.",
        TooManyPeers => "too_many_peers": "From a new peer while `MAX_PEERS` are known.",
        ResyncTooSoon => "resync_too_soon": "A resync asked again sooner than a peer may (the answer is not started).",
        WrongRecipient => "wrong_recipient": "Signed for another director (a capture of a unicast message sent on).",
        Unasked => "unasked": "A `ResyncDone` answering a request of another boot of this director's.",
        UnknownPeer => "unknown_peer": "Not from one of the configured `peers`.",
        UnknownService => "unknown_service": "An entry for a virtual service this director does not have.",
        UnknownRealServer => "unknown_real_server": "An entry for a real server the service does not have here.",
        QueueFull => "queue_full": "The workers' queues were full.",
        FullNat => "fullnat": "A FullNAT connection without its local address and port, or with a local address this director does not have (or a local pair on another kind of service).",
    }
}

/// A message being filled; `seal` signs it.
#[derive(Clone)]
pub struct Builder {
    buf: Vec<u8>,
    count: u16,
}

impl Builder {
    pub fn new(kind: Kind, bulk: bool) -> Builder {
        let mut buf = Vec::with_capacity(MAX_MESSAGE);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&[VERSION, kind as u8, u8::from(bulk), 0]);
        buf.resize(HEADER_LEN, 0);
        Builder { buf, count: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.buf.len() == HEADER_LEN
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    /// Adds `e` if it fits; false when the message is full.
    pub fn push(&mut self, e: &Entry) -> bool {
        if self.buf.len() - HEADER_LEN + e.encoded_len() > MAX_BODY {
            return false;
        }
        let v6 = e.client.is_ipv6();
        let flags = u8::from(v6) | (u8::from(e.template) << 1) | (u8::from(e.local.is_some()) << 2);
        self.buf.extend_from_slice(&[flags, e.proto, e.state, 0]);
        self.buf.extend_from_slice(&e.timeout.to_be_bytes());
        let lport = e.local.map_or(0, |(_, p)| p);
        for p in [e.cport, e.vport, e.rport, lport] {
            self.buf.extend_from_slice(&p.to_be_bytes());
        }
        let local = e.local.map(|(a, _)| a);
        for a in [e.client, e.vaddr, e.raddr].into_iter().chain(local) {
            match a {
                IpAddr::V4(a) if !v6 => self.buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) if v6 => self.buf.extend_from_slice(&a.octets()),
                // Of the other family than the client: an IPv4 address mapped, which
                // the receiver refuses (`decode` keeps families apart).
                IpAddr::V4(a) => self.buf.extend_from_slice(&a.to_ipv6_mapped().octets()),
                IpAddr::V6(_) => self.buf.extend_from_slice(&[0; 4]),
            }
        }
        self.count += 1;
        true
    }

    /// A body of raw bytes (the control kinds').
    pub fn body(mut self, bytes: &[u8]) -> Builder {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// The finished message: header fields written, then the tag `sign` computes over
    /// everything before it.
    pub fn seal(mut self, s: Stamp, sign: impl FnOnce(&[u8]) -> [u8; TAG_LEN]) -> Vec<u8> {
        let body = (self.buf.len() - HEADER_LEN) as u16;
        self.buf[8..16].copy_from_slice(&s.boot.to_be_bytes());
        self.buf[16..24].copy_from_slice(&s.seq.to_be_bytes());
        self.buf[24..26].copy_from_slice(&self.count.to_be_bytes());
        self.buf[26..28].copy_from_slice(&body.to_be_bytes());
        self.buf[28..32].copy_from_slice(&s.sender.octets());
        self.buf[32..40].copy_from_slice(&s.sent.to_be_bytes());
        self.buf[40..44].copy_from_slice(&s.recipient.octets());
        let tag = sign(&self.buf);
        self.buf.extend_from_slice(&tag);
        self.buf
    }
}

/// Who sends a message, and when: the header fields `seal` writes besides the body's.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub boot: u64,
    pub seq: u64,
    pub sender: Ipv4Addr,
    /// ms since the epoch.
    pub sent: u64,
    pub recipient: Ipv4Addr,
}

/// A datagram split into its header, the bytes the tag covers, its body and its tag;
/// only the framing is checked (the caller checks the tag, then reads the body).
pub struct Framed<'a> {
    pub header: Header,
    pub signed: &'a [u8],
    pub body: &'a [u8],
    pub tag: &'a [u8],
}

pub fn frame(d: &[u8]) -> Result<Framed<'_>, Reject> {
    if d.len() < HEADER_LEN + TAG_LEN || d[0..4] != MAGIC || d[4] != VERSION {
        return Err(Reject::Malformed);
    }
    let kind = Kind::from_u8(d[5]).ok_or(Reject::Malformed)?;
    if d[6] & !1 != 0 || d[7] != 0 {
        return Err(Reject::Malformed);
    }
    let be64 = |r: std::ops::Range<usize>| u64::from_be_bytes(d[r].try_into().unwrap());
    let count = u16::from_be_bytes([d[24], d[25]]);
    let body_len = usize::from(u16::from_be_bytes([d[26], d[27]]));
    if d.len() != HEADER_LEN + body_len + TAG_LEN || !kind.fits(body_len, count) {
        return Err(Reject::Malformed);
    }
    let end = HEADER_LEN + body_len;
    Ok(Framed {
        header: Header {
            kind,
            bulk: d[6] & 1 != 0,
            boot: be64(8..16),
            seq: be64(16..24),
            count,
            sender: Ipv4Addr::new(d[28], d[29], d[30], d[31]),
            sent: be64(32..40),
            recipient: Ipv4Addr::new(d[40], d[41], d[42], d[43]),
        },
        signed: &d[..end],
        body: &d[HEADER_LEN..end],
        tag: &d[end..],
    })
}

/// The entries of an authenticated `Entries` body: exactly `count` of them, filling it.
pub fn entries(body: &[u8], count: u16) -> Result<Vec<Entry>, Reject> {
    let mut out = Vec::with_capacity(usize::from(count));
    let mut rest = body;
    for _ in 0..count {
        let (e, n) = entry(rest)?;
        out.push(e);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        return Err(Reject::Malformed);
    }
    Ok(out)
}

fn entry(b: &[u8]) -> Result<(Entry, usize), Reject> {
    if b.len() < ENTRY_FIXED {
        return Err(Reject::Malformed);
    }
    let flags = b[0];
    let fullnat = flags & 4 != 0;
    if flags & !7 != 0 || b[3] != 0 || (!fullnat && b[14..16] != [0, 0]) {
        return Err(Reject::Malformed);
    }
    let v6 = flags & 1 != 0;
    let template = flags & 2 != 0;
    let (proto, state) = (b[1], b[2]);
    let timeout = u32::from_be_bytes(b[4..8].try_into().unwrap());
    let port = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let (cport, vport, rport, lport) = (port(8), port(10), port(12), port(14));
    let alen = if v6 { 16 } else { 4 };
    let n = ENTRY_FIXED + (3 + usize::from(fullnat)) * alen;
    if b.len() < n {
        return Err(Reject::Malformed);
    }
    let addr = |i: usize| -> IpAddr {
        let s = &b[ENTRY_FIXED + i * alen..ENTRY_FIXED + (i + 1) * alen];
        if v6 {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(s).unwrap()))
        } else {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(s).unwrap()))
        }
    };
    let e = Entry {
        template,
        proto,
        state,
        timeout,
        client: addr(0),
        cport,
        vaddr: addr(1),
        vport,
        raddr: addr(2),
        rport,
        local: fullnat.then(|| (addr(3), lport)),
    };
    let sane = matches!(proto, TCP | UDP)
        && (!fullnat || (!template && lport != 0))
        && usize::from(state) < STATE_COUNT
        && (proto == TCP || state == 0)
        && (!template || (state == 0 && cport == 0))
        && (template || cport != 0)
        && (1..=MAX_TIMEOUT).contains(&timeout);
    if !sane {
        return Err(Reject::Malformed);
    }
    Ok((e, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_labels_are_unique_snake_case_and_indexed_once() {
        xvs_dataplane::labelled::check_labels(Reject::ALL, Reject::label, Reject::index);
    }

    fn sign(_: &[u8]) -> [u8; TAG_LEN] {
        [7; TAG_LEN]
    }

    fn st(boot: u64, seq: u64) -> Stamp {
        Stamp {
            boot,
            seq,
            sender: Ipv4Addr::new(10, 0, 0, 2),
            sent: 1_700_000_000_000,
            recipient: Ipv4Addr::new(10, 0, 0, 3),
        }
    }

    pub(crate) fn conn(i: u16) -> Entry {
        Entry {
            template: false,
            proto: TCP,
            state: 1,
            timeout: 900,
            client: Ipv4Addr::new(10, 0, 0, 1).into(),
            cport: 1000 + i,
            vaddr: Ipv4Addr::new(10, 0, 0, 100).into(),
            vport: 80,
            raddr: Ipv4Addr::new(10, 0, 0, 11).into(),
            rport: 80,
            local: None,
        }
    }

    fn conn6() -> Entry {
        Entry {
            client: "2001:db8::1".parse().unwrap(),
            vaddr: "2001:db8::100".parse().unwrap(),
            raddr: "2001:db8::11".parse().unwrap(),
            ..conn(0)
        }
    }

    #[test]
    fn entries_round_trip_both_families() {
        let mut b = Builder::new(Kind::Entries, true);
        let tmpl = Entry {
            template: true,
            state: 0,
            cport: 0,
            ..conn(0)
        };
        let want = vec![conn(1), conn6(), tmpl];
        for e in &want {
            assert!(b.push(e));
        }
        let msg = b.seal(st(5, 9), sign);
        let f = frame(&msg).unwrap();
        assert_eq!(
            f.header,
            Header {
                kind: Kind::Entries,
                bulk: true,
                boot: 5,
                seq: 9,
                count: 3,
                sender: Ipv4Addr::new(10, 0, 0, 2),
                sent: 1_700_000_000_000,
                recipient: Ipv4Addr::new(10, 0, 0, 3),
            }
        );
        assert_eq!(f.tag, &[7; TAG_LEN]);
        assert_eq!(entries(f.body, f.header.count).unwrap(), want);
    }

    /// FullNAT connections carry their local pair; a template, a port 0 or a family
    /// mismatch with it is refused, and a pair-less entry keeps bytes 14-15 at 0.
    #[test]
    fn fullnat_entries_carry_their_local_pair() {
        let fnat = Entry {
            local: Some((Ipv4Addr::new(192, 0, 2, 201).into(), 5001)),
            ..conn(2)
        };
        let fnat6 = Entry {
            local: Some(("2001:db8::201".parse().unwrap(), 5002)),
            ..conn6()
        };
        let mut b = Builder::new(Kind::Entries, false);
        for e in [&fnat, &fnat6, &conn(3)] {
            assert!(b.push(e));
        }
        let msg = b.seal(st(1, 1), sign);
        let f = frame(&msg).unwrap();
        assert_eq!(f.body.len(), 16 + 16 + 16 + 64 + 28);
        assert_eq!(entries(f.body, 3).unwrap(), vec![fnat, fnat6, conn(3)]);
        let one = |e: &Entry| {
            let mut b = Builder::new(Kind::Entries, false);
            assert!(b.push(e));
            let m = b.seal(st(1, 1), sign);
            frame(&m).unwrap().body.to_vec()
        };
        let mut port0 = one(&fnat);
        port0[14..16].copy_from_slice(&[0, 0]);
        assert_eq!(entries(&port0, 1), Err(Reject::Malformed));
        let mut tmpl = one(&fnat);
        tmpl[0] |= 2;
        tmpl[8..10].copy_from_slice(&[0, 0]);
        tmpl[2] = 0;
        assert_eq!(
            entries(&tmpl, 1),
            Err(Reject::Malformed),
            "a template has no pair"
        );
        let mut stray = one(&conn(3));
        stray[14] = 1;
        assert_eq!(
            entries(&stray, 1),
            Err(Reject::Malformed),
            "a port without the bit"
        );
        let mut short = one(&fnat);
        short.truncate(28);
        assert_eq!(entries(&short, 1), Err(Reject::Malformed));
    }

    #[test]
    fn a_message_fills_up_to_one_frame() {
        let mut b = Builder::new(Kind::Entries, false);
        let mut n = 0;
        while b.push(&conn(n)) {
            n += 1;
        }
        assert_eq!(n as usize, MAX_BODY / 28);
        assert!(b.seal(st(1, 1), sign).len() <= MAX_MESSAGE);
    }

    #[test]
    fn every_truncation_and_extension_is_malformed() {
        let mut b = Builder::new(Kind::Entries, false);
        b.push(&conn(1));
        b.push(&conn6());
        let msg = b.seal(st(1, 1), sign);
        for n in 0..msg.len() {
            assert!(frame(&msg[..n]).is_err(), "truncated to {n}");
        }
        let mut long = msg.clone();
        long.push(0);
        assert!(frame(&long).is_err());
        // A count that does not match the body.
        let mut bad = msg.clone();
        bad[25] = 3;
        let f = frame(&bad).unwrap();
        assert_eq!(entries(f.body, f.header.count), Err(Reject::Malformed));
        // One entry cannot fill 92 bytes: the framing knows before any tag is computed.
        bad[25] = 1;
        assert_eq!(frame(&bad).err(), Some(Reject::Malformed));
    }

    #[test]
    fn nonsense_entries_are_malformed() {
        for bad in [
            Entry {
                proto: 1,
                ..conn(0)
            },
            Entry {
                state: 40,
                ..conn(0)
            },
            Entry {
                timeout: 0,
                ..conn(0)
            },
            Entry {
                timeout: MAX_TIMEOUT + 1,
                ..conn(0)
            },
            Entry {
                cport: 0,
                ..conn(0)
            },
            Entry {
                proto: UDP,
                state: 1,
                ..conn(0)
            },
            Entry {
                template: true,
                ..conn(0)
            },
        ] {
            let mut b = Builder::new(Kind::Entries, false);
            b.push(&bad);
            let msg = b.seal(st(1, 1), sign);
            let f = frame(&msg).unwrap();
            assert_eq!(entries(f.body, 1), Err(Reject::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn other_magic_version_kind_or_flags_are_malformed() {
        let msg = Builder::new(Kind::Hello, false)
            .body(&[0, 0, 0, 1])
            .seal(st(1, 1), sign);
        assert!(frame(&msg).is_ok());
        for (at, v) in [(0, b'Y'), (4, 1), (5, 9), (6, 2), (7, 1), (25, 1)] {
            let mut m = msg.clone();
            m[at] = v;
            assert_eq!(frame(&m).err(), Some(Reject::Malformed), "byte {at}");
        }
    }

    /// A body whose length cannot be of its kind is refused by the framing, before
    /// anything computes a tag over it.
    #[test]
    fn bodies_of_the_wrong_length_for_their_kind_are_malformed() {
        let bad = [
            (Kind::Hello, vec![0; 5], 0),
            (Kind::ResyncRequest, vec![0; 1], 0),
            (Kind::ResyncDone, vec![0; 8], 0),
            (Kind::Entries, vec![0; 27], 1),
            (Kind::Entries, vec![0; 81], 1),
            (Kind::Entries, vec![0; 56], 0),
        ];
        for (kind, body, count) in bad {
            let mut m = Builder::new(kind, false).body(&body).seal(st(1, 1), sign);
            m[24..26].copy_from_slice(&u16::to_be_bytes(count));
            assert_eq!(frame(&m).err(), Some(Reject::Malformed), "{kind:?}");
        }
    }
}
