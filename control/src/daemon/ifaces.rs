//! The interfaces xvs runs on.

use xvs_config::{Forwarding, VirtualServer};

use crate::sys::iface::Iface;

/// The one facing clients, and for two-arm NAT the one facing the real servers.
#[derive(Clone, Debug)]
pub struct Ifaces {
    pub external: Iface,
    pub internal: Option<Iface>,
}

impl Ifaces {
    /// Where a virtual server's real servers are reached.
    pub fn towards_real_servers(&self, vs: &VirtualServer) -> &Iface {
        match (&self.internal, vs.forwarding) {
            (Some(int), Forwarding::Nat | Forwarding::FullNat) => int,
            _ => &self.external,
        }
    }

    /// Both, the external first.
    pub fn all(&self) -> impl Iterator<Item = &Iface> {
        std::iter::once(&self.external).chain(&self.internal)
    }

    /// Where the steering program sends NAT replies: out of the external interface in
    /// two-arm NAT, back out of the one they came in on (0) otherwise.
    pub fn reply_out(&self) -> u32 {
        if self.internal.is_some() {
            self.external.ifindex
        } else {
            0
        }
    }
}
