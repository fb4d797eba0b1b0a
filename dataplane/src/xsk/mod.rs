//! AF_XDP sockets: the UMEM, the four rings shared with the kernel, and the socket that
//! binds them to one (interface, RX queue). This module and [`crate::sys`] hold all of the
//! dataplane's `unsafe`; each block says why it is sound.

mod ring;
mod socket;
mod umem;

pub use ring::{ConsRing, ProdRing, RingMem};
pub use socket::{stats_of, BindMode, BoundMode, Xsk, XskConfig, XskError, XskStats, XskTx};
pub use umem::Umem;
