//! `xvs`: the XDP Virtual Server daemon and its command line.
//!
//! - `daemon/`: `xvs run` (bring-up, the event loop, reload, publishing, resolution)
//! - `health/`: keepalived's checkers, their policy and quorum
//! - `vrrp/`: VRRP on a thread of its own
//! - `observe/`: `/metrics`, `xvs status`, `xvs explain`, the exit report
//! - `sys/`: the kernel interfaces, and the only `unsafe` (denied elsewhere)
//! - `cli.rs`: the command line's definitions; `generate.rs`: man pages and completions
//! - `control_socket.rs`, `ids.rs`, `notify.rs`, `realserver.rs`

#![deny(unsafe_code)]

mod alert;
mod cli;
mod control_socket;
mod daemon;
mod generate;
mod health;
mod ids;
mod notify;
mod observe;
mod realserver;
mod script;
mod sync;
#[allow(unsafe_code)]
mod sys;
mod vrrp;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use xvs_config::{Config, ConfigErrors, Diagnostic};

use crate::cli::{Cli, Command, RealserverAction};
use crate::daemon::hostcheck;
use crate::sys::iface::Iface;

/// One configured interface, which must exist here.
fn host_iface(path: &Path, name: &xvs_config::Located<String>) -> Result<Iface, String> {
    match Iface::lookup(&name.value) {
        Ok(Some(iface)) => Ok(iface),
        Ok(None) => Err(ConfigErrors::single(
            &path.display().to_string(),
            Diagnostic::new(
                name.line,
                name.column,
                format!("interface {:?} does not exist on this host", name.value),
            )
            .hint("`ip link` lists the interfaces; xvs attaches to the one facing clients"),
        )
        .to_string()),
        Err(e) => Err(format!(
            "{}: reading interface {}: {e:#}",
            path.display(),
            name.value
        )),
    }
}

/// Loads the file and checks what only this host can: that the interfaces exist.
fn load(path: &Path) -> Result<(Config, daemon::Ifaces), String> {
    let cfg = xvs_config::load(path).map_err(|e| e.to_string())?;
    let external = host_iface(path, &cfg.interface)?;
    let internal = cfg
        .internal_interface
        .as_ref()
        .map(|i| host_iface(path, i))
        .transpose()?;
    Ok((cfg, daemon::Ifaces { external, internal }))
}

/// `xvs check`: the file alone with `no_host`, else also what this host must have (its
/// interfaces), with the host's warnings on stderr.
fn check(path: &Path, no_host: bool) -> Result<Config, String> {
    let fits = |cfg: Config| {
        daemon::limits::fit(&daemon::limits::Counts::of(&cfg))
            .map(|()| cfg)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    if no_host {
        return xvs_config::load(path)
            .map_err(|e| e.to_string())
            .and_then(fits);
    }
    let (cfg, ifaces) = load(path)?;
    let cfg = fits(cfg)?;
    for w in hostcheck::warnings(&cfg, &ifaces) {
        eprintln!("{}: warning: {w}", path.display());
    }
    Ok(cfg)
}

/// A file's text, or standard input's when there is no file.
fn read_input(path: Option<&Path>) -> Result<String, String> {
    match path {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        }
        None => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}")),
    }
}

/// An importer's result: the YAML on stdout, what was left behind on stderr, and whether
/// the YAML validates.
fn converted(src: &str, import: xvs_config::Import) -> ExitCode {
    print!("{}", import.yaml);
    for w in &import.warnings {
        eprintln!("{src}: {w}");
    }
    match xvs_config::parse("converted.yaml", &import.yaml) {
        Ok(_) => {
            eprintln!(
                "{src}: converted; {} statement(s) not converted (listed above)",
                import.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{src}: the converted file does not validate:\n{e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends one command to the running xvs's control socket and prints its answer.
fn ask(config: Option<PathBuf>, line: &str) -> ExitCode {
    let path = match config {
        None => control_socket::default_path(),
        Some(c) => match xvs_config::load(&c) {
            Ok(cfg) => cfg
                .control_socket
                .map(PathBuf::from)
                .unwrap_or_else(control_socket::default_path),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match control_socket::request(&path, line) {
        Ok((true, text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok((false, text)) => {
            eprint!("{text}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xvs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    observe::logging::init();
    match cli.command {
        Command::Schema => {
            match serde_json::to_string_pretty(&xvs_config::schema::json_schema()) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("xvs: cannot render the schema: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Generate { out } => match generate::write_all(&out) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xvs generate: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::ImportKeepalived { file, interface } => match read_input(Some(&file)) {
            Ok(text) => converted(
                &file.display().to_string(),
                xvs_config::keepalived::import(&text, interface.as_deref()),
            ),
            Err(e) => {
                eprintln!("xvs: {e}");
                ExitCode::FAILURE
            }
        },
        Command::ImportIpvsadm {
            file,
            iptables,
            interface,
        } => {
            let rules = read_input(file.as_deref());
            let marks = iptables
                .as_deref()
                .map(|p| read_input(Some(p)).map(|t| (p.display().to_string(), t)))
                .transpose();
            match (rules, marks) {
                (Ok(rules), Ok(marks)) => converted(
                    &file.map_or("stdin".into(), |f| f.display().to_string()),
                    xvs_config::ipvsadm::import(
                        &rules,
                        marks
                            .as_ref()
                            .map(|(name, text)| xvs_config::ipvsadm::Marks { name, text }),
                        interface.as_deref(),
                    ),
                ),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("xvs: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config, no_host } => match check(&config, no_host) {
            Ok(cfg) => {
                let rs: usize = cfg
                    .virtual_servers
                    .iter()
                    .map(|v| v.real_servers.len())
                    .sum();
                println!(
                    "{}: OK ({} virtual server(s), {rs} real server(s){})",
                    config.display(),
                    cfg.virtual_servers.len(),
                    if no_host {
                        "; interfaces and routes not checked (--no-host)"
                    } else {
                        ""
                    }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Status {
            config,
            stats,
            rate,
            connections,
            drops,
            sync,
            dataplane,
            thresholds,
            exact,
            json,
        } => {
            let mut line = String::from("status");
            for (on, flag) in [
                (stats, " --stats"),
                (rate, " --rate"),
                (connections, " --connections"),
                (drops, " --drops"),
                (sync, " --sync"),
                (dataplane, " --dataplane"),
                (thresholds, " --thresholds"),
                (exact, " --exact"),
                (json, " --json"),
            ] {
                if on {
                    line.push_str(flag);
                }
            }
            ask(config, &line)
        }
        Command::Reload { config } => ask(config, "reload"),
        Command::Drain(a) => {
            let line = a.line("drain");
            ask(a.config, &line)
        }
        Command::Undrain(a) => {
            let line = a.line("undrain");
            ask(a.config, &line)
        }
        Command::Explain {
            src,
            dst,
            proto,
            config,
        } => ask(config, &format!("explain {src} {dst} {proto}")),
        Command::Realserver { action } => {
            let result = match action {
                RealserverAction::Up { vip, mode, dev } => realserver::up(&realserver::Request {
                    vips: vip,
                    mode,
                    dev,
                }),
                RealserverAction::Down { vip, mode, dev } => {
                    realserver::down(&vip, mode, dev.as_deref())
                }
            };
            match result {
                Ok(changes) if changes.is_empty() => {
                    println!("nothing to change");
                    ExitCode::SUCCESS
                }
                Ok(changes) => {
                    for c in changes {
                        println!("{c}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xvs realserver: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            let (cfg, ifaces) = match load(&config) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("xvs: cannot start the control runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(daemon::run(&config, cfg, ifaces)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("xvs: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
