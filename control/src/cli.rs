//! The command line's definitions: what `xvs --help` says, and what the man pages and
//! shell completions (`xvs generate`) are made from.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::realserver;

#[derive(Parser)]
#[command(
    name = "xvs",
    version,
    about = "XDP Virtual Server: an L4 load balancer in kernel bypass"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Load the configuration, attach to the interface and balance until SIGINT/SIGTERM.
    Run {
        /// The configuration (xvs.yaml(5)), e.g. /etc/xvs/xvs.yaml.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Take the place of the xvs running on these interfaces without dropping a
        /// connection: it hands over its state and exits (a VRRP master stays master).
        /// Without one running, a plain start.
        #[arg(long)]
        takeover: bool,
    },
    /// Validate the configuration (and that its interface exists here); attach nothing.
    Check {
        /// The configuration to check.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only what needs no host (syntax, meaning, references): for CI and config
        /// management, on a machine without the director's interfaces.
        #[arg(long)]
        no_host: bool,
    },
    /// Convert a keepalived.conf into xvs YAML (stdout); what cannot be converted is
    /// listed on stderr, and the result is validated.
    ImportKeepalived {
        /// The keepalived.conf.
        file: PathBuf,
        /// The director's interface, when no vrrp_instance names it.
        #[arg(long)]
        interface: Option<String>,
    },
    /// Convert ipvsadm rules (`ipvsadm-save -n` output, or `ipvsadm -A/-a` lines) into xvs
    /// YAML (stdout); what cannot be converted is listed on stderr, and the result is
    /// validated.
    ImportIpvsadm {
        /// The rules (e.g. /etc/sysconfig/ipvsadm); standard input when absent.
        file: Option<PathBuf>,
        /// `iptables-save` output: its mangle MARK rules give firewall-mark services
        /// their addresses and ports.
        #[arg(long, value_name = "FILE")]
        iptables: Option<PathBuf>,
        /// The director's interface (ipvsadm rules name none).
        #[arg(long)]
        interface: Option<String>,
    },
    /// Print the configuration's JSON Schema (for editors; config/xvs.schema.json).
    Schema,
    /// Write the man pages (xvs(8), one per subcommand, xvs.yaml(5)) and the bash, zsh
    /// and fish completions under DIR, from these very definitions (for packaging).
    #[command(hide = true)]
    Generate {
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
    /// The virtual servers and real servers now, as `ipvsadm -Ln` prints them (its
    /// header lines, columns, flags and order); `--json` for everything xvs knows more
    /// (drained and overloaded real servers, those out of the pool).
    Status(StatusArgs),
    /// Which real server a new flow would get, and why (the live snapshot, the real code).
    Explain {
        /// SRC:SPORT (IPv6: [SRC]:SPORT)
        src: String,
        /// DST:DPORT (IPv6: [DST]:DPORT), of the source's family
        dst: String,
        /// tcp or udp
        proto: String,
        /// The configuration naming the control socket (default: this host's).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Have the running xvs hand its connections over to the next `xvs run` and exit
    /// (nothing detached, no VRRP goodbye, its masters resumed by the next one). The
    /// systemd unit's ExecStop runs it with `--if-restarting`, so `systemctl restart`
    /// and a package upgrade keep connections while `systemctl stop` still detaches.
    Handover {
        /// The configuration naming the control socket (default: this host's).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Only while systemd restarts UNIT (its job is a restart); otherwise do nothing,
        /// and systemd's SIGTERM stops xvs cleanly.
        #[arg(long, value_name = "UNIT")]
        if_restarting: Option<String>,
    },
    /// Reload the running xvs's configuration file (as SIGHUP does); errors are printed.
    Reload {
        /// The configuration naming the control socket (default: this host's).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Stop sending new connections to a real server (weight 0, as `ipvsadm -e ... -w 0`)
    /// while its established ones finish; kept across reloads until `xvs undrain`. Prints
    /// the connections still open.
    Drain(DrainArgs),
    /// Schedule a drained real server again.
    Undrain(DrainArgs),
    /// Prepare (or restore) a real server for DR or TUN, as LVS's real-server script does.
    Realserver {
        #[command(subcommand)]
        action: RealserverAction,
    },
}

/// `xvs status`'s options.
#[derive(Args)]
pub struct StatusArgs {
    /// The configuration naming the control socket (default: this host's). Long only:
    /// `-c` is `--connections`, as `ipvsadm -Lnc`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Connections, packets and bytes, as `ipvsadm -Ln --stats`.
    #[arg(long, conflicts_with_all = ["rate", "connections"])]
    pub stats: bool,
    /// Connections, packets and bytes per second over the last 8 to 10 seconds, as
    /// `ipvsadm -Ln --rate`.
    #[arg(long, conflicts_with = "connections")]
    pub rate: bool,
    /// The connection entries, as `ipvsadm -Lnc` (at most 1000).
    #[arg(short = 'c', long)]
    pub connections: bool,
    /// Each real server's connection thresholds, as `ipvsadm -Ln --thresholds`.
    #[arg(long, conflicts_with_all = ["stats", "rate", "connections"])]
    pub thresholds: bool,
    /// Large numbers with every digit (`ipvsadm --exact`), not shortened with K, M, G.
    #[arg(long)]
    pub exact: bool,
    /// Packets refused, by reason: the steering program's drops and what it left to
    /// the kernel, and the workers' drops (docs/input.md lists every reason).
    #[arg(long)]
    pub drops: bool,
    /// Connection sync: the peers (when each was last heard, the connections each
    /// reports beside this director's), entries sent, received, installed and
    /// rejected by reason, and the resyncs.
    #[arg(long, conflicts_with_all = ["stats", "rate", "connections", "drops"])]
    pub sync: bool,
    /// How packets leave: whether the XDP fast path is on (or why `fast_path: auto`
    /// fell back), who sends NAT replies, whether partial checksums are completed,
    /// and the XDP frames each interface's driver counted undelivered.
    #[arg(long, conflicts_with_all = ["stats", "rate", "connections", "drops", "sync"])]
    pub dataplane: bool,
    /// Route health injection (`announce`): each VIP, whether its route is in the
    /// table the routing daemon exports, and if not, why.
    #[arg(long, conflicts_with_all = ["stats", "rate", "connections", "drops", "sync", "dataplane"])]
    pub announce: bool,
    /// Everything (table, totals, rates) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct DrainArgs {
    /// The real server: ADDR, or ADDR:PORT.
    #[arg(value_name = "RS", required_unless_present = "director")]
    pub real_server: Option<String>,
    /// The whole director: every VIP's route withdrawn (`announce`), so the routers
    /// send new flows to the other directors, while established connections go on.
    #[arg(long, conflicts_with_all = ["real_server", "virtual_server"])]
    pub director: bool,
    /// Only in this virtual server (by name); otherwise in every one that has it.
    #[arg(long = "virtual", value_name = "NAME")]
    pub virtual_server: Option<String>,
    /// The configuration naming the control socket (default: this host's).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DrainArgs {
    pub fn line(&self, verb: &str) -> String {
        let rs = self.real_server.as_deref().unwrap_or_default();
        match (&self.virtual_server, self.director) {
            (_, true) => format!("{verb} --director"),
            (Some(v), false) => format!("{verb} {rs} --virtual {v}"),
            (None, false) => format!("{verb} {rs}"),
        }
    }
}

#[derive(Subcommand)]
pub enum RealserverAction {
    /// VIPs on lo, ARP for them silenced; for TUN also rp_filter off and IPIP decap on
    /// --dev; for FullNAT (no VIP) the programs that give applications the client's
    /// address, on --dev.
    Up {
        /// VIPs, comma-separated: IPv4 or IPv6 (DR and TUN; FullNAT takes none).
        #[arg(long, value_delimiter = ',', required_unless_present = "local")]
        vip: Vec<std::net::IpAddr>,
        #[arg(long, value_enum)]
        mode: realserver::Mode,
        /// The device clients' packets arrive on (needed for TUN and FullNAT).
        #[arg(long)]
        dev: Option<String>,
        /// FullNAT: the director's local addresses, comma-separated; only their
        /// connections may name a client.
        #[arg(long, value_delimiter = ',')]
        local: Vec<std::net::IpAddr>,
    },
    /// Undo what `up` did for these VIPs (all if none given). Takes `up`'s arguments, so
    /// the line that brought a real server up takes it down with `up` replaced by `down`.
    Down {
        #[arg(long, value_delimiter = ',')]
        vip: Vec<std::net::IpAddr>,
        /// Accepted as `up` takes it; when given, it must be what `up` recorded.
        #[arg(long, value_enum)]
        mode: Option<realserver::Mode>,
        /// Accepted as `up` takes it; when given, it must be the device `up` recorded.
        #[arg(long)]
        dev: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// What clap checks only in debug builds (short options used twice, say), checked
    /// in every build's tests.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
