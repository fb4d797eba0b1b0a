//! `xvs status --announce`: route health injection at a glance — each VIP, whether its
//! route is in the table the routing daemon exports, and if not, why.

use std::fmt::Write;

use crate::announce::VipRow;

pub fn render_announce(table: u32, rows: &[VipRow], json: bool) -> String {
    if json {
        let v = serde_json::json!({ "table": table, "vips": rows });
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let mut s = format!("VIP routes in table {table}:\n");
    if rows.is_empty() {
        s += "  (no virtual server announces)\n";
    }
    for r in rows {
        let state = if r.announced {
            "announced"
        } else {
            "withdrawn"
        };
        let _ = writeln!(s, "  {:<40} {state:<10} {}", r.vip, r.detail);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vip_says_whether_it_is_announced_and_why_not() {
        let rows = [
            VipRow {
                vip: "10.0.0.100".parse().unwrap(),
                announced: true,
                reason: "serving",
                detail: "serving".into(),
            },
            VipRow {
                vip: "2001:db8::100".parse().unwrap(),
                announced: false,
                reason: "too_few_up",
                detail: "\"web6\": 0 real server(s) up, min_healthy 1".into(),
            },
        ];
        let text = render_announce(100, &rows, false);
        assert!(text.starts_with("VIP routes in table 100:\n"), "{text}");
        assert!(
            text.contains("10.0.0.100") && text.contains("announced"),
            "{text}"
        );
        assert!(
            text.contains("withdrawn  \"web6\": 0 real server(s) up"),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_announce(100, &rows, true)).unwrap();
        assert_eq!(json["vips"][1]["reason"], "too_few_up");
        assert_eq!(json["vips"][0]["announced"], true);
    }
}
