//! `docs/input.md`'s outcome table is the golden table rendered: this test keeps the two
//! in step (`XVS_BLESS=1` rewrites the table after a fixture changed).

use xvs_dataplane::fixtures;

const BEGIN: &str = "<!-- outcomes:begin (generated from dataplane/src/fixtures/table.rs) -->\n";
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

/// The fuzzers' seed corpora from the golden table (`fuzz/corpus/`, checked in):
/// rewritten by `XVS_BLESS=1`, otherwise only checked to be there.
#[test]
fn fuzz_seeds_come_from_the_golden_table() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus"));
    let seeds: Vec<(String, Vec<u8>)> = fixtures::all()
        .iter()
        .enumerate()
        .flat_map(|(i, fx)| {
            let mut v = vec![(format!("wire/fixture{i:02}"), fx.frame.clone())];
            if fx.frame.len() > 14 {
                v.push((format!("wire/fixture{i:02}-ip"), fx.frame[14..].to_vec()));
            }
            if fx.frame.len() <= 255 {
                let mut p = vec![fx.frame.len() as u8];
                p.extend_from_slice(&fx.frame);
                v.push((format!("pipeline/fixture{i:02}"), p));
            }
            v
        })
        .collect();
    for (name, bytes) in &seeds {
        let path = root.join(name);
        if std::env::var_os("XVS_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            assert!(
                path.exists(),
                "{} missing: rerun with XVS_BLESS=1",
                path.display()
            );
        }
    }
}
