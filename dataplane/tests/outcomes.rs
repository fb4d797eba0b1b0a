//! `docs/input.md`'s outcome table is the golden table rendered: this test keeps the two
//! in step (`XVS_BLESS=1` rewrites the table after a fixture changed).

use xvs_dataplane::fixtures;

const BEGIN: &str = "<!-- outcomes:begin (generated from dataplane/src/fixtures.rs) -->\n";
const END: &str = "<!-- outcomes:end -->";

#[test]
fn the_documented_outcomes_are_the_golden_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/input.md");
    let doc = std::fs::read_to_string(path).expect("docs/input.md");
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/input.md lacks the outcome table's markers");
    };
    let want = fixtures::markdown(&fixtures::all());
    let have = &doc[b + BEGIN.len()..e];
    if have != want {
        if std::env::var_os("XVS_BLESS").is_some() {
            let fresh = format!("{}{BEGIN}{want}{}", &doc[..b], &doc[e..]);
            std::fs::write(path, fresh).expect("write docs/input.md");
            return;
        }
        panic!("docs/input.md's outcome table is stale: rerun with XVS_BLESS=1");
    }
}
