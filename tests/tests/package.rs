//! `make deb`: the package is built, holds what an admin expects where Debian puts it,
//! is lintian-clean, and installs on a clean Debian 12 (a fresh minbase chroot made by
//! mmdebstrap, holding only what the package declares it depends on, plus systemd and
//! man-db to check its unit and pages): `xvs --version`, `xvs check`, its user, a unit
//! `systemd-analyze verify` accepts, its man pages; removed, then purged, cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The chroot, removed however the test ends.
struct Chroot(PathBuf);

impl Drop for Chroot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Chroot {
    fn sh(&self, script: &str) -> String {
        run(Command::new("chroot")
            .arg(&self.0)
            .args(["sh", "-c", script]))
    }
}

#[test]
fn the_package_builds_is_lintian_clean_and_installs_on_a_clean_debian() {
    xvs_tests::tools::require(&["dpkg-deb", "lintian", "mmdebstrap", "chroot"]).unwrap();
    let built = run(&mut Command::new(repo().join("scripts/deb.sh")));
    let deb = repo().join(built.lines().last().expect("the package's path").trim());
    let version = env!("CARGO_PKG_VERSION");
    assert!(deb.ends_with(format!("xvs_{version}_amd64.deb")), "{deb:?}");

    // What is in it, where Debian looks for it.
    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/sbin/xvs",
        "./etc/xvs/xvs.yaml",
        "./lib/systemd/system/xvs.service",
        "./usr/share/man/man8/xvs.8.gz",
        "./usr/share/man/man8/xvs-run.8.gz",
        "./usr/share/man/man8/xvs-import-ipvsadm.8.gz",
        "./usr/share/man/man8/xvs-drain.8.gz",
        "./usr/share/man/man8/xvs-realserver-down.8.gz",
        "./usr/share/man/man5/xvs.yaml.5.gz",
        "./usr/share/bash-completion/completions/xvs",
        "./usr/share/zsh/vendor-completions/_xvs",
        "./usr/share/fish/vendor_completions.d/xvs.fish",
        "./usr/share/xvs/xvs-grafana.json",
        "./usr/share/xvs/xvs.schema.json",
        "./usr/share/doc/xvs/copyright",
        "./usr/share/doc/xvs/changelog.gz",
    ] {
        assert!(
            list.lines()
                .any(|l| l.ends_with(path) && l.starts_with('-')),
            "{path} missing:\n{list}"
        );
    }
    assert!(
        list.lines().all(|l| l.contains(" root/root ")),
        "owned by root:\n{list}"
    );
    let conffiles = run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/xvs/xvs.yaml");
    let depends = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .arg("Depends"));
    assert!(
        depends.contains("libc6") && depends.contains("libelf1") && depends.contains("adduser"),
        "{depends}"
    );

    // Lintian, pedantic and informational tags too: nothing (the overrides say why).
    let lint = Command::new("lintian")
        .args(["--tag-display-limit", "0", "-I", "--pedantic"])
        .arg(&deb)
        .output()
        .unwrap();
    let said: Vec<String> = String::from_utf8_lossy(&lint.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&lint.stderr).lines())
        .filter(|l| !l.contains("running with root privileges"))
        .map(str::to_string)
        .collect();
    assert!(
        lint.status.success() && said.is_empty(),
        "lintian: {said:?}"
    );

    // A clean Debian 12 holding the declared dependencies, and nothing of xvs's build.
    let names: Vec<String> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap_or("").to_string())
        .chain(["systemd".into(), "man-db".into()])
        .collect();
    let root = Chroot(std::env::temp_dir().join(format!("xvs-chroot-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    run(Command::new("mmdebstrap")
        .args(["--quiet", "--variant=minbase"])
        .arg(format!("--include={}", names.join(",")))
        .arg("bookworm")
        .arg(&root.0));
    std::fs::copy(&deb, root.0.join("tmp/xvs.deb")).unwrap();
    assert!(root
        .sh("test -e /usr/sbin/xvs && echo present || echo absent")
        .contains("absent"));
    root.sh("dpkg -i /tmp/xvs.deb");
    assert_eq!(root.sh("xvs --version").trim(), format!("xvs {version}"));
    let check = root.sh("xvs check --no-host -c /etc/xvs/xvs.yaml");
    assert!(check.contains("/etc/xvs/xvs.yaml: OK"), "{check}");
    assert!(root.sh("id -un xvs").trim() == "xvs", "the system user");
    assert_eq!(
        root.sh("stat -c '%a %U %G' /etc/xvs/xvs.yaml").trim(),
        "640 root xvs",
        "the configuration (sync key, VRRP passwords) is not world-readable"
    );
    // verify: the unit's syntax, its commands and its Documentation= pages.
    let verify = Command::new("chroot")
        .arg(&root.0)
        .args([
            "systemd-analyze",
            "verify",
            "/lib/systemd/system/xvs.service",
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {verify:?}"
    );
    let pages = root.sh("man -w xvs xvs.yaml xvs-check xvs-drain xvs-import-ipvsadm");
    assert_eq!(pages.lines().count(), 5, "{pages}");
    let unit = root.sh("cat /lib/systemd/system/xvs.service");
    for line in [
        "User=xvs",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "RuntimeDirectory=xvs",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}: {unit}");
    }

    // Removed: the program goes, the admin's file stays; purged: that goes too.
    root.sh("dpkg -r xvs");
    let left =
        root.sh("test -e /usr/sbin/xvs && echo bin; test -e /etc/xvs/xvs.yaml && echo conf; true");
    assert_eq!(left.trim(), "conf", "after remove");
    root.sh("dpkg -P xvs");
    let left = root.sh(
        "test -e /etc/xvs/xvs.yaml && echo conf; dpkg -s xvs >/dev/null 2>&1 && echo pkg; true",
    );
    assert_eq!(left.trim(), "", "after purge");
}
