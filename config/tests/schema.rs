//! The JSON Schema and the configuration reference in the tree are the ones the types
//! generate; `XVS_BLESS=1` rewrites them after a schema change.

use std::path::Path;

fn same_or_bless(path: &Path, generated: &str) {
    if std::env::var_os("XVS_BLESS").is_some() {
        std::fs::write(path, generated).unwrap();
        return;
    }
    let in_tree = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        in_tree == generated,
        "{} is out of date: run `XVS_BLESS=1 cargo test -p xvs-config --test schema`",
        path.display()
    );
}

#[test]
fn json_schema_in_the_tree_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = serde_json::to_string_pretty(&xvs_config::schema::json_schema()).unwrap();
    text.push('\n');
    same_or_bless(&root.join("xvs.schema.json"), &text);
}

#[test]
fn reference_in_the_tree_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    same_or_bless(
        &root.join("../docs/configuration.md"),
        &xvs_config::schema::reference_markdown(),
    );
}

#[test]
fn every_key_is_documented() {
    let schema = xvs_config::schema::json_schema();
    let mut objects = vec![&schema];
    objects.extend(schema["$defs"].as_object().unwrap().values());
    let mut n = 0;
    for o in objects {
        for (key, p) in o
            .get("properties")
            .and_then(|p| p.as_object())
            .into_iter()
            .flatten()
        {
            assert!(
                p.get("description").is_some(),
                "`{key}` has no doc comment in config/src/raw.rs"
            );
            n += 1;
        }
    }
    assert!(n > 80, "{n} keys");
}
