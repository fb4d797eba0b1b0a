//! `make deb`: the package is built, holds what an admin expects where Debian puts it,
//! is lintian-clean, and installs on a clean Debian 12 (a fresh minbase chroot made by
//! mmdebstrap, holding only what the package declares it depends on, plus systemd and
//! man-db to check its unit and pages): `xvs --version`, `xvs check`, its user, a unit
//! `systemd-analyze verify` accepts, its man pages; then, booted with systemd
//! (systemd-nspawn), the unit's life: ready only once attached, STATUS=, a reload that
//! fails on a bad file and says why, warnings and event fields in the journal, a restart
//! and an upgrade to a newer version under traffic (both hand over: every download
//! intact), the watchdog restarting a director whose control loop or one of whose
//! workers stalls; removed, then purged, cleanly.

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

/// A `spelling-error-in-binary` hint whose "word" is no text of xvs's: lintian reads
/// any run of four letters in the machine code as one ("thIk" for "think"), and which
/// runs there are changes with every build. A misspelling in a message xvs prints is in
/// its sources, so it is still reported.
fn machine_code_noise(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("I: xvs: spelling-error-in-binary ") else {
        return false;
    };
    let word = rest.split(' ').next().unwrap_or("");
    let found = Command::new("grep")
        .args([
            "-rqF",
            "--include=*.rs",
            "--include=*.c",
            "--include=*.h",
            word,
        ])
        .args(["control", "dataplane", "config", "bpf"])
        .current_dir(repo())
        .status()
        .is_ok_and(|s| s.success());
    !word.is_empty() && !found
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
    xvs_lab::tools::require(&["dpkg-deb", "lintian", "mmdebstrap", "chroot"]).unwrap();
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
        .filter(|l| !machine_code_noise(l))
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
    // The upgrade: the same build, its version bumped.
    let newer = format!("{version}+upgrade1");
    let built = run(Command::new(repo().join("scripts/deb.sh")).env("XVS_DEB_VERSION", &newer));
    let newer_deb = repo().join(built.lines().last().expect("the package's path").trim());
    std::fs::copy(&newer_deb, root.0.join("tmp/xvs-newer.deb")).unwrap();
    let _ = std::fs::remove_file(&newer_deb);
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
        "Type=notify",
        "ExecReload=/usr/sbin/xvs reload -c /etc/xvs/xvs.yaml",
        "WatchdogSec=10s",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}: {unit}");
    }

    under_systemd(&root, &newer);

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

/// The chroot booted with systemd as its init (systemd-nspawn, a network of its own),
/// stopped and its veth deleted however the test ends.
struct Booted {
    nspawn: std::process::Child,
    /// The container's init, for nsenter.
    init: u32,
    veth: String,
}

impl Drop for Booted {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.nspawn.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
    }
}

impl Booted {
    fn boot(root: &Path) -> Booted {
        let machine = format!("xvs{}", std::process::id());
        // bpf() and perf_event_open() are outside nspawn's default system-call filter.
        let nspawn = Command::new("systemd-nspawn")
            .args([
                "-q",
                "--boot",
                "--register=no",
                "--keep-unit",
                "--private-network",
            ])
            .args([
                "--capability=all",
                "--system-call-filter=bpf perf_event_open",
            ])
            .arg(format!("--machine={machine}"))
            .arg("-D")
            .arg(root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("systemd-nspawn");
        let mut b = Booted {
            init: 0,
            veth: format!("xvsh{}", std::process::id() % 100_000),
            nspawn,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the container did not boot"
            );
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", b.nspawn.id()))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                b.init = pid.parse().unwrap();
                let state = b.try_sh("systemctl is-system-running 2>/dev/null; true");
                if state.contains("running") || state.contains("degraded") {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        run(Command::new("ip").args([
            "link",
            "add",
            &b.veth,
            "type",
            "veth",
            "peer",
            "name",
            "xvs0",
            "netns",
            &format!("/proc/{}/ns/net", b.init),
        ]));
        run(Command::new("ip").args(["link", "set", &b.veth, "up"]));
        // The host's `ip`, in the container's network (its minimal Debian has none).
        let init = b.init.to_string();
        for args in [
            &["link", "set", "xvs0", "up"][..],
            &["addr", "add", "192.0.2.2/24", "dev", "xvs0"],
            &["addr", "add", "192.0.2.100/32", "dev", "xvs0"],
        ] {
            run(Command::new("nsenter")
                .args(["-t", &init, "-n", "ip"])
                .args(args));
        }
        b
    }

    /// Runs `script` inside the container, whatever its exit status: its stdout and
    /// stderr.
    fn try_sh(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-a", "sh", "-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    fn sh(&self, script: &str) -> String {
        run(Command::new("nsenter").args(["-t", &self.init.to_string(), "-a", "sh", "-c", script]))
    }

    fn show(&self, prop: &str) -> String {
        self.sh(&format!("systemctl show -P {prop} xvs"))
            .trim()
            .to_string()
    }

    /// The host's id of the running xvs's first worker thread.
    fn worker_thread(&self) -> Option<u32> {
        let ns = std::fs::read_link(format!("/proc/{}/ns/pid", self.init)).ok()?;
        for p in std::fs::read_dir("/proc").ok()?.flatten() {
            let pid = p.file_name().to_string_lossy().to_string();
            if pid.parse::<u32>().is_err()
                || std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok() != Some(ns.clone())
            {
                continue;
            }
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for t in tasks.flatten() {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                if comm.trim() == "xvs-q0" {
                    return t.file_name().to_string_lossy().parse().ok();
                }
            }
        }
        None
    }

    /// Waits for the unit to have been restarted `n` times and be active again.
    fn restarted(&self, n: u32) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if self.show("NRestarts").parse::<u32>().unwrap_or(0) >= n
                && self.show("ActiveState") == "active"
            {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        false
    }
}

/// Downloads across the upgrade: 4 MB at nginx's 500 kB/s, eight seconds each.
const UPGRADE_DOWNLOADS: usize = 4;
const UPGRADE_BYTES: usize = 4 << 20;
/// The UDP service the stream runs through.
const UDP_PORT: u16 = 5353;

/// A client and a real server for the container's director: a DR lab whose own director
/// is unplugged, the container's link on its switch in its place (prepared as the lab's
/// was), the lab's director and VIP addresses on the container's link.
struct Clients {
    lab: xvs_lab::dr::DrLab,
}

impl Clients {
    fn attach(b: &Booted) -> Clients {
        let mut lab = xvs_lab::dr::DrLab::build(1, 1).expect("the DR lab");
        let sw = lab.lab.ns("sw");
        let pass = lab.lab.dir.join("pass.bpf.o").display().to_string();
        lab.lab.sh("sw", "ip link del lb").unwrap();
        run(Command::new("ip").args(["link", "set", &b.veth, "netns", &sw]));
        lab.lab
            .sh(
                "sw",
                &format!(
                    "ip link set {v} master br0 && ip link set {v} up && ip link set dev {v} xdpdrv obj {pass} sec xdp && ethtool -K {v} tx off >/dev/null",
                    v = b.veth
                ),
            )
            .unwrap();
        let init = b.init.to_string();
        for addr in [
            format!("{}/24", xvs_lab::dr::DIRECTOR),
            format!("{}/32", xvs_lab::dr::VIP),
        ] {
            run(Command::new("nsenter")
                .args(["-t", &init, "-n", "ip", "addr", "add", &addr, "dev", "xvs0"]));
        }
        lab.start_web().expect("nginx on the real server");
        lab.start_udp_echo(UDP_PORT)
            .expect("a UDP echo on the real server");
        Clients { lab }
    }

    fn config() -> String {
        let (vip, rs) = (xvs_lab::dr::VIP, xvs_lab::dr::rs_addr(0));
        format!(
            "interface: xvs0\nfast_path: off\nvirtual_servers:\n  - {{ name: web, address: {vip}, port: 80, protocol: tcp, forwarding: dr, real_servers: [ {{ address: {rs} }} ] }}\n  - {{ name: echo, address: {vip}, port: {UDP_PORT}, protocol: udp, forwarding: dr, real_servers: [ {{ address: {rs} }} ] }}\n"
        )
    }

    /// A datagram every 2 ms for 10 s on one flow (`udp_stream.py`); its name.
    fn udp_stream(&mut self) -> String {
        let script = self.lab.lab.dir.join("udp_stream.py").display().to_string();
        let port = UDP_PORT.to_string();
        let argv = [
            "python3",
            "-u",
            &script,
            xvs_lab::dr::VIP,
            &port,
            "0.002",
            "10",
        ];
        self.lab.lab.spawn("cl", "udp-stream", &argv).unwrap();
        "udp-stream".into()
    }

    /// What the stream printed once it ended: `sent N answered M longest_gap_ms G`.
    fn udp_result(&mut self, name: &str) -> String {
        let p = self.lab.lab.proc(name).unwrap();
        p.wait(std::time::Duration::from_secs(30));
        p.output()
    }

    /// Starts `n` paced downloads from the client; what each should receive.
    fn downloads(&mut self, n: usize) -> Vec<u8> {
        let want = self.lab.put_slow("part.bin", UPGRADE_BYTES).unwrap();
        let url = format!("http://{}/slow/part.bin", xvs_lab::dr::VIP);
        let dir = self.lab.lab.dir.display().to_string();
        for i in 0..n {
            let out = format!("{dir}/dl{i}.bin");
            self.lab
                .lab
                .spawn(
                    "cl",
                    &format!("dl{i}"),
                    &["curl", "-sS", "-m", "40", "-o", &out, &url],
                )
                .unwrap();
        }
        want
    }

    /// How many downloads finished with every byte.
    fn intact(&mut self, want: &[u8]) -> usize {
        let dir = self.lab.lab.dir.clone();
        (0..UPGRADE_DOWNLOADS)
            .filter(|i| {
                let p = self.lab.lab.proc(&format!("dl{i}")).unwrap();
                p.wait(std::time::Duration::from_secs(40));
                std::fs::read(dir.join(format!("dl{i}.bin"))).unwrap_or_default() == want
            })
            .count()
    }
}

/// The unit under a real systemd, on a veth of the container's own; `newer`: the version
/// of `/tmp/xvs-newer.deb`.
fn under_systemd(root: &Chroot, newer: &str) {
    xvs_lab::tools::require(&["systemd-nspawn", "nsenter", "ip"]).unwrap();
    // `announce`: the VIP's route in table 100 must stay through a restart.
    let good = "interface: xvs0\nfast_path: xdp\nannounce: { table: 100, warmup: 0 }\nvirtual_servers:\n  - { name: web, address: 192.0.2.100, port: 80, protocol: tcp, forwarding: dr, real_servers: [ { address: 192.0.2.11 } ] }\n";
    std::fs::write(root.0.join("etc/xvs/xvs.yaml"), good).unwrap();
    // A quicker watchdog for the test, as an admin's drop-in would set it.
    std::fs::create_dir_all(root.0.join("etc/systemd/system/xvs.service.d")).unwrap();
    std::fs::write(
        root.0
            .join("etc/systemd/system/xvs.service.d/watchdog.conf"),
        "[Service]\nWatchdogSec=2s\n",
    )
    .unwrap();
    // Booted, /tmp is a tmpfs: the package to upgrade with goes where it stays visible.
    for deb in ["xvs.deb", "xvs-newer.deb"] {
        std::fs::copy(
            root.0.join("tmp").join(deb),
            root.0.join("var/tmp").join(deb),
        )
        .unwrap();
    }
    let b = Booted::boot(&root.0);

    // Type=notify: `systemctl start` returns once xvs said READY=1, and its STATUS= line
    // is the unit's.
    // As Debian's udev leaves it on a host (50-udev-default.rules: MODE="0666"); the
    // container copies this VM's node, which has no udev and is root's alone.
    b.sh("chmod 0666 /dev/net/tun");
    let started = b.try_sh("systemctl start xvs && echo started");
    assert!(
        started.contains("started"),
        "{started}\n{}",
        b.try_sh("journalctl -u xvs -o cat --no-pager | tail -30")
    );
    assert_eq!(b.show("ActiveState"), "active");
    let status = b.show("StatusText");
    assert!(status.contains("1 virtual server(s)"), "{status}");
    let journal = b.sh("journalctl -u xvs -o cat --no-pager");
    assert!(journal.contains("xvs running"), "{journal}");

    // A bad file: `systemctl reload` fails, says why, and the director carries on.
    std::fs::write(
        root.0.join("etc/xvs/xvs.yaml"),
        format!("{good}bogus_key: 1\n"),
    )
    .unwrap();
    let refused = b.try_sh("systemctl reload xvs; echo exit=$?");
    assert!(!refused.contains("exit=0"), "{refused}");
    let why = b.sh("journalctl -u xvs -o cat --no-pager");
    assert!(
        why.contains("bogus_key"),
        "the reason in the journal: {why}"
    );
    assert_eq!(b.show("ActiveState"), "active");
    std::fs::write(root.0.join("etc/xvs/xvs.yaml"), good).unwrap();
    b.sh("systemctl reload xvs");
    let status = b.show("StatusText");
    assert!(status.contains("1 reload(s), 0 failed"), "{status}");

    // Priorities: the warning (fast_path xdp on a veth) is there at -p warning, the
    // informational lines are not; events carry fields.
    let warnings = b.sh("journalctl -u xvs -p warning -o cat --no-pager");
    assert!(warnings.contains("looks like a veth"), "{warnings}");
    assert!(!warnings.contains("xvs running"), "{warnings}");
    let reloads = b.sh("journalctl -u xvs XVS_EVENT=reload -o cat --no-pager");
    assert!(reloads.contains("reload 1 done"), "{reloads}");

    // A restart is a handover (the unit's ExecStop asks for one only while its job is a
    // restart): nothing is detached, and the next xvs recovers the connections on file.
    // (The steering program's maps are not taken over under this unit: reading the
    // attached program by id needs CAP_SYS_ADMIN, which it does not grant.)
    // The VIP's route is looked at every 10 ms across the restart (the host's `ip` in
    // the container's network namespace: a minimal Debian has none): systemd's fd store
    // keeps its device between the two processes, so it is never missing.
    let init = b.init.to_string();
    let routes = || {
        run(Command::new("sh").args([
            "-c",
            &format!("nsenter -t {init} -n ip -o route show table 100 proto 77 | grep -c 192.0.2.100 || true"),
        ]))
    };
    assert_eq!(routes().trim(), "1", "announced before the restart");
    let missing = std::thread::scope(|s| {
        let restart = s.spawn(|| b.sh("systemctl restart xvs"));
        let mut missing = 0;
        while !restart.is_finished() {
            missing += usize::from(routes().trim() != "1");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        restart.join().unwrap();
        missing
    });
    assert_eq!(missing, 0, "the route left the table during the restart");
    assert_eq!(routes().trim(), "1", "announced after the restart");
    assert_eq!(b.show("ActiveState"), "active");
    let journal = b.sh("journalctl -u xvs -o cat --no-pager");
    for want in [
        "handing over to a new xvs",
        "the last xvs handed over",
        "recovering the flows the last xvs left in",
        "left in systemd's fd store",
        "kept across the restart (systemd's fd store)",
    ] {
        assert!(journal.contains(want), "{want}:\n{journal}");
    }
    assert!(!journal.contains("detached from xvs0"), "{journal}");

    // An upgrade under traffic: the newer package installed while paced downloads and a
    // paced UDP stream run through the director, every flow carried by the workers (the
    // fast path off: a restart applies that). postinst try-restarts the unit, so the
    // running xvs hands over to the new package's, and every download finishes intact;
    // the stream's loss and longest gap are the unit's handover gap (printed: measured,
    // not asserted).
    let handovers = |j: &str| j.matches("handing over to a new xvs").count();
    let mut clients = Clients::attach(&b);
    std::fs::write(root.0.join("etc/xvs/xvs.yaml"), Clients::config()).unwrap();
    b.sh("systemctl restart xvs");
    let before = handovers(&b.sh("journalctl -u xvs -o cat --no-pager"));
    let want = clients.downloads(UPGRADE_DOWNLOADS);
    let stream = clients.udp_stream();
    std::thread::sleep(std::time::Duration::from_secs(2));
    b.sh("dpkg -i /var/tmp/xvs-newer.deb");
    assert_eq!(b.show("ActiveState"), "active");
    assert_eq!(b.sh("dpkg-query -W -f '${Version}' xvs").trim(), newer);
    let intact = clients.intact(&want);
    let udp = clients.udp_result(&stream);
    let journal = b.sh("journalctl -u xvs -o cat --no-pager");
    eprintln!(
        "upgrade to {newer}: {intact} of {UPGRADE_DOWNLOADS} downloads intact; one UDP flow: {}",
        udp.trim()
    );
    assert!(udp.contains("answered"), "the UDP stream ran: {udp}");
    assert_eq!(handovers(&journal), before + 1, "{journal}");
    assert!(!journal.contains("detached from xvs0"), "{journal}");
    assert_eq!(intact, UPGRADE_DOWNLOADS, "{journal}");

    // The watchdog: a worker stopped alone (ptrace stops one thread) stops the pings;
    // systemd restarts the director.
    let tid = b.worker_thread().expect("the worker thread xvs-q0");
    let freeze = format!(
        "import ctypes, time\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         assert libc.ptrace(0x4206, {tid}, 0, 0) == 0, ctypes.get_errno()\n\
         assert libc.ptrace(0x4207, {tid}, 0, 0) == 0, ctypes.get_errno()\ntime.sleep(8)\n"
    );
    let mut tracer = Command::new("/usr/bin/python3")
        .args(["-c", &freeze])
        .spawn()
        .expect("python3");
    assert!(b.restarted(1), "restarted after a worker stalled");
    let _ = tracer.kill();
    let _ = tracer.wait();
    let journal = b.sh("journalctl -u xvs -o cat --no-pager");
    assert!(journal.contains("stopped turning"), "{journal}");
    assert!(
        journal.to_lowercase().contains("watchdog timeout"),
        "{journal}"
    );
    for l in journal.lines().filter(|l| {
        l.contains("stopped turning") || l.contains("Watchdog") || l.contains("bogus_key")
    }) {
        eprintln!("journal: {l}");
    }

    // The control loop stopped (the whole process): the same.
    b.sh("systemctl kill -s SIGSTOP xvs");
    assert!(b.restarted(2), "restarted after the process stalled");
    // A stop is no handover: xvs detaches.
    b.sh("systemctl stop xvs");
    let journal = b.sh("journalctl -u xvs -o cat --no-pager");
    assert!(journal.contains("detached from xvs0"), "{journal}");
}
