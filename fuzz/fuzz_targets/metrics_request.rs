//! Arbitrary bytes as a `/metrics` request head, whole and in every split: no panic, and
//! a head is never answered before its blank line.
#![no_main]

use xvs::fuzzing::metrics_request::{self as request, Head};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let whole = request::parse(data);
    let blank = data.windows(2).any(|w| w == b"\n\n") || data.windows(4).any(|w| w == b"\r\n\r\n");
    if !blank && data.len() < request::MAX_HEAD {
        assert_eq!(whole, Head::Incomplete);
    }
    let _ = whole.status();
});
