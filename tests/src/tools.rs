//! Which outside programs the labs need, checked up front with a clear message.

use anyhow::{bail, Result};

/// Fails with the list of missing programs and how to get them.
pub fn require(programs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing programs for the lab: {} (run `make setup`)",
            missing.join(", ")
        );
    }
    Ok(())
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The xvs binary under test: $XVS_BIN, or the workspace's release then debug build.
pub fn xvs_bin() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("XVS_BIN") {
        return Ok(p.into());
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("xvs");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("no xvs binary: build it with `make build` or set XVS_BIN")
}

/// A number from `/proc/PID/status` (`VmRSS:` in KiB, `Threads:`, ...).
pub fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}
