//! This process's capabilities and locked-memory limit, as the kernel reports them in
//! /proc/self (no system call needed).

use std::fmt;

/// The capabilities xvs may need, with the kernel's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    NetBindService = 10,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    SysAdmin = 21,
    SysNice = 23,
    Perfmon = 38,
    Bpf = 39,
}

impl Cap {
    /// Every one xvs can need (the tests' full set).
    #[cfg(test)]
    pub const NEEDED: [Cap; 7] = [
        Cap::NetAdmin,
        Cap::NetRaw,
        Cap::Bpf,
        Cap::Perfmon,
        Cap::IpcLock,
        Cap::NetBindService,
        Cap::SysNice,
    ];

    /// As capabilities(7), setpriv and systemd name it.
    pub fn name(self) -> &'static str {
        match self {
            Cap::NetBindService => "CAP_NET_BIND_SERVICE",
            Cap::NetAdmin => "CAP_NET_ADMIN",
            Cap::NetRaw => "CAP_NET_RAW",
            Cap::IpcLock => "CAP_IPC_LOCK",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
            Cap::SysNice => "CAP_SYS_NICE",
            Cap::Perfmon => "CAP_PERFMON",
            Cap::Bpf => "CAP_BPF",
        }
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `" (needs CAP_X)"` when `e` is the kernel refusing for want of `cap`, else nothing:
/// for the errors of calls the privilege check cannot foresee, or when it is off.
pub fn hint(e: &std::io::Error, cap: Cap) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(" (needs {cap})"),
        _ => String::new(),
    }
}

/// A capability set (the kernel's bit mask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps(pub u64);

impl Caps {
    /// Whether the kernel grants what `cap` guards: CAP_SYS_ADMIN still stands in for
    /// CAP_BPF and CAP_PERFMON, as it did before they existed.
    pub fn allows(self, cap: Cap) -> bool {
        let has = |c: Cap| self.0 & (1u64 << c as u32) != 0;
        has(cap) || (matches!(cap, Cap::Bpf | Cap::Perfmon) && has(Cap::SysAdmin))
    }

    /// From the `CapEff:` line of /proc/PID/status.
    pub fn from_status(status: &str) -> Option<Caps> {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))?
            .trim();
        u64::from_str_radix(hex, 16).ok().map(Caps)
    }

    /// This process's effective set.
    pub fn effective() -> std::io::Result<Caps> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        Caps::from_status(&status).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no CapEff in /proc/self/status",
            )
        })
    }
}

/// The soft RLIMIT_MEMLOCK in bytes (None: unlimited), from the `Max locked memory` line
/// of /proc/PID/limits.
pub fn memlock_limit_from(limits: &str) -> Option<Option<u64>> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))?;
    let soft = line["Max locked memory".len()..]
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// This process's soft RLIMIT_MEMLOCK (None: unlimited).
pub fn memlock_limit() -> std::io::Result<Option<u64>> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    memlock_limit_from(&limits).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no Max locked memory in /proc/self/limits",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_lines() {
        let status = "Name:\txvs\nCapInh:\t0000000000000000\nCapEff:\t000000c000003000\n";
        let c = Caps::from_status(status).unwrap();
        assert!(c.allows(Cap::NetAdmin) && c.allows(Cap::NetRaw));
        assert!(c.allows(Cap::Bpf) && c.allows(Cap::Perfmon));
        assert!(!c.allows(Cap::IpcLock) && !c.allows(Cap::NetBindService));
        // Root's full set, and CAP_SYS_ADMIN alone for BPF.
        assert!(Cap::NEEDED
            .iter()
            .all(|&n| Caps(0x000001ffffffffff).allows(n)));
        assert!(Caps(1 << 21).allows(Cap::Bpf) && !Caps(1 << 21).allows(Cap::NetRaw));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         8388608              8388608              bytes\n";
        assert_eq!(memlock_limit_from(limits), Some(Some(8 << 20)));
        let unl = "Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(memlock_limit_from(unl), Some(None));
        assert_eq!(Caps::from_status("nothing"), None);
    }
}
