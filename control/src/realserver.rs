//! `xvs realserver up|down`: what the seeds' real-server script does for LVS DR and TUN,
//! undoable. The VIPs go on `lo`, IPv4 as /32 and IPv6 as /128 (without DAD); ARP for
//! IPv4 VIPs is silenced (arp_ignore=1, arp_announce=2). IPv6 needs no sysctl: Linux
//! answers a neighbour solicitation only for addresses of the interface it arrived on,
//! so a VIP on lo is never claimed on the wire (`tests/tests/realserver6.rs` shows it),
//! while packets to it are still accepted on any interface. For TUN, reverse-path
//! filtering is relaxed and xvs's decap program goes on the device's tc ingress (these
//! kernels have no ipip or ip6_tunnel module): it takes IPIP to the IPv4 VIPs and
//! IPv6-in-IPv6 to the IPv6 ones (IPv6 has no reverse-path filter to relax).
//!
//! Every change is recorded in a state file (one per network namespace, in
//! `/run/xvs-realserver`, a directory only root may write: `down` runs as root and
//! writes sysctls from it) with the value it replaced, so `down` restores exactly what
//! `up` changed and nothing else; running `up` twice changes nothing the second time.
//! The file is opened without following links, and read back only as what `up` writes:
//! the three sysctls of an interface, with a number.
//!
//! FullNAT (`fullnat.rs`) takes no VIP: xvs's programs go on the device's tc ingress and
//! egress instead, so that applications see the client.

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use xvs_bpf::Decap;

use crate::sys::iface::Iface;
use crate::sys::netlink;

mod fullnat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Dr,
    Tun,
    Fullnat,
}

pub struct Request {
    pub vips: Vec<IpAddr>,
    pub mode: Mode,
    pub dev: Option<String>,
    /// FullNAT: the director's local addresses the programs trust.
    pub locals: Vec<IpAddr>,
}

/// What `up` changed, as recorded on disk.
#[derive(Default, Debug, PartialEq, Eq)]
struct State {
    /// VIPs this tool added to lo.
    vips: Vec<IpAddr>,
    /// (sysctl path under /proc/sys, value before the change).
    sysctls: Vec<(String, String)>,
    /// Device the decap program is attached to, and the VIPs it decapsulates.
    decap: Option<(String, Vec<IpAddr>)>,
    /// Device the FullNAT programs are attached to, and the local addresses they trust.
    toa: Option<(String, Vec<IpAddr>)>,
}

impl State {
    fn parse(text: &str) -> Result<State> {
        let mut s = State::default();
        for (n, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("line {}: {line:?}", n + 1);
            match f.as_slice() {
                [] => {}
                ["vip", a] => s.vips.push(a.parse().with_context(bad)?),
                ["sysctl", path, old] if known_sysctl(path) && is_number(old) => {
                    s.sysctls.push((path.to_string(), old.to_string()))
                }
                [kind @ ("decap" | "toa"), dev, addrs @ ..] if is_ifname(dev) => {
                    let v = addrs
                        .iter()
                        .map(|a| a.parse())
                        .collect::<Result<_, _>>()
                        .with_context(bad)?;
                    let slot = if *kind == "decap" {
                        &mut s.decap
                    } else {
                        &mut s.toa
                    };
                    *slot = Some((dev.to_string(), v));
                }
                _ => bail!("unreadable state {}", bad()),
            }
        }
        Ok(s)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for v in &self.vips {
            out += &format!("vip {v}\n");
        }
        for (p, old) in &self.sysctls {
            out += &format!("sysctl {p} {old}\n");
        }
        for (kind, entry) in [("decap", &self.decap), ("toa", &self.toa)] {
            if let Some((dev, addrs)) = entry {
                let v: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                out += &format!("{kind} {dev} {}\n", v.join(" "));
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.vips.is_empty()
            && self.sysctls.is_empty()
            && self.decap.is_none()
            && self.toa.is_none()
    }
}

/// An interface name as the kernel allows it: no path can be made of it.
fn is_ifname(s: &str) -> bool {
    (1..16).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn is_number(s: &str) -> bool {
    (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// One of the sysctls `up` changes (`sysctls`), of a well-formed interface.
fn known_sysctl(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("net/ipv4/conf/") else {
        return false;
    };
    match rest.split_once('/') {
        Some((dev, knob)) => {
            is_ifname(dev) && matches!(knob, "arp_ignore" | "arp_announce" | "rp_filter")
        }
        None => false,
    }
}

/// Where the state files live: root's alone.
const STATE_DIR: &str = "/run/xvs-realserver";

/// The state file of this network namespace (they share /run).
fn state_path() -> Result<PathBuf> {
    let ns =
        fs::read_link("/proc/self/ns/net").context("reading this process's network namespace")?;
    let id: String = ns
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Ok(PathBuf::from(format!("{STATE_DIR}/net{id}.state")))
}

/// The state directory, made if missing (0700), and refused unless it is a real
/// directory that only root can write.
fn state_dir() -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match fs::DirBuilder::new().mode(0o700).create(STATE_DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {STATE_DIR}")),
    }
    let m = fs::symlink_metadata(STATE_DIR).with_context(|| format!("reading {STATE_DIR}"))?;
    if !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        bail!("{STATE_DIR} must be a directory of root's that no one else can write; remove it and run again");
    }
    Ok(())
}

fn open_options() -> fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = fs::OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600);
    o
}

fn load() -> Result<State> {
    use std::io::Read;
    state_dir()?;
    let path = state_path()?;
    let mut text = String::new();
    match open_options().read(true).open(&path) {
        Ok(mut f) => f
            .read_to_string(&mut text)
            .with_context(|| format!("reading {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    State::parse(&text).with_context(|| format!("{}", path.display()))
}

fn save(s: &State) -> Result<()> {
    use std::io::Write;
    state_dir()?;
    let path = state_path()?;
    if s.is_empty() {
        let _ = fs::remove_file(&path);
        return Ok(());
    }
    open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(s.render().as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// A VIP's prefix on lo: the address alone.
fn host_prefix(vip: IpAddr) -> u8 {
    if vip.is_ipv4() {
        32
    } else {
        128
    }
}

fn sysctl_path(dev: &str, knob: &str) -> String {
    format!("net/ipv4/conf/{dev}/{knob}")
}

fn read_sysctl(path: &str) -> Result<String> {
    Ok(fs::read_to_string(format!("/proc/sys/{path}"))
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    fs::write(format!("/proc/sys/{path}"), value).with_context(|| format!("writing {path}"))
}

/// The sysctls a mode needs, as (path, value); `ipv4` when an IPv4 VIP is among them
/// (ARP is IPv4's).
fn sysctls(mode: Mode, dev: Option<&str>, ipv4: bool) -> Vec<(String, &'static str)> {
    let mut ifs = vec!["all", "lo"];
    ifs.extend(dev);
    let mut v = Vec::new();
    for i in ifs.iter().filter(|_| ipv4) {
        v.push((sysctl_path(i, "arp_ignore"), "1"));
        v.push((sysctl_path(i, "arp_announce"), "2"));
    }
    if mode == Mode::Tun && ipv4 {
        // The kernel uses the larger of `all` and the device's value: both go to 0.
        for i in &ifs {
            v.push((sysctl_path(i, "rp_filter"), "0"));
        }
    }
    v
}

fn lookup_dev(dev: &Option<String>) -> Result<Option<Iface>> {
    match dev {
        None => Ok(None),
        Some(name) => match Iface::lookup(name)? {
            Some(i) => Ok(Some(i)),
            None => bail!(
                "device {name:?} does not exist; nothing was changed (`ip link` lists the devices)"
            ),
        },
    }
}

/// Applies `req`; returns a line per change made.
pub fn up(req: &Request) -> Result<Vec<String>> {
    let dev = lookup_dev(&req.dev)?;
    if req.mode == Mode::Fullnat {
        let Some(dev) = dev else {
            bail!("--mode fullnat needs --dev: the device the director's requests arrive on and the answers leave by; nothing was changed");
        };
        if !req.vips.is_empty() {
            bail!("--mode fullnat takes no --vip: a FullNAT real server answers the director's local addresses; nothing was changed");
        }
        return fullnat::up(&mut load()?, &dev, &req.locals);
    }
    if !req.locals.is_empty() {
        bail!("--local is for --mode fullnat; nothing was changed");
    }
    if req.mode == Mode::Tun && dev.is_none() {
        bail!(
            "--mode tun needs --dev: the device tunnelled packets arrive on; nothing was changed"
        );
    }
    if req.vips.is_empty() {
        bail!("no VIP given; nothing was changed");
    }
    let lo = Iface::lookup("lo")?.context("no loopback device")?;
    let mut state = load()?;
    let mut done = Vec::new();

    for &vip in &req.vips {
        let len = host_prefix(vip);
        if netlink::add_address(lo.ifindex, vip, len)
            .with_context(|| format!("adding {vip}/{len} to lo"))?
        {
            state.vips.push(vip);
            done.push(format!("added {vip}/{len} to lo"));
        }
        save(&state)?;
    }
    let ipv4 = req.vips.iter().any(IpAddr::is_ipv4);
    for (path, value) in sysctls(req.mode, req.dev.as_deref(), ipv4) {
        let old = read_sysctl(&path)?;
        if old != value {
            write_sysctl(&path, value)?;
            if !state.sysctls.iter().any(|(p, _)| *p == path) {
                state.sysctls.push((path.clone(), old.clone()));
            }
            done.push(format!(
                "set {} = {value} (was {old})",
                path.replace('/', ".")
            ));
            save(&state)?;
        }
    }
    if let (Mode::Tun, Some(dev)) = (req.mode, &dev) {
        let mut vips = match &state.decap {
            Some((d, v)) if *d == dev.name => v.clone(),
            _ => Vec::new(),
        };
        let decap = Decap::load()?;
        let before = vips.len();
        for &v in &req.vips {
            if !vips.contains(&v) {
                vips.push(v);
            }
        }
        if vips.len() != before || !decap.attached(dev.ifindex as i32) {
            decap.add_vips(&vips)?;
            decap.attach(dev.ifindex as i32)?;
            let list: Vec<String> = vips.iter().map(|v| v.to_string()).collect();
            done.push(format!(
                "attached the tunnel decap program to {} ingress for {}",
                dev.name,
                list.join(", ")
            ));
            state.decap = Some((dev.name.clone(), vips));
            save(&state)?;
        }
    }
    Ok(done)
}

/// The devices whose sysctls `up` changed (besides `all` and `lo`).
fn recorded_devs(state: &State) -> Vec<&str> {
    let mut devs: Vec<&str> = state
        .sysctls
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("net/ipv4/conf/")?.split('/').next())
        .filter(|d| *d != "all" && *d != "lo")
        .collect();
    devs.sort_unstable();
    devs.dedup();
    devs
}

/// `down` takes `up`'s `--mode` and `--dev` so that the same line undoes it; given, they
/// must agree with what `up` recorded, or nothing is changed.
fn check_down_args(state: &State, mode: Option<Mode>, dev: Option<&str>) -> Result<()> {
    if matches!(mode, Some(Mode::Tun | Mode::Fullnat)) && dev.is_none() {
        bail!("--mode tun and --mode fullnat need --dev, as for `up`; nothing was changed");
    }
    if let (Some(Mode::Fullnat), Some(dev)) = (mode, dev) {
        return match &state.toa {
            Some((d, _)) if d != dev => {
                bail!("`up` attached the FullNAT programs to {d}, not {dev}; nothing was changed")
            }
            _ => Ok(()),
        };
    }
    let Some(dev) = dev else { return Ok(()) };
    let recorded = recorded_devs(state);
    let decap = state.decap.as_ref().map(|(d, _)| d.as_str());
    if let Some(other) = decap.filter(|d| *d != dev) {
        bail!("`up` attached the decap program to {other}, not {dev}; nothing was changed (`down` without --dev undoes what `up` recorded)");
    }
    if let Some(other) = recorded.iter().find(|d| **d != dev) {
        bail!("`up` changed the sysctls of {other}, not {dev}; nothing was changed (`down` without --dev undoes what `up` recorded)");
    }
    if mode == Some(Mode::Dr) && decap.is_some() {
        bail!("`up` set {dev} up for TUN (its decap program is attached), not DR; nothing was changed");
    }
    Ok(())
}

/// Undoes what `up` recorded for `vips` (all of them if empty); once no VIP is left, the
/// sysctls go back to their old values too. `mode` and `dev`, when given, are checked
/// against the record.
pub fn down(vips: &[IpAddr], mode: Option<Mode>, dev: Option<&str>) -> Result<Vec<String>> {
    let mut state = load()?;
    check_down_args(&state, mode, dev)?;
    if mode == Some(Mode::Fullnat) {
        return fullnat::down(&mut state);
    }
    let mut done = Vec::new();
    if mode.is_none() && vips.is_empty() {
        done.extend(fullnat::down(&mut state)?);
    }
    let wanted = |v: &IpAddr| vips.is_empty() || vips.contains(v);
    let lo = Iface::lookup("lo")?.context("no loopback device")?;
    for vip in state.vips.clone().iter().filter(|v| wanted(v)) {
        let len = host_prefix(*vip);
        if netlink::del_address(lo.ifindex, *vip, len)
            .with_context(|| format!("removing {vip}/{len} from lo"))?
        {
            done.push(format!("removed {vip}/{len} from lo"));
        }
        state.vips.retain(|v| v != vip);
        save(&state)?;
    }
    if let Some((dev, dvips)) = state.decap.clone() {
        let left: Vec<IpAddr> = dvips.iter().copied().filter(|v| !wanted(v)).collect();
        let decap = Decap::load()?;
        match Iface::lookup(&dev)? {
            Some(i) if left.is_empty() => {
                if decap.detach(i.ifindex as i32)? {
                    done.push(format!("detached the tunnel decap program from {dev}"));
                }
            }
            Some(i) => {
                decap.add_vips(&left)?;
                decap.attach(i.ifindex as i32)?;
                done.push(format!(
                    "the tunnel decap program on {dev} now serves {} VIP(s)",
                    left.len()
                ));
            }
            None => done.push(format!(
                "device {dev} is gone, and its decap program with it"
            )),
        }
        state.decap = (!left.is_empty()).then_some((dev, left));
        save(&state)?;
    }
    if state.vips.is_empty() && state.decap.is_none() {
        for (path, old) in std::mem::take(&mut state.sysctls) {
            write_sysctl(&path, &old)?;
            done.push(format!("restored {} = {old}", path.replace('/', ".")));
        }
        save(&state)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn state_round_trip_and_bad_input() {
        let s = State {
            vips: vec![
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
                "2001:db8::100".parse().unwrap(),
            ],
            sysctls: vec![("net/ipv4/conf/all/arp_ignore".into(), "0".into())],
            decap: Some((
                "eth0".into(),
                vec![
                    Ipv4Addr::new(10, 0, 0, 100).into(),
                    "2001:db8::100".parse().unwrap(),
                ],
            )),
            toa: Some(("eth1".into(), vec!["192.0.2.201".parse().unwrap()])),
        };
        assert_eq!(State::parse(&s.render()).unwrap(), s);
        assert!(State::parse("vip not-an-address\n").is_err());
        assert!(State::parse("something else\n").is_err());
        assert!(State::parse("").unwrap().is_empty());
    }

    /// `down` runs as root and writes what the file says: only the sysctls `up` writes,
    /// of a well-formed interface, with a number, are read back.
    #[test]
    fn a_state_file_cannot_name_another_sysctl_or_escape_proc_sys() {
        for bad in [
            "sysctl net/ipv4/conf/../../../../etc/passwd 0\n",
            "sysctl net/ipv4/conf/eth0/../../ip_forward 1\n",
            "sysctl kernel/core_pattern |/tmp/x\n",
            "sysctl net/ipv4/conf/eth0/forwarding 1\n",
            "sysctl net/ipv4/conf/eth0/arp_ignore 1;reboot\n",
            "sysctl net/ipv4/conf/../arp_ignore 1\n",
            "decap ../eth0 10.0.0.100\n",
            "toa ../eth0 10.0.0.201\n",
            "toa eth0 not-an-address\n",
        ] {
            assert!(State::parse(bad).is_err(), "{bad:?}");
        }
        for mode in [Mode::Dr, Mode::Tun] {
            for (path, value) in sysctls(mode, Some("eth0"), true) {
                let line = format!("sysctl {path} {value}\n");
                assert!(State::parse(&line).is_ok(), "{line:?}");
            }
        }
    }

    #[test]
    fn down_takes_ups_arguments_and_checks_them_against_the_record() {
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        let tun = State {
            vips: vec![IpAddr::V4(vip)],
            sysctls: sysctls(Mode::Tun, Some("eth0"), true)
                .into_iter()
                .map(|(p, _)| (p, "0".into()))
                .collect(),
            decap: Some(("eth0".into(), vec![IpAddr::V4(vip)])),
            toa: None,
        };
        assert!(check_down_args(&tun, None, None).is_ok());
        assert!(check_down_args(&tun, Some(Mode::Tun), Some("eth0")).is_ok());
        let e = check_down_args(&tun, Some(Mode::Tun), Some("eth1")).unwrap_err();
        assert!(e.to_string().contains("eth0, not eth1"), "{e}");
        assert!(check_down_args(&tun, Some(Mode::Tun), None).is_err());
        assert!(check_down_args(&tun, Some(Mode::Dr), Some("eth0")).is_err());
        let dr = State {
            vips: vec![IpAddr::V4(vip)],
            sysctls: sysctls(Mode::Dr, Some("eth0"), true)
                .into_iter()
                .map(|(p, _)| (p, "0".into()))
                .collect(),
            decap: None,
            toa: None,
        };
        assert_eq!(recorded_devs(&dr), vec!["eth0"]);
        assert!(check_down_args(&dr, Some(Mode::Dr), Some("eth0")).is_ok());
        assert!(check_down_args(&dr, Some(Mode::Dr), None).is_ok());
        assert!(check_down_args(&dr, Some(Mode::Dr), Some("eth9")).is_err());
    }

    #[test]
    fn tun_relaxes_rp_filter_on_all_and_the_device() {
        assert!(
            sysctls(Mode::Dr, None, false).is_empty(),
            "IPv6 VIPs alone need no ARP sysctl"
        );
        let dr = sysctls(Mode::Dr, None, true);
        assert!(dr.iter().all(|(p, _)| !p.contains("rp_filter")));
        assert!(dr.contains(&("net/ipv4/conf/all/arp_ignore".into(), "1")));
        let tun = sysctls(Mode::Tun, Some("eth0"), true);
        assert!(tun.contains(&("net/ipv4/conf/eth0/rp_filter".into(), "0")));
        assert!(tun.contains(&("net/ipv4/conf/all/rp_filter".into(), "0")));
    }
}
