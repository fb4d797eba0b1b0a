//! `xvs`: the XDP Virtual Server daemon and its command line, as a library the `xvs`
//! binary (`main.rs`) and the fuzz targets (`fuzzing`) use.
//!
//! - `daemon/`: `xvs run` (bring-up, the event loop, reload, publishing, resolution)
//! - `health/`: keepalived's checkers, their policy and quorum
//! - `vrrp/`: VRRP on a thread of its own
//! - `sync/`: connection sync between directors
//! - `announce/`: route health injection (each VIP's route while it can serve)
//! - `observe/`: `/metrics`, `xvs status`, `xvs explain`, the exit report, logging
//! - `alert/`: e-mail alerts; `script/`: notify and check scripts, run unprivileged
//! - `sys/`: the kernel interfaces, and the only `unsafe` (denied elsewhere)
//! - `cli.rs`: the command line's definitions; `commands.rs`: one function per
//!   subcommand; `generate.rs`: man pages and completions
//! - `control_socket.rs`, `ids.rs`, `notify.rs`, `realserver.rs`

#![deny(unsafe_code)]

mod alert;
mod announce;
mod calendar;
pub mod cli;
pub mod commands;
mod control_socket;
mod daemon;
pub mod fuzzing;
mod generate;
mod health;
mod ids;
mod notify;
pub mod observe;
mod realserver;
mod script;
mod sync;
#[allow(unsafe_code)]
mod sys;
mod vrrp;
