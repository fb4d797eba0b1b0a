//! Arbitrary text as a control-socket `status` command line: no panic, and a line that
//! parses names only known options.
#![no_main]

use xvs::fuzzing::status_request as request;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in [text.to_string(), format!("status {text}")] {
        if request::Request::parse(&line).is_ok() {
            assert!(line.split_whitespace().skip(1).all(|w| [
                "--stats",
                "--rate",
                "--connections",
                "--drops",
                "--sync",
                "--json"
            ]
            .contains(&w)));
        }
    }
});
