//! One function per subcommand of `xvs`. Each returns what went wrong as the text to
//! print on standard error; `main` maps every failure to exit status 1.

use std::fmt;
use std::path::{Path, PathBuf};

use xvs_config::{Config, ConfigErrors, Diagnostic};

use crate::cli::{Command, DrainArgs, RealserverAction, StatusArgs};
use crate::daemon::{self, hostcheck};
use crate::sys::iface::Iface;
use crate::{control_socket, generate, realserver};

/// A subcommand's failure: the text for standard error, printed as it is.
#[derive(Debug)]
pub struct Failed(String);

impl Failed {
    /// A line of text (the newline is added).
    fn line(text: impl fmt::Display) -> Self {
        Failed(format!("{text}\n"))
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Outcome = Result<(), Failed>;

/// Runs `command`.
pub fn run(command: Command) -> Outcome {
    match command {
        Command::Schema => schema(),
        Command::Generate { out } => generate_files(&out),
        Command::ImportKeepalived { file, interface } => {
            import_keepalived(&file, interface.as_deref())
        }
        Command::ImportIpvsadm {
            file,
            iptables,
            interface,
        } => import_ipvsadm(file.as_deref(), iptables.as_deref(), interface.as_deref()),
        Command::Check { config, no_host } => check_file(&config, no_host),
        Command::Status(args) => status(args),
        Command::Reload { config } => ask(config, "reload"),
        Command::Handover {
            config,
            if_restarting,
        } => handover(config, if_restarting.as_deref()),
        Command::Drain(a) => dest_command(a, "drain"),
        Command::Undrain(a) => dest_command(a, "undrain"),
        Command::Explain {
            src,
            dst,
            proto,
            config,
        } => ask(config, &format!("explain {src} {dst} {proto}")),
        Command::Realserver { action } => realserver_command(action),
        Command::Run { config, takeover } => run_daemon(&config, takeover),
    }
}

/// `xvs schema`: the configuration's JSON Schema.
fn schema() -> Outcome {
    let s = serde_json::to_string_pretty(&xvs_config::schema::json_schema())
        .map_err(|e| Failed::line(format!("xvs: cannot render the schema: {e}")))?;
    println!("{s}");
    Ok(())
}

/// `xvs generate`: man pages and shell completions.
fn generate_files(out: &Path) -> Outcome {
    let files =
        generate::write_all(out).map_err(|e| Failed::line(format!("xvs generate: {e:#}")))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// `xvs import-keepalived`.
fn import_keepalived(file: &Path, interface: Option<&str>) -> Outcome {
    let text = read_input(Some(file)).map_err(|e| Failed::line(format!("xvs: {e}")))?;
    converted(
        &file.display().to_string(),
        xvs_config::keepalived::import(&text, interface),
    )
}

/// `xvs import-ipvsadm`: `ipvsadm-save` output (a file or standard input), and the
/// iptables rules that set its firewall marks.
fn import_ipvsadm(
    file: Option<&Path>,
    iptables: Option<&Path>,
    interface: Option<&str>,
) -> Outcome {
    let failed = |e| Failed::line(format!("xvs: {e}"));
    let rules = read_input(file).map_err(failed)?;
    let marks = iptables
        .map(|p| read_input(Some(p)).map(|t| (p.display().to_string(), t)))
        .transpose()
        .map_err(failed)?;
    converted(
        &file.map_or("stdin".into(), |f| f.display().to_string()),
        xvs_config::ipvsadm::import(
            &rules,
            marks
                .as_ref()
                .map(|(name, text)| xvs_config::ipvsadm::Marks { name, text }),
            interface,
        ),
    )
}

/// `xvs check`.
fn check_file(config: &Path, no_host: bool) -> Outcome {
    let cfg = check(config, no_host).map_err(Failed::line)?;
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
    Ok(())
}

/// `xvs status`: asked of the running daemon with the flags given.
fn status(a: StatusArgs) -> Outcome {
    let mut line = String::from("status");
    for (on, flag) in [
        (a.stats, " --stats"),
        (a.rate, " --rate"),
        (a.connections, " --connections"),
        (a.drops, " --drops"),
        (a.sync, " --sync"),
        (a.dataplane, " --dataplane"),
        (a.announce, " --announce"),
        (a.thresholds, " --thresholds"),
        (a.exact, " --exact"),
        (a.json, " --json"),
    ] {
        if on {
            line.push_str(flag);
        }
    }
    ask(a.config, &line)
}

/// `xvs drain` and `xvs undrain`.
fn dest_command(a: DrainArgs, verb: &str) -> Outcome {
    let line = a.line(verb);
    ask(a.config, &line)
}

/// `xvs realserver up|down`: the real server's side of DR and TUN on this host.
fn realserver_command(action: RealserverAction) -> Outcome {
    let result = match action {
        RealserverAction::Up {
            vip,
            mode,
            dev,
            local,
        } => realserver::up(&realserver::Request {
            vips: vip,
            mode,
            dev,
            locals: local,
        }),
        RealserverAction::Down { vip, mode, dev } => realserver::down(&vip, mode, dev.as_deref()),
    };
    let changes = result.map_err(|e| Failed::line(format!("xvs realserver: {e:#}")))?;
    if changes.is_empty() {
        println!("nothing to change");
    }
    for c in changes {
        println!("{c}");
    }
    Ok(())
}

/// `xvs run`: the daemon, until it is stopped.
fn run_daemon(config: &Path, takeover: bool) -> Outcome {
    let (cfg, ifaces) = load(config).map_err(|e| {
        // Withdrawn: this process will not serve the routes systemd kept for it.
        crate::announce::release_kept();
        Failed::line(e)
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::line(format!("xvs: cannot start the control runtime: {e}")))?;
    rt.block_on(daemon::run(config, cfg, ifaces, takeover))
        .map_err(|e| Failed::line(format!("xvs: {e:#}")))
}

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
fn converted(src: &str, import: xvs_config::Import) -> Outcome {
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
            Ok(())
        }
        Err(e) => Err(Failed::line(format!(
            "{src}: the converted file does not validate:\n{e}"
        ))),
    }
}

/// Sends one command to the running xvs's control socket and prints its answer.
/// The control socket `config` names (default: this host's).
fn socket_of(config: Option<PathBuf>) -> Result<PathBuf, Failed> {
    Ok(match config {
        None => control_socket::default_path(),
        Some(c) => xvs_config::load(&c)
            .map_err(Failed::line)?
            .control_socket
            .map(PathBuf::from)
            .unwrap_or_else(control_socket::default_path),
    })
}

/// `xvs handover`: asks the running xvs to hand over, and waits until it has exited.
fn handover(config: Option<PathBuf>, if_restarting: Option<&str>) -> Outcome {
    if if_restarting.is_some_and(|unit| !crate::daemon::systemd_restarting(unit)) {
        return Ok(());
    }
    let path = socket_of(config)?;
    match control_socket::request(&path, "handover") {
        Ok((true, text)) => {
            print!("{text}");
            crate::daemon::wait_gone(&path).map_err(Failed::line)
        }
        // An xvs from before handovers, or one that refuses: the restart stops it cleanly.
        Ok((false, text)) if if_restarting.is_some() => {
            eprintln!("xvs: no handover ({}): the restart stops it", text.trim());
            Ok(())
        }
        Ok((false, text)) => Err(Failed(text)),
        // Nothing running: nothing to hand over (a stop of a failed unit, say).
        Err(e) if if_restarting.is_some() => {
            eprintln!("xvs: {e:#}: nothing to hand over");
            Ok(())
        }
        Err(e) => Err(Failed::line(format!("xvs: {e:#}"))),
    }
}

fn ask(config: Option<PathBuf>, line: &str) -> Outcome {
    let path = socket_of(config)?;
    match control_socket::request(&path, line) {
        Ok((true, text)) => {
            print!("{text}");
            Ok(())
        }
        Ok((false, text)) => Err(Failed(text)),
        Err(e) => Err(Failed::line(format!("xvs: {e:#}"))),
    }
}
