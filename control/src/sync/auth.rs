//! Who may speak: the shared key's HMAC-SHA256 over every message (`ring`, verified in
//! constant time), and a replay window per peer, so that a captured message cannot be
//! sent again to move a connection back.

use ring::hmac;

use super::wire::TAG_LEN;

pub struct Key(hmac::Key);

impl Key {
    pub fn new(secret: &[u8]) -> Key {
        Key(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    pub fn sign(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let tag = hmac::sign(&self.0, data);
        let mut out = [0; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, data, tag).is_ok()
    }
}

/// How far back a sequence number may arrive out of order (UDP may reorder).
const WINDOW: u64 = 64;

/// One peer's (boot, sequence) history. A newer boot is a restart and starts afresh; an
/// older boot, or a number seen or fallen out of the window, is a replay.
#[derive(Debug, Default, Clone)]
pub struct Replay {
    boot: u64,
    top: u64,
    /// Bit i: `top - i` was seen.
    seen: u64,
}

impl Replay {
    /// Call only for an authenticated message: accepts it and remembers it, or says it
    /// is a replay.
    pub fn accept(&mut self, boot: u64, seq: u64) -> bool {
        if boot > self.boot {
            *self = Replay {
                boot,
                top: seq,
                seen: 1,
            };
            return true;
        }
        if boot < self.boot {
            return false;
        }
        if seq > self.top {
            let shift = seq - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = seq;
            return true;
        }
        let back = self.top - seq;
        if back >= WINDOW || self.seen & (1 << back) != 0 {
            return false;
        }
        self.seen |= 1 << back;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_verifies_with_its_key_only() {
        let k = Key::new(b"0123456789abcdef");
        let t = k.sign(b"hello");
        assert!(k.verify(b"hello", &t));
        assert!(!k.verify(b"hellO", &t));
        assert!(!Key::new(b"0123456789abcdeF").verify(b"hello", &t));
        assert!(!k.verify(b"hello", &t[..16]), "a truncated tag");
    }

    #[test]
    fn replays_are_refused_reordering_within_the_window_is_not() {
        let mut r = Replay::default();
        assert!(r.accept(100, 1));
        assert!(!r.accept(100, 1), "the same again");
        assert!(r.accept(100, 5));
        assert!(r.accept(100, 3), "late, within the window");
        assert!(!r.accept(100, 3));
        assert!(r.accept(100, 200));
        assert!(!r.accept(100, 100), "fell out of the window");
        assert!(!r.accept(99, 1000), "an older boot");
        assert!(r.accept(101, 1), "a restart");
        assert!(!r.accept(100, 201), "the old boot is over");
    }
}
