//! VRRP advertisements: VRRPv2 (RFC 3768) and VRRPv3 for IPv4 and IPv6 (RFC 5798),
//! parsed with every check the RFCs require of a receiver, and built for sending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvs_dataplane::wire::checksum;

pub const PROTO_VRRP: u8 = 112;
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// RFC 5798 5.1.2.2: VRRP's IPv6 link-local multicast group.
pub const MULTICAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
const TYPE_ADVERTISEMENT: u8 = 1;
const AUTH_NONE: u8 = 0;
const AUTH_SIMPLE: u8 = 1;
const AUTH_DATA_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

xvs_dataplane::labelled_enum! {
    /// Why an advertisement was rejected: also the `reason` label of the rejected-adverts
    /// counter. None of them changes the state of the virtual router.
    pub enum Reject {
        Truncated => "truncated": "Shorter than its header or than its address count says.",
        Ttl => "ttl": "RFC: the IP TTL must be 255 (the sender is on the link).",
        Version => "version": "Neither VRRPv2 nor v3, or not the instance's.",
        Type => "type": "Not an ADVERTISEMENT.",
        Checksum => "checksum": "The VRRP checksum is wrong.",
        Vrid => "vrid": "Another virtual router's advert on the same link.",
        Auth => "auth": "v2: authentication type or password differ.",
        Interval => "interval": "v2: advertisement interval differs from ours (RFC 3768 7.1).",
        UnknownSource => "unknown_source": "From a source not among `unicast_peers` (`check_unicast_src`).",
    }
}

/// A validated advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds (v2's whole seconds converted).
    pub interval_cs: u16,
    /// All IPv4 (IPv4 adverts) or all IPv6.
    pub addresses: Vec<IpAddr>,
}

/// What a receiver checks an advertisement against.
#[derive(Clone, Debug)]
pub struct Expect<'a> {
    pub version: Version,
    pub vrid: u8,
    /// v2 only: our interval in centiseconds (a multiple of 100).
    pub interval_cs: u16,
    /// v2 simple password (at most 8 bytes), or none.
    pub password: Option<&'a [u8]>,
    /// The only sources taken (`check_unicast_src` with `unicast_peers`); None: any.
    pub sources: Option<&'a [IpAddr]>,
}

impl Expect<'_> {
    fn source(&self, src: IpAddr) -> Result<(), Reject> {
        match self.sources {
            Some(s) if !s.contains(&src) => Err(Reject::UnknownSource),
            _ => Ok(()),
        }
    }
}

/// Checks a received IPv4 datagram (header included, as a raw socket gives it).
pub fn parse(datagram: &[u8], expect: &Expect<'_>) -> Result<(IpAddr, Advert), Reject> {
    if datagram.len() < 20 {
        return Err(Reject::Truncated);
    }
    let ihl = usize::from(datagram[0] & 0x0f) * 4;
    if ihl < 20 || datagram.len() < ihl + 8 {
        return Err(Reject::Truncated);
    }
    if datagram[8] != 255 {
        return Err(Reject::Ttl);
    }
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let total =
        usize::from(u16::from_be_bytes([datagram[2], datagram[3]])).clamp(ihl, datagram.len());
    let advert = message(
        &datagram[ihl..total],
        IpAddr::V4(src),
        IpAddr::V4(dst),
        expect,
    )?;
    expect.source(IpAddr::V4(src))?;
    Ok((IpAddr::V4(src), advert))
}

/// Checks a received IPv6 VRRP message: a raw IPv6 socket gives the message alone, and
/// its source, destination and hop limit beside it.
pub fn parse_v6(
    msg: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    expect: &Expect<'_>,
) -> Result<(IpAddr, Advert), Reject> {
    if hop_limit != 255 {
        return Err(Reject::Ttl);
    }
    let advert = message(msg, IpAddr::V6(src), IpAddr::V6(dst), expect)?;
    expect.source(IpAddr::V6(src))?;
    Ok((IpAddr::V6(src), advert))
}

/// The checksum a VRRP message carries: v2's over the message, v3's with the pseudo-
/// header of the IP family it travels in.
fn sum(version: Version, msg: &[u8], src: IpAddr, dst: IpAddr) -> u32 {
    match (version, src, dst) {
        (Version::V2, _, _) => checksum::sum(0, msg),
        (Version::V3, IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = checksum::pseudo_header(s.octets(), d.octets(), PROTO_VRRP, msg.len() as u16);
            checksum::sum(acc, msg)
        }
        (Version::V3, IpAddr::V6(s), IpAddr::V6(d)) => {
            let acc =
                checksum::pseudo_header_v6(s.octets(), d.octets(), PROTO_VRRP, msg.len() as u32);
            checksum::sum(acc, msg)
        }
        // Mixed families: no pseudo-header fits, so no checksum can be right.
        _ => 0,
    }
}

/// The checks on the VRRP message itself, in `src`'s family.
fn message(v: &[u8], src: IpAddr, dst: IpAddr, expect: &Expect<'_>) -> Result<Advert, Reject> {
    // The IPv4 total length may claim less than the header holds (found by fuzzing).
    if v.len() < 8 {
        return Err(Reject::Truncated);
    }
    let version = match v[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        _ => return Err(Reject::Version),
    };
    if version != expect.version || (src.is_ipv6() && version != Version::V3) {
        return Err(Reject::Version);
    }
    if v[0] & 0x0f != TYPE_ADVERTISEMENT {
        return Err(Reject::Type);
    }
    let width = if src.is_ipv4() { 4 } else { 16 };
    let count = usize::from(v[3]);
    let addrs_end = 8 + width * count;
    let len = match version {
        Version::V2 => addrs_end + AUTH_DATA_LEN,
        Version::V3 => addrs_end,
    };
    if v.len() < len {
        return Err(Reject::Truncated);
    }
    let msg = &v[..len];
    if checksum::fold(sum(version, msg, src, dst)) != 0xffff {
        return Err(Reject::Checksum);
    }
    if v[1] != expect.vrid {
        return Err(Reject::Vrid);
    }
    let interval_cs = match version {
        Version::V2 => {
            let (auth, want) = (
                v[4],
                if expect.password.is_some() {
                    AUTH_SIMPLE
                } else {
                    AUTH_NONE
                },
            );
            if auth != want {
                return Err(Reject::Auth);
            }
            if let Some(pw) = expect.password {
                if msg[addrs_end..] != padded_password(pw) {
                    return Err(Reject::Auth);
                }
            }
            let cs = u16::from(v[5]) * 100;
            if cs != expect.interval_cs {
                return Err(Reject::Interval);
            }
            cs
        }
        Version::V3 => u16::from_be_bytes([v[4], v[5]]) & 0x0fff,
    };
    let addresses = msg[8..addrs_end]
        .chunks_exact(width)
        .map(|a| match <[u8; 4]>::try_from(a) {
            Ok(v4) => IpAddr::from(v4),
            Err(_) => IpAddr::from(<[u8; 16]>::try_from(a).unwrap_or([0; 16])),
        })
        .collect();
    Ok(Advert {
        vrid: v[1],
        priority: v[2],
        interval_cs,
        addresses,
    })
}

fn padded_password(pw: &[u8]) -> [u8; AUTH_DATA_LEN] {
    let mut b = [0u8; AUTH_DATA_LEN];
    let n = pw.len().min(AUTH_DATA_LEN);
    b[..n].copy_from_slice(&pw[..n]);
    b
}

/// Builds the VRRP message (the IP header is the kernel's). v3's checksum needs the IP
/// addresses it will travel between, of the adverts' family.
pub fn build(
    version: Version,
    advert: &Advert,
    password: Option<&[u8]>,
    src: IpAddr,
    dst: IpAddr,
) -> Vec<u8> {
    let mut m = vec![0u8; 8];
    m[1] = advert.vrid;
    m[2] = advert.priority;
    m[3] = advert.addresses.len() as u8;
    for a in &advert.addresses {
        match a {
            IpAddr::V4(v4) => m.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => m.extend_from_slice(&v6.octets()),
        }
    }
    match version {
        Version::V2 => {
            m[0] = 0x20 | TYPE_ADVERTISEMENT;
            m[4] = if password.is_some() {
                AUTH_SIMPLE
            } else {
                AUTH_NONE
            };
            m[5] = (advert.interval_cs / 100).clamp(1, 255) as u8;
            m.extend_from_slice(&padded_password(password.unwrap_or(&[])));
        }
        Version::V3 => {
            m[0] = 0x30 | TYPE_ADVERTISEMENT;
            m[4..6].copy_from_slice(&(advert.interval_cs & 0x0fff).to_be_bytes());
        }
    }
    let c = !checksum::fold(sum(version, &m, src, dst));
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_labels_are_unique_snake_case_and_indexed_once() {
        xvs_dataplane::labelled::check_labels(Reject::ALL, Reject::label, Reject::index);
    }

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const SRC: IpAddr = IpAddr::V4(SRC4);
    const GROUP: IpAddr = IpAddr::V4(MULTICAST_GROUP);
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

    /// An IPv4 datagram around a VRRP message, as the raw socket delivers it.
    fn datagram(msg: &[u8], ttl: u8) -> Vec<u8> {
        let mut d = vec![0x45, 0xc0, 0, 0, 0, 0, 0, 0, ttl, PROTO_VRRP, 0, 0];
        d[2..4].copy_from_slice(&((20 + msg.len()) as u16).to_be_bytes());
        d.extend_from_slice(&SRC4.octets());
        d.extend_from_slice(&MULTICAST_GROUP.octets());
        d.extend_from_slice(msg);
        d
    }

    fn advert(prio: u8, interval_cs: u16) -> Advert {
        Advert {
            vrid: 51,
            priority: prio,
            interval_cs,
            addresses: vec![VIP],
        }
    }

    fn expect(version: Version, password: Option<&'static [u8]>) -> Expect<'static> {
        Expect {
            version,
            vrid: 51,
            interval_cs: 100,
            password,
            sources: None,
        }
    }

    /// `check_unicast_src`: only the listed peers' adverts are taken, checked after the
    /// message itself (another router's advert is still counted as another VRID's).
    #[test]
    fn with_unicast_peers_only_their_adverts_are_taken() {
        let msg = build(Version::V2, &advert(100, 100), Some(b"1111"), SRC, GROUP);
        let peers = [SRC];
        let listed = Expect {
            sources: Some(&peers),
            ..expect(Version::V2, Some(b"1111"))
        };
        assert!(parse(&datagram(&msg, 255), &listed).is_ok());
        let others = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))];
        let stranger = Expect {
            sources: Some(&others),
            ..expect(Version::V2, Some(b"1111"))
        };
        assert_eq!(
            parse(&datagram(&msg, 255), &stranger).err(),
            Some(Reject::UnknownSource)
        );
        let other_vrid = Expect {
            vrid: 52,
            ..stranger.clone()
        };
        assert_eq!(
            parse(&datagram(&msg, 255), &other_vrid).err(),
            Some(Reject::Vrid)
        );
    }

    #[test]
    fn v2_round_trip_with_password() {
        let m = build(Version::V2, &advert(100, 100), Some(b"1111"), SRC, GROUP);
        assert_eq!(m.len(), 8 + 4 + 8);
        assert_eq!(
            checksum::checksum(&m),
            0,
            "RFC 3768: over the message alone"
        );
        let (src, a) = parse(&datagram(&m, 255), &expect(Version::V2, Some(b"1111"))).unwrap();
        assert_eq!((src, a), (SRC, advert(100, 100)));
        assert_eq!(
            parse(&datagram(&m, 255), &expect(Version::V2, Some(b"2222"))),
            Err(Reject::Auth)
        );
        assert_eq!(
            parse(&datagram(&m, 255), &expect(Version::V2, None)),
            Err(Reject::Auth)
        );
    }

    /// Found by the fuzzer (fuzz/artifacts would hold it): an IPv4 total length of 0
    /// left an empty message, and reading its version panicked.
    #[test]
    fn a_total_length_short_of_the_header_is_truncated() {
        let m = build(Version::V2, &advert(100, 100), None, SRC, GROUP);
        let mut d = datagram(&m, 255);
        d[2..4].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            parse(&d, &expect(Version::V2, None)),
            Err(Reject::Truncated)
        );
        d[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(
            parse(&d, &expect(Version::V2, None)),
            Err(Reject::Truncated)
        );
    }

    #[test]
    fn v3_checksum_covers_the_pseudo_header() {
        let m = build(Version::V3, &advert(150, 10), None, SRC, GROUP);
        assert_eq!(m.len(), 12);
        let (_, a) = parse(&datagram(&m, 255), &expect(Version::V3, None)).unwrap();
        assert_eq!(a.interval_cs, 10);
        // The same message from another source no longer checks out.
        let mut d = datagram(&m, 255);
        d[15] = 3;
        assert_eq!(parse(&d, &expect(Version::V3, None)), Err(Reject::Checksum));
    }

    #[test]
    fn v3_over_ipv6_round_trip_and_checks() {
        let me: Ipv6Addr = "fe80::2".parse().unwrap();
        let vip: IpAddr = "2001:db8::100".parse().unwrap();
        let a = Advert {
            addresses: vec![vip],
            ..advert(150, 100)
        };
        let group = IpAddr::V6(MULTICAST_GROUP_V6);
        let m = build(Version::V3, &a, None, IpAddr::V6(me), group);
        assert_eq!(m.len(), 8 + 16, "keepalived's IPv6 advert: 24 bytes");
        let e = expect(Version::V3, None);
        let (from, got) = parse_v6(&m, me, MULTICAST_GROUP_V6, 255, &e).unwrap();
        assert_eq!((from, got), (IpAddr::V6(me), a));
        assert_eq!(
            parse_v6(&m, me, MULTICAST_GROUP_V6, 64, &e),
            Err(Reject::Ttl)
        );
        let other: Ipv6Addr = "fe80::3".parse().unwrap();
        assert_eq!(
            parse_v6(&m, other, MULTICAST_GROUP_V6, 255, &e),
            Err(Reject::Checksum),
            "the pseudo-header covers the source"
        );
        assert_eq!(
            parse_v6(&m, me, MULTICAST_GROUP_V6, 255, &expect(Version::V2, None)),
            Err(Reject::Version)
        );
        for n in 0..m.len() {
            assert!(parse_v6(&m[..n], me, MULTICAST_GROUP_V6, 255, &e).is_err());
        }
    }

    #[test]
    fn every_rfc_check() {
        let m = build(Version::V2, &advert(100, 100), None, SRC, GROUP);
        let e = expect(Version::V2, None);
        assert_eq!(parse(&datagram(&m, 254), &e), Err(Reject::Ttl));
        assert_eq!(
            parse(&datagram(&m, 255), &expect(Version::V3, None)),
            Err(Reject::Version)
        );
        let mut bad = m.clone();
        bad[2] ^= 1;
        assert_eq!(parse(&datagram(&bad, 255), &e), Err(Reject::Checksum));
        let other = build(
            Version::V2,
            &Advert {
                vrid: 52,
                ..advert(100, 100)
            },
            None,
            SRC,
            GROUP,
        );
        assert_eq!(parse(&datagram(&other, 255), &e), Err(Reject::Vrid));
        let slow = build(Version::V2, &advert(100, 300), None, SRC, GROUP);
        assert_eq!(parse(&datagram(&slow, 255), &e), Err(Reject::Interval));
        let mut typ = m.clone();
        typ[0] = 0x22;
        assert_eq!(parse(&datagram(&typ, 255), &e), Err(Reject::Type));
    }

    #[test]
    fn garbage_and_truncation_never_panic() {
        let m = build(Version::V2, &advert(100, 100), None, SRC, GROUP);
        let d = datagram(&m, 255);
        for n in 0..d.len() {
            assert!(parse(&d[..n], &expect(Version::V2, None)).is_err());
        }
        for seed in 0..500u32 {
            let junk: Vec<u8> = (0..(seed % 80))
                .map(|i| (i.wrapping_mul(seed) ^ seed) as u8)
                .collect();
            let _ = parse(&junk, &expect(Version::V3, None));
        }
        // An address count larger than the packet.
        let mut lie = d.clone();
        lie[20 + 3] = 50;
        assert_eq!(
            parse(&lie, &expect(Version::V2, None)),
            Err(Reject::Truncated)
        );
    }
}
