//! The control plane's kernel interfaces — netlink, interface facts, driver statistics, inotify, packet
//! sockets, random seeds, real-time scheduling, runtime registration — behind safe functions. Control's
//! `unsafe` lives here and nowhere else.

pub mod af_packet;
pub mod async_socket;
pub mod caps;
pub mod child;
pub mod ethtool;
pub mod iface;
pub mod inotify;
pub mod instance;
pub mod ip6msg;
pub mod listen_fds;
pub mod netlink;
pub mod random;
pub mod sched;
pub mod table_routes;
pub mod tun;
