//! Arbitrary bytes through the pipeline: no panic, every frame counted once.
//! Run: `cargo fuzz run -s none pipeline -- -max_total_time=60` (stable Rust, no sanitizer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xvs_dataplane::fixtures::exercise(data);
});
