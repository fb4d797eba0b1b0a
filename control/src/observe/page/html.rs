//! The status page's HTML, from its JSON twin (`super::overview`): one self-contained
//! document (no script, no external asset), refreshed by the browser every few seconds,
//! narrow enough for a phone, every state said in words as well as colour. Every text
//! that comes from the configuration or the network is escaped.

use std::fmt::Write;

use serde_json::Value;

use crate::calendar::utc;

/// How often the browser fetches the page again, in seconds.
pub const REFRESH_SECS: u32 = 5;

const STYLE: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:72em;padding:.5em;color:#111}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;width:100%;margin:.3em 0 1em}\
caption{text-align:left;font-weight:600;padding:.2em 0}\
th,td{border-bottom:1px solid #ddd;padding:.25em .4em;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.ok{background:#d7f5dd}.bad{background:#f9d6d5}.warn{background:#fdf0c8}.off{background:#e6e6e6}\
.wrap{overflow-x:auto}footer{color:#555;margin-top:2em}";

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as escaped text ("" for null).
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// The page.
pub fn render(o: &Value) -> String {
    let mut h = String::new();
    let iface = text(&o["interface"]);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
<title>xvs on {iface}</title><style>{STYLE}</style></head><body>\n"
    );
    header(&mut h, o);
    servers(&mut h, &o["virtual_servers"]);
    vrrp(&mut h, &o["vrrp"]);
    sync(&mut h, &o["sync"]);
    drops(&mut h, &o["drops"]);
    let _ = write!(
        h,
        "<footer>Read at {} · refreshed every {REFRESH_SECS} s · \
<a href=\"/status.json\">JSON</a> · <a href=\"/metrics\">metrics</a></footer>\n</body></html>\n",
        stamp(&o["generated"])
    );
    h
}

/// A Unix time as UTC, or "" when absent.
fn stamp(v: &Value) -> String {
    v.as_u64().map(utc).unwrap_or_default()
}

fn header(h: &mut String, o: &Value) {
    let r = &o["reloads"];
    let last = match r["last"].as_object() {
        Some(l) => format!(
            "; last {} at {}: {}",
            if l["ok"].as_bool() == Some(true) {
                "<span class=\"ok\">succeeded</span>"
            } else {
                "<span class=\"bad\">FAILED</span>"
            },
            stamp(&l["at"]),
            text(&l["message"])
        ),
        None => String::new(),
    };
    let _ = writeln!(
        h,
        "<h1>xvs {} on {}</h1><p>Configuration generation {} · reloads: {} done, {} failed{last}</p>",
        text(&o["version"]),
        text(&o["interface"]),
        text(&o["generation"]),
        text(&r["done"]),
        text(&r["failed"]),
    );
}

/// The class a state word is shown with.
fn state_class(state: &str) -> &'static str {
    match state {
        "up" | "MASTER" | "BACKUP" | "yes" => "ok",
        "down" | "FAULT" | "no" => "bad",
        "drained" | "overloaded" | "unresolved" | "sorry" => "warn",
        _ => "off",
    }
}

fn servers(h: &mut String, vss: &Value) {
    let _ = writeln!(h, "<h2>Virtual servers</h2>");
    let list = vss.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        let _ = writeln!(h, "<p>None configured.</p>");
    }
    for vs in list {
        let ports: Vec<String> = vs["ports"]
            .as_array()
            .map(|p| p.iter().map(text).collect())
            .unwrap_or_default();
        let persistence = match vs["persistence_timeout"].as_u64() {
            Some(t) => format!(" · persistence {t} s"),
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<div class=\"wrap\"><table><caption>{} — {} {}:{} · {} · {}{persistence} · {} conn/s</caption>",
            text(&vs["name"]),
            text(&vs["protocol"]),
            bracketed(&vs["address"]),
            ports.join(","),
            text(&vs["scheduler"]),
            text(&vs["forwarding"]),
            rate(&vs["rate"]["cps"]),
        );
        let _ = writeln!(
            h,
            "<tr><th>Real server</th><th>State</th><th>Since</th><th>Weight</th>\
<th>Active</th><th>Inactive</th><th>Conn/s</th><th>Packets/s in</th><th>Last check</th></tr>"
        );
        for rs in vs["real_servers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            real_server(h, rs);
        }
        let _ = writeln!(h, "</table></div>");
    }
}

fn real_server(h: &mut String, rs: &Value) {
    let state = rs["state"].as_str().unwrap_or("");
    let addr = bracketed(&rs["address"]);
    let _ = writeln!(
        h,
        "<tr><td>{addr}:{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
        text(&rs["port"]),
        state_class(state),
        escape(state),
        stamp(&rs["since"]),
        text(&rs["weight"]),
        text(&rs["active_conns"]),
        text(&rs["inactive_conns"]),
        rate(&rs["rate"]["cps"]),
        rate(&rs["rate"]["in_pps"]),
        or_dash(text(&rs["last_check"])),
    );
}

/// "—" for a value never set (a real server whose check has not changed its mind).
fn or_dash(s: String) -> String {
    if s.is_empty() {
        "—".to_string()
    } else {
        s
    }
}

/// An address as it goes before `:port`: an IPv6 one in brackets.
fn bracketed(v: &Value) -> String {
    match v.as_str() {
        Some(a) if a.contains(':') => format!("[{}]", escape(a)),
        _ => text(v),
    }
}

/// A per-second figure to one decimal ("" before the first samples).
fn rate(v: &Value) -> String {
    v.as_f64().map(|r| format!("{r:.1}")).unwrap_or_default()
}

fn vrrp(h: &mut String, list: &Value) {
    let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>VRRP</h2><div class=\"wrap\"><table><tr><th>Instance</th><th>Interface</th>\
<th>State</th><th>Priority</th><th>Transitions</th></tr>"
    );
    for i in list {
        let state = i["state"].as_str().unwrap_or("");
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            text(&i["name"]),
            text(&i["interface"]),
            state_class(state),
            escape(state),
            text(&i["priority"]),
            text(&i["transitions"]),
        );
    }
    let _ = writeln!(h, "</table></div>");
}

fn sync(h: &mut String, s: &Value) {
    if s.is_null() {
        return;
    }
    let ready = if s["ready"].as_bool() == Some(true) {
        "in step"
    } else {
        "resync under way"
    };
    let _ = writeln!(
        h,
        "<h2>Connection sync</h2><p>{ready} · {} connection(s) here</p>\
<div class=\"wrap\"><table><tr><th>Peer</th><th>Up</th><th>Last heard</th><th>Connections</th></tr>",
        text(&s["connections"])
    );
    for p in s["peers"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let up = if p["up"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        };
        let heard = p["last_heard_seconds"]
            .as_f64()
            .map(|t| format!("{t:.1} s ago"))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{up}</td><td>{heard}</td><td class=\"n\">{}</td></tr>",
            text(&p["address"]),
            state_class(up),
            text(&p["connections"]),
        );
    }
    let _ = writeln!(h, "</table></div>");
}

fn drops(h: &mut String, d: &Value) {
    let _ = writeln!(h, "<h2>Drops, and what went to the kernel</h2>");
    let mut rows = String::new();
    for (place, key) in [
        ("steering (XDP)", "steering_program"),
        ("workers", "workers"),
    ] {
        if let Some(m) = d[key].as_object() {
            for (reason, n) in m.iter().filter(|(_, n)| n.as_u64().unwrap_or(0) > 0) {
                let _ = writeln!(
                    rows,
                    "<tr><td>{place}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    escape(reason),
                    text(n)
                );
            }
        }
    }
    if rows.is_empty() {
        let _ = writeln!(h, "<p>Nothing dropped or left to the kernel.</p>");
    } else {
        let _ = writeln!(
            h,
            "<div class=\"wrap\"><table><tr><th>Where</th><th>Reason</th><th>Packets</th></tr>\n{rows}</table></div>"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "version": "0.1.0", "generated": 1_796_586_242u64, "interface": "eth0",
            "generation": 4,
            "reloads": {"done": 2, "failed": 1, "last": {"at": 1_796_586_000u64, "ok": false, "message": "line 3: <bad> & worse"}},
            "virtual_servers": [{
                "name": "<script>alert(1)</script>", "protocol": "TCP", "address": "10.0.0.100",
                "ports": [80], "scheduler": "wrr", "forwarding": "Route", "persistence_timeout": null,
                "rate": {"cps": 2.5},
                "real_servers": [
                    {"address": "10.0.0.11", "port": 80, "state": "up", "since": 1_796_586_100u64,
                     "weight": 3, "active_conns": 7, "inactive_conns": 1, "rate": {"cps": 1.0, "in_pps": 20.0},
                     "last_check": "up: HTTP 200"},
                    {"address": "2001:db8::11", "port": 80, "state": "down", "since": null,
                     "weight": null, "active_conns": 0, "inactive_conns": 0, "rate": null,
                     "last_check": "down: connection refused"}
                ]
            }],
            "vrrp": [{"name": "VI_1", "interface": "eth0", "state": "MASTER", "priority": 100, "transitions": 1}],
            "sync": null,
            "drops": {"steering_program": {"drop_no_socket": 0}, "workers": {"no_flow": 3}},
        })
    }

    #[test]
    fn configured_text_is_escaped_never_markup() {
        let h = render(&sample());
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{h}");
        assert!(!h.contains("<script"), "no script element at all");
        assert!(h.contains("line 3: &lt;bad&gt; &amp; worse"));
        assert_eq!(escape("a\"b'c"), "a&quot;b&#39;c");
    }

    #[test]
    fn states_are_words_with_a_colour_and_the_numbers_are_there() {
        let h = render(&sample());
        assert!(h.contains("<td class=\"ok\">up</td>"), "{h}");
        assert!(h.contains("<td class=\"bad\">down</td>"));
        assert!(h.contains("<td>[2001:db8::11]:80</td>"));
        assert!(
            h.contains("2026-12-06 19:41:40 UTC"),
            "the real server's since"
        );
        assert!(h.contains("<td class=\"ok\">MASTER</td>"));
        assert!(h.contains("<td>workers</td><td>no_flow</td><td class=\"n\">3</td>"));
        assert!(!h.contains("drop_no_socket"), "zero rows left out");
        assert!(h.contains("<span class=\"bad\">FAILED</span>"));
        assert!(h.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    }

    #[test]
    fn sync_peers_say_when_they_were_last_heard() {
        let mut o = sample();
        o["sync"] = json!({
            "ready": false, "connections": 12,
            "peers": [{"address": "10.0.1.2", "up": true, "last_heard_seconds": 0.25, "connections": 11},
                      {"address": "<peer>", "up": false, "last_heard_seconds": 31.0, "connections": 0}],
        });
        let h = render(&o);
        assert!(
            h.contains("resync under way · 12 connection(s) here"),
            "{h}"
        );
        assert!(
            h.contains("<td>10.0.1.2</td><td class=\"ok\">yes</td><td>0.2 s ago</td>"),
            "{h}"
        );
        assert!(
            h.contains("<td>&lt;peer&gt;</td><td class=\"bad\">no</td><td>31.0 s ago</td>"),
            "{h}"
        );
    }

    #[test]
    fn an_empty_or_odd_overview_still_renders_a_whole_page() {
        for o in [
            json!({}),
            json!(null),
            json!({"virtual_servers": 3, "vrrp": "x", "drops": []}),
        ] {
            let h = render(&o);
            assert!(h.starts_with("<!DOCTYPE html>") && h.ends_with("</html>\n"));
        }
    }
}
