//! Namespaces, links and processes of one lab, and their cleanup.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);
const PREFIX: &str = "xvs-";

/// A process started in a namespace; stopped (TERM, then KILL) when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`, or fails with the log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return Ok(());
            }
            if !self.running() {
                bail!(
                    "{} exited before logging {needle:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not log {needle:?} within {timeout:?}:\n{}",
            self.name,
            self.output()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
    }
}

/// One lab: its namespaces, processes and scratch directory.
pub struct Lab {
    pub id: String,
    /// (name, inode): `xvs realserver` names its state files after the inode.
    namespaces: Vec<(String, u64)>,
    procs: Vec<Proc>,
    pub dir: PathBuf,
}

impl Lab {
    /// A new, empty lab with a unique id; removes what killed earlier runs left behind.
    pub fn new() -> Result<Lab> {
        remove_stale();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(Lab {
            id,
            namespaces: Vec::new(),
            procs: Vec::new(),
            dir,
        })
    }

    /// The full name of this lab's namespace `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.id)
    }

    /// Creates namespace `short` with loopback up.
    pub fn add_ns(&mut self, short: &str) -> Result<String> {
        let ns = self.ns(short);
        run(Command::new("ip").args(["netns", "add", &ns]))?;
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(format!("/run/netns/{ns}"))?);
        self.namespaces.push((ns.clone(), ino));
        self.sh(short, "ip link set lo up")?;
        Ok(ns)
    }

    /// Runs a shell command in namespace `short`; fails with its output if it fails.
    pub fn sh(&self, short: &str, script: &str) -> Result<String> {
        let out = self.sh_output(short, script)?;
        if !out.status.success() {
            bail!(
                "in {}: `{script}` failed: {}{}",
                self.ns(short),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a shell command in namespace `short` and returns whatever happened.
    pub fn sh_output(&self, short: &str, script: &str) -> Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(short), "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running `{script}` in {}", self.ns(short)))
    }

    /// Starts `argv` in namespace `short`, output to a log file in the lab directory.
    pub fn spawn(&mut self, short: &str, name: &str, argv: &[&str]) -> Result<&mut Proc> {
        let log = self.dir.join(format!("{name}.log"));
        let f = fs::File::create(&log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(short)])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.procs.push(Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        });
        Ok(self.procs.last_mut().expect("just pushed"))
    }

    /// Starts keepalived in namespace `short` (process "keepalived") on configuration
    /// `conf`: in the foreground, logging to its console, its pid files in the lab.
    pub fn spawn_keepalived(&mut self, short: &str, conf: &str) -> Result<&mut Proc> {
        let path = self.write("keepalived.conf", conf)?.display().to_string();
        let pid = |n: &str| self.dir.join(n).display().to_string();
        let (main, vrrp) = (pid("keepalived.pid"), pid("vrrp.pid"));
        self.spawn(
            short,
            "keepalived",
            &[
                "keepalived",
                "-P",
                "-n",
                "-l",
                "-D",
                "-f",
                &path,
                "-p",
                &main,
                "-r",
                &vrrp,
            ],
        )
    }

    /// Starts tcpdump in namespace `short` (process `name`): what eth0 sees that matches
    /// `filter`, written to `pcap` packet by packet, addresses and ports as numbers.
    pub fn spawn_tcpdump(
        &mut self,
        short: &str,
        name: &str,
        pcap: &str,
        filter: &str,
    ) -> Result<&mut Proc> {
        self.spawn(
            short,
            name,
            &["tcpdump", "-i", "eth0", "-nn", "-U", "-w", pcap, filter],
        )
    }

    /// Starts tcpdump in namespace `short` (process "tcpdump") for the first packet on
    /// eth0 that matches `filter`, written to `pcap`, 15 s at most; waits (10 s at most)
    /// until it listens. `caught_first` tells whether it caught one.
    pub fn capture_first(&mut self, short: &str, pcap: &str, filter: &str) -> Result<()> {
        self.spawn(
            short,
            "tcpdump",
            &[
                "timeout", "15", "tcpdump", "-i", "eth0", "-nn", "-U", "-c", "1", "-w", pcap,
                filter,
            ],
        )?
        .wait_for_log("listening on", Duration::from_secs(10))
    }

    /// Whether the tcpdump of `capture_first` exited within 10 s, its packet caught.
    pub fn caught_first(&mut self) -> bool {
        self.proc("tcpdump")
            .expect("a capture_first")
            .wait(Duration::from_secs(10))
            .is_some()
    }

    /// Capture `pcap` as `tcpdump -v` reads it in namespace `short`.
    pub fn read_pcap_verbose(&self, short: &str, pcap: &str) -> Result<String> {
        self.sh(short, &format!("tcpdump -r {pcap} -nn -v 2>/dev/null"))
    }

    pub fn proc(&mut self, name: &str) -> Option<&mut Proc> {
        self.procs.iter_mut().find(|p| p.name == name)
    }

    /// Process `from` goes by `to` from now on.
    pub fn rename(&mut self, from: &str, to: &str) {
        if let Some(p) = self.procs.iter_mut().find(|p| p.name == from) {
            p.name = to.to_string();
        }
    }

    /// Stops and forgets process `name`, returning its exit status.
    pub fn stop(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        let i = self.procs.iter().position(|p| p.name == name)?;
        let mut p = self.procs.remove(i);
        p.terminate(Duration::from_secs(10))
    }

    /// Writes a file in the lab directory.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        let p = self.dir.join(name);
        fs::write(&p, contents)?;
        Ok(p)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first: a namespace with a live process would outlive `ip netns del`.
        self.procs.clear();
        for (ns, ino) in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            // What `xvs realserver up` recorded, and the control socket and lock files of
            // an xvs, in a namespace that is gone now.
            let _ = fs::remove_file(format!("/run/xvs-realserver/net{ino}.state"));
            remove_prefixed("/run/xvs", &format!("xvs-net{ino}"));
        }
        let _ = fs::remove_dir("/run/xvs");
        let _ = fs::remove_dir("/run/xvs-realserver");
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes the files of `dir` named `prefix` followed by `.` or `-`.
fn remove_prefixed(dir: &str, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(['.', '-']))
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Deletes namespaces of labs whose process is gone (a run killed before its cleanup).
fn remove_stale() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
            let _ = fs::remove_dir_all(
                std::env::temp_dir().join(name.rsplit_once('-').map_or(&name[..], |(l, _)| l)),
            );
        }
    }
}
