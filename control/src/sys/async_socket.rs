//! A socket2 socket registered with the tokio runtime, for sockets tokio has no type of
//! its own for (the VRRP raw socket).

use std::io;

use socket2::Socket;
use tokio::io::unix::AsyncFd;

/// Registers `sock` (non-blocking) with the current runtime; the `AsyncFd` owns it.
pub fn register(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the AsyncFd owns `sock` outright, so its descriptor stays open, and is the
    // same one, for as long as the AsyncFd lives: nothing else can close or reuse it.
    unsafe { AsyncFd::register(sock) }.map_err(io::Error::from)
}
