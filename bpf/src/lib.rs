//! xvs's BPF programs and their loader.
//!
//! The C sources live in `bpf/src/*.bpf.c`, the layouts shared with Rust in
//! `bpf/include/xvs_abi.h` (the single source of truth, checked at compile time in [`abi`]).
//! `unsafe` is not needed here: libbpf-rs wraps the bpf syscalls.

#![forbid(unsafe_code)]

pub mod abi;
#[cfg(feature = "bench")]
pub mod bench;
mod decap;
mod error;
mod leftover;
pub mod steer;
mod toa;

pub use decap::Decap;
pub use error::BpfError;
pub use leftover::{attached, Leftover};
pub use steer::{AttachMode, Steer, XdpMode};
pub use toa::Toa;

/// The compiled steering program (an ELF object for libbpf).
pub const STEER_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// The compiled real-server decap program.
pub const DECAP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/decap.bpf.o"));

/// The compiled real-server FullNAT programs (the client's address restored).
pub const TOA_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/toa.bpf.o"));

/// A program that passes everything, for the peer of a veth that XDP transmits into.
pub const PASS_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pass.bpf.o"));
