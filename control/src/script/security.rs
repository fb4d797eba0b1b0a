//! keepalived's `enable_script_security` check: a script is secure when no one but root
//! can change it — the file and every directory on its path (as written and as the
//! links resolve) owned by root and writable by no group or other user, a root-owned
//! directory with the sticky bit excepted (/tmp's kind: others cannot replace root's
//! files there). It must be a regular file, executable.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Why `path` is not secure, or nothing.
pub fn check(path: &Path) -> Result<(), String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for p in [path, real.as_path()] {
        for prefix in prefixes(p) {
            component(&prefix)?;
        }
    }
    let m = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !m.is_file() || m.mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", real.display()));
    }
    Ok(())
}

/// `/`, `/a`, `/a/b`, ... of an absolute path.
fn prefixes(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => cur.push("/"),
            Component::Normal(n) => cur.push(n),
            Component::ParentDir => {
                cur.pop();
            }
            Component::CurDir | Component::Prefix(_) => continue,
        }
        out.push(cur.clone());
    }
    out
}

fn component(p: &Path) -> Result<(), String> {
    let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if m.uid() != 0 {
        return Err(format!(
            "{} is owned by uid {}, not root",
            p.display(),
            m.uid()
        ));
    }
    if m.file_type().is_symlink() {
        return Ok(());
    }
    let sticky_dir = m.is_dir() && m.mode() & 0o1000 != 0;
    let group_writable = m.mode() & 0o020 != 0 && m.gid() != 0;
    let world_writable = m.mode() & 0o002 != 0;
    if !sticky_dir && (group_writable || world_writable) {
        return Err(format!(
            "{} is writable by {}",
            p.display(),
            if world_writable {
                "every user"
            } else {
                "its group"
            }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xvs-sec-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn script(d: &Path, mode: u32) -> PathBuf {
        let s = d.join("s.sh");
        std::fs::write(&s, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(mode)).unwrap();
        s
    }

    #[test]
    fn root_owned_scripts_pass_others_fail_with_the_reason() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        assert_eq!(
            check(Path::new("/bin/true")),
            Ok(()),
            "through the /bin link"
        );
        let d = dir("ok");
        let s = script(&d, 0o755);
        assert_eq!(check(&s), Ok(()));
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(check(&s).unwrap_err().contains("writable by every user"));
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check(&s).unwrap_err().contains("not an executable file"));
        // A directory on the way that others may write: they could swap the script.
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check(&s).unwrap_err();
        assert!(e.contains(&format!("{} is writable", d.display())), "{e}");
        // Sticky and root's (as /tmp): fine.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(check(&s), Ok(()));
        // Owned by another user.
        std::os::unix::fs::chown(&s, Some(65534), None).unwrap();
        assert!(check(&s).unwrap_err().contains("owned by uid 65534"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
