//! Direct routing: the frame goes to the real server's MAC unchanged above layer 2. The
//! real server holds the VIP on a loopback and answers the client itself.

use crate::wire::ethernet::{EthernetFrame, Mac};

/// Rewrites the MACs of a frame already checked to hold an Ethernet header.
#[inline]
pub fn rewrite(frame: &mut [u8], dest_mac: Mac, local_mac: Mac) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst(dest_mac);
    eth.set_src(local_mac);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_macs_change() {
        let mut f: Vec<u8> = (0..64).collect();
        let before = f.clone();
        rewrite(&mut f, [1; 6], [2; 6]);
        assert_eq!(&f[..6], &[1; 6]);
        assert_eq!(&f[6..12], &[2; 6]);
        assert_eq!(&f[12..], &before[12..]);
    }
}
