//! Hostile input: whatever the file holds, loading it gives a configuration or errors that
//! point into the file — never a panic. The same for keepalived.conf conversion.

use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../examples/vrrp-dr.yaml");

/// Characters that make YAML interesting: structure, quotes, anchors, tags, numbers.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(":".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("- ".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("&a ".to_string()),
            Just("*a".to_string()),
            Just("!!str ".to_string()),
            Just("<<: ".to_string()),
            Just("#".to_string()),
            Just("\t".to_string()),
            Just("interface".to_string()),
            Just("virtual_servers".to_string()),
            Just("real_servers".to_string()),
            Just("address".to_string()),
            Just("10.0.0.1".to_string()),
            Just("-1".to_string()),
            Just("99999999999999999999".to_string()),
            Just("1e400".to_string()),
            Just("~".to_string()),
            "[a-z_]{1,8}".prop_map(|s| s),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..60,
    )
    .prop_map(|v| v.concat())
}

/// Every diagnostic names a place inside the text (or 0: no place, e.g. an empty file).
fn places_are_inside(text: &str) {
    if let Err(e) = xvs_config::parse("h.yaml", text) {
        assert!(!e.diagnostics.is_empty(), "an error with no message");
        // Lines as YAML counts them: `\r\n`, `\r` and `\n` each end one (found by this
        // test: "\r\r" is three lines to the parser, one to `str::lines`).
        let lines = text.replace("\r\n", "\n").matches(['\r', '\n']).count() as u64 + 1;
        for d in &e.diagnostics {
            assert!(d.line <= lines, "line {} of {lines}: {e}", d.line);
            assert!(!d.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_yaml_never_panics(text in yamlish()) {
        places_are_inside(&text);
        let _ = xvs_config::keepalived::import(&text, None);
    }

    /// A real file with a few characters replaced, inserted or removed.
    #[test]
    fn a_mangled_example_never_panics(
        edits in proptest::collection::vec((0usize..4096, 0u8..3, yamlish()), 1..4)
    ) {
        let mut text: Vec<char> = EXAMPLE.chars().collect();
        for (at, kind, with) in edits {
            let at = at % (text.len() + 1);
            match kind {
                0 => { text.splice(at..at, with.chars()); }
                1 => { let end = (at + 3).min(text.len()); text.drain(at..end); }
                _ => {
                    let end = (at + with.chars().count()).min(text.len());
                    text.splice(at..end, with.chars());
                }
            }
        }
        let text: String = text.into_iter().collect();
        places_are_inside(&text);
    }

    #[test]
    fn arbitrary_keepalived_never_panics(text in "[ -~\n{}\"!#]{0,400}") {
        let i = xvs_config::keepalived::import(&text, Some("eth0"));
        let _ = xvs_config::parse("converted.yaml", &i.yaml);
    }
}
