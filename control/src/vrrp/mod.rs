//! VRRP (RFC 3768, RFC 5798), interoperable with keepalived: the advertisement codec and
//! the sans-IO state machine.

pub mod machine;
pub mod packet;
