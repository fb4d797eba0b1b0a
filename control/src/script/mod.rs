//! Notify and misc-check scripts, run as keepalived runs them and no more trusted than
//! they should be: argv as keepalived splits the line (no shell), as `script_user`,
//! without xvs's capabilities, in a clean environment, with no descriptor of xvs's
//! open, in a process group of their own that is killed whole when they outlast their
//! time; and, with `enable_script_security`, only when no one but root can change them.
//!
//! - `identity.rs`: who scripts run as;
//! - `security.rs`: keepalived's path check;
//! - `crate::sys::child`: the child's set-up between fork and exec (unsafe lives in
//!   `sys`).

mod identity;
mod security;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use tracing::{error, warn};

use crate::sys::child;
use xvs_config::Config;

pub use identity::Identity;

/// The search path of a script named without a directory, and its environment's.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// After SIGTERM at the timeout, how long the group has before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// How this process runs scripts: set once at start (`init`).
struct Policy {
    who: Identity,
    /// `enable_script_security`: refuse a script others than root can change.
    secure_only: bool,
}

static POLICY: OnceLock<Policy> = OnceLock::new();

/// Sets who scripts run as and whether insecure ones are refused; checks every script
/// of `cfg` and says which are insecure (refused with `enable_script_security`, else run
/// with a warning, as keepalived does).
pub fn init(cfg: &Config) -> Result<()> {
    let who = Identity::for_scripts(cfg.script_user.as_ref())?;
    let secure_only = cfg.enable_script_security;
    let mut insecure = Vec::new();
    for line in configured(cfg) {
        if let Err(e) = resolve(line).and_then(|p| security::check(&p)) {
            insecure.push(format!("`{line}`: {e}"));
        }
    }
    if !insecure.is_empty() {
        let what = if secure_only {
            "not run (enable_script_security)"
        } else {
            "run all the same; set `enable_script_security: true` to refuse them"
        };
        warn!("insecure scripts, {what}:\n  {}", insecure.join("\n  "));
    }
    let _ = POLICY.set(Policy { who, secure_only });
    Ok(())
}

fn policy() -> &'static Policy {
    POLICY.get_or_init(|| Policy {
        who: Identity::for_scripts(None).unwrap_or_else(|_| Identity::own()),
        secure_only: false,
    })
}

/// Every script line the configuration holds.
fn configured(cfg: &Config) -> Vec<&str> {
    let mut v = Vec::new();
    for vs in &cfg.virtual_servers {
        v.extend(vs.quorum_up.as_deref());
        v.extend(vs.quorum_down.as_deref());
        for rs in &vs.real_servers {
            v.extend(rs.notify_up.as_deref());
            v.extend(rs.notify_down.as_deref());
            if let Some(xvs_config::CheckKind::Misc { script, .. }) =
                rs.health_check.as_ref().map(|h| &h.kind)
            {
                v.push(script);
            }
        }
    }
    for vi in &cfg.vrrp_instances {
        for s in [
            &vi.notify_master,
            &vi.notify_backup,
            &vi.notify_fault,
            &vi.notify,
        ] {
            v.extend(s.as_deref());
        }
    }
    v
}

/// The program a script line names, as a full path: one with a `/` must be absolute;
/// a bare name is looked up in `PATH`.
fn resolve(line: &str) -> Result<PathBuf, String> {
    let argv = xvs_config::script::argv(line)?;
    let prog = Path::new(&argv[0]);
    if argv[0].contains('/') {
        if !prog.is_absolute() {
            return Err("give the program's full path".into());
        }
        return Ok(prog.to_path_buf());
    }
    PATH.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{} is not in {PATH}", argv[0]))
}

/// Runs `line` with `extra` arguments appended (a notify's `INSTANCE name state
/// priority`), for at most `timeout`; its exit status, or why it did not run or was
/// killed.
pub async fn run(line: &str, extra: &[String], timeout: Duration) -> Result<ExitStatus, String> {
    run_under(policy(), line, extra, timeout).await
}

async fn run_under(
    p: &Policy,
    line: &str,
    extra: &[String],
    timeout: Duration,
) -> Result<ExitStatus, String> {
    let argv = xvs_config::script::argv(line)?;
    let prog = resolve(line)?;
    if let Err(e) = security::check(&prog) {
        if p.secure_only {
            return Err(format!("not run: {e} (enable_script_security)"));
        }
    }
    let mut cmd = tokio::process::Command::new(&prog);
    cmd.args(&argv[1..])
        .args(extra)
        .env_clear()
        .env("PATH", PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    p.who.apply(&mut cmd);
    child::harden(&mut cmd);
    let mut c = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", prog.display()))?;
    let pgid = c.id().map(|id| id as i32);
    match tokio::time::timeout(timeout, c.wait()).await {
        // What it started in the background may go on (a notify may start a service).
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            if let Some(g) = pgid {
                child::signal_group(g, libc::SIGTERM);
                if tokio::time::timeout(GRACE, c.wait()).await.is_err() {
                    error!("script `{line}` ignored SIGTERM: killing its group");
                }
                child::signal_group(g, libc::SIGKILL);
            }
            let _ = c.wait().await;
            Err(format!(
                "still running after {timeout:?}: its process group was killed"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A script in a directory of root's, and a directory anyone may write its output to.
    struct Bench {
        dir: PathBuf,
        out: PathBuf,
    }

    impl Bench {
        fn new(name: &str, body: &str) -> Bench {
            let dir =
                std::env::temp_dir().join(format!("xvs-script-{name}-{}", std::process::id()));
            let out = dir.join("out");
            std::fs::create_dir_all(&out).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
            let s = dir.join("s.sh");
            std::fs::write(&s, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
            Bench { dir, out }
        }

        fn script(&self) -> String {
            self.dir.join("s.sh").display().to_string()
        }

        fn read(&self, f: &str) -> String {
            std::fs::read_to_string(self.out.join(f)).unwrap_or_default()
        }
    }

    impl Drop for Bench {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn unprivileged() -> Option<Policy> {
        nix::unistd::geteuid().is_root().then(|| Policy {
            who: Identity::for_scripts(None).unwrap(),
            secure_only: true,
        })
    }

    /// As keepalived runs it, and no more: its own user, no capability, PATH alone in
    /// its environment, its arguments as words (nothing a shell would expand).
    #[tokio::test]
    async fn a_script_runs_unprivileged_with_its_words_in_a_clean_environment() {
        let Some(p) = unprivileged() else { return };
        let b = Bench::new(
            "env",
            "o=$(dirname $0)/out\nid -u > $o/uid\ngrep ^Cap /proc/self/status > $o/caps\nenv > $o/env\nfor a in \"$@\"; do echo \"[$a]\"; done > $o/args",
        );
        let line = format!("{} 'two words' '$(id)'", b.script());
        let st = run_under(
            &p,
            &line,
            &["INSTANCE".into(), "VI 1".into()],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(st.success());
        assert_eq!(b.read("uid").trim(), p.who.uid.to_string());
        assert_ne!(p.who.uid, 0);
        for l in b.read("caps").lines() {
            if ["CapInh", "CapPrm", "CapEff", "CapAmb"]
                .iter()
                .any(|k| l.starts_with(k))
            {
                assert!(l.ends_with("0000000000000000"), "{l}");
            }
        }
        let env = b.read("env");
        // Nothing of xvs's own environment (this test's: HOME, cargo's variables).
        assert!(!env.contains("HOME=") && !env.contains("CARGO"), "{env}");
        assert!(env.contains(&format!("PATH={PATH}")), "{env}");
        assert_eq!(b.read("args"), "[two words]\n[$(id)]\n[INSTANCE]\n[VI 1]\n");
    }

    /// A script that outlasts its time is ended with everything it started.
    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let Some(p) = unprivileged() else { return };
        let b = Bench::new(
            "timeout",
            "sleep 300 &\necho $! > $(dirname $0)/out/child\nsleep 300",
        );
        let t = std::time::Instant::now();
        let e = run_under(&p, &b.script(), &[], Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(e.contains("process group was killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4));
        let child: i32 = b.read("child").trim().parse().unwrap();
        // /proc says whether the background sleep is still there (a zombie is gone);
        // SIGKILL is delivered, not waited for: a moment's grace for the exit.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|s| !s.contains(") Z ") && !s.contains(") X "))
        };
        let since = std::time::Instant::now();
        while alive() && since.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the script's child {child} outlived it");
    }

    /// With enable_script_security, a script others could change is not run.
    #[tokio::test]
    async fn an_insecure_script_is_refused_under_script_security() {
        let Some(p) = unprivileged() else { return };
        let b = Bench::new("insecure", "touch $(dirname $0)/out/ran");
        std::fs::set_permissions(b.dir.join("s.sh"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let e = run_under(&p, &b.script(), &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("writable by every user"), "{e}");
        assert!(b.read("ran").is_empty() && !b.out.join("ran").exists());
        let lax = Policy {
            secure_only: false,
            ..p
        };
        run_under(&lax, &b.script(), &[], Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            b.out.join("ran").exists(),
            "run, with a warning, when the check is off"
        );
    }

    #[test]
    fn programs_are_found_by_full_path_or_in_path_only() {
        assert_eq!(resolve("true").unwrap(), PathBuf::from("/usr/bin/true"));
        assert!(resolve("./x.sh").unwrap_err().contains("full path"));
        assert!(resolve("no-such-program-xvs")
            .unwrap_err()
            .contains("is not in"));
    }
}
