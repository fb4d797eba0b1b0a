//! Arbitrary bytes through the pipeline: no panic, every frame counted once.
//! Run: `make fuzz` (every target, bounded), or `cargo fuzz run -s none pipeline`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xvs_dataplane::fixtures::exercise(data);
});
