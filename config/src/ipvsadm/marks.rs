//! The iptables mangle rules that give packets a firewall mark (`-j MARK --set-mark 99`),
//! read from `iptables-save` output or from the `iptables -t mangle -A ...` lines an admin
//! typed: which addresses, protocols and ports each mark stands for.

use std::net::Ipv4Addr;

use super::rules::parse_mark;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One MARK rule's match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkRule {
    pub line: usize,
    pub mark: u32,
    pub addr: Ipv4Addr,
    /// None: every protocol.
    pub proto: Option<Proto>,
    /// Empty: every port.
    pub ports: Vec<u16>,
}

/// Ports of `--dport 80`, `--dport 8000:8003` or `--dports 80,443,8000:8003`.
fn ports(spec: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        let bad = || format!("`{part}` is no port or port range");
        match part.split_once(':') {
            Some((lo, hi)) => {
                let (lo, hi): (u16, u16) = (
                    lo.parse().map_err(|_| bad())?,
                    hi.parse().map_err(|_| bad())?,
                );
                if lo > hi || hi - lo >= 256 {
                    return Err(format!(
                        "the range {part} is reversed or wider than 256 ports: list the ports"
                    ));
                }
                out.extend(lo..=hi);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// `-d 10.0.0.1` or `-d 10.0.0.1/32`: one address (a virtual server has one).
fn destination(word: &str) -> Result<Ipv4Addr, String> {
    let (a, len) = match word.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (word, None),
    };
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("`{word}` is no IPv4 address"))?;
    match len {
        None | Some("32") | Some("255.255.255.255") => Ok(addr),
        Some(_) => Err(format!(
            "`-d {word}` marks a network: an xvs virtual server has one address (write one rule per VIP)"
        )),
    }
}

/// `--set-mark 99`, `--set-mark 0x63/0xffffffff`, `--set-xmark 0x63/0xffffffff`: the
/// mark, when the whole mark word is set.
fn mark_value(opt: &str, word: &str) -> Result<u32, String> {
    let (v, mask) = match word.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (word, None),
    };
    let value = parse_mark(v).ok_or_else(|| format!("`{opt} {word}`: no mark"))?;
    match mask.map(parse_mark) {
        None | Some(Some(0xffff_ffff)) => Ok(value),
        _ => Err(format!(
            "`{opt} {word}` sets part of the mark: only whole marks name an IPVS service"
        )),
    }
}

/// One line's MARK rule; Ok(None) for a line that sets no mark in the mangle table.
fn rule(n: usize, text: &str, table: &str) -> Result<Option<MarkRule>, String> {
    let w: Vec<&str> = text.split_whitespace().collect();
    let mut t = table;
    let (mut mark, mut addr, mut proto, mut port_list) = (None, None, None, None);
    let mut target = None;
    let mut i = 0;
    while i < w.len() {
        let next = w.get(i + 1).copied().unwrap_or("");
        let mut took = 1;
        match w[i] {
            "!" => return Err("a negated match (`!`) cannot be converted".into()),
            "-t" | "--table" => t = next,
            "-j" | "--jump" => target = Some(next),
            "-d" | "--destination" | "--dst" => addr = Some(destination(next)?),
            "-p" | "--protocol" => {
                proto = Some(match next {
                    "tcp" | "6" => Proto::Tcp,
                    "udp" | "17" => Proto::Udp,
                    p => return Err(format!("protocol `{p}`: xvs balances TCP and UDP")),
                })
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                port_list = Some(ports(next)?)
            }
            "--set-mark" | "--set-xmark" => mark = Some(mark_value(w[i], next)?),
            "-s" | "--source" | "--sport" | "--source-port" => {
                return Err(format!(
                "`{} {next}`: a mark that depends on more than the destination cannot be converted",
                w[i]
            ))
            }
            _ => took = 0,
        }
        i += 1 + took;
    }
    if t != "mangle" || target != Some("MARK") {
        return Ok(None);
    }
    let mark = mark.ok_or("-j MARK without --set-mark")?;
    let addr = addr.ok_or("marks every destination (no -d): name the VIP")?;
    let ports = port_list.unwrap_or_default();
    if !ports.is_empty() && proto.is_none() {
        return Err("ports without a protocol".into());
    }
    Ok(Some(MarkRule {
        line: n,
        mark,
        addr,
        proto,
        ports,
    }))
}

/// Every MARK rule of the text, and a `line N: ...` warning for each one that cannot
/// be read.
pub fn read(text: &str) -> (Vec<MarkRule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    // iptables-save heads each table's rules with `*table`; a typed line names its own.
    let mut table = "filter".to_string();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            continue;
        }
        let line = line.strip_prefix("iptables ").unwrap_or(line);
        // A typed line without -t is in the filter table: what iptables itself does.
        let default = if raw.trim_start().starts_with("iptables") {
            "filter"
        } else {
            table.as_str()
        };
        if !line.contains("MARK") {
            continue;
        }
        match rule(n, line, default) {
            Ok(Some(r)) => rules.push(r),
            Ok(None) => {}
            Err(e) => warnings.push(format!("line {n}: `{line}`: {e}: not converted")),
        }
    }
    (rules, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_output_and_typed_rules() {
        let saved = "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 172.17.100.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x63/0xffffffff\nCOMMIT\n*filter\n-A INPUT -j MARK --set-mark 5\nCOMMIT\n";
        let (r, w) = read(saved);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            r,
            vec![MarkRule {
                line: 3,
                mark: 99,
                addr: "172.17.100.100".parse().unwrap(),
                proto: Some(Proto::Tcp),
                ports: vec![80],
            }]
        );
        let typed = "iptables -t mangle -A PREROUTING -d 172.17.100.100 -p tcp --dport 443 -j MARK --set-mark 99\niptables -A INPUT -d 1.1.1.1 -j MARK --set-mark 3\n";
        let (r, w) = read(typed);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ports, vec![443]);
        let multi = "*mangle\n-A PREROUTING -d 1.1.1.1/32 -p udp -m multiport --dports 53,5000:5002 -j MARK --set-mark 7\n";
        assert_eq!(read(multi).0[0].ports, vec![53, 5000, 5001, 5002]);
    }

    #[test]
    fn what_cannot_be_converted_is_named() {
        let text = "*mangle\n-A PREROUTING -d 10.0.0.0/24 -j MARK --set-mark 1\n-A PREROUTING -d 1.1.1.1 -j MARK --set-xmark 0x1/0xff\n-A PREROUTING -s 2.2.2.2 -d 1.1.1.1 -j MARK --set-mark 1\n-A PREROUTING -p tcp --dport 80 -j MARK --set-mark 1\n-A PREROUTING ! -d 1.1.1.1 -j MARK --set-mark 1\n-A PREROUTING -d 172.17.100.100-p tcp --dport 443 -j MARK --set-mark 99\n";
        let (r, w) = read(text);
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(w.len(), 6, "{w:?}");
        for (n, needle) in [
            (2, "network"),
            (3, "part of the mark"),
            (4, "more than the destination"),
            (5, "no -d"),
            (6, "negated"),
            (7, "no IPv4 address"),
        ] {
            assert!(
                w[n - 2].starts_with(&format!("line {n}:")) && w[n - 2].contains(needle),
                "{needle}: {w:?}"
            );
        }
    }
}
