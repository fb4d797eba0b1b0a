//! Arbitrary text as an xvs YAML file and as a keepalived.conf: no panic.
//! Run: `cargo fuzz run -s none config -- -max_total_time=60` (stable Rust, no sanitizer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = xvs_config::parse("fuzz.yaml", text);
        let i = xvs_config::keepalived::import(text, None);
        let _ = xvs_config::parse("converted.yaml", &i.yaml);
    }
});
