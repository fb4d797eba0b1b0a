//! Semantic checks: everything the YAML types alone cannot say. Collects every problem,
//! section by section: the top-level settings (`settings.rs`, with `dataplane.rs` for the
//! packet path's), then `virtual_server/` (with `health.rs`), `vrrp/`, `sync.rs`,
//! `email.rs` and `announce.rs`; `checker.rs` holds what they share.

mod announce;
mod checker;
mod dataplane;
mod email;
mod health;
mod settings;
mod sync;
mod virtual_server;
mod vrrp;

use std::collections::HashMap;

use checker::{at, Checker};
use dataplane::Dataplane;
use settings::Settings;

use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;

pub fn validate(raw: RawConfig) -> Result<Config, Vec<Diagnostic>> {
    let mut ck = Checker { out: Vec::new() };
    settings::interface(&mut ck, &raw.interface);
    let dataplane = dataplane::check(&mut ck, &raw);
    let settings = settings::check(&mut ck, &raw);
    let sections = sections(&mut ck, &raw);
    if !ck.out.is_empty() {
        ck.out.sort_by_key(|d| (d.line, d.column));
        return Err(ck.out);
    }
    Ok(config(raw, dataplane, settings, sections))
}

/// The checked sections, for `Config`.
struct Sections {
    virtual_servers: Vec<VirtualServer>,
    vrrp_instances: Vec<VrrpInstance>,
    connection_sync: Option<ConnectionSync>,
    email_alerts: Option<EmailAlerts>,
    announce: Option<Announce>,
}

/// The virtual servers, the VRRP instances and their sync groups, then
/// `internal_interface` (which needs a NAT virtual server), connection sync and e-mail
/// alerts.
fn sections(ck: &mut Checker, raw: &RawConfig) -> Sections {
    let mut seen = virtual_server::Seen::default();
    let mut virtual_servers: Vec<VirtualServer> = raw
        .virtual_servers
        .iter()
        .map(|vs| virtual_server::check(ck, vs, &mut seen, &raw.vrrp_instances))
        .collect();
    virtual_server::check_local_addresses(ck, &seen, &virtual_servers);
    let mut vrids = HashMap::new();
    let mut vrrp_instances: Vec<VrrpInstance> = raw
        .vrrp_instances
        .iter()
        .map(|vi| vrrp::instance(ck, vi, &mut seen.names, &mut vrids))
        .collect();
    vrrp::sync_groups(ck, &raw.vrrp_sync_groups, &mut vrrp_instances);
    settings::internal_interface(ck, raw, &virtual_servers);
    let connection_sync = raw
        .connection_sync
        .as_ref()
        .and_then(|cs| sync::check(ck, cs));
    let email_alerts = raw.email_alerts.as_ref().and_then(|e| email::check(ck, e));
    let announce = announce::apply(ck, raw, &mut virtual_servers);
    Sections {
        announce,
        virtual_servers,
        vrrp_instances,
        connection_sync,
        email_alerts,
    }
}

/// The file, checked, as the `Config` the rest of xvs reads.
fn config(raw: RawConfig, d: Dataplane, s: Settings, sections: Sections) -> Config {
    let (line, column) = at(&raw.interface);
    Config {
        interface: Located {
            value: raw.interface.value,
            line,
            column,
        },
        internal_interface: raw.internal_interface.map(|i| {
            let (line, column) = at(&i);
            Located {
                value: i.value,
                line,
                column,
            }
        }),
        xdp_mode: raw.xdp_mode.unwrap_or_default(),
        workers: d.workers,
        flow_table_size: d.flow_table_size,
        timeouts: d.timeouts,
        expire_nodest_conn: raw.expire_nodest_conn.unwrap_or_default(),
        fast_path: raw.fast_path.unwrap_or_default(),
        sloppy_tcp: raw.sloppy_tcp.unwrap_or_default(),
        syn_guard: raw.syn_guard.unwrap_or_default(),
        fast_path_flows: d.fast_path_flows,
        cpus: d.cpus,
        af_xdp: d.af_xdp,
        tun_mtu: s.tun_mtu,
        metrics_listen: s.metrics_listen,
        control_socket: raw.control_socket.clone(),
        watch_config: raw.watch_config.unwrap_or(false),
        vrrp_realtime_priority: s.vrrp_realtime_priority,
        script_user: s.script_user,
        enable_script_security: raw.enable_script_security.unwrap_or(false),
        vrrp_instances: sections.vrrp_instances,
        virtual_servers: sections.virtual_servers,
        connection_sync: sections.connection_sync,
        email_alerts: sections.email_alerts,
        announce: sections.announce,
    }
}
