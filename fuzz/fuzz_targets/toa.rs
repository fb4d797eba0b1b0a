//! FullNAT's client-address option: arbitrary TCP options (built into a segment by
//! etherparse) through the option parser, the scrub of a client's own option, and the
//! director's insertion. No panic; after the scrub no option of that kind is left and the
//! checksum is etherparse's; after an insertion the option names the segment's client
//! and the header only grew.
#![no_main]

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use xvs_dataplane::packet::Packet;
use xvs_dataplane::rewrite::toa::{self, Toa};

/// The segment's options, its checksums checked against etherparse's.
fn options(frame: &[u8]) -> Vec<u8> {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse reads it");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!("TCP")
    };
    let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
    assert_eq!(t.checksum(), want, "TCP checksum");
    t.options().to_vec()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = toa::parse(data);
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    // Options padded to whole words, at most 40 bytes.
    let mut opts = rest[..rest.len().min(40)].to_vec();
    opts.resize(opts.len().div_ceil(4) * 4, 0);
    let payload: &[u8] = if flags & 1 == 0 { b"" } else { b"data" };
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 100], 64)
        .tcp(40000, 80, 7, 65535)
        .syn();
    let Ok(b) = b.options_raw(&opts) else {
        return;
    };
    let mut frame = Vec::new();
    b.write(&mut frame, payload).unwrap();

    // The scrub: nothing of the kind left that a parser walking the options finds.
    let mut scrubbed = frame.clone();
    toa::scrub_frame(&mut scrubbed, false);
    let after = options(&scrubbed);
    assert!(toa::parse(&after).is_none(), "an option left: {after:?}");

    // The insertion, into room after the frame.
    let len = scrubbed.len();
    let mut buf = scrubbed.clone();
    buf.resize(len + 64, 0);
    let mut pkt = Packet::new(&mut buf, 0, len).unwrap();
    if toa::add4(&mut pkt) == Toa::Added {
        let n = pkt.len();
        buf.truncate(n);
        toa::finish4(&mut buf);
        let got = options(&buf);
        assert_eq!(
            toa::parse(&got),
            Some((40000, "10.0.0.1".parse().unwrap())),
            "{got:?}"
        );
        // Only ever grown, by whole words.
        assert!(got.len() >= after.len() && got.len() % 4 == 0);
    }
});
