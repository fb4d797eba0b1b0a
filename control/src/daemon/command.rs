//! The control socket's commands, typed: parsed once from the line the CLI sent, then
//! dispatched by the event loop on the variant, never on strings.

use crate::observe::status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `reload`: as SIGHUP, but the errors go back to the caller.
    Reload,
    /// `status [--stats|--rate|--connections] [--json]`.
    Status(status::Request),
    /// `explain SRC:SPORT DST:DPORT PROTO`: the arguments, checked by `explain`.
    Explain(String),
}

impl Command {
    pub fn parse(line: &str) -> Result<Command, String> {
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "reload" if line.trim() == "reload" => Ok(Command::Reload),
            "status" => status::Request::parse(line).map(Command::Status),
            "explain" => Ok(Command::Explain(
                line.trim_start()["explain".len()..].trim().to_string(),
            )),
            _ => Err(format!(
                "unknown command {line:?}: status [--stats|--rate|--connections] [--json], reload, explain\n"
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
            Command::parse("status --stats --json"),
            Ok(Command::Status(Request {
                view: View::Stats,
                json: true
            }))
        );
        assert_eq!(
            Command::parse("explain 10.0.0.1:1234 10.0.0.100:80 tcp"),
            Ok(Command::Explain("10.0.0.1:1234 10.0.0.100:80 tcp".into()))
        );
        for bad in ["", "reload now", "stats", "status --bogus", "statusx"] {
            assert!(Command::parse(bad).is_err(), "{bad:?}");
        }
    }
}
