//! The control socket's commands, typed: parsed once from the line the CLI sent, then
//! dispatched by the event loop on the variant, never on strings.

use super::drain::Target;
use crate::observe::status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `reload`: as SIGHUP, but the errors go back to the caller.
    Reload,
    /// `status [--stats|--rate|--connections|--drops|--sync] [--json]`.
    Status(status::Request),
    /// `explain SRC:SPORT DST:DPORT PROTO`: the arguments, checked by `explain`.
    Explain(String),
    /// `drain ADDR[:PORT] [--virtual NAME]` (`on`), or `undrain ...`.
    Drain { target: Target, on: bool },
    /// `handover`: a new xvs takes this one's place (`daemon/handover.rs`); `adopting`:
    /// it takes the VIP routes over too (`handover --adopt-routes`).
    HandOver { adopting: bool },
    /// `drain --director` (`on`) or `undrain --director`: every VIP withdrawn from the
    /// routers (`announce`), established connections served on.
    DrainDirector { on: bool },
}

impl Command {
    pub fn parse(line: &str) -> Result<Command, String> {
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "reload" if line.trim() == "reload" => Ok(Command::Reload),
            "handover" if line.trim() == "handover" => Ok(Command::HandOver { adopting: false }),
            "handover" if line.trim() == super::handover::ASK_ADOPTING => {
                Ok(Command::HandOver { adopting: true })
            }
            "drain" | "undrain" if line.split_whitespace().nth(1) == Some("--director") => {
                match line.split_whitespace().count() {
                    2 => Ok(Command::DrainDirector { on: word == "drain" }),
                    _ => Err(format!("{word} --director takes nothing else\n")),
                }
            }
            "status" => status::Request::parse(line).map(Command::Status),
            "drain" | "undrain" => Ok(Command::Drain {
                target: Target::parse(line.trim_start()[word.len()..].trim())?,
                on: word == "drain",
            }),
            "explain" => Ok(Command::Explain(
                line.trim_start()["explain".len()..].trim().to_string(),
            )),
            _ => Err(format!(
                "unknown command {line:?}: status [--stats|--rate|--connections|--drops|--sync] [--json], reload, explain, drain, undrain\n"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use status::{Request, View};

    #[test]
    fn each_command_and_its_arguments() {
        assert_eq!(Command::parse("reload"), Ok(Command::Reload));
        assert_eq!(
            Command::parse("handover --adopt-routes"),
            Ok(Command::HandOver { adopting: true })
        );
        assert_eq!(
            Command::parse("undrain --director"),
            Ok(Command::DrainDirector { on: false })
        );
        assert_eq!(
            Command::parse("status --stats --json"),
            Ok(Command::Status(Request {
                view: View::Stats,
                json: true,
                exact: false
            }))
        );
        assert_eq!(
            Command::parse("explain 10.0.0.1:1234 10.0.0.100:80 tcp"),
            Ok(Command::Explain("10.0.0.1:1234 10.0.0.100:80 tcp".into()))
        );
        assert_eq!(
            Command::parse("undrain 10.0.0.11:80 --virtual web"),
            Ok(Command::Drain {
                target: Target {
                    addr: "10.0.0.11".parse().unwrap(),
                    port: Some(80),
                    virtual_server: Some("web".into()),
                },
                on: false
            })
        );
        for bad in [
            "",
            "reload now",
            "stats",
            "status --bogus",
            "statusx",
            "drain",
            "drain nothing",
            "drain --director 10.0.0.11",
            "handover --bogus",
        ] {
            assert!(Command::parse(bad).is_err(), "{bad:?}");
        }
    }
}
