//! The `status` command line: which view, text or JSON.

/// Which table the text shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Table,
    Stats,
    Rate,
    Connections,
    Drops,
    /// Connection sync.
    Sync,
    /// How packets leave (the fast path, NAT replies, checksums).
    Dataplane,
    /// Each real server's connection thresholds (ipvsadm --thresholds).
    Thresholds,
    /// Route health injection: each VIP's route, announced or not and why.
    Announce,
}

/// A parsed `status` command line: `status [--stats|--rate|--connections|--drops] [--json]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub view: View,
    pub json: bool,
    /// Every digit of large numbers (ipvsadm --exact).
    pub exact: bool,
}

impl Request {
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        if words.next() != Some("status") {
            return Err(format!("not a status command: {line:?}"));
        }
        let mut req = Request {
            view: View::Table,
            json: false,
            exact: false,
        };
        for w in words {
            match w {
                "--stats" | "--rate" | "--connections" | "--drops" | "--sync" | "--dataplane"
                | "--thresholds"
                | "--announce"
                    if req.view != View::Table =>
                {
                    return Err(
                        "status: --stats, --rate, --connections, --drops, --sync, --dataplane, --thresholds and --announce are exclusive\n"
                            .into(),
                    )
                }
                "--dataplane" => req.view = View::Dataplane,
                "--thresholds" => req.view = View::Thresholds,
                "--announce" => req.view = View::Announce,
                "--exact" => req.exact = true,
                "--sync" => req.view = View::Sync,
                "--stats" => req.view = View::Stats,
                "--rate" => req.view = View::Rate,
                "--connections" => req.view = View::Connections,
                "--drops" => req.view = View::Drops,
                "--json" => req.json = true,
                other => {
                    return Err(format!(
                    "status: unknown option {other:?} (--stats, --rate, --connections, --drops, --sync, --dataplane, --thresholds, --announce, --exact, --json)\n"
                ))
                }
            }
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_options() {
        assert_eq!(
            Request::parse("status").unwrap(),
            Request {
                view: View::Table,
                json: false,
                exact: false
            }
        );
        assert_eq!(
            Request::parse("status --rate --json").unwrap(),
            Request {
                view: View::Rate,
                json: true,
                exact: false
            }
        );
        assert_eq!(Request::parse("status --stats").unwrap().view, View::Stats);
        assert!(Request::parse("status --stats --rate").is_err());
        assert_eq!(
            Request::parse("status --connections --json").unwrap(),
            Request {
                view: View::Connections,
                json: true,
                exact: false
            }
        );
        assert_eq!(Request::parse("status --drops").unwrap().view, View::Drops);
        assert!(Request::parse("status --drops --stats").is_err());
        assert_eq!(Request::parse("status --sync").unwrap().view, View::Sync);
        assert!(Request::parse("status --sync --drops").is_err());
        assert_eq!(
            Request::parse("status --dataplane").unwrap().view,
            View::Dataplane
        );
        assert!(Request::parse("status --dataplane --sync").is_err());
        let r = Request::parse("status --stats --exact").unwrap();
        assert!(r.exact && r.view == View::Stats);
        assert_eq!(
            Request::parse("status --thresholds").unwrap().view,
            View::Thresholds
        );
        assert!(Request::parse("status --bogus").is_err());
        assert!(Request::parse("stats").is_err());
    }
}
