//! ipvsadm's command lines (`ipvsadm-save -n` output, or `ipvsadm -A ...` typed by hand)
//! applied in order to a table of services, as the kernel would hold it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::raw::Granularity;

/// How ipvsadm names a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKey {
    Tcp(IpAddr, u16),
    Udp(IpAddr, u16),
    Fwmark(u32),
}

/// `-g`, `-i`, `-m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Dr,
    Tun,
    Nat,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dr => "dr",
            Method::Tun => "tun",
            Method::Nat => "nat",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub line: usize,
    pub addr: IpAddr,
    /// None (or 0): the service's port.
    pub port: Option<u16>,
    pub method: Method,
    pub weight: u32,
    /// `-x`, `-y`: connection thresholds (0: none).
    pub upper: u32,
    pub lower: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub line: usize,
    pub key: ServiceKey,
    /// ipvsadm's default is wlc.
    pub scheduler: String,
    /// `-p [timeout]`: seconds.
    pub persistent: Option<u32>,
    /// `-M`: a netmask (IPv4) or a prefix length (`-6` services).
    pub netmask: Option<Granularity>,
    /// `-b`, as written.
    pub flags: Vec<String>,
    pub ops: bool,
    pub servers: Vec<Server>,
}

/// Everything the lines set up.
#[derive(Debug, Default)]
pub struct Table {
    pub services: Vec<Service>,
    /// `--set tcp tcpfin udp` (0: unchanged), and its line.
    pub timeouts: Option<(usize, [u32; 3])>,
}

/// The options of one line, before they are applied.
#[derive(Default)]
struct Line {
    command: Option<&'static str>,
    key: Option<ServiceKey>,
    scheduler: Option<String>,
    persistent: Option<u32>,
    netmask: Option<Granularity>,
    flags: Option<Vec<String>>,
    ops: bool,
    server: Option<(IpAddr, Option<u16>)>,
    method: Option<Method>,
    weight: Option<u32>,
    upper: Option<u32>,
    lower: Option<u32>,
    set: Option<[u32; 3]>,
}

/// ipvsadm's default persistence timeout.
const PERSISTENT_DEFAULT: u32 = 300;

/// `ADDR[:PORT]`, IPv6 as ipvsadm writes it: `[ADDR]:PORT`, or a bare address.
fn addr_port(word: &str) -> Result<(IpAddr, Option<u16>), String> {
    let numeric = "(save the rules with `ipvsadm-save -n`, numeric)";
    let (addr, p) = if let Some(rest) = word.strip_prefix('[') {
        let (a, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{word}`: no `]` after the IPv6 address"))?;
        let a = a
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{a}` is no IPv6 address {numeric}"))?;
        let p = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(':')
                    .ok_or_else(|| format!("`{word}`: `:PORT` after `]`"))?,
            ),
        };
        (IpAddr::V6(a), p)
    } else if let Ok(a) = word.parse::<Ipv6Addr>() {
        (IpAddr::V6(a), None)
    } else {
        let (a, p) = match word.rsplit_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (word, None),
        };
        let a = a
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("`{a}` is no IPv4 address {numeric}"))?;
        (IpAddr::V4(a), p)
    };
    let port = match p {
        None => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| {
            format!("`{p}` is no port number (save the rules with `ipvsadm-save -n`, numeric)")
        })?),
    };
    Ok((addr, port))
}

fn number(opt: &str, word: Option<&str>) -> Result<u32, String> {
    let w = word.ok_or_else(|| format!("{opt} needs a value"))?;
    w.parse()
        .map_err(|_| format!("{opt} {w}: not a whole number"))
}

/// Splits `--opt=value` so both spellings read alike.
fn words(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .flat_map(|w| match w.split_once('=') {
            Some((o, v)) if o.starts_with("--") => vec![o, v],
            _ => vec![w],
        })
        .collect()
}

/// The commands, by their two spellings, as the short one.
const COMMANDS: [(&str, &str, &str); 8] = [
    ("-A", "--add-service", "-A"),
    ("-E", "--edit-service", "-E"),
    ("-D", "--delete-service", "-D"),
    ("-a", "--add-server", "-a"),
    ("-e", "--edit-server", "-e"),
    ("-d", "--delete-server", "-d"),
    ("-C", "--clear", "-C"),
    ("--set", "--set", "--set"),
];

/// The forwarding methods, by their two spellings.
const METHODS: [(&str, &str, Method); 3] = [
    ("-g", "--gatewaying", Method::Dr),
    ("-i", "--ipip", Method::Tun),
    ("-m", "--masquerading", Method::Nat),
];

/// What `opt` stands for in `table`, by either spelling.
fn spelled<T: Copy>(table: &[(&str, &str, T)], opt: &str) -> Option<T> {
    table
        .iter()
        .find(|(short, long, _)| opt == *short || opt == *long)
        .map(|(_, _, v)| *v)
}

/// One line's options; `warn` collects what is read but not converted.
fn parse_line(text: &str, warn: &mut Vec<String>) -> Result<Line, String> {
    let w = words(text);
    let mut l = Line::default();
    let mut i = 0;
    while i < w.len() {
        i += 1 + option(&mut l, w[i], &w[i + 1..], warn)?;
    }
    Ok(l)
}

/// Reads option `opt` into `l`, `after` being the words after it; how many of them it
/// took as its values.
fn option(
    l: &mut Line,
    opt: &str,
    after: &[&str],
    warn: &mut Vec<String>,
) -> Result<usize, String> {
    let next = after.first().copied();
    if let Some(c) = spelled(&COMMANDS, opt) {
        return command(l, c, after);
    }
    if let Some(took) = service_option(l, opt, next)? {
        return Ok(took);
    }
    if let Some(took) = server_option(l, opt, next)? {
        return Ok(took);
    }
    unconverted(opt, next, warn).ok_or_else(|| format!("`{opt}` is no ipvsadm option xvs knows"))
}

fn set_command(l: &mut Line, c: &'static str) -> Result<(), String> {
    match l.command {
        Some(o) if o != c => Err(format!("two commands on one line ({o} and {c})")),
        _ => {
            l.command = Some(c);
            Ok(())
        }
    }
}

/// A command, and `--set`'s three timeouts after it; how many words they took.
fn command(l: &mut Line, c: &'static str, after: &[&str]) -> Result<usize, String> {
    set_command(l, c)?;
    if c != "--set" {
        return Ok(0);
    }
    let mut t = [0; 3];
    for (k, slot) in t.iter_mut().enumerate() {
        *slot = number("--set", after.get(k).copied())?;
    }
    l.set = Some(t);
    Ok(3)
}

/// A service's option: `Some(words it took)`, `None` when `opt` is none of them.
fn service_option(l: &mut Line, opt: &str, next: Option<&str>) -> Result<Option<usize>, String> {
    match opt {
        "-t" | "--tcp-service" | "-u" | "--udp-service" => l.key = Some(service_key(opt, next)?),
        "-f" | "--fwmark-service" => l.key = Some(fwmark_key(next)?),
        "--sctp-service" => {
            return Err("SCTP services: xvs balances TCP and UDP (not converted)".into())
        }
        "-s" | "--scheduler" => l.scheduler = Some(next.ok_or("-s needs a scheduler")?.to_string()),
        "-p" | "--persistent" => return Ok(Some(persistent(l, next))),
        "-M" | "--netmask" => l.netmask = Some(netmask(next)?),
        "-b" | "--sched-flags" => l.flags = Some(sched_flags(next)?),
        "-o" | "--ops" => {
            l.ops = true;
            return Ok(Some(0));
        }
        _ => return Ok(None),
    }
    Ok(Some(1))
}

/// `-t VIP:PORT` or `-u VIP:PORT` (`opt` says which).
fn service_key(opt: &str, next: Option<&str>) -> Result<ServiceKey, String> {
    let (a, p) = addr_port(next.ok_or_else(|| format!("{opt} needs VIP:PORT"))?)?;
    let p = p.unwrap_or(0);
    Ok(if opt.contains('t') {
        ServiceKey::Tcp(a, p)
    } else {
        ServiceKey::Udp(a, p)
    })
}

fn fwmark_key(next: Option<&str>) -> Result<ServiceKey, String> {
    let m = next.ok_or("-f needs a mark")?;
    let mark = parse_mark(m).ok_or_else(|| format!("-f {m}: not a mark"))?;
    Ok(ServiceKey::Fwmark(mark))
}

/// `-p [timeout]`; how many words it took.
fn persistent(l: &mut Line, next: Option<&str>) -> usize {
    // The timeout is optional: the next word is it when it is a number.
    match next.and_then(|n| n.parse::<u32>().ok()) {
        Some(t) => {
            l.persistent = Some(t);
            1
        }
        None => {
            l.persistent = Some(PERSISTENT_DEFAULT);
            0
        }
    }
}

fn netmask(next: Option<&str>) -> Result<Granularity, String> {
    let m = next.ok_or("-M needs a netmask")?;
    match (m.parse::<Ipv4Addr>(), m.parse::<u8>()) {
        (Ok(mask), _) => Ok(Granularity::Netmask(mask)),
        // `-6` services take a prefix length.
        (_, Ok(len)) => Ok(Granularity::Prefix(i64::from(len))),
        _ => Err(format!(
            "-M {m}: neither an IPv4 netmask nor a prefix length"
        )),
    }
}

fn sched_flags(next: Option<&str>) -> Result<Vec<String>, String> {
    let f = next.ok_or("-b needs flags")?;
    Ok(f.split(',').map(str::to_string).collect())
}

/// A real server's option: `Some(words it took)`, `None` when `opt` is none of them.
fn server_option(l: &mut Line, opt: &str, next: Option<&str>) -> Result<Option<usize>, String> {
    match opt {
        "-r" | "--real-server" => {
            l.server = Some(addr_port(next.ok_or("-r needs RIP[:PORT]")?)?);
        }
        "-w" | "--weight" => l.weight = Some(number(opt, next)?),
        "-x" | "--u-threshold" => l.upper = Some(number(opt, next)?),
        "-y" | "--l-threshold" => l.lower = Some(number(opt, next)?),
        _ => {
            let Some(m) = spelled(&METHODS, opt) else {
                return Ok(None);
            };
            l.method = Some(m);
            return Ok(Some(0));
        }
    }
    Ok(Some(1))
}

/// Options read but not converted (a warning each, or nothing to say): `Some(words they
/// took)`, `None` when `opt` is none of them.
fn unconverted(opt: &str, next: Option<&str>, warn: &mut Vec<String>) -> Option<usize> {
    match opt {
        "--pe" | "--tun-type" | "--tun-port" => {
            warn.push(format!(
                "`{opt} {}` not converted: xvs tunnels plain IPIP, with no persistence engine",
                next.unwrap_or("")
            ));
            Some(1)
        }
        "--tun-nocsum" | "--tun-csum" | "--tun-remcsum" => {
            warn.push(format!("`{opt}` not converted: xvs tunnels plain IPIP"));
            Some(0)
        }
        // The family is the addresses' (`[...]` for IPv6).
        "-n" | "--numeric" | "-6" | "--ipv6" => Some(0),
        _ => None,
    }
}

/// A mark as iptables and ipvsadm write it: decimal or 0x hex.
pub fn parse_mark(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Table {
    fn service(&mut self, key: ServiceKey) -> Option<&mut Service> {
        self.services.iter_mut().find(|s| s.key == key)
    }

    /// Applies one line (1-based `n`); an error names what could not be applied.
    fn apply(&mut self, n: usize, l: Line) -> Result<(), String> {
        let cmd = l
            .command
            .ok_or("no command (-A, -a, -E, -e, -D, -d, -C, --set)")?;
        if cmd == "-C" {
            self.services.clear();
            return Ok(());
        }
        if cmd == "--set" {
            self.timeouts = l.set.map(|t| (n, t));
            return Ok(());
        }
        let key = l.key.ok_or_else(|| format!("{cmd} needs -t, -u or -f"))?;
        match cmd {
            "-A" => self.add_service(n, key, l),
            "-E" => self.edit_service(key, l),
            "-D" => self.delete_service(key),
            "-a" | "-e" | "-d" => self.server_command(n, cmd, key, l),
            _ => unreachable!("every command is handled above"),
        }
    }

    fn add_service(&mut self, n: usize, key: ServiceKey, l: Line) -> Result<(), String> {
        if self.service(key).is_some() {
            return Err("the service exists already (ipvsadm refuses it too)".into());
        }
        self.services.push(Service {
            line: n,
            key,
            scheduler: l.scheduler.unwrap_or_else(|| "wlc".into()),
            persistent: l.persistent,
            netmask: l.netmask,
            flags: l.flags.unwrap_or_default(),
            ops: l.ops,
            servers: Vec::new(),
        });
        Ok(())
    }

    fn edit_service(&mut self, key: ServiceKey, l: Line) -> Result<(), String> {
        let s = self.service(key).ok_or("no such service to edit")?;
        if let Some(sc) = l.scheduler {
            s.scheduler = sc;
        }
        s.persistent = l.persistent;
        s.netmask = l.netmask.or(s.netmask);
        if let Some(f) = l.flags {
            s.flags = f;
        }
        s.ops = l.ops;
        Ok(())
    }

    fn delete_service(&mut self, key: ServiceKey) -> Result<(), String> {
        let before = self.services.len();
        self.services.retain(|s| s.key != key);
        if before == self.services.len() {
            return Err("no such service to delete".into());
        }
        Ok(())
    }

    /// `-a`, `-e` or `-d` (`cmd`): a real server of service `key` added, edited, deleted.
    fn server_command(
        &mut self,
        n: usize,
        cmd: &str,
        key: ServiceKey,
        l: Line,
    ) -> Result<(), String> {
        let (addr, port) = l
            .server
            .ok_or_else(|| format!("{cmd} needs -r RIP[:PORT]"))?;
        let s = self
            .service(key)
            .ok_or("no such service: its -A line must come first")?;
        // The service's own port, as ipvsadm-save writes it, is no mapping.
        let own = match key {
            ServiceKey::Tcp(_, p) | ServiceKey::Udp(_, p) => Some(p),
            ServiceKey::Fwmark(_) => None,
        };
        let port = port.filter(|&p| p != 0 && Some(p) != own);
        let at = s
            .servers
            .iter()
            .position(|r| r.addr == addr && r.port == port);
        match (cmd, at) {
            ("-a", Some(_)) => return Err("the real server exists already".into()),
            ("-a", None) => s.servers.push(Server {
                line: n,
                addr,
                port,
                method: l.method.unwrap_or(Method::Dr),
                weight: l.weight.unwrap_or(1),
                upper: l.upper.unwrap_or(0),
                lower: l.lower.unwrap_or(0),
            }),
            ("-e", Some(i)) => edit_server(&mut s.servers[i], &l),
            ("-d", Some(i)) => {
                s.servers.remove(i);
            }
            _ => return Err("no such real server".into()),
        }
        Ok(())
    }
}

/// `-e`: what the line gives replaces what the real server had.
fn edit_server(r: &mut Server, l: &Line) {
    r.method = l.method.unwrap_or(r.method);
    r.weight = l.weight.unwrap_or(r.weight);
    r.upper = l.upper.unwrap_or(r.upper);
    r.lower = l.lower.unwrap_or(r.lower);
}

/// Reads the lines in order into a table; each line that cannot be applied, or that is
/// applied in part, gives a `line N: ...` warning.
pub fn read(text: &str) -> (Table, Vec<String>) {
    let mut table = Table::default();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        let text = text.strip_prefix("ipvsadm ").unwrap_or(text).trim();
        if text.is_empty() || text == "ipvsadm" {
            continue;
        }
        let mut notes = Vec::new();
        let result = parse_line(text, &mut notes).and_then(|l| table.apply(n, l));
        for note in notes {
            warnings.push(format!("line {n}: {note}"));
        }
        if let Err(e) = result {
            warnings.push(format!("line {n}: `{text}`: {e}: not converted"));
        }
    }
    (table, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn save_output_and_typed_lines_read_alike() {
        let saved = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.2:80 -g -w 1\n";
        let typed = "ipvsadm -A -t 10.0.0.100:80 -s rr\nipvsadm --add-server --tcp-service=10.0.0.100:80 --real-server 10.0.0.2 --gatewaying\n";
        let (s, w) = read(saved);
        let (t, v) = read(typed);
        assert!(w.is_empty() && v.is_empty(), "{w:?} {v:?}");
        assert_eq!(s.services, t.services);
        let svc = &s.services[0];
        assert_eq!(svc.key, ServiceKey::Tcp(a("10.0.0.100"), 80));
        assert_eq!(svc.servers[0].port, None);
        assert_eq!(svc.servers[0].method, Method::Dr);
    }

    #[test]
    fn defaults_are_ipvsadms() {
        let (t, w) = read("-A -u 10.0.0.1:53 -p\n-a -u 10.0.0.1:53 -r 10.0.0.5:5353 -m\n");
        assert!(w.is_empty(), "{w:?}");
        let s = &t.services[0];
        assert_eq!(s.scheduler, "wlc");
        assert_eq!(s.persistent, Some(300));
        assert_eq!(s.servers[0].weight, 1);
        assert_eq!(s.servers[0].port, Some(5353));
        let (t, _) = read("-A -f 0x63 -s sh -b sh-port -p 60 -M 255.255.255.0\n");
        let s = &t.services[0];
        assert_eq!(s.key, ServiceKey::Fwmark(99));
        assert_eq!(s.persistent, Some(60));
        assert_eq!(
            s.netmask,
            Some(Granularity::Netmask(Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(s.flags, vec!["sh-port"]);
    }

    /// `ipvsadm-save -n` of `-6` services: bracketed addresses, `-M` a prefix length.
    #[test]
    fn ipv6_services_read_as_ipvsadm_writes_them() {
        let text = "-A -t [2001:db8::100]:80 -s wrr -p 120 -M 64\n\
                    -a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 3\n\
                    -a -t [2001:db8::100]:80 -r 2001:db8::12 -i\n\
                    ipvsadm -A -6 -u [2001:db8::100]:53\n";
        let (t, w) = read(text);
        assert!(w.is_empty(), "{w:?}");
        let s = &t.services[0];
        assert_eq!(s.key, ServiceKey::Tcp(a("2001:db8::100"), 80));
        assert_eq!(s.netmask, Some(Granularity::Prefix(64)));
        assert_eq!(
            s.servers
                .iter()
                .map(|r| (r.addr, r.port, r.weight))
                .collect::<Vec<_>>(),
            [(a("2001:db8::11"), None, 3), (a("2001:db8::12"), None, 1)]
        );
        assert_eq!(t.services[1].key, ServiceKey::Udp(a("2001:db8::100"), 53));
        let (_, w) = read("-A -t [2001:db8::zz]:80\n-A -t [2001:db8::1]x\n");
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn edits_deletes_clears_and_timeouts_apply_in_order() {
        let text = "-A -t 1.1.1.1:80\n-a -t 1.1.1.1:80 -r 2.2.2.2 -w 5\n-a -t 1.1.1.1:80 -r 2.2.2.3\n-e -t 1.1.1.1:80 -r 2.2.2.2 -w 7\n-d -t 1.1.1.1:80 -r 2.2.2.3\n-E -t 1.1.1.1:80 -s rr\n-A -t 1.1.1.2:80\n-D -t 1.1.1.2:80\n--set 900 120 300\n";
        let (t, w) = read(text);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.services.len(), 1);
        assert_eq!(t.services[0].scheduler, "rr");
        assert_eq!(t.services[0].servers.len(), 1);
        assert_eq!(t.services[0].servers[0].weight, 7);
        assert_eq!(t.timeouts, Some((9, [900, 120, 300])));
        let (t, _) = read("-A -t 1.1.1.1:80\n-C\n");
        assert!(t.services.is_empty());
    }

    #[test]
    fn what_cannot_be_applied_is_named_with_its_line() {
        let text = "-A -t www.example.com:http\n-a -t 1.1.1.1:80 -r 2.2.2.2\n-A -t [::1:80\n-A -t 1.1.1.1:80 --pe sip\n-A --sctp-service 1.1.1.1:80\n-A -t 1.1.1.9:80 --bogus\n-A -t 1.1.1.1:80\n";
        let (t, w) = read(text);
        assert_eq!(t.services.len(), 1, "{w:?}");
        let joined = w.join("\n");
        for needle in [
            "line 1: ",
            "ipvsadm-save -n",
            "line 2: ",
            "its -A line must come first",
            "line 3: ",
            "IPv6",
            "line 4: `--pe sip` not converted",
            "line 5: ",
            "SCTP",
            "line 6: ",
            "--bogus",
            "line 7: ",
            "exists already",
        ] {
            assert!(joined.contains(needle), "{needle}: {joined}");
        }
    }
}
