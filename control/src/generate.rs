//! `xvs generate DIR`: the man pages and shell completions, made from the CLI's own
//! definitions (`cli.rs`) and the configuration's schema, so they cannot drift from the
//! program. The package build runs it; nothing at run time needs it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// xvs runs as a system daemon from /usr/sbin: section 8.
const SECTION: &str = "8";

/// `cmd`'s page and those of its subcommands (`xvs-run`, `xvs-realserver-up`, ...), as
/// (file name, roff).
fn pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let name = if prefix.is_empty() {
        cmd.get_name().to_string()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    // Named as its file (whatis reads NAME); the synopsis keeps the words typed (bin name).
    let page = cmd.clone().name(name.clone());
    let mut roff = Vec::new();
    clap_mangen::Man::new(page.clone())
        .section(SECTION)
        .source(format!("xvs {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual")
        .render(&mut roff)
        .with_context(|| format!("rendering the page of {name}"))?;
    out.push((format!("{name}.{SECTION}"), roff));
    // clap's own `help` subcommand needs no page.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        pages(sub, &name, out)?;
    }
    Ok(())
}

/// Every man page: xvs(8) and its subcommands', and xvs.yaml(5).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    pages(&cmd, "", &mut out)?;
    out.push((
        "xvs.yaml.5".into(),
        xvs_config::schema::reference_man(env!("CARGO_PKG_VERSION")).into_bytes(),
    ));
    Ok(out)
}

/// The completions, as (file name, script): the names each shell's loader looks for.
pub fn completions() -> Vec<(String, Vec<u8>)> {
    [
        (Shell::Bash, "xvs"),
        (Shell::Zsh, "_xvs"),
        (Shell::Fish, "xvs.fish"),
    ]
    .into_iter()
    .map(|(shell, file)| {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "xvs", &mut script);
        (format!("{shell}/{file}"), script)
    })
    .collect()
}

/// Writes `DIR/man/*` and `DIR/completions/{bash,zsh,fish}/*`; returns the files written.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let sets = [("man", man_pages()?), ("completions", completions())];
    for (sub, files) in sets {
        for (name, bytes) in files {
            let path = dir.join(sub).join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_every_visible_subcommand_and_the_file_format() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "xvs.8",
            "xvs-run.8",
            "xvs-check.8",
            "xvs-import-ipvsadm.8",
            "xvs-drain.8",
            "xvs-realserver-up.8",
            "xvs-realserver-down.8",
            "xvs.yaml.5",
        ] {
            assert!(names.contains(&want), "{want}: {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains("generate") || n.contains("help")),
            "{names:?}"
        );
        let check = String::from_utf8(
            pages
                .iter()
                .find(|p| p.0 == "xvs-check.8")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(check.starts_with(".ie") || check.contains(".TH"), "{check}");
        assert!(check.contains("no\\-host"), "{check}");
        let yaml = String::from_utf8(pages.last().unwrap().1.clone()).unwrap();
        assert!(
            yaml.contains(".TH XVS.YAML 5") && yaml.contains("virtual_servers"),
            "{yaml}"
        );
    }

    #[test]
    fn completions_know_the_subcommands() {
        for (name, script) in completions() {
            let text = String::from_utf8(script).unwrap();
            assert!(
                text.contains("import-ipvsadm") && text.contains("undrain"),
                "{name}"
            );
        }
    }
}
