//! Arbitrary text as a keepalived.conf through the importer: no panic, and its YAML
//! through the loader.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let i = xvs_config::keepalived::import(text, None);
        let _ = xvs_config::parse("converted.yaml", &i.yaml);
    }
});
