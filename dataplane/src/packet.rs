//! A frame in its buffer, with the headroom in front of it that encapsulation grows into.

/// `buf[head..head + len]` is the frame; `buf[..head]` is free headroom.
pub struct Packet<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl<'a> Packet<'a> {
    /// A frame at `buf[head..head + len]`; `None` if that range is not inside `buf`.
    #[inline]
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Option<Self> {
        (head.checked_add(len)? <= buf.len()).then_some(Packet { buf, head, len })
    }

    /// All of `buf` is the frame, with no headroom.
    #[inline]
    pub fn whole(buf: &'a mut [u8]) -> Self {
        let len = buf.len();
        Packet { buf, head: 0, len }
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    #[inline]
    pub fn head(&self) -> usize {
        self.head
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Room after the frame, up to the end of its buffer.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// Grows the frame by `n` bytes at the front; false (and no change) without room.
    #[inline]
    pub fn push_head(&mut self, n: usize) -> bool {
        if n > self.head {
            return false;
        }
        self.head -= n;
        self.len += n;
        true
    }

    /// Sets the frame's length (shorter, or longer into the tailroom); false if too long.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.head + len > self.buf.len() {
            return false;
        }
        self.len = len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_and_tailroom() {
        let mut b = [0u8; 100];
        let mut p = Packet::new(&mut b, 30, 50).unwrap();
        assert_eq!((p.headroom(), p.tailroom(), p.len()), (30, 20, 50));
        assert!(p.push_head(20));
        assert_eq!((p.head(), p.len()), (10, 70));
        assert!(!p.push_head(11));
        assert!(p.set_len(90) && !p.set_len(91));
        assert!(Packet::new(&mut b, 60, 41).is_none());
        assert!(Packet::new(&mut b, usize::MAX, 2).is_none());
    }
}
