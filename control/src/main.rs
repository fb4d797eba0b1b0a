//! The `xvs` binary: parses the command line and runs the subcommand (`xvs::commands`).

use std::process::ExitCode;

use clap::Parser;
use xvs::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    xvs::observe::logging::init();
    match xvs::commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failed) => {
            eprint!("{failed}");
            ExitCode::FAILURE
        }
    }
}
