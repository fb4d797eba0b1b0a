//! Arbitrary text as ipvsadm rules and, after a NUL, iptables-save output through
//! `import-ipvsadm`: no panic, and the YAML it writes always validates (what the
//! validator refuses is left out and named, never written).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A NUL splits the input into the two files.
    let (rules, marks) = text.split_once('\u{0}').unwrap_or((text, ""));
    let i = xvs_config::ipvsadm::import(
        rules,
        Some(xvs_config::ipvsadm::Marks {
            name: "iptables",
            text: marks,
        }),
        Some("eth0"),
    );
    if let Err(e) = xvs_config::parse("converted.yaml", &i.yaml) {
        panic!("the converted file does not validate: {e}\n{}", i.yaml);
    }
});
