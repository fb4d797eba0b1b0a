//! Arbitrary text as an xvs YAML file: no panic, a located error or a configuration.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = xvs_config::parse("fuzz.yaml", text);
    }
});
