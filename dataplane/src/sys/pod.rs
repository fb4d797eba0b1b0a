//! Plain old data: values whose bytes may come from anywhere (a BPF map, a file another
//! process wrote) and be read as the type, and the byte views of them.

use crate::flow::state_file::Header;
use crate::flow::{Flow, FlowKey, FlowKey6};
use crate::offload::{FastKey, FastKey6, FastValue};

/// Plain data the kernel may copy into and out of a map, or a file hold.
///
/// # Safety
/// Implementors are `repr(C)` with no implicit padding, hold no pointers or references,
/// and every bit pattern of their size is a valid value.
pub unsafe trait Pod: Copy + Default {}

// SAFETY: an integer: no padding, every bit pattern valid.
unsafe impl Pod for u32 {}
// SAFETY: repr(C) byte arrays and a byte, no implicit padding (sizes asserted in
// `offload` and against the C layout by xvs-bpf's ABI check); any bytes are valid.
unsafe impl Pod for FastKey {}
// SAFETY: as for FastKey.
unsafe impl Pod for FastKey6 {}
// SAFETY: repr(C), its padding spelled out as fields; integers and byte arrays only.
unsafe impl Pod for FastValue {}
// SAFETY: repr(C) byte arrays and a u32 at offset 36, 40 bytes with no implicit padding
// (asserted in `fullnat::replies`); any bytes are valid.
unsafe impl Pod for crate::fullnat::FnatValue {}
// SAFETY: repr(C), one u64: no padding, every bit pattern valid.
unsafe impl Pod for crate::syn_guard::GuardValue {}
// SAFETY: repr(C) integers and byte arrays (FlowKey's padding is a field), 32 bytes with
// no implicit padding (asserted in `flow::table`); any bytes are a valid entry.
unsafe impl Pod for Flow<FlowKey> {}
// SAFETY: as for Flow<FlowKey>: 48 bytes of key (padding spelled out) and 16 of fields,
// 64 in all (asserted in `flow::table`).
unsafe impl Pod for Flow<FlowKey6> {}
// SAFETY: repr(C), u32 and u64 fields laid out with no implicit padding (its size is
// asserted equal to the fields' sum in `flow::state_file`), and byte arrays.
unsafe impl Pod for Header {}

/// A Pod value's bytes.
pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: T is Pod: no implicit padding, so all its bytes are initialised.
    unsafe {
        std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), std::mem::size_of::<T>())
    }
}

/// A Pod value's bytes, to fill in place.
pub fn bytes_of_mut<T: Pod>(v: &mut T) -> &mut [u8] {
    // SAFETY: T is Pod: any bytes written make a valid value.
    unsafe {
        std::slice::from_raw_parts_mut(std::ptr::from_mut(v).cast::<u8>(), std::mem::size_of::<T>())
    }
}
