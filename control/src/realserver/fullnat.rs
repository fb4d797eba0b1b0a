//! `xvs realserver up --mode fullnat`: xvs's FullNAT programs on the device's tc ingress
//! and egress (`bpf/src/toa.bpf.c`), trusting the director's local addresses given, so
//! that applications see the client as the peer of a FullNAT connection. No VIP and no
//! sysctl: a FullNAT real server answers the director's local address, as any host.

use std::net::IpAddr;

use anyhow::{bail, Result};
use xvs_bpf::Toa;

use super::{save, State};
use crate::sys::iface::Iface;

/// Attaches the programs to `dev`, trusting `locals` (added to those trusted before).
pub(super) fn up(state: &mut State, dev: &Iface, locals: &[IpAddr]) -> Result<Vec<String>> {
    if locals.is_empty() {
        bail!("--mode fullnat needs --local: the director's local addresses, whose connections may name their client (anyone else could claim any client); nothing was changed");
    }
    let mut trusted = match &state.toa {
        Some((d, l)) if *d == dev.name => l.clone(),
        Some((d, _)) => bail!(
            "the FullNAT programs are on {d}, not {}: `xvs realserver down --mode fullnat` first; nothing was changed",
            dev.name
        ),
        None => Vec::new(),
    };
    let toa = Toa::load()?;
    let before = trusted.len();
    for a in locals {
        if !trusted.contains(a) {
            trusted.push(*a);
        }
    }
    if trusted.len() == before && toa.attached(dev.ifindex as i32) {
        return Ok(Vec::new());
    }
    toa.trust(&trusted)?;
    toa.attach(dev.ifindex as i32)?;
    let list: Vec<String> = trusted.iter().map(IpAddr::to_string).collect();
    state.toa = Some((dev.name.clone(), trusted));
    save(state)?;
    Ok(vec![format!(
        "attached the FullNAT programs to {} ingress and egress, trusting {}",
        dev.name,
        list.join(", ")
    )])
}

/// Detaches the programs `up` attached.
pub(super) fn down(state: &mut State) -> Result<Vec<String>> {
    let Some((dev, _)) = state.toa.take() else {
        return Ok(Vec::new());
    };
    let done = match Iface::lookup(&dev)? {
        Some(i) if Toa::load()?.detach(i.ifindex as i32)? => {
            vec![format!("detached the FullNAT programs from {dev}")]
        }
        Some(_) => Vec::new(),
        None => vec![format!(
            "device {dev} is gone, and the FullNAT programs with it"
        )],
    };
    save(state)?;
    Ok(done)
}
