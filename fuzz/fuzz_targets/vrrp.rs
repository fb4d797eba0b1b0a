//! Arbitrary datagrams through the VRRP advertisement parsers (v2 and v3 over IPv4, v3
//! over IPv6): no panic.
#![no_main]

use xvs::fuzzing::vrrp_advert::{self as advert, Expect, Version};

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
            sources: None,
        };
        let _ = advert::parse(data, &expect);
        let _ = advert::parse_v6(
            data,
            "fe80::2".parse().unwrap(),
            advert::MULTICAST_GROUP_V6,
            255,
            &expect,
        );
    }
});
